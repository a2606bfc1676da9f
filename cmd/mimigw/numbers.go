package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/uri"
)

const numbersUsage = `usage: mimigw numbers <action> [flags] [args]

actions:
  list                      every lent and virtual number and whom it serves
  assign NUMBER USER        give the MIMI user a permanent virtual number
  release NUMBER            take a virtual number back
  lend USER CONTACT         lend USER a number toward phone CONTACT (or show the one lent)
  unlend NUMBER CONTACT     end the loan of NUMBER toward CONTACT

'mimigw numbers <action> -h' shows an action's flags.
`

// numbersActions are the actions of `mimigw numbers`: their arguments and
// what they do.
var numbersActions = map[string]struct {
	args []string
	what string
}{
	"list":    {nil, "Lists every lent and virtual number, the contact it is lent toward and the MIMI user it serves."},
	"assign":  {[]string{"NUMBER", "USER"}, "Gives the MIMI user USER (mimi://...) the permanent virtual number NUMBER."},
	"release": {[]string{"NUMBER"}, "Takes the virtual number NUMBER back."},
	"lend":    {[]string{"USER", "CONTACT"}, "Lends the MIMI user USER a number toward the phone CONTACT, or shows the one lent."},
	"unlend":  {[]string{"NUMBER", "CONTACT"}, "Ends the loan of NUMBER toward the phone CONTACT."},
}

func numbers(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, numbersUsage)
		return usageError{"numbers needs an action"}
	}
	action := args[0]
	if isHelp(action) {
		fmt.Fprint(stdout, numbersUsage)
		return nil
	}
	spec, ok := numbersActions[action]
	if !ok {
		fmt.Fprint(stderr, numbersUsage)
		return usageError{fmt.Sprintf("unknown numbers action %q", action)}
	}
	n := len(spec.args)
	fs := flag.NewFlagSet("numbers "+action, flag.ContinueOnError)
	tf := addToolFlags(fs)
	synopsis := strings.TrimSpace("usage: mimigw numbers " + action + " [flags] " + strings.Join(spec.args, " "))
	fs.Usage = commandUsage(fs, synopsis+"\n\n"+spec.what+"\n")
	if err := parseArgs(fs, args[1:], stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() != n {
		fs.Usage()
		return usageError{fmt.Sprintf("numbers %s takes %d arguments (%s), got %d", action, n, strings.Join(spec.args, " "), fs.NArg())}
	}
	cfg, err := tf.load()
	if err != nil {
		return err
	}
	num := func(i int) (uri.Number, error) {
		v, err := uri.ParseNumber(fs.Arg(i), cfg.DefaultRegion)
		if err != nil {
			return "", usageError{err.Error()}
		}
		return v, nil
	}
	user := func(i int) (string, error) {
		u, err := uri.ParseMIMI(fs.Arg(i))
		if err != nil || u.Kind != uri.User {
			return "", usageError{fmt.Sprintf("%q is not a MIMI user URI", fs.Arg(i))}
		}
		return u.String(), nil
	}
	ctx := context.Background()
	b, err := openBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	ids, err := identity.New(b.Identity(), cfg.Gateway.Identity(cfg.Domain))
	if err != nil {
		return err
	}
	switch action {
	case "list":
		list, err := ids.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "KIND\tNUMBER\tCONTACT\tUSER")
		for _, b := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Kind, b.Number, b.Contact, b.User)
		}
		return w.Flush()
	case "assign":
		number, err := num(0)
		if err != nil {
			return err
		}
		u, err := user(1)
		if err != nil {
			return err
		}
		if err := ids.AssignVirtual(ctx, number, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is now %s's virtual number\n", number, u)
	case "release":
		number, err := num(0)
		if err != nil {
			return err
		}
		if err := ids.ReleaseVirtual(ctx, number); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s released\n", number)
	case "lend":
		u, err := user(0)
		if err != nil {
			return err
		}
		contact, err := num(1)
		if err != nil {
			return err
		}
		lent, err := ids.Lend(ctx, u, contact)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s reaches %s as %s\n", contact, u, lent)
	case "unlend":
		number, err := num(0)
		if err != nil {
			return err
		}
		contact, err := num(1)
		if err != nil {
			return err
		}
		if err := ids.ReleaseLent(ctx, number, contact); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s no longer lent toward %s\n", number, contact)
	}
	return nil
}
