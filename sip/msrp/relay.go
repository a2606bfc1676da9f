package msrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Relays (RFC 4976). A client behind a relay opens a connection to it and
// sends AUTH: To-Path the relay's URI, From-Path its own. The relay's 200
// carries a Use-Path (the URIs that reach this client through the relay)
// and an Expires. From then on the client advertises
// a=path:<use-path> <own URI>, sends every request with To-Path
// <use-path> <peer's a=path>, and gets its peers' requests over that same
// connection: the relay delivers them there, whatever the host and port of
// the client's own URI say.
//
// A Relay keeps that connection open for as long as it lives and renews
// the AUTH before it expires. Sessions set up with SessionConfig.Relay
// (their Remote starting with the Use-Path) are carried on its connection.
//
// Not handled: a relay that challenges the AUTH (401 with Digest): Auth
// fails, naming the challenge. msrps relays are dialed like any msrps
// peer, without checking their certificate against a CA: use them only
// with a fingerprint-pinned or trusted network path.

// ErrRelay wraps every failure of Auth and of a Relay's renewal.
var ErrRelay = errors.New("msrp: relay")

// RelayConfig says how to reach a relay.
type RelayConfig struct {
	// URI is the relay's URI, as its operator gives it (usually without
	// a session-id): the AUTH's To-Path.
	URI URI
	// Expires is the lifetime the AUTH asks for; 0 lets the relay choose.
	Expires time.Duration
}

// Relay is this side's standing with one relay: the connection it AUTHed
// on and the Use-Path it got.
type Relay struct {
	pool  *Pool
	cfg   RelayConfig
	local URI // the AUTH's From-Path
	conn  *Conn

	mu      sync.Mutex
	usePath []URI
	expires time.Time
	err     error
	done    chan struct{}
	stop    context.CancelFunc
}

// Auth connects to the relay, AUTHs, and keeps the AUTH fresh until Close
// or until the connection is lost (Done). The connection is the pool's,
// shared with sessions whose first hop is the relay.
func (p *Pool) Auth(ctx context.Context, cfg RelayConfig) (*Relay, error) {
	if err := cfg.URI.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRelay, err)
	}
	c, err := p.dial(ctx, cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRelay, err)
	}
	if !c.pin() {
		return nil, fmt.Errorf("%w: %w", ErrRelay, c.closeErr())
	}
	r := &Relay{pool: p, cfg: cfg, conn: c, done: make(chan struct{})}
	r.local = URI{Secure: cfg.URI.Secure, Host: "127.0.0.1", SessionID: NewSessionID(), Transport: "tcp"}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		r.local.Host, r.local.Port = a.IP.String(), a.Port
	}
	if err := r.auth(ctx); err != nil {
		c.unpin()
		return nil, err
	}
	rctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		r.renew(rctx)
	}()
	return r, nil
}

// UsePath is the Use-Path the relay gave: what goes before this side's own
// URI in the a=path it advertises.
func (r *Relay) UsePath() []URI {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]URI(nil), r.usePath...)
}

// Expires is when the current AUTH runs out.
func (r *Relay) Expires() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expires
}

// Done is closed when the relay can no longer be used: Close, the
// connection lost, or a renewal refused.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Err says why the relay ended; nil while it serves.
func (r *Relay) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close stops renewing and lets the connection go once no session uses it.
// Sessions already set up through the relay keep working until the AUTH
// expires at the relay.
func (r *Relay) Close() error {
	r.end(ErrSessionClosed)
	return nil
}

func (r *Relay) end(err error) {
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return
	}
	r.err = err
	close(r.done)
	r.mu.Unlock()
	if r.stop != nil {
		r.stop()
	}
	r.conn.unpin()
}

// auth sends one AUTH and takes its answer.
func (r *Relay) auth(ctx context.Context) error {
	f := &Frame{Method: MethodAUTH, ToPath: []URI{r.cfg.URI}, FromPath: []URI{r.local}, Flag: FlagEnd}
	if r.cfg.Expires > 0 {
		f.Expires = int(max(r.cfg.Expires/time.Second, 1))
	}
	res, err := r.conn.roundTrip(ctx, f)
	if err != nil {
		return fmt.Errorf("%w: AUTH to %s: %w", ErrRelay, r.cfg.URI, err)
	}
	switch {
	case res.Code == 401:
		return fmt.Errorf("%w: AUTH to %s: 401, a Digest challenge (%q), which this side does not answer", ErrRelay, r.cfg.URI, res.WWWAuthenticate)
	case res.Code == 423 && res.MinExpires > 0 && f.Expires < res.MinExpires:
		r.cfg.Expires = time.Duration(res.MinExpires) * time.Second
		return r.auth(ctx)
	case res.Code != 200:
		return fmt.Errorf("%w: AUTH to %s: %d %s", ErrRelay, r.cfg.URI, res.Code, res.Comment)
	case len(res.UsePath) == 0:
		return fmt.Errorf("%w: AUTH to %s: 200 without a Use-Path", ErrRelay, r.cfg.URI)
	}
	for _, u := range res.UsePath {
		if err := u.check(); err != nil {
			return fmt.Errorf("%w: AUTH to %s: Use-Path %w", ErrRelay, r.cfg.URI, err)
		}
	}
	life := time.Duration(res.Expires) * time.Second
	if life <= 0 {
		life = max(r.cfg.Expires, defaultRelayExpires)
	}
	r.mu.Lock()
	r.usePath, r.expires = res.UsePath, time.Now().Add(life)
	r.mu.Unlock()
	r.pool.log.Debug("msrp relay AUTH accepted", "relay", r.cfg.URI.String(), "expires_in", life.String())
	return nil
}

// defaultRelayExpires is the lifetime assumed when a relay's 200 has no
// Expires (RFC 4976 requires one).
const defaultRelayExpires = 10 * time.Minute

// renew AUTHs again when four fifths of the lifetime passed, retrying
// until the AUTH ran out; the relay ends when the connection does.
func (r *Relay) renew(ctx context.Context) {
	for {
		r.mu.Lock()
		expires := r.expires
		r.mu.Unlock()
		wait := time.Until(expires) * 4 / 5
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.conn.Done():
			timer.Stop()
			r.end(fmt.Errorf("%w: %w", ErrRelay, r.conn.closeErr()))
			return
		case <-timer.C:
		}
		for {
			actx, cancel := context.WithTimeout(ctx, r.pool.cfg.TransactionTimeout)
			err := r.auth(actx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if time.Now().After(expires) || r.conn.isClosed() {
				r.end(err)
				return
			}
			r.pool.log.Warn("msrp relay AUTH renewal failed", "relay", r.cfg.URI.String(), "err", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Until(expires)/4+time.Millisecond, 30*time.Second)):
			}
		}
	}
}
