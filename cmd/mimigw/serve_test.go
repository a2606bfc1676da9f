package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// nextPort is the next port freeAddr tries. It hands out ports below the
// kernel's ephemeral range (32768 and up on Linux), in turn (12,768 of
// them before it starts again), so never twice in a test run: a port taken from the ephemeral range and freed again could be
// taken meanwhile by any outgoing connection or listener on port 0 of
// the tests running beside (seen in CI as "address already in use").
// Nothing else in the tests uses ports below 32768; the start differs
// between runs so that a test binary's leftovers do not matter.
var nextPort atomic.Int32

func init() { nextPort.Store(int32(20000 + os.Getpid()%10000)) }

// freeAddr finds a loopback port free for TCP and UDP that it did not
// hand out before.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 1000 {
		p := nextPort.Add(1)
		if p >= 32768 {
			nextPort.CompareAndSwap(p, 20000)
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatal("freeAddr: no free port below 32768")
	return ""
}

// `mimigw send` puts a MIMI text on mimi.to.tel.<digits> with every header
// of the bus contract.
func TestSendPublishesContract(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var out, errOut bytes.Buffer
	err := run([]string{"send", "--nats", b.ClientURL(), "--timeout", "0", "--to", "(555) 123-0002", "hi", "there"}, &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v (%s)", err, errOut.String())
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "id: ")
	if !ok {
		t.Fatalf("send printed %q, want id: <message ID>", out.String())
	}
	stream, err := b.JetStream().Stream(context.Background(), b.Config().ToPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(context.Background(), "mimi.to.tel.15551230002")
	if err != nil {
		t.Fatal(err)
	}
	env, err := bus.ParseEnvelope(raw.Header)
	if err != nil {
		t.Fatal(err)
	}
	sender := "mimi://" + devDomain + "/u/mimigw-send"
	if env.ID != id || raw.Header.Get("Nats-Msg-Id") != id+".15551230002" || raw.Header.Get("Mimi-Id") != id ||
		env.Sender != sender || env.Recipient != "tel:+15551230002" || env.Channel != "auto" || env.Accepted.IsZero() {
		t.Errorf("envelope %+v, headers %v", env, raw.Header)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", raw.Header.Get("Mimi-Accepted")); err != nil {
		t.Errorf("Mimi-Accepted %q: %v", raw.Header.Get("Mimi-Accepted"), err)
	}
	m, err := content.Decode(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := m.Text(); text != "hi there" || m.Extensions.SenderURI != sender || m.Extensions.RoomURI != env.Room {
		t.Errorf("content %+v", m)
	}
	if got, _ := m.ID(); got.String() != id {
		t.Errorf("content ID %s, header %s", got, id)
	}
	if u, err := uri.ParseMIMI(env.Room); err != nil || u.Kind != uri.Room {
		t.Errorf("room %q", env.Room)
	}
}

// The dev gateway, on free ports: a text sent with `mimigw send` goes out
// by SMS through the built-in simulator and its delivered report comes
// back; the admin API answers with the dev token.
func TestServeDevEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // nobody there: RCS fails, SMS it is
		keyFile := filepath.Join(cfg.DataDir, "mls.key")
		if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.MLS = &mls.Config{State: mls.StateConfig{KeyFile: keyFile}}
	})
	base := "http://" + cfg.HTTP.Listen

	var out, errOut bytes.Buffer
	err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--to", "+15551230002", "hello €"}, &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "id: ") || lines[1] != "status: delivered" {
		t.Fatalf("send printed %q", out.String())
	}
	// It reached the SMSC as GSM 7-bit: data_coding 0, € as the escape
	// 0x1B 0x65, from a lent number.
	subs := simulatorLog(t, cfg)
	if len(subs) != 1 {
		t.Fatalf("simulator log %+v", subs)
	}
	if s := subs[0]; s.DataCoding != 0 || string(s.ShortMessage) != "hello \x1be" || s.Text != "hello €" || s.Dest != "15551230002" || !strings.HasPrefix(s.Source, "1555999") {
		t.Errorf("submit_sm %+v", s)
	}

	token, _, err := cfg.adminToken(true)
	if err != nil || token == "" {
		t.Fatalf("dev token: %q %v", token, err)
	}
	if filepath.Dir(filepath.Join(cfg.DataDir, "admin-token")) != cfg.DataDir {
		t.Fatal("token outside the data dir")
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/numbers", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"contact": "+15551230002"`) {
		t.Errorf("numbers API %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "SMSC SIMULATOR") || strings.Contains(string(body), token) || strings.Contains(string(body), strings.Repeat("ab", 32)) {
		t.Errorf("status page must mark the simulator and never show the token or keys")
	}
	if !strings.Contains(string(body), "end-to-end encryption ends at the gateway") {
		t.Errorf("status page does not say where end-to-end encryption ends")
	}
}

// startDev runs the dev gateway (`serve --dev`: embedded NATS, the SMSC
// simulator with receipts after 10 ms) on free loopback ports, changed by
// change, until the test ends, and returns its configuration once /readyz
// answers 200.
func startDev(t *testing.T, change func(*Config)) *Config {
	t.Helper()
	cfg := devConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = freeAddr(t)
	cfg.Bus.Embedded.Listen = freeAddr(t)
	sipAddr := freeAddr(t)
	cfg.SIP.Listen.UDP, cfg.SIP.Listen.TCP = sipAddr, sipAddr
	cfg.SIP.Listen.MSRP = freeAddr(t)
	smscAddr := freeAddr(t)
	cfg.Simulator.Listen, cfg.Simulator.HTTP = smscAddr, freeAddr(t)
	cfg.Simulator.ReceiptDelay = 10 * time.Millisecond
	cfg.SMPP.SMSCs[0].Address = smscAddr
	cfg.Provider.Listen = freeAddr(t)
	change(&cfg)
	cfg.devSecrets()
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, &cfg, true, bustest.Logger(t)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &cfg
			}
		}
		select {
		case err := <-done:
			done <- err // for Cleanup, which would otherwise wait for it
			t.Fatalf("serve stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// simulatorLog is what the SMSC simulator received.
func simulatorLog(t *testing.T, cfg *Config) []smsc.Submit {
	t.Helper()
	resp, err := http.Get("http://" + cfg.Simulator.HTTP + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var subs []smsc.Submit
	if err := json.NewDecoder(resp.Body).Decode(&subs); err != nil {
		t.Fatal(err)
	}
	return subs
}
