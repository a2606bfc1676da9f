// Package relaytest runs an MSRP relay this project did not write for
// tests: Kamailio (Debian package kamailio) with its msrp module, as
// configured by deploy/kamailio/msrp-relay.cfg (RFC 4976: AUTH, Use-Path,
// hop-by-hop responses, frames for a client sent over its AUTH
// connection). Without kamailio installed a test is skipped, or fails when
// MIMIGW_INTEROP=1 (as the README's test command sets).
package relaytest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Relay is a running relay.
type Relay struct {
	Addr    string // host:port; its MSRP URI is msrp://<Addr>;tcp
	logFile string
}

// Log is what the relay has logged so far: a line per frame it relayed
// ("msrp SEND <transaction> ..."), and warnings for any it could not.
func (r *Relay) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(r.logFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// CheckClean fails the test if the relay refused or could not relay a
// frame (its configuration logs "not relayed"), or logged an error, and
// returns the number of SENDs it relayed.
func (r *Relay) CheckClean(t testing.TB) int {
	t.Helper()
	sends := 0
	for _, line := range strings.Split(r.Log(t), "\n") {
		switch {
		case strings.Contains(line, "not relayed"), strings.Contains(line, " ERROR: "):
			t.Errorf("relay: %s", strings.TrimSpace(line))
		case strings.Contains(line, "msrp SEND "):
			sends++
		}
	}
	return sends
}

// Start runs a relay on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Relay {
	t.Helper()
	bin := binary(t)
	tmpl, err := os.ReadFile(configFile(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		cfg := filepath.Join(dir, "relay.cfg")
		if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "@LISTEN@", addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		pidFile, logFile := filepath.Join(dir, "relay.pid"), filepath.Join(dir, "relay.log")
		out, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		// Kamailio forks its daemon and returns; the daemon's PID is in
		// the pid file.
		cmd := exec.Command(bin, "-f", cfg, "-P", pidFile, "-Y", dir, "-m", "64", "-M", "8")
		cmd.Stdout, cmd.Stderr = out, out
		err = cmd.Run()
		out.Close()
		if err == nil {
			if pid := waitPID(pidFile); pid > 0 {
				t.Cleanup(func() { stop(t, pid, logFile) })
				if waitListening(addr) {
					t.Logf("kamailio msrp relay on %s (pid %d)", addr, pid)
					return &Relay{Addr: addr, logFile: logFile}
				}
			}
		}
		if attempt == 2 {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("relaytest: kamailio did not start: %v\n%s", err, b)
		}
	}
}

func binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("kamailio"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/kamailio", "/usr/local/sbin/kamailio"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("MIMIGW_INTEROP") == "1" {
		t.Fatal("relaytest: kamailio not found (MIMIGW_INTEROP=1); install it with: apt-get install -y kamailio")
	}
	t.Skip("kamailio not found; install it with: apt-get install -y kamailio")
	return ""
}

// configFile finds deploy/kamailio/msrp-relay.cfg above the test's
// working directory.
func configFile(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "deploy", "kamailio", "msrp-relay.cfg")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("relaytest: no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPID(path string) int {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

func waitListening(addr string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// stop ends the daemon the test started, by its PID (its children follow
// it), and shows its log when the test failed.
func stop(t testing.TB, pid int, logFile string) {
	if t.Failed() {
		if b, err := os.ReadFile(logFile); err == nil {
			t.Logf("relay log:\n%s", b)
		}
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
