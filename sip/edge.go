package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/answers"
	"github.com/mimigw/mimigw/sip/msrp"
)

// Edge is the SIP edge: listeners for UDP, TCP and TLS that hand what RCS
// users send to a gateway.Receiver, and the gateway.RCSSender that sends to
// them through the outbound proxy.
type Edge struct {
	cfg         Config
	recv        gateway.Receiver
	log         *slog.Logger
	m           *metrics
	cache       *answers.Cache
	trustedNets []netip.Prefix
	digest      *digestAuth
	proxy       proxy
	advHost     string
	parser      *sip.Parser
	serverTLS   *tls.Config
	revokeBody  *revokeTemplate

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client

	// slots bounds the requests being handled at once, gate the calls into
	// the gateway.
	slots chan struct{}
	gate  chan struct{}

	// MSRP sessions opened by INVITE (session.go); nil pool and dialogs
	// when listen.msrp is empty. Set by listen before any request is
	// served.
	pool     *msrp.Pool
	dialogs  *sipgo.DialogServerCache
	answered sync.Map // dialog ID -> *sessionDialog, sessions past their 200
	msrpHost string
	msrpPort int
	// msrps: our URI's host and port on listen.msrps and the fingerprint
	// of the certificate it presents; zero port when listen.msrps is
	// empty.
	msrpsHost string
	msrpsPort int
	msrpsFP   msrp.Fingerprint
	// relay is sessions.relay as last AUTHed to (relayFor).
	relayMu  sync.Mutex
	relay    *msrp.Relay
	sessions sync.WaitGroup // one per session past its 200
	// inbound counts the sessions phones opened, from the INVITE that
	// gets one to its end, for sessions.max_inbound.
	inbound atomic.Int64
	// chats are the chat sessions the edge opens toward phones (chat.go).
	chats *chatTable
	// testHookInvite, when set, runs before a session's 200 is sent, with
	// a context that ends when the INVITE is cancelled (guarded by mu).
	testHookInvite func(context.Context)
	// bindTimeout is how long a session waits for its MSRP side to bind
	// (guarded by mu).
	bindTimeout time.Duration

	mu       sync.Mutex
	udp      map[string]net.PacketConn // listener by local address
	bound    map[string]net.Addr       // transport ("udp", "tcp", "tls", "msrp", "msrps") -> address
	ready    bool
	closing  bool
	handlers sync.WaitGroup
	ctx      context.Context // handlers' context
}

var _ gateway.RCSSender = (*Edge)(nil)

// errNotReady is what Ready says before the listeners are up or after Run
// ended.
var errNotReady = errors.New("sip: listeners not up")

// NewEdge checks cfg and prepares the edge; Run starts it. recv takes what
// arrives; metrics go to reg (nil: none).
func NewEdge(cfg Config, recv gateway.Receiver, log *slog.Logger, reg *prometheus.Registry) (*Edge, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	e := &Edge{
		cfg:   cfg,
		recv:  recv,
		log:   log.With("edge", "sip"),
		cache: answers.New(cfg.AnswerCache.TTL, cfg.AnswerCache.MaxEntries),
		slots: make(chan struct{}, cfg.MaxInFlight),
		gate:  make(chan struct{}, cfg.ReceiveConcurrency),
		udp:   map[string]net.PacketConn{},
		bound: map[string]net.Addr{},
		ctx:   context.Background(),
		chats: newChatTable(),

		bindTimeout: bindTimeout,
	}
	var err error
	if e.m, err = newMetrics(reg, e.cache); err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	for _, s := range cfg.Trusted.CIDRs {
		e.trustedNets = append(e.trustedNets, netip.MustParsePrefix(s).Masked()) // validated
	}
	e.proxy, _ = parseProxy(cfg.OutboundProxy) // validated
	if cfg.Digest.Enabled {
		users := map[string]digestUser{}
		for i, u := range cfg.Digest.Users {
			pw, err := readSecret(u.PasswordFile, u.PasswordEnv)
			if err != nil {
				return nil, fmt.Errorf("sip.digest.users[%d]: %w", i, err)
			}
			n, _ := uri.ParseNumber(u.Number, cfg.DefaultRegion) // validated
			users[u.Username] = digestUser{password: pw, number: n}
		}
		if e.digest, err = newDigestAuth(users); err != nil {
			return nil, err
		}
	}
	if e.revokeBody, err = loadRevokeTemplate(cfg.RevokeTemplateFile); err != nil {
		return nil, fmt.Errorf("sip.revoke_template_file: %w", err)
	}
	clientTLS, err := e.tlsConfigs()
	if err != nil {
		return nil, err
	}
	e.advHost = advertisedHost(cfg)

	// Over TCP and TLS the framer (framing.go) takes out bodies over
	// MaxBody before the parser sees them; the parser's own bound leaves
	// room for the headers.
	e.parser = sip.NewParser()
	e.parser.MaxMessageLength = cfg.MaxBody + 16<<10
	sipgoLog := slog.New(redactData{e.log.Handler()})
	e.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("mimigw"),
		sipgo.WithUserAgentHostname(cfg.Domain),
		sipgo.WithUserAgentParser(e.parser),
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipgoLog),
			sip.WithTransportLayerReadFilter(e.readFilter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipgoLog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	if e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(sipgoLog)); err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	e.srv.OnNoRoute(e.onRequest)
	if e.cli, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(sipgoLog), sipgo.WithClientHostname(e.advHost)); err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	return e, nil
}

// tlsConfigs builds the server side (our certificate; client certificates
// verified against the CA when given) and the client side used toward a
// TLS outbound proxy.
func (e *Edge) tlsConfigs() (*tls.Config, error) {
	cfg := e.cfg.TLS
	var pool *x509.CertPool
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sip.tls.ca_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sip.tls.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	client := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sip.tls: load cert_file/key_file: %w", err)
		}
		client.Certificates = []tls.Certificate{cert}
		e.serverTLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
		}
		if pool == nil {
			e.serverTLS.ClientAuth = tls.NoClientCert
		}
	}
	return client, nil
}

func advertisedHost(cfg Config) string {
	if cfg.Advertise != "" {
		hp, _ := parseHostPort(cfg.Advertise)
		return hp.host
	}
	for _, a := range []string{cfg.Listen.UDP, cfg.Listen.TCP, cfg.Listen.TLS} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			return h
		}
	}
	return "127.0.0.1"
}

// Run binds the listeners and serves until ctx is cancelled or a listener
// fails. On the way out it stops taking requests (UDP ones are dropped, to
// be retransmitted to another instance; TCP and TLS ones get 503), lets
// the requests being handled get their answers (each is bounded by
// timeouts.receive), then closes the listeners and connections.
func (e *Edge) Run(ctx context.Context) error {
	serve, closers, err := e.listen()
	if err != nil {
		return err
	}
	e.mu.Lock()
	// Handlers outlive ctx by design: a request being handled at shutdown
	// still gets its answer.
	e.ctx = context.WithoutCancel(ctx)
	e.ready = true
	e.mu.Unlock()
	for _, a := range e.boundAddrs() {
		e.log.Info("sip: listening", "transport", a[0], "addr", a[1])
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, s := range serve {
		g.Go(func() error {
			err := s()
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sip: serve: %w", err)
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		e.mu.Lock()
		e.ready = false
		e.closing = true
		e.mu.Unlock()
		e.handlers.Wait()
		// Chat sessions toward phones end with our BYE while the SIP
		// connections are still up.
		e.chats.close()
		if e.pool != nil {
			// Sessions end with a BYE each (bounded by timeouts.request)
			// while the SIP connections are still up.
			e.pool.Close()
			e.sessions.Wait()
		}
		for _, c := range closers {
			c.Close()
		}
		return nil
	})
	err = g.Wait()
	e.ua.Close()
	return err
}

// listen binds every configured transport; on failure it releases what it
// bound.
func (e *Edge) listen() (serve []func() error, closers []interface{ Close() error }, err error) {
	defer func() {
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
		}
	}()
	if a := e.cfg.Listen.UDP; a != "" {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return nil, closers, fmt.Errorf("sip: listen udp %s: %w", a, err)
		}
		closers = append(closers, pc)
		if uc, ok := pc.(*net.UDPConn); ok {
			// Best effort: the kernel caps what it grants.
			if err := uc.SetReadBuffer(e.cfg.UDPBuffer); err != nil {
				e.log.Warn("sip: udp read buffer", "bytes", e.cfg.UDPBuffer, "err", err)
			}
			if err := uc.SetWriteBuffer(e.cfg.UDPBuffer); err != nil {
				e.log.Warn("sip: udp write buffer", "bytes", e.cfg.UDPBuffer, "err", err)
			}
		}
		e.mu.Lock()
		e.udp[pc.LocalAddr().String()] = pc
		e.bound["udp"] = pc.LocalAddr()
		e.mu.Unlock()
		serve = append(serve, func() error { return e.srv.ServeUDP(pc) })
	}
	if a := e.cfg.Listen.TCP; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return nil, closers, fmt.Errorf("sip: listen tcp %s: %w", a, err)
		}
		closers = append(closers, l)
		e.setBound("tcp", l.Addr())
		fl := e.framed(l, "TCP")
		serve = append(serve, func() error { return e.srv.ServeTCP(fl) })
	}
	if a := e.cfg.Listen.TLS; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return nil, closers, fmt.Errorf("sip: listen tls %s: %w", a, err)
		}
		closers = append(closers, l)
		e.setBound("tls", l.Addr())
		tl := e.framed(tls.NewListener(l, e.serverTLS), "TLS")
		serve = append(serve, func() error { return e.srv.ServeTLS(tl) })
	}
	if e.cfg.Listen.MSRP != "" {
		l, tl, err := e.listenMSRP()
		if err != nil {
			return nil, closers, err
		}
		closers = append(closers, l, e.pool)
		if _, err := e.relayFor(context.Background()); err != nil {
			// Each new session tries again; until the relay answers,
			// sessions cannot be set up (INVITEs get 503, messages to
			// phones go by pager mode).
			e.log.Warn("sip: msrp relay not reached; sessions wait for it", "err", err)
		}
		// Serve and ServeTLS return once their listener is closed.
		serve = append(serve, func() error { return e.pool.Serve(context.Background(), l) })
		if tl != nil {
			closers = append(closers, tl)
			serve = append(serve, func() error { return e.pool.ServeTLS(context.Background(), tl) })
		}
	}
	return serve, closers, nil
}

func (e *Edge) setBound(transport string, a net.Addr) {
	e.mu.Lock()
	e.bound[transport] = a
	e.mu.Unlock()
}

func (e *Edge) boundAddrs() [][2]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][2]string
	for _, t := range []string{"udp", "tcp", "tls", "msrp", "msrps"} {
		if a, ok := e.bound[t]; ok {
			out = append(out, [2]string{t, a.String()})
		}
	}
	return out
}

// Ready reports whether the listeners are up (for /readyz).
func (e *Edge) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.ready {
		return errNotReady
	}
	return nil
}

// Addr returns the address a transport ("udp", "tcp", "tls", "msrp", "msrps") is bound to,
// or nil before Run bound it. With port 0 in the configuration this is how
// the chosen port is found.
func (e *Edge) Addr(transport string) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bound[transport]
}

// advertisedPort is the port of our Via/Contact for a transport.
func (e *Edge) advertisedPort(transport string) int {
	if e.cfg.Advertise != "" {
		if hp, _ := parseHostPort(e.cfg.Advertise); hp.port != 0 {
			return hp.port
		}
	}
	if a := e.Addr(transport); a != nil {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			n, _ := strconv.Atoi(p)
			return n
		}
	}
	return 0
}

// enter registers a request handler, unless the edge is shutting down.
func (e *Edge) enter() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return nil, false
	}
	e.handlers.Add(1)
	return e.ctx, true
}

func (e *Edge) exit() { e.handlers.Done() }

// redactData drops the "data" attribute sipgo puts raw SIP messages (with
// their bodies) in when it logs parse failures: message bodies never go to
// the log.
type redactData struct{ h slog.Handler }

func (r redactData) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }
func (r redactData) WithAttrs(a []slog.Attr) slog.Handler           { return redactData{r.h.WithAttrs(a)} }
func (r redactData) WithGroup(n string) slog.Handler                { return redactData{r.h.WithGroup(n)} }
func (r redactData) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key != "data" {
			out.AddAttrs(a)
		}
		return true
	})
	return r.h.Handle(ctx, out)
}
