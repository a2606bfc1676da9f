package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The development CA: one self-signed CA per data directory that issues
// provider certificates for trials and tests. Operators use certificates
// from a CA their peers trust instead.
const (
	devCAFile    = "ca.pem"
	devCAKeyFile = "ca-key.pem"

	devCAValidity   = 10 * 365 * 24 * time.Hour
	devCertValidity = 397 * 24 * time.Hour
)

// EnsureDevCA creates dir/ca.pem and dir/ca-key.pem (0600) the first time
// and checks and keeps them afterwards. A certificate without its key is
// an error (certificates it issued would be orphaned); a key without a
// certificate is the trace of an interrupted first run and is replaced.
func EnsureDevCA(dir string) error {
	certPath, keyPath := filepath.Join(dir, devCAFile), filepath.Join(dir, devCAKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		_, _, err := loadDevCA(dir)
		return err
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "mimigw development provider CA", Organization: []string{"mimigw"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	// The key first, the certificate last: the certificate's presence
	// says the pair is complete.
	if err := writeKey(keyPath, key); err != nil {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return fmt.Errorf("provider dev CA: %w", err)
	}
	return nil
}

// IssueCert issues a certificate for domain from the development CA in
// caDir (made by EnsureDevCA) and writes outDir/<domain>.pem and
// outDir/<domain>-key.pem (0600). The certificate names domain as its one
// DNS SAN and serves as a TLS server and client certificate.
func IssueCert(caDir, domain, outDir string) (certFile, keyFile string, err error) {
	if err := checkDomain(domain); err != nil {
		return "", "", fmt.Errorf("provider dev certificate: domain %q: %w", domain, err)
	}
	domain = strings.ToLower(domain)
	caCert, caKey, err := loadDevCA(caDir)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("provider dev certificate: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(devCertValidity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: domain, Organization: []string{"mimigw"}},
		DNSNames:     []string{domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SubjectKeyId: keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("provider dev certificate: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", "", fmt.Errorf("provider dev certificate: %w", err)
	}
	certFile = filepath.Join(outDir, domain+".pem")
	keyFile = filepath.Join(outDir, domain+"-key.pem")
	if err := writeKey(keyFile, key); err != nil {
		return "", "", fmt.Errorf("provider dev certificate: %w", err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", fmt.Errorf("provider dev certificate: %w", err)
	}
	return certFile, keyFile, nil
}

// loadDevCA reads the CA and checks that its key is the certificate's.
func loadDevCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, devCAFile), filepath.Join(dir, devCAKeyFile)
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("provider dev CA: %w (create it with EnsureDevCA)", err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("provider dev CA: %s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("provider dev CA: %s: %w", certPath, err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("provider dev CA: %w (%s is there without its key)", err, certPath)
	}
	blk, _ = pem.Decode(kb)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, nil, fmt.Errorf("provider dev CA: %s holds no PEM private key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("provider dev CA: %s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, isEq := cert.PublicKey.(equaler); !ok || !isEq || !pub.Equal(signer.Public()) {
		return nil, nil, fmt.Errorf("provider dev CA: %s is not the key of %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("provider dev CA: %s is not a CA certificate", certPath)
	}
	return cert, signer, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM replaces path through a temporary file, so a reader never sees
// half a file and a key is never readable by others, even briefly.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	sum := sha256.Sum256(b)
	return sum[:20]
}
