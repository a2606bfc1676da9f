package sip

import (
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
	pw := filepath.Join(t.TempDir(), "alice.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Trusted.CIDRs = nil
	cfg.Digest = Digest{Enabled: true, Realm: "mimigw.test", Users: []DigestUser{{Username: "alice", Number: "+15551230001", PasswordFile: pw}}}
	recv := newTestReceiver(t)
	e := startEdge(t, cfg, recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
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
