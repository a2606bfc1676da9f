package sip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// With digest enabled, a client that is not a trusted peer is challenged,
// may send once authenticated, and only as its own number; its
// P-Asserted-Identity is not believed.
func TestDigestAuth(t *testing.T) {
	recv, c := digestEdge(t)
	base := request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("auth-1", "hi")}

	c.send(base.String())
	res := c.answer()
	if code, _ := status(res); code != 401 {
		t.Fatalf("no credentials: %q", res)
	}
	chal, err := digest.ParseChallenge(headerValue(res, "WWW-Authenticate"))
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	authorize := func(r request, password string) string {
		cred, err := digest.Digest(chal, digest.Options{Method: "MESSAGE", URI: "sip:+15551230002@mimigw.test;user=phone",
			Username: "alice", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		r.extra = append(r.extra, "Authorization: "+cred.String())
		return r.String()
	}

	c.send(authorize(base, "wrong"))
	if code, reason := status(c.answer()); code != 403 {
		t.Fatalf("wrong password: %d %s", code, reason)
	}

	other := base
	other.from = "<sip:+15551230009@ims.test;user=phone>;tag=x"
	c.send(authorize(other, "s3cret"))
	if code, reason := status(c.answer()); code != 403 || !strings.Contains(reason, "authenticated") {
		t.Fatalf("From another number: %d %s", code, reason)
	}

	spoof := base
	spoof.extra = []string{"P-Asserted-Identity: <sip:+15551230009@ims.test;user=phone>"}
	c.send(authorize(spoof, "s3cret"))
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("authenticated: %d %s", code, reason)
	}
	in, _, _ := recv.snapshot()
	if len(in) != 1 || in[0].From != "+15551230001" {
		t.Fatalf("messages %+v, want one from the authenticated number (P-Asserted-Identity ignored)", in)
	}
}

// P-Asserted-Identity from a trusted peer names the sender.
func TestAssertedIdentityFromTrustedPeer(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("pai-1", "hi"),
		from:  "<sip:anonymous@anonymous.invalid>;tag=a",
		extra: []string{"P-Asserted-Identity: <sip:+15551230007@ims.test;user=phone>, <tel:+15551230007>"}}.String())
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("answer %d %s", code, reason)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].From != "+15551230007" {
		t.Fatalf("messages %+v, want one from +15551230007", in)
	}
}

func TestDigestNonce(t *testing.T) {
	d, err := newDigestAuth(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	n := d.nonce(now)
	if ok, stale := d.checkNonce(n, now.Add(time.Minute), 5*time.Minute); !ok || stale {
		t.Fatalf("fresh nonce: ok %v stale %v", ok, stale)
	}
	if ok, stale := d.checkNonce(n, now.Add(6*time.Minute), 5*time.Minute); !ok || !stale {
		t.Fatalf("old nonce: ok %v stale %v", ok, stale)
	}
	other, _ := newDigestAuth(nil)
	if ok, _ := other.checkNonce(n, now, 5*time.Minute); ok {
		t.Fatal("a nonce from another key was accepted")
	}
	for _, bad := range []string{"", "zz", strings.Repeat("0", 48)} {
		if ok, _ := d.checkNonce(bad, now, 5*time.Minute); ok {
			t.Fatalf("nonce %q accepted", bad)
		}
	}
}

// A request that authenticated cannot be sent again under a new branch
// (digest does not cover the body): its response is good once. A client
// counting on with the same nonce goes on; the replayer is challenged.
func TestDigestReplayRefused(t *testing.T) {
	recv, c := digestEdge(t)
	base := request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("replay-1", "hi")}
	c.send(base.String())
	chal, err := digest.ParseChallenge(headerValue(c.answer(), "WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	cred := func(count int) string {
		cr, err := digest.Digest(chal, digest.Options{Method: "MESSAGE", URI: "sip:+15551230002@mimigw.test;user=phone",
			Username: "alice", Password: "s3cret", Cnonce: "0a4f113b", Count: count})
		if err != nil {
			t.Fatal(err)
		}
		return "Authorization: " + cr.String()
	}
	send := func(branch, id, text, auth string) (int, string) {
		r := base
		r.branch, r.body, r.extra = branch, cpimText(id, text), []string{auth}
		c.send(r.String())
		return status(c.answer())
	}
	if code, reason := send("z9hG4bK-r1", "replay-1", "hi", cred(1)); code != 202 {
		t.Fatalf("first use: %d %s", code, reason)
	}
	code, reason := send("z9hG4bK-r2", "replay-2", "send money", cred(1))
	if code != 401 || !strings.Contains(reason, "stale") {
		t.Fatalf("replayed response: %d %s, want 401 stale", code, reason)
	}
	if code, reason := send("z9hG4bK-r3", "replay-3", "next", cred(2)); code != 202 {
		t.Fatalf("next nonce count: %d %s", code, reason)
	}
	in, _, _ := recv.snapshot()
	if len(in) != 2 {
		t.Fatalf("%d messages, want 2 (the replay made none)", len(in))
	}
	for _, m := range in {
		if strings.Contains(m.Parts[0].Text, "money") {
			t.Fatalf("the replayed request got through: %+v", m)
		}
	}
}

func TestUsedResponsesExpireAndBound(t *testing.T) {
	u := usedResponses{max: 2, seen: map[[16]byte]struct{}{}}
	now := time.Now()
	ttl := time.Minute
	if err := u.use("n", "c", 1, now, ttl); err != nil {
		t.Fatal(err)
	}
	if err := u.use("n", "c", 1, now, ttl); !errors.Is(err, errReplayed) {
		t.Fatalf("second use: %v", err)
	}
	if err := u.use("n", "c", 2, now, ttl); err != nil {
		t.Fatal(err)
	}
	if err := u.use("n", "c", 3, now, ttl); !errors.Is(err, errTooManyResponses) {
		t.Fatalf("past the bound: %v", err)
	}
	// Once the nonce lifetime has passed, the old responses are let go
	// (the nonce itself is refused as stale by then).
	later := now.Add(ttl + time.Second)
	if err := u.use("n", "c", 3, later, ttl); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(u.seen) != 1 || len(u.order)-u.head != 1 {
		t.Fatalf("remembered %d (%d queued), want 1", len(u.seen), len(u.order)-u.head)
	}
}

// digestEdge starts an edge that trusts no address and knows the digest
// user alice (password s3cret, number +15551230001), and a UDP client.
func digestEdge(t *testing.T) (*testReceiver, *rawClient) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "alice.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Trusted.CIDRs = nil
	cfg.Digest = Digest{Enabled: true, Realm: "mimigw.test", Users: []DigestUser{{Username: "alice", Number: "+15551230001", PasswordFile: pw}}}
	recv := newTestReceiver(t)
	e := startEdge(t, cfg, recv)
	return recv, dialRaw(t, "udp", e.Addr("udp"))
}
