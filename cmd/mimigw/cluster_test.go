package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// These tests run a three-node NATS JetStream cluster (nats-server built
// from the module this project pins), the gateway as its own process with
// every stream and bucket at three replicas, and SIPp sending pager-mode
// MESSAGEs (deploy/sipp/uac_message.xml) at a steady rate; mid-run one node
// is killed with SIGKILL: a follower of the from-phone stream, or its
// leader. They count what SIPp was answered: the 503s must span under 2 s,
// and every message answered 202 must be on the stream. They run only with
// MIMIGW_INTEROP=1 (the README's test command). The rate is
// MIMIGW_CLUSTER_RATE MESSAGE/s (default 1000), for MIMIGW_CLUSTER_SECONDS
// seconds (default 12); BENCHMARKS.md has a run.

func TestClusterKillFollower(t *testing.T) { clusterKill(t, false) }

func TestClusterKillStreamLeader(t *testing.T) { clusterKill(t, true) }

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	name, client string
	cmd          *exec.Cmd
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// clusterBinaries builds nats-server and mimigw into dir.
func clusterBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, b := range []struct{ out, pkg string }{
		{"nats-server", "github.com/nats-io/nats-server/v2"},
		{"mimigw", "."},
	} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
}

func clusterKill(t *testing.T, leader bool) {
	if os.Getenv("MIMIGW_INTEROP") != "1" {
		t.Skip("a three-node NATS cluster under load: set MIMIGW_INTEROP=1 to run it")
	}
	sippBin := sipptest.Need(t)
	rate := envInt(t, "MIMIGW_CLUSTER_RATE", 1000)
	seconds := envInt(t, "MIMIGW_CLUSTER_SECONDS", 12)
	bin, dir := t.TempDir(), t.TempDir()
	clusterBinaries(t, bin)

	// The cluster: three nodes on 127.0.0.1, each with its store.
	nodes := make([]*natsNode, 3)
	routes := make([]string, 3)
	clusterAddrs := make([]string, 3)
	for i := range nodes {
		nodes[i] = &natsNode{name: "n" + strconv.Itoa(i+1), client: freeAddr(t)}
		clusterAddrs[i] = freeAddr(t)
		routes[i] = `"nats://` + clusterAddrs[i] + `"`
	}
	var urls []string
	for i, n := range nodes {
		host, port, _ := strings.Cut(n.client, ":")
		chost, cport, _ := strings.Cut(clusterAddrs[i], ":")
		conf := filepath.Join(dir, n.name+".conf")
		text := fmt.Sprintf(`server_name: %s
host: %s
port: %s
jetstream { store_dir: %q }
cluster {
  name: mimigw
  host: %s
  port: %s
  routes: [%s]
}
`, n.name, host, port, filepath.Join(dir, n.name), chost, cport, strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		n.cmd = exec.Command(filepath.Join(bin, "nats-server"), "-c", conf)
		logf, err := os.Create(filepath.Join(dir, n.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmd := n.cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
		urls = append(urls, "nats://"+n.client)
	}

	// The gateway, with the settings of deploy/nats/cluster/mimigw.yaml
	// that matter here.
	httpAddr, sipAddr := freeAddr(t), freeAddr(t)
	config := filepath.Join(dir, "mimigw.yaml")
	yaml := fmt.Sprintf(`domain: gw.test
data_dir: %s
http: {listen: "%s"}
bus:
  url: %s
  replicas: 3
  publish_timeout: 15s
  publish_ack_timeout: 1s
gateway: {pools: ["+15559990000-+15559990999"]}
sip:
  listen: {udp: "%s"}
  trusted: {cidrs: ["127.0.0.0/8"]}
  outbound_proxy: "sip:%s;transport=tcp"
  receive_concurrency: 16384
  max_in_flight: 16384
  timeouts: {receive: 16s}
`, filepath.Join(dir, "data"), httpAddr, strings.Join(urls, ","), sipAddr, freeAddr(t))
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	gwLog := filepath.Join(dir, "mimigw.log")
	logf, err := os.Create(gwLog)
	if err != nil {
		t.Fatal(err)
	}
	gw := exec.Command(filepath.Join(bin, "mimigw"), "serve", "--config", config)
	gw.Stdout, gw.Stderr = logf, logf
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Process.Kill(); _ = gw.Wait(); logf.Close() })
	ready := func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(gwLog)
			t.Logf("gateway log:\n%s", tail(b, 6000))
		}
	})
	began := time.Now()
	waitFor(t, 120*time.Second, "the gateway ready on the cluster", ready)
	t.Logf("cluster and gateway ready in %s", time.Since(began).Round(100*time.Millisecond))

	// A client of our own, to find the stream's leader and count it.
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := bus.DefaultFromPhoneStream
	var info *jetstream.StreamInfo
	waitFor(t, 30*time.Second, "the from-phone stream with a leader and two current replicas", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err = s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
	victim := info.Cluster.Replicas[0].Name
	if leader {
		victim = info.Cluster.Leader
	}
	var killed *natsNode
	for _, n := range nodes {
		if n.name == victim {
			killed = n
		}
	}
	if killed == nil {
		t.Fatalf("no node named %q", victim)
	}

	// Readiness, polled through the run.
	var notReady atomic.Int64
	var firstNotReady, lastNotReady time.Time // read after polled is closed
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
			asked := time.Now()
			if !ready() {
				notReady.Add(1)
				if firstNotReady.IsZero() {
					firstNotReady = asked
				}
				lastNotReady = time.Now()
			}
		}
	}()

	// The load: SIPp at rate for seconds, retransmitting as RFC 3261
	// clients do (Timer F: 10 retransmissions over UDP).
	calls := rate * seconds
	sippDir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "deploy", "sipp", "uac_message.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sippDir, "uac_message.xml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+90*time.Second)
	defer cancel()
	sipp := exec.CommandContext(ctx, sippBin, "-sf", "uac_message.xml", "-nostdin", "-nd",
		"-max_non_invite_retrans", "10", "-timeout", strconv.Itoa(seconds+60)+"s",
		"-cp", strconv.Itoa(sipptest.FreePort(t, "udp")), "-i", "127.0.0.1", "-trace_shortmsg",
		"-key", "caller", "+15551230001", "-key", "callee", "+15551230002", "-key", "text", "cluster failover",
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls), sipAddr)
	sipp.Dir = sippDir
	var sippOut bytes.Buffer
	sipp.Stdout, sipp.Stderr = &sippOut, &sippOut
	start := time.Now()
	if err := sipp.Start(); err != nil {
		t.Fatal(err)
	}
	sippDone := make(chan error, 1)
	go func() { sippDone <- sipp.Wait() }()

	// The kill, a quarter into the run.
	select {
	case err := <-sippDone:
		t.Fatalf("sipp ended before the kill: %v\n%s", err, sippOut.String())
	case <-time.After(time.Duration(seconds) * time.Second / 4):
	}
	if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("killed %s (%s of the %s stream) %s into the run", victim, map[bool]string{true: "leader", false: "a follower"}[leader],
		stream, killedAt.Sub(start).Round(time.Millisecond))
	sippErr := <-sippDone
	close(stopPoll)
	<-polled

	// What SIPp was answered, per call.
	res := readShortMessages(t, sippDir)
	if res.sent != calls {
		t.Errorf("SIPp sent %d calls, want %d (exit: %v)\n%s", res.sent, calls, sippErr, sippOut.String())
	}
	var first503, last503 float64
	for _, at := range res.at503 {
		if first503 == 0 || at < first503 {
			first503 = at
		}
		last503 = max(last503, at)
	}
	span := time.Duration((last503 - first503) * float64(time.Second))
	t.Logf("%d calls at %d/s: %d answered 202, %d 503 (spanning %s), %d other, %d unanswered; slowest 202 %s; /readyz not ready %d times, from %s to %s after the kill",
		res.sent, rate, len(res.ok), len(res.at503), span.Round(time.Millisecond), res.other, res.sent-len(res.ok)-len(res.at503)-res.other,
		res.slowest.Round(time.Millisecond), notReady.Load(), firstNotReady.Sub(killedAt).Round(100*time.Millisecond),
		lastNotReady.Sub(killedAt).Round(100*time.Millisecond))
	if span >= 2*time.Second {
		t.Errorf("503s spanned %s, want under 2 s", span.Round(time.Millisecond))
	}
	if unanswered := res.sent - len(res.ok) - len(res.at503) - res.other; unanswered > 0 || res.other > 0 {
		t.Errorf("%d calls unanswered, %d answered neither 202 nor 503", unanswered, res.other)
	}

	// No 202 lost: the stream holds at least one message per call
	// answered 202 (each call is its own message), and no more than the
	// calls sent.
	var msgs uint64
	waitFor(t, 30*time.Second, "the from-phone stream readable after the kill", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false
		}
		msgs = info.State.Msgs
		return true
	})
	if msgs < uint64(len(res.ok)) || msgs > uint64(res.sent) {
		t.Errorf("stream %s holds %d messages; %d calls were answered 202 of %d sent", stream, msgs, len(res.ok), res.sent)
	}

	// And message by message: the in.* record written beside each message
	// names the imdn Message-ID of its call (sipp-<pid>-<call number>;
	// SIPp's Call-ID is <call number>-<pid>@<ip>).
	refs := inRecordRefs(t, js)
	if len(refs) == 0 {
		t.Log("no in.* records on the bus: checked by count only")
	} else {
		t.Logf("%d in.* records on the bus", len(refs))
		lost := 0
		for call := range res.ok {
			n, rest, _ := strings.Cut(call, "-")
			pid, _, _ := strings.Cut(rest, "@")
			if !refs["sipp-"+pid+"-"+n] {
				if lost++; lost <= 5 {
					t.Errorf("call %s was answered 202 but its message is not on the bus", call)
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d messages answered 202 are not on the bus", lost, len(res.ok))
		}
	}

	// Readiness: it said so while the stream had no leader, and it
	// recovers.
	if leader && notReady.Load() == 0 {
		t.Error("/readyz stayed 200 while the stream had no leader")
	}
	waitFor(t, 30*time.Second, "/readyz 200 again", ready)

	// The warnings of the failover are few, however many messages waited.
	logText, err := os.ReadFile(gwLog)
	if err != nil {
		t.Fatal(err)
	}
	warns := bytes.Count(logText, []byte("level=WARN"))
	if limit := 20 + 2*int(time.Since(start)/time.Second); warns > limit {
		t.Errorf("the gateway logged %d warnings, want at most %d:\n%s", warns, limit, tail(logText, 4000))
	}
}

// inRecordRefs reads the Ref of every in.* record in the delivery shards.
func inRecordRefs(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	refs := map[string]bool{}
	for i := 0; ; i++ {
		name := bus.DefaultDeliveriesBucket
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		// A bucket's stream may still be electing its leader after the
		// kill ("no responders"): read it again from the start until the
		// deadline (refs is a set, so a record read twice counts once).
		var err error
		for {
			err = readInRecords(ctx, js, name, refs)
			if err == nil || errors.Is(err, jetstream.ErrStreamNotFound) || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return refs
		}
		if err != nil {
			t.Fatalf("records of %s: %v", name, err)
		}
	}
}

// readInRecords adds the refs of the in.* records of the bucket name.
func readInRecords(ctx context.Context, js jetstream.JetStream, name string, refs map[string]bool) error {
	c, err := js.OrderedConsumer(ctx, "KV_"+name, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"$KV." + name + ".in.>"}})
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	for got := uint64(0); got < info.NumPending; {
		// Asking for no more than remain, so that the fetch ends as soon
		// as they came.
		batch, err := c.Fetch(int(min(1000, info.NumPending-got)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			got++
			var rec struct {
				Ref string `json:"ref"`
			}
			if json.Unmarshal(m.Data(), &rec) == nil && rec.Ref != "" {
				refs[rec.Ref] = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%d of %d read, then none", got, info.NumPending)
		}
	}
	return nil
}

// shortMessages is what SIPp's -trace_shortmsg recorded, per call.
type shortMessages struct {
	sent    int                // calls SIPp started
	ok      map[string]bool    // calls answered 202
	at503   map[string]float64 // calls answered 503: when (Unix seconds)
	other   int                // calls answered otherwise
	slowest time.Duration      // the longest wait for a 202, retransmissions included
}

// readShortMessages reads the file: tab-separated date, time, Unix time,
// S(ent) or R(eceived), Call-ID, CSeq, first line.
func readShortMessages(t *testing.T, dir string) shortMessages {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_shortmessages.log"))
	if len(files) != 1 {
		t.Fatalf("want one SIPp shortmessages file in %s, found %v", dir, files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := shortMessages{ok: map[string]bool{}, at503: map[string]float64{}}
	sentAt := map[string]float64{}
	otherCalls := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 7 {
			continue
		}
		at, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			continue
		}
		call, line := fields[4], fields[6]
		switch {
		case fields[3] == "S":
			if _, seen := sentAt[call]; !seen {
				sentAt[call] = at
			}
		case strings.HasPrefix(line, "SIP/2.0 202"):
			if !res.ok[call] {
				res.ok[call] = true
				res.slowest = max(res.slowest, time.Duration((at-sentAt[call])*float64(time.Second)))
			}
		case strings.HasPrefix(line, "SIP/2.0 503"):
			if _, seen := res.at503[call]; !seen {
				res.at503[call] = at
			}
		case strings.HasPrefix(line, "SIP/2.0 1"):
		default:
			otherCalls[call] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	res.sent = len(sentAt)
	res.other = len(otherCalls)
	return res
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
