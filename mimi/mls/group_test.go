package mls

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	mlsext "github.com/thomas-vilte/mls-go/extensions"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
)

// pair builds a group of alice and bob (both clients of one provider)
// and returns its ID.
func pair(t *testing.T, p *Provider, treeInside bool) []byte {
	t.Helper()
	ctx := context.Background()
	a, b := mustClient(t, p, alice), mustClient(t, p, bob)
	gid, err := a.CreateGroup(ctx, room, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kp := mustKP(t, b)
	cm, err := a.Commit(ctx, gid, Changes{Add: [][]byte{kp.Message}, TreeInWelcome: treeInside})
	if err != nil {
		t.Fatal(err)
	}
	var tree []byte
	if !treeInside {
		tree = cm.RatchetTree
	}
	joined, err := p.JoinWelcome(ctx, cm.Welcome, tree, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(joined) != 1 || joined[0].User != bob || !bytes.Equal(joined[0].GroupID, gid) || joined[0].Epoch != cm.Epoch {
		t.Fatalf("joined = %+v", joined)
	}
	if len(joined[0].Members) != 2 || joined[0].Members[0].URI != alice || joined[0].Members[1].URI != bob {
		t.Fatalf("members = %+v", joined[0].Members)
	}
	return gid
}

func TestGroupJoinAndTalk(t *testing.T) {
	for _, inside := range []bool{false, true} {
		name := "tree-beside-welcome"
		if inside {
			name = "tree-inside-welcome"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := startNATS(t)
			p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
			gid := pair(t, p, inside)
			a, b := mustClient(t, p, alice), mustClient(t, p, bob)
			for i, dir := range []struct {
				from, to *Client
			}{{a, b}, {b, a}, {a, b}, {a, b}, {b, a}} {
				msg := mimiText(t, dir.from.URI(), room, "hello "+dir.to.URI())
				ct, err := dir.from.Encrypt(ctx, gid, msg)
				if err != nil {
					t.Fatalf("%d: encrypt: %v", i, err)
				}
				got, err := dir.to.Decrypt(ctx, gid, ct)
				if err != nil {
					t.Fatalf("%d: decrypt: %v", i, err)
				}
				if !bytes.Equal(got.Content, msg) || got.Sender != dir.from.URI() {
					t.Fatalf("%d: got %+v", i, got)
				}
				// The sender's own copy coming back is recognised.
				if _, err := dir.from.Decrypt(ctx, gid, ct); !errors.Is(err, ErrOwnMessage) {
					t.Fatalf("%d: own message: %v", i, err)
				}
			}
		})
	}
}

// TestGroupCacheBounded: with more groups than cache_groups, the cache
// stays bounded and evicted groups come back from the bucket.
func TestGroupCacheBounded(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	cfg := testConfig(testKeyFile(t))
	cfg.CacheGroups = 16
	p := openProvider(t, ns.js(t), cfg)
	a := mustClient(t, p, alice)
	var gids [][]byte
	for range 40 {
		gid, err := a.CreateGroup(ctx, room, GroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		gids = append(gids, gid)
	}
	for round := range 2 {
		for i, gid := range gids {
			if _, err := a.Commit(ctx, gid, Changes{}); err != nil {
				t.Fatalf("round %d group %d: %v", round, i, err)
			}
			p.mu.Lock()
			n := len(p.groups)
			p.mu.Unlock()
			if n > cfg.CacheGroups {
				t.Fatalf("%d groups cached", n)
			}
		}
	}
	for _, gid := range gids {
		st, err := a.Group(ctx, gid)
		if err != nil || st.Epoch != 2 {
			t.Fatalf("%+v %v", st, err)
		}
	}
}

func TestMetricsAndURIChecks(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	reg := prometheus.NewRegistry()
	p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)), WithRegistry(reg))
	gid := pair(t, p, false)
	a, b := mustClient(t, p, alice), mustClient(t, p, bob)
	ct, err := a.Encrypt(ctx, gid, mimiText(t, alice, room, "counted"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(ctx, gid, ct); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decrypt(ctx, gid, ct); !errors.Is(err, ErrReplay) {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"mimigw_mls_messages_encrypted_total": 1,
		"mimigw_mls_messages_decrypted_total": 1,
		"mimigw_mls_groups_joined_total":      1,
		"mimigw_mls_commits_created_total":    1,
		"mimigw_mls_clients_created_total":    2,
	} {
		if got := testutil.ToFloat64(findCounter(t, reg, name)); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "mimigw_mls_rejected_total"); err != nil || n != 1 {
		t.Errorf("rejected series: %d %v", n, err)
	}
	for _, bad := range []string{"", "tel:+15550100001", "mimi://gw.example/r/room", "MIMI://gw.example/u/+1555"} {
		if _, err := p.Client(ctx, bad); err == nil {
			t.Errorf("client for %q", bad)
		}
	}
	if _, err := a.CreateGroup(ctx, alice, GroupOptions{}); err == nil {
		t.Error("a user URI taken as a room")
	}
}

// findCounter returns a collector whose single metric is name.
func findCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			})
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// TestGroupInfo: the GroupInfo a commit returns is signed by the
// committer, carries the GroupContext (with external_senders) and only the
// external_pub extension of its own.
func TestGroupInfo(t *testing.T) {
	w := newWorld(t)
	cm, err := w.a.Commit(context.Background(), w.gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := framing.UnmarshalMLSMessage(cm.GroupInfo)
	if err != nil || m.GroupInfo == nil {
		t.Fatalf("group info message: %v", err)
	}
	gi, err := group.UnmarshalGroupInfo(m.GroupInfo)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyGroupInfoSignature(gi, w.a.SignatureKey()); err != nil {
		t.Fatal(err)
	}
	if len(gi.Extensions) != 1 || gi.Extensions[0].Type != mlsext.ExtensionTypeExternalPub {
		t.Fatalf("group info extensions %+v", gi.Extensions)
	}
	if gi.GroupContext.Epoch.AsUint64() != cm.Epoch || len(gi.GroupContext.Extensions) != 1 ||
		gi.GroupContext.Extensions[0].Type != mlsext.ExtensionTypeExternalSenders {
		t.Fatalf("group context %+v", gi.GroupContext)
	}
}

func TestLeave(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := w.a.Commit(ctx, w.gid, Changes{}); err != nil { // leaves a past epoch behind
		t.Fatal(err)
	}
	if err := w.a.Leave(ctx, w.gid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.Group(ctx, w.gid); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("after leave: %v", err)
	}
	gk := groupKeyOf(alice, w.gid)
	for k := range snapshot(t, w.p) {
		if strings.Contains(k, gk) && !strings.HasPrefix(k, "lease.") {
			t.Errorf("%s left behind", k)
		}
	}
}

// A hub's external sender key is made once and is the same on every
// instance, and a group can be created with it as external sender.
func TestHubSender(t *testing.T) {
	ns := startNATS(t)
	cfg := testConfig(testKeyFile(t))
	a := openProvider(t, ns.js(t), cfg)
	b := openProvider(t, ns.js(t), cfg)
	ctx := context.Background()
	h1, err := a.HubSender(ctx, "mimi://hub.example")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := b.HubSender(ctx, "mimi://hub.example")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h1.SignatureKey, h2.SignatureKey) || h1.Identity != "mimi://hub.example" || len(h1.SignatureKey) != 32 {
		t.Fatalf("instances disagree: %x %x (%q)", h1.SignatureKey, h2.SignatureKey, h1.Identity)
	}
	other, err := a.HubSender(ctx, "mimi://other.example")
	if err != nil || bytes.Equal(other.SignatureKey, h1.SignatureKey) {
		t.Fatalf("another hub got the same key: %v", err)
	}
	c := mustClient(t, a, "mimi://hub.example/u/+15551230001")
	if _, err := c.CreateGroup(ctx, "mimi://hub.example/r/dm-1", GroupOptions{ExternalSenders: []ExternalSender{h1}}); err != nil {
		t.Fatal(err)
	}
}
