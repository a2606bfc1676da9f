// Package bustest runs the bus for tests: a real NATS server with JetStream
// on 127.0.0.1 (a free port) with its file store in the test's temporary
// directory, and Bus values connected to it over TCP, as gateway instances
// would be. Everything stops when the test ends.
//
// It is for tests only; it never touches a server it did not start.
package bustest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/mimi/bus"
)

// Option adjusts the configuration of a Bus that bustest opens.
type Option func(*bus.Config)

// WithConfig lets a test change the bus configuration (limits, names,
// backoff) before the Bus opens.
func WithConfig(f func(*bus.Config)) Option { return Option(f) }

// Server is an embedded NATS server owned by one test. Stop and Start (or
// Restart) it to test reconnects; it comes back on the same port with the
// same store.
type Server struct {
	t    testing.TB
	mu   sync.Mutex
	srv  *bus.Server
	addr string // host:port actually bound, kept across restarts
	dir  string
}

// NewServer starts a server for t and stops it when t ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), addr: "127.0.0.1:-1"}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://" + s.addr }

// DataDir is where the server stores JetStream data.
func (s *Server) DataDir() string { return s.dir }

// Start starts the server if it is stopped.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	// The port may be taken by someone else between a stop and a start;
	// the test then fails plainly.
	srv, err := bus.StartServer(bus.EmbeddedConfig{Listen: s.addr, DataDir: s.dir}, "", "", "", nil)
	if err != nil {
		s.t.Fatalf("bustest: start server: %v", err)
	}
	s.srv, s.addr = srv, srv.Addr()
}

// Stop shuts the server down, as a crash of the server would look to its
// clients (their connections drop).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

// Restart stops and starts the server.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Config returns the configuration bustest opens Bus values with: this
// server's URL, short backoff steps and ack wait so that tests of
// redelivery run in seconds, and opts applied last.
func (s *Server) Config(opts ...Option) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.URL = s.URL()
	cfg.AckWait = 5 * time.Second
	cfg.MaxDeliver = 3
	cfg.Backoff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	cfg.PublishTimeout = 5 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Bus opens a Bus on this server, closed when t ends. Each call gives an
// independent connection, as a separate gateway instance would have; its
// metrics stay private.
func (s *Server) Bus(t testing.TB, opts ...Option) *bus.Bus {
	t.Helper()
	return s.BusWithRegistry(t, nil, opts...)
}

// BusWithRegistry is Bus with its metrics registered on reg.
func (s *Server) BusWithRegistry(t testing.TB, reg *prometheus.Registry, opts ...Option) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, s.Config(opts...), Logger(t), reg)
	if err != nil {
		t.Fatalf("bustest: open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// New starts a server for t and opens a Bus on it.
func New(t testing.TB, opts ...Option) *bus.Bus {
	t.Helper()
	return NewServer(t).Bus(t, opts...)
}

// Join opens another Bus connected to the same server as b, with b's
// configuration: a second gateway instance.
func Join(t testing.TB, b *bus.Bus) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := b.Config()
	cfg.URL = b.ClientURL()
	nb, err := bus.Open(ctx, cfg, Logger(t), nil)
	if err != nil {
		t.Fatalf("bustest: open second bus: %v", err)
	}
	t.Cleanup(nb.Close)
	return nb
}

// FromPhoneCount is how many messages b's from-phone stream holds.
func FromPhoneCount(t testing.TB, b *bus.Bus) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.JetStream().Stream(ctx, b.Config().FromPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Logger writes to the test log, so that failures show what the bus did.
// Lines logged after the test has ended (by goroutines still stopping)
// are dropped: the testing package refuses them.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
