package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/uri"
)

// startBucket runs a JetStream server in a temp dir and returns a function
// that opens the identity bucket over a new connection, as a separate
// gateway instance would.
func startBucket(t *testing.T) func() jetstream.KeyValue {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	open := func() jetstream.KeyValue {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "mimigw-identity", History: 1})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	return open
}

func newStore(t *testing.T, kv jetstream.KeyValue, cfg Config) *Store {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = "gw.example.net"
	}
	s, err := New(kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	alice   = "mimi://desk.example/u/alice"
	bob     = "mimi://desk.example/u/bob"
	phone1  = uri.Number("+15551230001")
	phone2  = uri.Number("+15551230002")
	lentOne = uri.Number("+15559990000")
)

func TestLendPerContact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{"+15559990000-+15559990001"}})

	a1, err := s.Lend(ctx, alice, phone1)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Lend(ctx, alice, phone1); err != nil || again != a1 {
		t.Fatalf("second lend to alice for phone1 = %q, %v; want %q", again, err, a1)
	}
	b1, err := s.Lend(ctx, bob, phone1)
	if err != nil {
		t.Fatal(err)
	}
	if b1 == a1 {
		t.Fatalf("phone1 sees alice and bob on one number %q", a1)
	}
	if _, err := s.Lend(ctx, "mimi://desk.example/u/carol", phone1); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("third user for phone1 in a pool of two: %v, want ErrPoolExhausted", err)
	}
	// The same numbers serve other contacts.
	if _, err := s.Lend(ctx, "mimi://desk.example/u/carol", phone2); err != nil {
		t.Fatalf("carol for phone2: %v", err)
	}
	for _, tt := range []struct {
		to   uri.Number
		want string
	}{{a1, alice}, {b1, bob}} {
		user, kind, ok, err := s.Recipient(ctx, tt.to, phone1)
		if err != nil || !ok || kind != BindingLent || user != tt.want {
			t.Errorf("Recipient(%s, phone1) = %q %q %v %v, want %q", tt.to, user, kind, ok, err, tt.want)
		}
	}
}

func TestLendOneNumberManyContacts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{string(lentOne)}})
	for _, c := range []uri.Number{phone1, phone2, "+15551230003"} {
		n, err := s.Lend(ctx, alice, c)
		if err != nil || n != lentOne {
			t.Fatalf("Lend(alice, %s) = %q, %v", c, n, err)
		}
	}
	if _, err := s.Lend(ctx, bob, phone1); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("bob for phone1: %v, want ErrPoolExhausted", err)
	}
}

func TestRecipient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{"+15559990000-+15559990009"}})
	if err := s.AssignVirtual(ctx, "+15557770001", bob); err != nil {
		t.Fatal(err)
	}
	if user, kind, ok, err := s.Recipient(ctx, "+15557770001", phone2); err != nil || !ok || kind != BindingVirtual || user != bob {
		t.Errorf("virtual: %q %q %v %v", user, kind, ok, err)
	}
	if _, _, _, err := s.Recipient(ctx, "+15559990005", phone2); !errors.Is(err, ErrUnknownNumber) {
		t.Errorf("unbound pool number: %v, want ErrUnknownNumber", err)
	}
	if user, _, ok, err := s.Recipient(ctx, "+15551239999", phone2); err != nil || ok || user != "" {
		t.Errorf("ordinary number: %q %v %v", user, ok, err)
	}
}

func TestSenderRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{
		Domain:              "gw.example.net",
		Pools:               []string{"+15559990000-+15559990009"},
		TrustedProviders:    []string{"trusted.example"},
		AlphanumericSenders: map[string]string{"mimi://bank.example/u/alerts": "BANK"},
	})
	if err := s.AssignVirtual(ctx, "+15557770001", bob); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sender string
		kind   SenderKind
		addr   string
	}{
		{"mimi://bank.example/u/alerts", SenderAlphanumeric, "BANK"},
		{"mimi://TRUSTED.example/u/+15553334444", SenderTrusted, "+15553334444"},
		{bob, SenderVirtual, "+15557770001"},
		// A number from a provider nobody trusts is never shown: no spoofed caller ids.
		{"mimi://evil.example/u/+15553334444", SenderLent, ""},
		// tel: senders speak for the gateway's own provider, which is not listed.
		{"tel:+15553334444", SenderLent, ""},
		{alice, SenderLent, ""},
	}
	for _, tt := range tests {
		got, err := s.Sender(ctx, tt.sender, phone1)
		if err != nil {
			t.Errorf("Sender(%s): %v", tt.sender, err)
			continue
		}
		if got.Kind != tt.kind {
			t.Errorf("Sender(%s) kind = %s, want %s", tt.sender, got.Kind, tt.kind)
		}
		if tt.addr != "" && got.Address() != tt.addr {
			t.Errorf("Sender(%s) = %s, want %s", tt.sender, got.Address(), tt.addr)
		}
		if tt.kind == SenderLent && !s.InPool(got.Number) {
			t.Errorf("Sender(%s) lent %s outside the pool", tt.sender, got.Number)
		}
	}
}

func TestVirtualNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{"+15559990000-+15559990009"}})
	if err := s.AssignVirtual(ctx, "+15559990003", alice); !errors.Is(err, ErrNumberInUse) {
		t.Errorf("virtual inside the pool: %v, want ErrNumberInUse", err)
	}
	if err := s.AssignVirtual(ctx, "+15557770001", alice); err != nil {
		t.Fatal(err)
	}
	if err := s.AssignVirtual(ctx, "+15557770001", alice); err != nil {
		t.Errorf("assigning again to the same user: %v", err)
	}
	if err := s.AssignVirtual(ctx, "+15557770001", bob); !errors.Is(err, ErrNumberInUse) {
		t.Errorf("taken number to bob: %v, want ErrNumberInUse", err)
	}
	if err := s.AssignVirtual(ctx, "+15557770002", alice); !errors.Is(err, ErrNumberInUse) {
		t.Errorf("second number for alice: %v, want ErrNumberInUse", err)
	}
	if err := s.ReleaseVirtual(ctx, "+15557770001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VirtualOf(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("after release: %v", err)
	}
	if err := s.AssignVirtual(ctx, "+15557770001", bob); err != nil {
		t.Errorf("released number to bob: %v", err)
	}
	if err := s.ReleaseVirtual(ctx, "+15557770009"); !errors.Is(err, ErrNotFound) {
		t.Errorf("release unknown: %v", err)
	}
}

func TestReleaseLentAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{string(lentOne)}})
	n, err := s.Lend(ctx, alice, phone1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AssignVirtual(ctx, "+15557770001", bob); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Binding{
		{Kind: BindingLent, Number: n, Contact: phone1, User: alice},
		{Kind: BindingVirtual, Number: "+15557770001", User: bob},
	}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("List = %v, want %v", list, want)
	}
	if err := s.ReleaseLent(ctx, n, phone1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Recipient(ctx, n, phone1); !errors.Is(err, ErrUnknownNumber) {
		t.Errorf("released number still reaches someone: %v", err)
	}
	// Freed for another user.
	if m, err := s.Lend(ctx, bob, phone1); err != nil || m != n {
		t.Errorf("Lend(bob) after release = %q, %v", m, err)
	}
	if err := s.ReleaseLent(ctx, n, phone2); !errors.Is(err, ErrNotFound) {
		t.Errorf("release of nothing: %v", err)
	}
}

// Two gateway instances lend from one pool to the same contacts at the same
// moment: no contact ever sees one lent number for two MIMI users, and every
// user keeps one number per contact.
func TestConcurrentLending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	open := startBucket(t)
	cfg := Config{Pools: []string{"+15559990000-+15559990007"}}
	stores := []*Store{newStore(t, open(), cfg), newStore(t, open(), cfg)}
	users := []string{alice, bob, "mimi://desk.example/u/carol", "mimi://other.example/u/dave", "mimi://other.example/u/erin", "mimi://other.example/u/frank"}
	contacts := []uri.Number{phone1, phone2, "+15551230003"}

	type result struct {
		user    string
		contact uri.Number
		lent    uri.Number
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	for round := 0; round < 3; round++ {
		for i, s := range stores {
			for _, u := range users {
				for _, c := range contacts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						n, err := s.Lend(ctx, u, c)
						if err != nil {
							t.Errorf("instance %d: Lend(%s, %s): %v", i, u, c, err)
							return
						}
						mu.Lock()
						results = append(results, result{u, c, n})
						mu.Unlock()
					}()
				}
			}
		}
	}
	wg.Wait()

	byPair := map[string]uri.Number{}
	byNumber := map[string]string{}
	for _, r := range results {
		pair := r.user + " " + string(r.contact)
		if prev, ok := byPair[pair]; ok && prev != r.lent {
			t.Errorf("%s got %s and %s", pair, prev, r.lent)
		}
		byPair[pair] = r.lent
		slot := string(r.lent) + " " + string(r.contact)
		if prev, ok := byNumber[slot]; ok && prev != r.user {
			t.Errorf("contact %s sees %s for both %s and %s", r.contact, r.lent, prev, r.user)
		}
		byNumber[slot] = r.user
	}
	if len(byPair) != len(users)*len(contacts) {
		t.Errorf("%d pairs lent, want %d", len(byPair), len(users)*len(contacts))
	}
	// What is stored agrees with what callers were told.
	for slot, user := range byNumber {
		var lent, contact uri.Number
		fmt.Sscan(slot, &lent, &contact)
		got, _, ok, err := stores[0].Recipient(ctx, lent, contact)
		if err != nil || !ok || got != user {
			t.Errorf("stored %s = %q, %v; callers were told %q", slot, got, err, user)
		}
	}
}

func TestDMRoom(t *testing.T) {
	t.Parallel()
	a := DMRoom("gw.example.net", alice, "mimi://gw.example.net/u/+15551230001")
	b := DMRoom("GW.example.net", "mimi://gw.example.net/u/+15551230001", "MIMI://desk.EXAMPLE/u/alice")
	if a != b {
		t.Fatalf("DMRoom depends on order or spelling: %s vs %s", a, b)
	}
	u, err := uri.ParseMIMI(a)
	if err != nil || u.Kind != uri.Room || u.Domain != "gw.example.net" || len(u.ID) != len("dm-")+32 {
		t.Fatalf("DMRoom = %q (%+v, %v)", a, u, err)
	}
	if c := DMRoom("gw.example.net", bob, "mimi://gw.example.net/u/+15551230001"); c == a {
		t.Fatal("two conversations share a room")
	}
}

func TestRoomRemembered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{})
	dm, err := s.Room(ctx, alice, phone1)
	if err != nil || dm != DMRoom("gw.example.net", alice, s.UserURI(phone1)) {
		t.Fatalf("Room before any = %q, %v", dm, err)
	}
	if err := s.SetRoom(ctx, alice, phone1, "mimi://desk.example/r/team"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Room(ctx, "MIMI://DESK.example/u/alice", phone1); err != nil || r != "mimi://desk.example/r/team" {
		t.Errorf("Room after SetRoom = %q, %v", r, err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "domain"},
		{Config{Domain: "gw.example.net", Pools: []string{"+1555999000-+15559990009"}}, "pools[0]"},
		{Config{Domain: "gw.example.net", Pools: []string{"+15559990009-+15559990000"}}, "pools[0]"},
		{Config{Domain: "gw.example.net", Pools: []string{"+15559990000-+15559990009", "+15559990005"}}, "pools[1]"},
		{Config{Domain: "gw.example.net", TrustedProviders: []string{"a b"}}, "trusted_providers[0]"},
		{Config{Domain: "gw.example.net", AlphanumericSenders: map[string]string{"x": "123"}}, "alphanumeric_senders"},
		{Config{Domain: "gw.example.net", AlphanumericSenders: map[string]string{"x": "TWELVECHARSX"}}, "alphanumeric_senders"},
	} {
		err := tt.cfg.Validate()
		if err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
	ok := Config{Domain: "gw.example.net", Pools: []string{"+15559990000-+15559990009", "+447700900000"}, TrustedProviders: []string{"a.example"}, AlphanumericSenders: map[string]string{"x": "BANK"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestConversationRemembered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{})
	if c, err := s.Conversation(ctx, alice, phone1); err != nil || c != "" {
		t.Fatalf("before any: %q %v", c, err)
	}
	for _, conv := range []string{"conv-1", "conv-1", "conv-2"} {
		if err := s.SetConversation(ctx, alice, phone1, conv); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Conversation(ctx, "MIMI://desk.example/u/alice", phone1); err != nil || c != conv {
			t.Fatalf("after %s: %q %v", conv, c, err)
		}
	}
	if c, _ := s.Conversation(ctx, bob, phone1); c != "" {
		t.Errorf("bob's conversation %q", c)
	}
}

// Reload changes the pools and trusted providers while running: a new
// contact gets a number from the new pool, a binding made before keeps its
// number, a provider trusted now shows its users' numbers, and the domain
// cannot change.
func TestReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, startBucket(t)(), Config{Pools: []string{"+15559990000-+15559990009"}})
	before, err := s.Lend(ctx, alice, phone1)
	if err != nil || !strings.HasPrefix(string(before), "+155599900") {
		t.Fatalf("Lend before: %s %v", before, err)
	}
	if err := s.Reload(Config{Domain: "gw.example.net", Pools: []string{"+15558880000-+15558880009"}, TrustedProviders: []string{"trusted.example"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Lend(ctx, alice, phone2); err != nil || !strings.HasPrefix(string(n), "+155588800") {
		t.Errorf("Lend after: %s %v, want a number of the new pool", n, err)
	}
	if n, err := s.Lend(ctx, alice, phone1); err != nil || n != before {
		t.Errorf("the earlier binding: %s %v, want %s", n, err, before)
	}
	if got, err := s.Sender(ctx, "mimi://trusted.example/u/+15553334444", phone1); err != nil || got.Kind != SenderTrusted {
		t.Errorf("sender of a provider trusted now: %+v %v", got, err)
	}
	if err := s.Reload(Config{Domain: "other.example", Pools: []string{"+15558880000"}}); err == nil {
		t.Error("the domain changed on reload")
	}
	if err := s.Reload(Config{Domain: "gw.example.net", Pools: []string{"nonsense"}}); err == nil {
		t.Error("a bad pool was taken")
	}
	if !s.InPool("+15558880005") || s.InPool("+15559990005") {
		t.Error("a refused reload changed the pools")
	}
}
