package mls

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/thomas-vilte/mls-go/ciphersuite"
)

// The sender data key and nonce derivation gives what mls-go's
// ExpandWithLabel gives, for every suite's hash, sample length and output
// length a PrivateMessage meets.
func TestExpandLabelShort(t *testing.T) {
	suites := []ciphersuite.CipherSuite{ciphersuite.MLS128DHKEMX25519, ciphersuite.MLS128DHKEMX25519ChaCha20,
		ciphersuite.MLS256DHKEMP521AES256GCM}
	for _, cs := range suites {
		h := expandHash(cs)
		if h == nil {
			t.Fatalf("suite %d: no hash", cs)
		}
		secret := make([]byte, cs.HashLength())
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		s := ciphersuite.NewSecretForCS(cs, secret)
		for _, n := range []int{0, 1, 16, 63, 64, cs.HashLength()} {
			sample := make([]byte, n)
			_, _ = rand.Read(sample)
			for _, c := range []struct {
				label  string
				length int
			}{{"key", cs.AEADKeyLength()}, {"nonce", cs.AEADNonceLength()}, {"key", cs.HashLength()}} {
				want, err := s.KdfExpandLabel(c.label, sample, c.length)
				if err != nil {
					t.Fatal(err)
				}
				got := expandLabelShort(h, secret, c.label, sample, c.length, []byte("x"))
				if !bytes.Equal(got[1:], want.AsSlice()) || got[0] != 'x' {
					t.Errorf("suite %d, %s of %d over a %d-byte sample: %x, want %x", cs, c.label, c.length, n, got[1:], want.AsSlice())
				}
			}
		}
	}
	if expandHash(ciphersuite.CipherSuite(0x7777)) != nil {
		t.Error("an unknown suite gets a hash")
	}
}

// Stored records are named by groupKeyOf: its value for a given user and
// group may never change, or state written before is not found.
func TestGroupKeyStable(t *testing.T) {
	gid := make([]byte, 32)
	if got := groupKeyOf("mimi://gw.example.net/u/+15551230001", gid); got != "1bd310cff56b066294910d678dda47a9" {
		t.Errorf("group key %s", got)
	}
	long := string(bytes.Repeat([]byte("u"), 300))
	if a, b := groupKeyOf(long, gid), groupKeyOf(long, append(gid, 0)); a == b || len(a) != 32 {
		t.Errorf("group keys %s and %s", a, b)
	}
}
