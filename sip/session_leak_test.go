package sip

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openBound opens n chat sessions over one SIP line, binds each on m and,
// when send, sends one CPIM text in it; workers run at once. It returns the
// sessions in order, or the first error.
func openBound(sl *sipLine, m *msrpLine, n, workers int, send bool) ([]*rawCall, error) {
	calls := make([]*rawCall, n)
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				err := func() error {
					cl, err := newCall(m)
					if err != nil {
						return err
					}
					if err := sl.open(cl); err != nil {
						return err
					}
					calls[i] = cl
					if err := m.bind(cl); err != nil {
						return err
					}
					if send {
						return m.send(cl, cpimText("leak-"+cl.callID, "hello from session "+cl.callID))
					}
					return nil
				}()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("session %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return calls, first
}

// settled polls read every second until it has not fallen by step for
// quiet (or deadline passed), and returns the last value.
func settled(read func() uint64, step uint64, quiet time.Duration, deadline time.Time) uint64 {
	v := read()
	for fell := time.Now(); time.Since(fell) < quiet && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		if r := read(); r+step <= v {
			v, fell = r, time.Now()
		}
	}
	return v
}

// waitCount polls f until it reaches want, failing after phoneWait.
func waitCount(t testing.TB, what string, want int64, f func() int64) {
	t.Helper()
	deadline := time.Now().Add(phoneWait)
	for f() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, f(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionLeak: 1,000 chat sessions opened, bound and carrying one
// message each (stored on JetStream), half ended by the phone's BYE, half
// by dropping their MSRP connection (the edge then sends the BYE); then
// sessions that end badly: a connection dropped in the middle of a chunk
// (the partial message must not reach the gateway), sessions never bound
// (the edge gives up and sends BYE), INVITEs cancelled before the 200.
// Goroutines come back to the count before, within a bounded wait, and
// the Go heap in use after a collection within a bound, and the index of
// sessions our replies may go in is empty.
func TestSessionLeak(t *testing.T) {
	const (
		rounds   = 10
		perRound = 100 // sessions per SIP and MSRP connection
		bad      = 50  // sessions of each bad ending
	)
	recv := newTestReceiver(t)
	cfg := sessionConfig()
	cfg.Sessions.Outbound = OutboundChat // the sessions are indexed for replies too
	e := startEdge(t, cfg, recv)
	e.mu.Lock()
	e.bindTimeout = 3 * time.Second
	e.mu.Unlock()

	// One session first, so that whatever the edge starts once exists.
	{
		sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
		calls, err := openBound(sl, m, 1, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := sl.bye(calls[0]); err != nil {
			t.Fatal(err)
		}
		m.close()
		sl.close()
		recv.waitCalls(t, 1)
	}
	baseHeap := heapInUse()
	baseG := runtime.NumGoroutine()

	for r := range rounds {
		sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
		calls, err := openBound(sl, m, perRound, 8, true)
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		// All in one conversation: the latest one is indexed.
		waitExactly(t, "sessions phones opened indexed", 1, func() int { return phoneSessions(e) })
		for _, cl := range calls[:perRound/2] {
			if err := sl.bye(cl); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		m.close() // the other half end with their connection
		waitCount(t, fmt.Sprintf("round %d: BYEs from the edge", r), perRound/2, sl.byes.Load)
		sl.close()
	}
	recv.waitCalls(t, rounds*perRound)

	// A connection dropped in the middle of a chunk: every session on it
	// ends, and the half message goes nowhere.
	{
		sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
		calls, err := openBound(sl, m, bad, 8, false)
		if err != nil {
			t.Fatalf("cut chunk: %v", err)
		}
		if err := m.sendCut(calls[0], cpimText("cut-1", string(make([]byte, 2000)))); err != nil {
			t.Fatalf("cut chunk: %v", err)
		}
		m.close()
		waitCount(t, "cut chunk: BYEs from the edge", bad, sl.byes.Load)
		sl.close()
	}
	// Sessions never bound: the edge sends BYE after its bind timeout.
	{
		sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
		for i := range bad {
			cl, err := newCall(m)
			if err == nil {
				err = sl.open(cl)
			}
			if err != nil {
				t.Fatalf("unbound %d: %v", i, err)
			}
		}
		waitCount(t, "unbound: BYEs from the edge", bad, sl.byes.Load)
		m.close()
		sl.close()
	}
	// INVITEs cancelled while the edge holds them before the 200.
	{
		held := make(chan struct{}, 1)
		e.mu.Lock()
		e.testHookInvite = func(ctx context.Context) {
			held <- struct{}{}
			select {
			case <-ctx.Done():
			case <-time.After(phoneWait):
			}
		}
		e.mu.Unlock()
		sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
		for i := range bad {
			cl, err := newCall(m)
			if err == nil {
				err = sl.cancel(cl, held)
			}
			if err != nil {
				t.Fatalf("cancel %d: %v", i, err)
			}
		}
		e.mu.Lock()
		e.testHookInvite = nil
		e.mu.Unlock()
		m.close()
		sl.close()
	}

	in, _, _ := recv.snapshot()
	if len(in) != 1+rounds*perRound {
		t.Errorf("gateway got %d messages, want %d (one per session, none from the cut chunk)", len(in), 1+rounds*perRound)
	}
	if stored := len(recv.fromPhone(t)); stored != 1+rounds*perRound {
		t.Errorf("%d messages on the stream, want %d", stored, 1+rounds*perRound)
	}
	// What the test receiver records is the test's, not the edge's.
	recv.set(func(r *testReceiver) { r.inbound = nil })
	settle := time.Now()
	n := waitGoroutines(t, baseG, 10, 60*time.Second)
	t.Logf("goroutines back within %v", time.Since(settle).Round(time.Millisecond))
	waitExactly(t, "sessions phones opened indexed", 0, func() int { return phoneSessions(e) })
	waitExactly(t, "sessions phones opened counted for max_inbound", 0, func() int { return int(e.inbound.Load()) })
	// The heap: sipgo forgets finished transactions on its own timers, so
	// this too is polled. The bound is 6 KB a session, the NATS server's
	// cache of the messages it stored included; one session that stayed
	// whole is about 20 KB of heap and stacks (TestSessionIdleMemory), and
	// the goroutine count above catches even a few sessions left behind.
	total := rounds*perRound + 3*bad
	bound := uint64(total) * 6 << 10
	settle = time.Now()
	deadline := settle.Add(90 * time.Second)
	heap := heapInUse()
	for heap > baseHeap+bound && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		heap = heapInUse()
	}
	t.Logf("%d sessions: goroutines %d before, %d after; heap in use %d KB before, %d KB after (within %v)",
		total, baseG, n, baseHeap>>10, heap>>10, time.Since(settle).Round(time.Millisecond))
	if heap > baseHeap+bound {
		t.Errorf("heap in use %d KB after %d sessions, %d KB before (bound +%d KB)", heap>>10, total, baseHeap>>10, bound>>10)
	}
}

// TestSessionIdleMemory holds chat sessions open and idle (SIP dialog
// set up, MSRP bound), spread over ten SIP and ten MSRP connections, and
// measures what each costs: the growth of the process's VmRSS
// (/proc/self/status), of the Go heap in use and of goroutine stacks,
// after a collection, and goroutines per session. 1,000 sessions in the
// normal run, with generous bounds, measured once opened; MIMIGW_HEAVY=1
// holds 10,000 and measures them again once idle, and checks the target
// there (under 200 MB for the whole process, without the race detector):
// sipgo keeps each INVITE's server transaction, with the INVITE, the 200
// and its dialog, until its Timer L (64*T1, 32 s) fires, so the heap
// settles only then, and VmRSS once the runtime stopped giving the freed
// memory back. A message in one session afterwards shows they are alive.
func TestSessionIdleMemory(t *testing.T) {
	n := 1000
	if os.Getenv("MIMIGW_HEAVY") == "1" {
		n = 10000
	}
	const lines = 10
	e := startEdge(t, sessionConfig(), newMemReceiver())
	type pair struct {
		sl    *sipLine
		m     *msrpLine
		calls []*rawCall
	}
	pairs := make([]*pair, lines)
	for i := range pairs {
		pairs[i] = &pair{sl: dialSIPLine(t, e), m: dialMSRPLine(t, e)}
	}
	// One session first, so that what the edge makes once exists.
	warm, err := openBound(pairs[0].sl, pairs[0].m, 1, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pairs[0].sl.bye(warm[0]); err != nil {
		t.Fatal(err)
	}
	baseHeap, baseRSS := heapInUse(), vmRSS()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseStack, baseG := ms.StackInuse, runtime.NumGoroutine()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, lines)
	for _, p := range pairs {
		wg.Go(func() {
			var err error
			p.calls, err = openBound(p.sl, p.m, n/lines, 4, false)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	opened := time.Since(start)
	heap, rss := heapInUse(), vmRSS()
	runtime.ReadMemStats(&ms)
	stack, g := ms.StackInuse, runtime.NumGoroutine()
	perHeap := float64(heap-baseHeap) / float64(n)
	perStack := float64(stack-baseStack) / float64(n)
	perRSS := (float64(rss) - float64(baseRSS)) / float64(n)
	perG := float64(g-baseG) / float64(n)
	t.Logf("%d sessions just opened (in %v): VmRSS %d MB (%d MB before, %.1f KB a session); heap in use +%.1f KB a session; goroutine stacks +%.1f KB a session; %.2f goroutines a session; race detector %v; load %s",
		n, opened.Round(time.Millisecond), rss>>20, baseRSS>>20, perRSS/1024, perHeap/1024, perStack/1024, perG, raceEnabled, loadAvg())
	if n == 10000 {
		// Idle: the heap within 6 KB a session once sipgo let the INVITE
		// transactions go, then VmRSS under the target once the runtime
		// returned what they held (polled: both run on timers of their
		// own).
		settle := time.Now()
		deadline := settle.Add(3 * time.Minute)
		bound := baseHeap + uint64(n)*6<<10
		for heap = heapInUse(); heap > bound && time.Now().Before(deadline); heap = heapInUse() {
			time.Sleep(time.Second)
		}
		// The last sessions' transactions go a few seconds after the
		// first ones; then the runtime gives memory back.
		heap = settled(heapInUse, 256<<10, 5*time.Second, deadline)
		rss = settled(vmRSS, 1<<20, 10*time.Second, deadline)
		t.Logf("%d sessions idle (after %v): VmRSS %d MB (%.1f KB a session); heap in use +%.1f KB a session; load %s",
			n, time.Since(settle).Round(time.Second), rss>>20, (float64(rss)-float64(baseRSS))/float64(n)/1024,
			(float64(heap)-float64(baseHeap))/float64(n)/1024, loadAvg())
		if heap > bound {
			t.Errorf("heap in use +%d KB a session once idle, want at most 6 KB", (heap-baseHeap)/uint64(n)>>10)
		}
	}

	// Alive: a message in the last session of each connection gets its 200.
	for _, p := range pairs {
		cl := p.calls[len(p.calls)-1]
		if err := p.m.send(cl, cpimText("idle-"+cl.callID, "still there?")); err != nil {
			t.Fatalf("SEND in an idle session: %v", err)
		}
	}
	// An idle session has no goroutine: its MSRP worker runs only while
	// messages wait, and its dialog is watched by callbacks.
	if perG > 0.1 {
		t.Errorf("%.2f goroutines a session, want none", perG)
	}
	if !raceEnabled {
		// Generous: 100 KB a session of heap and stacks together.
		if per := perHeap + perStack; per > 100<<10 {
			t.Errorf("%.1f KB of heap and stacks a session, want at most 100 KB", per/1024)
		}
		if n == 10000 && rss > 200<<20 {
			t.Errorf("VmRSS %d MB with 10,000 idle sessions, target under 200 MB", rss>>20)
		}
	}

	// Tear down: dropping the MSRP connections ends every session, and the
	// edge sends each its BYE.
	for _, p := range pairs {
		p.m.close()
	}
	for i, p := range pairs {
		waitCount(t, fmt.Sprintf("line %d: BYEs from the edge", i), int64(len(p.calls)), p.sl.byes.Load)
		p.sl.close()
	}
}
