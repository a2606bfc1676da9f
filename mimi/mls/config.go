package mls

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/thomas-vilte/mls-go/ciphersuite"
)

// Config is the MLS side of the gateway: which cipher suite its phone users'
// clients speak, how their credentials are issued, how many KeyPackages each
// keeps ready, and where their state lives on the bus.
type Config struct {
	// CipherSuite is the RFC 9420 cipher suite of every client. Only suite 1
	// (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), the one MIMI requires,
	// is accepted: the X.509 path and the interop tests are built for it.
	CipherSuite uint16 `yaml:"cipher_suite"`
	// Credential says how a phone user proves their MIMI URI.
	Credential CredentialConfig `yaml:"credential"`
	// KeyPackages sizes each user's pool of one-time KeyPackages.
	KeyPackages KeyPackageConfig `yaml:"key_packages"`
	// State is where group state and private keys are kept.
	State StateConfig `yaml:"state"`
	// MaxForwardDistance bounds how far ahead of the last message seen from
	// a sender a new message's generation may be. Deriving the keys of a
	// far-future generation costs one HKDF per step, so an unbounded gap
	// lets a member stall the gateway with a single message.
	MaxForwardDistance uint32 `yaml:"max_forward_distance"`
	// PastEpochs is how many epochs before the current one still decrypt
	// application messages that were in flight when a commit arrived.
	PastEpochs int `yaml:"past_epochs"`
	// PaddingBlock pads application ciphertexts to a multiple of this many
	// bytes so their length says less about the message.
	PaddingBlock int `yaml:"padding_block"`
	// CacheGroups bounds how many (user, group) states one instance keeps
	// in memory; the rest are read from the bucket when next used.
	CacheGroups int `yaml:"cache_groups"`
}

// CredentialConfig selects the credential type of the gateway's clients.
type CredentialConfig struct {
	// Type is "basic" (identity = the user's MIMI URI, vouched for by
	// nobody but the provider) or "x509" (a certificate for the URI issued
	// by the operator CA below).
	Type string `yaml:"type"`
	// CACertFile and CAKeyFile hold the operator CA (PEM) that issues the
	// users' certificates when Type is "x509".
	CACertFile string `yaml:"ca_cert_file"`
	CAKeyFile  string `yaml:"ca_key_file"`
	// CertValidity is the lifetime of an issued user certificate.
	CertValidity time.Duration `yaml:"cert_validity"`
	// TrustedCAFiles are extra PEM files with the CAs whose X.509
	// credentials the gateway accepts from other members (the operator CA
	// is always trusted).
	TrustedCAFiles []string `yaml:"trusted_ca_files"`
}

// KeyPackageConfig sizes the per-user KeyPackage pools.
type KeyPackageConfig struct {
	// PoolSize is how many one-time KeyPackages each user keeps ready.
	PoolSize int `yaml:"pool_size"`
	// Lifetime is the validity window written into each KeyPackage.
	// OpenMLS refuses KeyPackages valid for more than about 84 days.
	Lifetime time.Duration `yaml:"lifetime"`
	// MinRemaining retires a pooled KeyPackage once less than this much of
	// its lifetime is left, so one is never handed out just before expiry.
	MinRemaining time.Duration `yaml:"min_remaining"`
	// RefillInterval is how often Run tops every pool up.
	RefillInterval time.Duration `yaml:"refill_interval"`
	// Extensions and Proposals are extension and proposal types (beyond
	// those RFC 9420 makes mandatory) listed in each KeyPackage's
	// capabilities, for rooms whose required_capabilities name them.
	Extensions []uint16 `yaml:"extensions"`
	Proposals  []uint16 `yaml:"proposals"`
}

// StateConfig locates the durable state.
type StateConfig struct {
	// Bucket is the JetStream key-value bucket holding all MLS state.
	Bucket string `yaml:"bucket"`
	// Replicas is the bucket's replication factor (3 in a cluster).
	Replicas int `yaml:"replicas"`
	// KeyFile holds the 32-byte key that seals state at rest: raw, hex or
	// base64. KeyEnv names an environment variable holding it instead.
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
	// LeaseTTL is how long one gateway instance owns a group after its last
	// use; another instance may take the group over only after that.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Instance names this gateway instance in leases. Empty: host name and
	// process id.
	Instance string `yaml:"instance"`
}

// Defaults used where a key is left out.
const (
	DefaultBucket             = "mimigw-mls"
	DefaultPoolSize           = 8
	DefaultKeyPackageLifetime = 30 * 24 * time.Hour
	DefaultMinRemaining       = 24 * time.Hour
	DefaultRefillInterval     = time.Minute
	DefaultLeaseTTL           = 30 * time.Second
	DefaultCertValidity       = 90 * 24 * time.Hour
	DefaultMaxForwardDistance = 1024
	DefaultPastEpochs         = 2
	DefaultPaddingBlock       = 32
	DefaultCacheGroups        = 4096
)

// WithDefaults returns c with every unset key at its default.
func (c Config) WithDefaults() Config {
	if c.CipherSuite == 0 {
		c.CipherSuite = uint16(ciphersuite.MLS128DHKEMX25519)
	}
	if c.Credential.Type == "" {
		c.Credential.Type = "basic"
	}
	if c.Credential.CertValidity == 0 {
		c.Credential.CertValidity = DefaultCertValidity
	}
	if c.KeyPackages.PoolSize == 0 {
		c.KeyPackages.PoolSize = DefaultPoolSize
	}
	if c.KeyPackages.Lifetime == 0 {
		c.KeyPackages.Lifetime = DefaultKeyPackageLifetime
	}
	if c.KeyPackages.MinRemaining == 0 {
		c.KeyPackages.MinRemaining = DefaultMinRemaining
	}
	if c.KeyPackages.RefillInterval == 0 {
		c.KeyPackages.RefillInterval = DefaultRefillInterval
	}
	if c.State.Bucket == "" {
		c.State.Bucket = DefaultBucket
	}
	if c.State.Replicas == 0 {
		c.State.Replicas = 1
	}
	if c.State.LeaseTTL == 0 {
		c.State.LeaseTTL = DefaultLeaseTTL
	}
	if c.MaxForwardDistance == 0 {
		c.MaxForwardDistance = DefaultMaxForwardDistance
	}
	if c.PastEpochs == 0 {
		c.PastEpochs = DefaultPastEpochs
	}
	if c.PaddingBlock == 0 {
		c.PaddingBlock = DefaultPaddingBlock
	}
	if c.CacheGroups == 0 {
		c.CacheGroups = DefaultCacheGroups
	}
	return c
}

// Validate names the first key that is wrong. Call it on WithDefaults().
func (c Config) Validate() error {
	if c.CipherSuite != uint16(ciphersuite.MLS128DHKEMX25519) {
		return fmt.Errorf("mls: cipher_suite: %d is not supported (only 1)", c.CipherSuite)
	}
	switch c.Credential.Type {
	case "basic":
	case "x509":
		if c.Credential.CACertFile == "" {
			return errors.New("mls: credential.ca_cert_file: required when credential.type is x509")
		}
		if c.Credential.CAKeyFile == "" {
			return errors.New("mls: credential.ca_key_file: required when credential.type is x509")
		}
	default:
		return fmt.Errorf("mls: credential.type: %q is neither basic nor x509", c.Credential.Type)
	}
	if c.Credential.CertValidity < time.Hour {
		return fmt.Errorf("mls: credential.cert_validity: %s is shorter than an hour", c.Credential.CertValidity)
	}
	kp := c.KeyPackages
	if kp.PoolSize < 1 || kp.PoolSize > 1000 {
		return fmt.Errorf("mls: key_packages.pool_size: %d is outside 1..1000", kp.PoolSize)
	}
	if kp.Lifetime < time.Hour || kp.Lifetime > 83*24*time.Hour {
		return fmt.Errorf("mls: key_packages.lifetime: %s is outside 1h..83 days", kp.Lifetime)
	}
	if kp.MinRemaining <= 0 || kp.MinRemaining >= kp.Lifetime {
		return fmt.Errorf("mls: key_packages.min_remaining: %s must be positive and below the lifetime", kp.MinRemaining)
	}
	if kp.RefillInterval < time.Second {
		return fmt.Errorf("mls: key_packages.refill_interval: %s is shorter than a second", kp.RefillInterval)
	}
	for _, t := range kp.Extensions {
		if t <= 0x0005 {
			return fmt.Errorf("mls: key_packages.extensions: 0x%04x is a default extension and must not be listed", t)
		}
	}
	for _, t := range kp.Proposals {
		if t <= 0x0007 {
			return fmt.Errorf("mls: key_packages.proposals: 0x%04x is a default proposal and must not be listed", t)
		}
	}
	st := c.State
	if st.Bucket == "" || strings.ContainsAny(st.Bucket, " .*>") {
		return fmt.Errorf("mls: state.bucket: %q is not a valid bucket name", st.Bucket)
	}
	if st.Replicas < 1 || st.Replicas > 5 {
		return fmt.Errorf("mls: state.replicas: %d is outside 1..5", st.Replicas)
	}
	if st.KeyFile == "" && st.KeyEnv == "" {
		return errors.New("mls: state.key_file: one of state.key_file or state.key_env is required")
	}
	if st.KeyFile != "" && st.KeyEnv != "" {
		return errors.New("mls: state.key_env: set only one of state.key_file and state.key_env")
	}
	if st.LeaseTTL < time.Second {
		return fmt.Errorf("mls: state.lease_ttl: %s is shorter than a second", st.LeaseTTL)
	}
	if c.MaxForwardDistance < 16 || c.MaxForwardDistance > 1<<16 {
		return fmt.Errorf("mls: max_forward_distance: %d is outside 16..65536", c.MaxForwardDistance)
	}
	if c.PastEpochs < 0 || c.PastEpochs > 16 {
		return fmt.Errorf("mls: past_epochs: %d is outside 0..16", c.PastEpochs)
	}
	if c.PaddingBlock < 0 || c.PaddingBlock > 4096 {
		return fmt.Errorf("mls: padding_block: %d is outside 0..4096", c.PaddingBlock)
	}
	if c.CacheGroups < 16 {
		return fmt.Errorf("mls: cache_groups: %d is below 16", c.CacheGroups)
	}
	return nil
}

// StateKey reads the at-rest key from the file or environment variable the
// configuration names. The key is 32 bytes, written raw, in hex or in base64.
func (c StateConfig) StateKey() ([]byte, error) {
	var raw []byte
	switch {
	case c.KeyFile != "":
		b, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mls: state.key_file: %w", err)
		}
		raw = b
	case c.KeyEnv != "":
		v, ok := os.LookupEnv(c.KeyEnv)
		if !ok {
			return nil, fmt.Errorf("mls: state.key_env: variable %s is not set", c.KeyEnv)
		}
		raw = []byte(v)
	default:
		return nil, errors.New("mls: state.key_file: no key configured")
	}
	key, err := parseStateKey(raw)
	if err != nil {
		if c.KeyFile != "" {
			return nil, fmt.Errorf("mls: state.key_file %s: %w", c.KeyFile, err)
		}
		return nil, fmt.Errorf("mls: state.key_env %s: %w", c.KeyEnv, err)
	}
	return key, nil
}

func parseStateKey(raw []byte) ([]byte, error) {
	if len(raw) == stateKeySize {
		return append([]byte(nil), raw...), nil
	}
	s := strings.TrimSpace(string(raw))
	if b, err := hex.DecodeString(s); err == nil && len(b) == stateKeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == stateKeySize {
		return b, nil
	}
	return nil, fmt.Errorf("key is not %d bytes (raw, hex or base64)", stateKeySize)
}
