package transport

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestDevCA(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "provider-ca")
	if err := EnsureDevCA(dir); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureDevCA(dir); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(first, second) {
		t.Error("a second EnsureDevCA replaced the CA")
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca-key.pem: %v, %v", fi.Mode(), err)
	}

	out := t.TempDir()
	certFile, keyFile, err := IssueCert(dir, "Desktop.test", out)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(out, "desktop.test.pem") || keyFile != filepath.Join(out, "desktop.test-key.pem") {
		t.Errorf("files %s, %s", certFile, keyFile)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi.Mode(), err)
	}
	leaf := readCert(t, certFile)
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.pem")))
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "desktop.test", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "desktop.test" {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}

	if _, _, err := IssueCert(dir, "../evil", out); err == nil {
		t.Error("a domain with a path was accepted")
	}
	if _, _, err := IssueCert(t.TempDir(), "x.test", out); err == nil {
		t.Error("issued without a CA")
	}
	// A certificate without its key cannot issue, and is not replaced.
	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDevCA(dir); err == nil {
		t.Error("EnsureDevCA accepted a CA without its key")
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
