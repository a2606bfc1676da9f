package msrp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Errors a Pool, Conn or Session ends with.
var (
	ErrPoolClosed    = errors.New("msrp: pool closed")
	ErrSessionClosed = errors.New("msrp: session closed")
	ErrIdle          = errors.New("msrp: connection idle without a session")
	ErrTimeout       = errors.New("msrp: no response in time")
)

// Config configures a Pool.
type Config struct {
	// Limits bound what peers can make the pool read and hold.
	Limits Limits
	// TLS holds this side's certificate for msrps, used when accepting
	// (ServeTLS) and when dialing. Peers are checked against the
	// fingerprint their SDP announced (SessionConfig.Fingerprint), never
	// against a CA chain, so the pool sets ClientAuth and certificate
	// verification itself. Nil leaves msrps out.
	TLS *tls.Config
	// IdleTimeout closes a connection that has carried no session for
	// this long: one accepted that never sent a binding SEND, or one whose
	// sessions all ended.
	IdleTimeout time.Duration
	// TransactionTimeout is how long a SEND waits for its response before
	// it counts as failed (RFC 4975 suggests 30 seconds).
	TransactionTimeout time.Duration
	// HandlerTimeout bounds one Handler call. The peer waits for the
	// response to its last chunk meanwhile, so it should stay well under
	// the peer's transaction timeout.
	HandlerTimeout time.Duration
	// WriteTimeout bounds writing one frame: a peer that stops reading is
	// dropped rather than left to block every session on its connection.
	WriteTimeout time.Duration
	// Dial opens TCP connections; a net.Dialer when nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger gets connection and message events (never bodies); none
	// when nil.
	Logger *slog.Logger
}

// Defaults fills what was left zero.
func (c *Config) Defaults() {
	c.Limits.Defaults()
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 30 * time.Second
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a filled configuration, naming the field at fault.
func (c *Config) Validate() error {
	errs := []error{c.Limits.Validate()}
	for name, d := range map[string]time.Duration{
		"idle_timeout": c.IdleTimeout, "transaction_timeout": c.TransactionTimeout,
		"handler_timeout": c.HandlerTimeout, "write_timeout": c.WriteTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("msrp: %s: %v must be positive", name, d))
		}
	}
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
		errs = append(errs, errors.New("msrp: tls: no certificate"))
	}
	return errors.Join(errs...)
}

// Pool is this side's MSRP endpoint: the sessions it has set up and the
// connections that carry them. Connections it opens are shared by every
// session whose first hop has the same authority (scheme, host, port);
// connections it accepts are shared by whatever sessions the peer binds
// to them.
type Pool struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session // by local session-id
	dialed   map[string]*dialCall
	conns    map[*Conn]struct{}
	closed   bool

	// One sweep for the pool drops the messages whose chunks stopped
	// coming, rather than a ticker per session: it runs every
	// Limits.IncompleteTimeout/4 while a session holds a partly received
	// message.
	partMu  sync.Mutex
	partial map[*Session]struct{}
	sweep   *time.Timer

	wg sync.WaitGroup // connection readers and session workers
}

type dialCall struct {
	done chan struct{}
	c    *Conn
	err  error
}

// NewPool checks the configuration (zero fields take their defaults).
func NewPool(cfg Config) (*Pool, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Pool{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: make(map[string]*Session),
		dialed:   make(map[string]*dialCall),
		conns:    make(map[*Conn]struct{}),
	}, nil
}

// Serve accepts MSRP over TCP on ln until ctx ends (it then closes ln and
// returns nil) or ln fails.
func (p *Pool) Serve(ctx context.Context, ln net.Listener) error {
	return p.serve(ctx, ln, false)
}

// ServeTLS accepts msrps on ln, a TCP listener: it runs the TLS server
// side with Config.TLS and asks every client for its certificate, which
// the session it binds checks against its fingerprint.
func (p *Pool) ServeTLS(ctx context.Context, ln net.Listener) error {
	if p.cfg.TLS == nil {
		return errors.New("msrp: ServeTLS without Config.TLS")
	}
	return p.serve(ctx, ln, true)
}

func (p *Pool) serve(ctx context.Context, ln net.Listener, secure bool) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("msrp: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("msrp accept failed", "listener", ln.Addr().String(), "err", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if secure {
			nc = tls.Server(nc, p.serverTLS())
		}
		if _, err := p.Accept(nc); err != nil {
			return nil // the pool closed
		}
	}
}

// Accept serves a connection the caller accepted itself: plain TCP, or a
// *tls.Conn on its server side whose handshake has not run (its config
// should ask for the client's certificate, as ServeTLS's does). The
// connection waits for a binding SEND like any other. It is closed, and
// ErrPoolClosed returned, when the pool is closed.
func (p *Pool) Accept(nc net.Conn) (*Conn, error) {
	_, secure := nc.(*tls.Conn)
	c := p.addConn(nc, "", secure)
	if c == nil {
		nc.Close()
		return nil, ErrPoolClosed
	}
	return c, nil
}

// serverTLS: the client must show a certificate, any certificate; the
// session it binds checks it against the fingerprint from the SDP.
func (p *Pool) serverTLS() *tls.Config {
	c := p.cfg.TLS.Clone()
	c.ClientAuth = tls.RequireAnyClientCert
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c
}

// clientTLS: the server's certificate is checked against the session's
// fingerprint after the handshake (RFC 4572), not against a CA chain.
func (p *Pool) clientTLS(host string) *tls.Config {
	c := p.cfg.TLS.Clone()
	c.InsecureSkipVerify = true // verified by fingerprint: see Session.Connect
	if net.ParseIP(host) == nil {
		c.ServerName = host
	}
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c
}

// Conns is how many connections are open.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close ends every session and connection and waits for their goroutines.
// Serve and ServeTLS return when their context ends.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	sessions := make([]*Session, 0, len(p.sessions))
	for _, s := range p.sessions {
		sessions = append(sessions, s)
	}
	conns := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, s := range sessions {
		s.end(ErrPoolClosed)
	}
	for _, c := range conns {
		c.closeWith(ErrPoolClosed)
	}
	p.wg.Wait()
	return nil
}

// dial returns the connection to the authority of remote, opening it when
// there is none; concurrent callers share one dial.
func (p *Pool) dial(ctx context.Context, remote URI) (*Conn, error) {
	if remote.Port == 0 {
		return nil, fmt.Errorf("msrp: %s has no port to connect to", remote)
	}
	key := remote.Authority()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if d := p.dialed[key]; d != nil {
			p.mu.Unlock()
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if d.err != nil {
				return nil, d.err
			}
			if !d.c.isClosed() {
				return d.c, nil
			}
			p.mu.Lock()
			if p.dialed[key] == d {
				delete(p.dialed, key)
			}
			p.mu.Unlock()
			continue
		}
		d := &dialCall{done: make(chan struct{})}
		p.dialed[key] = d
		p.mu.Unlock()

		d.c, d.err = p.open(ctx, remote, key)
		if d.err != nil {
			p.mu.Lock()
			if p.dialed[key] == d {
				delete(p.dialed, key)
			}
			p.mu.Unlock()
		}
		close(d.done)
		return d.c, d.err
	}
}

func (p *Pool) open(ctx context.Context, remote URI, key string) (*Conn, error) {
	addr := net.JoinHostPort(remote.Host, strconv.Itoa(remote.Port))
	nc, err := p.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("msrp: connect %s: %w", key, err)
	}
	if remote.Secure {
		if p.cfg.TLS == nil {
			nc.Close()
			return nil, fmt.Errorf("msrp: connect %s: msrps without Config.TLS", key)
		}
		tc := tls.Client(nc, p.clientTLS(remote.Host))
		hctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("msrp: connect %s: TLS: %w", key, err)
		}
		nc = tc
	}
	c := p.addConn(nc, key, remote.Secure)
	if c == nil {
		nc.Close()
		return nil, ErrPoolClosed
	}
	return c, nil
}

// addConn registers a connection and starts its reader; nil when the
// pool is closed.
func (p *Pool) addConn(nc net.Conn, key string, secure bool) *Conn {
	c := newConn(p, nc, key, secure)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		c.run()
	}()
	return c
}

func (p *Pool) removeConn(c *Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	if d := p.dialed[c.key]; c.key != "" && d != nil && d.c == c {
		delete(p.dialed, c.key)
	}
	p.mu.Unlock()
}

func (p *Pool) session(id string) *Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions[id]
}

func (p *Pool) removeSession(s *Session) {
	p.mu.Lock()
	if p.sessions[s.id] == s {
		delete(p.sessions, s.id)
	}
	p.mu.Unlock()
}

// watchPartial has the sweep check s, which holds a partly received
// message.
func (p *Pool) watchPartial(s *Session) {
	p.partMu.Lock()
	defer p.partMu.Unlock()
	if _, ok := p.partial[s]; ok {
		return
	}
	if p.partial == nil {
		p.partial = make(map[*Session]struct{})
	}
	p.partial[s] = struct{}{}
	switch {
	case p.sweep == nil:
		p.sweep = time.AfterFunc(p.sweepEvery(), p.sweepPartial)
	case len(p.partial) == 1:
		p.sweep.Reset(p.sweepEvery())
	}
}

func (p *Pool) unwatchPartial(s *Session) {
	p.partMu.Lock()
	delete(p.partial, s)
	p.partMu.Unlock()
}

func (p *Pool) sweepEvery() time.Duration {
	return max(p.cfg.Limits.IncompleteTimeout/4, 10*time.Millisecond)
}

// sweepPartial expires what the watched sessions hold, and comes again
// while any is left.
func (p *Pool) sweepPartial() {
	p.partMu.Lock()
	watched := make([]*Session, 0, len(p.partial))
	for s := range p.partial {
		watched = append(watched, s)
	}
	p.partMu.Unlock()
	for _, s := range watched {
		s.expire()
	}
	p.partMu.Lock()
	if len(p.partial) > 0 {
		p.sweep.Reset(p.sweepEvery())
	}
	p.partMu.Unlock()
}

// logID shortens a session-id for logs: the id is what lets a peer bind a
// connection to a session, so it is not written out whole.
func logID(id string) string {
	if len(id) > 6 {
		return id[:6] + "…"
	}
	return id
}
