package mls

import (
	"bytes"
	"context"
	"errors"
	"testing"
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
