package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

const sendUsage = `usage: mimigw send --to NUMBER [flags] TEXT...

Puts a MIMI text for the phone NUMBER on the gateway's bus (mimi.to.tel),
as a MIMI user would send it, and waits for its status report. Prints, one
a line:

  id: <the MIMI message ID, 64 hex digits>
  status: <delivered, read, expired or error>

and exits 1 unless the status is delivered or read.
`

func send(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	to := fs.String("to", "", "the phone `number` to write to (E.164, or national in the default region)")
	from := fs.String("from", "", "the sender's MIMI `URI` (default mimi://<domain>/u/mimigw-send)")
	room := fs.String("room", "", "the room `URI` (default: the direct-message room of sender and phone)")
	channel := fs.String("channel", "auto", "how to reach the phone: auto, rcs or sms")
	markdown := fs.Bool("markdown", false, "the text is markdown (text/markdown;variant=GFM-MIMI)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the status report (0: do not wait)")
	tf := addToolFlags(fs)
	fs.Usage = commandUsage(fs, sendUsage)
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	if *to == "" || text == "" {
		fs.Usage()
		return usageError{"send needs --to and a text"}
	}
	switch *channel {
	case "auto", "rcs", "sms":
	default:
		return usageError{fmt.Sprintf("--channel %q: want auto, rcs or sms", *channel)}
	}
	cfg, err := tf.load()
	if err != nil {
		return err
	}
	n, err := uri.ParseNumber(*to, cfg.DefaultRegion)
	if err != nil {
		return usageError{fmt.Sprintf("--to: %v", err)}
	}
	sender := *from
	if sender == "" {
		sender = uri.MIMI{Kind: uri.User, Domain: cfg.Domain, ID: "mimigw-send"}.String()
	}
	if _, err := uri.ParseMIMI(sender); err != nil {
		return usageError{fmt.Sprintf("--from: %v", err)}
	}
	r := *room
	if r == "" {
		r = identity.DMRoom(cfg.Domain, sender, uri.UserURI(cfg.Domain, n))
	}
	if u, err := uri.ParseMIMI(r); err != nil || u.Kind != uri.Room {
		return usageError{fmt.Sprintf("--room: %q is not a MIMI room URI", r)}
	}

	m := content.NewText(sender, r, text, content.NewSalt())
	if *markdown {
		m.Body.ContentType = content.TypeMarkdown
	}
	data, err := m.Encode()
	if err != nil {
		return err
	}
	id := content.ComputeID(sender, r, data, m.Salt)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, err := openBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	// Watch before publishing, so that no report can slip past.
	var reports <-chan *bus.Delivery
	if *timeout > 0 {
		if reports, err = b.WatchFromPhone(ctx, bus.SubjectFromPhone(n)); err != nil {
			return err
		}
	}
	env := bus.Envelope{ID: id.String(), Sender: sender, Recipient: n.TelURI(), Room: r, Channel: *channel, Accepted: time.Now()}
	if _, err := b.Publish(ctx, bus.SubjectToPhone(n), env, data); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "id:", id)
	if *timeout <= 0 {
		return nil
	}
	st, err := waitStatus(ctx, reports, id, *timeout)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "status:", st)
	if st != content.Delivered && st != content.Read {
		return exitCode(1)
	}
	return nil
}

// waitStatus waits for a final status report about id.
func waitStatus(ctx context.Context, reports <-chan *bus.Delivery, id content.MessageID, timeout time.Duration) (content.Status, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, fmt.Errorf("no status report for %s within %s", id, timeout)
		case d, ok := <-reports:
			if !ok {
				return 0, errors.New("the bus closed before a status report came")
			}
			m, err := content.Decode(d.Data)
			if err != nil {
				continue
			}
			entries, ok, err := m.StatusReport()
			if !ok || err != nil {
				continue
			}
			for _, e := range entries {
				if e.ID == id {
					return e.Status, nil
				}
			}
		}
	}
}
