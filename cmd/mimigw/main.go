// Command mimigw runs the gateway and the tools that go with it:
//
//	mimigw serve --dev | --config FILE   run the gateway
//	mimigw send --to NUMBER TEXT         put a MIMI message for a phone on the bus
//	mimigw numbers list|assign|release|lend|unlend
//	mimigw trace KEY                     a message's trace from the delivery records
//	mimigw sim smsc                      run an SMSC simulator
//	mimigw sim rcs [send]                run RCS phones (or make them send)
//	mimigw provider cert                 a dev CA certificate for a test peer
//	mimigw version
//
// Every command and action takes -h or --help.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(exitStatus(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitStatus is the exit code for what run returned, with its message on
// stderr: 0 for success and for help asked for, 2 for a mistake in how the
// command was called, the code of an exitCode, 1 for anything else.
func exitStatus(err error, stderr io.Writer) int {
	var ue usageError
	var ec exitCode
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "mimigw:", err)
		return 2
	case errors.As(err, &ec):
		return int(ec)
	}
	fmt.Fprintln(stderr, "mimigw:", err)
	return 1
}

// exitCode ends the program with that code and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

const usage = `usage: mimigw <command> [flags] [args]

commands:
  serve --dev | --config FILE       run the gateway
  send --to NUMBER TEXT...          put a MIMI text for a phone number on the bus,
                                    print its ID and wait for its status report
  numbers list                      every lent and virtual number and whom it serves
  numbers assign NUMBER USER        give a MIMI user a permanent virtual number
  numbers release NUMBER            take a virtual number back
  numbers lend USER CONTACT         lend USER a number toward phone CONTACT
  numbers unlend NUMBER CONTACT     end the loan of NUMBER toward CONTACT
  trace KEY                         what the delivery records say about a message
                                    (by MIMI ID, phone number, imdn Message-ID or SMSC message ID)
  sim smsc                          run an SMSC simulator for testers
  sim rcs                           run RCS phones for testers (sim rcs send: make one send)
  provider cert --domain NAME --out DIR
                                    issue a dev CA certificate for a test MIMI provider
  version                           print the version
  help [COMMAND [ACTION]]           this help, or a command's

Every command and action takes -h (or --help) for its flags:
'mimigw send -h', 'mimigw numbers lend -h'.
`

const serveUsage = `usage: mimigw serve --dev | --config FILE

Runs the gateway until SIGINT or SIGTERM. --dev runs everything embedded on
loopback (NATS, SIP, HTTP, an SMSC simulator, an RCS phone simulator as
the IMS core; nothing reaches a real phone);
--config FILE reads the YAML configuration, every key overridable by a
MIMIGW_... environment variable (README.md, configuration). SIGHUP reloads
the log level, the number pools and trusted providers, the SMS pumping
limits, and the MIMI provider's peers, certificates and served numbers;
other changes need a restart.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "send":
		return send(args[1:], stdout, stderr)
	case "numbers":
		return numbers(args[1:], stdout, stderr)
	case "sim":
		return sim(args[1:], stdout, stderr)
	case "provider":
		return providerTool(args[1:], stdout, stderr)
	case "trace":
		return traceTool(args[1:], stdout, stderr)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.Usage = commandUsage(fs, "usage: mimigw version\n\nPrints the version, the Go version and the platform.\n")
		if err := parseArgs(fs, args[1:], stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			fs.Usage()
			return usageError{fmt.Sprintf("version takes no arguments, got %q", fs.Args())}
		}
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			// mimigw help numbers lend: the same as mimigw numbers lend -h.
			return run(append(append([]string{}, args[1:]...), "-h"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// parseArgs parses a command's flags. Asked for help (-h, --help) it
// prints the command's usage on stdout and returns flag.ErrHelp, which
// exits 0; a bad flag prints the problem and the usage on stderr and is a
// usage error.
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return err
	case err != nil:
		_, _ = stderr.Write(out.Bytes())
		return usageError{err.Error()}
	}
	return nil
}

// commandUsage prints text, then the flags of fs.
func commandUsage(fs *flag.FlagSet, text string) func() {
	return func() {
		fmt.Fprint(fs.Output(), text)
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
}
