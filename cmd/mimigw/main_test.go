package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Every command and action answers -h and --help on stdout, exits 0, and
// the overviews list every action.
func TestHelpEveryCommand(t *testing.T) {
	t.Parallel()
	everyAction := []string{"serve", "send", "numbers list", "numbers assign", "numbers release", "numbers lend",
		"numbers unlend", "trace KEY", "sim smsc", "provider cert", "version"}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, everyAction},
		{[]string{"--help"}, everyAction},
		{[]string{"help"}, everyAction},
		{[]string{"serve", "-h"}, []string{"serve --dev | --config FILE", "-config", "SIGHUP"}},
		{[]string{"serve", "--help"}, []string{"-dev"}},
		{[]string{"send", "-h"}, []string{"send --to NUMBER", "id: ", "status: ", "-timeout", "-nats"}},
		{[]string{"send", "--help"}, []string{"-to"}},
		{[]string{"numbers", "-h"}, []string{"list", "assign NUMBER USER", "release NUMBER", "lend USER CONTACT", "unlend NUMBER CONTACT"}},
		{[]string{"numbers", "--help"}, []string{"unlend"}},
		{[]string{"numbers", "list", "-h"}, []string{"numbers list", "-nats", "-config"}},
		{[]string{"numbers", "assign", "--help"}, []string{"numbers assign [flags] NUMBER USER"}},
		{[]string{"numbers", "release", "-h"}, []string{"numbers release [flags] NUMBER"}},
		{[]string{"numbers", "lend", "-h"}, []string{"numbers lend [flags] USER CONTACT", "-nats"}},
		{[]string{"numbers", "unlend", "--help"}, []string{"numbers unlend [flags] NUMBER CONTACT"}},
		{[]string{"sim", "-h"}, []string{"smsc"}},
		{[]string{"sim", "--help"}, []string{"smsc"}},
		{[]string{"sim", "smsc", "-h"}, []string{"sim smsc", "-listen", "-receipt-delay"}},
		{[]string{"version", "-h"}, []string{"mimigw version"}},
		{[]string{"version", "--help"}, []string{"mimigw version"}},
		{[]string{"help", "numbers", "lend"}, []string{"numbers lend [flags] USER CONTACT"}},
		{[]string{"provider", "-h"}, []string{"cert"}},
	} {
		var out, errOut bytes.Buffer
		err := run(tt.args, &out, &errOut)
		if code := exitStatus(err, io.Discard); code != 0 {
			t.Errorf("%q: exit %d (%v), stderr %q", tt.args, code, err, errOut.String())
			continue
		}
		if errOut.Len() != 0 {
			t.Errorf("%q: help on stderr too: %q", tt.args, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "usage: mimigw") {
			t.Errorf("%q: stdout %q, want the usage", tt.args, out.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: usage does not mention %q:\n%s", tt.args, w, out.String())
			}
		}
	}
}

// Commands whose help goes to stderr still answer -h with their usage and
// exit 0.
func TestHelpOnStderrExits0(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"trace", "-h"}, {"trace", "--help"}, {"provider", "cert", "-h"}} {
		var out, errOut bytes.Buffer
		err := run(args, &out, &errOut)
		if code := exitStatus(err, io.Discard); code != 0 || !strings.Contains(out.String()+errOut.String(), "usage: mimigw") {
			t.Errorf("%q: exit %d (%v), stdout %q, stderr %q", args, code, err, out.String(), errOut.String())
		}
	}
}

// Mistakes in how a command is called exit 2, with the usage on stderr.
func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil, {"frob"}, {"serve"}, {"serve", "--frob"}, {"send"}, {"send", "--to", "+15551230002"}, {"numbers"},
		{"numbers", "frob"}, {"numbers", "lend", "x"}, {"numbers", "list", "--frob"}, {"sim"}, {"sim", "modem"}, {"version", "x"},
	} {
		var out, errOut bytes.Buffer
		err := run(args, &out, &errOut)
		var msg bytes.Buffer
		if code := exitStatus(err, &msg); code != 2 || !strings.HasPrefix(msg.String(), "mimigw: ") {
			t.Errorf("%q: exit %d, message %q (%v)", args, code, msg.String(), err)
		}
		if !strings.Contains(errOut.String(), "usage: mimigw") && !strings.Contains(msg.String(), "serve needs --dev or --config FILE") {
			t.Errorf("%q: no usage on stderr: %q", args, errOut.String())
		}
	}
	if code := exitStatus(exitCode(1), io.Discard); code != 1 {
		t.Errorf("exitCode(1): exit %d", code)
	}
	if code := exitStatus(errors.New("boom"), io.Discard); code != 1 {
		t.Errorf("error: exit %d", code)
	}
}

// `mimigw send` labels what it prints: the message ID, then the status of
// the report that came back.
func TestSendPrintsLabelledStatus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"send", "--nats", b.ClientURL(), "--timeout", "20s", "--to", "+15551230002", "hi"}, &out, &errOut)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := b.JetStream().Stream(ctx, b.Config().ToPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	var env bus.Envelope
	for {
		raw, err := stream.GetLastMsgForSubject(ctx, "mimi.to.tel.15551230002")
		if err == nil {
			if env, err = bus.ParseEnvelope(raw.Header); err != nil {
				t.Fatal(err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("send published nothing: %v (%s)", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	id, err := content.ParseMessageID(env.ID)
	if err != nil {
		t.Fatal(err)
	}
	phone := uri.UserURI(devDomain, "+15551230002")
	report := content.NewStatusReport(phone, env.Room, []content.StatusEntry{{ID: id, Status: content.Delivered}}, content.NewSalt())
	data, err := report.Encode()
	if err != nil {
		t.Fatal(err)
	}
	renv := bus.Envelope{ID: content.ComputeID(phone, env.Room, data, report.Salt).String(), Sender: phone, Recipient: env.Sender,
		Room: env.Room, Channel: bus.ChannelSMS, Accepted: time.Now()}
	if _, err := b.Publish(ctx, bus.SubjectFromPhone("+15551230002"), renv, data); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("send: %v (%s)", err, errOut.String())
		}
	case <-ctx.Done():
		t.Fatal("send did not return")
	}
	if got, want := out.String(), "id: "+env.ID+"\nstatus: delivered\n"; got != want {
		t.Errorf("send printed %q, want %q", got, want)
	}
}

// The tools refuse a NATS server that is not a mimigw bus at once, naming
// its URL, instead of hanging or passing on a JetStream error.
func TestToolsRefuseForeignBus(t *testing.T) {
	t.Parallel()
	srv, err := bus.StartServer(bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir()}, "", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for _, args := range [][]string{
		{"numbers", "list", "--nats", srv.ClientURL()},
		{"send", "--nats", srv.ClientURL(), "--to", "+15551230002", "hi"},
	} {
		start := time.Now()
		var out, errOut bytes.Buffer
		err := run(args, &out, &errOut)
		var msg bytes.Buffer
		code := exitStatus(err, &msg)
		if code != 1 || !strings.Contains(msg.String(), "bus.url: "+srv.ClientURL()+" is not a mimigw bus") ||
			!strings.Contains(msg.String(), "MIMI_TO_PHONE") || strings.Contains(msg.String(), "\n ") {
			t.Errorf("%q: exit %d: %q", args[0], code, msg.String())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q: took %s", args[0], d)
		}
	}
}

// The gateway's start with nothing at bus.url: lines saying what it waits
// for, then one error line naming bus.url, never the password.
func TestStartBusUnreachable(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t) // nothing listens there
	cfg, err := loadConfig(writeFile(t, "domain: gw.example.net\nsmpp:\n  smscs: [{name: a, address: 127.0.0.1:1, system_id: x}]\n"),
		false, []string{"MIMIGW_BUS_URL=nats://gw:secret@" + addr, "MIMIGW_DATA_DIR=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err = runGateway(ctx, cfg, false, log)
	if err == nil {
		t.Fatal("the gateway started without a bus")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "bus.url: ") || !strings.Contains(msg, addr) || strings.Contains(msg, "\n") || strings.Contains(msg, "secret") {
		t.Errorf("error %q: want one line on bus.url naming %s, without the password", msg, addr)
	}
	if l := logs.String(); !strings.Contains(l, "waiting for the NATS server") || !strings.Contains(l, "attempt=") ||
		!strings.Contains(l, addr) || strings.Contains(l, "secret") {
		t.Errorf("log while waiting:\n%s", l)
	}
}

// The embedded NATS server's port taken: the start fails at once with an
// error naming bus.embedded.listen and the address.
func TestStartEmbeddedPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := loadConfig("", true, []string{"MIMIGW_BUS_EMBEDDED_LISTEN=" + ln.Addr().String(), "MIMIGW_DATA_DIR=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = runGateway(context.Background(), cfg, true, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), "bus.embedded.listen: ") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("start on a taken port: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
}

// JSON logs write durations as text, and a flood of one warning becomes
// its first line and a count.
func TestLoggerDurationsAndRepeats(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := newLogger(LogConfig{Level: "info", Format: "json"}, &buf)
	log.Info("timing", "took", 1500*time.Millisecond)
	for range 100 {
		log.With("component", "smpp").Warn("peer sent garbage", "peer", "10.0.0.1")
	}
	log.Warn("another warning")
	log.Error("an error")
	log.Error("an error")
	time.Sleep(1500 * time.Millisecond)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), buf.String())
	}
	if lines[0]["took"] != "1.5s" {
		t.Errorf("duration logged as %v", lines[0]["took"])
	}
	if lines[1]["msg"] != "peer sent garbage" || lines[2]["msg"] != "another warning" || lines[3]["msg"] != "an error" || lines[4]["msg"] != "an error" {
		t.Errorf("lines %v", lines)
	}
	last := lines[5]
	if last["msg"] != "peer sent garbage (repeated 99 times in 1s)" || last["repeated"] != 99.0 || last["component"] != "smpp" || last["level"] != "WARN" {
		t.Errorf("summary %v", last)
	}
}

// SIGHUP sets the log level from the configuration again, and says that
// other changes need a restart.
func TestLogLevelReloadsOnSIGHUP(t *testing.T) {
	f := writeFile(t, "domain: gw.example.net\nlog: {level: info}\nsmpp:\n  smscs: [{name: a, address: 127.0.0.1:2775, system_id: x}]\n")
	var buf syncBuffer
	log, level := newLevelLogger(LogConfig{Level: "info"}, &buf)
	stop := reloadLogLevelOnHUP(f, false, level, log)
	defer stop()
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug on at info")
	}
	if err := os.WriteFile(f, []byte("domain: gw.example.net\nlog: {level: debug}\nsmpp:\n  smscs: [{name: a, address: 127.0.0.1:2775, system_id: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := self.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for level.Level() != slog.LevelDebug {
		if time.Now().After(deadline) {
			t.Fatalf("level still %s", level.Level())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("logger not at debug")
	}
	// A configuration that no longer loads leaves the level alone.
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		reloadLogLevel(hup, done, func() (*Config, error) { return nil, errors.New("broken") }, level, log)
	}()
	hup <- syscall.SIGHUP
	for !strings.Contains(buf.String(), "configuration not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no line for the failed reload:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	<-finished
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %s after a failed reload", level.Level())
	}
	l := buf.String()
	if !strings.Contains(l, "other changes to the configuration need a restart") || !strings.Contains(l, "log.level=DEBUG") ||
		!strings.Contains(l, "configuration not reloaded") {
		t.Errorf("log:\n%s", l)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
