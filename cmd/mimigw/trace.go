package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/admin"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/smpp"
)

const traceUsage = `usage: mimigw trace KEY [--config FILE | --dev] [--nats URL]

Prints what became of a message, step by step, from its delivery records
on the gateway's bus: the same trace as the status page's search. KEY is
a MIMI message ID, a phone number (its latest messages), an imdn
Message-ID the gateway sent, or an SMSC message ID. Exits 1 when nothing
is found, saying what the search covers.
`

// traceTool prints what the delivery records say about a message: the
// same trace as the status page's search.
func traceTool(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 30*time.Second, "how long the search may take")
	tf := addToolFlags(fs)
	fs.Usage = commandUsage(fs, traceUsage)
	// The key may come before the flags, as the usage shows it.
	var key string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		key, args = args[0], args[1:]
	}
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	if key == "" && fs.NArg() > 0 {
		key = fs.Arg(0)
		if err := parseArgs(fs, fs.Args()[1:], stdout, stderr); err != nil {
			return err
		}
	}
	if key == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"trace needs one KEY"}
	}
	cfg, err := tf.load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b, err := openBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	tctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t, err := gateway.TraceBus(tctx, b, key, cfg.DefaultRegion)
	if err != nil {
		return err
	}
	printTrace(stdout, t)
	if len(t.Messages) == 0 {
		return exitCode(1)
	}
	return nil
}

// printTrace writes a trace labelled, one step a line.
func printTrace(w io.Writer, t *gateway.Trace) {
	fmt.Fprintf(w, "trace of %s (looked up as: %s)\n", t.Key, strings.Join(t.As, ", "))
	fmt.Fprintf(w, "%d message(s) found\n", len(t.Messages))
	for _, m := range t.Messages {
		peer := "MIMI sender"
		if m.Direction != "to phone" {
			peer = "written to"
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "message\t%s\n", m.ID)
		fmt.Fprintf(tw, "direction\t%s %s\n", m.Direction, m.Phone)
		fmt.Fprintf(tw, "%s\t%s\n", peer, m.Peer)
		fmt.Fprintf(tw, "channel\t%s\n", m.Channel)
		fmt.Fprintf(tw, "state\t%s\n", m.State)
		fmt.Fprintf(tw, "found by\t%s\n", m.FoundBy)
		tw.Flush()
		fmt.Fprintln(w, "steps (UTC):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range m.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.When(), s.Name, s.Detail)
		}
		tw.Flush()
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
}

// What serve gives the status page about the edges and the search (the
// page's trace is this command's).

// statusTrace is the page's search: the trace over the gateway's bus.
func statusTrace(b *bus.Bus, region string) func(context.Context, string) (*gateway.Trace, error) {
	return func(ctx context.Context, key string) (*gateway.Trace, error) {
		return gateway.TraceBus(ctx, b, key, region)
	}
}

// statusSMSCs are the configured SMSCs, without their credentials.
func statusSMSCs(c *smpp.Config) []admin.SMSC {
	if c == nil {
		return nil
	}
	var out []admin.SMSC
	for _, s := range c.SMSCs {
		out = append(out, admin.SMSC{Name: s.Name, Address: s.Address, TLS: s.TLS.Enabled, BindMode: s.BindMode, Binds: s.Binds, Window: s.Window})
	}
	return out
}

// statusSIP is where the RCS edge listens and whom it trusts.
func statusSIP(c *sip.Config) *admin.SIP {
	if c == nil {
		return nil
	}
	proxy := c.OutboundProxy
	if at := strings.LastIndexByte(proxy, '@'); at >= 0 {
		if colon := strings.IndexByte(proxy, ':'); colon >= 0 && colon < at {
			proxy = proxy[:colon+1] + proxy[at+1:] // no user part, where a password could sit
		}
	}
	s := &admin.SIP{OutboundProxy: proxy, Digest: c.Digest.Enabled}
	for _, l := range []struct{ transport, addr string }{{"udp", c.Listen.UDP}, {"tcp", c.Listen.TCP}, {"tls", c.Listen.TLS}} {
		if l.addr != "" {
			s.Listeners = append(s.Listeners, l.transport+" "+l.addr)
		}
	}
	s.Trusted = append(s.Trusted, c.Trusted.CIDRs...)
	for _, id := range c.Trusted.TLSIdentities {
		s.Trusted = append(s.Trusted, "TLS "+id)
	}
	return s
}
