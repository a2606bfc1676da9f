// Command edgebench runs mimigw's SIP edge alone for load tests: sip.Edge
// in front of a receiver that takes every message at once and stores
// nothing, so that deploy/bench/load.sh can show what the edge costs
// apart from the gateway and JetStream behind it (target "edge", next to
// `mimigw serve` and Kamailio).
//
// It prints "ready" on stdout once the listeners are up and runs until
// SIGINT or SIGTERM.
package main

import (
	"context"
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
	cacheMax := flag.Int("answer-cache", 0, "answer cache entries (0: default)")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics and pprof on this address (e.g. 127.0.0.1:9100)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := sip.DevConfig()
	cfg.Listen = sip.Listen{UDP: *udp, TCP: *tcp}
	if *cacheMax > 0 {
		cfg.AnswerCache.MaxEntries = *cacheMax
	}
	reg := prometheus.NewRegistry()
	e, err := sip.NewEdge(cfg, receiver{}, log, reg)
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

// receiver takes everything at once and keeps nothing.
type receiver struct{}

// ReceiveSegment is for the SMS edge; RCS never calls it.
func (receiver) ReceiveSegment(context.Context, gateway.Segment) error {
	return errors.New("segments come from SMS only")
}

func (receiver) Receive(context.Context, gateway.Inbound) error { return nil }

func (receiver) Receipt(context.Context, gateway.Receipt) error { return nil }

func (receiver) RevocationResult(context.Context, gateway.RevocationResult) error { return nil }

func (receiver) Serves(context.Context, uri.Number, uri.Number) (bool, error) { return true, nil }
