package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/mimigw/mimigw/smpp/smsc"
)

const simUsage = `usage: mimigw sim <simulator> [flags]

simulators:
  smsc      an SMSC (SMPP 3.4) for testers: delivery receipts, MO injection,
            throttling and error injection, on an HTTP hook

'mimigw sim smsc -h' shows its flags.
`

const simSMSCUsage = `usage: mimigw sim smsc [flags]

Runs an SMSC simulator until SIGINT or SIGTERM: ESMEs bind to --listen;
its HTTP hook (--http) serves GET /messages, POST /mo, GET and POST /faults
and GET /sessions.
`

func sim(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, simUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "smsc" {
		fmt.Fprint(stderr, simUsage)
		return usageError{"sim needs a simulator: smsc"}
	}
	fs := flag.NewFlagSet("sim smsc", flag.ContinueOnError)
	fs.Usage = commandUsage(fs, simSMSCUsage)
	listen := fs.String("listen", "127.0.0.1:2775", "SMPP `address` to listen on")
	httpAddr := fs.String("http", "127.0.0.1:8081", "`address` of the MO injection and log hook (empty: none)")
	file := fs.String("config", "", "YAML `file` of simulator settings (accounts, outcomes, faults)")
	systemID := fs.String("system-id", "mimigw", "system_id an ESME binds with (ignored with --config)")
	password := fs.String("password", "dev", "password an ESME binds with (ignored with --config)")
	delay := fs.Duration("receipt-delay", 0, "delay before delivery receipts (default 1s)")
	outcome := fs.String("outcome", "", "receipt outcome: DELIVRD, UNDELIV, EXPIRED, REJECTD or none")
	if err := parseArgs(fs, args[1:], stdout, stderr); err != nil {
		return err
	}
	var cfg smsc.Config
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		if err := decodeYAML(b, &cfg); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	} else {
		cfg.Accounts = []smsc.Account{{SystemID: *systemID, Password: *password}}
	}
	if *delay != 0 {
		cfg.ReceiptDelay = *delay
	}
	if *outcome != "" {
		cfg.Outcome = *outcome
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err.Error()}
	}
	log := newLogger(LogConfig{Level: "info", Format: "text"}, stderr)
	s, err := smsc.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return s.Serve(ectx, ln) })
	if *httpAddr != "" {
		if err := serveHTTP(eg, ectx, *httpAddr, s.Handler(), log); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		log.Info("simulator hook", "http", *httpAddr)
	}
	return eg.Wait()
}
