package smpp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
)

// The interop tests run the edge against an SMSC this project did not
// write: node-smpp (npm smpp 0.5.1) driven by deploy/interop/smsc.js.

const interopDir = "../deploy/interop"

// nodeSMSC is the node-smpp SMSC process.
type nodeSMSC struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	port   int
	mu     sync.Mutex
	events []map[string]any
	signal chan struct{}
}

func startNodeSMSC(t *testing.T) *nodeSMSC {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed (apt-get install nodejs)"
	default:
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "smpp", "package.json")); err != nil {
			missing = "npm smpp is not installed (cd deploy/interop && npm ci)"
		}
	}
	if missing != "" {
		if os.Getenv("MIMIGW_INTEROP") == "1" {
			t.Fatalf("interop peer missing: %s", missing)
		}
		t.Skipf("interop peer missing: %s; set MIMIGW_INTEROP=1 to make this a failure", missing)
	}
	cmd := exec.Command(node, "smsc.js")
	cmd.Dir = interopDir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nodeSMSC{t: t, cmd: cmd, stdin: stdin, signal: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("node SMSC said %q: %v", sc.Text(), err)
				continue
			}
			n.mu.Lock()
			n.events = append(n.events, ev)
			close(n.signal)
			n.signal = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the script exits when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		<-readDone
	})
	ev := n.waitEvent(t, "listening", func(map[string]any) bool { return true })
	n.port = int(ev["port"].(float64))
	return n
}

func (n *nodeSMSC) send(t testing.TB, cmd map[string]any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an event of kind that match accepts, among all
// events so far.
func (n *nodeSMSC) waitEvent(t testing.TB, kind string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		n.mu.Lock()
		for _, ev := range n.events {
			if ev["event"] == kind && match(ev) {
				n.mu.Unlock()
				return ev
			}
		}
		ch := n.signal
		n.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("node SMSC: no %s event", kind)
		}
	}
}

// submits returns the submit events since index from.
func (n *nodeSMSC) submits(from int) []map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []map[string]any
	for _, ev := range n.events[from:] {
		if ev["event"] == "submit" {
			out = append(out, ev)
		}
	}
	return out
}

// waitSubmits waits until the submit events since from satisfy cond: the
// node SMSC reports on stdout, which races with its answers on the socket.
func (n *nodeSMSC) waitSubmits(t testing.TB, from int, cond func([]map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		n.mu.Lock()
		ch := n.signal
		n.mu.Unlock()
		if subs := n.submits(from); cond(subs) {
			return subs
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("node SMSC: submit events %v", n.submits(from))
		}
	}
}

func (n *nodeSMSC) mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

func (n *nodeSMSC) setMode(t testing.TB, throttleEvery int, early bool, dropAt int) {
	t.Helper()
	at := n.mark()
	n.send(t, map[string]any{"cmd": "mode", "throttle_every": throttleEvery, "early_receipts": early, "drop_at_pending": dropAt})
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		for _, ev := range n.events[at:] {
			if ev["event"] == "mode" {
				return
			}
		}
		ch := n.signal
		n.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			n.mu.Lock()
			t.Fatal("node SMSC did not take the mode")
		}
		n.mu.Lock()
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func TestInteropNodeSMPP(t *testing.T) {
	node := startNodeSMSC(t)
	recv := newMemReceiver()
	_, published := onGateway(t, recv, gateway.DefaultConfig())
	sc := smscConfig("node", fmt.Sprintf("127.0.0.1:%d", node.port))
	sc.Window = 10
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, recv)
	ctx := context.Background()
	out := func(id, text string, receipt bool) gateway.OutboundSMS {
		return gateway.OutboundSMS{ID: id, From: "+15551230001", To: "+15551230002", Text: text, Receipt: receipt}
	}

	t.Run("GSM text with escapes", func(t *testing.T) {
		at := node.mark()
		text := "Price 5€ [a] {b} ~|^\\"
		if _, err := e.SendSMS(ctx, out("gsm", text, false)); err != nil {
			t.Fatal(err)
		}
		subs := node.waitSubmits(t, at, func(s []map[string]any) bool { return len(s) >= 1 })
		if len(subs) != 1 {
			t.Fatalf("%d submits", len(subs))
		}
		s := subs[0]
		if num(s["data_coding"]) != 0 || s["text"] != text {
			t.Fatalf("node-smpp read data_coding %v text %q, want GSM 7-bit %q", s["data_coding"], s["text"], text)
		}
	})

	t.Run("emoji text in three UCS-2 segments", func(t *testing.T) {
		at := node.mark()
		text := strings.Repeat("Hi 😀🎉 ", 22) // 22*7 = 154 UTF-16 units: three segments of 67
		sent, err := e.SendSMS(ctx, out("emoji", text, false))
		if err != nil {
			t.Fatal(err)
		}
		subs := node.waitSubmits(t, at, func(s []map[string]any) bool { return len(s) >= 3 })
		if len(subs) != 3 || len(sent.Refs) != 3 {
			t.Fatalf("%d submits, %d refs", len(subs), len(sent.Refs))
		}
		var joined strings.Builder
		for i, s := range subs {
			seg, _ := s["text"].(string)
			// node-smpp decodes each segment alone; a split surrogate pair
			// would come out as U+FFFD.
			if num(s["data_coding"]) != 8 || strings.ContainsRune(seg, '\uFFFD') {
				t.Fatalf("segment %d: data_coding %v text %q", i+1, s["data_coding"], seg)
			}
			udh, _ := s["udh"].([]any)
			if len(udh) != 1 || !strings.HasPrefix(udh[0].(string), "0003") || !strings.HasSuffix(udh[0].(string), fmt.Sprintf("03%02x", i+1)) {
				t.Fatalf("segment %d: UDH %v", i+1, udh)
			}
			joined.WriteString(seg)
		}
		if joined.String() != text {
			t.Fatalf("joined %q", joined.String())
		}
	})

	t.Run("MO with 16-bit UDH out of order", func(t *testing.T) {
		text := strings.Repeat("Ünïcödé 😀 ", 14) // several UCS-2 parts
		node.send(t, map[string]any{"cmd": "mo", "id": "mo1", "source": "+15551230002", "dest": "+15551230001",
			"text": text, "ref": 0xBEEF, "units": 67, "order": []int{3, 1, 2}})
		ev := node.waitEvent(t, "mo_done", func(ev map[string]any) bool { return ev["id"] == "mo1" })
		if num(ev["parts"]) != 3 {
			t.Fatalf("text split in %v parts, the test wants 3", ev["parts"])
		}
		for _, st := range ev["statuses"].([]any) {
			if num(st) != 0 {
				t.Fatalf("statuses %v", ev["statuses"])
			}
		}
		got, incomplete, d := fromPhone(t, published)
		if got != text || d.Subject != "mimi.from.tel.15551230002" || incomplete {
			t.Fatalf("published %q on %s, incomplete=%v", got, d.Subject, incomplete)
		}
	})

	t.Run("receipt before submit_sm_resp", func(t *testing.T) {
		node.setMode(t, 0, true, 0)
		defer node.setMode(t, 0, false, 0)
		sent, err := e.SendSMS(ctx, out("early", "receipt race", true))
		if err != nil {
			t.Fatal(err)
		}
		recv.waitFor(t, "receipt", func(_ []gateway.Inbound, rc []gateway.Receipt) bool { return len(rc) == 1 })
		_, rc := recv.snapshot()
		if rc[0].Ref != sent.Refs[0] || rc[0].Status != gateway.StatusDelivered || rc[0].Source != "node" {
			t.Fatalf("receipt %+v for %v", rc[0], sent.Refs)
		}
		ev := node.waitEvent(t, "receipt_resp", func(ev map[string]any) bool { return ev["message_id"] == sent.Refs[0] })
		if num(ev["status"]) != 0 {
			t.Fatalf("receipt answered %v", ev["status"])
		}
	})

	t.Run("ESME_RTHROTTLED", func(t *testing.T) {
		node.setMode(t, 2, false, 0)
		defer node.setMode(t, 0, false, 0)
		at := node.mark()
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.SendSMS(ctx, out("thr", fmt.Sprintf("throttled %d", i), false))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		accepted, throttled := map[string]int{}, 0
		subs := node.waitSubmits(t, at, func(s []map[string]any) bool {
			ok := 0
			for _, x := range s {
				if num(x["status"]) == 0 {
					ok++
				}
			}
			return ok >= n
		})
		for _, s := range subs {
			switch num(s["status"]) {
			case 0:
				accepted[s["text"].(string)]++
			case 0x58:
				throttled++
			}
		}
		if len(accepted) != n || throttled == 0 {
			t.Fatalf("%d accepted, %d throttled", len(accepted), throttled)
		}
		for text, c := range accepted {
			if c != 1 {
				t.Fatalf("%q accepted %d times", text, c)
			}
		}
		t.Logf("node-smpp answered %d of %d submit_sm with ESME_RTHROTTLED; all %d messages accepted once", throttled, throttled+n, n)
	})

	t.Run("SMSC drops the connection with a full window", func(t *testing.T) {
		node.setMode(t, 0, false, sc.Window)
		at := node.mark()
		const n = 30
		var wg sync.WaitGroup
		type res struct {
			text string
			err  error
			refs []string
		}
		results := make(chan res, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text := fmt.Sprintf("window %02d", i)
				s, _, err := sendRetrying(ctx, e, out("drop", text, false))
				results <- res{text, err, s.Refs}
			}()
		}
		wg.Wait()
		close(results)
		node.waitEvent(t, "dropped", func(map[string]any) bool { return true })
		accepted := map[string]string{}
		seen := map[string]int{}
		subs := node.waitSubmits(t, at, func(s []map[string]any) bool {
			ok := 0
			for _, x := range s {
				if num(x["status"]) == 0 {
					ok++
				}
			}
			return ok >= n
		})
		for _, s := range subs {
			text := s["text"].(string)
			seen[text]++
			if num(s["status"]) == 0 {
				accepted[s["message_id"].(string)] = text
			}
		}
		for r := range results {
			if r.err != nil {
				t.Fatalf("%q lost: %v", r.text, r.err)
			}
			if len(r.refs) != 1 || accepted[r.refs[0]] != r.text {
				t.Fatalf("%q: ref %v not accepted by the SMSC for it", r.text, r.refs)
			}
		}
		dups := 0
		for _, c := range seen {
			dups += c - 1
		}
		t.Logf("node-smpp dropped the link with %d submit_sm unanswered: %d messages all accepted, %d submit_sm in all, %d duplicates (messages the SMSC saw twice)",
			sc.Window, n, len(subs), dups)
		if dups < sc.Window {
			t.Fatalf("%d duplicates: the %d held submit_sm should all have been sent again", dups, sc.Window)
		}
	})
}
