package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClientRetries(t *testing.T) {
	t.Parallel()
	busy := Response{Status: http.StatusServiceUnavailable, RetryAfter: time.Second}
	cases := []struct {
		name     string
		answers  []Response
		attempts int
		status   int
		calls    int64
		gaveUp   bool
	}{
		{"503 with Retry-After, then success", []Response{busy, busy, {Status: 201}}, 5, 201, 3, false},
		{"429, then success", []Response{{Status: 429}, {Body: []byte("x")}}, 5, 200, 2, false},
		{"500 until the attempts run out", []Response{{Status: 500}}, 3, 500, 3, true},
		{"503 with Retry-After until the attempts run out", []Response{busy}, 4, 503, 4, true},
		{"400 is not tried again", []Response{{Status: 400, Body: []byte("bad")}}, 5, 400, 1, false},
		{"409 is not tried again", []Response{{Status: 409}}, 5, 409, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			rec := &recorder{answers: tc.answers}
			srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
			cfg := clientConfig(p, baseURL(srv))
			cfg.Attempts = tc.attempts
			// Retry-After says 1s; max_backoff caps it at 1ms.
			c := newTestClient(t, cfg)
			status, _, err := c.Do(context.Background(), gwDomain, Notify, "mimi://gw.test/r/dm-1", []byte("fanout"))
			if status != tc.status || rec.calls.Load() != tc.calls {
				t.Errorf("status %d after %d calls, want %d after %d", status, rec.calls.Load(), tc.status, tc.calls)
			}
			if tc.gaveUp != errors.Is(err, ErrGaveUp) || (!tc.gaveUp && err != nil) {
				t.Errorf("err = %v, want gave up: %v", err, tc.gaveUp)
			}
		})
	}
}

func TestClientNetworkErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	// A port with nothing behind it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := clientConfig(p, "https://"+addr)
	cfg.Attempts = 3
	c := newTestClient(t, cfg)
	status, _, err := c.Do(context.Background(), gwDomain, Notify, "r", nil)
	if status != 0 || !errors.Is(err, ErrGaveUp) {
		t.Errorf("Do = %d, %v; want 0 and gave up", status, err)
	}
	if n := testutil.ToFloat64(c.metrics.directories.WithLabelValues(gwDomain, "error")); n != 3 {
		t.Errorf("directory fetches that failed: %v, want 3", n)
	}
}

func TestClientVerifiesServer(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	other := newPKI(t)
	cfg := clientConfig(p, baseURL(srv))
	cfg.Peers[0].CAFile = other.ca // trusts another CA for gw.test
	cfg.Attempts = 2
	c := newTestClient(t, cfg)
	_, _, err := c.Do(context.Background(), gwDomain, Notify, "r", nil)
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Do against a server from another CA: %v", err)
	}
	if rec.calls.Load() != 0 {
		t.Error("the handler was called")
	}
}

func TestClientStopsWithContext(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{answers: []Response{{Status: 503, RetryAfter: 30 * time.Second}}}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	cfg := clientConfig(p, baseURL(srv))
	cfg.MaxBackoff = time.Minute
	c := newTestClient(t, cfg)

	// The next attempt would come 30s later, past the deadline: Do
	// returns at once instead of sleeping into it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, _, err := c.Do(ctx, gwDomain, Notify, "r", nil)
	if status != 503 || !errors.Is(err, context.DeadlineExceeded) || rec.calls.Load() != 1 {
		t.Errorf("Do = %d, %v after %d calls; want 503, deadline exceeded, 1 call", status, err, rec.calls.Load())
	}

	// An ended context sends nothing.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.Do(ctx, gwDomain, Notify, "r", nil); !errors.Is(err, context.Canceled) || rec.calls.Load() != 1 {
		t.Errorf("Do with a canceled context = %v after %d calls", err, rec.calls.Load())
	}
}

func TestClientBadCalls(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cfg := clientConfig(p, "https://127.0.0.1:1")
	cfg.Peers = append(cfg.Peers, Peer{Domain: "b.test", URL: "https://127.0.0.1:1"}, Peer{Domain: "A.test", URL: "https://127.0.0.1:1"})
	c := newTestClient(t, cfg)
	if got, want := c.Peers(), []string{"a.test", "b.test", gwDomain}; !slices.Equal(got, want) {
		t.Errorf("Peers() = %v, want %v", got, want)
	}
	_, _, err := c.Do(context.Background(), "nowhere.test", Notify, "r", nil)
	if !errors.Is(err, ErrUnknownPeer) || !strings.Contains(err.Error(), "nowhere.test") {
		t.Errorf("unknown peer: %v", err)
	}
	if _, _, err := c.Do(context.Background(), gwDomain, "nonsense", "r", nil); err == nil {
		t.Error("an unknown endpoint went out")
	}
	if _, _, err := c.Do(context.Background(), gwDomain, ProxyDownload, "r", []byte("x")); err == nil {
		t.Error("a GET with a body went out")
	}
}

// fakeClock is the Client's clock in tests that must see an hour pass.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestDirectoryCachedForAnHour(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	rec := &recorder{}
	srv := startServer(t, serverConfig(p), allHandlers(rec.handle))
	c := newTestClient(t, clientConfig(p, baseURL(srv)))
	clock := &fakeClock{t: time.Now()}
	c.now = clock.now
	fetches := func() float64 { return testutil.ToFloat64(c.metrics.directories.WithLabelValues(gwDomain, "ok")) }

	do := func() {
		t.Helper()
		if status, _, err := c.Do(context.Background(), gwDomain, Notify, "r", nil); status != 200 || err != nil {
			t.Fatalf("Do = %d, %v", status, err)
		}
	}
	do()
	clock.add(59 * time.Minute)
	do()
	if n := fetches(); n != 1 {
		t.Errorf("directory read %v times within the hour, want 1", n)
	}
	clock.add(time.Minute)
	do()
	if n := fetches(); n != 2 {
		t.Errorf("directory read %v times after an hour, want 2", n)
	}
}

// A peer moves its endpoints: the directory at its base URL now names
// another server. The URL cached from the old directory answers 404, and
// the Client reads the directory again and goes to the new one.
func TestDirectoryRefetchAfter404(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	moved := &recorder{}
	newHome := startServer(t, serverConfig(p), allHandlers(moved.handle))

	// The old server at the base URL serves only the directory.
	oldCfg := serverConfig(p)
	old, err := NewServer(oldCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := old.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- old.Serve(ctx) }()

	c := newTestClient(t, clientConfig(p, "https://"+addr))
	fetches := func() float64 { return testutil.ToFloat64(c.metrics.directories.WithLabelValues(gwDomain, "ok")) }
	status, _, err := c.Do(context.Background(), gwDomain, Notify, "r", nil)
	if status != http.StatusNotFound || err != nil || fetches() != 1 {
		t.Fatalf("before the move: %d, %v after %v directory reads; want 404 after 1", status, err, fetches())
	}
	// A 404 after a fresh directory is final: nothing read again.
	status, _, _ = c.Do(context.Background(), gwDomain, Notify, "r", nil)
	if status != http.StatusNotFound || fetches() != 2 {
		t.Fatalf("a second 404: %d after %v directory reads; want 404 after 2 (one more, as the directory was cached)", status, fetches())
	}

	// Restart the base URL's server with a directory pointing at the new
	// home.
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	movedCfg := serverConfig(p)
	movedCfg.Listen = addr
	movedCfg.PublicURL = baseURL(newHome)
	startServer(t, movedCfg, nil)

	status, body, err := c.Do(context.Background(), gwDomain, Notify, "r", nil)
	if status != http.StatusOK || err != nil || string(body) != "ok:r" || moved.calls.Load() != 1 {
		t.Fatalf("after the move: %d %q, %v, %d calls at the new home", status, body, err, moved.calls.Load())
	}
	if n := fetches(); n != 3 {
		t.Errorf("directory read %v times, want 3", n)
	}
	// From now on the Client goes to the new home directly.
	if status, _, _ := c.Do(context.Background(), gwDomain, Notify, "r", nil); status != http.StatusOK || fetches() != 3 {
		t.Errorf("next request: %d after %v directory reads", status, fetches())
	}
	// Idle connections go before the servers stop, or each server waits
	// for them to close (a second under HTTP/2).
	c.Close()
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 120 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"Wed, 01 Apr 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 Apr 2026 11:00:00 GMT", 0, true},
		{"Wednesday, 01-Apr-26 12:01:00 GMT", time.Minute, true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for d, want := range map[time.Duration]int64{1: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Client{cfg: Config{MaxBackoff: 3 * time.Second}}
	for n := 1; n <= 40; n++ {
		full := min(baseBackoff<<min(n-1, 20), 3*time.Second)
		for range 50 {
			d := c.backoff(n)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
		}
	}
	c.cfg.MaxBackoff = time.Nanosecond
	if d := c.backoff(3); d > time.Nanosecond {
		t.Errorf("backoff with max_backoff 1ns = %s", d)
	}
}
