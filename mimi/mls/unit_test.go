package mls

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{State: StateConfig{KeyFile: "/k"}}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		key    string
		change func(*Config)
	}{
		{"cipher_suite", func(c *Config) { c.CipherSuite = 2 }},
		{"credential.type", func(c *Config) { c.Credential.Type = "jwt" }},
		{"credential.ca_cert_file", func(c *Config) { c.Credential.Type = "x509" }},
		{"credential.ca_key_file", func(c *Config) { c.Credential.Type = "x509"; c.Credential.CACertFile = "/ca.pem" }},
		{"credential.cert_validity", func(c *Config) { c.Credential.CertValidity = time.Minute }},
		{"key_packages.pool_size", func(c *Config) { c.KeyPackages.PoolSize = -1 }},
		{"key_packages.lifetime", func(c *Config) { c.KeyPackages.Lifetime = 100 * 24 * time.Hour }},
		{"key_packages.min_remaining", func(c *Config) { c.KeyPackages.MinRemaining = c.KeyPackages.Lifetime }},
		{"key_packages.refill_interval", func(c *Config) { c.KeyPackages.RefillInterval = time.Millisecond }},
		{"key_packages.extensions", func(c *Config) { c.KeyPackages.Extensions = []uint16{5} }},
		{"key_packages.proposals", func(c *Config) { c.KeyPackages.Proposals = []uint16{3} }},
		{"state.bucket", func(c *Config) { c.State.Bucket = "a.b" }},
		{"state.replicas", func(c *Config) { c.State.Replicas = 7 }},
		{"state.key_file", func(c *Config) { c.State.KeyFile = "" }},
		{"state.key_env", func(c *Config) { c.State.KeyEnv = "K" }},
		{"state.lease_ttl", func(c *Config) { c.State.LeaseTTL = time.Millisecond }},
		{"max_forward_distance", func(c *Config) { c.MaxForwardDistance = 1 }},
		{"past_epochs", func(c *Config) { c.PastEpochs = 99 }},
		{"padding_block", func(c *Config) { c.PaddingBlock = -4 }},
	} {
		cfg := good
		c.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.key+":") {
			t.Errorf("%s: %v", c.key, err)
		}
	}
}

func TestStateKey(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"raw": key, "hex": []byte(hex.EncodeToString(key) + "\n"), "b64": []byte(base64.StdEncoding.EncodeToString(key)),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := StateConfig{KeyFile: p}.StateKey()
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Setenv("MIMIGW_TEST_MLS_KEY", hex.EncodeToString(key))
	if got, err := (StateConfig{KeyEnv: "MIMIGW_TEST_MLS_KEY"}).StateKey(); err != nil || !bytes.Equal(got, key) {
		t.Errorf("env: %v", err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abcd"), 0o600)
	if _, err := (StateConfig{KeyFile: short}).StateKey(); err == nil || !strings.Contains(err.Error(), "state.key_file") {
		t.Errorf("short key: %v", err)
	}
	if _, err := (StateConfig{KeyEnv: "MIMIGW_TEST_MLS_UNSET"}).StateKey(); err == nil {
		t.Error("unset variable")
	}
}

func TestSealer(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("group state")
	blob, err := s.seal("b", "head.x", pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, pt) {
		t.Fatal("plaintext visible")
	}
	if got, err := s.open("b", "head.x", blob); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %v", err)
	}
	blob2, _ := s.seal("b", "head.x", pt)
	if bytes.Equal(blob, blob2) {
		t.Fatal("two seals of one record are equal: nonce not random")
	}
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	s2, _ := newSealer(other)
	for name, try := range map[string]func() ([]byte, error){
		"moved to another key":    func() ([]byte, error) { return s.open("b", "head.y", blob) },
		"moved to another bucket": func() ([]byte, error) { return s.open("c", "head.x", blob) },
		"other at-rest key":       func() ([]byte, error) { return s2.open("b", "head.x", blob) },
		"flipped bit": func() ([]byte, error) {
			b := bytes.Clone(blob)
			b[len(b)-1] ^= 1
			return s.open("b", "head.x", b)
		},
		"other version": func() ([]byte, error) {
			b := bytes.Clone(blob)
			b[0] = 9
			return s.open("b", "head.x", b)
		},
		"truncated": func() ([]byte, error) { return s.open("b", "head.x", blob[:20]) },
	} {
		if _, err := try(); !errors.Is(err, errSealed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := newSealer(key[:16]); err == nil {
		t.Error("16-byte key accepted")
	}
}

// TestWindow checks the replay window against a plain set.
func TestWindow(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for trial := range 50 {
		w := &window{}
		seen := map[uint32]bool{}
		var max uint32
		for range 400 {
			var gen uint32
			if len(seen) == 0 || r.IntN(3) == 0 {
				gen = max + uint32(r.IntN(40))
			} else {
				gen = max - uint32(r.IntN(int(min(max, 2*windowBits))+1))
			}
			want := seen[gen] || (len(seen) > 0 && gen+windowBits <= max)
			if got := w.seen(gen); got != want {
				t.Fatalf("trial %d: seen(%d) = %v, want %v (max %d)", trial, gen, got, want, max)
			}
			if !want {
				w.mark(gen)
				seen[gen] = true
				if gen > max {
					max = gen
				}
			}
		}
	}
	var w *window
	if w.seen(0) || w.ahead(7) != 7 {
		t.Fatal("nil window")
	}
}

func TestVarint(t *testing.T) {
	for _, c := range []struct {
		n      int
		prefix []byte
	}{{0, []byte{0}}, {63, []byte{63}}, {64, []byte{0x40, 64}}, {16383, []byte{0x7f, 0xff}},
		{16384, []byte{0x80, 0, 0x40, 0}}, {1 << 20, []byte{0x80, 0x10, 0, 0}}} {
		v := bytes.Repeat([]byte{7}, c.n)
		enc := appendVector(nil, v)
		if !bytes.HasPrefix(enc, c.prefix) || len(enc) != len(c.prefix)+c.n || vectorSuffixLen(v) != len(enc) {
			t.Fatalf("%d: %x...", c.n, enc[:min(len(enc), 6)])
		}
	}
}
