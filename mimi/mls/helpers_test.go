package mls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/content"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is an embedded NATS server with JetStream in a temp dir.
type natsServer struct {
	srv *server.Server
	dir string
}

func startNATS(t testing.TB, dir string) *natsServer {
	t.Helper()
	return startNATSPort(t, dir, -1)
}

// startNATSPort starts the server on a given port, so that clients of a
// stopped server reconnect to its successor.
func startNATSPort(t testing.TB, dir string, port int) *natsServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	ns := &natsServer{srv: srv, dir: dir}
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) port() int {
	return ns.srv.Addr().(*net.TCPAddr).Port
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

func (ns *natsServer) js(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ns.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testKeyFile writes a random at-rest key as hex.
func testKeyFile(t testing.TB) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "state.key")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testConfig(keyFile string) Config {
	return Config{
		KeyPackages: KeyPackageConfig{PoolSize: 3},
		State:       StateConfig{KeyFile: keyFile, Instance: "test-a"},
	}
}

func openProvider(t testing.TB, js jetstream.JetStream, cfg Config, opts ...Option) *Provider {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	p, err := Open(context.Background(), cfg, js, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mimiText(t testing.TB, sender, room, body string) []byte {
	t.Helper()
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		t.Fatal(err)
	}
	b, err := content.NewText(sender, room, body, salt).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustClient(t testing.TB, p *Provider, uri string) *Client {
	t.Helper()
	c, err := p.Client(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustKP(t testing.TB, c *Client) *KeyPackage {
	t.Helper()
	kp, err := c.KeyPackage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

const (
	alice = "mimi://gw.example/u/+15550100001"
	bob   = "mimi://gw.example/u/+15550100002"
	carol = "mimi://gw.example/u/+15550100003"
	room  = "mimi://hub.example/r/lunch"
)

// generationOf reads who sent an application message with which
// generation, using the receiver's view of the group.
func generationOf(t testing.TB, c *Client, gid, ct []byte) (leaf, gen uint32) {
	t.Helper()
	pm, err := parsePrivate(gid, ct)
	if err != nil {
		t.Fatal(err)
	}
	err = c.withGroup(context.Background(), gid, "test", func(e *groupEntry) error {
		g := e.g
		if pm.Epoch != e.head.Epoch {
			var past pastRecord
			if _, err := c.p.store.get(context.Background(), pastKey(e.gk, pm.Epoch), &past); err != nil {
				return err
			}
			if g, err = rebuild(past.Base, nil, nil); err != nil {
				return err
			}
		}
		leaf, gen, err = peekSender(g.CipherSuite(), g.EpochSecrets().SenderDataSecret, pm)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return leaf, gen
}
