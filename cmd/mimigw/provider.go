package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mimigw/mimigw/mimi/provider/transport"
)

// devCADir is the development CA's directory under the data directory: it
// issues the gateway's own provider certificate in dev mode and those of
// the peers a tester runs against it.
const devCADir = "provider-ca"

const providerUsage = `usage: mimigw provider <action> [flags]

actions:
  cert --domain NAME --out DIR [--config FILE | --dev]
      issue a certificate for the MIMI provider NAME from the development
      CA in <data_dir>/` + devCADir + ` (created on first use), for a peer
      to test against this gateway. Writes DIR/NAME.pem, DIR/NAME-key.pem
      and DIR/ca.pem, and prints their paths, one a line.
`

// providerTool runs `mimigw provider`.
func providerTool(args []string, stdout, stderr io.Writer) error {
	return runProviderTool(args, os.Environ(), stdout, stderr)
}

func runProviderTool(args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, providerUsage)
		return usageError{"provider needs an action"}
	}
	switch args[0] {
	case "cert":
		return providerCert(args[1:], environ, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, providerUsage)
		return nil
	}
	fmt.Fprint(stderr, providerUsage)
	return usageError{fmt.Sprintf("unknown provider action %q", args[0])}
}

func providerCert(args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("provider cert", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), providerUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	domain := fs.String("domain", "", "the provider `domain` the certificate names")
	out := fs.String("out", "", "`directory` to write the certificate, its key and the CA certificate to")
	config := fs.String("config", lookupEnv(environ, "MIMIGW_CONFIG"), "the gateway's configuration `file` (for its data_dir)")
	dev := fs.Bool("dev", false, "use the settings of `serve --dev` (the default without --config)")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usageError{fmt.Sprintf("provider cert takes no arguments, got %q", fs.Args())}
	case *domain == "":
		return usageError{"provider cert needs --domain"}
	case *out == "":
		return usageError{"provider cert needs --out"}
	case strings.EqualFold(*domain, "ca"):
		// NAME.pem would be the CA certificate's copy.
		return usageError{`--domain "ca" would overwrite the copy of the CA certificate`}
	}
	cfg, err := loadConfig(*config, *dev || *config == "", environ)
	if err != nil {
		return err
	}
	caDir := filepath.Join(cfg.DataDir, devCADir)
	if same, err := sameDir(caDir, *out); err != nil {
		return err
	} else if same {
		return usageError{fmt.Sprintf("--out %s is the CA's own directory; name another", *out)}
	}
	if err := transport.EnsureDevCA(caDir); err != nil {
		return err
	}
	cert, key, err := transport.IssueCert(caDir, *domain, *out)
	if err != nil {
		return err
	}
	ca := filepath.Join(*out, "ca.pem")
	if err := copyFile(filepath.Join(caDir, "ca.pem"), ca); err != nil {
		return fmt.Errorf("provider cert: %w", err)
	}
	fmt.Fprintln(stdout, cert)
	fmt.Fprintln(stdout, key)
	fmt.Fprintln(stdout, ca)
	return nil
}

func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name {
			return kv[len(name)+1:]
		}
	}
	return ""
}

// sameDir reports whether a and b are one directory (b need not exist).
func sameDir(a, b string) (bool, error) {
	fb, err := os.Stat(b)
	if os.IsNotExist(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	fa, err := os.Stat(a)
	if os.IsNotExist(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// copyFile copies a certificate (nothing secret) to dst.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
