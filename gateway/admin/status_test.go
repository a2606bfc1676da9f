package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

// /readyz reports every edge as JSON and answers by the edges required:
// those the request names, else the configured ones, else all.
func TestReadyzPerEdge(t *testing.T) {
	t.Parallel()
	checks := map[string]Check{
		"bus":  func() error { return nil },
		"sip":  func() error { return nil },
		"smpp": func() error { return errors.New("smpp: no SMSC bound for sending (smsc1)") },
	}
	for _, c := range []struct {
		required []string
		query    string
		code     int
		want     []string
	}{
		{nil, "", 503, []string{"bus", "sip", "smpp"}},
		{nil, "?require=bus,sip", 200, []string{"bus", "sip"}},
		{nil, "?require=bus&require=smpp", 503, []string{"bus", "smpp"}},
		{[]string{"bus"}, "", 200, []string{"bus"}},
		{[]string{"bus"}, "?require=smpp", 503, []string{"smpp"}},
		{nil, "?require=bus,mls", 503, []string{"bus", "mls"}},
		{nil, "?require=,", 503, []string{"bus", "sip", "smpp"}},
	} {
		srv := httptest.NewServer(Handler(Options{Checks: checks, Required: c.required}))
		code, body := call(t, srv, "GET", "/readyz"+c.query, "", "")
		srv.Close()
		var rep struct {
			Ready    bool
			Required []string
			Edges    map[string]struct {
				Ready    bool
				Required bool
				Error    string
			}
		}
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("%v %s: %v: %s", c.required, c.query, err, body)
		}
		if code != c.code || rep.Ready != (c.code == 200) || strings.Join(rep.Required, ",") != strings.Join(c.want, ",") {
			t.Errorf("%v %s: %d %s", c.required, c.query, code, body)
		}
		if e := rep.Edges["smpp"]; e.Ready || e.Error != "smpp: no SMSC bound for sending (smsc1)" || !rep.Edges["bus"].Ready || !rep.Edges["sip"].Ready {
			t.Errorf("%v %s: edges %s", c.required, c.query, body)
		}
		for _, name := range c.want {
			if !rep.Edges[name].Required {
				t.Errorf("%v %s: %s not marked required: %s", c.required, c.query, name, body)
			}
		}
		if c.query == "?require=bus,mls" && rep.Edges["mls"].Error != "not configured on this instance" {
			t.Errorf("unknown edge: %s", body)
		}
	}
}

// The page shows rates over the last minute from the registry, each
// SMSC's binds, window and last failure, refreshes itself, and shows no
// secret.
func TestStatusPageRatesAndSMSC(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	out := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mimigw_gateway_outbound_total", Help: "x"}, []string{"channel", "outcome"})
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mimigw_sip_answers_total", Help: "x"}, []string{"method", "code"})
	binds := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mimigw_smpp_binds_up", Help: "x"}, []string{"smsc", "mode"})
	window := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mimigw_smpp_window_in_use", Help: "x"}, []string{"smsc"})
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mimigw_smpp_bind_attempts_total", Help: "x"}, []string{"smsc", "outcome"})
	reg.MustRegister(out, answers, binds, window, attempts)
	out.WithLabelValues("sms", "sent").Add(5) // before the first sample: not in the rates
	binds.WithLabelValues("smsc1", "transceiver").Set(1)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := httptest.NewServer(Handler(Options{
		Token: "s3cret-token-0123456789", Registry: reg, Context: ctx, SampleEvery: 20 * time.Millisecond,
		Checks:  map[string]Check{"smpp": func() error { return nil }},
		SMSCs:   []SMSC{{Name: "smsc1", Address: "127.0.0.1:2775", Binds: 1, Window: 10}, {Name: "backup", Address: "10.0.0.9:2775", TLS: true}},
		SIP:     &SIP{Listeners: []string{"udp 127.0.0.1:5060"}, Trusted: []string{"127.0.0.0/8"}, OutboundProxy: "sip:127.0.0.1:5070"},
		Facts:   map[string]string{"nats": "nats://***@127.0.0.1:4222"},
		Notices: []string{"SMSC SIMULATOR in use"},
	}))
	t.Cleanup(srv.Close)
	out.WithLabelValues("sms", "sent").Inc()
	out.WithLabelValues("rcs", "failed").Add(2)
	answers.WithLabelValues("MESSAGE", "503").Add(3)
	answers.WithLabelValues("MESSAGE", "202").Inc()
	window.WithLabelValues("smsc1").Set(4)
	attempts.WithLabelValues("backup", "refused").Inc()
	time.Sleep(100 * time.Millisecond) // a few samples

	code, body := call(t, srv, "GET", "/", "", "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`<tr id="rate-out-sms"><th>to phones by SMS (network accepted)</th><td class="num count">1</td>`,
		`<tr id="rate-out-failed"><th>to phones: given up (error report sent)</th><td class="num count bad">2</td>`,
		`<tr id="rate-sip-503"><th>SIP answers 503</th><td class="num count bad">3</td>`,
		`<tr id="rate-sip-2xx"><th>answered 2xx</th><td class="num count">1</td>`,
		`<tr id="smsc-smsc1"><th>smsc1</th><td>127.0.0.1:2775</td><td class="ok">transceiver 1 of 1 up</td><td>4 in use (window 10 per bind)</td>`,
		`<tr id="smsc-backup"><th>backup</th><td>10.0.0.9:2775 (TLS)</td><td class="bad">none up</td>`,
		`bind refused ×1, `,
		`<td>none since start</td>`,
		"udp 127.0.0.1:5060", "127.0.0.0/8", "sip:127.0.0.1:5070",
		`<tr id="ready-smpp"><th>smpp</th><td class="ok">ready</td>`,
		"SMSC SIMULATOR in use",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "s3cret") || strings.Contains(body, `id="search"`) {
		t.Error("the page shows the token, or a search without Trace")
	}
}

// A search shows the trace as a table and does not refresh; the key is
// escaped; a failing search says why.
func TestStatusPageTrace(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 17, 5, 43, 123e6, time.UTC)
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(Handler(Options{Trace: func(ctx context.Context, key string) (*gateway.Trace, error) {
		mu.Lock()
		asked = append(asked, key)
		mu.Unlock()
		if key == "boom" {
			return nil, errors.New("bus unavailable")
		}
		return &gateway.Trace{Key: key, As: []string{"MIMI message ID"}, Notes: []string{"a note"}, Messages: []gateway.MessageTrace{{
			ID: "ab12", Direction: "to phone", Phone: "+15551230002", Peer: "mimi://desk.example/u/alice", Channel: gateway.ChannelSMS, State: "delivered", FoundBy: "out.ab12",
			Steps: []gateway.Step{{At: at, Name: "accepted", Detail: "taken"}, {Name: "channel", Detail: "sms"}},
		}}}, nil
	}}))
	t.Cleanup(srv.Close)
	code, body := call(t, srv, "GET", "/?q=%3Cscript%3Ex%3C/script%3E", "", "")
	if code != 200 || strings.Contains(body, "<script>x") || !strings.Contains(body, "&lt;script&gt;x") {
		t.Errorf("key not escaped: %d %s", code, body)
	}
	for _, want := range []string{
		`<tr class="step"><td class="when">2026-12-04 17:05:43.123Z</td><th>accepted</th><td>taken</td></tr>`,
		`<tr class="step"><td class="when">not recorded</td><th>channel</th><td>sms</td></tr>`,
		`<h3>to phone &#43;15551230002: delivered</h3>`, "a note", `id="search"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("trace page lacks %q", want)
		}
	}
	if strings.Contains(body, "http-equiv") {
		t.Error("the trace view refreshes itself")
	}
	if _, body := call(t, srv, "GET", "/?q=boom", "", ""); !strings.Contains(body, `<p class="bad" id="trace-error">bus unavailable</p>`) {
		t.Errorf("failed search: %s", body)
	}
	_, body = call(t, srv, "GET", "/?q="+strings.Repeat("x", 1000), "", "")
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(body, "trace") || len(asked) != 3 || len(asked[2]) != maxQuery {
		t.Errorf("long key: asked %d keys", len(asked))
	}
}

// The bus section shows the connection, streams and consumers.
func TestStatusPageBus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	srv := httptest.NewServer(Handler(Options{Bus: b}))
	t.Cleanup(srv.Close)
	_, body := call(t, srv, "GET", "/", "", "")
	cfg := b.Config()
	for _, want := range []string{
		`<td class="ok">CONNECTED</td>`,
		`<tr id="stream-` + cfg.ToPhoneStream + `">`, `<tr id="stream-` + cfg.FromPhoneStream + `">`, `<tr id="stream-` + cfg.TimerStream + `">`,
		`<tr id="consumer-` + cfg.Consumer + `"><th>` + cfg.Consumer + `</th><td>` + cfg.ToPhoneStream + `</td><td>durable</td><td class="num">0</td>`,
		"0 in ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("bus section lacks %q", want)
		}
	}
}

// Rates cover the last minute: what was counted before it drops out, and
// the ring keeps no more than it needs.
func TestSamplerWindow(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mimigw_gateway_inbound_total", Help: "x"}, []string{"channel", "outcome"})
	reg.MustRegister(c)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &sampler{reg: reg, every: 5 * time.Second, now: func() time.Time { return clock }, lastFail: map[string]failure{}}
	for i := range 40 { // 200 s, one message every 5 s
		s.sample()
		clock = clock.Add(5 * time.Second)
		c.WithLabelValues("sms", "accepted").Inc()
		if i == 0 {
			if v := s.current(); v.delta("mimigw_gateway_inbound_total") != 1 || v.span() != 5*time.Second {
				t.Errorf("young process: %v over %s", v.delta("mimigw_gateway_inbound_total"), v.span())
			}
		}
	}
	v := s.current()
	if got := v.delta("mimigw_gateway_inbound_total", is("channel", "sms")); got != 12 || v.span() != time.Minute {
		t.Errorf("%v over %s, want 12 over 1m", got, v.span())
	}
	if r := rateOf(v, "x", "x", "mimigw_gateway_inbound_total"); r.Count != "12" || r.PerSec != "0.20/s" {
		t.Errorf("row %+v", r)
	}
	if len(s.ring) > int(rateWindow/s.every)+2 {
		t.Errorf("ring holds %d samples", len(s.ring))
	}
}
