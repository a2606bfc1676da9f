package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/provider/wire"
)

// These tests run the gateway as the hub of a room whose other member is
// a user of a provider this project did not write the MLS of: alice on
// the ts-mls desktop peer, which serves identifierQuery, keyMaterial and
// notify and answers by submitMessage.

// aliceNumber is a number the desktop peer says is alice's, outside the
// numbers the gateway serves.
const aliceNumber = "+15557770001"

// hubGateway starts a dev gateway serving +1555123 only, whose peer, the
// desktop peer, owns aliceNumber.
func hubGateway(t *testing.T) (*Config, *desktopPeer) {
	t.Helper()
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
		cfg.Provider.Served = []string{"+1555123"}
	})
	peer.Call(map[string]any{"op": "own", "phone": aliceNumber})
	return cfg, peer
}

// phoneWritesFirst has a phone text alice's number and waits until alice
// decrypted the text, which came in the room the gateway opened; it
// returns that message.
func phoneWritesFirst(t *testing.T, cfg *Config, peer *desktopPeer, number, text string) peerMessage {
	t.Helper()
	injectMO(t, cfg, number, aliceNumber, text)
	var got *peerMessage
	peer.received(func(ms []peerMessage) bool {
		got = withText(ms, text)
		return got != nil
	})
	return *got
}

// withText is the first of ms with text, or nil.
func withText(ms []peerMessage, text string) *peerMessage {
	for i := range ms {
		if ms[i].Text == text {
			return &ms[i]
		}
	}
	return nil
}

// hasStatus reports whether a status report in ms gives message id status.
func hasStatus(ms []peerMessage, id, status string) bool {
	for _, m := range ms {
		for _, s := range m.Statuses {
			if s.ID == id && s.Status == status {
				return true
			}
		}
	}
	return false
}

// aliceSays runs the desktop peer's send op (room, text and its options)
// in a room the gateway hosts, which goes by submitMessage, and returns
// the peer's answer: the HTTP status, the message ID and the decoded
// SubmitMessageResponse, or the body held back.
func aliceSays(t *testing.T, peer *desktopPeer, req map[string]any) submitAnswer {
	t.Helper()
	req["op"] = "send"
	b, _ := json.Marshal(peer.Call(req))
	var a submitAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// submitAnswer is the desktop peer's answer to a send in a room it follows.
type submitAnswer struct {
	Status     int
	ID         string
	SubmitBody string
	Body       string
	Response   *struct {
		Status       string
		Timestamp    int64
		CurrentEpoch int64
	}
}

// A phone user texts a number the desktop peer owns: the gateway asks its
// peer by identifierQuery, opens a room it hosts, fetches alice's key
// material (a ts-mls KeyPackage), adds her and sends the Welcome and the
// text by notify; alice's client joins from the Welcome and decrypts the
// text, sent by the phone user. Alice's reply by submitMessage is accepted
// and reaches the phone by SMS, from a lent number (alice's URI holds no
// number); the SMS receipt comes back to alice by notify as a delivered
// report of her reply, and the phone's answer to the lent number reaches
// her in the same room.
func TestProviderHubDesktopFollower(t *testing.T) {
	t.Parallel()
	cfg, peer := hubGateway(t)
	phone := "mimi://" + cfg.Domain + "/u/+15551230002"
	first := phoneWritesFirst(t, cfg, peer, "+15551230002", "Hello alice, a phone writing first")
	room := first.Room
	if !strings.HasPrefix(room, "mimi://"+cfg.Domain+"/r/dm-") || first.Sender != phone || first.SendingURI != phone {
		t.Fatalf("alice got %+v: want a room of %s, sent by %s", first, cfg.Domain, phone)
	}
	// The gateway wrote the participant list into the group it created,
	// and both users are in its tree.
	if got := roomParticipants(t, cfg); !slices.Equal(got, []string{phone, alice}) {
		t.Errorf("room participants %v, want %s and %s", got, phone, alice)
	}
	info := peer.Call(map[string]any{"op": "roomInfo", "room": room})
	if fmt.Sprint(info["members"]) != fmt.Sprintf("[%s %s]", phone, alice) || info["hub"] != cfg.Domain {
		t.Errorf("alice's view of the room: %v", info)
	}

	reply := aliceSays(t, peer, map[string]any{"room": room, "text": "Hi phone, alice answering"})
	if reply.Status != http.StatusOK || reply.Response == nil || reply.Response.Status != "accepted" || reply.Response.Timestamp == 0 {
		t.Fatalf("submitMessage: %+v", reply)
	}
	sms := waitSubmit(t, cfg, "Hi phone, alice answering")
	if sms.Dest != "15551230002" || !strings.HasPrefix(sms.Source, "1555999") {
		t.Errorf("SMS from %s to %s, want a lent number to 15551230002", sms.Source, sms.Dest)
	}

	injectMO(t, cfg, "+15551230002", "+"+sms.Source, "Got it, alice")
	got := peer.received(func(ms []peerMessage) bool {
		return withText(ms, "Got it, alice") != nil && hasStatus(ms, reply.ID, "delivered")
	})
	for _, m := range got {
		if m.Room != room || m.Sender != phone || m.SendingURI != phone {
			t.Errorf("message %+v: want room %s, sender and sendingUri %s", m, room, phone)
		}
	}
}

// rawSubmit sends bytes to the gateway's submitMessage endpoint through
// the desktop peer and returns the HTTP status and the answer's body.
func rawSubmit(t *testing.T, cfg *Config, peer *desktopPeer, room string, body []byte, from string) (int, []byte) {
	t.Helper()
	req := map[string]any{"op": "raw", "peer": cfg.Domain, "endpoint": "submitMessage", "param": room,
		"body": base64.StdEncoding.EncodeToString(body)}
	if from != "" {
		req["from"] = from
	}
	ans := peer.Call(req)
	b, err := base64.StdEncoding.DecodeString(ans["body"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return int(ans["status"].(float64)), b
}

// submitStatus decodes the gateway's SubmitMessageResponse.
func submitStatus(t *testing.T, b []byte) wire.SubmitStatus {
	t.Helper()
	resp, err := wire.UnmarshalSubmitMessageResponse(b)
	if err != nil {
		t.Fatalf("SubmitMessageResponse %x: %v", b, err)
	}
	return resp.Status
}

// Bad input from a follower of a room the gateway hosts gets a refusal
// and reaches no phone: a submitMessage for a room the gateway does not
// host (404), with a From that is not the certificate's domain (403), as
// a user of another domain or with a tampered ciphertext (notAllowed), and
// a notify from the follower as if it were the room's hub (403). The
// genuine message, sent twice afterwards, is accepted twice and reaches
// the phone once.
func TestProviderHubBadSubmit(t *testing.T) {
	t.Parallel()
	cfg, peer := hubGateway(t)
	room := phoneWritesFirst(t, cfg, peer, "+15551230002", "Hello alice").Room
	held := aliceSays(t, peer, map[string]any{"room": room, "text": "genuine reply", "hold": true})
	body, err := base64.StdEncoding.DecodeString(held.SubmitBody)
	if err != nil || len(body) < 80 {
		t.Fatalf("held submitMessage body %q: %v", held.SubmitBody, err)
	}
	tampered := bytes.Clone(body)
	tampered[len(tampered)-len(alice)-20] ^= 0x40 // inside the ciphertext, before sendingUri

	for _, c := range []struct {
		name, room, from string
		want             int
	}{
		{"a room never made", "mimi://" + cfg.Domain + "/r/never-made", "", http.StatusNotFound},
		{"a room of the peer's", "mimi://desktop.test/r/elsewhere", "", http.StatusNotFound},
		{"a From not the certificate's", room, "mimi@elsewhere.test", http.StatusForbidden},
	} {
		if got, b := rawSubmit(t, cfg, peer, c.room, body, c.from); got != c.want {
			t.Errorf("%s: status %d %q, want %d", c.name, got, b, c.want)
		}
	}
	if got, b := rawSubmit(t, cfg, peer, room, tampered, ""); got >= 500 || (got == http.StatusOK && submitStatus(t, b) != wire.SubmitNotAllowed) {
		t.Errorf("tampered ciphertext: status %d %x, want a refusal", got, b)
	}
	other := aliceSays(t, peer, map[string]any{"room": room, "text": "as mallory", "sendingUri": "mimi://elsewhere.test/u/mallory"})
	if other.Response == nil || other.Response.Status != "notAllowed" || other.Status >= 500 {
		t.Errorf("sendingUri of another domain: %+v", other)
	}
	if got := rawNotify(t, cfg, peer, room, body); got != http.StatusForbidden {
		t.Errorf("notify from a follower of the room: status %d, want 403", got)
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Fatalf("bad input reached a phone: %+v", subs)
	}

	for range 2 {
		got, b := rawSubmit(t, cfg, peer, room, body, "")
		if got != http.StatusOK || submitStatus(t, b) != wire.Accepted {
			t.Fatalf("genuine submitMessage: status %d %x", got, b)
		}
	}
	// A later message, once at the phone, shows the genuine one was
	// delivered once.
	if a := aliceSays(t, peer, map[string]any{"room": room, "text": "last reply"}); a.Response == nil || a.Response.Status != "accepted" {
		t.Fatalf("last reply: %+v", a)
	}
	waitSubmit(t, cfg, "last reply")
	waitSubmit(t, cfg, "genuine reply")
	if n := smsCount(t, cfg, "genuine reply"); n != 1 {
		t.Errorf("the reply submitted twice gave %d SMS, want 1", n)
	}
}

// Every client of alice that her provider hands key material for is added
// to the room the gateway opens: both of her two clients join from the
// one Welcome.
func TestProviderHubAllClients(t *testing.T) {
	t.Parallel()
	cfg, peer := hubGateway(t)
	peer.Call(map[string]any{"op": "clients", "n": 2})
	room := phoneWritesFirst(t, cfg, peer, "+15551230002", "Hello, both of alice's clients").Room
	info := peer.Call(map[string]any{"op": "roomInfo", "room": room})
	want := "[mimi://desktop.test/d/alice/1 mimi://desktop.test/d/alice/2]"
	if fmt.Sprint(info["clients"]) != want {
		t.Errorf("alice's clients in the room: %v, want %s", info["clients"], want)
	}
	phone := "mimi://" + cfg.Domain + "/u/+15551230002"
	if got := fmt.Sprint(info["members"]); got != fmt.Sprintf("[%s %s %s]", phone, alice, alice) {
		t.Errorf("room members %s, want the phone user and two leaves of alice", got)
	}
}

// A peer whose key material for alice holds a KeyPackage naming someone
// else (here one of the gateway's own phone users) gets no room: the
// message from the phone fails, no Welcome or text reaches the peer, and
// an error report about the message comes back to the phone's side (an
// SMS phone has nothing to show it: counted as such).
func TestProviderHubForeignKeyPackage(t *testing.T) {
	t.Parallel()
	cfg, peer := hubGateway(t)
	peer.Call(map[string]any{"op": "clients", "n": 1, "identity": "mimi://" + cfg.Domain + "/u/+15551230003"})
	injectMO(t, cfg, "+15551230002", aliceNumber, "Hello alice?")
	for _, series := range []string{`mimigw_provider_outbox_total{outcome="failed"}`, `mimigw_gateway_notifications_total{outcome="sms"}`} {
		deadline := time.Now().Add(waitProvider)
		for sample(scrape(t, cfg), series) != "1" {
			if time.Now().After(deadline) {
				t.Fatalf("%s is %q, want 1", series, sample(scrape(t, cfg), series))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := peer.Call(map[string]any{"op": "received"})["messages"]; fmt.Sprint(got) != "[]" {
		t.Errorf("the peer got %v from a room it should not have", got)
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Errorf("a phone got %+v", subs)
	}
}

// A follower of a room the gateway hosts commits by update as its own
// users only: a commit adding a client that names one of the gateway's
// phone users, or removing the phone user, is refused (notAllowed) and
// changes nothing; adding another client of alice is taken. The room goes
// on: the phone's next texts reach alice after each.
func TestProviderHubFollowerPolicy(t *testing.T) {
	t.Parallel()
	cfg, peer := hubGateway(t)
	phone := "mimi://" + cfg.Domain + "/u/+15551230002"
	room := phoneWritesFirst(t, cfg, peer, "+15551230002", "Hello alice, first").Room
	for _, c := range []struct {
		name, want string
		req        map[string]any
	}{
		{"a client named as a phone user", "notAllowed", map[string]any{"add": "mimi://" + cfg.Domain + "/u/+15551230003"}},
		{"the phone user removed", "notAllowed", map[string]any{"remove": []string{phone}}},
		{"a client of a third provider", "notAllowed", map[string]any{"add": "mimi://third.test/u/carol"}},
		{"another client of alice", "success", map[string]any{"add": alice}},
	} {
		c.req["op"], c.req["peer"], c.req["room"] = "followerCommit", cfg.Domain, room
		ans := peer.Call(c.req)
		if ans["code"] != c.want {
			t.Errorf("%s: %v, want %s", c.name, ans, c.want)
		}
		text := "after " + c.name
		phoneWritesFirst(t, cfg, peer, "+15551230002", text)
	}
	info := peer.Call(map[string]any{"op": "roomInfo", "room": room})
	if got := fmt.Sprint(info["members"]); got != fmt.Sprintf("[%s %s %s]", phone, alice, alice) {
		t.Errorf("room members %s, want the phone user and two leaves of alice", got)
	}
}
