package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// The MIMI provider's two data paths under load, every piece real and on
// loopback: the gateway (bus, MLS state, provider listener, SMPP edge) and
// the SMSC simulator, and a desktop provider made of this project's MLS
// clients and transport, in the same process, on its own bus. Run with a
// fixed count:
//
//	go test -run XXX -bench 'Provider' -benchtime 20000x ./cmd/mimigw
//
// Both report msgs/s and the p50 and p99 of the time each message took.
// Unpaced, they measure the most the gateway takes (and the times then
// include the queue that builds up); MIMIGW_BENCH_RATE=N offers N
// messages a second instead, for the times at that rate.

const (
	benchDomain = "gw.example.net"
	benchRooms  = 32 // rooms, each a phone user, that the load spreads over
	benchConns  = 64 // requests or MO messages in flight
)

// benchSide is the gateway under test and the desktop provider talking to
// it.
type benchSide struct {
	ctx      context.Context
	gwBus    *bus.Bus
	sim      *smsc.Server
	ids      *identity.Store
	g        *gateway.Gateway
	prov     *provider.Provider
	alice    *mls.Client
	aliceMLS *mls.Provider
	desktop  *transport.Client
	rooms    []string
	phones   []uri.Number
	groups   [][]byte
	// hub, when set, answers the desktop's submitMessage (the phone users'
	// messages) and is told of each one.
	onSubmit func(room string, rcv *mls.Received)
}

func newBenchSide(b *testing.B, receipts string) *benchSide {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	s := &benchSide{ctx: ctx}

	// Certificates from one dev CA for both sides.
	caDir := b.TempDir()
	if err := transport.EnsureDevCA(caDir); err != nil {
		b.Fatal(err)
	}
	gwCert, gwKey, err := transport.IssueCert(caDir, benchDomain, caDir)
	if err != nil {
		b.Fatal(err)
	}
	dCert, dKey, err := transport.IssueCert(caDir, desktop, caDir)
	if err != nil {
		b.Fatal(err)
	}
	ca := filepath.Join(caDir, "ca.pem")
	gwAddr, hubAddr := freeAddrB(b), freeAddrB(b)

	// The desktop provider: alice's MLS client on its own bus, and a hub
	// endpoint for what the phone users send into alice's rooms.
	dBus := bustest.NewServer(b).Bus(b)
	s.aliceMLS, err = mls.Open(ctx, mls.Config{State: mls.StateConfig{KeyEnv: "MIMIGW_BENCH_KEY"}}, dBus.JetStream(), mls.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	if s.alice, err = s.aliceMLS.Client(ctx, alice); err != nil {
		b.Fatal(err)
	}
	dCfg := transport.Config{Domain: desktop, Listen: hubAddr, CertFile: dCert, KeyFile: dKey, CAFile: ca,
		Peers: []transport.Peer{{Domain: benchDomain, URL: "https://" + gwAddr}}}
	if s.desktop, err = transport.NewClient(dCfg, transport.WithLogger(quiet)); err != nil {
		b.Fatal(err)
	}
	hub, err := transport.NewServer(dCfg, map[transport.Endpoint]transport.Handler{
		transport.SubmitMessage: s.hubSubmit,
	}, transport.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	if err := hub.Listen(); err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { _ = hub.Serve(ctx) })

	// The gateway.
	s.gwBus = bustest.NewServer(b).Bus(b, bustest.WithConfig(func(c *bus.Config) { c.MaxAckPending = 4096 }))
	s.sim, err = smsc.New(smsc.Config{Name: "sim", Accounts: []smsc.Account{{SystemID: "bench", Password: "bench"}},
		Window: 200, Outcome: receipts, ReceiptDelay: time.Millisecond, LogSize: 1 << 20}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { _ = s.sim.Serve(ctx, ln) })
	if s.ids, err = identity.New(s.gwBus.Identity(), identity.Config{Domain: benchDomain, Pools: []string{"+15559990000-+15559990999"}}); err != nil {
		b.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Channel = gateway.ChannelSMS
	gcfg.Workers = 512
	reg := prometheus.NewRegistry()
	if s.g, err = gateway.New(ctx, gcfg, s.gwBus, s.ids, quiet, reg); err != nil {
		b.Fatal(err)
	}
	edge, err := smpp.NewEdge(smpp.Config{SMSCs: []smpp.SMSCConfig{{
		Name: "sim", Address: ln.Addr().String(), SystemID: "bench", Password: "bench", Window: 100, Binds: 1,
	}}, MOConcurrency: 256}, s.g, quiet, reg)
	if err != nil {
		b.Fatal(err)
	}
	s.g.UseSMS(edge)
	wg.Go(func() { _ = edge.Run(ctx) })
	gwMLS, err := mls.Open(ctx, mls.Config{State: mls.StateConfig{KeyEnv: "MIMIGW_BENCH_KEY"}}, s.gwBus.JetStream(), mls.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	pcfg := provider.Config{Config: transport.Config{Domain: benchDomain, Listen: gwAddr, CertFile: gwCert, KeyFile: gwKey, CAFile: ca,
		Peers: []transport.Peer{{Domain: desktop, URL: "https://" + hubAddr}}}, Served: []string{"+"}, Workers: 256}
	if s.prov, err = provider.New(ctx, pcfg, s.gwBus, gwMLS, provider.WithLogger(quiet)); err != nil {
		b.Fatal(err)
	}
	if err := s.prov.Listen(); err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { _ = s.prov.Run(ctx) })
	wg.Go(func() { _ = s.g.Run(ctx) })
	if err := s.sim.WaitBound(ctx, 1); err != nil {
		b.Fatal(err)
	}

	// alice opens a DM room with each phone user, as a desktop provider
	// does: key material, a group, a Welcome by notify.
	for i := range benchRooms {
		phone := uri.Number(fmt.Sprintf("+1555123%04d", i))
		room := fmt.Sprintf("mimi://%s/r/bench-%d", desktop, i)
		user := uri.UserURI(benchDomain, phone)
		req := &wire.KeyMaterialRequest{Protocol: wire.MLS10, RequestingUser: alice, TargetUser: user, RoomID: room,
			AcceptableCipherSuites: []uint16{1}, RequesterSignatureKey: s.alice.SignatureKey(), RequesterCredential: s.alice.Credential()}
		tbs, err := req.TBS()
		if err != nil {
			b.Fatal(err)
		}
		if req.Signature, err = s.alice.Sign(tbs); err != nil {
			b.Fatal(err)
		}
		body, _ := req.Marshal()
		status, rb, err := s.desktop.Do(ctx, benchDomain, transport.KeyMaterial, user, body)
		if err != nil || status != http.StatusOK {
			b.Fatalf("keyMaterial: %d %v", status, err)
		}
		km, err := wire.UnmarshalKeyMaterialResponse(rb)
		if err != nil || km.UserStatus != wire.Success {
			b.Fatalf("keyMaterial answer %+v %v", km, err)
		}
		gid, err := s.alice.CreateGroup(ctx, room, mls.GroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c, err := s.alice.Commit(ctx, gid, mls.Changes{Add: [][]byte{km.Clients[0].KeyPackage}})
		if err != nil {
			b.Fatal(err)
		}
		s.notify(b, room, &wire.FanoutMessage{Message: c.Welcome, RatchetTree: wire.RatchetTreeOption{Kind: wire.TreeFull, Tree: c.RatchetTree}})
		if _, err := s.ids.Lend(ctx, alice, phone); err != nil {
			b.Fatal(err)
		}
		s.rooms, s.phones, s.groups = append(s.rooms, room), append(s.phones, phone), append(s.groups, gid)
	}
	return s
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *benchSide) notify(b *testing.B, room string, fm *wire.FanoutMessage) {
	fm.Timestamp = uint64(time.Now().UnixMilli())
	body, err := wire.MarshalNotify(fm)
	if err != nil {
		b.Fatal(err)
	}
	status, rb, err := s.desktop.Do(s.ctx, benchDomain, transport.Notify, room, body)
	if err != nil || status != http.StatusCreated {
		b.Fatalf("notify: %d %s %v", status, rb, err)
	}
}

// hubSubmit is alice's provider taking a phone user's message: it
// decrypts it as alice and accepts it.
func (s *benchSide) hubSubmit(ctx context.Context, r *transport.Request) transport.Response {
	req, err := wire.UnmarshalSubmitMessageRequest(r.Body)
	if err != nil {
		return transport.Response{Status: http.StatusBadRequest}
	}
	info, err := wire.InspectMLSMessage(req.AppMessage)
	if err != nil {
		return transport.Response{Status: http.StatusBadRequest}
	}
	rcv, err := s.alice.Decrypt(ctx, info.GroupID, req.AppMessage)
	if err != nil {
		return transport.Response{Status: http.StatusUnprocessableEntity, Body: []byte(err.Error())}
	}
	if s.onSubmit != nil {
		s.onSubmit(r.Param, rcv)
	}
	body, _ := (&wire.SubmitMessageResponse{Protocol: wire.MLS10, Status: wire.Accepted, AcceptedTimestamp: uint64(time.Now().UnixMilli())}).Marshal()
	return transport.Response{Status: http.StatusOK, Body: body}
}

// offer hands 0..n-1 to next, paced at MIMIGW_BENCH_RATE a second when it
// is set, and closes next.
func offer(b *testing.B, n int, next chan<- int) {
	rate, _ := strconv.Atoi(os.Getenv("MIMIGW_BENCH_RATE"))
	start := time.Now()
	for i := range n {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		next <- i
	}
	close(next)
	if rate > 0 {
		b.ReportMetric(float64(rate), "offered/s")
	}
}

// latencies reports the p50 and p99 of d.
func latencies(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99_ms")
}

// BenchmarkProviderNotify: alice's provider notifies the gateway of b.N
// application messages (one per notify, over benchRooms rooms, benchConns
// at a time, encrypted beforehand); each is decrypted, its MLS state
// stored, put on mimi.to.tel and submitted to the SMSC. The time of a
// message runs from its notify to its submit_sm at the simulator.
func BenchmarkProviderNotify(b *testing.B) {
	b.Setenv("MIMIGW_BENCH_KEY", strings.Repeat("ab", 32))
	s := newBenchSide(b, "none")
	bodies := make([][]byte, b.N)
	for i := range b.N {
		r := i % benchRooms
		m := content.NewText(alice, s.rooms[r], "bench "+strconv.Itoa(i), content.NewSalt())
		data, err := m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		ct, err := s.alice.Encrypt(s.ctx, s.groups[r], data)
		if err != nil {
			b.Fatal(err)
		}
		if bodies[i], err = wire.MarshalNotify(&wire.FanoutMessage{Timestamp: uint64(time.Now().UnixMilli()), Message: ct}); err != nil {
			b.Fatal(err)
		}
	}
	sent := make([]time.Time, b.N)
	next := make(chan int)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Go(func() {
			for i := range next {
				sent[i] = time.Now()
				status, rb, err := s.desktop.Do(s.ctx, benchDomain, transport.Notify, s.rooms[i%benchRooms], bodies[i])
				if err != nil || status != http.StatusCreated {
					b.Errorf("notify %d: %d %s %v", i, status, rb, err)
				}
			}
		})
	}
	offer(b, b.N, next)
	wg.Wait()
	for s.sim.ReceivedCount() < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	var d []time.Duration
	for _, sub := range s.sim.Received() {
		i, err := strconv.Atoi(strings.TrimPrefix(sub.Text, "bench "))
		if err == nil && i < b.N {
			d = append(d, sub.At.Sub(sent[i]))
		}
	}
	if len(d) != b.N {
		b.Errorf("%d of %d messages matched at the SMSC", len(d), b.N)
	}
	latencies(b, d)
}

// BenchmarkProviderSubmit: b.N SMS from the phone users (benchConns at a
// time, over benchRooms rooms) reach the gateway as MO, are stored on
// mimi.from.tel, encrypted by the outbox as the phone user and sent to
// alice's provider by submitMessage, which decrypts each. The time of a
// message runs from its deliver_sm to its decryption at alice's provider
// (whose decryption runs on the same cores).
func BenchmarkProviderSubmit(b *testing.B) {
	b.Setenv("MIMIGW_BENCH_KEY", strings.Repeat("ab", 32))
	s := newBenchSide(b, "none")
	var mu sync.Mutex
	got := make(map[int]time.Time, b.N)
	done := make(chan struct{})
	s.onSubmit = func(_ string, rcv *mls.Received) {
		m, err := content.Decode(rcv.Content)
		if err != nil {
			return
		}
		text, _ := m.Text()
		i, err := strconv.Atoi(strings.TrimPrefix(text, "mo "))
		if err != nil {
			return
		}
		mu.Lock()
		got[i] = time.Now()
		if len(got) == b.N {
			close(done)
		}
		mu.Unlock()
	}
	// The number each phone sees alice under.
	lent := make([]uri.Number, benchRooms)
	for r := range benchRooms {
		n, err := s.ids.Lend(s.ctx, alice, s.phones[r])
		if err != nil {
			b.Fatal(err)
		}
		lent[r] = n
		// The conversation's room is alice's room, as after her first
		// message.
		if err := s.ids.SetRoom(s.ctx, alice, s.phones[r], s.rooms[r]); err != nil {
			b.Fatal(err)
		}
	}
	sent := make([]time.Time, b.N)
	next := make(chan int)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Go(func() {
			for i := range next {
				r := i % benchRooms
				sent[i] = time.Now()
				if _, err := s.sim.InjectMO(s.ctx, smsc.MO{From: string(s.phones[r]), To: string(lent[r]), Text: "mo " + strconv.Itoa(i)}); err != nil {
					b.Errorf("MO %d: %v", i, err)
				}
			}
		})
	}
	offer(b, b.N, next)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mo/s")
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("alice got %d of %d", len(got), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	var d []time.Duration
	mu.Lock()
	for i, at := range got {
		d = append(d, at.Sub(sent[i]))
	}
	mu.Unlock()
	latencies(b, d)
}
