package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/mimigw/mimigw/mimi/internal/stack"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one request from a peer, authenticated.
type Request struct {
	// Peer is the source provider's domain (lower case), proven by its
	// certificate and named by its From header.
	Peer     string
	Endpoint Endpoint
	// Param is the path parameter, percent-decoded: a room or user URI, a
	// domain, or a download URL.
	Param string
	Body  []byte
}

// Response is a handler's answer.
type Response struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Body, when not empty, goes out as application/octet-stream.
	Body []byte
	// RetryAfter, when positive, sets Retry-After in whole seconds
	// (rounded up, at least 1).
	RetryAfter time.Duration
}

// Handler answers one endpoint's requests. A panic is answered with 500.
type Handler func(ctx context.Context, r *Request) Response

// Server answers peers' requests over HTTPS with mutual TLS.
type Server struct {
	cfg       Config
	autoURL   bool                  // PublicURL was not configured: follow the bound address
	trust     atomic.Pointer[trust] // swapped by Reload
	handlers  map[Endpoint]Handler
	log       *slog.Logger
	metrics   *serverMetrics
	srv       *http.Server
	mu        sync.Mutex
	ln        net.Listener
	directory []byte
}

// NewServer checks the configuration, reads the certificates and prepares
// a Server for the handlers. An endpoint without a handler answers 404.
func NewServer(cfg Config, handlers map[Endpoint]Handler, opts ...Option) (*Server, error) {
	autoURL := cfg.PublicURL == ""
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		return nil, bad("listen", "missing (the address to serve peers on)")
	}
	for e := range handlers {
		if !e.Valid() {
			return nil, fmt.Errorf("provider: handler for unknown endpoint %q", e)
		}
	}
	t, err := loadTrust(cfg)
	if err != nil {
		return nil, err
	}
	o := applyOptions(opts)
	s := &Server{
		cfg:      cfg,
		autoURL:  autoURL,
		handlers: make(map[Endpoint]Handler, len(handlers)),
		log:      o.log,
		metrics:  newServerMetrics(o.reg),
	}
	s.trust.Store(t)
	for e, h := range handlers {
		if h != nil {
			s.handlers[e] = h
		}
	}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(s.serveHTTP),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return &s.trust.Load().cert, nil
			},
			// Any certificate passes the handshake: the chain is checked
			// against the CA of the peer it names, which only the HTTP
			// layer can answer about with a reason (403).
			ClientAuth: tls.RequireAnyClientCert,
		},
		ConnContext:       withConnAuth,
		ReadHeaderTimeout: cfg.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Reload takes the peers and the certificates anew from cfg (a renewed
// certificate, a peer added or removed, a CA changed); requests already
// authenticated finish as they began. Every other setting keeps its
// value until a restart, and the domain may not change.
func (s *Server) Reload(cfg Config) error {
	t, err := reloadTrust(cfg, s.trust.Load())
	if err != nil {
		return err
	}
	s.trust.Store(t)
	return nil
}

// Listen binds the configured address. Serve calls it when it has not
// been called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("provider: listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	base := s.cfg.PublicURL
	if s.autoURL {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		base = defaultPublicURL(s.cfg.Listen, s.trust.Load().domain, port)
	}
	s.directory = directoryJSON(base)
	return nil
}

// Addr is the bound address, nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve answers requests until ctx ends, then stops taking connections
// and waits up to RequestTimeout for requests in hand before closing the
// rest. It returns nil after such a shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("provider transport listening", "addr", ln.Addr().String(), "domain", s.trust.Load().domain)
	done := make(chan error, 1)
	go func() { done <- s.srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("provider: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("provider transport: requests still running at shutdown", "err", err)
		_ = s.srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("provider: serve: %w", err)
	}
	return nil
}

// connAuth is one connection's authentication, worked out on its first
// request and reused by the rest until the trust changes (Reload).
type connAuth struct {
	mu      sync.Mutex
	by      *trust // the trust it was worked out with
	domains []string
	err     error
}

type connAuthKey struct{}

func withConnAuth(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connAuthKey{}, &connAuth{})
}

func (s *Server) authConn(r *http.Request) ([]string, error) {
	ca, _ := r.Context().Value(connAuthKey{}).(*connAuth)
	if ca == nil || r.TLS == nil {
		return nil, errors.New("not a TLS connection")
	}
	t := s.trust.Load()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.by != t {
		ca.by = t
		ca.domains, ca.err = t.authenticate(r.TLS.PeerCertificates)
	}
	return ca.domains, ca.err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	label := labelUnknown
	code := http.StatusInternalServerError
	defer func() {
		s.metrics.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
		s.metrics.seconds.WithLabelValues(label).Observe(time.Since(start).Seconds())
	}()
	refuse := func(status int, peer, reason string) {
		code = status
		s.log.Info("provider request refused", "peer", peer, "endpoint", label, "status", status, "reason", reason, "addr", r.RemoteAddr)
		http.Error(w, oneLine(reason), status)
	}

	domains, err := s.authConn(r)
	if err != nil {
		refuse(http.StatusForbidden, "", err.Error())
		return
	}
	path := r.URL.EscapedPath()
	if path == DirectoryPath {
		// Open to any authenticated peer, without the From and Host
		// checks: it is the same for everyone and says nothing secret.
		label = labelDirectory
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			refuse(http.StatusMethodNotAllowed, domains[0], "the directory is read with GET")
			return
		}
		s.mu.Lock()
		d := s.directory
		s.mu.Unlock()
		code = http.StatusOK
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(d)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(d)
		}
		return
	}

	ep, param, perr := parsePath(path)
	if ep.Valid() {
		label = string(ep)
	}
	peer, reason := checkFrom(r.Header.Values("From"), domains)
	if reason != "" {
		refuse(http.StatusForbidden, "", reason)
		return
	}
	if host := hostOnly(r.Host); host != s.trust.Load().domain {
		refuse(http.StatusForbidden, peer, fmt.Sprintf("Host %q is not %s", r.Host, s.trust.Load().domain))
		return
	}
	h := s.handlers[ep]
	switch {
	case errors.Is(perr, errNoRoute), !ep.Valid(), h == nil:
		refuse(http.StatusNotFound, peer, "no such endpoint")
		return
	case r.Method != ep.Method():
		w.Header().Set("Allow", ep.Method())
		refuse(http.StatusMethodNotAllowed, peer, fmt.Sprintf("%s takes %s", ep, ep.Method()))
		return
	case perr != nil:
		refuse(http.StatusBadRequest, peer, perr.Error())
		return
	}

	body, status, err := s.readBody(w, r)
	if err != nil {
		refuse(status, peer, err.Error())
		return
	}
	stack.Reserve()
	resp, ok := s.call(r.Context(), h, &Request{Peer: peer, Endpoint: ep, Param: param, Body: body})
	if !ok {
		refuse(http.StatusInternalServerError, peer, "the handler failed")
		return
	}
	code = resp.Status
	if code == 0 {
		code = http.StatusOK
	}
	if code < 200 || code > 599 {
		s.log.Error("provider handler answered an invalid status", "peer", peer, "endpoint", ep, "status", code)
		refuse(http.StatusInternalServerError, peer, "the handler failed")
		return
	}
	hd := w.Header()
	if resp.RetryAfter > 0 {
		hd.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(resp.RetryAfter), 10))
	}
	if len(resp.Body) > 0 {
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	}
	w.WriteHeader(code)
	if len(resp.Body) > 0 {
		_, _ = w.Write(resp.Body)
	}
}

// readBody reads the request body, never more than MaxBody bytes, within
// RequestTimeout.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	limit := s.cfg.MaxBody
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over %d", r.ContentLength, limit)
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is over %d bytes", limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	}
	return buf.Bytes(), 0, nil
}

// call runs the handler, turning a panic into a logged failure.
func (s *Server) call(ctx context.Context, h Handler, req *Request) (resp Response, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("provider handler panicked", "peer", req.Peer, "endpoint", req.Endpoint, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return h(ctx, req), true
}

// checkFrom reads the From header, which must be mimi@<domain> for one
// of the domains the certificate proved; it returns that domain or why
// not.
func checkFrom(values, domains []string) (string, string) {
	if len(values) != 1 {
		return "", fmt.Sprintf("want one From header, got %d", len(values))
	}
	local, domain, ok := strings.Cut(values[0], "@")
	if !ok || local != "mimi" {
		return "", fmt.Sprintf("From %q is not mimi@<domain>", values[0])
	}
	domain = strings.ToLower(domain)
	for _, d := range domains {
		if d == domain {
			return d, ""
		}
	}
	return "", fmt.Sprintf("From %q names another domain than the certificate (%s)", values[0], strings.Join(domains, ", "))
}

// hostOnly is the Host header's host, lower case, without port or
// trailing dot.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func retryAfterSeconds(d time.Duration) int64 {
	n := int64((d + time.Second - 1) / time.Second)
	return max(n, 1)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
