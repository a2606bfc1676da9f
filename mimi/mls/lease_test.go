package mls

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// twoInstances opens two gateway instances on one bucket.
func twoInstances(t *testing.T) (ns *natsServer, p1, p2 *Provider, clock *fakeClock) {
	t.Helper()
	ns = startNATS(t)
	keyFile := testKeyFile(t)
	cfg1 := testConfig(keyFile)
	cfg1.State.Instance = "gw-1"
	cfg2 := testConfig(keyFile)
	cfg2.State.Instance = "gw-2"
	clock = &fakeClock{}
	p1 = openProvider(t, ns.js(t), cfg1)
	p2 = openProvider(t, ns.js(t), cfg2, withClock(clock.now))
	return ns, p1, p2, clock
}

// fakeClock runs on real time plus a settable offset.
type fakeClock struct{ skew atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.skew.Add(int64(d)) }

func TestLeaseOneWriter(t *testing.T) {
	ctx := context.Background()
	_, p1, p2, clock := twoInstances(t)
	gid := pair(t, p1, false)
	a1, b1 := mustClient(t, p1, alice), mustClient(t, p1, bob)
	a2 := mustClient(t, p2, alice)

	if _, err := a1.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-2")); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second instance while the first holds the group: %v", err)
	}
	// gw-1 hands the group over; gw-2 reads its state and carries on.
	a1.Release(ctx, gid)
	var gens []uint32
	ct, err := a2.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-2 now"))
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := a1.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-1 again")); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("first instance after handing over: %v", err)
	}
	_, g := generationOf(t, b1, gid, ct) // b1 is on gw-1 but another group member
	gens = append(gens, g)

	// gw-2 stops using the group; once its lease expires gw-1 may take it
	// without a release. gw-2 believes its lease still runs (its clock is
	// behind), so it tries to write: the revision check stops it.
	clock.advance(-time.Hour)
	e1 := p1.entry(alice, gid)
	e1.mu.Lock()
	e1.leaseRev, e1.leaseExpires = 0, time.Time{}
	e1.mu.Unlock()
	var rec leaseRecord
	rev, err := p1.store.get(ctx, leaseKey(e1.gk), &rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.Expires = time.Now().Add(-time.Second).UnixMilli() // as if gw-2's lease ran out
	if _, err := p1.store.write(ctx, leaseKey(e1.gk), &rec, rev); err != nil {
		t.Fatal(err)
	}
	ct, err = a1.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-1 took over"))
	if err != nil {
		t.Fatalf("take-over after expiry: %v", err)
	}
	_, g = generationOf(t, b1, gid, ct)
	gens = append(gens, g)
	if _, err := a2.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-2 stale")); !errors.Is(err, errConflict) || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("stale instance writing the group: %v (want a revision conflict)", err)
	}
	// Having lost the race it re-reads the lease and backs off.
	if _, err := a2.Encrypt(ctx, gid, mimiText(t, alice, room, "gw-2 stale")); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("stale instance after the conflict: %v", err)
	}
	if gens[1] <= gens[0] {
		t.Fatalf("generation went back across the hand-over: %v", gens)
	}
}

// TestLeaseConcurrentInstances has two instances encrypt for the same
// member at once: every ciphertext either instance returns has its own
// generation and decrypts; the refused attempts return an error.
func TestLeaseConcurrentInstances(t *testing.T) {
	ctx := context.Background()
	_, p1, p2, _ := twoInstances(t)
	gid := pair(t, p1, false)
	b := mustClient(t, p1, bob)
	var mu sync.Mutex
	var sent [][]byte
	var wg sync.WaitGroup
	for _, p := range []*Provider{p1, p2} {
		a := mustClient(t, p, alice)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				ct, err := a.Encrypt(ctx, gid, mimiText(t, alice, room, "race"))
				if err == nil {
					mu.Lock()
					sent = append(sent, ct)
					mu.Unlock()
				}
				if err != nil && !errors.Is(err, ErrLeaseHeld) {
					t.Errorf("unexpected: %v", err)
				}
				// Give the other instance a chance now and then.
				a.Release(ctx, gid)
			}
		}()
	}
	wg.Wait()
	if len(sent) == 0 {
		t.Fatal("nothing sent")
	}
	seen := map[uint32]bool{}
	for _, ct := range sent {
		_, g := generationOf(t, b, gid, ct)
		if seen[g] {
			t.Fatalf("generation %d sent twice", g)
		}
		seen[g] = true
		if _, err := b.Decrypt(ctx, gid, ct); err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
	}
	t.Logf("%d of 30 attempts sent", len(sent))
}
