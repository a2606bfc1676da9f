package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestReachesHandler(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	c := newTestClient(t, clientConfig(p, baseURL(srv)))

	params := []string{
		"mimi://gw.test/r/dm-1",
		"mimi://desktop.test/u/alice",
		"mimi://gw.test/u/+15551234567",
		"https://dl.desktop.test/a b/c?d=e&f=g#h",
		"100% ünïcode: ()!*'~/\\",
		"desktop.test",
	}
	for _, param := range params {
		status, body, err := c.Do(context.Background(), gwDomain, Update, param, []byte{0, 1, 2, 0xff})
		if err != nil || status != http.StatusOK {
			t.Fatalf("Do(%q) = %d, %v", param, status, err)
		}
		if string(body) != "ok:"+param {
			t.Errorf("Do(%q) answered %q", param, body)
		}
		got := rec.last.Load()
		if got.Peer != desktopDomain || got.Endpoint != Update || got.Param != param || !bytes.Equal(got.Body, []byte{0, 1, 2, 0xff}) {
			t.Errorf("handler got %+v, want peer %s, endpoint update, param %q, body 00 01 02 ff", got, desktopDomain, param)
		}
	}

	// proxyDownload is a GET, without body.
	status, body, err := c.Do(context.Background(), gwDomain, ProxyDownload, "https://dl.desktop.test/x", nil)
	if err != nil || status != http.StatusOK || string(body) != "ok:https://dl.desktop.test/x" {
		t.Fatalf("proxyDownload = %d %q, %v", status, body, err)
	}
	if got := rec.last.Load(); got.Endpoint != ProxyDownload || len(got.Body) != 0 {
		t.Errorf("proxyDownload reached the handler as %+v", got)
	}
}

func TestAnswerHeaders(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{answers: []Response{
		{Status: http.StatusCreated},
		{Body: []byte{1}},
		{Status: http.StatusServiceUnavailable, RetryAfter: 1500e6},
		{Status: http.StatusTooManyRequests, RetryAfter: 1},
	}}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	cert, key := p.issue(desktopDomain)
	raw := rawClient(t, cert, key, p.ca)
	url := baseURL(srv) + "/v1/notify/x"
	want := []struct {
		status      int
		contentType string
		retryAfter  string
	}{
		{201, "", ""},
		{200, "application/octet-stream", ""},
		{503, "", "2"},
		{429, "", "1"},
	}
	for i, w := range want {
		status, h, _ := rawDo(t, raw, rawReq{method: "POST", url: url, from: "mimi@" + desktopDomain})
		if status != w.status || h.Get("Content-Type") != w.contentType || h.Get("Retry-After") != w.retryAfter {
			t.Errorf("answer %d: %d, Content-Type %q, Retry-After %q; want %d, %q, %q",
				i, status, h.Get("Content-Type"), h.Get("Retry-After"), w.status, w.contentType, w.retryAfter)
		}
	}
}

// Each of these is refused with 403 before the handler is called.
func TestForbidden(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	url := baseURL(srv) + "/v1/notify/" + EscapeParam("mimi://gw.test/r/dm-1")

	desktopCert, desktopKey := p.issue(desktopDomain)
	otherCert, otherKey := p.issue(otherDomain)
	strangerCert, strangerKey := p.issue(strangerDomain)
	rogue := newPKI(t) // another CA, issuing for a configured peer's name
	rogueCert, rogueKey := rogue.issue(desktopDomain)

	desktop := rawClient(t, desktopCert, desktopKey, p.ca)
	cases := []struct {
		name   string
		client *http.Client
		req    rawReq
		reason string
	}{
		{"certificate for another domain than From", rawClient(t, otherCert, otherKey, p.ca),
			rawReq{from: "mimi@" + desktopDomain}, "another domain than the certificate"},
		{"peer not configured", rawClient(t, strangerCert, strangerKey, p.ca),
			rawReq{from: "mimi@" + strangerDomain}, "names no configured peer"},
		{"certificate from another CA", rawClient(t, rogueCert, rogueKey, p.ca),
			rawReq{from: "mimi@" + desktopDomain}, "does not verify"},
		{"From of another peer", desktop, rawReq{from: "mimi@" + otherDomain}, "another domain"},
		{"From with another user", desktop, rawReq{from: "alice@" + desktopDomain}, "is not mimi@"},
		{"no From", desktop, rawReq{}, "want one From header"},
		{"wrong Host", desktop, rawReq{from: "mimi@" + desktopDomain, host: "elsewhere.test"}, "Host"},
		{"Host of the peer", desktop, rawReq{from: "mimi@" + desktopDomain, host: desktopDomain + ":443"}, "Host"},
		{"directory for a stranger", rawClient(t, strangerCert, strangerKey, p.ca),
			rawReq{method: "GET", url: baseURL(srv) + DirectoryPath}, "names no configured peer"},
	}
	for _, tc := range cases {
		r := tc.req
		if r.method == "" {
			r.method = "POST"
		}
		if r.url == "" {
			r.url = url
		}
		r.body = strings.NewReader("body")
		status, _, body := rawDo(t, tc.client, r)
		if status != http.StatusForbidden || !strings.Contains(body, tc.reason) || strings.Count(body, "\n") != 1 {
			t.Errorf("%s: %d %q, want 403 with one line saying %q", tc.name, status, body, tc.reason)
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times", n)
	}

	// The same client with a right From and Host, the domain's case and a
	// port aside, gets through.
	status, _, body := rawDo(t, desktop, rawReq{method: "POST", url: url, from: "mimi@Desktop.TEST", host: "GW.test:8443"})
	if status != http.StatusOK || rec.calls.Load() != 1 {
		t.Errorf("a right request: %d %q, %d calls", status, body, rec.calls.Load())
	}
}

func TestNotFoundMethodTooLarge(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{}
	cfg := serverConfig(p)
	cfg.MaxBody = 1024
	// No handler for reportAbuse.
	handlers := allHandlers(rec.handle)
	delete(handlers, ReportAbuse)
	srv := startServer(t, cfg, handlers)
	cert, key := p.issue(desktopDomain)
	raw := rawClient(t, cert, key, p.ca)
	from := "mimi@" + desktopDomain
	base := baseURL(srv)

	// A body of unknown length, sent chunked.
	chunked := func(n int) io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, n))) }
	cases := []struct {
		name   string
		req    rawReq
		status int
	}{
		{"unknown endpoint", rawReq{method: "POST", url: base + "/v1/nonsense/x"}, 404},
		{"endpoint without handler", rawReq{method: "POST", url: base + "/v1/reportAbuse/x"}, 404},
		{"no parameter", rawReq{method: "POST", url: base + "/v1/notify/"}, 404},
		{"no version", rawReq{method: "POST", url: base + "/notify/x"}, 404},
		{"root", rawReq{method: "GET", url: base + "/"}, 404},
		{"GET on a POST endpoint", rawReq{method: "GET", url: base + "/v1/notify/x"}, 405},
		{"POST on proxyDownload", rawReq{method: "POST", url: base + "/v1/proxyDownload/x"}, 405},
		{"POST on the directory", rawReq{method: "POST", url: base + DirectoryPath}, 405},
		{"bad percent-encoding", rawReq{method: "POST", url: base, rawPath: "/v1/notify/a%zzb"}, 400},
		{"body over max_body", rawReq{method: "POST", url: base + "/v1/notify/x", body: bytes.NewReader(make([]byte, 1025))}, 413},
		{"chunked body over max_body", rawReq{method: "POST", url: base + "/v1/notify/x", body: chunked(4096)}, 413},
		{"body of max_body", rawReq{method: "POST", url: base + "/v1/notify/x", body: bytes.NewReader(make([]byte, 1024))}, 200},
		{"chunked body of max_body", rawReq{method: "POST", url: base + "/v1/notify/x", body: chunked(1024)}, 200},
	}
	for _, tc := range cases {
		tc.req.from = from
		status, h, body := rawDo(t, raw, tc.req)
		if status != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.name, status, body, tc.status)
		}
		if status == 405 && h.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", tc.name)
		}
	}
	if n := rec.calls.Load(); n != 2 {
		t.Errorf("the handler was called %d times, want 2 (the bodies of max_body)", n)
	}

	// Through the Client: 413 is not tried again.
	c := newTestClient(t, clientConfig(p, base))
	status, _, err := c.Do(context.Background(), gwDomain, Notify, "x", make([]byte, 2048))
	if err != nil || status != http.StatusRequestEntityTooLarge {
		t.Errorf("Client: %d, %v; want 413", status, err)
	}
}

func TestDirectory(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv := startServer(t, serverConfig(p), nil)
	cert, key := p.issue(otherDomain)
	raw := rawClient(t, cert, key, p.ca)
	// Without From and with another Host: the directory is for any
	// authenticated peer.
	status, h, body := rawDo(t, raw, rawReq{method: "GET", url: baseURL(srv) + DirectoryPath, host: "mimi.gw.test"})
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("directory: %d %q %q", status, h.Get("Content-Type"), body)
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	base := baseURL(srv)
	want := map[string]string{
		"keyMaterial":     base + "/v1/keyMaterial/{targetUser}",
		"update":          base + "/v1/update/{roomId}",
		"notify":          base + "/v1/notify/{roomId}",
		"submitMessage":   base + "/v1/submitMessage/{roomId}",
		"groupInfo":       base + "/v1/groupInfo/{roomId}",
		"requestConsent":  base + "/v1/requestConsent/{targetDomain}",
		"updateConsent":   base + "/v1/updateConsent/{requesterDomain}",
		"identifierQuery": base + "/v1/identifierQuery/{domain}",
		"reportAbuse":     base + "/v1/reportAbuse/{roomId}",
		"proxyDownload":   base + "/v1/proxyDownload/{downloadUrl}",
	}
	if len(d) != len(want) {
		t.Errorf("directory has %d entries, want %d: %v", len(d), len(want), d)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("directory[%s] = %q, want %q", k, d[k], v)
		}
	}
}

func TestDirectoryPublicURL(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cfg := serverConfig(p)
	cfg.PublicURL = "https://mimi.gw.test/"
	srv := startServer(t, cfg, nil)
	cert, key := p.issue(desktopDomain)
	_, _, body := rawDo(t, rawClient(t, cert, key, p.ca), rawReq{method: "GET", url: baseURL(srv) + DirectoryPath})
	if !strings.Contains(body, `"notify":"https://mimi.gw.test/v1/notify/{roomId}"`) {
		t.Errorf("directory %s does not use public_url", body)
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	var calls atomic.Int64
	h := func(_ context.Context, r *Request) Response {
		if calls.Add(1) == 1 {
			panic("handler bug")
		}
		return Response{Status: http.StatusCreated}
	}
	reg := prometheus.NewRegistry()
	srv := startServer(t, serverConfig(p), map[Endpoint]Handler{Notify: h}, WithRegistry(reg))
	ccfg := clientConfig(p, baseURL(srv))
	ccfg.Attempts = 1 // see the 500 itself
	c := newTestClient(t, ccfg, WithRegistry(reg))

	status, _, err := c.Do(context.Background(), gwDomain, Notify, "r", []byte("x"))
	if status != http.StatusInternalServerError || err == nil {
		t.Fatalf("panicking handler: %d, %v; want 500 and gave up", status, err)
	}
	status, _, err = c.Do(context.Background(), gwDomain, Notify, "r", []byte("x"))
	if status != http.StatusCreated || err != nil {
		t.Fatalf("after the panic: %d, %v; want 201", status, err)
	}
	if n := testutil.ToFloat64(srv.metrics.requests.WithLabelValues("notify", "500")); n != 1 {
		t.Errorf("requests{notify,500} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(srv.metrics.requests.WithLabelValues("notify", "201")); n != 1 {
		t.Errorf("requests{notify,201} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(c.metrics.requests.WithLabelValues(gwDomain, "notify", outcomeGaveUp)); n != 1 {
		t.Errorf("outbound{gave_up} = %v, want 1", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s, err := NewServer(serverConfig(p), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Errorf("Addr before Listen = %v", s.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}
