package smsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/receipt"
	"github.com/mimigw/mimigw/smpp/wire"
)

// ErrNoReceiver is returned when an MO message or receipt has no bound
// session to go to.
var ErrNoReceiver = errors.New("smsc: no receiver bound")

// Submit is one submit_sm the simulator received, as its log keeps it.
type Submit struct {
	At         time.Time `json:"at"`
	SystemID   string    `json:"system_id"`
	Seq        uint32    `json:"seq"`
	MessageID  string    `json:"message_id,omitempty"` // empty when refused
	Status     uint32    `json:"status"`               // what the simulator answered
	Source     string    `json:"source"`
	SourceTON  byte      `json:"source_ton"`
	SourceNPI  byte      `json:"source_npi"`
	Dest       string    `json:"dest"`
	DestTON    byte      `json:"dest_ton"`
	DestNPI    byte      `json:"dest_npi"`
	ESMClass   byte      `json:"esm_class"`
	DataCoding byte      `json:"data_coding"`
	Registered byte      `json:"registered_delivery"`
	// ShortMessage is short_message as received (or message_payload when
	// that carried the text).
	ShortMessage []byte `json:"short_message"`
	// Text is this segment decoded on its own; DecodeError says why not.
	Text        string             `json:"text"`
	DecodeError string             `json:"decode_error,omitempty"`
	Concat      *coding.ConcatInfo `json:"concat,omitempty"`
}

// Server is the simulator. Create it with New, run it with Serve.
type Server struct {
	cfg Config
	log *slog.Logger

	faultsMu sync.Mutex
	faults   Faults

	binds    atomic.Uint64 // successful binds, ever
	nextID   atomic.Uint64
	submits  atomic.Uint64 // submit_sm counted for fault injection
	mu       sync.Mutex
	sessions map[*session]struct{}
	logBuf   []Submit // ring of the last cfg.LogSize submits
	logNext  int
	logTotal uint64
	changed  chan struct{}
	ctx      context.Context // Serve's, for receipts sent later

	heldMu sync.Mutex
	held   []heldReceipt // HoldReceipts: waiting for ReleaseReceipts

	rstats receiptCounters

	wg sync.WaitGroup // sessions and pending receipts
}

// heldReceipt is a receipt kept until ReleaseReceipts.
type heldReceipt struct {
	systemID string
	m        *wire.Message
}

// ReceiptStats counts what became of the receipts the simulator sent.
type ReceiptStats struct {
	// Taken: answered ESME_ROK.
	Taken uint64 `json:"taken"`
	// Refused: answers with an error status (each answer counts).
	Refused uint64 `json:"refused"`
	// Again: deliver_sm sent again for a receipt that got no answer (the
	// connection dropped, or no answer in time) or, without NoResend, a
	// temporary error.
	Again uint64 `json:"again"`
	// Lost: receipts given up: refused for good (or at all, with
	// NoResend), or no receiver bound in time.
	Lost uint64 `json:"lost"`
	// Held: receipts waiting for ReleaseReceipts.
	Held int `json:"held"`
}

type receiptCounters struct {
	taken, refused, again, lost atomic.Uint64
}

// New returns a simulator for cfg.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      log.With("component", "smsc-simulator", "smsc", cfg.Name),
		faults:   cfg.Faults,
		sessions: map[*session]struct{}{},
		changed:  make(chan struct{}),
	}
	s.resetIDs()
	return s, nil
}

// resetIDs makes the next message id FirstID, or one from the clock.
func (s *Server) resetIDs() {
	if s.cfg.FirstID > 0 {
		s.nextID.Store(s.cfg.FirstID - 1)
		return
	}
	s.nextID.Store(uint64(time.Now().UnixNano()/1e6) % 1e9 * 1000)
}

// Serve accepts ESME connections on ln until ctx ends, then closes every
// session and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Warn("SMSC SIMULATOR listening: this is not a real SMSC, nothing submitted reaches a phone", "addr", ln.Addr().String())
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.closeAll()
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.closeAll()
			s.wg.Wait()
			return fmt.Errorf("smsc: accept: %w", err)
		}
		sess := newSession(s, conn)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sess.serve(ctx)
		}()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for x := range s.sessions {
		list = append(list, x)
	}
	s.mu.Unlock()
	for _, x := range list {
		x.close(errors.New("simulator stopping"))
	}
}

// Drop closes every session's connection at once, as a network failure
// would: nothing is unbound, and receipts not yet answered are kept and
// delivered once the ESME binds again.
func (s *Server) Drop() {
	s.log.Info("dropping every connection")
	s.closeAll()
}

// Restart acts out an SMSC restart: every connection closes, and message
// ids start again at FirstID (or from the clock), so ids issued before
// are issued again. Receipts still to be delivered are kept, as an SMSC
// with a persistent store does.
func (s *Server) Restart() {
	s.log.Info("restarting: connections closed, message ids start again")
	s.resetIDs()
	s.closeAll()
}

// ReleaseReceipts sends every receipt held (HoldReceipts) at once, each
// as soon as the window allows, and returns how many it released.
func (s *Server) ReleaseReceipts() int {
	s.heldMu.Lock()
	held := s.held
	s.held = nil
	s.heldMu.Unlock()
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	for _, h := range held {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.sendReceipt(ctx, nil, h.systemID, h.m) }()
	}
	return len(held)
}

// ReceiptStats reports what became of the receipts sent so far.
func (s *Server) ReceiptStats() ReceiptStats {
	s.heldMu.Lock()
	held := len(s.held)
	s.heldMu.Unlock()
	return ReceiptStats{
		Taken: s.rstats.taken.Load(), Refused: s.rstats.refused.Load(),
		Again: s.rstats.again.Load(), Lost: s.rstats.lost.Load(), Held: held,
	}
}

func (s *Server) hold(systemID string, m *wire.Message) {
	s.heldMu.Lock()
	s.held = append(s.held, heldReceipt{systemID: systemID, m: m})
	s.heldMu.Unlock()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faultsMu.Lock()
	s.faults = f
	s.faultsMu.Unlock()
	return nil
}

func (s *Server) currentFaults() Faults {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.faults
}

// Received returns the log of received submit_sm, oldest first.
func (s *Server) Received() []Submit {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Submit, 0, len(s.logBuf))
	if len(s.logBuf) < s.cfg.LogSize {
		return append(out, s.logBuf...)
	}
	out = append(out, s.logBuf[s.logNext:]...)
	return append(out, s.logBuf[:s.logNext]...)
}

// ReceivedCount returns how many submit_sm were logged in all.
func (s *Server) ReceivedCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logTotal
}

func (s *Server) record(sub Submit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logTotal++
	if len(s.logBuf) < s.cfg.LogSize {
		s.logBuf = append(s.logBuf, sub)
		return
	}
	s.logBuf[s.logNext] = sub
	s.logNext = (s.logNext + 1) % s.cfg.LogSize
}

// Bound returns how many sessions are bound, and how many of them take
// deliver_sm (receivers and transceivers).
func (s *Server) Bound() (all, receivers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := range s.sessions {
		if x.bound.Load() && !x.isClosed() {
			all++
			if x.receives() {
				receivers++
			}
		}
	}
	return all, receivers
}

// Binds returns how many binds have succeeded since the simulator started.
func (s *Server) Binds() uint64 { return s.binds.Load() }

// WaitBound waits until n sessions are bound.
func (s *Server) WaitBound(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if all, _ := s.Bound(); all >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) sessionsChanged() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// receiver picks a bound session that takes deliver_sm, preferring one of
// systemID ("" any) and, among those, prefer.
func (s *Server) receiver(systemID string, prefer *session) *session {
	if prefer != nil && prefer.bound.Load() && prefer.receives() && !prefer.isClosed() {
		return prefer
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := range s.sessions {
		if x.bound.Load() && x.receives() && !x.isClosed() && (systemID == "" || x.systemID == systemID) {
			return x
		}
	}
	return nil
}

// messageID allocates the id of an accepted submit_sm.
func (s *Server) messageID() uint64 { return s.nextID.Add(1) }

func formatID(n uint64, form string) string {
	if form == "decimal" {
		return strconv.FormatUint(n, 10)
	}
	return fmt.Sprintf("%010X", n)
}

// outcome returns the receipt state for a destination.
func (s *Server) outcome(dest string) string {
	if o, ok := s.cfg.Outcomes["+"+strings.TrimPrefix(dest, "+")]; ok {
		return o
	}
	if o, ok := s.cfg.Outcomes[dest]; ok {
		return o
	}
	return s.cfg.Outcome
}

// Message states of the message_state TLV (SMPP v3.4 5.2.28).
var messageStates = map[string]byte{
	"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8,
}

// receiptFor builds the deliver_sm receipt for an accepted submit_sm.
func (s *Server) receiptFor(sub Submit, id uint64, stat string, submitted, done time.Time) *wire.Message {
	rid := formatID(id, s.cfg.ReceiptIDFormat)
	text := []rune(sub.Text)
	if len(text) > 20 {
		text = text[:20]
	}
	r := receipt.Receipt{
		ID: rid, Submitted: 1, SubmitDate: submitted, DoneDate: done, Stat: stat, Err: "000",
		// The text field is informational; keep it printable ASCII.
		Text: strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7E {
				return '.'
			}
			return r
		}, string(text)),
	}
	if stat == "DELIVRD" {
		r.Delivered = 1
	} else {
		r.Err = "001"
	}
	body := receipt.Format(r)
	m := &wire.Message{
		SourceTON: sub.DestTON, SourceNPI: sub.DestNPI, Source: sub.Dest,
		DestTON: sub.SourceTON, DestNPI: sub.SourceNPI, Dest: sub.Source,
		ESMClass:     wire.ESMClassReceipt,
		ShortMessage: body,
	}
	if s.cfg.ReceiptTLVs {
		m.SetTLV(wire.TagReceiptedMessageID, append([]byte(rid), 0))
		m.SetTLV(wire.TagMessageState, []byte{messageStates[stat]})
	}
	return m
}

// sendReceipt delivers a receipt, waiting for a receiver to bind if none
// is (an SMSC stores receipts until the ESME comes back), within a bound.
// A receipt left unanswered is delivered again; one answered with a
// temporary error too, unless NoResend.
func (s *Server) sendReceipt(ctx context.Context, from *session, systemID string, m *wire.Message) {
	deadline := time.Now().Add(10 * s.cfg.ResponseTimeout)
	tries := 0
	for time.Now().Before(deadline) {
		rx := s.receiver(systemID, from)
		if rx != nil {
			if tries > 0 {
				s.rstats.again.Add(1)
			}
			tries++
			st, err := rx.deliver(ctx, m)
			switch {
			case err == nil && st == wire.StatusOK:
				s.rstats.taken.Add(1)
				return
			case err == nil:
				s.rstats.refused.Add(1)
				if !wire.Temporary(st) || s.cfg.NoResend {
					s.rstats.lost.Add(1)
					s.log.Info("receipt refused by the ESME, given up", "status", fmt.Sprintf("%#x", uint32(st)))
					return
				}
			case ctx.Err() != nil:
				return
			}
		}
		from = nil
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.rstats.lost.Add(1)
	s.log.Warn("receipt dropped: no receiver took it in time")
}

// MO is a message from a phone, to inject.
type MO struct {
	From, To string // "+E.164" (international) or an alphanumeric sender
	Text     string
	// Coding overrides the simulator's coding options (alphabet choice,
	// concatenation method) for this message.
	Coding *coding.Options
	// Order sends the parts in this order (part numbers from 1); nil
	// sends them in order.
	Order []int
	// SystemID picks the ESME to deliver to ("" any bound receiver).
	SystemID string
}

// InjectMO sends an MO message as deliver_sm, all parts before waiting for
// any answer (an ESME may answer the parts of a concatenated message only
// once it has them all), and returns the ESME's answer to each part in
// the order sent.
func (s *Server) InjectMO(ctx context.Context, mo MO) ([]pdu.Status, error) {
	opts := s.cfg.Coding
	if mo.Coding != nil {
		opts = *mo.Coding
	}
	enc, err := coding.EncodeRef(mo.Text, uint16(s.nextID.Add(1)), opts)
	if err != nil {
		return nil, fmt.Errorf("smsc: MO text: %w", err)
	}
	order := mo.Order
	if order == nil {
		for i := range enc.Segments {
			order = append(order, i+1)
		}
	}
	msgs := make([]*wire.Message, 0, len(order))
	for _, n := range order {
		if n < 1 || n > len(enc.Segments) {
			return nil, fmt.Errorf("smsc: MO order names part %d of %d", n, len(enc.Segments))
		}
		seg := enc.Segments[n-1]
		m := &wire.Message{DataCoding: enc.DataCoding}
		m.SourceTON, m.SourceNPI, m.Source = address(mo.From)
		m.DestTON, m.DestNPI, m.Dest = address(mo.To)
		if seg.ESMClassUDHI {
			m.ESMClass |= wire.ESMClassUDHI
		}
		if seg.Payload {
			m.SetTLV(wire.TagMessagePayload, seg.ShortMessage)
		} else {
			m.ShortMessage = seg.ShortMessage
		}
		if seg.SAR != nil {
			m.SetTLV(wire.TagSarMsgRefNum, []byte{byte(seg.SAR.Ref >> 8), byte(seg.SAR.Ref)})
			m.SetTLV(wire.TagSarTotalSegments, []byte{seg.SAR.Total})
			m.SetTLV(wire.TagSarSegmentSeqnum, []byte{seg.SAR.Seq})
		}
		msgs = append(msgs, m)
	}
	return s.Deliver(ctx, mo.SystemID, msgs...)
}

// Deliver sends deliver_sm PDUs as given (tests use it for bad input), all
// before waiting for any answer, and returns the answers in order.
func (s *Server) Deliver(ctx context.Context, systemID string, msgs ...*wire.Message) ([]pdu.Status, error) {
	rx := s.receiver(systemID, nil)
	if rx == nil {
		return nil, ErrNoReceiver
	}
	calls := make([]*call, len(msgs))
	for i, m := range msgs {
		frame, err := wire.AppendMessage(nil, wire.DeliverSM, 0, m)
		if err != nil {
			return nil, fmt.Errorf("smsc: deliver_sm: %w", err)
		}
		c, err := rx.request(ctx, frame)
		if err != nil {
			return nil, err
		}
		calls[i] = c
	}
	out := make([]pdu.Status, len(calls))
	for i, c := range calls {
		h, err := rx.await(ctx, c)
		if err != nil {
			return out[:i], err
		}
		out[i] = h.Status
	}
	return out, nil
}

// SendRaw writes frame (any bytes, a PDU with the sequence number in
// place) to a bound session and returns the header of the answer with the
// same sequence number, if one comes within the response timeout.
// Tests use it to send what no well-formed peer would.
func (s *Server) SendRaw(ctx context.Context, systemID string, frame []byte, seq uint32) (wire.Header, error) {
	rx := s.receiver(systemID, nil)
	if rx == nil {
		return wire.Header{}, ErrNoReceiver
	}
	c, err := rx.requestRaw(ctx, frame, seq)
	if err != nil {
		return wire.Header{}, err
	}
	return rx.await(ctx, c)
}

// address writes a phone number or alphanumeric id with its TON and NPI.
func address(a string) (ton, npi byte, addr string) {
	if d, ok := strings.CutPrefix(a, "+"); ok {
		return 1, 1, d
	}
	for _, r := range a {
		if r < '0' || r > '9' {
			return 5, 0, a
		}
	}
	return 0, 1, a
}
