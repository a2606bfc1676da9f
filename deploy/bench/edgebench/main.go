// Command edgebench runs mimigw's SIP edge alone for load tests: sip.Edge
// in front of a receiver that publishes every message it is handed to
// JetStream on an embedded NATS server (file store in -store) and returns
// once JetStream acknowledged it, which is what the gateway does before
// the edge answers 202. deploy/bench/load.sh drives it with SIPp next to
// Kamailio.
//
// It prints "ready" on stdout once the listeners are up and runs until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
}

func run() error {
	udp := flag.String("udp", "127.0.0.1:5080", "UDP listen address (empty: off)")
	tcp := flag.String("tcp", "127.0.0.1:5080", "TCP listen address (empty: off)")
	store := flag.String("store", "", "JetStream store directory (required)")
	cacheMax := flag.Int("answer-cache", 0, "answer cache entries (0: default)")
	noBus := flag.Bool("nobus", false, "answer without storing anything (measures the SIP edge alone)")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics and pprof on this address (e.g. 127.0.0.1:9100)")
	flag.Parse()
	if *store == "" {
		return errors.New("-store is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: *store, NoSigs: true})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "MIMI_FROM_PHONE", Subjects: []string{"mimi.from.tel.>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, MaxAge: time.Hour, MaxBytes: 4 << 30, Duplicates: 2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}

	cfg := sip.DevConfig()
	cfg.Listen = sip.Listen{UDP: *udp, TCP: *tcp}
	if *cacheMax > 0 {
		cfg.AnswerCache.MaxEntries = *cacheMax
	}
	reg := prometheus.NewRegistry()
	var recv gateway.Receiver = &receiver{js: js}
	if *noBus {
		recv = &receiver{}
	}
	e, err := sip.NewEdge(cfg, recv, log, reg)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Addr: *metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.ListenAndServe()
		defer srv.Close()
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for e.Ready() != nil {
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("ready")
	return <-done
}

// receiver stores what the edge hands it in JetStream, de-duplicated by
// sender and Ref like the gateway; without js it takes everything at once.
type receiver struct{ js jetstream.JetStream }

// ReceiveSegment is for the SMS edge; RCS never calls it.
func (r *receiver) ReceiveSegment(context.Context, gateway.Segment) error {
	return errors.New("segments come from SMS only")
}

func (r *receiver) Receive(ctx context.Context, m gateway.Inbound) error {
	if r.js == nil {
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrRejected, err)
	}
	sum := sha256.Sum256([]byte(m.From.String() + "|" + m.To.String() + "|" + m.Ref))
	if _, err := r.js.Publish(ctx, "mimi.from.tel."+m.From.Digits(), data, jetstream.WithMsgID(hex.EncodeToString(sum[:]))); err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrUnavailable, err)
	}
	return nil
}

func (r *receiver) Receipt(ctx context.Context, rc gateway.Receipt) error { return nil }

func (r *receiver) RevocationResult(ctx context.Context, rr gateway.RevocationResult) error {
	return nil
}

func (r *receiver) Serves(ctx context.Context, contact, number uri.Number) (bool, error) {
	return true, nil
}
