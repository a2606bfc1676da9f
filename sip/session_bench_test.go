package sip

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/sdp"
)

// BenchmarkSessionSendDurable: one session with one SEND at a time (the
// round trip), one session with 64 in flight, and 100 sessions on one
// connection with 64 and 256 in flight. Chat sessions from a phone (sipgo for
// INVITE, ACK and BYE, a msrp.Pool as its MSRP client) to the edge, every
// session's MSRP on the one connection the phone's pool opens; CPIM text
// messages sent as MSRP SENDs with at most window unanswered across all
// sessions, each answered 200 only after the real gateway stored it (and
// its delivery record) on JetStream with a file store. It reports
// messages/s, the 99th percentile from writing a SEND to its 200, and the
// process's VmRSS (/proc/self/status) and Go heap in use at the end: the
// process holds the edge, the gateway, the embedded NATS server and the
// phone, and the CPU time the process used (getrusage, user and system)
// per message, which the other load on a shared machine does not change
// as much as the rate, and the write system calls of the process per
// message (syscw in /proc/self/io: every party's writes on loopback).
// Every message is checked on the stream afterwards.
func BenchmarkSessionSendDurable(b *testing.B) {
	for _, bc := range []struct{ sessions, window int }{{1, 1}, {1, 64}, {100, 64}, {100, 256}} {
		b.Run(fmt.Sprintf("sessions=%d/window=%d", bc.sessions, bc.window), func(b *testing.B) {
			benchSessionSend(b, bc.sessions, bc.window)
		})
	}
}

func benchSessionSend(b *testing.B, sessions, window int) {
	g, bs := durableGateway(b)
	e := startEdge(b, sessionConfig(), g)
	p := newSipgoPhone(b, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	chats := make([]*sipgoChat, sessions)
	for i := range chats {
		c, err := p.open(ctx)
		if err != nil {
			b.Fatalf("session %d: %v", i, err)
		}
		chats[i] = c
	}
	if n := p.dials.Load(); n != 1 {
		b.Fatalf("the phone opened %d MSRP connections for %d sessions, want 1", n, sessions)
	}
	run := newMessageID()[:8]
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = []byte(cpimText(fmt.Sprintf("bench-%s-%d", run, i), fmt.Sprintf("Hello from the benchmark, message %d", i)))
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, writes0 := cpuTime(), writeCalls()
	start := time.Now()
	for range min(window, b.N) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				err := chats[i%sessions].s.Send(ctx, sdp.TypeCPIM, bodies[i])
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu, writes := cpuTime()-cpu0, writeCalls()-writes0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d SENDs failed, the first: %v", n, b.N, firstErr)
	}
	rss, heap := vmRSS(), heapInUse()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/msg")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/msg")
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")

	// Every message answered 200 is on the stream.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	st, err := bs.JetStream().Stream(sctx, bs.Config().FromPhoneStream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(sctx)
	if err != nil {
		b.Fatal(err)
	}
	if int(info.State.Msgs) != b.N {
		b.Fatalf("%d messages on %s after %d SENDs answered 200", info.State.Msgs, bs.Config().FromPhoneStream, b.N)
	}
	for _, c := range chats {
		if err := c.close(ctx); err != nil {
			b.Errorf("BYE: %v", err)
		}
	}
	b.Logf("N=%d sessions=%d window=%d: %.0f msgs/s, p50 %v, p99 %v, CPU %.0f us and %.1f write calls a message (process, all threads), VmRSS %d MB, heap %d MB, load %s",
		b.N, sessions, window, float64(b.N)/elapsed.Seconds(), lat[len(lat)/2], lat[(len(lat)*99)/100],
		float64(cpu.Microseconds())/float64(b.N), float64(writes)/float64(b.N), rss>>20, heap>>20, loadAvg())
}

// writeCalls is how many write system calls this process has made (syscw
// in /proc/self/io; 0 where there is none).
func writeCalls() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
