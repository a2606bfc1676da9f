package mls

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/mimigw/mimigw/deploy/interop/nodepeer"
)

// These tests run the gateway's clients against npm ts-mls 1.6.4, an MLS
// implementation this project did not write, through
// deploy/interop/mls-peer.mjs: serialised MLS messages only, both ways.

// tsPeer drives mls-peer.mjs.
type tsPeer struct {
	*nodepeer.Peer
	t *testing.T
}

func startTSPeer(t *testing.T) *tsPeer {
	t.Helper()
	return &tsPeer{Peer: nodepeer.Start(t, "mls-peer.mjs", "ts-mls"), t: t}
}

func (p *tsPeer) bytes(ans map[string]any, key string) []byte {
	p.t.Helper()
	s, ok := ans[key].(string)
	if !ok {
		p.t.Fatalf("ts-mls answer has no %s: %v", key, ans)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func tsMembers(ans map[string]any) map[int]string {
	out := map[int]string{}
	for _, m := range ans["members"].([]any) {
		mm := m.(map[string]any)
		out[int(mm["leaf"].(float64))] = mm["identity"].(string)
	}
	return out
}

const (
	dana = "mimi://other.example/u/dana"
	erin = "mimi://other.example/u/erin"
)

// tsSend has ts-mls client name encrypt content; tsRecv has it decrypt msg.
func tsSend(p *tsPeer, name string, content []byte) []byte {
	return p.bytes(p.Call(map[string]any{"op": "send", "name": name, "content": b64(content)}), "message")
}

func tsRecv(t *testing.T, p *tsPeer, name string, msg []byte) []byte {
	t.Helper()
	ans := p.Call(map[string]any{"op": "process", "name": name, "message": b64(msg)})
	if ans["kind"] != "application" {
		t.Fatalf("%s: not an application message: %v", name, ans)
	}
	return p.bytes(ans, "content")
}

// talk checks that messages both ways between our client and a ts-mls
// client decrypt to the very content bytes that were encrypted.
func talk(t *testing.T, p *tsPeer, c *Client, name, nameURI string, gid []byte) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		in := mimiText(t, nameURI, room, "from ts-mls "+string(rune('a'+i)))
		got, err := c.Decrypt(ctx, gid, tsSend(p, name, in))
		if err != nil {
			t.Fatalf("decrypt from %s: %v", name, err)
		}
		if !bytes.Equal(got.Content, in) || got.Sender != nameURI {
			t.Fatalf("from %s: got sender %s content %x, want %x", name, got.Sender, got.Content, in)
		}
		out := mimiText(t, c.URI(), room, "from the gateway "+string(rune('a'+i)))
		ct, err := c.Encrypt(ctx, gid, out)
		if err != nil {
			t.Fatal(err)
		}
		if back := tsRecv(t, p, name, ct); !bytes.Equal(back, out) {
			t.Fatalf("%s decrypted %x, want %x", name, back, out)
		}
	}
}

// TestInteropTSMLSGroup: ts-mls creates the group and adds our phone user
// from our KeyPackage (Welcome with and without the tree inside), commits
// an add and a remove as PublicMessage, and we follow every step.
func TestInteropTSMLSGroup(t *testing.T) {
	for _, inside := range []bool{false, true} {
		name := "tree-beside-welcome"
		if inside {
			name = "tree-inside-welcome"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			peer := startTSPeer(t)
			ns := startNATS(t)
			p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
			a := mustClient(t, p, alice)

			gid := []byte("ts-mls-room-" + name)
			peer.Call(map[string]any{"op": "newClient", "name": "dana", "identity": dana})
			peer.Call(map[string]any{"op": "newClient", "name": "erin", "identity": erin})
			peer.Call(map[string]any{"op": "createGroup", "name": "dana", "groupId": b64(gid)})

			kp := mustKP(t, a)
			ans := peer.Call(map[string]any{"op": "commit", "name": "dana", "add": []string{b64(kp.Message)}, "ratchetTreeExtension": inside})
			var tree []byte
			if !inside {
				tree = peer.bytes(ans, "ratchetTree")
			}
			joined, err := p.JoinWelcome(ctx, peer.bytes(ans, "welcome"), tree, room)
			if err != nil {
				t.Fatalf("join ts-mls welcome: %v", err)
			}
			if len(joined) != 1 || joined[0].User != alice || joined[0].Epoch != 1 {
				t.Fatalf("joined %+v", joined)
			}
			talk(t, peer, a, "dana", dana, gid)

			// dana adds erin (ts-mls) by a PublicMessage commit; we follow.
			ekp := peer.bytes(peer.Call(map[string]any{"op": "keyPackage", "name": "erin"}), "keyPackage")
			ans = peer.Call(map[string]any{"op": "commit", "name": "dana", "add": []string{b64(ekp)}})
			h, err := a.ProcessHandshake(ctx, gid, peer.bytes(ans, "commit"))
			if err != nil {
				t.Fatalf("process ts-mls add commit: %v", err)
			}
			if h.Kind != KindCommit || h.Epoch != 2 || h.Sender != dana || len(h.Added) != 1 || h.Added[0].URI != erin {
				t.Fatalf("add commit: %+v", h)
			}
			peer.Call(map[string]any{"op": "join", "name": "erin", "welcome": b64(peer.bytes(ans, "welcome")), "ratchetTree": b64(peer.bytes(ans, "ratchetTree"))})
			talk(t, peer, a, "erin", erin, gid)
			// dana, who never spoke at epoch 2, still reads alice.
			out := mimiText(t, alice, room, "to both")
			ct, err := a.Encrypt(ctx, gid, out)
			if err != nil {
				t.Fatal(err)
			}
			if got := tsRecv(t, peer, "dana", ct); !bytes.Equal(got, out) {
				t.Fatal("dana read other bytes")
			}
			if got := tsRecv(t, peer, "erin", ct); !bytes.Equal(got, out) {
				t.Fatal("erin read other bytes")
			}

			// dana removes erin; we follow and keep talking with dana.
			info := peer.Call(map[string]any{"op": "info", "name": "erin"})
			erinLeaf := int(info["ownLeaf"].(float64))
			ans = peer.Call(map[string]any{"op": "commit", "name": "dana", "removeLeaves": []int{erinLeaf}})
			h, err = a.ProcessHandshake(ctx, gid, peer.bytes(ans, "commit"))
			if err != nil {
				t.Fatalf("process ts-mls remove commit: %v", err)
			}
			if h.Epoch != 3 || len(h.Removed) != 1 || h.Removed[0].URI != erin || len(h.Added) != 0 {
				t.Fatalf("remove commit: %+v", h)
			}
			st, err := a.Group(ctx, gid)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Members) != 2 || st.Epoch != 3 {
				t.Fatalf("group after remove: %+v", st)
			}
			talk(t, peer, a, "dana", dana, gid)
		})
	}
}

// TestInteropOurGroup: our client creates the group (with a hub in
// external_senders) and ts-mls joins from our Welcome, with the tree
// beside it as MIMI sends it, and follows our add and remove commits.
func TestInteropOurGroup(t *testing.T) {
	ctx := context.Background()
	peer := startTSPeer(t)
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
	a, b := mustClient(t, p, alice), mustClient(t, p, bob)

	hubKey := peer.bytes(peer.Call(map[string]any{"op": "newSender", "name": "mimi://hub.example"}), "signatureKey")
	gid, err := a.CreateGroup(ctx, room, GroupOptions{ExternalSenders: []ExternalSender{{SignatureKey: hubKey, Identity: "mimi://hub.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	peer.Call(map[string]any{"op": "newClient", "name": "dana", "identity": dana})
	dkp := peer.bytes(peer.Call(map[string]any{"op": "keyPackage", "name": "dana"}), "keyPackage")
	cm, err := a.Commit(ctx, gid, Changes{Add: [][]byte{dkp}})
	if err != nil {
		t.Fatal(err)
	}
	ans := peer.Call(map[string]any{"op": "join", "name": "dana", "welcome": b64(cm.Welcome), "ratchetTree": b64(cm.RatchetTree)})
	if ans["epoch"].(float64) != 1 {
		t.Fatalf("dana joined at %v", ans)
	}
	talk(t, peer, a, "dana", dana, gid)

	// alice adds bob (ours): dana follows our commit, bob joins.
	cm, err = a.Commit(ctx, gid, Changes{Add: [][]byte{mustKP(t, b).Message}})
	if err != nil {
		t.Fatal(err)
	}
	if ans := peer.Call(map[string]any{"op": "process", "name": "dana", "message": b64(cm.Commit)}); ans["epoch"].(float64) != 2 {
		t.Fatalf("dana after our add: %v", ans)
	}
	if _, err := p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}
	talk(t, peer, b, "dana", dana, gid)
	if m := tsMembers(peer.Call(map[string]any{"op": "info", "name": "dana"})); len(m) != 3 || m[0] != alice || m[2] != bob {
		t.Fatalf("dana sees %v", m)
	}

	// dana commits (ts-mls, PublicMessage) removing bob; alice and bob follow.
	ans = peer.Call(map[string]any{"op": "commit", "name": "dana", "removeLeaves": []int{2}})
	h, err := a.ProcessHandshake(ctx, gid, peer.bytes(ans, "commit"))
	if err != nil || len(h.Removed) != 1 || h.Removed[0].URI != bob {
		t.Fatalf("alice on remove: %+v %v", h, err)
	}
	h, err = b.ProcessHandshake(ctx, gid, peer.bytes(ans, "commit"))
	if err != nil || !h.SelfRemoved {
		t.Fatalf("bob on his removal: %+v %v", h, err)
	}
	if _, err := b.Group(ctx, gid); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("bob still has the group: %v", err)
	}
	talk(t, peer, a, "dana", dana, gid)

	// alice removes dana by commit; dana processes it and is out.
	cm, err = a.Commit(ctx, gid, Changes{Remove: []string{dana}})
	if err != nil {
		t.Fatal(err)
	}
	peer.Call(map[string]any{"op": "process", "name": "dana", "message": b64(cm.Commit)})
	st, err := a.Group(ctx, gid)
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("after removing dana: %+v %v", st, err)
	}
}

// TestInteropHubProposal: ts-mls signs as the hub (an external sender of
// our group) a proposal to add a member and one to remove a member; our
// clients verify and store them, one of them commits them, and the others
// and the joiner follow.
func TestInteropHubProposal(t *testing.T) {
	ctx := context.Background()
	peer := startTSPeer(t)
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
	a, b, c := mustClient(t, p, alice), mustClient(t, p, bob), mustClient(t, p, carol)

	hubKey := peer.bytes(peer.Call(map[string]any{"op": "newSender", "name": "mimi://hub.example"}), "signatureKey")
	gid, err := a.CreateGroup(ctx, room, GroupOptions{ExternalSenders: []ExternalSender{{SignatureKey: hubKey, Identity: "mimi://hub.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := a.Commit(ctx, gid, Changes{Add: [][]byte{mustKP(t, b).Message}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}

	// The hub proposes adding carol, from the GroupInfo of epoch 1.
	prop := peer.bytes(peer.Call(map[string]any{"op": "externalPropose", "sender": "mimi://hub.example",
		"groupInfo": b64(cm.GroupInfo), "addKeyPackage": b64(mustKP(t, c).Message)}), "message")
	for _, cl := range []*Client{a, b} {
		h, err := cl.ProcessHandshake(ctx, gid, prop)
		if err != nil {
			t.Fatalf("%s on hub proposal: %v", cl.URI(), err)
		}
		if h.Kind != KindProposal || h.Sender != "external:0" || h.Pending != 1 {
			t.Fatalf("%s: %+v", cl.URI(), h)
		}
	}
	// A replayed proposal is refused.
	if _, err := a.ProcessHandshake(ctx, gid, prop); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed proposal: %v", err)
	}
	// bob commits the pending proposal; alice follows, carol joins.
	cm, err = b.Commit(ctx, gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Welcome == nil {
		t.Fatal("commit of the hub's add has no welcome")
	}
	h, err := a.ProcessHandshake(ctx, gid, cm.Commit)
	if err != nil || len(h.Added) != 1 || h.Added[0].URI != carol {
		t.Fatalf("alice on bob's commit: %+v %v", h, err)
	}
	if _, err := p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room); err != nil {
		t.Fatal(err)
	}

	// The hub proposes removing bob; alice commits it; bob learns he is out.
	prop = peer.bytes(peer.Call(map[string]any{"op": "externalPropose", "sender": "mimi://hub.example",
		"groupInfo": b64(cm.GroupInfo), "removeLeaf": 1}), "message")
	for _, cl := range []*Client{a, b, c} {
		if _, err := cl.ProcessHandshake(ctx, gid, prop); err != nil {
			t.Fatalf("%s on hub remove: %v", cl.URI(), err)
		}
	}
	cm, err = a.Commit(ctx, gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.ProcessHandshake(ctx, gid, cm.Commit); err != nil || len(h.Removed) != 1 || h.Removed[0].URI != bob {
		t.Fatalf("carol: %+v %v", h, err)
	}
	if h, err := b.ProcessHandshake(ctx, gid, cm.Commit); err != nil || !h.SelfRemoved {
		t.Fatalf("bob: %+v %v", h, err)
	}
	msg := mimiText(t, carol, room, "still here")
	ct, err := c.Encrypt(ctx, gid, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Decrypt(ctx, gid, ct); err != nil || !bytes.Equal(got.Content, msg) {
		t.Fatalf("alice reads carol: %v", err)
	}
}
