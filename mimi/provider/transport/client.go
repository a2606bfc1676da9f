package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Errors callers branch on; Do wraps them.
var (
	// ErrUnknownPeer: the domain is not one of the configured peers.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrGaveUp: every attempt met a network error, 429 or 5xx.
	ErrGaveUp = errors.New("gave up")
	// ErrNoRoute: the peer's directory could not be had, or lists no URL
	// for the endpoint.
	ErrNoRoute = errors.New("no route")
)

// directoryTTL is how long a peer's directory is used before it is read
// again (a 404 from the peer also sends for it again).
const directoryTTL = time.Hour

// baseBackoff is the wait after the first failed attempt; it doubles with
// each further one, up to MaxBackoff.
const baseBackoff = 500 * time.Millisecond

// Client sends requests to peers over HTTPS with mutual TLS. It is safe
// for concurrent use.
type Client struct {
	cfg     Config
	trust   atomic.Pointer[trust]                  // swapped by Reload
	peers   atomic.Pointer[map[string]*peerClient] // swapped by Reload
	log     *slog.Logger
	metrics *clientMetrics
	now     func() time.Time // the directories' age; tests move it
}

// peerClient is one peer: its connections and its cached directory.
type peerClient struct {
	domain  string
	dirURL  string
	http    *http.Client
	fetches singleflight.Group

	mu      sync.Mutex
	dir     directory
	fetched time.Time
}

// NewClient checks the configuration and reads the certificates.
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := loadTrust(cfg)
	if err != nil {
		return nil, err
	}
	o := applyOptions(opts)
	c := &Client{
		cfg:     cfg,
		log:     o.log,
		metrics: newClientMetrics(o.reg),
		now:     time.Now,
	}
	c.trust.Store(t)
	c.setPeers(t)
	return c, nil
}

// setPeers makes a connection pool and directory cache for each peer of t.
func (c *Client) setPeers(t *trust) {
	peers := make(map[string]*peerClient, len(t.peers))
	for d, p := range t.peers {
		peers[d] = &peerClient{
			domain: d,
			dirURL: strings.TrimRight(p.url, "/") + DirectoryPath,
			http:   &http.Client{Transport: c.transport(p), CheckRedirect: noRedirects},
		}
	}
	c.peers.Store(&peers)
}

// Reload takes the peers and the certificates anew from cfg. Requests in
// flight finish with what they started with; the old peers' idle
// connections are closed. Every other setting keeps its value until a
// restart, and the domain may not change.
func (c *Client) Reload(cfg Config) error {
	t, err := reloadTrust(cfg, c.trust.Load())
	if err != nil {
		return err
	}
	old := *c.peers.Load()
	c.trust.Store(t)
	c.setPeers(t)
	for _, p := range old {
		p.http.CloseIdleConnections()
	}
	return nil
}

// transport dials whatever host and port the peer's URLs name, but
// accepts only a certificate for the peer's domain from the peer's CA.
// Proxies from the environment are not used: the peers are configured
// here, not there.
func (c *Client) transport(p *peerTrust) *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{Timeout: c.cfg.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    p.roots,
			ServerName: p.domain,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &c.trust.Load().cert, nil
			},
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    c.cfg.RequestTimeout,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// A redirect would carry our From to a URL the directory did not name.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Peers lists the configured peers' domains, sorted.
func (c *Client) Peers() []string {
	peers := *c.peers.Load()
	out := make([]string, 0, len(peers))
	for d := range peers {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Close drops the idle connections. The Client still works afterwards.
func (c *Client) Close() {
	for _, p := range *c.peers.Load() {
		p.http.CloseIdleConnections()
	}
}

// Do sends body to the peer's endpoint with param as the path parameter,
// and returns the answer's status and body. A 429, a 5xx or a network
// error is tried again, up to Attempts times; any other status is
// returned at once with a nil error, whatever it is. When the attempts
// run out the last status (0 for a network error) and body come back with
// an error wrapping ErrGaveUp; when ctx ends first, with one wrapping
// ctx's error.
func (c *Client) Do(ctx context.Context, peer string, ep Endpoint, param string, body []byte) (status int, resp []byte, err error) {
	p, ok := (*c.peers.Load())[strings.ToLower(peer)]
	if !ok {
		return 0, nil, fmt.Errorf("provider: %s: %w %q", ep, ErrUnknownPeer, peer)
	}
	outcome, label := outcomeCanceled, string(ep)
	if !ep.Valid() {
		label = labelUnknown // the label set stays bounded
	}
	defer func() { c.metrics.requests.WithLabelValues(p.domain, label, outcome).Inc() }()
	if !ep.Valid() {
		outcome = outcomeBadInput
		return 0, nil, fmt.Errorf("provider: %s to %s: unknown endpoint", ep, p.domain)
	}
	if ep.Method() == http.MethodGet && len(body) > 0 {
		outcome = outcomeBadInput
		return 0, nil, fmt.Errorf("provider: %s to %s: a GET takes no body", ep, p.domain)
	}

	refetched := false
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return status, resp, c.stopped(p, ep, last, err)
		}
		var a result
		u, fresh, derr := c.endpointURL(ctx, p, ep, param)
		if derr == nil {
			a = c.attempt(ctx, p, ep, u, body)
			// A 404 from a URL of a directory read earlier may mean the
			// peer has moved the endpoint: read the directory again and,
			// if the URL changed, go there at once.
			if a.err == nil && a.status == http.StatusNotFound && !fresh && !refetched {
				refetched = true
				p.invalidate()
				if u2, _, err := c.endpointURL(ctx, p, ep, param); err == nil && u2 != u {
					a = c.attempt(ctx, p, ep, u2, body)
				}
			}
		} else {
			if err := ctx.Err(); err != nil {
				return status, resp, c.stopped(p, ep, last, err)
			}
			var te *tempError
			if !errors.As(derr, &te) {
				outcome = outcomeNoRoute
				return 0, nil, fmt.Errorf("provider: %s to %s: %w", ep, p.domain, derr)
			}
			a = result{err: derr, retryAfter: te.retryAfter}
		}
		status, resp = a.status, a.body
		if a.final {
			if a.err != nil {
				outcome = outcomeRefused
				return status, resp, fmt.Errorf("provider: %s to %s: %w", ep, p.domain, a.err)
			}
			outcome = outcomeOK
			if status < 200 || status > 299 {
				outcome = outcomeRefused
			}
			return status, resp, nil
		}
		last = a.err
		if attempt >= c.cfg.Attempts {
			outcome = outcomeGaveUp
			c.log.Warn("provider request failed", "peer", p.domain, "endpoint", ep, "attempts", attempt, "err", last)
			return status, resp, fmt.Errorf("provider: %s to %s: %w after %d attempts: %w", ep, p.domain, ErrGaveUp, attempt, last)
		}
		wait := c.backoff(attempt)
		if a.retryAfter >= 0 {
			wait = min(a.retryAfter, c.cfg.MaxBackoff)
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Add(wait).Before(dl) {
			return status, resp, c.stopped(p, ep, last, context.DeadlineExceeded)
		}
		c.log.Debug("provider request to retry", "peer", p.domain, "endpoint", ep, "attempt", attempt, "err", last, "retry_in", wait)
		if err := sleep(ctx, wait); err != nil {
			return status, resp, c.stopped(p, ep, last, err)
		}
	}
}

func (c *Client) stopped(p *peerClient, ep Endpoint, last, ctxErr error) error {
	if last != nil {
		return fmt.Errorf("provider: %s to %s: stopped (last attempt: %v): %w", ep, p.domain, last, ctxErr)
	}
	return fmt.Errorf("provider: %s to %s: %w", ep, p.domain, ctxErr)
}

// result is one attempt's outcome. final: do not try again (a status to
// hand back, or an error that another attempt would repeat).
type result struct {
	status     int
	body       []byte
	retryAfter time.Duration // -1: none given
	err        error
	final      bool
}

// attempt sends the request once, within RequestTimeout.
func (c *Client) attempt(ctx context.Context, p *peerClient, ep Endpoint, u string, body []byte) result {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if ep.Method() == http.MethodPost {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, ep.Method(), u, rd)
	if err != nil {
		return result{err: err, final: true, retryAfter: -1}
	}
	c.setHeaders(req, p)
	req.Header.Set("Content-Type", "application/octet-stream")
	a := c.exchange(p, req)
	code := "error"
	if a.err == nil || a.status != 0 {
		code = strconv.Itoa(a.status)
	}
	c.metrics.attempts.WithLabelValues(p.domain, string(ep), code).Inc()
	c.metrics.seconds.WithLabelValues(p.domain, string(ep)).Observe(time.Since(start).Seconds())
	return a
}

func (c *Client) setHeaders(req *http.Request, p *peerClient) {
	req.Host = p.domain
	req.Header.Set("From", "mimi@"+c.trust.Load().domain)
}

// exchange sends req and reads the answer, at most MaxBody bytes of it.
func (c *Client) exchange(p *peerClient, req *http.Request) result {
	res, err := p.http.Do(req)
	if err != nil {
		return result{err: err, retryAfter: -1}
	}
	defer res.Body.Close()
	a := result{status: res.StatusCode, retryAfter: -1}
	if res.ContentLength > c.cfg.MaxBody {
		a.err, a.final = fmt.Errorf("answer of %d bytes is over max_body %d", res.ContentLength, c.cfg.MaxBody), true
		return a
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, c.cfg.MaxBody+1))
	switch {
	case err != nil:
		a.err = fmt.Errorf("status %d, reading the answer: %w", res.StatusCode, err)
		return a
	case int64(len(b)) > c.cfg.MaxBody:
		a.err, a.final = fmt.Errorf("answer is over max_body %d bytes", c.cfg.MaxBody), true
		return a
	}
	if len(b) > 0 {
		a.body = b
	}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		a.err = fmt.Errorf("status %d", res.StatusCode)
		if d, ok := parseRetryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
			a.retryAfter = d
		}
		return a
	}
	a.final = true
	return a
}

// tempError is a failure to read a directory that another attempt may not
// meet.
type tempError struct {
	err        error
	retryAfter time.Duration
}

func (e *tempError) Error() string { return e.err.Error() }
func (e *tempError) Unwrap() error { return e.err }

// endpointURL is the endpoint's URL at the peer for param, from the
// cached directory or a fresh one (fresh then true).
func (c *Client) endpointURL(ctx context.Context, p *peerClient, ep Endpoint, param string) (string, bool, error) {
	p.mu.Lock()
	d, at := p.dir, p.fetched
	p.mu.Unlock()
	fresh := false
	if d == nil || c.now().Sub(at) >= directoryTTL {
		ch := p.fetches.DoChan("", func() (any, error) {
			// Shared by every caller waiting for it, so no one caller's
			// cancellation ends it; RequestTimeout does.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
			defer cancel()
			return c.fetchDirectory(fctx, p)
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				return "", false, r.Err
			}
			d = r.Val.(directory)
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
		fresh = true
	}
	t, ok := d[ep]
	if !ok {
		return "", fresh, fmt.Errorf("%w: the directory of %s lists no %s", ErrNoRoute, p.domain, ep)
	}
	u, err := expand(t, param)
	if err != nil {
		return "", fresh, fmt.Errorf("%w: %v", ErrNoRoute, err)
	}
	return u, fresh, nil
}

// fetchDirectory reads the peer's directory and caches it.
func (c *Client) fetchDirectory(ctx context.Context, p *peerClient) (directory, error) {
	d, err := c.readDirectory(ctx, p)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		c.log.Warn("provider directory unavailable", "peer", p.domain, "url", p.dirURL, "err", err)
	}
	c.metrics.directories.WithLabelValues(p.domain, outcome).Inc()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.dir, p.fetched = d, c.now()
	p.mu.Unlock()
	return d, nil
}

func (c *Client) readDirectory(ctx context.Context, p *peerClient) (directory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.dirURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: directory %s: %v", ErrNoRoute, p.dirURL, err)
	}
	c.setHeaders(req, p)
	req.Header.Set("Accept", "application/json")
	a := c.exchange(p, req)
	switch {
	case a.err != nil && !a.final:
		return nil, &tempError{err: fmt.Errorf("directory %s: %w", p.dirURL, a.err), retryAfter: a.retryAfter}
	case a.err != nil:
		return nil, fmt.Errorf("%w: directory %s: %v", ErrNoRoute, p.dirURL, a.err)
	case a.status != http.StatusOK:
		return nil, fmt.Errorf("%w: directory %s: status %d", ErrNoRoute, p.dirURL, a.status)
	}
	if len(a.body) > maxDirectory {
		return nil, fmt.Errorf("%w: directory %s: over %d bytes", ErrNoRoute, p.dirURL, maxDirectory)
	}
	d, err := parseDirectory(a.body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoRoute, p.dirURL, err)
	}
	return d, nil
}

// invalidate makes the next request read the directory again.
func (p *peerClient) invalidate() {
	p.mu.Lock()
	p.fetched = time.Time{}
	p.mu.Unlock()
}
