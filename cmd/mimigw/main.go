// Command mimigw runs the gateway and the tools that go with it.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mimigw:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	return fmt.Errorf("not wired yet")
}
