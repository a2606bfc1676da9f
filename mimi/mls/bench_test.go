package mls

import (
	"context"
	"fmt"
	"testing"

	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
)

// Benchmarks of the hot paths, each with the state write that makes it
// durable (embedded NATS, file storage) and, for comparison, the bare
// mls-go operation without storage.
//
//	go test -run '^$' -bench . -benchtime 2s ./mimi/mls/

func BenchmarkEncrypt(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	msg := mimiText(b, alice, room, "a typical short text message, about sixty bytes long")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := w.a.Encrypt(ctx, w.gid, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	msg := mimiText(b, alice, room, "a typical short text message, about sixty bytes long")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		b.StopTimer()
		ct, err := w.a.Encrypt(ctx, w.gid, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := w.b.Decrypt(ctx, w.gid, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// bareGroups returns alice's and bob's in-memory groups of a world, for
// measuring mls-go without storage.
func bareGroups(b *testing.B, w *world) (ga, gb *group.Group) {
	b.Helper()
	for _, c := range []*Client{w.a, w.b} {
		e := w.p.entry(c.uri, w.gid)
		e.mu.Lock()
		g, err := rebuild(e.head.Base, e.rat.Tree, e.head.PSKs)
		e.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if c == w.a {
			ga = g
		} else {
			gb = g
		}
	}
	return ga, gb
}

func BenchmarkEncryptMLSOnly(b *testing.B) {
	w := newWorld(b)
	ga, _ := bareGroups(b, w)
	msg := mimiText(b, alice, room, "a typical short text message, about sixty bytes long")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ga.SendMessage(msg, w.a.sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptMLSOnly(b *testing.B) {
	w := newWorld(b)
	ga, gb := bareGroups(b, w)
	msg := mimiText(b, alice, room, "a typical short text message, about sixty bytes long")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		pm, err := ga.SendMessage(msg, w.a.sig)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, _, _, err := gb.ReceiveApplicationMessage(pm); err != nil {
			b.Fatal(err)
		}
	}
}

// sizedGroup makes a group of n members: alice commits, bob receives, and
// n-2 others occupy leaves (their Welcomes are not used).
func sizedGroup(b *testing.B, n int) *world {
	b.Helper()
	ctx := context.Background()
	w := newWorld(b)
	var kps [][]byte
	for i := range n - 2 {
		c := mustClient(b, w.p, fmt.Sprintf("mimi://gw.example/u/+1555090%04d", i))
		kps = append(kps, mustKP(b, c).Message)
	}
	if len(kps) > 0 {
		cm, err := w.a.Commit(ctx, w.gid, Changes{Add: kps})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.b.ProcessHandshake(ctx, w.gid, cm.Commit); err != nil {
			b.Fatal(err)
		}
	}
	st, err := w.b.Group(ctx, w.gid)
	if err != nil || len(st.Members) != n {
		b.Fatalf("group of %d: %v", n, err)
	}
	return w
}

func BenchmarkCommitProcess(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			w := sizedGroup(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				cm, err := w.a.Commit(ctx, w.gid, Changes{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := w.b.ProcessHandshake(ctx, w.gid, cm.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCommitProcessMLSOnly(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			w := sizedGroup(b, n)
			ga, gb := bareGroups(b, w)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				staged, err := ga.Commit(w.a.sig, w.a.sig.PublicKey(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := ga.MergeCommit(staged); err != nil {
					b.Fatal(err)
				}
				pm := &framing.PublicMessage{Content: staged.AuthenticatedContent().Content,
					Auth: staged.AuthenticatedContent().Auth, MembershipTag: staged.MembershipTag()}
				b.StartTimer()
				if err := gb.ProcessPublicMessage(pm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCommitCreate(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			w := sizedGroup(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.a.Commit(ctx, w.gid, Changes{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
