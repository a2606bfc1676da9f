package gateway

import (
	"fmt"
	"time"
)

// Config tunes routing and delivery.
type Config struct {
	// Channel is how messages on mimi.to.tel go when their Mimi-Channel
	// header does not say: auto (RCS where the number can take it, else
	// SMS), rcs or sms.
	Channel Channel `yaml:"channel"`
	// Workers is how many messages for phones are in flight at once; SMS
	// throughput needs at least the sum of the SMPP windows.
	Workers int `yaml:"workers"`
	// TimerWorkers is how many delivery timers are handled at once.
	TimerWorkers int `yaml:"timer_workers"`
	// DeliveryTimeout is how long an RCS message accepted by the network
	// may go without an IMDN delivered before it is revoked and sent by
	// SMS (where the recipient supports revocation). 0 disables.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// CapabilityTTL and NegativeTTL are how long an OPTIONS answer is
	// trusted: that a number is an RCS user, or that it is not.
	CapabilityTTL time.Duration `yaml:"capability_ttl"`
	NegativeTTL   time.Duration `yaml:"negative_ttl"`
	// ReadReceipts asks RCS recipients for display notifications, for
	// rooms whose policy allows read receipts.
	ReadReceipts bool `yaml:"read_receipts"`
	// RevocationTimeout is how long a revocation may go without a result
	// before Unrevocable decides.
	RevocationTimeout time.Duration `yaml:"revocation_timeout"`
	// Unrevocable decides what becomes of an RCS message past
	// DeliveryTimeout that cannot be revoked (the phone does not support
	// revocation, the request failed, or no result came within
	// RevocationTimeout): UnrevocableSMS sends it by SMS as well (the
	// phone may then have it twice), UnrevocableExpire reports it expired
	// to its sender, UnrevocableWait waits for an IMDN that may never come.
	Unrevocable string `yaml:"unrevocable"`
	// FallbackAttempts bounds the tries of an SMS sent after a revocation.
	FallbackAttempts int `yaml:"fallback_attempts"`
	// ReassemblyTimeout is how long the segments of a concatenated SMS wait
	// for the rest; then what arrived goes on, marked incomplete.
	ReassemblyTimeout time.Duration `yaml:"reassembly_timeout"`
	// Limits are the pumping limits shared by all instances (limits.go);
	// SIGHUP reloads them.
	Limits Limits `yaml:"limits"`
}

// Policies for RCS messages that cannot be revoked (Config.Unrevocable).
const (
	UnrevocableSMS    = "sms"
	UnrevocableExpire = "expire"
	UnrevocableWait   = "wait"
)

// DefaultConfig returns the configuration a gateway runs with when nothing
// is said.
func DefaultConfig() Config {
	return Config{
		Channel:           ChannelAuto,
		Workers:           256,
		TimerWorkers:      16,
		DeliveryTimeout:   2 * time.Minute,
		CapabilityTTL:     24 * time.Hour,
		NegativeTTL:       6 * time.Hour,
		ReadReceipts:      true,
		FallbackAttempts:  8,
		RevocationTimeout: time.Minute,
		Unrevocable:       UnrevocableSMS,
		ReassemblyTimeout: 2 * time.Minute,
		Limits:            DefaultLimits(),
	}
}

// Validate checks the configuration and names the key at fault.
func (c *Config) Validate() error {
	switch c.Channel {
	case ChannelAuto, ChannelRCS, ChannelSMS:
	default:
		return fmt.Errorf("channel: %q is not auto, rcs or sms", c.Channel)
	}
	if c.Workers < 1 || c.Workers > 100000 {
		return fmt.Errorf("workers: %d is not between 1 and 100000", c.Workers)
	}
	if c.TimerWorkers < 1 || c.TimerWorkers > 10000 {
		return fmt.Errorf("timer_workers: %d is not between 1 and 10000", c.TimerWorkers)
	}
	if c.DeliveryTimeout < 0 {
		return fmt.Errorf("delivery_timeout: %s is negative", c.DeliveryTimeout)
	}
	if c.CapabilityTTL <= 0 {
		return fmt.Errorf("capability_ttl: %s must be positive", c.CapabilityTTL)
	}
	if c.NegativeTTL <= 0 {
		return fmt.Errorf("negative_ttl: %s must be positive", c.NegativeTTL)
	}
	if c.ReassemblyTimeout <= 0 {
		return fmt.Errorf("reassembly_timeout: %s must be positive", c.ReassemblyTimeout)
	}
	if c.RevocationTimeout <= 0 {
		return fmt.Errorf("revocation_timeout: %s must be positive", c.RevocationTimeout)
	}
	switch c.Unrevocable {
	case UnrevocableSMS, UnrevocableExpire, UnrevocableWait:
	default:
		return fmt.Errorf("unrevocable: %q is not sms, expire or wait", c.Unrevocable)
	}
	if c.FallbackAttempts < 1 {
		return fmt.Errorf("fallback_attempts: %d must be at least 1", c.FallbackAttempts)
	}
	return c.Limits.Validate()
}
