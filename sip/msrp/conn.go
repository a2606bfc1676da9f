package msrp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Conn is one TCP or TLS connection to a peer, carrying the sessions
// bound to it. It reads frames in a loop and hands each request to the
// session its To-Path names; writes from every session are serialised.
// A Pool makes Conns; they close when the peer goes, when a write times
// out, or when they have carried no session for Config.IdleTimeout.
type Conn struct {
	pool   *Pool
	nc     net.Conn
	key    string // the authority dialed; "" for an accepted connection
	secure bool
	log    *slog.Logger

	wmu  sync.Mutex
	wbuf []byte

	mu       sync.Mutex
	sessions map[string]*Session
	pins     int                    // holders other than sessions: a relay's AUTH
	pending  map[string]chan *Frame // our requests awaiting a response, by tid
	peerCert *x509.Certificate
	idle     *time.Timer
	err      error
	closed   chan struct{}
}

func newConn(p *Pool, nc net.Conn, key string, secure bool) *Conn {
	c := &Conn{
		pool: p, nc: nc, key: key, secure: secure,
		log:      p.log.With("peer", nc.RemoteAddr().String()),
		sessions: make(map[string]*Session),
		pending:  make(map[string]chan *Frame),
		closed:   make(chan struct{}),
	}
	if tc, ok := nc.(*tls.Conn); ok && key != "" {
		// Dialed: the handshake is done.
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.peerCert = certs[0]
		}
	}
	// The timer may fire before newConn returns: c.idle is only touched
	// under c.mu.
	c.mu.Lock()
	c.idle = time.AfterFunc(p.cfg.IdleTimeout, c.idleCheck)
	c.mu.Unlock()
	return c
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is this side's address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Sessions is how many sessions the connection carries.
func (c *Conn) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// Done is closed when the connection is.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Close closes the connection, ending the sessions it carries.
func (c *Conn) Close() error {
	c.closeWith(net.ErrClosed)
	return nil
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// closeWith closes the connection once. Its sessions end with it: RFC
// 4975 section 5.4 ties a session to its connection, and a new one takes
// a new SDP exchange.
func (c *Conn) closeWith(err error) { c.close(err, false) }

// close closes the connection with err; when idleOnly, only if it carries
// no session, checked under the same lock that binding takes.
func (c *Conn) close(err error, idleOnly bool) {
	c.mu.Lock()
	if c.err != nil || idleOnly && (len(c.sessions) > 0 || c.pins > 0) {
		c.mu.Unlock()
		return
	}
	c.err = err
	sessions := make([]*Session, 0, len(c.sessions))
	for _, s := range c.sessions {
		sessions = append(sessions, s)
	}
	close(c.closed)
	c.idle.Stop()
	c.mu.Unlock()
	c.nc.Close()
	c.pool.removeConn(c)
	lost := fmt.Errorf("msrp: connection to %s: %w", c.nc.RemoteAddr(), err)
	for _, s := range sessions {
		s.end(lost)
	}
	if errors.Is(err, ErrIdle) || errors.Is(err, ErrPoolClosed) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("msrp connection closed", "reason", err.Error(), "sessions", len(sessions))
	} else {
		c.log.Info("msrp connection closed", "reason", err.Error(), "sessions", len(sessions))
	}
}

// closeErr is why the connection closed.
func (c *Conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Errorf("msrp: connection to %s: %w", c.nc.RemoteAddr(), c.err)
}

func (c *Conn) idleCheck() { c.close(ErrIdle, true) }

// addSession binds s to the connection; false when it is closed.
func (c *Conn) addSession(s *Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.sessions[s.id] = s
	c.idle.Stop()
	return true
}

func (c *Conn) removeSession(s *Session) {
	c.mu.Lock()
	if c.sessions[s.id] == s {
		delete(c.sessions, s.id)
	}
	if len(c.sessions) == 0 && c.pins == 0 && c.err == nil {
		c.idle.Reset(c.pool.cfg.IdleTimeout)
	}
	c.mu.Unlock()
}

// pin keeps the connection open without a session (a relay's AUTH lives
// on it); false when it is closed.
func (c *Conn) pin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.pins++
	c.idle.Stop()
	return true
}

func (c *Conn) unpin() {
	c.mu.Lock()
	c.pins--
	if len(c.sessions) == 0 && c.pins == 0 && c.err == nil {
		c.idle.Reset(c.pool.cfg.IdleTimeout)
	}
	c.mu.Unlock()
}

func (c *Conn) certificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerCert
}

// run reads until the connection fails.
func (c *Conn) run() {
	if tc, ok := c.nc.(*tls.Conn); ok && c.key == "" {
		ctx, cancel := context.WithTimeout(context.Background(), c.pool.cfg.WriteTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.closeWith(fmt.Errorf("TLS: %w", err))
			return
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			c.mu.Lock()
			c.peerCert = certs[0]
			c.mu.Unlock()
		}
	}
	r := NewReader(c.nc, c.pool.cfg.Limits)
	for {
		f, err := r.Next()
		switch fe, refused := err.(*FrameError); {
		case refused:
			c.refuse(fe)
		case err != nil:
			c.closeWith(err)
			return
		case f.IsRequest():
			c.request(f)
		default:
			c.response(f)
		}
	}
}

// refuse answers a frame the reader could not take.
func (c *Conn) refuse(fe *FrameError) {
	c.log.Info("msrp frame refused", "code", fe.Code, "err", fe.Err.Error())
	if fe.Frame.IsRequest() {
		c.answer(fe.Frame, fe.Code, "")
	}
}

func (c *Conn) response(f *Frame) {
	c.mu.Lock()
	ch := c.pending[f.TID]
	delete(c.pending, f.TID)
	c.mu.Unlock()
	if ch != nil {
		ch <- f // buffered: never blocks
	}
}

// request routes a request to its session and acts on it.
func (c *Conn) request(f *Frame) {
	s, code, refused := c.route(f)
	if refused != nil {
		c.answer(f, code, "")
		s.end(refused)
		return
	}
	if s == nil {
		c.answer(f, code, "")
		return
	}
	switch f.Method {
	case MethodSEND:
		s.receive(c, f)
	case MethodREPORT:
		s.report(f)
	case MethodAUTH:
		c.answer(f, 403, "Not a relay")
	default:
		c.answer(f, 501, "")
	}
}

// route finds the session a request is for, binding it to this
// connection if this is its first SEND, or returns the code to answer
// with. A binding SEND whose certificate does not match the session's
// fingerprint gets 403 and ends the session (refused says why, after the
// answer): its peer has shown it will not present the certificate its SDP
// announced, so the session could only wait until the SIP side gives up.
//
// The session is named by the To-Path's first URI, the hop receiving the
// request, and a request reaching an endpoint has no other: relays remove
// themselves from the front as they forward (RFC 4976 section 7.3), so
// anything after the first URI would ask this side to relay, which it does
// not (481, RFC 4975 section 7.3). The URI must equal the session's local
// URI as RFC 4975 section 6.1 compares them; with CEMA (RFC 6714) only the
// session-id is compared, since a middlebox may have rewritten the rest.
//
// A session is bound to the connection its first SEND arrives on (RFC
// 4975 section 5.4, RFC 6135): a passive session waits for that SEND, an
// active one is bound by the SEND it sends itself. A request for a session
// bound to another connection gets 506; one for a session not yet bound,
// other than a passive session's first SEND, gets 481.
func (c *Conn) route(f *Frame) (s *Session, code int, refused error) {
	if len(f.ToPath) != 1 {
		return nil, 481, nil
	}
	to := f.ToPath[0]
	s = c.pool.session(to.SessionID)
	if s == nil || (!s.cfg.CEMA && !to.Equal(s.cfg.Local)) {
		return nil, 481, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return nil, 481, nil
	case s.conn == c:
		return s, 0, nil
	case s.conn != nil:
		return nil, 506, nil
	case s.cfg.Active || f.Method != MethodSEND:
		return nil, 481, nil
	}
	if s.hasFP {
		// A TCP connection has no certificate, so this refuses it too.
		if err := s.fp.Check(c.certificate()); err != nil {
			c.log.Warn("msrp binding refused", "session", logID(s.id), "err", err.Error())
			return s, 403, fmt.Errorf("msrp: binding refused: %w", err)
		}
	}
	if !c.addSession(s) {
		return nil, 481, nil // the connection is closing
	}
	s.conn = c
	close(s.bound)
	c.log.Debug("msrp session bound", "session", logID(s.id))
	return s, 0, nil
}

// answer sends the response with code to req when its Failure-Report
// asks for one.
func (c *Conn) answer(req *Frame, code int, comment string) {
	if !Respond(req, code) {
		return
	}
	res := Response(req, code, comment)
	if len(res.ToPath) == 0 || len(res.FromPath) == 0 {
		return // no path to answer on: the request was refused for it
	}
	if err := c.send(res); err != nil {
		c.log.Debug("msrp response not sent", "code", code, "err", err.Error())
	}
}

// send writes one frame, whole, before any other.
func (c *Conn) send(f *Frame) error {
	c.wmu.Lock()
	b, err := f.AppendTo(c.wbuf[:0])
	if err != nil {
		c.wmu.Unlock()
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.pool.cfg.WriteTimeout))
	_, err = c.nc.Write(b)
	if cap(b) <= 64<<10 {
		c.wbuf = b[:0]
	}
	c.wmu.Unlock()
	if err != nil {
		c.closeWith(err)
		return c.closeErr()
	}
	return nil
}

// expect registers a transaction whose response is awaited.
func (c *Conn) expect(tid string) (chan *Frame, error) {
	ch := make(chan *Frame, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, fmt.Errorf("msrp: connection to %s: %w", c.nc.RemoteAddr(), c.err)
	}
	c.pending[tid] = ch
	return ch, nil
}

func (c *Conn) forget(tid string) {
	c.mu.Lock()
	delete(c.pending, tid)
	c.mu.Unlock()
}

// roundTrip sends a request and waits for its response.
func (c *Conn) roundTrip(ctx context.Context, f *Frame) (*Frame, error) {
	tid, err := pickTID(f.Body)
	if err != nil {
		return nil, err
	}
	f.TID = tid
	ch, err := c.expect(tid)
	if err != nil {
		return nil, err
	}
	defer c.forget(tid)
	if err := c.send(f); err != nil {
		return nil, err
	}
	timer := time.NewTimer(c.pool.cfg.TransactionTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-c.closed:
		return nil, c.closeErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("%w: %s %s after %v", ErrTimeout, f.Method, tid, c.pool.cfg.TransactionTimeout)
	}
}
