package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProviderCert(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	cfg := writeFile(t, `
domain: gw.example.net
data_dir: `+data+`
smpp:
  smscs:
    - name: main
      address: 127.0.0.1:2775
      system_id: gw
      password: secret
`)
	out := filepath.Join(t.TempDir(), "certs")
	var stdout, stderr bytes.Buffer
	args := []string{"cert", "--domain", "desktop.test", "--out", out, "--config", cfg}
	if err := runProviderTool(args, nil, &stdout, &stderr); err != nil {
		t.Fatalf("%v (stderr %q)", err, stderr.String())
	}
	want := []string{
		filepath.Join(out, "desktop.test.pem"),
		filepath.Join(out, "desktop.test-key.pem"),
		filepath.Join(out, "ca.pem"),
	}
	if got := strings.Fields(stdout.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("printed %q, want %q", got, want)
	}
	checkProviderChain(t, want[0], want[1], want[2], "desktop.test")

	// The CA is made once under <data_dir>/provider-ca and reused.
	caBefore, err := os.ReadFile(filepath.Join(data, devCADir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	out2 := t.TempDir()
	stdout.Reset()
	if err := runProviderTool([]string{"cert", "--domain", "other.test", "--out", out2, "--config", cfg}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(out2, "ca.pem"))
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("the second certificate came from another CA")
	}
	checkProviderChain(t, filepath.Join(out2, "other.test.pem"), filepath.Join(out2, "other.test-key.pem"), filepath.Join(out, "ca.pem"), "other.test")
}

// --dev reads data_dir from the environment like the gateway does.
func TestProviderCertDev(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := runProviderTool([]string{"cert", "--dev", "--domain", "desktop.test", "--out", out},
		[]string{"MIMIGW_DATA_DIR=" + data}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, devCADir, "ca-key.pem")); err != nil {
		t.Errorf("CA not under the data directory: %v", err)
	}
	checkProviderChain(t, filepath.Join(out, "desktop.test.pem"), filepath.Join(out, "desktop.test-key.pem"), filepath.Join(out, "ca.pem"), "desktop.test")
}

func TestProviderUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"provider", "-h"}, {"provider", "--help"}, {"provider", "help"}} {
		var stdout, stderr bytes.Buffer
		if err := run(args, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "cert --domain NAME") {
			t.Errorf("%v: %v, stdout %q", args, err, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"provider", "cert", "-h"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout.String(), "-domain") || stderr.Len() != 0 {
		t.Errorf("cert -h: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	data := t.TempDir()
	env := []string{"MIMIGW_DATA_DIR=" + data}
	if err := os.MkdirAll(filepath.Join(data, devCADir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"cert", "--out", data},
		{"cert", "--domain", "x.test"},
		{"cert", "--domain", "x.test", "--out", data, "extra"},
		{"cert", "--domain", "CA", "--out", t.TempDir()},
		{"cert", "--domain", "x.test", "--out", filepath.Join(data, devCADir)},
		{"cert", "--bogus"},
	} {
		var ue usageError
		if err := runProviderTool(args, env, &stdout, &stderr); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	var stdout2, stderr2 bytes.Buffer
	err := runProviderTool([]string{"cert", "--dev", "--domain", "bad/name", "--out", t.TempDir()}, env, &stdout2, &stderr2)
	if err == nil {
		t.Error("a domain with a slash was accepted")
	}
}

// checkProviderChain checks that the key is the certificate's and that
// the CA file verifies the certificate for domain, as a TLS server and as
// a TLS client.
func checkProviderChain(t *testing.T, certFile, keyFile, caFile, domain string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate", caFile)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: domain, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s for %s, usage %v: %v", certFile, domain, usage, err)
		}
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, %v", keyFile, fi.Mode(), err)
	}
}
