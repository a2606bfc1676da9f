package admin

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mimigw/mimigw/gateway"
)

// The status page at /: server-rendered, refreshing itself every five
// seconds, except while it shows a trace (/?q=KEY) so that the trace stays
// put while it is read.

type row struct{ Name, Value, Err string }

type component struct {
	Name, Err string
	Required  bool
}

// rateRow is one rate over the window: what moved, how many, per second.
type rateRow struct {
	ID, Name string
	Count    string
	PerSec   string
}

type smscRow struct {
	Name, Address, Binds, Window, Submitted, Throttling, LastFailure string
	Up                                                               bool
}

type sipView struct {
	Listeners, Trusted []string
	OutboundProxy      string
	Digest             bool
	Rates              []rateRow
}

type page struct {
	Refresh    bool
	Query      string
	Search     bool
	Notices    []string
	Components []component
	Span       string
	Traffic    []rateRow
	Failures   []rateRow
	SMSCs      []smscRow
	SIP        *sipView
	Bus        *busState
	Facts      []row
	Started    string
	Now        string
	Trace      *gateway.Trace
	TraceErr   string
}

// maxQuery bounds a search key.
const maxQuery = 256

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	p := page{Notices: s.o.Notices, Search: s.o.Trace != nil, Started: s.started.UTC().Format(time.RFC3339)}
	p.Now = time.Now().UTC().Format("2006-01-02 15:04:05Z")
	p.Query = strings.TrimSpace(r.URL.Query().Get("q"))
	if len(p.Query) > maxQuery {
		p.Query = p.Query[:maxQuery]
	}
	if p.Query != "" {
		s.trace(r.Context(), &p)
	} else {
		s.overview(r.Context(), &p)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusPage.Execute(w, p); err != nil && s.o.Log != nil {
		s.o.Log.Warn("status page", "err", err)
	}
}

func (s *server) trace(ctx context.Context, p *page) {
	if s.o.Trace == nil {
		p.TraceErr = "search is not available on this instance"
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t, err := s.o.Trace(ctx, p.Query)
	if err != nil {
		p.TraceErr = err.Error()
		return
	}
	p.Trace = t
}

func (s *server) overview(ctx context.Context, p *page) {
	p.Refresh = true
	failed := s.readiness()
	req := map[string]bool{}
	for _, n := range s.o.Required {
		req[n] = true
	}
	for _, name := range sortedKeys(s.o.Checks) {
		p.Components = append(p.Components, component{Name: name, Err: failed[name], Required: len(s.o.Required) == 0 || req[name]})
	}
	for _, name := range sortedKeys(s.o.Facts) {
		p.Facts = append(p.Facts, row{Name: name, Value: s.o.Facts[name]})
	}
	if s.rates != nil {
		v := s.rates.current()
		p.Span = v.span().Round(time.Second).String()
		_, provider := s.o.Facts["provider"]
		p.Traffic, p.Failures = rates(v, provider)
		for _, c := range s.o.SMSCs {
			p.SMSCs = append(p.SMSCs, smscState(v, c))
		}
		if s.o.SIP != nil {
			p.SIP = &sipView{Listeners: s.o.SIP.Listeners, Trusted: s.o.SIP.Trusted, OutboundProxy: s.o.SIP.OutboundProxy,
				Digest: s.o.SIP.Digest, Rates: sipRates(v)}
		}
	} else if s.o.SIP != nil {
		p.SIP = &sipView{Listeners: s.o.SIP.Listeners, Trusted: s.o.SIP.Trusted, OutboundProxy: s.o.SIP.OutboundProxy, Digest: s.o.SIP.Digest}
	}
	if s.o.Bus != nil {
		st := readBus(ctx, s.o.Bus)
		p.Bus = &st
	}
}

// rateOf makes a row of what name's matching series gained over the span.
func rateOf(v view, id, label, name string, match ...matcher) rateRow {
	return rateRowOf(v, id, label, v.delta(name, match...))
}

func rateRowOf(v view, id, label string, n float64) rateRow {
	r := rateRow{ID: id, Name: label, Count: formatCount(n), PerSec: "–"}
	if sec := v.span().Seconds(); sec >= 1 {
		r.PerSec = strconv.FormatFloat(n/sec, 'f', 2, 64) + "/s"
	}
	return r
}

// rates are the gateway's flows, and its failures and 503s, over the
// span; with provider, the MIMI provider protocol's too.
func rates(v view, provider bool) (traffic, failures []rateRow) {
	const in, out = "mimigw_gateway_inbound_total", "mimigw_gateway_outbound_total"
	rows := []rateRow{
		rateOf(v, "in-sms", "from phones by SMS (accepted)", in, is("channel", "sms"), is("outcome", "accepted")),
		rateOf(v, "in-rcs", "from phones by RCS (accepted)", in, is("channel", "rcs"), is("outcome", "accepted")),
		rateOf(v, "out-sms", "to phones by SMS (network accepted)", out, is("channel", "sms"), is("outcome", "sent")),
		rateOf(v, "out-rcs", "to phones by RCS (network accepted)", out, is("channel", "rcs"), is("outcome", "sent")),
		rateOf(v, "fallback", "RCS to SMS fallbacks", "mimigw_gateway_sms_fallbacks_total"),
		rateOf(v, "receipts-sms", "SMS delivery receipts", "mimigw_gateway_receipts_total", is("channel", "sms"), is("outcome", "applied", "held", "unknown")),
		rateOf(v, "receipts-rcs", "IMDNs", "mimigw_gateway_receipts_total", is("channel", "rcs"), is("outcome", "applied", "held", "unknown")),
	}
	for _, st := range []string{"delivered", "read", "expired", "error"} {
		rows = append(rows, rateOf(v, "reports-"+st, "status reports: "+st, "mimigw_gateway_status_reports_total", is("status", st)))
	}
	// The MIMI provider protocol, where it runs: what peers' hubs fanned
	// out to the phone users, and what the outbox carried to rooms.
	const fanin, outbox = "mimigw_provider_received_total", "mimigw_provider_outbox_total"
	if provider {
		rows = append(rows,
			rateOf(v, "provider-in", "from MIMI providers, decrypted for phones", fanin, is("kind", "application"), is("outcome", "delivered")),
			rateOf(v, "provider-out", "to MIMI providers, encrypted from phones", outbox, is("outcome", "submitted", "fanned_out")))
	}
	failures = []rateRow{
		rateOf(v, "out-failed", "to phones: given up (error report sent)", out, is("outcome", "failed")),
		rateOf(v, "out-retry", "to phones: to be retried", out, is("outcome", "retry")),
		rateOf(v, "in-rejected", "from phones: refused", in, is("outcome", "rejected")),
		rateOf(v, "in-unavailable", "from phones: bus unavailable, peer told to retry", in, is("outcome", "unavailable")),
		rateOf(v, "submit-failed", "submit_sm not accepted", "mimigw_smpp_submits_total", is("outcome", "rejected", "timeout", "closed", "error")),
		rateOf(v, "bus-failed", "bus publishes failed", "mimigw_bus_publish_failures_total"),
		rateOf(v, "sip-503", "SIP answers 503", "mimigw_sip_answers_total", is("code", "503")),
		rateRowOf(v, "smpp-retry", "SMPP deliver_sm answered retry later",
			v.delta("mimigw_smpp_mo_total", is("outcome", "unavailable", "busy"))+v.delta("mimigw_smpp_receipts_total", is("outcome", "unavailable"))),
	}
	if provider {
		failures = append(failures,
			rateOf(v, "provider-refused", "from MIMI providers: refused (4xx)", fanin, is("outcome", "rejected")),
			rateOf(v, "provider-retry", "MIMI provider traffic to be retried", fanin, is("outcome", "retry")),
			rateOf(v, "provider-outbox-failed", "to MIMI providers: given up", outbox, is("outcome", "failed")))
	}
	return rows, failures
}

// sipRates are the RCS edge's traffic over the span.
func sipRates(v view) []rateRow {
	const req, ans, sent = "mimigw_sip_requests_total", "mimigw_sip_answers_total", "mimigw_sip_outbound_total"
	codes := func(prefix string) []string {
		var out []string
		for _, c := range v.now.labelValues(ans, "code") {
			if strings.HasPrefix(c, prefix) {
				out = append(out, c)
			}
		}
		return out
	}
	sentCodes := func(ok bool) []string {
		var out []string
		for _, c := range v.now.labelValues(sent, "code") {
			if strings.HasPrefix(c, "2") == ok {
				out = append(out, c)
			}
		}
		return out
	}
	return []rateRow{
		rateOf(v, "sip-in-message", "MESSAGE received", req, is("method", "MESSAGE")),
		rateOf(v, "sip-in-options", "OPTIONS received", req, is("method", "OPTIONS")),
		rateOf(v, "sip-2xx", "answered 2xx", ans, is("code", codes("2")...)),
		rateOf(v, "sip-4xx", "answered 4xx", ans, is("code", codes("4")...)),
		rateOf(v, "sip-5xx", "answered 5xx", ans, is("code", codes("5")...)),
		rateOf(v, "sip-refused", "refused before the gateway (untrusted, unauthenticated, overload, malformed)", "mimigw_sip_refused_total"),
		rateOf(v, "sip-out-ok", "sent, answered 2xx (MESSAGE, OPTIONS, revocations)", sent, is("code", sentCodes(true)...)),
		rateOf(v, "sip-out-other", "sent, answered otherwise or not at all", sent, is("code", sentCodes(false)...)),
	}
}

// smscState is an SMSC's binds, window, throttling and failures, from the
// SMS edge's metrics.
func smscState(v view, c SMSC) smscRow {
	r := smscRow{Name: c.Name, Address: c.Address}
	if c.TLS {
		r.Address += " (TLS)"
	}
	me := is("smsc", c.Name)
	var binds []string
	total := 0.0
	want := map[string]int{}
	if c.Binds > 0 {
		if c.BindMode == "transmitter_receiver" {
			want["transmitter"], want["receiver"] = c.Binds, c.Binds
		} else {
			want["transceiver"] = c.Binds
		}
	}
	modes := map[string]bool{}
	for m := range want {
		modes[m] = true
	}
	for _, se := range v.now.values["mimigw_smpp_binds_up"] {
		if se.labels["smsc"] == c.Name {
			modes[se.labels["mode"]] = true
		}
	}
	for _, m := range sortedKeys(modes) {
		up := v.now.sum("mimigw_smpp_binds_up", me, is("mode", m))
		total += up
		s := fmt.Sprintf("%s %s up", m, formatCount(up))
		if w := want[m]; w > 0 {
			s = fmt.Sprintf("%s %s of %d up", m, formatCount(up), w)
		}
		binds = append(binds, s)
	}
	r.Up = total > 0
	r.Binds = strings.Join(binds, ", ")
	if r.Binds == "" {
		r.Binds = "none up"
	}
	r.Window = formatCount(v.now.sum("mimigw_smpp_window_in_use", me)) + " in use"
	if c.Window > 0 {
		r.Window += fmt.Sprintf(" (window %d per bind)", c.Window)
	}
	r.Submitted = formatCount(v.delta("mimigw_smpp_submits_total", me, is("outcome", "ok"))) + " submit_sm accepted"
	pauses := v.delta("mimigw_smpp_throttle_pauses_total", me)
	throttled := v.delta("mimigw_smpp_submits_total", me, is("outcome", "throttled"))
	r.Throttling = "none"
	if pauses > 0 || throttled > 0 {
		r.Throttling = fmt.Sprintf("%s throttled answers, %s pauses", formatCount(throttled), formatCount(pauses))
	}
	r.LastFailure = "none since start"
	if f, ok := v.lastFail[c.Name]; ok {
		r.LastFailure = fmt.Sprintf("%s, %s (%s)", f.what, ago(time.Since(f.at)), f.at.UTC().Format("15:04:05Z"))
	}
	return r
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="5">{{end}}
<title>mimigw{{if .Query}} – trace {{.Query}}{{end}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em 2em;max-width:72em;color:#222;line-height:1.35}
h1{margin:.2em 0 .4em}h1 small{font-size:.5em;color:#666;font-weight:normal}
h2{margin:1.4em 0 .4em;border-bottom:1px solid #ddd;padding-bottom:.15em}
h3{margin:1.1em 0 .3em;font-size:1.05em}
table{border-collapse:collapse;margin:.3em 0}
td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}
thead th{border-bottom:1px solid #ccc;font-size:.9em;color:#444}
tbody th{font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#a00;font-weight:600}.ok{color:#070;font-weight:600}.muted{color:#777}
.notice{background:#fff3c4;border:1px solid #d9b100;padding:.6em;margin:.6em 0}
form{margin:.6em 0 1em}input[type=search]{width:38em;max-width:90%;padding:.35em;font-size:1em}button{padding:.35em .9em;font-size:1em}
.steps td,.steps th{border-bottom:1px solid #eee}.steps td.when{white-space:nowrap;font-variant-numeric:tabular-nums;color:#444}
.id{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.note{color:#555;max-width:60em}
.cols{display:flex;flex-wrap:wrap;gap:0 3em;align-items:flex-start}
</style></head>
<body>
<h1>mimigw <small>status at {{.Now}}{{if .Refresh}}, refreshing every 5 s{{end}}</small></h1>
{{range .Notices}}<div class="notice">{{.}}</div>{{end}}
{{if .Search}}<form method="get" action="/" id="search"><input type="search" name="q" value="{{.Query}}" maxlength="256"
 placeholder="MIMI message ID, phone number, imdn Message-ID or SMSC message ID" aria-label="search">
<button type="submit">Trace</button>{{if .Query}} <a href="/">back to status</a>{{end}}</form>{{end}}
{{if .Query}}
<h2>Trace of <span class="id">{{.Query}}</span></h2>
{{if .TraceErr}}<p class="bad" id="trace-error">{{.TraceErr}}</p>{{end}}
{{with .Trace}}
<p class="muted">Looked up as: {{range $i, $a := .As}}{{if $i}}, {{end}}{{$a}}{{end}}. {{len .Messages}} message(s) found.</p>
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
{{range .Messages}}
<section class="message" id="msg-{{.ID}}">
<h3>{{.Direction}} {{.Phone}}: {{.State}}</h3>
<table class="summary">
<tr><th>MIMI message ID</th><td class="id">{{.ID}}</td></tr>
<tr><th>{{if eq .Direction "to phone"}}MIMI sender{{else}}written to{{end}}</th><td>{{.Peer}}</td></tr>
<tr><th>channel</th><td>{{.Channel}}</td></tr>
<tr><th>found by</th><td>{{.FoundBy}}</td></tr>
</table>
<table class="steps"><thead><tr><th>time (UTC)</th><th>step</th><th>detail</th></tr></thead><tbody>
{{range .Steps}}<tr class="step"><td class="when">{{.When}}</td><th>{{.Name}}</th><td>{{.Detail}}</td></tr>
{{end}}</tbody></table>
</section>
{{end}}{{end}}
{{else}}
<h2>Readiness</h2>
<table id="readiness">{{range .Components}}<tr id="ready-{{.Name}}"><th>{{.Name}}</th>{{if .Err}}<td class="bad">not ready: {{.Err}}</td>{{else}}<td class="ok">ready</td>{{end}}<td class="muted">{{if .Required}}required by /readyz{{else}}not required by /readyz{{end}}</td></tr>
{{end}}</table>

{{if .Traffic}}<h2>Last minute</h2>
<p class="muted">Counted over the last {{.Span}} from this instance's metrics.</p>
<div class="cols">
<table id="rates"><thead><tr><th>traffic</th><th>count</th><th>rate</th></tr></thead><tbody>
{{range .Traffic}}<tr id="rate-{{.ID}}"><th>{{.Name}}</th><td class="num count">{{.Count}}</td><td class="num">{{.PerSec}}</td></tr>
{{end}}</tbody></table>
<table id="failures"><thead><tr><th>failures and 503s</th><th>count</th><th>rate</th></tr></thead><tbody>
{{range .Failures}}<tr id="rate-{{.ID}}"><th>{{.Name}}</th><td class="num count{{if ne .Count "0"}} bad{{end}}">{{.Count}}</td><td class="num">{{.PerSec}}</td></tr>
{{end}}</tbody></table>
</div>{{end}}

{{if .SMSCs}}<h2>SMS edge (SMPP)</h2>
<table id="smscs"><thead><tr><th>SMSC</th><th>address</th><th>binds</th><th>window</th><th>last minute</th><th>throttling (last minute)</th><th>last failure</th></tr></thead><tbody>
{{range .SMSCs}}<tr id="smsc-{{.Name}}"><th>{{.Name}}</th><td>{{.Address}}</td><td class="{{if .Up}}ok{{else}}bad{{end}}">{{.Binds}}</td><td>{{.Window}}</td><td>{{.Submitted}}</td><td>{{.Throttling}}</td><td>{{.LastFailure}}</td></tr>
{{end}}</tbody></table>
<p class="muted">Failures are read from the edge's counters (kind and time); the log has their detail.</p>{{end}}

{{with .SIP}}<h2>RCS edge (SIP)</h2>
<table id="sip">
<tr><th>listeners</th><td>{{range $i, $l := .Listeners}}{{if $i}}, {{end}}{{$l}}{{end}}</td></tr>
<tr><th>trusted peers</th><td>{{range $i, $l := .Trusted}}{{if $i}}, {{end}}{{$l}}{{else}}none{{end}}</td></tr>
<tr><th>outbound proxy</th><td>{{if .OutboundProxy}}{{.OutboundProxy}}{{else}}none{{end}}</td></tr>
<tr><th>digest authentication</th><td>{{if .Digest}}on{{else}}off{{end}}</td></tr>
</table>
{{if .Rates}}<table id="sip-rates"><thead><tr><th>last minute</th><th>count</th><th>rate</th></tr></thead><tbody>
{{range .Rates}}<tr id="rate-{{.ID}}"><th>{{.Name}}</th><td class="num count">{{.Count}}</td><td class="num">{{.PerSec}}</td></tr>
{{end}}</tbody></table>{{end}}{{end}}

{{with .Bus}}<h2>Bus (NATS JetStream)</h2>
<table id="bus">
<tr><th>connection</th><td class="{{if eq .Status "CONNECTED"}}ok{{else}}bad{{end}}">{{.Status}}</td></tr>
<tr><th>server</th><td>{{.Server}}{{if .ServerName}} ({{.ServerName}}){{end}}{{if .RTT}}, round trip {{.RTT}}{{end}}</td></tr>
<tr><th>reconnects</th><td>{{.Reconnects}}</td></tr>
<tr><th>delivery records</th><td>{{.Records}}</td></tr>
</table>
{{if .Err}}<p class="bad">{{.Err}}</p>{{end}}
<table id="streams"><thead><tr><th>stream</th><th>holds</th><th>messages</th><th>bytes</th><th>consumers</th><th>last message</th></tr></thead><tbody>
{{range .Streams}}<tr id="stream-{{.Name}}"><th>{{.Name}}</th><td>{{.Role}}</td><td class="num">{{.Messages}}</td><td class="num">{{.Bytes}}</td><td class="num">{{.Consumers}}</td><td>{{.Last}}</td></tr>
{{end}}</tbody></table>
<table id="consumers"><thead><tr><th>consumer</th><th>stream</th><th>kind</th><th>pending</th><th>ack pending</th><th>redelivered</th><th>waiting pulls</th><th>last delivery</th></tr></thead><tbody>
{{range .Consumers}}<tr id="consumer-{{.Name}}"><th>{{.Name}}</th><td>{{.Stream}}</td><td>{{.Kind}}</td><td class="num">{{.Pending}}</td><td class="num">{{.AckPending}}</td><td class="num">{{.Redelivered}}</td><td class="num">{{.Waiting}}</td><td>{{.LastDelivered}}</td></tr>
{{end}}</tbody></table>{{end}}

<h2>Gateway</h2><table id="facts">{{range .Facts}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
<tr><th>up since</th><td>{{.Started}}</td></tr></table>
{{end}}
<p><a href="/">status</a> · <a href="/metrics">metrics</a> · <a href="/readyz">readyz</a> · <a href="/healthz">healthz</a></p>
</body></html>
`))
