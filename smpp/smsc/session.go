package smsc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"golang.org/x/time/rate"

	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/wire"
)

var (
	errClosed  = errors.New("smsc: session closed")
	errTimeout = errors.New("smsc: no response in time")
)

// session is one ESME connection.
type session struct {
	srv  *Server
	conn net.Conn
	r    *wire.Reader
	log  *slog.Logger
	ctx  context.Context

	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once

	bound    atomic.Bool
	mode     pdu.ID
	systemID string

	seq     atomic.Uint32
	mu      sync.Mutex
	pending map[uint32]*call
	window  chan struct{}

	limiter     *rate.Limiter
	limiterRate float64

	lastRead atomic.Int64
}

type call struct {
	seq  uint32
	done chan wire.Header
}

func newSession(srv *Server, conn net.Conn) *session {
	return &session{
		srv:     srv,
		conn:    conn,
		r:       wire.NewReader(conn, 0),
		log:     srv.log.With("peer", conn.RemoteAddr().String()),
		out:     make(chan []byte, 1024),
		done:    make(chan struct{}),
		pending: map[uint32]*call{},
		window:  make(chan struct{}, srv.cfg.Window),
	}
}

func (x *session) receives() bool {
	return x.mode == wire.BindReceiver || x.mode == wire.BindTransceiver
}

func (x *session) isClosed() bool {
	select {
	case <-x.done:
		return true
	default:
		return false
	}
}

func (x *session) serve(ctx context.Context) {
	x.ctx = ctx
	x.srv.mu.Lock()
	x.srv.sessions[x] = struct{}{}
	x.srv.mu.Unlock()
	defer func() {
		x.srv.mu.Lock()
		delete(x.srv.sessions, x)
		x.srv.mu.Unlock()
		x.srv.sessionsChanged()
	}()
	x.lastRead.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); x.writeLoop() }()
	go func() { defer wg.Done(); x.keep() }()
	stop := context.AfterFunc(ctx, func() { x.close(errors.New("simulator stopping")) })
	err := x.readLoop()
	stop()
	x.close(err)
	wg.Wait()
	x.log.Info("session closed", "reason", err)
}

func (x *session) close(why error) {
	x.closeOnce.Do(func() {
		close(x.done)
		x.conn.Close()
	})
}

func (x *session) writeLoop() {
	bw := bufio.NewWriterSize(x.conn, 32<<10)
	for {
		var frame []byte
		select {
		case frame = <-x.out:
		case <-x.done:
			return
		}
		for {
			if frame == nil { // close once what came before is out
				bw.Flush()
				x.close(errors.New("unbound"))
				return
			}
			if _, err := bw.Write(frame); err != nil {
				x.close(err)
				return
			}
			select {
			case frame = <-x.out:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			x.close(err)
			return
		}
	}
}

func (x *session) send(frame []byte) {
	select {
	case x.out <- frame:
	case <-x.done:
	}
}

func (x *session) respond(id pdu.ID, status pdu.Status, seq uint32, field string) {
	frame, err := wire.AppendResponse(nil, id, status, seq, field)
	if err != nil {
		x.log.Error("encode response", "err", err)
		return
	}
	x.send(frame)
}

// keep sends enquire_link on idle sessions and closes dead ones.
func (x *session) keep() {
	every := x.srv.cfg.EnquireLink
	if every <= 0 {
		return
	}
	t := time.NewTicker(max(every/4, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-x.done:
			return
		case <-t.C:
		}
		if !x.bound.Load() || time.Since(time.Unix(0, x.lastRead.Load())) < every {
			continue
		}
		c, err := x.requestRaw(x.ctx, wire.AppendHeader(nil, wire.EnquireLink, wire.StatusOK, 0), 0)
		if err != nil {
			return
		}
		if _, err := x.await(x.ctx, c); errors.Is(err, errTimeout) {
			x.log.Warn("enquire_link unanswered, closing")
			x.close(err)
			return
		}
	}
}

// request sends a deliver_sm (or any request frame), numbering it, within
// the window.
func (x *session) request(ctx context.Context, frame []byte) (*call, error) {
	return x.requestRaw(ctx, frame, 0)
}

// requestRaw sends frame; seq 0 numbers it, another seq is taken as
// written in the frame.
func (x *session) requestRaw(ctx context.Context, frame []byte, seq uint32) (*call, error) {
	select {
	case x.window <- struct{}{}:
	case <-x.done:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if seq == 0 {
		seq = x.seq.Add(1) & 0x7FFFFFFF
		if len(frame) >= wire.HeaderLen {
			binary.BigEndian.PutUint32(frame[12:16], seq)
		}
	}
	c := &call{seq: seq, done: make(chan wire.Header, 1)}
	x.mu.Lock()
	x.pending[seq] = c
	x.mu.Unlock()
	select {
	case x.out <- frame:
		return c, nil
	case <-x.done:
		x.drop(c)
		return nil, errClosed
	}
}

// tryRequest is request without waiting for window room: nil if full.
func (x *session) tryRequest(frame []byte) *call {
	select {
	case x.window <- struct{}{}:
	default:
		return nil
	}
	seq := x.seq.Add(1) & 0x7FFFFFFF
	binary.BigEndian.PutUint32(frame[12:16], seq)
	c := &call{seq: seq, done: make(chan wire.Header, 1)}
	x.mu.Lock()
	x.pending[seq] = c
	x.mu.Unlock()
	select {
	case x.out <- frame:
		return c
	case <-x.done:
		x.drop(c)
		return nil
	}
}

func (x *session) drop(c *call) {
	x.mu.Lock()
	_, ok := x.pending[c.seq]
	delete(x.pending, c.seq)
	x.mu.Unlock()
	if ok {
		<-x.window
	}
}

func (x *session) await(ctx context.Context, c *call) (wire.Header, error) {
	t := time.NewTimer(x.srv.cfg.ResponseTimeout)
	defer t.Stop()
	select {
	case h := <-c.done:
		return h, nil
	case <-t.C:
		x.drop(c)
		return wire.Header{}, errTimeout
	case <-x.done:
		x.drop(c)
		return wire.Header{}, errClosed
	case <-ctx.Done():
		x.drop(c)
		return wire.Header{}, ctx.Err()
	}
}

// deliver sends one deliver_sm and waits for its answer.
func (x *session) deliver(ctx context.Context, m *wire.Message) (pdu.Status, error) {
	frame, err := wire.AppendMessage(nil, wire.DeliverSM, 0, m)
	if err != nil {
		return 0, err
	}
	c, err := x.request(ctx, frame)
	if err != nil {
		return 0, err
	}
	h, err := x.await(ctx, c)
	return h.Status, err
}

func (x *session) readLoop() error {
	for {
		h, body, err := x.r.Next()
		var fe *wire.FrameError
		if errors.As(err, &fe) {
			x.log.Warn("bad PDU", "err", fe)
			x.respond(wire.GenericNack, fe.Status, fe.Header.Seq, "")
			if fe.Fatal {
				return fe
			}
			continue
		}
		if err != nil {
			return err
		}
		x.lastRead.Store(time.Now().UnixNano())
		if h.IsResponse() {
			x.mu.Lock()
			c := x.pending[h.Seq]
			delete(x.pending, h.Seq)
			x.mu.Unlock()
			if c == nil {
				x.log.Warn("response matches no request", "command_id", fmt.Sprintf("%#x", uint32(h.ID)), "seq", h.Seq)
				continue
			}
			<-x.window
			c.done <- h
			continue
		}
		if err := x.handle(h, body); err != nil {
			return err
		}
	}
}

func (x *session) handle(h wire.Header, body []byte) error {
	switch h.ID {
	case wire.BindTransceiver, wire.BindTransmitter, wire.BindReceiver:
		x.bind(h, body)
	case wire.EnquireLink:
		x.respond(wire.EnquireLinkResp, wire.StatusOK, h.Seq, "")
	case wire.Unbind:
		x.respond(wire.UnbindResp, wire.StatusOK, h.Seq, "")
		x.bound.Store(false)
		x.srv.sessionsChanged()
		x.send(nil)
	case wire.SubmitSM:
		if !x.bound.Load() || x.mode == wire.BindReceiver {
			x.respond(wire.SubmitSMResp, wire.StatusInvBndSts, h.Seq, "")
			return nil
		}
		return x.submit(h, body)
	default:
		x.log.Warn("command not handled", "command_id", fmt.Sprintf("%#x", uint32(h.ID)), "seq", h.Seq)
		x.respond(wire.GenericNack, wire.StatusInvCmdID, h.Seq, "")
	}
	return nil
}

func (x *session) bind(h wire.Header, body []byte) {
	resp := wire.ResponseID(h.ID)
	if x.bound.Load() {
		x.respond(resp, wire.StatusAlyBnd, h.Seq, "")
		return
	}
	b, err := wire.DecodeBind(body)
	if err != nil {
		x.log.Warn("bad bind", "err", err)
		x.respond(resp, wire.StatusFor(err), h.Seq, "")
		return
	}
	if accts := x.srv.cfg.Accounts; len(accts) > 0 {
		status := wire.StatusInvSysID
		for _, a := range accts {
			if a.SystemID == b.SystemID {
				status = wire.StatusInvPaswd
				if a.Password == b.Password {
					status = wire.StatusOK
				}
				break
			}
		}
		if status != wire.StatusOK {
			x.log.Warn("bind refused", "system_id", b.SystemID, "status", fmt.Sprintf("%#x", uint32(status)))
			x.respond(resp, status, h.Seq, "")
			return
		}
	}
	x.systemID, x.mode = b.SystemID, h.ID
	x.log = x.log.With("system_id", b.SystemID)
	x.respond(resp, wire.StatusOK, h.Seq, x.srv.cfg.Name)
	x.bound.Store(true)
	x.srv.binds.Add(1)
	x.srv.sessionsChanged()
	x.log.Info("ESME bound", "mode", h.ID.String())
}

// submit answers a submit_sm, injecting faults as configured.
func (x *session) submit(h wire.Header, body []byte) error {
	m, err := wire.DecodeMessage(body)
	if err != nil {
		x.log.Warn("bad submit_sm", "seq", h.Seq, "err", err)
		if wire.NackOnDecode(err) {
			x.respond(wire.GenericNack, wire.StatusFor(err), h.Seq, "")
		} else {
			x.respond(wire.SubmitSMResp, wire.StatusFor(err), h.Seq, "")
		}
		return nil
	}
	n := x.srv.submits.Add(1)
	f := x.srv.currentFaults()
	sub := Submit{
		At: time.Now(), SystemID: x.systemID, Seq: h.Seq,
		Source: m.Source, SourceTON: m.SourceTON, SourceNPI: m.SourceNPI,
		Dest: m.Dest, DestTON: m.DestTON, DestNPI: m.DestNPI,
		ESMClass: m.ESMClass, DataCoding: m.DataCoding, Registered: m.RegisteredDelivery,
		ShortMessage: m.ShortMessage,
	}
	sm, udhi := m.ShortMessage, m.ESMClass&wire.ESMClassUDHI != 0
	if p, ok := m.TLV(wire.TagMessagePayload); ok && len(sm) == 0 {
		sm, sub.ShortMessage = p, p
	}
	part, derr := x.decode(&m, sm, udhi)
	if derr != nil {
		sub.DecodeError = derr.Error()
	} else {
		sub.Text, sub.Concat = part.Text, part.Concat
	}
	status := wire.StatusOK
	switch {
	case f.DropEvery > 0 && n%uint64(f.DropEvery) == 0:
		// The SMSC takes the message and fails before answering: the
		// ESME cannot know, and will submit it again.
		sub.MessageID = formatID(x.srv.messageID(), x.srv.cfg.IDFormat)
		x.srv.record(sub)
		x.log.Info("fault: message taken, connection dropped before the answer", "seq", h.Seq, "message_id", sub.MessageID)
		return errors.New("fault injection: connection dropped")
	case f.ThrottleEvery > 0 && n%uint64(f.ThrottleEvery) == 0:
		status = wire.StatusThrottled
	case f.FailEvery > 0 && n%uint64(f.FailEvery) == 0:
		status = pdu.Status(f.FailStatus)
		if status == 0 {
			status = wire.StatusSysErr
		}
	case f.Rate > 0 && !x.allow(f.Rate):
		status = wire.StatusThrottled
	}
	sub.Status = uint32(status)
	if status != wire.StatusOK {
		x.srv.record(sub)
		x.respond(wire.SubmitSMResp, status, h.Seq, "")
		return nil
	}
	id := x.srv.messageID()
	sub.MessageID = formatID(id, x.srv.cfg.IDFormat)
	x.srv.record(sub)
	stat := x.srv.outcome(m.Dest)
	if m.RegisteredDelivery&0x03 != 0 && stat != "none" {
		if m.RegisteredDelivery&0x03 == 2 && stat == "DELIVRD" {
			// Receipt asked for failures only.
		} else {
			x.scheduleReceipt(sub, id, stat)
		}
	}
	x.respond(wire.SubmitSMResp, wire.StatusOK, h.Seq, sub.MessageID)
	return nil
}

func (x *session) decode(m *wire.Message, sm []byte, udhi bool) (coding.Part, error) {
	o := x.srv.cfg.Coding
	ref, a := m.TLV(wire.TagSarMsgRefNum)
	total, b := m.TLV(wire.TagSarTotalSegments)
	seq, c := m.TLV(wire.TagSarSegmentSeqnum)
	if a || b || c {
		sar, err := coding.ParseSAR(ref, total, seq)
		if err != nil {
			return coding.Part{}, err
		}
		return coding.DecodeSAR(m.DataCoding, udhi, sm, sar, o)
	}
	return coding.Decode(m.DataCoding, udhi, sm, o)
}

func (x *session) allow(r float64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.limiter == nil || x.limiterRate != r {
		x.limiter = rate.NewLimiter(rate.Limit(r), max(1, int(r)))
		x.limiterRate = r
	}
	return x.limiter.Allow()
}

// scheduleReceipt sends the receipt after the configured delay, or at
// once, ahead of the submit_sm_resp that is about to be queued, when
// receipts are early.
func (x *session) scheduleReceipt(sub Submit, id uint64, stat string) {
	srv := x.srv
	now := time.Now()
	if srv.cfg.EarlyReceipts {
		m := srv.receiptFor(sub, id, stat, now, now)
		frame, err := wire.AppendMessage(nil, wire.DeliverSM, 0, m)
		if err != nil {
			x.log.Error("encode receipt", "err", err)
			return
		}
		// Queued here, on the reader, so that it goes out before the
		// submit_sm_resp; if the window is full it goes later instead of
		// stalling the reader.
		var c *call
		if x.receives() {
			c = x.tryRequest(frame)
		}
		if c == nil {
			srv.wg.Add(1)
			go func() { defer srv.wg.Done(); srv.sendReceipt(x.ctx, nil, x.systemID, m) }()
			return
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			if h, err := x.await(x.ctx, c); err != nil || h.Status != wire.StatusOK {
				x.log.Info("early receipt not taken", "status", uint32(h.Status), "err", err)
			}
		}()
		return
	}
	if srv.cfg.HoldReceipts {
		srv.hold(x.systemID, srv.receiptFor(sub, id, stat, now, now))
		return
	}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		t := time.NewTimer(srv.cfg.ReceiptDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-x.ctx.Done():
			return
		}
		m := srv.receiptFor(sub, id, stat, now, time.Now())
		srv.sendReceipt(x.ctx, x, x.systemID, m)
	}()
}
