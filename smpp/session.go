package smpp

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

	"github.com/mimigw/mimigw/smpp/wire"
)

// Session errors. All are temporary: the message can go again on another
// bind or after a reconnect.
var (
	errClosed   = errors.New("smpp: bind closed")
	errDraining = errors.New("smpp: bind is shutting down")
	errTimeout  = errors.New("smpp: no response in time")
	errDeadLink = errors.New("smpp: enquire_link unanswered, link is dead")
	errUnbound  = errors.New("smpp: unbound by the SMSC")
	// errNotSent: the bind closed while the submit_sm still waited for the
	// pace; the SMSC never saw it.
	errNotSent = errors.New("smpp: bind closed before the submit_sm was sent")
)

// session is one bound SMPP connection: a reader goroutine that only reads,
// matches responses and hands requests off; a writer goroutine that owns
// the socket's write side; and a keeper that sends enquire_link on idle
// links and expires unanswered requests. Nothing the gateway does with a
// message (the bus) ever runs on the reader.
type session struct {
	link *smscLink
	conn net.Conn
	r    *wire.Reader
	mode pdu.ID // the bind command: transceiver, transmitter or receiver
	log  *slog.Logger

	out       chan []byte // every frame but submit_sm
	subq      chan *call  // submit_sm, sent by the writer as the pace allows
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	seq atomic.Uint32

	mu       sync.Mutex
	pending  map[uint32]*call
	inWindow int

	window chan struct{} // one token per outstanding submit_sm

	throttleMu sync.Mutex
	pace       pacer // throttle pauses and the submit_sm rate

	lastRead   atomic.Int64 // unix nanoseconds
	flushClose atomic.Pointer[error]
	draining   atomic.Bool

	in *inbox // deliver_sm queued and in hand
}

// call is a request awaiting its response.
type call struct {
	want     pdu.ID // the response command; generic_nack also answers
	seq      uint32
	windowed bool
	frame    []byte       // a submit_sm's, until the writer sends it
	state    atomic.Int32 // a submit_sm's: callQueued, callSent, ...
	sentAt   atomic.Int64 // unix nanoseconds; 0 while not sent
	done     chan result
}

// States of a submit_sm's call. Only the writer moves one from queued to
// sent; whoever takes it out of pending while queued marks it abandoned
// (the writer then gives back its window slot) or failed (already given
// back).
const (
	callQueued int32 = iota
	callSent
	callAbandoned
	callFailed
)

// result is what answered a call.
type result struct {
	status pdu.Status
	id     string // message_id of submit_sm_resp
	err    error  // errTimeout, errClosed, or a bad response body
	nack   bool   // the answer was a generic_nack
}

func newSession(l *smscLink, conn net.Conn, mode pdu.ID) *session {
	c := l.cfg
	s := &session{
		link:    l,
		conn:    conn,
		r:       wire.NewReader(conn, 0),
		mode:    mode,
		log:     l.log.With("peer", conn.RemoteAddr().String(), "mode", modeName(mode)),
		out:     make(chan []byte, c.Window+256),
		subq:    make(chan *call, c.Window),
		done:    make(chan struct{}),
		pending: make(map[uint32]*call),
		window:  make(chan struct{}, c.Window),
	}
	s.in = newInbox(s, l.edge.cfg.MOConcurrency, c.DeliverWindow)
	s.initPace(time.Now())
	s.lastRead.Store(time.Now().UnixNano())
	return s
}

func modeName(id pdu.ID) string {
	switch id {
	case wire.BindTransceiver:
		return "transceiver"
	case wire.BindTransmitter:
		return "transmitter"
	case wire.BindReceiver:
		return "receiver"
	}
	return "unknown"
}

func (s *session) canSubmit() bool { return s.mode != wire.BindReceiver }

// nextSeq returns the next sequence number (1..0x7FFFFFFF, SMPP v3.4
// 5.1.4), skipping any still awaiting a response.
func (s *session) nextSeq() uint32 {
	for {
		n := s.seq.Add(1) & 0x7FFFFFFF
		if n == 0 {
			continue
		}
		s.mu.Lock()
		_, busy := s.pending[n]
		s.mu.Unlock()
		if !busy {
			return n
		}
	}
}

// bind sends the bind request and reads its response. It runs before the
// session's goroutines start.
func (s *session) bind(ctx context.Context, password string) error {
	c := s.link.cfg
	seq := s.nextSeq()
	frame, err := wire.AppendBind(nil, s.mode, seq, wire.Bind{
		SystemID: c.SystemID, Password: password, SystemType: c.SystemType, InterfaceVersion: 0x34,
	})
	if err != nil {
		return &bindError{err: err}
	}
	deadline := time.Now().Add(c.ResponseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetDeadline(deadline)
	defer s.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := s.conn.Write(frame); err != nil {
		return fmt.Errorf("write bind: %w", err)
	}
	for {
		h, body, err := s.r.Next()
		var fe *wire.FrameError
		if errors.As(err, &fe) {
			return &bindError{err: fe}
		}
		if err != nil {
			return fmt.Errorf("read bind response: %w", err)
		}
		switch {
		case h.ID == wire.ResponseID(s.mode) && h.Seq == seq, h.ID == wire.GenericNack && h.Seq == seq:
			if h.Status != wire.StatusOK {
				return &bindError{status: h.Status}
			}
			id, _ := wire.DecodeResponseID(body)
			s.log.Debug("bound", "smsc_system_id", id)
			return nil
		case h.ID == wire.EnquireLink:
			// Some SMSCs probe before answering the bind.
			resp := wire.AppendHeader(nil, wire.EnquireLinkResp, wire.StatusOK, h.Seq)
			if _, err := s.conn.Write(resp); err != nil {
				return fmt.Errorf("write enquire_link_resp: %w", err)
			}
		default:
			s.log.Warn("PDU before the bind response ignored", "command_id", fmt.Sprintf("%#x", uint32(h.ID)), "seq", h.Seq)
		}
	}
}

// bindError is an SMSC refusing a bind, or a bind request that cannot be
// made.
type bindError struct {
	status pdu.Status
	err    error
}

func (e *bindError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("bind refused: %v", e.err)
	}
	return fmt.Sprintf("bind refused: %s (%#x)", e.status.Error(), uint32(e.status))
}

func (e *bindError) Unwrap() error { return e.err }

// run serves the bound session until the link fails or ctx ends; on ctx's
// end it drains the window and unbinds. It returns why the session ended.
func (s *session) run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.writeLoop() }()
	go func() { defer wg.Done(); s.keep() }()

	readDone := make(chan error, 1)
	go func() { readDone <- s.readLoop() }()

	var err error
	select {
	case err = <-readDone:
		s.close(err)
	case <-s.done:
		err = s.closeErr
		<-readDone
	case <-ctx.Done():
		s.shutdown()
		s.close(nil)
		<-readDone
	}
	wg.Wait()
	s.in.wait()
	return err
}

// close ends the session at once: every outstanding request fails with
// errClosed (or why), the socket closes.
func (s *session) close(why error) {
	s.closeOnce.Do(func() {
		if why == nil {
			why = errClosed
		}
		s.closeErr = why
		close(s.done)
		s.conn.Close()
		if n := s.in.stop(); n > 0 {
			s.log.Info("deliver_sm left unanswered as the link closed; the SMSC delivers them again", "count", n)
		}
		s.mu.Lock()
		calls := s.pending
		s.pending = map[uint32]*call{}
		s.mu.Unlock()
		for _, c := range calls {
			if c.state.CompareAndSwap(callQueued, callFailed) {
				s.finish(c, result{err: errNotSent})
				continue
			}
			s.finish(c, result{err: fmt.Errorf("%w: %v", errClosed, why)})
		}
	})
}

// shutdown drains the window and answers the deliver_sm in hand, then
// unbinds.
func (s *session) shutdown() {
	s.draining.Store(true)
	s.link.sessionsChanged()
	timeout := s.link.cfg.ResponseTimeout
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := s.inWindow
		s.mu.Unlock()
		if n == 0 && s.in.inHand() == 0 {
			break
		}
		select {
		case <-s.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.request(ctx, wire.Unbind, false, wire.AppendHeader(nil, wire.Unbind, wire.StatusOK, 0))
	if err == nil {
		select {
		case <-c.done:
		case <-s.done: // the SMSC closed the link first
		case <-ctx.Done():
		}
	}
	s.log.Info("unbound")
}

// request registers a call and queues its frame, numbering it. A
// windowed request (a submit_sm) holds a window slot, taken by the
// caller, and goes to the writer's submit queue, where it waits for the
// pace; on error the slot has been given back.
func (s *session) request(ctx context.Context, id pdu.ID, windowed bool, frame []byte) (*call, error) {
	seq := s.nextSeq()
	binary.BigEndian.PutUint32(frame[12:16], seq)
	c := &call{
		want: wire.ResponseID(id), seq: seq, windowed: windowed,
		done: make(chan result, 1),
	}
	if windowed {
		c.frame = frame
	} else {
		c.state.Store(callSent)
		c.sentAt.Store(time.Now().UnixNano())
	}
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		if windowed {
			<-s.window
		}
		return nil, errClosed
	default:
	}
	s.pending[seq] = c
	if windowed {
		s.inWindow++
		s.link.windowGauge.Inc()
	}
	s.mu.Unlock()
	if windowed {
		// The queue holds a window's worth, and every call in it holds a
		// window slot until the writer takes it out, so this does not
		// wait; once the bind is closed, close has failed the call.
		select {
		case s.subq <- c:
		case <-s.done:
		}
		return c, nil
	}
	if err := s.send(ctx, frame); err != nil {
		s.mu.Lock()
		_, still := s.pending[seq]
		delete(s.pending, seq)
		if still && windowed {
			s.inWindow--
		}
		s.mu.Unlock()
		if still {
			s.release(c)
		}
		return nil, err
	}
	return c, nil
}

// send queues a frame for the writer.
func (s *session) send(ctx context.Context, frame []byte) error {
	select {
	case s.out <- frame:
		return nil
	case <-s.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// respond queues an answer to the SMSC. Answers never wait for the submit
// rate limit or the window: only a full socket can hold them up.
func (s *session) respond(id pdu.ID, status pdu.Status, seq uint32) {
	frame, err := wire.AppendResponse(nil, id, status, seq, "")
	if err != nil {
		s.log.Error("encode response", "command_id", fmt.Sprintf("%#x", uint32(id)), "err", err)
		return
	}
	select {
	case s.out <- frame:
	case <-s.done:
	}
}

// closeAfterFlush closes the session once what is queued before it (an
// unbind_resp, a generic_nack) is written.
func (s *session) closeAfterFlush(why error) {
	s.flushClose.Store(&why)
	select {
	case s.out <- nil:
	case <-s.done:
	}
}

// release gives back what a finished call held.
func (s *session) release(c *call) {
	if c.windowed {
		<-s.window
		s.link.windowGauge.Dec()
	}
}

func (s *session) finish(c *call, r result) {
	s.release(c)
	c.done <- r
}

// startSubmit waits for a window slot, then queues a submit_sm for the
// writer, which sends it when the throttle pause and the rate allow. Only
// submit_sm pass through here.
func (s *session) startSubmit(ctx context.Context, m *wire.Message) (*call, error) {
	if s.draining.Load() {
		return nil, errDraining
	}
	frame, err := wire.AppendMessage(nil, wire.SubmitSM, 0, m)
	if err != nil {
		return nil, err
	}
	select {
	case s.window <- struct{}{}:
	case <-s.done:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.draining.Load() {
		<-s.window
		return nil, errDraining
	}
	return s.request(ctx, wire.SubmitSM, true, frame)
}

// await waits for a call's result, or for ctx.
func await(ctx context.Context, c *call) (result, error) {
	select {
	case r := <-c.done:
		return r, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// abandon withdraws a submit_sm whose caller gave up (its context ended)
// while it still waited for the pace, so that it is never sent. One
// already sent stays outstanding until answered or expired.
func (s *session) abandon(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[c.seq] != c || !c.state.CompareAndSwap(callQueued, callAbandoned) {
		return
	}
	delete(s.pending, c.seq)
	s.inWindow--
	// The writer gives back the window slot when it takes the call out of
	// its queue, so the queue never holds more than a window.
}

// writeLoop owns the socket's write side. It writes every frame queued
// on out at once, and submit_sm from the submit queue only as the pace
// allows (no throttle pause, the rate), so that a pause holds back every
// submit_sm not yet on the wire, whenever it was queued. It flushes when
// nothing more can go, so a full window goes out in few system calls.
func (s *session) writeLoop() {
	bw := bufio.NewWriterSize(s.conn, 32<<10)
	timeout := s.link.cfg.ResponseTimeout
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var held *call // a submit_sm out of the queue, waiting for the pace
	wrote := false // frames in the buffer, not flushed
	s.conn.SetWriteDeadline(time.Now().Add(timeout))
	for {
		var wait time.Duration
	fill:
		for {
			select {
			case frame := <-s.out:
				if !s.writeFrame(bw, frame) {
					return
				}
				wrote = true
				continue
			default:
			}
			if held == nil {
				select {
				case held = <-s.subq:
				default:
					break fill
				}
			}
			if s.dropUnsendable(held) {
				held = nil
				continue
			}
			if wait = s.submitDelay(time.Now()); wait > 0 {
				break fill
			}
			if held.state.CompareAndSwap(callQueued, callSent) {
				held.sentAt.Store(time.Now().UnixNano())
				if !s.writeFrame(bw, held.frame) {
					return
				}
				wrote = true
			} else {
				s.dropUnsendable(held)
			}
			held = nil
		}
		if wrote {
			if err := bw.Flush(); err != nil {
				s.close(fmt.Errorf("write: %w", err))
				return
			}
			wrote = false
		}
		var subq <-chan *call
		var paced <-chan time.Time
		if held == nil {
			subq = s.subq
		} else {
			timer.Reset(wait)
			paced = timer.C
		}
		select {
		case frame := <-s.out:
			if !s.writeFrame(bw, frame) {
				return
			}
			wrote = true
		case held = <-subq:
		case <-paced:
		case <-s.done:
			return
		}
		timer.Stop()
		s.conn.SetWriteDeadline(time.Now().Add(timeout))
	}
}

// writeFrame writes one frame to the buffer; a nil frame flushes and
// closes the session (closeAfterFlush). It returns false once the
// session is closed.
func (s *session) writeFrame(bw *bufio.Writer, frame []byte) bool {
	if frame == nil {
		bw.Flush()
		why := errUnbound
		if p := s.flushClose.Load(); p != nil {
			why = *p
		}
		s.close(why)
		return false
	}
	s.link.countPDU("out", frame)
	if _, err := bw.Write(frame); err != nil {
		s.close(fmt.Errorf("write: %w", err))
		return false
	}
	return true
}

// dropUnsendable reports whether a submit_sm taken from the queue is no
// longer to be sent: abandoned by its caller (its window slot is given
// back here) or failed by the bind's closing.
func (s *session) dropUnsendable(c *call) bool {
	switch c.state.Load() {
	case callAbandoned:
		if c.state.CompareAndSwap(callAbandoned, callFailed) {
			s.release(c)
		}
		return true
	case callFailed:
		return true
	}
	return false
}

// keep sends enquire_link when the link has been silent for the
// configured interval, declares it dead when one goes unanswered, and
// expires requests whose response is overdue.
func (s *session) keep() {
	c := s.link.cfg
	tick := min(c.EnquireLink, c.ResponseTimeout) / 4
	tick = max(tick, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var probe *call
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		now := time.Now()
		s.expire(now)
		if probe != nil {
			select {
			case r := <-probe.done:
				probe = nil
				if errors.Is(r.err, errTimeout) {
					s.log.Warn("enquire_link unanswered, closing the link", "timeout", c.ResponseTimeout)
					s.close(errDeadLink)
					return
				}
			default:
			}
			continue
		}
		if now.Sub(time.Unix(0, s.lastRead.Load())) < c.EnquireLink {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.ResponseTimeout)
		p, err := s.request(ctx, wire.EnquireLink, false, wire.AppendHeader(nil, wire.EnquireLink, wire.StatusOK, 0))
		cancel()
		if err != nil {
			if !errors.Is(err, errClosed) {
				s.close(fmt.Errorf("enquire_link: %w", err))
			}
			return
		}
		probe = p
	}
}

// expire fails the requests whose response is overdue.
func (s *session) expire(now time.Time) {
	var late []*call
	s.mu.Lock()
	timeout := s.link.cfg.ResponseTimeout.Nanoseconds()
	for seq, c := range s.pending {
		// A submit_sm waiting for the pace is not due: its time runs from
		// when it is sent.
		if sent := c.sentAt.Load(); sent != 0 && now.UnixNano()-sent > timeout {
			delete(s.pending, seq)
			if c.windowed {
				s.inWindow--
			}
			late = append(late, c)
		}
	}
	s.mu.Unlock()
	for _, c := range late {
		s.finish(c, result{err: errTimeout})
	}
}

// readLoop reads PDUs until the link fails. It never waits on anything but
// the socket and the writer's queue.
func (s *session) readLoop() error {
	for {
		h, body, err := s.r.Next()
		var fe *wire.FrameError
		if errors.As(err, &fe) {
			s.link.badPDU(s, "command_length", fe)
			s.respond(wire.GenericNack, fe.Status, fe.Header.Seq)
			if fe.Fatal {
				s.closeAfterFlush(fe)
				<-s.done
				return fe
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		s.lastRead.Store(time.Now().UnixNano())
		s.link.countPDUID("in", h.ID)
		s.dispatch(h, body)
	}
}

// dispatch acts on one PDU from the SMSC.
func (s *session) dispatch(h wire.Header, body []byte) {
	if h.IsResponse() {
		s.complete(h, body)
		return
	}
	switch h.ID {
	case wire.EnquireLink:
		s.respond(wire.EnquireLinkResp, wire.StatusOK, h.Seq)
	case wire.Unbind:
		s.log.Info("SMSC unbinds")
		s.draining.Store(true)
		s.link.sessionsChanged()
		s.respond(wire.UnbindResp, wire.StatusOK, h.Seq)
		s.closeAfterFlush(errUnbound)
	case wire.DeliverSM, wire.DataSM:
		if s.mode == wire.BindTransmitter {
			s.link.badPDU(s, "deliver_on_transmitter", fmt.Errorf("deliver_sm seq %d on a transmitter bind", h.Seq))
			s.respond(wire.ResponseID(h.ID), wire.StatusInvBndSts, h.Seq)
			return
		}
		// Queued, never refused for want of a handler: an SMSC sends no
		// more than its window unanswered. One beyond the window and its
		// margin is the SMSC's error, answered with a retry.
		if !s.in.push(h, body, time.Now()) {
			if isDone(s.done) {
				return
			}
			s.link.m.mo.WithLabelValues(s.link.cfg.Name, "busy").Inc()
			s.log.Warn("SMSC sent more deliver_sm unanswered than its window, asking it to retry", "seq", h.Seq,
				"deliver_window", s.link.cfg.DeliverWindow, "held", s.in.limit)
			s.respond(wire.ResponseID(h.ID), wire.StatusTempAppError, h.Seq)
		}
	case wire.AlertNotification:
		s.log.Debug("alert_notification ignored", "seq", h.Seq)
	default:
		s.link.badPDU(s, "command_id", fmt.Errorf("command_id %#x seq %d not handled", uint32(h.ID), h.Seq))
		s.respond(wire.GenericNack, wire.StatusInvCmdID, h.Seq)
	}
}

// complete hands a response to the request it answers. A response is
// matched by sequence number and command: the SMSC numbers its own
// requests independently, so only a response (never a deliver_sm with the
// same number) can answer our submit_sm.
func (s *session) complete(h wire.Header, body []byte) {
	s.mu.Lock()
	c := s.pending[h.Seq]
	if c == nil || (c.want != h.ID && h.ID != wire.GenericNack) || c.state.Load() != callSent {
		s.mu.Unlock()
		s.link.m.unmatched.WithLabelValues(s.link.cfg.Name).Inc()
		s.log.Warn("response matches no request", "command_id", fmt.Sprintf("%#x", uint32(h.ID)), "seq", h.Seq, "status", uint32(h.Status))
		return
	}
	delete(s.pending, h.Seq)
	if c.windowed {
		s.inWindow--
	}
	s.mu.Unlock()
	r := result{status: h.Status, nack: h.ID == wire.GenericNack}
	if h.ID == wire.SubmitSMResp && h.Status == wire.StatusOK {
		r.id, r.err = wire.DecodeResponseID(body)
	}
	if c.want == wire.SubmitSMResp {
		sent := time.Unix(0, c.sentAt.Load())
		s.link.submitLatency.Observe(time.Since(sent).Seconds())
		switch h.Status {
		case wire.StatusThrottled, wire.StatusMsgQFul:
			s.throttled(sent)
		}
	}
	s.finish(c, r)
}
