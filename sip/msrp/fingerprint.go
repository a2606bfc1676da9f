package msrp

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrFingerprint is wrapped when a peer's certificate does not match the
// fingerprint its SDP announced, or when there is no certificate to match.
var ErrFingerprint = errors.New("certificate fingerprint mismatch")

// Fingerprint is an SDP a=fingerprint value (RFC 4572 section 5): a hash
// function and the hash of the peer's DER certificate, written
// "sha-256 AB:CD:...". An msrps peer is trusted by it, not by a CA chain.
type Fingerprint struct {
	// Hash is the hash function's name in lower case: sha-1, sha-224,
	// sha-256, sha-384 or sha-512. md5 and md2, which RFC 4572 lists,
	// are refused.
	Hash string
	Sum  []byte
}

// ParseFingerprint reads "sha-256 AB:CD:..." (the a=fingerprint value
// without "a=fingerprint:"); the hash name and the hex digits are read
// case-insensitively.
func ParseFingerprint(s string) (Fingerprint, error) {
	name, hexs, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return Fingerprint{}, fmt.Errorf("msrp: fingerprint %q: not \"hash AB:CD:...\"", clip(s))
	}
	name = strings.ToLower(name)
	size := hashSize(name)
	if size == 0 {
		return Fingerprint{}, fmt.Errorf("msrp: fingerprint %q: hash %s not taken", clip(s), name)
	}
	hexs = strings.TrimSpace(hexs)
	sum := make([]byte, 0, size)
	for pair := range strings.SplitSeq(hexs, ":") {
		b, err := hex.DecodeString(pair)
		if err != nil || len(b) != 1 {
			return Fingerprint{}, fmt.Errorf("msrp: fingerprint %q: bad hex pair %q", clip(s), clip(pair))
		}
		sum = append(sum, b[0])
	}
	if len(sum) != size {
		return Fingerprint{}, fmt.Errorf("msrp: fingerprint %q: %d bytes, %s has %d", clip(s), len(sum), name, size)
	}
	return Fingerprint{Hash: name, Sum: sum}, nil
}

func hashSize(name string) int {
	switch name {
	case "sha-1":
		return sha1.Size
	case "sha-224":
		return sha256.Size224
	case "sha-256":
		return sha256.Size
	case "sha-384":
		return sha512.Size384
	case "sha-512":
		return sha512.Size
	}
	return 0
}

func hashOf(name string, der []byte) []byte {
	switch name {
	case "sha-1":
		s := sha1.Sum(der)
		return s[:]
	case "sha-224":
		s := sha256.Sum224(der)
		return s[:]
	case "sha-256":
		s := sha256.Sum256(der)
		return s[:]
	case "sha-384":
		s := sha512.Sum384(der)
		return s[:]
	case "sha-512":
		s := sha512.Sum512(der)
		return s[:]
	}
	return nil
}

// FingerprintOf is the fingerprint of cert with the named hash function,
// what this side puts in its own SDP.
func FingerprintOf(cert *x509.Certificate, hash string) (Fingerprint, error) {
	hash = strings.ToLower(hash)
	sum := hashOf(hash, cert.Raw)
	if sum == nil {
		return Fingerprint{}, fmt.Errorf("msrp: fingerprint: hash %s not taken", hash)
	}
	return Fingerprint{Hash: hash, Sum: sum}, nil
}

// String writes the fingerprint as SDP carries it, upper-case hex.
func (f Fingerprint) String() string {
	var b strings.Builder
	b.WriteString(f.Hash)
	b.WriteByte(' ')
	for i, c := range f.Sum {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// Check returns nil when cert hashes to the fingerprint, and an error
// wrapping ErrFingerprint otherwise (nil cert included).
func (f Fingerprint) Check(cert *x509.Certificate) error {
	if cert == nil {
		return fmt.Errorf("msrp: %w: the peer sent no certificate", ErrFingerprint)
	}
	sum := hashOf(f.Hash, cert.Raw)
	if sum == nil || subtle.ConstantTimeCompare(sum, f.Sum) != 1 {
		return fmt.Errorf("msrp: %w: the peer's certificate %q is not %s", ErrFingerprint, clip(cert.Subject.CommonName), f.Hash)
	}
	return nil
}
