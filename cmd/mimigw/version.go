package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// buildVersion is the version the binary was built as (the -X value, else
// the module version, else "devel") and the VCS revision it was built
// from, "" when the build did not record one.
func buildVersion() (v, revision string) {
	v = version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "devel"
		}
		return v, ""
	}
	if v == "" {
		v = "devel"
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return v, revision
}

func versionString() string {
	v, revision := buildVersion()
	if version == "" && len(revision) >= 12 {
		v += "+" + revision[:12]
	}
	return fmt.Sprintf("mimigw %s (%s %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildInfo is the gauge mimigw_build_info: 1, labelled with the version,
// the Go version and the VCS revision of the running binary.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mimigw_build_info",
		Help: "Always 1; labelled with the gateway's version, the Go version it was built with and its VCS revision (empty when not recorded).",
	}, []string{"version", "go_version", "revision"})
	v, revision := buildVersion()
	g.WithLabelValues(v, runtime.Version(), revision).Set(1)
	return g
}
