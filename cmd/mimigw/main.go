// Command mimigw runs the gateway and the tools that go with it:
//
//	mimigw serve --dev | --config FILE   run the gateway
//	mimigw send --to NUMBER TEXT         put a MIMI message for a phone on the bus
//	mimigw numbers list|assign|release|lend|unlend
//	mimigw sim smsc                      run an SMSC simulator
//	mimigw version
package main

import (
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
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "mimigw:", err)
		os.Exit(2)
	default:
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "mimigw:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with that code and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

const usage = `usage: mimigw <command> [flags]

commands:
  serve     run the gateway (--dev: everything embedded on loopback; --config FILE)
  send      put a MIMI text for a phone number on the bus and wait for its status report
  numbers   list, assign and release virtual and lent numbers
  sim       run a simulator (sim smsc)
  version   print the version

Run 'mimigw <command> -h' for the flags of a command.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "send":
		return send(args[1:], stdout, stderr)
	case "numbers":
		return numbers(args[1:], stdout, stderr)
	case "sim":
		return sim(args[1:], stderr)
	case "provider":
		return providerTool(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// parseFlags parses a subcommand's flags; a bad flag is a usage error.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
