package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scrape returns the text of a running gateway's /metrics.
func scrape(t *testing.T, cfg *Config) string {
	t.Helper()
	resp, err := http.Get("http://" + cfg.HTTP.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// sample finds the value of the series name{labels} in a /metrics text,
// labels given as they are written (sorted by name); "" if absent.
func sample(text, series string) string {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, series+" "))
		}
	}
	return ""
}

// seriesLabels returns, for every family of a /metrics text, the label
// names its series carry (a histogram's le aside).
func seriesLabels(t *testing.T, text string) map[string][]string {
	t.Helper()
	types := map[string]string{}
	out := map[string][]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, labelled := strings.Cut(line, "{")
		if !labelled {
			name, _, _ = strings.Cut(line, " ")
		}
		fam := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
				fam = base
			}
		}
		var names []string
		// rest is name="value",name="value"} value; values may hold escaped quotes.
		for labelled && rest != "" && rest[0] != '}' {
			n, after, ok := strings.Cut(rest, `="`)
			if !ok {
				t.Fatalf("/metrics line %q: cannot read its labels", line)
			}
			i := 0
			for i < len(after) && after[i] != '"' {
				if after[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(after) {
				t.Fatalf("/metrics line %q: unterminated label value", line)
			}
			if n != "le" {
				names = append(names, n)
			}
			rest = strings.TrimPrefix(after[i+1:], ",")
		}
		slices.Sort(names)
		if prev, seen := out[fam]; seen && !slices.Equal(prev, names) {
			t.Errorf("/metrics: %s has series with labels %v and %v", fam, prev, names)
		}
		out[fam] = names
	}
	return out
}

// readmeMetric is a row of the README's table of metrics.
type readmeMetric struct {
	typ    string
	labels []string // sorted
}

// readmeMetrics reads the table of the README's Metrics section.
func readmeMetrics(t *testing.T) map[string]readmeMetric {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := bytes.Cut(b, []byte("\n## Metrics\n"))
	if !ok {
		t.Fatal("README.md has no Metrics section")
	}
	section, _, _ = bytes.Cut(section, []byte("\n## "))
	out := map[string]readmeMetric{}
	header := false
	for line := range strings.Lines(string(section)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case len(cells) == 4 && cells[0] == "name" && cells[1] == "type" && cells[2] == "labels" && cells[3] == "meaning":
			header = true
			continue
		case strings.Trim(cells[0], "-") == "":
			continue
		case !header:
			t.Fatalf("README metrics table: a row before the header (name | type | labels | meaning): %q", line)
		case len(cells) != 4:
			t.Errorf("README metrics table: %q has %d cells, want 4", line, len(cells))
			continue
		}
		name, ok := strings.CutPrefix(cells[0], "`")
		name, ok2 := strings.CutSuffix(name, "`")
		if !ok || !ok2 || name == "" {
			t.Errorf("README metrics table: name %q is not in backquotes", cells[0])
			continue
		}
		if _, dup := out[name]; dup {
			t.Errorf("README metrics table: %s twice", name)
		}
		var labels []string
		if cells[2] != "" {
			for l := range strings.SplitSeq(cells[2], ",") {
				l = strings.TrimSpace(l)
				if len(l) < 3 || l[0] != '`' || l[len(l)-1] != '`' {
					t.Errorf("README metrics table: %s: label %q is not in backquotes", name, l)
					continue
				}
				labels = append(labels, l[1:len(l)-1])
			}
		}
		slices.Sort(labels)
		out[name] = readmeMetric{typ: cells[1], labels: labels}
		if cells[3] == "" {
			t.Errorf("README metrics table: %s has no meaning", name)
		}
	}
	if !header {
		t.Fatal("README Metrics section has no table headed name | type | labels | meaning")
	}
	return out
}

// TestMetricsREADME checks the README's table of metrics against the
// metric families the source defines (sourceMetrics, as TestDeployFiles
// reads them): every one is listed, nothing else is, histograms say so,
// and counters (names ending _total) are called counters.
func TestMetricsREADME(t *testing.T) {
	src := sourceMetrics(t)
	if len(src) < 20 {
		t.Fatalf("found only %d metric families in the source; the scan is broken", len(src))
	}
	doc := readmeMetrics(t)
	for name, kind := range src {
		row, ok := doc[name]
		if !ok {
			t.Errorf("README metrics table lacks %s", name)
			continue
		}
		var want []string
		switch {
		case kind == histogramMetric:
			want = []string{"histogram"}
		case kind == summaryMetric:
			want = []string{"summary"}
		case strings.HasSuffix(name, "_total"):
			want = []string{"counter"}
		default:
			want = []string{"gauge"}
		}
		if !slices.Contains(want, row.typ) {
			t.Errorf("README metrics table: %s is a %q, want %s", name, row.typ, strings.Join(want, " or "))
		}
	}
	for name := range doc {
		if _, ok := src[name]; !ok {
			t.Errorf("README metrics table lists %s, which no source registers", name)
		}
	}
}

func TestBuildInfoMetric(t *testing.T) {
	v, revision := buildVersion()
	if v == "" {
		t.Fatal("no version")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfo())
	want := `# HELP mimigw_build_info Always 1; labelled with the gateway's version, the Go version it was built with and its VCS revision (empty when not recorded).
# TYPE mimigw_build_info gauge
mimigw_build_info{go_version="` + runtime.Version() + `",revision="` + revision + `",version="` + v + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mimigw_build_info"); err != nil {
		t.Error(err)
	}
	if s := versionString(); !strings.Contains(s, v) || (version == "" && len(revision) >= 12 && !strings.Contains(s, "+"+revision[:12])) {
		t.Errorf("versionString %q does not agree with version %q revision %q", s, v, revision)
	}
}

// TestServeMetrics runs the dev gateway, sends a text through it to the
// SMSC simulator (which answers DELIVRD), and reads /metrics: serve
// registers mimigw_build_info, the SMS's time to delivered is observed,
// the bus shows its backlog, and every mimigw_ series carries the labels
// the README's table gives its family.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // nobody there: RCS fails, SMS it is
	})
	var out, errOut bytes.Buffer
	if err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--to", "+15551230002", "timed"}, &out, &errOut); err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), "status: delivered") {
		t.Fatalf("send printed %q", out.String())
	}
	// The report goes out just before the observation, and the backlog
	// gauges may show a read up to 5 s old: wait for both.
	var text string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		text = scrape(t, cfg)
		delivered := sample(text, `mimigw_gateway_delivery_seconds_count{channel="sms"}`) == "1"
		stored := sample(text, `mimigw_bus_stream_messages{stream="from_phone"}`)
		if delivered && stored != "" && stored != "0" || time.Now().After(deadline) {
			break
		}
	}
	if got := sample(text, `mimigw_gateway_delivery_seconds_count{channel="sms"}`); got != "1" {
		t.Errorf("mimigw_gateway_delivery_seconds_count{channel=\"sms\"} = %q, want 1", got)
	}
	v, revision := buildVersion()
	series := `mimigw_build_info{go_version="` + runtime.Version() + `",revision="` + revision + `",version="` + v + `"}`
	if got := sample(text, series); got != "1" {
		t.Errorf("%s = %q, want 1", series, got)
	}
	if got := sample(text, `mimigw_bus_consumer_pending{consumer="to_phone"}`); got != "0" {
		t.Errorf(`mimigw_bus_consumer_pending{consumer="to_phone"} = %q, want 0`, got)
	}
	if got := sample(text, `mimigw_bus_stream_messages{stream="from_phone"}`); got == "" || got == "0" {
		t.Errorf(`mimigw_bus_stream_messages{stream="from_phone"} = %q, want the report at least`, got)
	}

	doc := readmeMetrics(t)
	checked := 0
	for fam, labels := range seriesLabels(t, text) {
		if !strings.HasPrefix(fam, "mimigw_") {
			continue
		}
		row, ok := doc[fam]
		if !ok {
			t.Errorf("/metrics has %s, which the README's table lacks", fam)
			continue
		}
		checked++
		if !slices.Equal(labels, row.labels) {
			t.Errorf("%s: /metrics labels %v, the README's table %v", fam, labels, row.labels)
		}
	}
	if checked < 20 {
		t.Errorf("only %d mimigw_ families in /metrics", checked)
	}
}
