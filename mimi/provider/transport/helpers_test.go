package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// The domains of the tests: the gateway serves, the desktop provider
// calls it, other.test is a second configured peer, stranger.test is not
// configured anywhere.
const (
	gwDomain       = "gw.test"
	desktopDomain  = "desktop.test"
	otherDomain    = "other.test"
	strangerDomain = "stranger.test"
)

// pki is one development CA in a temporary directory, and the
// certificates it issued.
type pki struct {
	t       testing.TB
	caDir   string
	ca      string // ca.pem
	certDir string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := t.TempDir()
	if err := EnsureDevCA(dir); err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, caDir: dir, ca: dir + "/ca.pem", certDir: t.TempDir()}
}

func (p *pki) issue(domain string) (cert, key string) {
	p.t.Helper()
	cert, key, err := IssueCert(p.caDir, domain, p.certDir)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert, key
}

// serverConfig is the gateway's side: desktop.test and other.test are
// its peers, both from the pki's CA.
func serverConfig(p *pki) Config {
	cert, key := p.issue(gwDomain)
	return Config{
		Domain:   gwDomain,
		Listen:   "127.0.0.1:0",
		CertFile: cert,
		KeyFile:  key,
		CAFile:   p.ca,
		Peers: []Peer{
			{Domain: desktopDomain, URL: "https://127.0.0.1:1"},
			{Domain: otherDomain, URL: "https://127.0.0.1:1"},
		},
		RequestTimeout: 5 * time.Second,
	}
}

// startServer runs a Server until the test ends, and checks it then
// shuts down cleanly.
func startServer(t testing.TB, cfg Config, handlers map[Endpoint]Handler, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(cfg, handlers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func baseURL(s *Server) string { return "https://" + s.Addr().String() }

// clientConfig is the desktop provider's side, calling the gateway at
// url, with backoffs short enough not to slow the tests.
func clientConfig(p *pki, url string) Config {
	cert, key := p.issue(desktopDomain)
	return Config{
		Domain:         desktopDomain,
		CertFile:       cert,
		KeyFile:        key,
		CAFile:         p.ca,
		Peers:          []Peer{{Domain: gwDomain, URL: url}},
		RequestTimeout: 5 * time.Second,
		MaxBackoff:     time.Millisecond,
	}
}

func newTestClient(t testing.TB, cfg Config, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rawClient speaks TLS with the given certificate, for requests the
// Client would never send (a wrong From, a wrong Host, another
// certificate).
func rawClient(t *testing.T, certFile, keyFile, rootsFile string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:    roots,
		ServerName: gwDomain,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type rawReq struct {
	method string
	url    string
	host   string // empty: gw.test
	from   string // empty: no From
	body   io.Reader
	// rawPath, when set, goes on the request line as it is, even when
	// it is not a valid URL path.
	rawPath string
}

func rawDo(t *testing.T, c *http.Client, r rawReq) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, r.url, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.rawPath != "" {
		req.URL.Opaque = r.rawPath
	}
	req.Host = gwDomain
	if r.host != "" {
		req.Host = r.host
	}
	if r.from != "" {
		req.Header.Set("From", r.from)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

// recorder is a handler that keeps what it was given and answers with
// the answers it was told, the last one repeating.
type recorder struct {
	calls   atomic.Int64
	last    atomic.Pointer[Request]
	answers []Response
}

func (r *recorder) handle(_ context.Context, req *Request) Response {
	n := r.calls.Add(1)
	r.last.Store(req)
	if len(r.answers) == 0 {
		return Response{Status: http.StatusOK, Body: []byte("ok:" + req.Param)}
	}
	return r.answers[min(int(n), len(r.answers))-1]
}

func allHandlers(h Handler) map[Endpoint]Handler {
	m := make(map[Endpoint]Handler, len(Endpoints))
	for _, e := range Endpoints {
		m[e] = h
	}
	return m
}
