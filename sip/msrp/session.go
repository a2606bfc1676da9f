package msrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler takes a whole incoming message. What it returns decides the
// response to the message's last chunk (see CodeFor), and that response
// is sent only after it returned: return nil only once the message is
// safe elsewhere, because the peer takes the 200 as delivery. Messages of
// one session are handed over one at a time, in the order they completed.
type Handler func(ctx context.Context, m *Message) error

// SessionConfig describes one MSRP session as the SDP exchange set it up.
type SessionConfig struct {
	// Local is this side's URI, the last of the a=path it advertises.
	// An empty SessionID gets a fresh one (NewSessionID).
	Local URI
	// Remote is the peer's a=path: the To-Path of every request sent,
	// relays first and the peer last. The connection goes to Remote[0].
	Remote []URI
	// Relay, when set, is this side's relay (RFC 4976), and Remote starts
	// with its Use-Path (as sdp.Negotiated.SessionConfig makes it from our
	// a=path): the session is carried on the connection the relay was
	// AUTHed on, and this side connects whatever the SDP's a=setup said.
	Relay *Relay
	// Active says this side opens the connection (a=setup:active, or the
	// offerer of RFC 4975 section 8.5 without a=setup). A passive session
	// waits for the peer's first SEND to bind a connection to it.
	Active bool
	// Fingerprint is the peer's SDP a=fingerprint ("sha-256 AB:..."),
	// required for msrps: the peer's certificate must hash to it.
	Fingerprint string
	// CEMA says both sides' SDP had a=msrp-cema (RFC 6714): requests are
	// matched to the session by session-id alone, since a middlebox may
	// have changed the host and port in the path.
	CEMA bool
	// Handler takes incoming messages. Without one, content is refused
	// with 403.
	Handler Handler
	// Reports, when set, gets every REPORT for this session, on the
	// connection's reader: it must not block.
	Reports func(*Frame)
	// FailureReport and SuccessReport go on every SEND; ReportUnset sends
	// no header, which means yes and no. With Failure-Report yes, Send
	// waits for the response to every chunk; with partial or no, it
	// returns once the chunks are written.
	//
	// Through relays (Remote of more than one URI) the 200 to a SEND is
	// the first relay's (RFC 4976 answers hop by hop), so an unset
	// SuccessReport becomes yes there. With SuccessReport yes, Send also
	// waits for the message's Success-Report: only the far end sends it,
	// once it took the whole message.
	FailureReport Report
	SuccessReport Report
	// ChunkSize bounds the body of each SEND; DefaultChunkSize when 0.
	ChunkSize int
	// MaxMessage is the largest message this session takes, below the
	// pool's Limits.MaxMessage (which it cannot raise); 0 leaves the
	// pool's. A SEND whose Byte-Range total, or whose message received so
	// far, is over it is answered 413 and the connection carries on. It
	// is what this side's SDP advertises as a=max-size.
	MaxMessage int64
}

// Session is one MSRP session: it sends messages (chunked) to the peer
// and hands complete incoming ones to its Handler.
type Session struct {
	pool  *Pool
	cfg   SessionConfig
	id    string
	fp    Fingerprint
	hasFP bool

	ctx    context.Context // ends with the session (Done); handlers get it
	cancel context.CancelFunc

	connect sync.Mutex // one Connect at a time

	mu    sync.Mutex
	conn  *Conn
	bound chan struct{} // closed once a connection is bound
	err   error         // why the session ended; nil while it lasts

	raMu sync.Mutex
	ra   *Reassembler // made with the first message received

	// last is when content last went either way (since epoch): the
	// session's start, a SEND with content received, a Send begun or
	// ended. Bodiless SENDs (binding, keepalive) do not count.
	last atomic.Int64

	reportsMu sync.Mutex
	awaiting  map[string]chan *Frame // Success-Reports Send waits for, by Message-ID

	// Complete messages wait in queue for a worker goroutine, started
	// when one arrives and ending when the queue is empty: an idle
	// session has no goroutine of its own.
	qmu     sync.Mutex
	queue   []delivery
	pending int           // messages queued or taken by the worker, not yet answered
	working bool          // a worker is delivering the queue
	room    chan struct{} // closed when pending goes below maxPending; nil when nobody waits
}

// maxPending is how many complete messages of a session may wait for
// their answer; the connection's reader waits while it is reached.
const maxPending = 16

type delivery struct {
	m *Message
	c *Conn
}

// NewSession sets up a session. A passive one can be bound by the peer's
// SEND from now on; an active one connects on Connect or its first Send.
func (p *Pool) NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Local.SessionID == "" {
		cfg.Local.SessionID = NewSessionID()
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxMessage < 0 {
		return nil, fmt.Errorf("msrp: session max message %d is negative", cfg.MaxMessage)
	}
	if len(cfg.Remote) > 1 && cfg.SuccessReport == ReportUnset {
		cfg.SuccessReport = ReportYes
	}
	if err := cfg.Local.check(); err != nil {
		return nil, fmt.Errorf("msrp: session local %w", err)
	}
	if len(cfg.Remote) == 0 {
		return nil, errors.New("msrp: session without a remote path")
	}
	for _, u := range cfg.Remote {
		if err := u.check(); err != nil {
			return nil, fmt.Errorf("msrp: session remote %w", err)
		}
	}
	cfg.Local = cfg.Local.detached()
	remote := make([]URI, len(cfg.Remote))
	for i, u := range cfg.Remote {
		remote[i] = u.detached()
	}
	cfg.Remote, cfg.Fingerprint = remote, strings.Clone(cfg.Fingerprint)
	if cfg.Relay != nil {
		if err := cfg.Relay.Err(); err != nil {
			return nil, err
		}
		// Through a relay this side always connects: to the relay, on
		// the connection it AUTHed on.
		cfg.Active = true
	}
	s := &Session{
		pool:  p,
		cfg:   cfg,
		id:    cfg.Local.SessionID,
		bound: make(chan struct{}),
	}
	secure := cfg.Local.Secure || cfg.Remote[0].Secure
	if secure && p.cfg.TLS == nil {
		return nil, errors.New("msrp: msrps session without Config.TLS")
	}
	if secure || cfg.Fingerprint != "" {
		fp, err := ParseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("msrp: msrps session: %w", err)
		}
		s.fp, s.hasFP = fp, true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.touch()

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		s.cancel()
		return nil, ErrPoolClosed
	}
	if p.sessions[s.id] != nil {
		p.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("msrp: session-id %s is taken", logID(s.id))
	}
	p.sessions[s.id] = s
	p.mu.Unlock()
	return s, nil
}

// logger is the pool's logger naming the session, made only when there is
// something to log.
func (s *Session) logger() *slog.Logger {
	return s.pool.log.With("session", logID(s.id))
}

// LocalURI is this side's URI, what its a=path ends with.
func (s *Session) LocalURI() URI { return s.cfg.Local }

// Done is closed when the session ends: closed, or its connection lost.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Context ends when the session does, for context.AfterFunc.
func (s *Session) Context() context.Context { return s.ctx }

// Bound reports whether a connection was bound to the session.
func (s *Session) Bound() bool {
	select {
	case <-s.bound:
		return true
	default:
		return false
	}
}

// LastActivity is when content last went either way in the session: a
// chunk of a message received, a Send begun or ended; the session's start
// before any. Bodiless SENDs (binding, keepalive) leave it as it is. A
// user of the session that ends idle ones compares it with the time.
func (s *Session) LastActivity() time.Time {
	return epoch.Add(time.Duration(s.last.Load()))
}

func (s *Session) touch() { s.last.Store(int64(time.Since(epoch))) }

// epoch is what LastActivity counts from: times carry its monotonic
// reading, so that time.Since of one does not follow the wall clock.
var epoch = time.Now()

// Active reports whether this side opens the connection (SessionConfig.Active).
func (s *Session) Active() bool { return s.cfg.Active }

// Err says why the session ended; nil while it lasts.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session. Its connection stays for other sessions, and
// closes after Config.IdleTimeout when none is left.
func (s *Session) Close() error {
	s.end(ErrSessionClosed)
	return nil
}

func (s *Session) end(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	c := s.conn
	s.conn = nil
	s.cancel()
	s.mu.Unlock()
	s.pool.removeSession(s)
	s.pool.unwatchPartial(s)
	if c != nil {
		c.removeSession(s)
	}
	if !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrPoolClosed) {
		s.logger().Info("msrp session ended", "reason", err.Error())
	}
}

// Connect makes sure a connection is bound to the session. An active
// session connects to Remote[0] (or shares the pool's connection to that
// authority), checks the peer's certificate against the fingerprint for
// msrps, and sends the SEND without body that binds the connection (RFC
// 4975 section 5.4), waiting for its 200. A passive session waits until
// the peer's first SEND has bound a connection: it may not send before.
func (s *Session) Connect(ctx context.Context) error {
	select {
	case <-s.bound:
		return nil
	case <-s.Done():
		return s.Err()
	default:
	}
	if !s.cfg.Active {
		select {
		case <-s.bound:
			return nil
		case <-s.Done():
			return s.Err()
		case <-ctx.Done():
			return fmt.Errorf("msrp: session %s: waiting for the peer to bind a connection: %w", logID(s.id), ctx.Err())
		}
	}
	s.connect.Lock()
	defer s.connect.Unlock()
	select {
	case <-s.bound:
		return nil
	default:
	}
	c, err := s.attach(ctx)
	if err != nil {
		return err
	}
	bind := &Frame{Method: MethodSEND, MessageID: NewTID(), Flag: FlagEnd}
	s.address(bind)
	// The binding SEND must be answered, and has nothing to report on.
	bind.FailureReport, bind.SuccessReport = ReportUnset, ReportUnset
	res, err := c.roundTrip(ctx, bind)
	if err == nil && res.Code != 200 {
		err = &StatusError{Code: res.Code, Comment: res.Comment, Err: errors.New("binding SEND refused")}
	}
	s.mu.Lock()
	if err == nil && s.err == nil {
		close(s.bound)
		s.mu.Unlock()
		return nil
	}
	if s.conn == c {
		s.conn = nil
	}
	ended := s.err
	s.mu.Unlock()
	c.removeSession(s)
	if err == nil {
		err = ended
	}
	return fmt.Errorf("msrp: session %s: bind to %s: %w", logID(s.id), c.RemoteAddr(), err)
}

// attach gets the pool's connection to the first hop (the relay's own
// connection through a relay), checks the peer's certificate and binds the
// session to it. A connection that closes between the two (idle, at that
// moment) is dialed again, once.
func (s *Session) attach(ctx context.Context) (*Conn, error) {
	for try := 0; ; try++ {
		c, err := s.firstHop(ctx)
		if err != nil {
			return nil, err
		}
		if s.hasFP && s.cfg.Relay == nil {
			if err := s.fp.Check(c.certificate()); err != nil {
				c.close(err, true)
				return nil, err
			}
		}
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return nil, s.err
		}
		if c.addSession(s) {
			s.conn = c
			s.mu.Unlock()
			return c, nil
		}
		s.mu.Unlock()
		if try == 1 {
			return nil, c.closeErr()
		}
	}
}

// firstHop is the connection the session's requests go out on.
func (s *Session) firstHop(ctx context.Context) (*Conn, error) {
	if r := s.cfg.Relay; r != nil {
		if r.conn.isClosed() {
			return nil, fmt.Errorf("%w: %w", ErrRelay, r.conn.closeErr())
		}
		return r.conn, nil
	}
	return s.pool.dial(ctx, s.cfg.Remote[0])
}

// address fills a request's paths and reports from the session.
func (s *Session) address(f *Frame) {
	f.ToPath = s.cfg.Remote
	f.FromPath = []URI{s.cfg.Local}
	f.FailureReport = s.cfg.FailureReport
	f.SuccessReport = s.cfg.SuccessReport
}

func (s *Session) currentConn() (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.conn == nil {
		return nil, fmt.Errorf("msrp: session %s has no connection", logID(s.id))
	}
	return s.conn, nil
}

// Send sends one message, chunked into SENDs of at most
// SessionConfig.ChunkSize bytes (connecting first if need be). With
// Failure-Report yes (the default) it returns once every chunk got its
// 200, or with the first failure: a *StatusError with the peer's code
// (after a 413 no further chunk is sent, as RFC 4975 section 10.5 asks),
// an error wrapping ErrTimeout when a response does not come within
// Config.TransactionTimeout, or the connection's error.
func (s *Session) Send(ctx context.Context, contentType string, body []byte) error {
	s.touch()
	defer s.touch()
	if err := s.Connect(ctx); err != nil {
		return err
	}
	c, err := s.currentConn()
	if err != nil {
		return err
	}
	frames := Chunks(NewTID(), contentType, body, s.cfg.ChunkSize)
	wait := s.cfg.FailureReport == ReportUnset || s.cfg.FailureReport == ReportYes
	var reported chan *Frame
	if s.cfg.SuccessReport == ReportYes {
		reported = s.await(frames[0].MessageID)
		defer s.unawait(frames[0].MessageID)
	}
	type tx struct {
		tid string
		ch  chan *Frame
		res *Frame
	}
	txs := make([]tx, 0, len(frames))
	defer func() {
		for _, t := range txs {
			c.forget(t.tid)
		}
	}()
	failed := func(t *tx) error {
		if t.res == nil || t.res.Code == 200 {
			return nil
		}
		return &StatusError{Code: t.res.Code, Comment: t.res.Comment,
			Err: fmt.Errorf("message %s, chunk %s", frames[0].MessageID, t.tid)}
	}
	for _, f := range frames {
		// A failure that came back already stops the message.
		for i := range txs {
			if txs[i].res == nil {
				select {
				case txs[i].res = <-txs[i].ch:
				default:
				}
			}
			if err := failed(&txs[i]); err != nil {
				return err
			}
		}
		s.address(f)
		if f.TID, err = pickTID(f.Body); err != nil {
			return err
		}
		if wait {
			ch, err := c.expect(f.TID)
			if err != nil {
				return err
			}
			txs = append(txs, tx{tid: f.TID, ch: ch})
		}
		if err := c.send(f); err != nil {
			return err
		}
	}
	if !wait && reported == nil {
		return nil
	}
	timer := time.NewTimer(s.pool.cfg.TransactionTimeout)
	defer timer.Stop()
	for i := range txs {
		t := &txs[i]
		if t.res == nil {
			select {
			case t.res = <-t.ch:
			case <-c.closed:
				return c.closeErr()
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				return fmt.Errorf("%w: message %s, chunk %s after %v", ErrTimeout, frames[0].MessageID, t.tid, s.pool.cfg.TransactionTimeout)
			}
		}
		if err := failed(t); err != nil {
			return err
		}
	}
	if reported == nil {
		return nil
	}
	select {
	case r := <-reported:
		if r.Status == nil || r.Status.Code != 200 {
			code := 0
			if r.Status != nil {
				code = r.Status.Code
			}
			return &StatusError{Code: code, Err: fmt.Errorf("message %s: the far end reported %d", frames[0].MessageID, code)}
		}
		return nil
	case <-c.closed:
		return c.closeErr()
	case <-s.Done():
		return s.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("%w: message %s: no Success-Report after %v", ErrTimeout, frames[0].MessageID, s.pool.cfg.TransactionTimeout)
	}
}

// await registers a message whose Success-Report Send waits for.
func (s *Session) await(id string) chan *Frame {
	ch := make(chan *Frame, 1)
	s.reportsMu.Lock()
	if s.awaiting == nil {
		s.awaiting = make(map[string]chan *Frame)
	}
	s.awaiting[id] = ch
	s.reportsMu.Unlock()
	return ch
}

func (s *Session) unawait(id string) {
	s.reportsMu.Lock()
	delete(s.awaiting, id)
	s.reportsMu.Unlock()
}

// receive takes a SEND on the reader of c: chunks are answered at once,
// except the one that completes a message, answered by the worker once
// the Handler returned.
func (s *Session) receive(c *Conn, f *Frame) {
	if f.Body == nil && f.ContentType == "" {
		c.answer(f, 200, "") // binding or keepalive: nothing to deliver
		return
	}
	s.touch()
	s.raMu.Lock()
	if s.ra == nil {
		lim := s.pool.cfg.Limits
		if m := s.cfg.MaxMessage; m > 0 && m < lim.MaxMessage {
			lim.MaxMessage = m
		}
		s.ra = NewReassembler(lim)
	}
	m, err := s.ra.Add(f)
	if s.ra.Waiting() {
		s.pool.watchPartial(s)
	}
	s.raMu.Unlock()
	if err != nil {
		if !errors.Is(err, ErrAborted) {
			s.logger().Info("msrp chunk refused", "msg_id", f.MessageID, "err", err.Error())
		} else {
			s.logger().Debug("msrp message aborted by the sender", "msg_id", f.MessageID)
		}
		code := CodeFor(err)
		c.answer(f, code, "")
		s.answerHeld(c, err, code)
		return
	}
	if m == nil {
		if f.Flag != FlagEnd {
			c.answer(f, 200, "")
		} // else held: answered with the message (Reassembler.Add)
		return
	}
	if !s.enqueue(delivery{m: m, c: c}) {
		c.answer(f, 481, "")
	}
}

// enqueue queues a complete message for the Handler, starting a worker
// when none runs. While maxPending wait, it waits (and the connection's
// reader with it); false when the session ended meanwhile.
func (s *Session) enqueue(d delivery) bool {
	for {
		s.qmu.Lock()
		if s.pending < maxPending {
			s.queue = append(s.queue, d)
			s.pending++
			if !s.working {
				s.working = true
				s.pool.wg.Add(1) // within a connection reader's count
				go s.work()
			}
			s.qmu.Unlock()
			return true
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.qmu.Unlock()
		select {
		case <-room:
		case <-s.Done():
			return false
		}
	}
}

// answerHeld answers the held chunks of a message the reassembler
// dropped.
func (s *Session) answerHeld(c *Conn, err error, code int) {
	var ce *ChunkError
	if errors.As(err, &ce) {
		for _, f := range ce.Held {
			c.answer(f, code, "")
		}
	}
}

func (s *Session) report(f *Frame) {
	s.reportsMu.Lock()
	ch := s.awaiting[f.MessageID]
	s.reportsMu.Unlock()
	if ch != nil {
		select {
		case ch <- f:
		default: // a second REPORT for the message
		}
	}
	if s.cfg.Reports != nil {
		s.cfg.Reports(f)
	}
}

// work hands the queued messages to the Handler one at a time, in the
// order they completed, until the queue is empty or the session ended.
// Two slices take turns as the queue while it works; an idle session
// keeps neither.
func (s *Session) work() {
	defer s.pool.wg.Done()
	var spare []delivery
	s.qmu.Lock()
	for len(s.queue) > 0 && s.ctx.Err() == nil {
		batch := s.queue
		s.queue = spare
		s.qmu.Unlock()
		for _, d := range batch {
			if s.ctx.Err() != nil {
				break
			}
			s.deliver(d)
			s.qmu.Lock()
			s.pending--
			if s.room != nil {
				close(s.room)
				s.room = nil
			}
			s.qmu.Unlock()
		}
		clear(batch)
		spare = batch[:0]
		s.qmu.Lock()
	}
	s.queue, s.pending, s.working = nil, 0, false
	s.qmu.Unlock()
}

// expire drops the messages whose chunks stopped coming (the pool's sweep
// calls it), and leaves the sweep once none is partly received.
func (s *Session) expire() {
	s.raMu.Lock()
	dropped := s.ra.Expire()
	if !s.ra.Waiting() || s.ctx.Err() != nil {
		s.pool.unwatchPartial(s)
	}
	s.raMu.Unlock()
	for _, d := range dropped {
		s.logger().Info("msrp message dropped", "msg_id", d.MessageID, "err", d.Err.Error())
		if c, err := s.currentConn(); err == nil {
			s.answerHeld(c, d, d.Code)
		}
	}
}

func (s *Session) deliver(d delivery) {
	err := s.handle(d.m)
	code := CodeFor(err)
	comment := ""
	var se *StatusError
	if errors.As(err, &se) {
		comment = se.comment()
	}
	if err != nil {
		s.logger().Info("msrp message not taken", "msg_id", d.m.ID, "code", code, "err", err.Error())
	}
	d.c.answer(d.m.Last, code, comment)
	for _, f := range d.m.Held {
		d.c.answer(f, code, comment)
	}
	if err == nil && WantsSuccessReport(d.m.Last) {
		if err := d.c.send(SuccessReport(d.m, s.cfg.Local)); err != nil {
			s.logger().Info("msrp success report not sent", "msg_id", d.m.ID, "err", err.Error())
		}
	}
}

func (s *Session) handle(m *Message) (err error) {
	if s.cfg.Handler == nil {
		return &StatusError{Code: 403, Comment: "Not receiving"}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.pool.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.logger().Error("msrp handler panicked", "msg_id", m.ID, "panic", fmt.Sprint(r))
			err = fmt.Errorf("msrp: handler panicked: %v", r)
		}
	}()
	return s.cfg.Handler(ctx, m)
}
