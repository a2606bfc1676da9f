// Package sipptest runs SIPp (Debian package sip-tester) for tests: the
// scenarios testers use, from deploy/sipp, played against the edge or the
// whole gateway on 127.0.0.1. Without sipp installed a test is skipped,
// or fails when MIMIGW_INTEROP=1 (as the README's test command sets).
package sipptest

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

// Need returns the path of sipp, or skips (fails with MIMIGW_INTEROP=1)
// without it.
func Need(t testing.TB) string {
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

// FreePort returns a port that was free on 127.0.0.1 for network ("udp"
// or "tcp").
func FreePort(t testing.TB, network string) int {
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

// scenarioDir finds deploy/sipp above the test's working directory.
func scenarioDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "deploy", "sipp")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("sipptest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Run is a SIPp process.
type Run struct {
	dir  string
	out  *bytes.Buffer
	done chan error
}

// Start runs a scenario from deploy/sipp in a temporary directory (where
// SIPp writes its traces), bounded by a 60 s timeout and by the test.
func Start(t testing.TB, scenario string, args ...string) *Run {
	t.Helper()
	bin := Need(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(scenarioDir(t), scenario))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scenario), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	full := append([]string{"-sf", scenario, "-nostdin", "-timeout", "30s", "-timeout_error",
		"-cp", strconv.Itoa(FreePort(t, "udp")), "-trace_err", "-i", "127.0.0.1"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = dir
	r := &Run{dir: dir, out: &bytes.Buffer{}, done: make(chan error, 1)}
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

// Wait waits for SIPp to exit and fails the test unless every call
// succeeded (exit status 0).
func (r *Run) Wait(t testing.TB) {
	t.Helper()
	err := <-r.done
	r.done <- err // keep it for Cleanup
	if err != nil {
		t.Fatalf("sipp: %v\n%s\n%s", err, r.tail(), r.Traces())
	}
}

func (r *Run) tail() string {
	b := r.out.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Traces returns SIPp's trace files (errors, logs, messages).
func (r *Run) Traces() string {
	var out bytes.Buffer
	matches, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		fmt.Fprintf(&out, "== %s\n%s\n", filepath.Base(m), b)
	}
	return out.String()
}

// WaitUDPBound waits until something (SIPp) listens on the UDP port.
func (r *Run) WaitUDPBound(t testing.TB, port int) {
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
