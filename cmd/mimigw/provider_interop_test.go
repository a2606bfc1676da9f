package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/deploy/interop/nodepeer"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/provider"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/sip/sipptest"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// These tests run the dev gateway as a MIMI provider against another
// provider this project did not write the MLS of: deploy/interop/
// mimi-provider-peer.mjs, a desktop user's provider on npm ts-mls that
// encodes the protocol's structures on its own, and against a second
// mimigw deployment.

const (
	desktop      = "desktop.test"
	alice        = "mimi://desktop.test/u/alice"
	waitProvider = 20 * time.Second
)

// desktopPeer drives mimi-provider-peer.mjs.
type desktopPeer struct {
	*nodepeer.Peer
	t *testing.T
}

func startDesktopPeer(t *testing.T) *desktopPeer {
	t.Helper()
	return &desktopPeer{Peer: nodepeer.Start(t, "mimi-provider-peer.mjs", "ts-mls", "cborg"), t: t}
}

// peerMessage is what the desktop peer decrypted from submitMessage.
type peerMessage struct {
	Room, Sender, SendingURI, ContentType, Text, ID string
	Statuses                                        []struct{ ID, Status string }
}

// received waits until the desktop peer has decrypted messages for which
// done returns true, and returns everything it got.
func (p *desktopPeer) received(done func([]peerMessage) bool) []peerMessage {
	p.t.Helper()
	var all []peerMessage
	deadline := time.Now().Add(waitProvider)
	for {
		ans := p.Call(map[string]any{"op": "received"})
		b, _ := json.Marshal(ans["messages"])
		var got []peerMessage
		if err := json.Unmarshal(b, &got); err != nil {
			p.t.Fatal(err)
		}
		all = append(all, got...)
		if done(all) {
			return all
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("desktop peer received %+v", all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// providerGateway starts a dev gateway whose provider listener is on a
// free port, with the desktop peer as its peer; the peer gets a
// certificate for desktop.test from the gateway's dev CA, as
// `mimigw provider cert` would give a tester.
func providerGateway(t *testing.T, change func(*Config)) (*Config, *desktopPeer) {
	t.Helper()
	data := t.TempDir()
	cert, key, ca := desktopCert(t, data)
	peer := startDesktopPeer(t)
	url := peer.Call(map[string]any{"op": "listen", "cert": cert, "key": key, "ca": ca})["url"].(string)
	cfg := startDev(t, func(cfg *Config) {
		cfg.DataDir = data
		cfg.Provider.Peers = []transport.Peer{{Domain: desktop, URL: url}}
		change(cfg)
	})
	peer.Call(map[string]any{"op": "peer", "domain": cfg.Domain, "url": "https://" + cfg.Provider.Listen,
		"cert": cert, "key": key, "ca": ca})
	return cfg, peer
}

// desktopCert makes the dev CA of a gateway whose data directory is data
// and issues a certificate for desktop.test from it, as `mimigw provider
// cert` would give a tester; ca is the CA's certificate.
func desktopCert(t *testing.T, data string) (cert, key, ca string) {
	t.Helper()
	caDir := filepath.Join(data, devCADir)
	if err := transport.EnsureDevCA(caDir); err != nil {
		t.Fatal(err)
	}
	cert, key, err := transport.IssueCert(caDir, desktop, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, filepath.Join(caDir, "ca.pem")
}

// waitSubmit waits until the SMSC simulator got a message with text.
func waitSubmit(t *testing.T, cfg *Config, text string) smsc.Submit {
	t.Helper()
	deadline := time.Now().Add(waitProvider)
	for {
		for _, s := range simulatorLog(t, cfg) {
			if s.Text == text {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SMSC never got %q: %+v", text, simulatorLog(t, cfg))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// smsCount is how many SMS with text the SMSC simulator got so far.
func smsCount(t *testing.T, cfg *Config, text string) int {
	t.Helper()
	n := 0
	for _, s := range simulatorLog(t, cfg) {
		if s.Text == text {
			n++
		}
	}
	return n
}

// injectMO has the simulator deliver an SMS from a phone to the gateway.
func injectMO(t *testing.T, cfg *Config, from, to, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"from": from, "to": to, "text": text})
	resp, err := http.Post("http://"+cfg.Simulator.HTTP+"/mo", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("MO injection: %d %s", resp.StatusCode, b)
	}
}

// aliceOpensRoom has the desktop peer find the phone user, fetch their key
// material, create a DM room and add them with a Welcome by notify.
func aliceOpensRoom(t *testing.T, cfg *Config, peer *desktopPeer, number, room string) {
	t.Helper()
	user := "mimi://" + cfg.Domain + "/u/" + number
	ans := peer.Call(map[string]any{"op": "identifierQuery", "peer": cfg.Domain, "phone": number})
	if code := ans["code"].(float64); code != 0 || fmt.Sprint(ans["uris"]) != "["+user+"]" {
		t.Fatalf("identifierQuery %s: %v", number, ans)
	}
	ans = peer.Call(map[string]any{"op": "keyMaterial", "peer": cfg.Domain, "target": user, "room": room})
	if st := ans["userStatus"].(float64); st != 0 {
		t.Fatalf("keyMaterial: %v", ans)
	}
	ans = peer.Call(map[string]any{"op": "createRoom", "peer": cfg.Domain, "room": room})
	if st := ans["status"].(float64); st != http.StatusCreated {
		t.Fatalf("notify with the Welcome: %v", ans)
	}
}

// A desktop user's provider (ts-mls) reaches a phone user by SMS: it finds
// the number by identifierQuery, fetches key material, opens a DM room with
// a Welcome and sends a text by notify, which reaches the SMSC; the phone's
// reply comes back to alice by submitMessage and decrypts to its text, and
// the SMS receipt of alice's text comes back as a delivered report.
func TestProviderDesktopPeerSMS(t *testing.T) {
	t.Parallel()
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
	})
	room := "mimi://desktop.test/r/dm-alice-sms"
	aliceOpensRoom(t, cfg, peer, "+15551230002", room)

	ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "Hello phone, from alice"})
	if st := ans["status"].(float64); st != http.StatusCreated {
		t.Fatalf("notify with the text: %v", ans)
	}
	aliceID := ans["id"].(string)
	sms := waitSubmit(t, cfg, "Hello phone, from alice")
	if sms.Dest != "15551230002" || !strings.HasPrefix(sms.Source, "1555999") {
		t.Errorf("SMS from %s to %s, want a lent number to 15551230002", sms.Source, sms.Dest)
	}

	injectMO(t, cfg, "+15551230002", "+"+sms.Source, "Hi alice, phone here")
	got := peer.received(func(ms []peerMessage) bool {
		text, delivered := false, false
		for _, m := range ms {
			text = text || m.Text == "Hi alice, phone here"
			for _, s := range m.Statuses {
				delivered = delivered || (s.ID == aliceID && s.Status == "delivered")
			}
		}
		return text && delivered
	})
	phone := "mimi://" + cfg.Domain + "/u/+15551230002"
	for _, m := range got {
		if m.Room != room || m.Sender != phone || m.SendingURI != phone {
			t.Errorf("message %+v: want room %s, sender and sendingUri %s", m, room, phone)
		}
	}
	// The status page counts the provider's traffic: alice's text in, the
	// reply and the delivered report out.
	page := get(t, "http://"+cfg.HTTP.Listen+"/")
	for id, want := range map[string]string{
		"rate-provider-in":  "from MIMI providers, decrypted for phones 1 ",
		"rate-provider-out": "to MIMI providers, encrypted from phones 2 ",
	} {
		if got := rowText(page, id); !strings.Contains(got, want) {
			t.Errorf("status page row %s: %q, want %q in it", id, got, want)
		}
	}
}

// The same with an RCS phone (SIPp): alice's text arrives as a CPIM
// MESSAGE, the phone's IMDN becomes alice's delivered report, and the
// phone's pager reply reaches alice.
func TestProviderDesktopPeerRCS(t *testing.T) {
	t.Parallel()
	port := sipptest.FreePort(t, "udp")
	phone := sipptest.Start(t, "uas_rcs_phone.xml", "-t", "u1", "-p", strconv.Itoa(port), "-m", "2", "-trace_msg")
	phone.WaitUDPBound(t, port)
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=udp"
	})
	room := "mimi://desktop.test/r/dm-alice-rcs"
	aliceOpensRoom(t, cfg, peer, "+15551230002", room)
	ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "Hello RCS phone"})
	aliceID := ans["id"].(string)
	phone.Wait(t)
	traces := phone.Traces()
	if !strings.Contains(traces, "Content-Type: message/cpim") || !strings.Contains(traces, "Hello RCS phone") {
		t.Fatalf("the phone got no CPIM MESSAGE with alice's text:\n%s", traces)
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Errorf("delivered by RCS, yet the SMSC got %+v", subs)
	}
	// The phone answers alice's lent number; the number it saw is in the
	// CPIM From of the MESSAGE.
	lent := lentNumberIn(t, traces)
	sipptest.Start(t, "uac_message.xml", "-t", "u1", "-m", "1", "-key", "caller", "+15551230002",
		"-key", "callee", lent, "-key", "text", "Hi alice, RCS here", cfg.SIP.Listen.UDP).Wait(t)
	peer.received(func(ms []peerMessage) bool {
		text, delivered := false, false
		for _, m := range ms {
			text = text || m.Text == "Hi alice, RCS here"
			for _, s := range m.Statuses {
				delivered = delivered || (s.ID == aliceID && s.Status == "delivered")
			}
		}
		return text && delivered
	})
}

// lentNumberIn finds the number the phone was shown for alice: the From of
// the MESSAGE it received.
func lentNumberIn(t *testing.T, traces string) string {
	t.Helper()
	for _, line := range strings.Split(traces, "\n") {
		if strings.HasPrefix(line, "From:") {
			if i := strings.Index(line, "+1555999"); i >= 0 {
				return line[i : i+12]
			}
		}
	}
	t.Fatalf("no lent number in the MESSAGE's From:\n%s", traces)
	return ""
}

// rawNotify sends bytes to the gateway's notify endpoint through the
// desktop peer and returns the HTTP status.
func rawNotify(t *testing.T, cfg *Config, peer *desktopPeer, room string, body []byte) int {
	t.Helper()
	ans := peer.Call(map[string]any{"op": "raw", "peer": cfg.Domain, "endpoint": "notify", "param": room,
		"body": base64.StdEncoding.EncodeToString(body)})
	return int(ans["status"].(float64))
}

// Two mimigw deployments on loopback, gw-a.test and gw-b.test, each with
// its own data, ports and CA: a phone on A texts a number B serves. A finds
// it by identifierQuery, opens a room with B's phone user and fans the
// text out to B, whose SMSC gets it; the reply from B's phone reaches A's
// hub by submitMessage and A's phone by A's SMSC.
func TestProviderTwoGateways(t *testing.T) {
	t.Parallel()
	type side struct {
		domain, data, listen, ca, served string
		cfg                              *Config
	}
	a := &side{domain: "gw-a.test", data: t.TempDir(), listen: freeAddr(t), served: "+1555123"}
	b := &side{domain: "gw-b.test", data: t.TempDir(), listen: freeAddr(t), served: "+1555777"}
	for _, s := range []*side{a, b} {
		dir := filepath.Join(s.data, devCADir)
		if err := transport.EnsureDevCA(dir); err != nil {
			t.Fatal(err)
		}
		s.ca = filepath.Join(dir, "ca.pem")
	}
	for _, pair := range [][2]*side{{a, b}, {b, a}} {
		s, other := pair[0], pair[1]
		s.cfg = startDev(t, func(cfg *Config) {
			cfg.Domain, cfg.DataDir = s.domain, s.data
			cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
			cfg.Provider.Listen, cfg.Provider.Served = s.listen, []string{s.served}
			cfg.Provider.Peers = []transport.Peer{{Domain: other.domain, URL: "https://" + other.listen, CAFile: other.ca}}
		})
	}

	injectMO(t, a.cfg, "+15551230001", "+15557770002", "Hello B, from a phone on A")
	sms := waitSubmit(t, b.cfg, "Hello B, from a phone on A")
	if sms.Dest != "15557770002" || !strings.HasPrefix(sms.Source, "1555999") {
		t.Errorf("B sent from %s to %s, want a lent number to 15557770002", sms.Source, sms.Dest)
	}
	// Both sides hold the room with its participant list: A wrote it into
	// the group it created, B read it from the Welcome's GroupContext.
	wantList := []string{"mimi://gw-a.test/u/+15551230001", "mimi://gw-b.test/u/+15557770002"}
	for _, s := range []*side{a, b} {
		if got := roomParticipants(t, s.cfg); !slices.Equal(got, wantList) {
			t.Errorf("%s: room participants %v, want %v", s.domain, got, wantList)
		}
	}
	injectMO(t, b.cfg, "+15557770002", "+"+sms.Source, "Hello A, B's phone answering")
	back := waitSubmit(t, a.cfg, "Hello A, B's phone answering")
	if back.Dest != "15551230001" {
		t.Errorf("A sent the reply to %s, want 15551230001", back.Dest)
	}
}

// Bad input from a peer gets the right answer, reaches no phone and leaves
// the stored MLS state as it was: a truncated or padded notify body (400),
// a notify for a room the gateway is not in (404), a notify from a peer
// that is not the room's hub or with a From that is not its certificate's
// domain (403), a tampered application message and a
// tampered commit (4xx, and the genuine ones apply afterwards, which they
// could not if the tampered ones had changed the state), and a notify sent
// twice (201 twice, one SMS).
func TestProviderBadInput(t *testing.T) {
	t.Parallel()
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp"
	})
	room := "mimi://desktop.test/r/dm-alice-bad"
	aliceOpensRoom(t, cfg, peer, "+15551230002", room)
	held := func(op, text string) []byte {
		ans := peer.Call(map[string]any{"op": op, "peer": cfg.Domain, "room": room, "text": text, "hold": true})
		b, err := base64.StdEncoding.DecodeString(ans["notifyBody"].(string))
		if err != nil || len(b) < 40 {
			t.Fatalf("%s: notify body %q %v", op, ans["notifyBody"], err)
		}
		return b
	}
	flip := func(b []byte, from int) []byte {
		c := bytes.Clone(b)
		c[len(c)-from] ^= 0x40
		return c
	}

	text := held("send", "first text")
	for _, tc := range []struct {
		name string
		room string
		body []byte
		want int
	}{
		{"truncated", room, text[:len(text)-5], http.StatusBadRequest},
		{"trailing garbage", room, append(bytes.Clone(text), 0xde, 0xad), http.StatusBadRequest},
		{"empty", room, nil, http.StatusBadRequest},
		{"unknown room", "mimi://desktop.test/r/never-made", text, http.StatusNotFound},
		{"room of another hub", "mimi://elsewhere.test/r/x", text, http.StatusForbidden},
		{"tampered ciphertext", room, flip(text, 3), 0},
	} {
		got := rawNotify(t, cfg, peer, tc.room, tc.body)
		if (tc.want != 0 && got != tc.want) || got < 400 || got >= 500 {
			t.Errorf("%s: status %d, want %d (a 4xx)", tc.name, got, tc.want)
		}
	}
	// A From that is not the certificate's domain.
	ans := peer.Call(map[string]any{"op": "raw", "peer": cfg.Domain, "endpoint": "notify", "param": room,
		"body": base64.StdEncoding.EncodeToString(text), "from": "mimi@elsewhere.test"})
	if got := int(ans["status"].(float64)); got != http.StatusForbidden {
		t.Errorf("wrong From: status %d, want 403", got)
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Fatalf("bad input reached a phone: %+v", subs)
	}
	// The genuine message still decrypts: the failures stored nothing.
	for range 2 {
		if got := rawNotify(t, cfg, peer, room, text); got != http.StatusCreated {
			t.Fatalf("genuine notify after the bad ones: %d", got)
		}
	}
	waitSubmit(t, cfg, "first text")

	commit := held("commit", "")
	if got := rawNotify(t, cfg, peer, room, flip(commit, 10)); got < 400 || got >= 500 {
		t.Errorf("tampered commit: status %d, want a 4xx", got)
	}
	if got := rawNotify(t, cfg, peer, room, commit); got != http.StatusCreated {
		t.Fatalf("genuine commit after the tampered one: %d", got)
	}
	if got := rawNotify(t, cfg, peer, room, commit); got != http.StatusCreated {
		t.Errorf("the commit again: %d, want 201 (applied once)", got)
	}
	if ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "after the commit"}); ans["status"].(float64) != http.StatusCreated {
		t.Fatalf("text in the new epoch: %v", ans)
	}
	waitSubmit(t, cfg, "after the commit")
	if n := smsCount(t, cfg, "first text"); n != 1 {
		t.Errorf("the notify sent three times gave %d SMS, want 1", n)
	}
}

// A gateway killed with SIGKILL after its 201 for a notify, before the
// SMS could go (its SMSC is down), loses nothing: restarted, it sends the
// text once the SMSC is up. The gateway runs as its own process, built
// from this package.
func TestProviderKillAfterNotify(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "mimigw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	caDir := filepath.Join(data, devCADir)
	if err := transport.EnsureDevCA(caDir); err != nil {
		t.Fatal(err)
	}
	const domain = "gw.test"
	gwCert, gwKey, err := transport.IssueCert(caDir, domain, caDir)
	if err != nil {
		t.Fatal(err)
	}
	peerCert, peerKey, err := transport.IssueCert(caDir, desktop, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(caDir, "ca.pem")
	peer := startDesktopPeer(t)
	peerURL := peer.Call(map[string]any{"op": "listen", "cert": peerCert, "key": peerKey, "ca": ca})["url"].(string)
	keyFile := filepath.Join(data, "mls.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	smscAddr, httpAddr, provAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	config := filepath.Join(data, "mimigw.yaml")
	yaml := fmt.Sprintf(`domain: %s
data_dir: %s
http: {listen: "%s"}
bus:
  embedded: {listen: "%s"}
  ack_wait: 2s
  max_deliver: 1000
  backoff: [200ms]
gateway: {pools: ["+15559990000-+15559990999"]}
smpp:
  smscs:
    - {name: smsc, address: "%s", system_id: gw, password: secret}
mls:
  state: {key_file: %s}
provider:
  listen: "%s"
  cert_file: %s
  key_file: %s
  ca_file: %s
  served: ["+"]
  peers:
    - {domain: %s, url: "%s"}
`, domain, data, httpAddr, freeAddr(t), smscAddr, keyFile, provAddr, gwCert, gwKey, ca, desktop, peerURL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", config)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		deadline := time.Now().Add(waitProvider)
		for {
			resp, err := http.Get("http://" + httpAddr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway not up: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	gw := start()
	peer.Call(map[string]any{"op": "peer", "domain": domain, "url": "https://" + provAddr, "cert": peerCert, "key": peerKey, "ca": ca})
	room := "mimi://desktop.test/r/dm-alice-kill"
	cfg := &Config{Domain: domain}
	aliceOpensRoom(t, cfg, peer, "+15551230002", room)
	if ans := peer.Call(map[string]any{"op": "send", "peer": domain, "room": room, "text": "survives a crash"}); ans["status"].(float64) != http.StatusCreated {
		t.Fatalf("notify: %v", ans)
	}
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()

	sim, err := smsc.New(smsc.Config{Name: "smsc", Accounts: []smsc.Account{{SystemID: "gw", Password: "secret"}}}, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", smscAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = sim.Serve(ctx, ln) }()
	start()
	deadline := time.Now().Add(waitProvider)
	for {
		got := sim.Received()
		if len(got) > 0 {
			if len(got) != 1 || got[0].Text != "survives a crash" || got[0].Dest != "15551230002" {
				t.Fatalf("the SMSC got %+v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the text was lost with the gateway")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGHUP reloads the provider's peers: a peer the gateway does not know is
// refused (403); once the configuration names it and the gateway gets a
// SIGHUP, the same request is answered.
func TestProviderPeersReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	var reloaded atomic.Bool
	cfg, peer := providerGateway(t, func(cfg *Config) {
		withPeer := cfg.Provider.Peers
		cfg.Provider.Peers = nil
		cfg.reload = func() (*Config, error) {
			c := *cfg
			p := *cfg.Provider
			p.Peers = withPeer
			c.Provider = &p
			reloaded.Store(true)
			return &c, nil
		}
	})
	query := func() int {
		body := []byte{0x0e, 0x04, 0x0c}
		body = append(body, "+15551230002"...)
		body = append(body, 0x00)
		ans, err := peer.Try(map[string]any{"op": "raw", "peer": cfg.Domain, "endpoint": "identifierQuery", "param": cfg.Domain,
			"body": base64.StdEncoding.EncodeToString(body)})
		if err != nil {
			// Refused at the directory already, before the request.
			if strings.Contains(err.Error(), "HTTP 403") {
				return http.StatusForbidden
			}
			t.Fatal(err)
		}
		return int(ans["status"].(float64))
	}
	if got := query(); got != http.StatusForbidden {
		t.Fatalf("unknown peer: %d, want 403", got)
	}
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := self.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitProvider)
	for {
		if reloaded.Load() && query() == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the peer is still refused (%d)", query())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// roomParticipants reads the participant list of the one room in the
// provider bucket of the dev gateway cfg runs.
func roomParticipants(t *testing.T, cfg *Config) []string {
	t.Helper()
	nc, err := nats.Connect("nats://" + cfg.Bus.Embedded.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, cmp.Or(cfg.Provider.Bucket, provider.DefaultBucket))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("rooms %v (%v), want one", keys, err)
	}
	e, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Participants []struct {
			User string `json:"user"`
		} `json:"participants"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, p := range rec.Participants {
		users = append(users, p.User)
	}
	return users
}

// A hub that puts in its room a client of its own whose credential names
// one of the gateway's phone users gets nothing delivered in that name:
// a text from that client to the room is refused (403) and reaches no
// phone, while alice's texts reach both phone users as before.
func TestProviderImpostorInRoom(t *testing.T) {
	t.Parallel()
	cfg, peer := providerGateway(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // no IMS core: SMS
	})
	room := "mimi://desktop.test/r/impostor"
	for _, n := range []string{"+15551230002", "+15551230003"} {
		ans := peer.Call(map[string]any{"op": "keyMaterial", "peer": cfg.Domain, "target": "mimi://" + cfg.Domain + "/u/" + n, "room": room})
		if st := ans["userStatus"].(float64); st != 0 {
			t.Fatalf("keyMaterial %s: %v", n, ans)
		}
	}
	impostor := "mimi://" + cfg.Domain + "/u/+15551230002"
	if ans := peer.Call(map[string]any{"op": "createRoom", "peer": cfg.Domain, "room": room, "impostor": impostor}); int(ans["status"].(float64)) != http.StatusCreated {
		t.Fatalf("notify with the Welcome: %v", ans)
	}
	ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "I am your phone friend", "asImpostor": true})
	if st := int(ans["status"].(float64)); st != http.StatusForbidden {
		t.Errorf("a text from the impostor: %v, want 403", ans)
	}
	if ans := peer.Call(map[string]any{"op": "send", "peer": cfg.Domain, "room": room, "text": "Hello both, alice here"}); int(ans["status"].(float64)) != http.StatusCreated {
		t.Fatalf("alice's text: %v", ans)
	}
	// Both phones' SMS of alice's text, then nothing of the impostor's.
	waitSMS(t, cfg, "Hello both, alice here", []string{"15551230002", "15551230003"}, time.Now().Add(waitProvider))
	if n := smsCount(t, cfg, "I am your phone friend"); n != 0 {
		t.Errorf("the impostor's text reached phones %d times", n)
	}
}
