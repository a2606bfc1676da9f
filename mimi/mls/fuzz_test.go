package mls

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
)

// Every entry point that takes bytes from outside is fuzzed here. Seeds are
// real messages (the official vectors' and live ones); the invariants are
// that nothing panics, that every refusal is one of the package's errors,
// and that parsers accept only what they re-encode byte for byte.

// knownError reports whether err is one the package documents for bad
// input.
func knownError(err error) bool {
	for _, s := range []error{ErrMalformed, ErrWrongEpoch, ErrReplay, ErrAuthentication, ErrContentMismatch,
		ErrOwnMessage, ErrUnknownKeyPackage, ErrKeyPackageUsed, ErrGroupNotFound, ErrRemoved,
		ErrUnsupported, ErrUntrustedCredential, ErrRejected, ErrPendingProposals} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// liveSeeds builds a group and returns messages of each kind for it.
func liveSeeds(t testing.TB, w *world) (app, commit, proposal, welcome, tree []byte) {
	ctx := context.Background()
	_, app = w.send(w.b, "seed")
	c := mustClient(t, w.p, carol)
	cm, err := w.b.Commit(ctx, w.gid, Changes{Add: [][]byte{mustKP(t, c).Message}})
	if err != nil {
		t.Fatal(err)
	}
	return app, cm.Commit, w.hubPropose(1, group.NewRemoveProposal(1)), cm.Welcome, cm.RatchetTree
}

func vectorSeedsF(t testing.TB) [][]byte {
	var mp []struct {
		CipherSuite     uint16   `json:"cipher_suite"`
		ApplicationPriv hexBytes `json:"application_priv"`
		ProposalPub     hexBytes `json:"proposal_pub"`
		CommitPub       hexBytes `json:"commit_pub"`
		ProposalPriv    hexBytes `json:"proposal_priv"`
	}
	vectorFile(t, "message-protection.json", &mp)
	var wv []struct {
		Welcome    hexBytes `json:"welcome"`
		KeyPackage hexBytes `json:"key_package"`
	}
	vectorFile(t, "welcome.json", &wv)
	var out [][]byte
	for _, v := range mp {
		out = append(out, v.ApplicationPriv, v.ProposalPub, v.CommitPub, v.ProposalPriv)
	}
	for _, v := range wv {
		out = append(out, v.Welcome, v.KeyPackage)
	}
	return out
}

func FuzzDecrypt(f *testing.F) {
	w := newWorld(f)
	app, commit, proposal, welcome, _ := liveSeeds(f, w)
	for _, s := range [][]byte{app, commit, proposal, welcome, app[:len(app)/2], nil, {0, 1, 0, 2}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := w.a.Decrypt(context.Background(), w.gid, b)
		if err != nil {
			if !knownError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if got.Sender != bob || !bytes.Equal(b, app) {
			t.Fatalf("decrypted fuzz input from %s", got.Sender)
		}
	})
}

func FuzzProcessHandshake(f *testing.F) {
	w := newWorld(f)
	app, commit, proposal, welcome, _ := liveSeeds(f, w)
	for _, s := range [][]byte{commit, proposal, app, welcome, commit[:len(commit)-3], {0, 1, 0, 1}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := w.a.ProcessHandshake(context.Background(), w.gid, b)
		if err != nil && !knownError(err) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func FuzzJoinWelcome(f *testing.F) {
	w := newWorld(f)
	_, _, _, welcome, tree := liveSeeds(f, w)
	f.Add(welcome, tree)
	f.Add(welcome, []byte(nil))
	f.Add(welcome[:len(welcome)/2], tree)
	f.Add([]byte{0, 1, 0, 3, 0, 1}, tree[:len(tree)/2])
	f.Fuzz(func(t *testing.T, wb, tb []byte) {
		_, err := w.p.JoinWelcome(context.Background(), wb, tb, room)
		if err != nil && !knownError(err) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// FuzzKeyPackage: a KeyPackage handed to Commit to add someone.
func FuzzKeyPackage(f *testing.F) {
	for _, s := range vectorSeedsF(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kp, err := parseKeyPackage(suite1, b, time.Now())
		if err != nil {
			if !knownError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		raw := b
		if len(b) >= 4 && b[2] == 0 && b[3] == byte(framing.WireFormatKeyPackage) {
			raw = b[4:]
		}
		if !bytes.Equal(kp.Marshal(), raw) {
			t.Fatal("accepted a key package that does not re-encode to its bytes")
		}
	})
}

// FuzzParse runs the message parsers: whatever they accept re-encodes to
// exactly the input.
func FuzzParse(f *testing.F) {
	for _, s := range vectorSeedsF(f) {
		f.Add(s)
	}
	gid := []byte{1, 2, 3}
	f.Fuzz(func(t *testing.T, b []byte) {
		if pm, err := parsePrivate(nil, b); err == nil {
			if !bytes.Equal(framing.NewMLSMessagePrivate(pm).Marshal(), b) {
				t.Fatal("private message does not round-trip")
			}
		} else if !knownError(err) {
			t.Fatal(err)
		}
		if pub, err := parsePublic(gid, b); err == nil {
			if !bytes.Equal(framing.NewMLSMessagePublic(pub).Marshal(), b) {
				t.Fatal("public message does not round-trip")
			}
		} else if !knownError(err) {
			t.Fatal(err)
		}
		if w, err := parseWelcome(b); err == nil {
			again, err := group.UnmarshalWelcome(w.Marshal())
			if err != nil || !bytes.Equal(again.Marshal(), w.Marshal()) {
				t.Fatal("welcome does not re-parse")
			}
		} else if !knownError(err) {
			t.Fatal(err)
		}
	})
}

// FuzzSealed: records read back from the bucket.
func FuzzSealed(f *testing.F) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := newSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.seal("b", "k", []byte(`{"epoch":1}`))
	f.Add(good)
	f.Add(good[:30])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.open("b", "k", b)
		if err != nil {
			if !errors.Is(err, errSealed) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(b, good) || string(pt) != `{"epoch":1}` {
			t.Fatal("forged record opened")
		}
	})
}
