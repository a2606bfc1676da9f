package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Provider is the gateway's MIMI provider: it serves the protocol's
// endpoints to configured peers and carries phone users' messages to the
// rooms they are in.
type Provider struct {
	cfg    Config                 // as started: listener, bucket, outbox
	live   atomic.Pointer[Config] // what Reload may change: peers, served numbers
	domain string
	bus    *bus.Bus
	mls    *mls.Provider
	rooms  *rooms
	server *transport.Server
	client *transport.Client
	log    *slog.Logger
	m      *metrics
	now    func() time.Time

	lookups sync.Map // E.164 number -> lookup
	grants  chan grant
}

// lookup is a remembered identifierQuery answer.
type lookup struct {
	user, peer string // "" when no peer serves the number
	until      time.Time
}

// Option adjusts a Provider.
type Option func(*Provider)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// WithRegistry registers the provider's metrics (and its transport's) on reg.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(p *Provider) { p.m = newMetrics(reg) }
}

// New checks cfg, opens the room bucket and sets up the listener and the
// client for peers. cfg.Domain is the gateway's domain. It starts nothing;
// Run does.
func New(ctx context.Context, cfg Config, b *bus.Bus, m *mls.Provider, opts ...Option) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, domain: strings.ToLower(cfg.Domain), bus: b, mls: m, log: slog.Default(), now: time.Now,
		grants: make(chan grant, grantQueue)}
	p.live.Store(&cfg)
	var reg *prometheus.Registry
	for _, o := range opts {
		o(p)
	}
	if p.m == nil {
		p.m = newMetrics(nil)
	}
	reg = p.m.reg
	rs, err := openRooms(ctx, b, cfg.Bucket)
	if err != nil {
		return nil, err
	}
	p.rooms = rs
	topts := []transport.Option{transport.WithLogger(p.log)}
	if reg != nil {
		topts = append(topts, transport.WithRegistry(reg))
	}
	p.client, err = transport.NewClient(cfg.Config, topts...)
	if err != nil {
		return nil, err
	}
	p.server, err = transport.NewServer(cfg.Config, map[transport.Endpoint]transport.Handler{
		transport.IdentifierQuery: p.identifierQuery,
		transport.KeyMaterial:     p.keyMaterial,
		transport.Notify:          p.notify,
		transport.RequestConsent:  p.requestConsent,
		transport.SubmitMessage:   p.submitMessage,
		transport.Update:          p.update,
	}, topts...)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// conf is the configuration in force.
func (p *Provider) conf() *Config { return p.live.Load() }

// Reload takes from cfg what can change while running: the peers and
// their CAs, the gateway's certificate, the served numbers and whose rooms
// phone users join; answers of peers about numbers are asked again. The
// rest (listener, bucket, outbox, timeouts) keeps its value until a
// restart.
func (p *Provider) Reload(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := p.server.Reload(cfg.Config); err != nil {
		return err
	}
	if err := p.client.Reload(cfg.Config); err != nil {
		return err
	}
	p.live.Store(&cfg)
	p.lookups.Clear()
	p.log.Info("provider configuration reloaded", "peers", len(cfg.Peers), "served", cfg.Served)
	return nil
}

// Listen opens the HTTPS listener (so that a port in use is an error at
// start).
func (p *Provider) Listen() error {
	if err := p.server.Listen(); err != nil {
		return fmt.Errorf("provider.listen: %w", err)
	}
	return nil
}

// Addr is the listener's address, once Listen returned.
func (p *Provider) Addr() string { return p.server.Addr().String() }

// Run serves peers and runs the outbox until ctx ends. Listen must have
// been called.
func (p *Provider) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return p.server.Serve(ctx) })
	eg.Go(func() error { p.sendGrants(ctx); return nil })
	eg.Go(func() error {
		err := p.bus.ConsumeFromPhone(ctx, p.cfg.Consumer, p.cfg.Workers, p.cfg.OutboxAttempts, p.carry)
		if errors.Is(err, bus.ErrClosed) {
			return nil
		}
		return err
	})
	return eg.Wait()
}

// userNumber returns the number of one of this gateway's phone users
// (mimi://<domain>/u/+<digits>) it serves.
func (p *Provider) userNumber(user string) (uri.Number, bool) {
	u, err := uri.ParseMIMI(user)
	if err != nil || u.Kind != uri.User || u.Domain != p.domain {
		return "", false
	}
	n, ok := u.Number()
	if !ok || !p.conf().serves(n) {
		return "", false
	}
	return n, true
}

// isPeer reports whether domain is a configured peer.
func (p *Provider) isPeer(domain string) bool {
	for _, peer := range p.conf().Peers {
		if strings.EqualFold(peer.Domain, domain) {
			return true
		}
	}
	return false
}

// domainOf is the domain of a MIMI URI, "" when it is not one.
func domainOf(s string) string {
	u, err := uri.ParseMIMI(s)
	if err != nil {
		return ""
	}
	return u.Domain
}

// transient reports an error worth trying again later (the bus, another
// instance holding the group, a peer not answering).
func transient(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, mls.ErrLeaseHeld) || errors.Is(err, errPeerUnavailable)
}

var errPeerUnavailable = errors.New("provider: peer unavailable")

// answer turns a handler's outcome into the HTTP answer: a body, or a
// retry for transient trouble, or a client error naming what was wrong.
func answer(status int, body []byte, err error) transport.Response {
	switch {
	case err == nil:
		return transport.Response{Status: status, Body: body}
	case transient(err):
		return transport.Response{Status: http.StatusServiceUnavailable, Body: []byte(err.Error()), RetryAfter: time.Second}
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, mls.ErrMalformed):
		return transport.Response{Status: http.StatusBadRequest, Body: []byte(err.Error())}
	case errors.Is(err, errNoRoom):
		return transport.Response{Status: http.StatusNotFound, Body: []byte(err.Error())}
	case errors.Is(err, errForbidden):
		return transport.Response{Status: http.StatusForbidden, Body: []byte(err.Error())}
	case errors.Is(err, mls.ErrWrongEpoch):
		return transport.Response{Status: http.StatusConflict, Body: []byte(err.Error())}
	}
	return transport.Response{Status: http.StatusUnprocessableEntity, Body: []byte(err.Error())}
}

var errForbidden = errors.New("provider: not allowed")

// exchange is the shape of the endpoints that answer with a structure:
// decode the request, work out the answer, encode it.
func exchange[Req any, Resp interface{ Marshal() ([]byte, error) }](body []byte, decode func([]byte) (Req, error), handle func(Req) (Resp, error)) transport.Response {
	req, err := decode(body)
	if err != nil {
		return answer(0, nil, err)
	}
	resp, err := handle(req)
	if err != nil {
		return answer(0, nil, err)
	}
	b, err := resp.Marshal()
	return answer(http.StatusOK, b, err)
}
