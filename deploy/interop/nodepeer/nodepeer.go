// Package nodepeer runs the npm test peers of deploy/interop for Go tests:
// a Node script that takes one JSON request a line on stdin and answers
// each with one JSON line on stdout, {"ok": true, ...} or {"ok": false,
// "error": "..."}. It is for tests only.
//
// A test that needs a peer skips when Node or the peer's npm packages are
// missing, and fails instead when MIMIGW_INTEROP=1 (as the README's test
// command sets), so that CI cannot pass without the peers.
package nodepeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Dir is deploy/interop, found from this file, so that tests in any
// package reach the same peers.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// answerWait bounds one answer: peers bound their own network waits to
// 10 s, so a minute means the peer is stuck.
const answerWait = time.Minute

// Peer is a running peer script.
type Peer struct {
	t    testing.TB
	name string
	in   io.WriteCloser
	out  *bufio.Reader
}

// Start runs script (a file in deploy/interop) with Node until the test
// ends. It needs the npm packages named in modules installed there.
func Start(t testing.TB, script string, modules ...string) *Peer {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	}
	for _, m := range modules {
		if _, err := os.Stat(filepath.Join(Dir(), "node_modules", m, "package.json")); err != nil && missing == "" {
			missing = m + " is not installed in deploy/interop"
		}
	}
	if missing != "" {
		if os.Getenv("MIMIGW_INTEROP") == "1" {
			t.Fatalf("interop peer missing: %s (run: cd deploy/interop && npm ci)", missing)
		}
		t.Skipf("interop peer missing: %s; install Node.js 20+ and run `cd deploy/interop && npm ci`, or set MIMIGW_INTEROP=1 to fail instead", missing)
	}
	cmd := exec.Command(node, script)
	cmd.Dir = Dir()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &Peer{t: t, name: script, in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

// Try sends one request and returns its answer; an answer with ok false
// comes back as an error with the peer's words. A peer that does not
// answer, or answers what is not JSON, fails the test.
func (p *Peer) Try(req map[string]any) (map[string]any, error) {
	p.t.Helper()
	line, err := json.Marshal(req)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		p.t.Fatalf("%s: write: %v", p.name, err)
	}
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := p.out.ReadBytes('\n')
		ch <- result{b, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(answerWait):
		p.t.Fatalf("%s: no answer to %v", p.name, req["op"])
	}
	if r.err != nil {
		p.t.Fatalf("%s: read: %v", p.name, r.err)
	}
	var ans map[string]any
	if err := json.Unmarshal(r.b, &ans); err != nil {
		p.t.Fatalf("%s: answer %q: %v", p.name, r.b, err)
	}
	if ok, _ := ans["ok"].(bool); !ok {
		return ans, fmt.Errorf("%s: %v: %v", p.name, req["op"], ans["error"])
	}
	return ans, nil
}

// Call is Try for requests that must succeed.
func (p *Peer) Call(req map[string]any) map[string]any {
	p.t.Helper()
	ans, err := p.Try(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return ans
}
