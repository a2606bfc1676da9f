package smsc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/receipt"
	"github.com/mimigw/mimigw/smpp/wire"
)

func testLog(t testing.TB) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(w, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, nil)), buf
}

// logBuffer keeps what the simulator logs, safe for its goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func start(t *testing.T, cfg Config) (*Server, string, *logBuffer) {
	t.Helper()
	log, buf := testLog(t)
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, ln.Addr().String(), buf
}

// esme is a bare ESME for the tests: it sends PDUs and reads what comes.
type esme struct {
	t   *testing.T
	c   net.Conn
	r   *wire.Reader
	seq uint32
}

func dial(t *testing.T, addr string) *esme {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &esme{t: t, c: c, r: wire.NewReader(c, 0)}
}

func (e *esme) write(frame []byte) {
	e.t.Helper()
	if _, err := e.c.Write(frame); err != nil {
		e.t.Fatal(err)
	}
}

func (e *esme) next() (wire.Header, []byte) {
	e.t.Helper()
	e.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, body, err := e.r.Next()
	if err != nil {
		e.t.Fatal(err)
	}
	return h, body
}

func (e *esme) bind(id pdu.ID, system, password string) pdu.Status {
	e.t.Helper()
	e.seq++
	f, err := wire.AppendBind(nil, id, e.seq, wire.Bind{SystemID: system, Password: password, InterfaceVersion: 0x34})
	if err != nil {
		e.t.Fatal(err)
	}
	e.write(f)
	h, _ := e.next()
	if h.ID != wire.ResponseID(id) || h.Seq != e.seq {
		e.t.Fatalf("bind answered %s seq %d", h.ID, h.Seq)
	}
	return h.Status
}

func (e *esme) submit(m *wire.Message) (pdu.Status, string) {
	e.t.Helper()
	e.seq++
	f, err := wire.AppendMessage(nil, wire.SubmitSM, e.seq, m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.write(f)
	for {
		h, body := e.next()
		if h.ID == wire.DeliverSM {
			continue // a receipt; tests that want them read them themselves
		}
		if h.ID != wire.SubmitSMResp || h.Seq != e.seq {
			e.t.Fatalf("submit answered %s seq %d", h.ID, h.Seq)
		}
		id, err := wire.DecodeResponseID(body)
		if err != nil {
			e.t.Fatal(err)
		}
		return h.Status, id
	}
}

func msg(dest, text string, receipt bool) *wire.Message {
	m := &wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230001", DestTON: 1, DestNPI: 1, Dest: dest, ShortMessage: []byte(text)}
	if receipt {
		m.RegisteredDelivery = 1
	}
	return m
}

func TestBindAuthentication(t *testing.T) {
	_, addr, logs := start(t, Config{Accounts: []Account{{SystemID: "gw", Password: "pw"}}})
	for _, c := range []struct {
		system, password string
		want             pdu.Status
	}{
		{"gw", "wrong", wire.StatusInvPaswd},
		{"other", "pw", wire.StatusInvSysID},
		{"gw", "pw", wire.StatusOK},
	} {
		if got := dial(t, addr).bind(wire.BindTransceiver, c.system, c.password); got != c.want {
			t.Fatalf("%s/%s: %#x, want %#x", c.system, c.password, uint32(got), uint32(c.want))
		}
	}
	e := dial(t, addr)
	if e.bind(wire.BindTransmitter, "gw", "pw") != wire.StatusOK || e.bind(wire.BindTransmitter, "gw", "pw") != wire.StatusAlyBnd {
		t.Fatal("second bind on one session not refused with ESME_RALYBND")
	}
	if !strings.Contains(logs.String(), "SMSC SIMULATOR") {
		t.Fatal("the simulator does not say what it is")
	}
}

func TestSubmitAndReceipts(t *testing.T) {
	s, addr, _ := start(t, Config{
		ReceiptDelay: time.Millisecond, IDFormat: "decimal", ReceiptIDFormat: "hex", ReceiptTLVs: true,
		Outcomes: map[string]string{"+15551230009": "UNDELIV", "+15551230008": "none"},
	})
	e := dial(t, addr)
	if e.bind(wire.BindTransceiver, "gw", "") != wire.StatusOK {
		t.Fatal("bind")
	}
	for _, c := range []struct {
		dest, stat string
	}{{"15551230002", "DELIVRD"}, {"15551230009", "UNDELIV"}, {"15551230008", ""}} {
		st, id := e.submit(msg(c.dest, "hello", true))
		if st != wire.StatusOK || id == "" {
			t.Fatalf("submit: %#x %q", uint32(st), id)
		}
		if c.stat == "" {
			continue
		}
		h, body := e.next()
		if h.ID != wire.DeliverSM {
			t.Fatalf("got %s, want the receipt", h.ID)
		}
		e.write(wire.AppendHeader(nil, wire.DeliverSMResp, 0, h.Seq))
		m, err := wire.DecodeMessage(body)
		if err != nil || m.ESMClass != wire.ESMClassReceipt || m.Source != c.dest {
			t.Fatalf("receipt %+v %v", m, err)
		}
		r, err := receipt.Parse(m.ShortMessage)
		if err != nil || r.Stat != c.stat {
			t.Fatalf("receipt text %q: %+v %v", m.ShortMessage, r, err)
		}
		// Decimal in submit_sm_resp, hex in the receipt: the same number.
		a, _ := receipt.Normalize(id, receipt.IDForm{Base: receipt.Decimal})
		b, _ := receipt.Normalize(r.ID, receipt.IDForm{Base: receipt.Hex})
		tlv, _ := m.TLV(wire.TagReceiptedMessageID)
		if a != b || string(tlv) != r.ID+"\x00" {
			t.Fatalf("ids %q / %q / TLV %q", id, r.ID, tlv)
		}
	}
	log := s.Received()
	if len(log) != 3 || log[0].Text != "hello" || log[0].MessageID == "" || s.ReceivedCount() != 3 {
		t.Fatalf("log %+v", log)
	}
}

// Held receipts go at once on release; with no_resend one refused is
// given up; after Restart the ids start at first_id again; after Drop an
// unanswered receipt comes again on the next bind.
func TestHeldReceiptsRestartAndDrop(t *testing.T) {
	s, addr, _ := start(t, Config{HoldReceipts: true, NoResend: true, FirstID: 1, ResponseTimeout: 5 * time.Second})
	e := dial(t, addr)
	if e.bind(wire.BindTransceiver, "gw", "") != wire.StatusOK {
		t.Fatal("bind")
	}
	var ids []string
	for range 3 {
		st, id := e.submit(msg("15551230002", "held", true))
		if st != wire.StatusOK {
			t.Fatalf("submit %#x", uint32(st))
		}
		ids = append(ids, id)
	}
	if ids[0] != "0000000001" || ids[2] != "0000000003" {
		t.Fatalf("ids %v, want from 0000000001", ids)
	}
	if st := s.ReceiptStats(); st.Held != 3 {
		t.Fatalf("stats %+v, want 3 held", st)
	}
	if n := s.ReleaseReceipts(); n != 3 {
		t.Fatalf("released %d", n)
	}
	// All three come before any answer: answer one OK, refuse one, and
	// leave the last unanswered.
	var seqs []uint32
	for range 3 {
		h, _ := e.next()
		if h.ID != wire.DeliverSM {
			t.Fatalf("got %s", h.ID)
		}
		seqs = append(seqs, h.Seq)
	}
	e.write(wire.AppendHeader(nil, wire.DeliverSMResp, wire.StatusOK, seqs[0]))
	e.write(wire.AppendHeader(nil, wire.DeliverSMResp, wire.StatusTempAppError, seqs[1]))
	deadline := time.Now().Add(10 * time.Second)
	for st := s.ReceiptStats(); st.Taken != 1 || st.Lost != 1 || st.Refused != 1; st = s.ReceiptStats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 1 taken, 1 refused and lost", st)
		}
		time.Sleep(time.Millisecond)
	}
	// The connection drops with the third unanswered: it comes again on
	// the next bind, and Restart issued ids from 1 again.
	s.Restart()
	e2 := dial(t, addr)
	if e2.bind(wire.BindTransceiver, "gw", "") != wire.StatusOK {
		t.Fatal("bind again")
	}
	h, _ := e2.next()
	if h.ID != wire.DeliverSM {
		t.Fatalf("got %s, want the receipt again", h.ID)
	}
	e2.write(wire.AppendHeader(nil, wire.DeliverSMResp, wire.StatusOK, h.Seq))
	if st, id := e2.submit(msg("15551230002", "after", true)); st != wire.StatusOK || id != "0000000001" {
		t.Fatalf("after restart: %#x %q, want id 0000000001", uint32(st), id)
	}
	for st := s.ReceiptStats(); st.Taken != 2 || st.Again != 1; st = s.ReceiptStats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 2 taken, 1 sent again", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFaults(t *testing.T) {
	s, addr, _ := start(t, Config{Outcome: "none", Faults: Faults{ThrottleEvery: 2}})
	e := dial(t, addr)
	e.bind(wire.BindTransmitter, "gw", "")
	var got []pdu.Status
	for range 4 {
		st, _ := e.submit(msg("15551230002", "x", false))
		got = append(got, st)
	}
	if got[0] != 0 || got[1] != wire.StatusThrottled || got[2] != 0 || got[3] != wire.StatusThrottled {
		t.Fatalf("throttle every 2nd: %v", got)
	}
	s.SetFaults(Faults{FailEvery: 1, FailStatus: uint32(wire.StatusInvDstAdr)})
	if st, _ := e.submit(msg("15551230002", "x", false)); st != wire.StatusInvDstAdr {
		t.Fatalf("fail every: %#x", uint32(st))
	}
	s.SetFaults(Faults{DropEvery: 1})
	e.seq++
	f, _ := wire.AppendMessage(nil, wire.SubmitSM, e.seq, msg("15551230002", "dropped", false))
	e.write(f)
	e.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := e.r.Next(); err == nil {
		t.Fatal("connection not dropped")
	}
	log := s.Received()
	if last := log[len(log)-1]; last.Text != "dropped" || last.MessageID == "" {
		t.Fatalf("dropped message not logged as taken: %+v", last)
	}
}

func TestBadPDUs(t *testing.T) {
	_, addr, _ := start(t, Config{Outcome: "none"})
	e := dial(t, addr)
	e.bind(wire.BindTransceiver, "gw", "")
	e.write(wire.AppendHeader(nil, 0x0999, 0, 77))
	if h, _ := e.next(); h.ID != wire.GenericNack || h.Status != wire.StatusInvCmdID || h.Seq != 77 {
		t.Fatalf("unknown command: %+v", h)
	}
	f := wire.AppendHeader(nil, wire.SubmitSM, 0, 78)
	f = append(f, 0, 1, 1)
	f[3] = byte(len(f))
	e.write(f)
	if h, _ := e.next(); h.ID != wire.GenericNack || h.Status != wire.StatusInvCmdLen || h.Seq != 78 {
		t.Fatalf("truncated submit_sm: %+v", h)
	}
	e.write(wire.AppendHeader(nil, wire.EnquireLink, 0, 79))
	if h, _ := e.next(); h.ID != wire.EnquireLinkResp || h.Seq != 79 {
		t.Fatalf("enquire_link after bad input: %+v", h)
	}
}

func TestInjectMOAndHTTP(t *testing.T) {
	s, addr, _ := start(t, Config{Outcome: "none"})
	e := dial(t, addr)
	e.bind(wire.BindReceiver, "gw", "")
	// Answer every deliver_sm; keep their texts.
	var mu sync.Mutex
	var parts []coding.Part
	go func() {
		for {
			e.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			h, body, err := e.r.Next()
			if err != nil {
				return
			}
			if h.ID != wire.DeliverSM {
				continue
			}
			m, _ := wire.DecodeMessage(body)
			p, err := coding.Decode(m.DataCoding, m.ESMClass&wire.ESMClassUDHI != 0, m.ShortMessage, coding.Options{})
			if err == nil {
				mu.Lock()
				parts = append(parts, p)
				mu.Unlock()
			}
			e.c.Write(wire.AppendHeader(nil, wire.DeliverSMResp, 0, h.Seq))
		}
	}()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	body := `{"from":"+15551230002","to":"+15551230001","text":"` + strings.Repeat("long text 😀 ", 10) + `","order":[2,1]}`
	resp, err := http.Post(hs.URL+"/mo", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Statuses []uint32 }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(out.Statuses) != 2 || out.Statuses[0] != 0 || out.Statuses[1] != 0 {
		t.Fatalf("POST /mo: %d %+v", resp.StatusCode, out)
	}
	mu.Lock()
	if len(parts) != 2 || parts[0].Concat == nil || parts[0].Concat.Seq != 2 || parts[1].Concat.Seq != 1 {
		t.Fatalf("parts %+v", parts)
	}
	mu.Unlock()

	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/mo", `{"from":"+1","text":"x"}`, 400},
		{"POST", "/mo", `{"from":"+1","to":"+2","text":"x","bogus":1}`, 400},
		{"POST", "/faults", `{"throttle_every":5}`, 200},
		{"POST", "/faults", `{"rate":-1}`, 400},
		{"GET", "/messages?limit=x", "", 400},
		{"GET", "/sessions", "", 200},
	} {
		req, _ := http.NewRequest(c.method, hs.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
	}
	if s.currentFaults().ThrottleEvery != 5 {
		t.Fatal("faults not set over HTTP")
	}
	// The log over HTTP.
	tx := dial(t, addr)
	tx.bind(wire.BindTransmitter, "gw", "")
	tx.submit(msg("15551230002", "logged", false))
	resp, err = http.Get(hs.URL + "/messages?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	var log []Submit
	json.NewDecoder(resp.Body).Decode(&log)
	resp.Body.Close()
	if len(log) != 1 || log[0].Text != "logged" {
		t.Fatalf("GET /messages: %+v", log)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		key string
		cfg Config
	}{
		{"smsc.accounts[0].system_id", Config{Accounts: []Account{{}}}},
		{"smsc.id_format", Config{IDFormat: "base36"}},
		{"smsc.outcome", Config{Outcome: "LOST"}},
		{"smsc.outcomes[+1]", Config{Outcomes: map[string]string{"+1": "x"}}},
		{"smsc.receipt_delay", Config{ReceiptDelay: -1}},
		{"smsc.faults", Config{Faults: Faults{DropEvery: -1}}},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.key) {
			t.Errorf("want error naming %s, got %v", c.key, err)
		}
	}
}

// The address the gateway advertises for the simulator's hook answers at
// its root, naming what is there; unknown paths are 404.
func TestHTTPIndex(t *testing.T) {
	s, _, _ := start(t, Config{Name: "sim-x"})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "SMSC simulator sim-x") || !strings.Contains(string(b), "POST /mo") {
		t.Errorf("GET / = %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(hs.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want 404", resp.StatusCode)
	}
}
