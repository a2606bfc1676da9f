package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// SIPp (Debian package sip-tester) is the peer these tests drive the edge
// with; the scenarios are the ones testers use, in deploy/sipp.
const scenarioDir = "../deploy/sipp"

func needSIPp(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("MIMIGW_INTEROP") == "1" {
			t.Fatalf("sipp not found (MIMIGW_INTEROP=1): %v", err)
		}
		t.Skip("sipp not found; install it with: apt-get install -y sip-tester")
	}
	return path
}

// freePort returns a port that was free on 127.0.0.1 for network.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type sippRun struct {
	dir  string
	out  *bytes.Buffer
	done chan error
}

// startSIPp runs a scenario from deploy/sipp in a temporary directory
// (where SIPp writes its traces), bounded by a 60 s timeout.
func startSIPp(t testing.TB, scenario string, args ...string) *sippRun {
	t.Helper()
	bin := needSIPp(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(scenarioDir, scenario))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scenario), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	full := append([]string{"-sf", scenario, "-nostdin", "-timeout", "30s", "-timeout_error",
		"-cp", strconv.Itoa(freePort(t, "udp")), "-trace_err", "-i", "127.0.0.1"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = dir
	r := &sippRun{dir: dir, out: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start sipp: %v", err)
	}
	go func() { r.done <- cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for SIPp to exit and fails the test unless every call
// succeeded (exit status 0).
func (r *sippRun) wait(t testing.TB) {
	t.Helper()
	err := <-r.done
	r.done <- err // keep it for Cleanup
	if err != nil {
		t.Fatalf("sipp: %v\n%s\n%s", err, r.tail(), r.traces())
	}
}

func (r *sippRun) tail() string {
	b := r.out.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// traces returns SIPp's trace files (errors, logs, messages).
func (r *sippRun) traces() string {
	var out bytes.Buffer
	matches, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		fmt.Fprintf(&out, "== %s\n%s\n", filepath.Base(m), b)
	}
	return out.String()
}

// waitUDPBound waits until something (SIPp) listens on the UDP port.
func waitUDPBound(t testing.TB, r *sippRun, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return // taken: SIPp is listening
		}
		pc.Close()
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("sipp exited before listening: %v\n%s", err, r.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("sipp did not bind udp port %d", port)
}
