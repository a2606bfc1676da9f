package main

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

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

// sample finds the line of the series name{labels} in a /metrics text,
// labels given as they are written (sorted by name); "" if absent.
func sample(text, series string) string {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, series+" "))
		}
	}
	return ""
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
// registers mimigw_build_info.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(*Config) {})
	text := scrape(t, cfg)
	v, revision := buildVersion()
	series := `mimigw_build_info{go_version="` + runtime.Version() + `",revision="` + revision + `",version="` + v + `"}`
	if got := sample(text, series); got != "1" {
		t.Errorf("%s = %q, want 1", series, got)
	}
}
