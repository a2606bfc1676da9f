package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a NATS server with JetStream running inside this process, its
// file store under a data directory.
type Server struct {
	ns      *server.Server
	dataDir string
	log     *slog.Logger
}

// serverStartTimeout bounds how long a starting server may take to accept
// clients; recovering a large file store can take a while.
const serverStartTimeout = 60 * time.Second

// StartServer starts an embedded NATS server with JetStream on cfg.Listen,
// storing under cfg.DataDir. When password or token is set, clients must
// present it (user with password, or the token). Shut it down with
// Shutdown.
func StartServer(cfg EmbeddedConfig, user, password, token string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port, err := splitListen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server listen %q: %w", cfg.Listen, err)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server data dir %q: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: embedded server data dir: %w", err)
	}
	// A port already taken is the common failure (another mimigw or NATS
	// server running): say so at once, naming the key, rather than wait
	// for a server that never listens.
	if err := checkListen(host, port); err != nil {
		return nil, listenError(cfg.Listen, err)
	}
	opts := &server.Options{
		ServerName: "mimigw-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true, // the process owns its signals
	}
	switch {
	case token != "":
		opts.Authorization = token
	case password != "":
		opts.Username, opts.Password = user, password
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(serverLog{l: log.With("component", "nats-server"), fatal: fatal}, false, false, false)
	go ns.Start() // Start blocks until the server is running or fails
	// The server reports what stops it (such as a port taken between the
	// check above and its own listen) as fatal, and carries on without
	// listening: stop waiting then.
	deadline := time.Now().Add(serverStartTimeout)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-fatal:
			ns.Shutdown()
			if err := checkListen(host, port); err != nil {
				return nil, listenError(cfg.Listen, err)
			}
			return nil, fmt.Errorf("bus: embedded server on %s failed to start: %s", cfg.Listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("bus: embedded server on %s did not become ready within %s", cfg.Listen, serverStartTimeout)
		}
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, fmt.Errorf("bus: embedded server on %s started without JetStream (store %s)", cfg.Listen, dir)
	}
	s := &Server{ns: ns, dataDir: dir, log: log}
	log.Info("embedded NATS server ready", "url", s.ClientURL(), "data_dir", dir)
	return s, nil
}

// checkListen reports whether host:port can be listened on now; port 0 or
// -1 (any free port) always can.
func checkListen(host string, port int) error {
	if port <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

func listenError(addr string, err error) error {
	return fmt.Errorf("bus: %w", &ConfigError{Key: "embedded.listen", Err: err, Problem: fmt.Sprintf(
		"cannot listen on %s: %v (is another mimigw or NATS server running there? stop it, or choose another address)", addr, err)})
}

// ClientURL is where clients reach the server, with the port it actually
// bound ("nats://127.0.0.1:4222").
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr is the address the server listens on, with the port it bound.
func (s *Server) Addr() string {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	}
	return s.ns.Addr().String()
}

// DataDir is the absolute directory of the file store.
func (s *Server) DataDir() string { return s.dataDir }

// Shutdown stops the server and waits until it has stopped, the file store
// flushed and closed.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.log.Info("embedded NATS server stopped")
}

// serverLog sends the server's log to slog. Notices (the start banner and
// the like) go to debug: the gateway logs what matters about its server.
// The first fatal message also goes to fatal, for StartServer.
type serverLog struct {
	l     *slog.Logger
	fatal chan<- string
}

func (s serverLog) Noticef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s serverLog) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s serverLog) Fatalf(format string, v ...any) {
	s.log(slog.LevelError, format, v)
	select {
	case s.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}
func (s serverLog) Errorf(format string, v ...any) { s.log(slog.LevelError, format, v) }
func (s serverLog) Debugf(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s serverLog) Tracef(format string, v ...any) { s.log(slog.LevelDebug-4, format, v) }

func (s serverLog) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, fmt.Sprintf(format, v...))
}
