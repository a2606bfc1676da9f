package mls

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"maps"
	"testing"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/schedule"
)

// snapshot lists every key of the state bucket with its revision.
func snapshot(t *testing.T, p *Provider) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	keys, err := p.store.keys(ctx, ">")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, k := range keys {
		e, err := p.store.kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = e.Revision()
	}
	return out
}

func sameState(t *testing.T, p *Provider, before map[string]uint64, what string) {
	t.Helper()
	if after := snapshot(t, p); !maps.Equal(before, after) {
		for k, v := range after {
			if before[k] != v {
				t.Logf("%s: revision %d -> %d", k, before[k], v)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Logf("%s: deleted", k)
			}
		}
		t.Fatalf("%s changed stored state", what)
	}
}

// world is a provider with alice and bob in a group, and a hub key in the
// group's external_senders.
type world struct {
	t       testing.TB
	ns      *natsServer
	keyFile string
	p       *Provider
	a, b    *Client
	gid     []byte
	hubPriv ed25519.PrivateKey
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, ns: startNATS(t), keyFile: testKeyFile(t)}
	w.p = openProvider(t, w.ns.js(t), testConfig(w.keyFile))
	w.a, w.b = mustClient(t, w.p, alice), mustClient(t, w.p, bob)
	hubPub, hubPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w.hubPriv = hubPriv
	w.gid, err = w.a.CreateGroup(ctx, room, GroupOptions{ExternalSenders: []ExternalSender{{SignatureKey: hubPub, Identity: "mimi://hub.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := w.a.Commit(ctx, w.gid, Changes{Add: [][]byte{mustKP(t, w.b).Message}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}
	return w
}

// reload opens the state afresh (a restarted gateway) and checks that the
// group is at epoch and still carries messages both ways.
func (w *world) reload(epoch uint64) {
	w.t.Helper()
	ctx := context.Background()
	p := openProvider(w.t, w.ns.js(w.t), testConfig(w.keyFile))
	a, b := mustClient(w.t, p, alice), mustClient(w.t, p, bob)
	for _, c := range []*Client{a, b} {
		st, err := c.Group(ctx, w.gid)
		if err != nil || st.Epoch != epoch || len(st.Members) != 2 {
			w.t.Fatalf("%s after reload: %+v %v", c.URI(), st, err)
		}
	}
	for _, dir := range [][2]*Client{{a, b}, {b, a}} {
		msg := mimiText(w.t, dir[0].URI(), room, "after reload")
		ct, err := dir[0].Encrypt(ctx, w.gid, msg)
		if err != nil {
			w.t.Fatal(err)
		}
		got, err := dir[1].Decrypt(ctx, w.gid, ct)
		if err != nil || !bytes.Equal(got.Content, msg) {
			w.t.Fatalf("after reload: %v", err)
		}
	}
}

func (w *world) send(c *Client, text string) (msg, ct []byte) {
	w.t.Helper()
	msg = mimiText(w.t, c.URI(), room, text)
	ct, err := c.Encrypt(context.Background(), w.gid, msg)
	if err != nil {
		w.t.Fatal(err)
	}
	return msg, ct
}

func (w *world) recv(c *Client, ct, want []byte) {
	w.t.Helper()
	got, err := c.Decrypt(context.Background(), w.gid, ct)
	if err != nil {
		w.t.Fatalf("%s decrypt: %v", c.URI(), err)
	}
	if !bytes.Equal(got.Content, want) {
		w.t.Fatal("decrypted other bytes")
	}
}

// hubPropose signs a proposal as external sender 0 for the given epoch.
func (w *world) hubPropose(epoch uint64, p *group.Proposal) []byte {
	w.t.Helper()
	pm, err := framing.NewPublicMessage(framing.FramedContent{
		GroupID: w.gid, Epoch: epoch,
		Sender:            framing.Sender{Type: framing.SenderTypeExternal, SenderIndex: 0},
		AuthenticatedData: []byte{},
		Body:              framing.ProposalBody{Data: group.ProposalMarshal(p)},
	}, ciphersuite.NewEd25519SignaturePrivateKey(w.hubPriv), nil, nil, suite1)
	if err != nil {
		w.t.Fatal(err)
	}
	return framing.NewMLSMessagePublic(pm).Marshal()
}

// craft has client c's in-memory group produce an application message
// without the content check Encrypt makes, then forgets the in-memory state
// so nothing of it is kept.
func (w *world) craft(c *Client, body []byte, mutate func(*framing.AuthenticatedContent)) []byte {
	w.t.Helper()
	var out []byte
	err := c.withGroup(context.Background(), w.gid, "test", func(e *groupEntry) error {
		e.dirty = true
		g := e.g
		ac := &framing.AuthenticatedContent{
			WireFormat: framing.WireFormatPrivateMessage,
			Content: framing.FramedContent{
				GroupID: w.gid, Epoch: g.Epoch().AsUint64(),
				Sender:            framing.Sender{Type: framing.SenderTypeMember, LeafIndex: uint32(g.OwnLeafIndex())},
				AuthenticatedData: []byte{},
				Body:              framing.ApplicationData{Data: body},
			},
			GroupContext: g.GroupContext().Marshal(),
		}
		sig, err := ciphersuite.SignWithLabel(c.sig, "FramedContentTBS", ac.MarshalTBS())
		if err != nil {
			return err
		}
		ac.Auth = framing.FramedContentAuthData{Signature: sig}
		if mutate != nil {
			mutate(ac)
		}
		pm, err := framing.Encrypt(framing.EncryptParams{
			AuthContent: ac, SenderLeafIndex: uint32(g.OwnLeafIndex()), CipherSuite: suite1,
			SenderDataSecret: g.EpochSecrets().SenderDataSecret, SecretTree: g.SecretTree(),
		})
		if err != nil {
			return err
		}
		out = framing.NewMLSMessagePrivate(pm).Marshal()
		return errors.New("discard")
	})
	if out == nil {
		w.t.Fatalf("craft: %v", err)
	}
	return out
}

func TestBadInputTruncated(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	_, ct := w.send(w.b, "whole")
	cm, err := w.b.Commit(ctx, w.gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, w.p)
	for n := range len(ct) {
		if _, err := w.a.Decrypt(ctx, w.gid, ct[:n]); err == nil {
			t.Fatalf("decrypted %d of %d bytes", n, len(ct))
		}
		if _, err := w.a.ProcessHandshake(ctx, w.gid, cm.Commit[:min(n, len(cm.Commit)-1)]); err == nil {
			t.Fatalf("processed %d bytes of a commit", n)
		}
	}
	for n := range len(cm.Welcome) {
		if _, err := w.p.JoinWelcome(ctx, cm.Welcome[:n], nil, room); err == nil {
			t.Fatalf("joined from %d bytes of a welcome", n)
		}
	}
	// Extra bytes after a message are refused too.
	if _, err := w.a.Decrypt(ctx, w.gid, append(bytes.Clone(ct), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	sameState(t, w.p, before, "truncated input")
	// alice never saw bob's commit: she reloads at epoch 1, bob at 2.
	p := openProvider(t, w.ns.js(t), testConfig(w.keyFile))
	if st, err := mustClient(t, p, alice).Group(ctx, w.gid); err != nil || st.Epoch != 1 {
		t.Fatalf("after reload: %+v %v", st, err)
	}
}

func TestBadInputWrongEpoch(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t) // epoch 1, past_epochs 2
	m0, old := w.send(w.b, "epoch 1")
	var commits [][]byte
	for range 3 {
		cm, err := w.a.Commit(ctx, w.gid, Changes{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.b.ProcessHandshake(ctx, w.gid, cm.Commit); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, cm.Commit)
	}
	// epoch 4 now; epochs 2 and 3 are kept, epoch 1 is not.
	before := snapshot(t, w.p)
	if _, err := w.a.Decrypt(ctx, w.gid, old); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("message of a dropped epoch: %v", err)
	}
	if _, err := w.b.ProcessHandshake(ctx, w.gid, commits[1]); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("old commit: %v", err)
	}
	// A proposal for a later epoch (signed by the hub, so authentic).
	if _, err := w.a.ProcessHandshake(ctx, w.gid, w.hubPropose(9, group.NewRemoveProposal(1))); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("future proposal: %v", err)
	}
	// A proposal for an earlier epoch: mls-go stores it; we refuse it.
	if _, err := w.a.ProcessHandshake(ctx, w.gid, w.hubPropose(3, group.NewRemoveProposal(1))); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("past proposal: %v", err)
	}
	sameState(t, w.p, before, "wrong-epoch input")
	_ = m0
	w.reload(4)
}

func TestBadInputSignatures(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	before := snapshot(t, w.p)

	// Application message whose signature a member corrupted before
	// encrypting: decrypts, but does not authenticate.
	body := mimiText(t, bob, room, "forged")
	forged := w.craft(w.b, body, func(ac *framing.AuthenticatedContent) { ac.Auth.Signature.AsSlice()[3] ^= 1 })
	if _, err := w.a.Decrypt(ctx, w.gid, forged); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("bad signature: %v", err)
	}
	// A flipped ciphertext bit fails the AEAD.
	_, ct := w.send(w.b, "tamper")
	bad := bytes.Clone(ct)
	bad[len(bad)-5] ^= 0x40
	if _, err := w.a.Decrypt(ctx, w.gid, bad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("flipped ciphertext: %v", err)
	}
	// Commit with a flipped signature bit.
	cm, err := w.b.Commit(ctx, w.gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := framing.UnmarshalMLSMessage(cm.Commit)
	if err != nil {
		t.Fatal(err)
	}
	m.PublicMessage.Auth.Signature.AsSlice()[7] ^= 1
	if _, err := w.a.ProcessHandshake(ctx, w.gid, m.Marshal()); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("commit with bad signature: %v", err)
	}
	// Hub proposal signed by another key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	saved := w.hubPriv
	w.hubPriv = other
	if _, err := w.a.ProcessHandshake(ctx, w.gid, w.hubPropose(1, group.NewRemoveProposal(1))); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("proposal from an unknown external sender: %v", err)
	}
	w.hubPriv = saved
	// An external sender may propose but never commit.
	content := framing.FramedContent{
		GroupID: w.gid, Epoch: 1, Sender: framing.Sender{Type: framing.SenderTypeExternal},
		AuthenticatedData: []byte{}, Body: framing.CommitBody{Data: (&group.Commit{}).Marshal()},
	}
	ac := &framing.AuthenticatedContent{WireFormat: framing.WireFormatPublicMessage, Content: content}
	sig, err := ciphersuite.SignWithLabel(ciphersuite.NewEd25519SignaturePrivateKey(w.hubPriv), "FramedContentTBS", ac.MarshalTBS())
	if err != nil {
		t.Fatal(err)
	}
	extCommit := framing.NewMLSMessagePublic(&framing.PublicMessage{Content: content, Auth: framing.FramedContentAuthData{Signature: sig}}).Marshal()
	_, err = w.a.ProcessHandshake(ctx, w.gid, extCommit)
	t.Logf("external commit: %v", err)
	if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("commit from an external sender: %v", err)
	}
	// alice's stored state is what it was (bob's commit moved only bob).
	if after := snapshot(t, w.p); after[headKey(groupKeyOf(alice, w.gid))] != before[headKey(groupKeyOf(alice, w.gid))] {
		t.Fatal("alice's head changed")
	}
}

func TestBadInputReplay(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	msg, ct := w.send(w.b, "once")
	w.recv(w.a, ct, msg)
	before := snapshot(t, w.p)
	if _, err := w.a.Decrypt(ctx, w.gid, ct); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	sameState(t, w.p, before, "a replayed message")
	// Also after a restart, where mls-go alone forgets what it accepted.
	p2 := openProvider(t, w.ns.js(t), testConfig(w.keyFile))
	a2 := mustClient(t, p2, alice)
	if _, err := a2.Decrypt(ctx, w.gid, ct); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restart: %v", err)
	}
	prop := w.hubPropose(1, group.NewRemoveProposal(1))
	if _, err := a2.ProcessHandshake(ctx, w.gid, prop); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, p2)
	if _, err := a2.ProcessHandshake(ctx, w.gid, prop); !errors.Is(err, ErrReplay) {
		t.Fatalf("proposal replay: %v", err)
	}
	sameState(t, p2, before, "replays")
}

func TestBadInputNonMemberCommit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// carol and eve are in a group of their own that has the same group ID
	// and epoch; eve's commit from there claims leaf 1 (bob's) here.
	c, e := mustClient(t, w.p, carol), mustClient(t, w.p, "mimi://evil.example/u/eve")
	if _, err := c.CreateGroup(ctx, room, GroupOptions{GroupID: w.gid}); err != nil {
		t.Fatal(err)
	}
	cm, err := c.Commit(ctx, w.gid, Changes{Add: [][]byte{mustKP(t, e).Message}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}
	evil, err := e.Commit(ctx, w.gid, Changes{Remove: []string{carol}})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, w.p)
	for _, victim := range []*Client{w.a, w.b} {
		if _, err := victim.ProcessHandshake(ctx, w.gid, evil.Commit); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s took a non-member's commit: %v", victim.URI(), err)
		}
	}
	sameState(t, w.p, before, "non-member commit")
	w.reload(1)
}

func TestBadInputUsedKeyPackage(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	c := mustClient(t, w.p, carol)
	if _, err := w.p.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	kp := mustKP(t, c)
	if kp.LastResort {
		t.Fatal("got the last-resort package from a full pool")
	}
	cm, err := w.a.Commit(ctx, w.gid, Changes{Add: [][]byte{kp.Message}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, w.p)
	if _, err := w.p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); !errors.Is(err, ErrKeyPackageUsed) {
		t.Fatalf("same welcome twice: %v", err)
	}
	sameState(t, w.p, before, "the same welcome twice")
	// A second group inviting carol with the same (one-time) package.
	other, err := w.b.CreateGroup(ctx, "mimi://hub.example/r/other", GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm2, err := w.b.Commit(ctx, other, Changes{Add: [][]byte{kp.Message}})
	if err != nil {
		t.Fatal(err)
	}
	mid := snapshot(t, w.p)
	if _, err := w.p.JoinWelcome(ctx, cm2.Welcome, cm2.RatchetTree, "mimi://hub.example/r/other"); !errors.Is(err, ErrKeyPackageUsed) {
		t.Fatalf("second welcome for a used package: %v", err)
	}
	sameState(t, w.p, mid, "welcome for a used key package")
	// A Welcome for a package this gateway never issued (another
	// provider's, in another bucket).
	cfg := testConfig(testKeyFile(t))
	cfg.State.Bucket = "other-provider"
	p2 := openProvider(t, w.ns.js(t), cfg)
	frank := mustClient(t, p2, "mimi://other.example/u/frank")
	cm3, err := w.a.Commit(ctx, w.gid, Changes{Add: [][]byte{mustKP(t, frank).Message}})
	if err != nil {
		t.Fatal(err)
	}
	mid = snapshot(t, w.p)
	if _, err := w.p.JoinWelcome(ctx, cm3.Welcome, cm3.RatchetTree, room); !errors.Is(err, ErrUnknownKeyPackage) {
		t.Fatalf("welcome for another provider's package: %v", err)
	}
	sameState(t, w.p, mid, "welcome for an unknown key package")
	if _, err := p2.JoinWelcome(ctx, cm3.Welcome, cm3.RatchetTree, room); err != nil {
		t.Fatalf("the right provider: %v", err)
	}
}

func TestBadInputContentMismatch(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	before := snapshot(t, w.p)
	for _, c := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"sender is someone else", mimiText(t, carol, room, "I am carol"), "sender"},
		{"room is another", mimiText(t, bob, "mimi://hub.example/r/elsewhere", "wrong room"), "room"},
		{"not MIMI content", []byte("plain text"), ""},
	} {
		ct := w.craft(w.b, c.body, nil)
		_, err := w.a.Decrypt(ctx, w.gid, ct)
		if !errors.Is(err, ErrContentMismatch) {
			t.Fatalf("%s: %v", c.name, err)
		}
		var cme *ContentMismatchError
		if c.field != "" && (!errors.As(err, &cme) || cme.Field != c.field) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	sameState(t, w.p, before, "mismatched content")
	// The gateway does not send such content either.
	if _, err := w.a.Encrypt(ctx, w.gid, mimiText(t, bob, room, "as bob")); !errors.Is(err, ErrContentMismatch) {
		t.Fatalf("encrypting as another sender: %v", err)
	}
	msg, ct := w.send(w.b, "honest")
	w.recv(w.a, ct, msg)
	w.reload(1)
}

// TestUnknownGroup: messages for groups the client is not in leave nothing
// behind.
func TestUnknownGroup(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	_, ct := w.send(w.b, "for the right group")
	c := mustClient(t, w.p, carol)
	before := snapshot(t, w.p)
	if _, err := c.Decrypt(ctx, w.gid, ct); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("carol is not in the group: %v", err)
	}
	if _, err := c.ProcessHandshake(ctx, w.gid, w.hubPropose(1, group.NewRemoveProposal(1))); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("handshake for a group carol is not in: %v", err)
	}
	if _, err := c.Encrypt(ctx, []byte("nope"), mimiText(t, carol, room, "x")); !errors.Is(err, ErrGroupNotFound) {
		t.Fatal(err)
	}
	sameState(t, w.p, before, "input for unknown groups")
}

// TestBadConfirmationTag: a member's commit whose confirmation tag is
// wrong (everything else authentic: signature, membership tag) is refused,
// and the receiver still applies the genuine commit afterwards. mls-go
// advances the epoch in memory before it checks the tag, so the receiver
// must not keep that copy.
func TestBadConfirmationTag(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cm, err := w.b.Commit(ctx, w.gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := framing.UnmarshalMLSMessage(cm.Commit)
	if err != nil {
		t.Fatal(err)
	}
	pub := m.PublicMessage
	pub.Auth.ConfirmationTag = bytes.Clone(pub.Auth.ConfirmationTag)
	pub.Auth.ConfirmationTag[0] ^= 1
	// bob's epoch-1 state gives the membership key to re-tag it.
	var past pastRecord
	if _, err := w.p.store.get(ctx, pastKey(groupKeyOf(bob, w.gid), 1), &past); err != nil {
		t.Fatal(err)
	}
	g1, err := rebuild(past.Base, nil, past.PSKs)
	if err != nil {
		t.Fatal(err)
	}
	ac := &framing.AuthenticatedContent{WireFormat: framing.WireFormatPublicMessage, Content: pub.Content, Auth: pub.Auth,
		GroupContext: g1.GroupContext().Marshal()}
	pub.MembershipTag = schedule.ComputeMembershipTag(suite1, g1.EpochSecrets().MembershipKey.AsSlice(), ac.MarshalTBM())
	bad := m.Marshal()

	before := snapshot(t, w.p)
	if _, err := w.a.ProcessHandshake(ctx, w.gid, bad); err == nil {
		t.Fatal("commit with a wrong confirmation tag applied")
	} else if !knownError(err) {
		t.Fatalf("error kind: %v", err)
	}
	sameState(t, w.p, before, "bad confirmation tag")
	if h, err := w.a.ProcessHandshake(ctx, w.gid, cm.Commit); err != nil || h.Epoch != 2 {
		t.Fatalf("genuine commit after the bad one: %+v %v", h, err)
	}
	msg, ct := w.send(w.b, "epoch 2")
	w.recv(w.a, ct, msg)
}
