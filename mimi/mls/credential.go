package mls

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/thomas-vilte/mls-go/credentials"
)

// issuer signs X.509 credentials for the gateway's phone users with the
// operator CA, and decides which X.509 credentials of other members to
// believe.
type issuer struct {
	caCert   *x509.Certificate // nil in basic mode
	caKey    crypto.Signer
	validity time.Duration
	roots    *x509.CertPool // nil: no X.509 credential is trusted

	mu    sync.Mutex
	known map[[32]byte]string // verified end-entity certificate -> identity
}

const maxKnownCerts = 4096

func newIssuer(cfg CredentialConfig) (*issuer, error) {
	is := &issuer{validity: cfg.CertValidity, known: make(map[[32]byte]string)}
	pool := x509.NewCertPool()
	trusted := 0
	if cfg.Type == "x509" {
		cert, err := readCertificate(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("mls: credential.ca_cert_file: %w", err)
		}
		key, err := readSigner(cfg.CAKeyFile)
		if err != nil {
			return nil, fmt.Errorf("mls: credential.ca_key_file: %w", err)
		}
		if !publicKeysEqual(cert.PublicKey, key.Public()) {
			return nil, errors.New("mls: credential.ca_key_file: key does not belong to credential.ca_cert_file")
		}
		is.caCert, is.caKey = cert, key
		pool.AddCert(cert)
		trusted++
	}
	for _, f := range cfg.TrustedCAFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("mls: credential.trusted_ca_files: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("mls: credential.trusted_ca_files: %s holds no PEM certificate", f)
		}
		trusted++
	}
	if trusted > 0 {
		is.roots = pool
	}
	return is, nil
}

// credentialFor returns the credential that proves uri for the holder of pub.
func (is *issuer) credentialFor(uri string, pub ed25519.PublicKey, now time.Time) (*credentials.Credential, error) {
	if is.caCert == nil {
		return credentials.NewBasicCredential([]byte(uri)), nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("mls: certificate for %s: %w", uri, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("mls: certificate for %s: %w", uri, err)
	}
	notAfter := now.Add(is.validity)
	if notAfter.After(is.caCert.NotAfter) {
		notAfter = is.caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: uri},
		URIs:         []*url.URL{u},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.caCert, pub, is.caKey)
	if err != nil {
		return nil, fmt.Errorf("mls: certificate for %s: %w", uri, err)
	}
	return credentials.NewX509Credential([][]byte{der}), nil
}

// identity returns the MIMI URI a member's credential vouches for. A basic
// credential's identity is taken as written (the member's provider vouches
// for it); an X.509 credential must chain to a trusted CA, carry a mimi URI
// in its subjectAltName, and hold the member's signature key.
func (is *issuer) identity(cred *credentials.Credential, sigKey []byte, now time.Time) (string, error) {
	if cred == nil {
		return "", fmt.Errorf("%w: no credential", ErrUntrustedCredential)
	}
	switch cred.CredentialType {
	case credentials.BasicCredential:
		if len(cred.Identity) == 0 || !utf8.Valid(cred.Identity) {
			return "", fmt.Errorf("%w: basic identity is empty or not UTF-8", ErrUntrustedCredential)
		}
		return string(cred.Identity), nil
	case credentials.X509Credential:
		return is.x509Identity(cred, sigKey, now)
	default:
		return "", fmt.Errorf("%w: credential type 0x%04x", ErrUntrustedCredential, uint16(cred.CredentialType))
	}
}

func (is *issuer) x509Identity(cred *credentials.Credential, sigKey []byte, now time.Time) (string, error) {
	if len(cred.Certificates) == 0 {
		return "", fmt.Errorf("%w: no certificate", ErrUntrustedCredential)
	}
	if is.roots == nil {
		return "", fmt.Errorf("%w: no X.509 trust roots configured", ErrUntrustedCredential)
	}
	h := sha256.New()
	for _, c := range cred.Certificates {
		h.Write(appendVector(nil, c))
	}
	h.Write(sigKey)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	is.mu.Lock()
	id, ok := is.known[sum]
	is.mu.Unlock()
	if ok {
		return id, nil
	}
	if err := cred.ValidateWithSignatureKey(sigKey); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUntrustedCredential, err)
	}
	leaf, err := x509.ParseCertificate(cred.Certificates[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUntrustedCredential, err)
	}
	inter := x509.NewCertPool()
	for _, der := range cred.Certificates[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return "", fmt.Errorf("%w: intermediate: %v", ErrUntrustedCredential, err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: is.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUntrustedCredential, err)
	}
	for _, u := range leaf.URIs {
		if u.Scheme == "mimi" {
			id = u.String()
			break
		}
	}
	if id == "" {
		return "", fmt.Errorf("%w: certificate names no mimi URI", ErrUntrustedCredential)
	}
	is.mu.Lock()
	if len(is.known) >= maxKnownCerts {
		clear(is.known)
	}
	is.known[sum] = id
	is.mu.Unlock()
	return id, nil
}

func readCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !c.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", path)
	}
	return c, nil
}

func readSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM key", path)
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: unsupported PEM block %q", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key cannot sign", path)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ab, err1 := x509.MarshalPKIXPublicKey(a)
	bb, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
