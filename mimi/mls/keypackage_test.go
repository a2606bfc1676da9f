package mls

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	mlsext "github.com/thomas-vilte/mls-go/extensions"
)

func TestKeyPackagePool(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	cfg := testConfig(testKeyFile(t))
	cfg.KeyPackages.Extensions = []uint16{0x0006} // app_data_dictionary
	cfg.KeyPackages.Proposals = []uint16{0x0008}  // AppDataUpdate
	p := openProvider(t, ns.js(t), cfg)
	c := mustClient(t, p, alice)
	n, err := p.Refill(ctx)
	if err != nil || n != 3 {
		t.Fatalf("refill: %d %v", n, err)
	}
	refs := map[string]bool{}
	for i := range 3 {
		kp := mustKP(t, c)
		if kp.LastResort || refs[string(kp.Ref)] {
			t.Fatalf("package %d: last resort %v, seen before %v", i, kp.LastResort, refs[string(kp.Ref)])
		}
		refs[string(kp.Ref)] = true
		parsed, err := parseKeyPackage(suite1, kp.Message, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(keyPackageRef(suite1, parsed), kp.Ref) {
			t.Fatal("ref does not match the package")
		}
		caps := parsed.LeafNode.Capabilities
		if !slices.Contains(caps.Extensions, uint16(mlsext.ExtensionTypeLastResort)) || !slices.Contains(caps.Extensions, 0x0006) ||
			!slices.Contains(caps.Proposals, 0x0008) || !slices.Contains(caps.Credentials, 2) {
			t.Fatalf("capabilities %+v", caps)
		}
		if len(parsed.Extensions) != 0 {
			t.Fatal("one-time package carries extensions")
		}
		if id := string(parsed.LeafNode.Credential.Identity); id != alice {
			t.Fatalf("credential identity %q", id)
		}
	}
	lr1, lr2 := mustKP(t, c), mustKP(t, c)
	if !lr1.LastResort || !bytes.Equal(lr1.Ref, lr2.Ref) {
		t.Fatal("an empty pool hands out the one last-resort package")
	}
	parsed, err := parseKeyPackage(suite1, lr1.Message, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Extensions) != 1 || parsed.Extensions[0].Type != mlsext.ExtensionTypeLastResort {
		t.Fatalf("last-resort package extensions %+v", parsed.Extensions)
	}
	if n, err := p.Refill(ctx); err != nil || n != 3 {
		t.Fatalf("second refill: %d %v", n, err)
	}
	if kp := mustKP(t, c); kp.LastResort || refs[string(kp.Ref)] {
		t.Fatal("refill handed out an old package")
	}
	// The same identity signs every package of the user.
	a, b := mustKP(t, c), mustKP(t, c)
	pa, _ := parseKeyPackage(suite1, a.Message, time.Now())
	pb, _ := parseKeyPackage(suite1, b.Message, time.Now())
	if !bytes.Equal(pa.LeafNode.SignatureKeyBytes, pb.LeafNode.SignatureKeyBytes) || !bytes.Equal(pa.LeafNode.SignatureKeyBytes, c.SignatureKey()) {
		t.Fatal("packages of one user under different signature keys")
	}
}

func TestKeyPackageNeverNearExpiry(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	clock := &fakeClock{}
	cfg := testConfig(testKeyFile(t)).WithDefaults()
	p := openProvider(t, ns.js(t), cfg, withClock(clock.now))
	c := mustClient(t, p, alice)
	if _, err := p.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	var pool poolRecord
	if _, err := p.store.get(ctx, poolKey(alice), &pool); err != nil {
		t.Fatal(err)
	}
	old := append(slices.Clone(pool.Ready), *pool.LastResort)
	// Move to within min_remaining of every package's end.
	clock.advance(cfg.KeyPackages.Lifetime - cfg.KeyPackages.MinRemaining + time.Minute)
	kp := mustKP(t, c)
	if !kp.NotAfter.After(clock.now().Add(cfg.KeyPackages.MinRemaining)) {
		t.Fatalf("handed out a package ending %s at %s", kp.NotAfter, clock.now())
	}
	for _, e := range old {
		if bytes.Equal(e.Ref, kp.Ref) {
			t.Fatal("handed out an old package")
		}
	}
	// Past their end, a refill deletes them (private keys included).
	clock.advance(2 * cfg.KeyPackages.MinRemaining)
	if _, err := p.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range old {
		var rec kpRecord
		if _, err := p.store.get(ctx, kpKey(e.Ref), &rec); !errors.Is(err, errNotFound) {
			t.Fatalf("expired package %x still stored: %v", e.Ref, err)
		}
	}
}

// TestWelcomeFindsEachClient: one Welcome adding two phone users of the
// gateway joins both, each found by the KeyPackageRef it names.
func TestWelcomeFindsEachClient(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
	a, b, c := mustClient(t, p, alice), mustClient(t, p, bob), mustClient(t, p, carol)
	if _, err := p.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	gid, err := a.CreateGroup(ctx, room, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := a.Commit(ctx, gid, Changes{Add: [][]byte{mustKP(t, b).Message, mustKP(t, c).Message}})
	if err != nil {
		t.Fatal(err)
	}
	joined, err := p.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{}
	for _, j := range joined {
		users = append(users, j.User)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{bob, carol}) {
		t.Fatalf("joined %v", users)
	}
	msg := mimiText(t, alice, room, "to both")
	ct, err := a.Encrypt(ctx, gid, msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*Client{b, c} {
		if got, err := cl.Decrypt(ctx, gid, ct); err != nil || !bytes.Equal(got.Content, msg) {
			t.Fatalf("%s: %v", cl.URI(), err)
		}
	}
}

// TestRunRefills: Run keeps pools full in the background and stops when
// its context ends.
func TestRunRefills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(testKeyFile(t)))
	c := mustClient(t, p, alice)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	ready := func() int {
		var pool poolRecord
		if _, err := p.store.get(context.Background(), poolKey(alice), &pool); err != nil {
			return -1
		}
		return len(pool.Ready)
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // failure bound only
		for ready() != want {
			if time.Now().After(deadline) {
				t.Fatalf("pool has %d, want %d", ready(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(3)
	for range 3 {
		if kp := mustKP(t, c); kp.LastResort {
			t.Fatal("last resort while the pool was being kept full")
		}
	}
	waitFor(3)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestClientIdentityShared(t *testing.T) {
	// Two instances on one bucket see one identity per user.
	_, p1, p2, _ := twoInstances(t)
	c1, c2 := mustClient(t, p1, alice), mustClient(t, p2, alice)
	if !bytes.Equal(c1.SignatureKey(), c2.SignatureKey()) {
		t.Fatal("two identities for one user")
	}
}
