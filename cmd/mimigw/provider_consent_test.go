package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// consentEntry is an updateConsent the desktop peer received.
type consentEntry struct {
	Operation, Requester, Target string
	Room                         *string
	KeyPackages                  int
}

// consents waits until the desktop peer has received n updateConsent
// entries and returns them.
func (p *desktopPeer) consents(n int) []consentEntry {
	p.t.Helper()
	var all []consentEntry
	deadline := time.Now().Add(waitProvider)
	for len(all) < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("desktop peer got %d updateConsent, want %d: %+v", len(all), n, all)
		}
		time.Sleep(50 * time.Millisecond)
		b, _ := json.Marshal(p.Call(map[string]any{"op": "consents"})["entries"])
		var got []consentEntry
		if err := json.Unmarshal(b, &got); err != nil {
			p.t.Fatal(err)
		}
		all = append(all, got...)
	}
	return all
}

// A desktop provider that asks consent before adding a phone user (ts-mls
// peer): the gateway grants it for a peer the phone users accept rooms
// from, with a KeyPackage of the phone user in the grant; the peer opens
// its room with that KeyPackage, without keyMaterial, and its text reaches
// the phone. Requests the gateway must not take get 4xx; a request from a
// peer whose rooms the phone users do not join, or for a number not
// served, gets 201 and nothing more, so that a peer learns nothing.
func TestProviderConsent(t *testing.T) {
	t.Parallel()
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
		cfg.Provider.Served = []string{"+1555123"}
	})
	phone := "mimi://" + cfg.Domain + "/u/+15551230002"
	room := "mimi://desktop.test/r/dm-alice-consent"

	for _, c := range []struct {
		name string
		req  map[string]any
		want int
	}{
		{"a number not served", map[string]any{"target": "mimi://" + cfg.Domain + "/u/+442071838750", "room": room}, http.StatusCreated},
		{"a cancel", map[string]any{"target": phone, "room": room, "operation": "cancel"}, http.StatusCreated},
		{"a room that is no MIMI URI", map[string]any{"target": phone, "room": "not a room"}, http.StatusBadRequest},
	} {
		c.req["op"], c.req["peer"] = "requestConsent", cfg.Domain
		if ans := peer.Call(c.req); int(ans["status"].(float64)) != c.want {
			t.Errorf("%s: %v, want %d", c.name, ans, c.want)
		}
	}
	// A ConsentEntry naming a requester of another provider than the one
	// sending it, or a grant sent to requestConsent: refused.
	for name, body := range map[string][]byte{
		"requester of another domain": consentBody(1, "mimi://other.test/u/bob", phone),
		"grant on requestConsent":     consentBody(2, alice, phone),
	} {
		ans := peer.Call(map[string]any{"op": "raw", "peer": cfg.Domain, "endpoint": "requestConsent", "param": cfg.Domain, "body": body})
		if st := int(ans["status"].(float64)); st != http.StatusForbidden && st != http.StatusBadRequest {
			t.Errorf("%s: %v, want 403 or 400", name, ans)
		}
	}

	if ans := peer.Call(map[string]any{"op": "requestConsent", "peer": cfg.Domain, "target": phone, "room": room}); int(ans["status"].(float64)) != http.StatusCreated {
		t.Fatalf("requestConsent: %v", ans)
	}
	got := peer.consents(1)
	if g := got[0]; g.Operation != "grant" || g.Requester != alice || g.Target != phone || g.Room == nil || *g.Room != room || g.KeyPackages != 1 {
		t.Fatalf("updateConsent %+v, want a grant for alice, %s in %s with one KeyPackage", g, phone, room)
	}
	m := scrape(t, cfg)
	for outcome, want := range map[string]string{"granted": "1", "not_granted": "1", "ignored": "1", "refused": "3"} {
		if got := sample(m, `mimigw_provider_answers_total{endpoint="requestConsent",outcome="`+outcome+`"}`); got != want {
			t.Errorf("requestConsent %s: %q, want %s", outcome, got, want)
		}
	}

	// The room, opened with the granted KeyPackage alone.
	if ans := peer.Call(map[string]any{"op": "createRoom", "peer": cfg.Domain, "room": room}); int(ans["status"].(float64)) != http.StatusCreated {
		t.Fatalf("notify with the Welcome: %v", ans)
	}
	if ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "Hello, with consent"}); int(ans["status"].(float64)) != http.StatusCreated {
		t.Fatalf("notify with the text: %v", ans)
	}
	if sms := waitSubmit(t, cfg, "Hello, with consent"); sms.Dest != "15551230002" {
		t.Errorf("SMS to %s, want 15551230002", sms.Dest)
	}
}

// consentBody encodes a ConsentEntry without room, key packages or
// extensions, by hand, so that the test can send what the peer's encoder
// refuses to.
func consentBody(op byte, requester, target string) []byte {
	b := []byte{op}
	for _, s := range []string{requester, target} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = append(b, 0) // no roomId
	if op == 2 {
		b = append(b, 0) // clientKeyPackages: none
	}
	return append(b, 0) // consent_extensions: none
}
