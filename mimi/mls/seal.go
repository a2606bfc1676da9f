package mls

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	stateKeySize = chacha20poly1305.KeySize
	sealVersion  = 1
)

// errSealed means a stored record does not open under the configured key:
// a wrong key, a record moved to another key name, or tampering.
var errSealed = errors.New("mls: stored record does not authenticate")

// sealer encrypts records at rest with XChaCha20-Poly1305. Its 192-bit
// nonces are drawn at random for every write: state is rewritten after
// every message, and random 96-bit GCM nonces would approach their safe
// limit over the life of a busy gateway. The bucket and key name are the
// associated data, so a record copied under another name does not open.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != stateKeySize {
		return nil, fmt.Errorf("mls: state key is %d bytes, want %d", len(key), stateKeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("mls: state key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func sealAAD(bucket, key string) []byte {
	aad := make([]byte, 0, len("mimigw-mls")+len(bucket)+len(key)+3)
	aad = append(aad, "mimigw-mls"...)
	aad = append(aad, 0, sealVersion)
	aad = append(aad, bucket...)
	aad = append(aad, 0)
	aad = append(aad, key...)
	return aad
}

// seal returns version || nonce || ciphertext.
func (s *sealer) seal(bucket, key string, plaintext []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("mls: seal %s: %w", key, err)
	}
	return s.aead.Seal(out, out[1:1+ns], plaintext, sealAAD(bucket, key)), nil
}

func (s *sealer) open(bucket, key string, blob []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(blob) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %s: %d bytes is too short", errSealed, key, len(blob))
	}
	if blob[0] != sealVersion {
		return nil, fmt.Errorf("%w: %s: version %d", errSealed, key, blob[0])
	}
	pt, err := s.aead.Open(nil, blob[1:1+ns], blob[1+ns:], sealAAD(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errSealed, key)
	}
	return pt, nil
}
