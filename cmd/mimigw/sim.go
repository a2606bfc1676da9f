package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mimigw/mimigw/sip/rcssim"
	"github.com/mimigw/mimigw/smpp/smsc"
)

const simUsage = `usage: mimigw sim <simulator> [flags]

simulators:
  smsc      an SMSC (SMPP 3.4) for testers: delivery receipts, MO injection,
            throttling and error injection, on an HTTP hook
  rcs       RCS phones for testers behind the gateway's outbound proxy:
            OPTIONS with the RCS tags, pager mode, large message mode and
            chat sessions over MSRP, IMDNs; they send from an HTTP hook
            ('mimigw sim rcs send')

'mimigw sim smsc -h' and 'mimigw sim rcs -h' show their flags.
`

const simSMSCUsage = `usage: mimigw sim smsc [flags]

Runs an SMSC simulator until SIGINT or SIGTERM: ESMEs bind to --listen;
its HTTP hook (--http) serves GET /messages, POST /mo, GET and POST /faults
and GET /sessions.
`

const simRCSUsage = `usage: mimigw sim rcs [flags]
       mimigw sim rcs send [flags] TEXT

Runs RCS phones until SIGINT or SIGTERM: the numbers of --numbers answer
OPTIONS, MESSAGE and session INVITEs on --listen (UDP and TCP; point the
gateway's sip.outbound_proxy here), with MSRP on --msrp, and send IMDNs
and their own messages to --gateway. Its HTTP hook (--http) serves
GET /messages (what they received) and POST /send.

'send' asks a running simulator's hook to send TEXT from one of its
numbers, and prints the CPIM Message-ID.
`

const simRCSSendUsage = `usage: mimigw sim rcs send [flags] TEXT

Asks the RCS simulator whose HTTP hook is at --http to send TEXT from one
of its numbers by pager mode, large message mode or in a chat session,
and prints the CPIM Message-ID once the gateway took it.
`

func sim(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, simUsage)
		return nil
	}
	if len(args) > 0 && args[0] == "rcs" {
		if len(args) > 1 && args[1] == "send" {
			return simRCSSend(args[2:], stdout, stderr)
		}
		return simRCS(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "smsc" {
		fmt.Fprint(stderr, simUsage)
		return usageError{"sim needs a simulator: smsc or rcs"}
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

func simRCS(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim rcs", flag.ContinueOnError)
	fs.Usage = commandUsage(fs, simRCSUsage)
	numbers := fs.String("numbers", devRCSNumbers, "`numbers` the phones have, comma-separated: +E.164 or ranges +15551230100-+15551230199")
	listen := fs.String("listen", devRCSSim, "SIP `address` (UDP and TCP) the gateway's outbound proxy points at")
	msrpAddr := fs.String("msrp", "127.0.0.1:2856", "MSRP `address` to listen on")
	gw := fs.String("gateway", "sip:127.0.0.1:5060;transport=tcp", "SIP `URI` of the gateway, where the phones send")
	domain := fs.String("domain", "", "host of the sip: URIs of the phones (default rcssim.localhost)")
	setup := fs.String("setup", "active", "answer to a=setup:actpass: active (connect) or passive (wait); passive also offers a=setup:passive in the sessions it opens")
	displayed := fs.Bool("displayed", false, "also send displayed IMDNs when asked for")
	relay := fs.String("msrp-relay", "", "MSRP relay `URI` (RFC 4976, msrp://host:port;tcp) the phones AUTH to and send through")
	httpAddr := fs.String("http", "127.0.0.1:8082", "`address` of the send and log hook (empty: none)")
	file := fs.String("config", "", "YAML `file` of simulator settings (numbers, listen, msrp, gateway, domain, displayed, setup, msrp_relay, max_log); flags given override it")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("sim rcs: unexpected argument %q", fs.Arg(0))}
	}
	var cfg rcssim.Config
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		if err := decodeYAML(b, &cfg); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name string, dst *string, v string) {
		if set[name] || *file == "" || *dst == "" {
			*dst = v
		}
	}
	if set["numbers"] || *file == "" || len(cfg.Numbers) == 0 {
		cfg.Numbers = []string{*numbers}
	}
	pick("listen", &cfg.Listen, *listen)
	pick("msrp", &cfg.MSRP, *msrpAddr)
	pick("gateway", &cfg.Gateway, *gw)
	pick("domain", &cfg.Domain, *domain)
	pick("setup", &cfg.Setup, *setup)
	pick("msrp-relay", &cfg.MSRPRelay, *relay)
	if set["displayed"] {
		cfg.Displayed = *displayed
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return usageError{err.Error()}
	}
	log := newLogger(LogConfig{Level: "info", Format: "text"}, stderr)
	s, err := rcssim.New(cfg, log)
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return s.Serve(ectx) })
	if *httpAddr != "" {
		if err := serveHTTP(eg, ectx, *httpAddr, s.Handler(), log); err != nil {
			stop()
			_ = eg.Wait()
			return fmt.Errorf("--http: %w", err)
		}
		log.Info("simulator hook", "http", *httpAddr)
	}
	return eg.Wait()
}

func simRCSSend(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim rcs send", flag.ContinueOnError)
	fs.Usage = commandUsage(fs, simRCSSendUsage)
	hook := fs.String("http", "127.0.0.1:8082", "`address` of the simulator's hook")
	from := fs.String("from", "", "one of the simulator's `numbers` (required)")
	to := fs.String("to", "", "the recipient's `number` (required)")
	mode := fs.String("mode", "pager", "pager, large or chat")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the simulator")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *from == "" || *to == "" || fs.NArg() != 1 {
		return usageError{"sim rcs send needs --from, --to and one TEXT"}
	}
	body, _ := json.Marshal(map[string]string{"from": *from, "to": *to, "text": fs.Arg(0), "mode": *mode})
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+*hook+"/send", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("simulator hook: %w", err)
	}
	defer res.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&out); err != nil {
		return fmt.Errorf("simulator hook: %d: %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("simulator hook: %d: %s", res.StatusCode, out["error"])
	}
	fmt.Fprintf(stdout, "message_id: %s\nmode: %s\n", out["message_id"], out["mode"])
	return nil
}
