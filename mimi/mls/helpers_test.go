package mls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is the bus's test server: a real NATS server with JetStream,
// its store in the test's temporary directory, restartable on the same
// port and store.
type natsServer struct {
	s *bustest.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	return &natsServer{s: bustest.NewServer(t)}
}

// js opens a bus connection (a gateway instance's) and returns its
// JetStream context.
func (ns *natsServer) js(t testing.TB) jetstream.JetStream {
	t.Helper()
	return ns.s.Bus(t).JetStream()
}

func (ns *natsServer) stop()  { ns.s.Stop() }
func (ns *natsServer) start() { ns.s.Start() }

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
