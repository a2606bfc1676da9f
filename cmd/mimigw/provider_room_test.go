package main

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// A room hosted by another provider holds two of the gateway's phone
// users: alice's provider (this project's MLS clients and transport, in
// the test, on a bus of its own) adds both with one Welcome, and one
// notify of her text reaches both phones by SMS; each phone's delivered
// report comes back to alice by submitMessage.
func TestProviderRoomWithTwoPhones(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	cert, key, ca := desktopCert(t, data)
	hubAddr := freeAddr(t)
	cfg := startDev(t, func(cfg *Config) {
		cfg.DataDir = data
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
		cfg.Provider.Peers = []transport.Peer{{Domain: desktop, URL: "https://" + hubAddr}}
	})

	// alice's provider.
	keyFile := filepath.Join(t.TempDir(), "mls.key")
	stateKey := make([]byte, 32)
	_, _ = rand.Read(stateKey)
	if err := os.WriteFile(keyFile, stateKey, 0o600); err != nil {
		t.Fatal(err)
	}
	aliceMLS, err := mls.Open(ctx, mls.Config{State: mls.StateConfig{KeyFile: keyFile}}.WithDefaults(), bustest.NewServer(t).Bus(t).JetStream(), mls.WithLogger(bustest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	aliceClient, err := aliceMLS.Client(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	dCfg := transport.Config{Domain: desktop, Listen: hubAddr, CertFile: cert, KeyFile: key, CAFile: ca,
		Peers: []transport.Peer{{Domain: cfg.Domain, URL: "https://" + cfg.Provider.Listen}}}
	client, err := transport.NewClient(dCfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []*mls.Received
	// alice's hub, as the provider benchmarks have it.
	side := &benchSide{alice: aliceClient, onSubmit: func(_ string, rcv *mls.Received) {
		mu.Lock()
		reports = append(reports, rcv)
		mu.Unlock()
	}}
	hub, err := transport.NewServer(dCfg, map[transport.Endpoint]transport.Handler{
		transport.SubmitMessage: side.hubSubmit,
	}, transport.WithLogger(bustest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Listen(); err != nil {
		t.Fatal(err)
	}
	hubCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { _ = hub.Serve(hubCtx); close(served) }()
	t.Cleanup(func() { stop(); <-served })

	call := func(ep transport.Endpoint, param string, body []byte, want int) []byte {
		t.Helper()
		status, rb, err := client.Do(ctx, cfg.Domain, ep, param, body)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %s %v", ep, param, status, rb, err)
		}
		return rb
	}
	notify := func(room string, fm *wire.FanoutMessage) {
		t.Helper()
		fm.Timestamp = uint64(time.Now().UnixMilli())
		body, err := wire.MarshalNotify(fm)
		if err != nil {
			t.Fatal(err)
		}
		call(transport.Notify, room, body, http.StatusCreated)
	}

	// alice's room, with both phone users added by one commit.
	room := "mimi://" + desktop + "/r/team"
	phones := []uri.Number{"+15551230002", "+15551230003"}
	var kps [][]byte
	for _, n := range phones {
		user := uri.UserURI(cfg.Domain, n)
		req := &wire.KeyMaterialRequest{Protocol: wire.MLS10, RequestingUser: alice, TargetUser: user, RoomID: room,
			AcceptableCipherSuites: []uint16{1}, RequesterSignatureKey: aliceClient.SignatureKey(), RequesterCredential: aliceClient.Credential()}
		tbs, err := req.TBS()
		if err != nil {
			t.Fatal(err)
		}
		if req.Signature, err = aliceClient.Sign(tbs); err != nil {
			t.Fatal(err)
		}
		body, _ := req.Marshal()
		km, err := wire.UnmarshalKeyMaterialResponse(call(transport.KeyMaterial, user, body, http.StatusOK))
		if err != nil || km.UserStatus != wire.Success {
			t.Fatalf("keyMaterial for %s: %+v %v", user, km, err)
		}
		kps = append(kps, km.Clients[0].KeyPackage)
	}
	gid, err := aliceClient.CreateGroup(ctx, room, mls.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	commit, err := aliceClient.Commit(ctx, gid, mls.Changes{Add: kps})
	if err != nil {
		t.Fatal(err)
	}
	notify(room, &wire.FanoutMessage{Message: commit.Welcome, RatchetTree: wire.RatchetTreeOption{Kind: wire.TreeFull, Tree: commit.RatchetTree}})

	// One notify of alice's text.
	text := content.NewText(alice, room, "Hello both of you", content.NewSalt())
	plain, err := text.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id, err := text.ID()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := aliceClient.Encrypt(ctx, gid, plain)
	if err != nil {
		t.Fatal(err)
	}
	notify(room, &wire.FanoutMessage{Message: ct})

	deadline := time.Now().Add(waitProvider)
	got := waitSMS(t, cfg, "Hello both of you", []string{"15551230002", "15551230003"}, deadline)

	// Each phone's delivered report reaches alice, as that phone user.
	want := map[string]bool{uri.UserURI(cfg.Domain, phones[0]): true, uri.UserURI(cfg.Domain, phones[1]): true}
	for {
		mu.Lock()
		for _, rcv := range reports {
			m, err := content.Decode(rcv.Content)
			if err != nil {
				t.Fatalf("report from %s: %v", rcv.Sender, err)
			}
			entries, ok, _ := m.StatusReport()
			if ok && len(entries) == 1 && entries[0].ID == id && entries[0].Status == content.Delivered {
				delete(want, rcv.Sender)
			}
		}
		mu.Unlock()
		if len(want) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivered report from %v", want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The first phone answers alice in the room: the hub gets it, and the
	// other phone, which the hub does not send it back to, too.
	injectMO(t, cfg, string(phones[0]), "+"+got["15551230002"].Source, "Thanks, from the first phone")
	waitSMS(t, cfg, "Thanks, from the first phone", []string{"15551230003"}, time.Now().Add(waitProvider))
}

// waitSMS waits until the SMSC simulator got text once for each of dests
// (digits, sorted), and nowhere else; it returns those SMS by destination.
func waitSMS(t *testing.T, cfg *Config, text string, dests []string, deadline time.Time) map[string]smsc.Submit {
	t.Helper()
	for {
		got := map[string]smsc.Submit{}
		var to []string
		for _, s := range simulatorLog(t, cfg) {
			if s.Text == text {
				got[s.Dest] = s
				to = append(to, s.Dest)
			}
		}
		slices.Sort(to)
		if slices.Equal(to, dests) {
			return got
		}
		if len(to) > len(dests) || time.Now().After(deadline) {
			t.Fatalf("the SMSC got %q for %v, want one each for %v", text, to, dests)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
