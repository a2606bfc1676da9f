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
	"golang.org/x/time/rate"

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

	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	seq atomic.Uint32

	mu       sync.Mutex
	pending  map[uint32]*call
	inWindow int

	window  chan struct{} // one token per outstanding submit_sm
	limiter *rate.Limiter // submit_sm only; nil when unlimited

	throttleMu    sync.Mutex
	throttleUntil time.Time
	throttleStep  time.Duration

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
	sent     time.Time
	deadline time.Time
	done     chan result
}

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
		done:    make(chan struct{}),
		pending: make(map[uint32]*call),
		window:  make(chan struct{}, c.Window),
	}
	s.in = newInbox(s, l.edge.cfg.MOConcurrency, c.DeliverWindow)
	if c.Rate > 0 {
		burst := int(c.Rate)
		if burst < 1 {
			burst = 1
		}
		s.limiter = rate.NewLimiter(rate.Limit(c.Rate), burst)
	}
	s.throttleStep = c.ThrottleBackoff
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
// windowed request holds a window slot, taken by the caller; on error the
// slot has been given back.
func (s *session) request(ctx context.Context, id pdu.ID, windowed bool, frame []byte) (*call, error) {
	seq := s.nextSeq()
	binary.BigEndian.PutUint32(frame[12:16], seq)
	now := time.Now()
	c := &call{
		want: wire.ResponseID(id), seq: seq, windowed: windowed,
		sent: now, deadline: now.Add(s.link.cfg.ResponseTimeout),
		done: make(chan result, 1),
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

// startSubmit waits for the throttle pause, the rate limit and a window
// slot, then queues a submit_sm. Only submit_sm pass through here.
func (s *session) startSubmit(ctx context.Context, m *wire.Message) (*call, error) {
	if s.draining.Load() {
		return nil, errDraining
	}
	if err := s.waitThrottle(ctx); err != nil {
		return nil, err
	}
	if s.limiter != nil {
		if err := s.limiter.Wait(ctx); err != nil {
			return nil, err
		}
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

func (s *session) waitThrottle(ctx context.Context) error {
	s.throttleMu.Lock()
	until := s.throttleUntil
	s.throttleMu.Unlock()
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttled pauses submissions on this bind after ESME_RTHROTTLED or
// ESME_RMSGQFUL, doubling the pause while the SMSC keeps refusing.
func (s *session) throttled() {
	s.throttleMu.Lock()
	defer s.throttleMu.Unlock()
	now := time.Now()
	if now.Before(s.throttleUntil) {
		return // already paused; the answers in flight were sent before it
	}
	s.throttleUntil = now.Add(s.throttleStep)
	s.log.Info("SMSC throttles, pausing submissions", "pause", s.throttleStep)
	if max := 32 * s.link.cfg.ThrottleBackoff; s.throttleStep < max {
		s.throttleStep *= 2
	}
	s.link.m.throttled.WithLabelValues(s.link.cfg.Name).Inc()
}

func (s *session) unthrottled() {
	s.throttleMu.Lock()
	s.throttleStep = s.link.cfg.ThrottleBackoff
	s.throttleMu.Unlock()
}

// writeLoop owns the socket's write side. It writes what is queued and
// flushes when the queue is empty, so a full window goes out in few
// system calls.
func (s *session) writeLoop() {
	bw := bufio.NewWriterSize(s.conn, 32<<10)
	timeout := s.link.cfg.ResponseTimeout
	for {
		var frame []byte
		select {
		case frame = <-s.out:
		case <-s.done:
			return
		}
		s.conn.SetWriteDeadline(time.Now().Add(timeout))
		for {
			if frame == nil {
				bw.Flush()
				why := errUnbound
				if p := s.flushClose.Load(); p != nil {
					why = *p
				}
				s.close(why)
				return
			}
			s.link.countPDU("out", frame)
			if _, err := bw.Write(frame); err != nil {
				s.close(fmt.Errorf("write: %w", err))
				return
			}
			select {
			case frame = <-s.out:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			s.close(fmt.Errorf("write: %w", err))
			return
		}
	}
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
	for seq, c := range s.pending {
		if now.After(c.deadline) {
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
	if c == nil || (c.want != h.ID && h.ID != wire.GenericNack) {
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
		s.link.submitLatency.Observe(time.Since(c.sent).Seconds())
		switch h.Status {
		case wire.StatusThrottled, wire.StatusMsgQFul:
			s.throttled()
		case wire.StatusOK:
			s.unthrottled()
		}
	}
	s.finish(c, r)
}
