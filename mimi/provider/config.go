package provider

import (
	"fmt"
	"strings"
	"time"

	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Config is the MIMI provider side of the gateway: its HTTPS listener and
// peers (transport.Config) and which phone users it offers to other
// providers.
type Config struct {
	transport.Config `yaml:",inline"`
	// Served lists the E.164 prefixes of the phone users this gateway
	// serves ("+1555123"); "+" serves every number. A number outside them
	// is unknown to other providers (userUnknown, notFound).
	Served []string `yaml:"served"`
	// AcceptRoomsFrom lists the provider domains whose rooms phone users
	// join; empty means every configured peer.
	AcceptRoomsFrom []string `yaml:"accept_rooms_from"`
	// Bucket holds the rooms the gateway takes part in.
	Bucket string `yaml:"bucket"`
	// Consumer is the durable consumer on the from-phone stream that
	// carries phone users' messages to the rooms' hubs (the outbox).
	Consumer string `yaml:"consumer"`
	// Workers bounds the outbox's messages in flight.
	Workers int `yaml:"workers"`
	// OutboxAttempts bounds how often the outbox tries a message while its
	// room's hub or followers cannot take it (with the bus's backoff
	// between tries, its last step repeating): a peer may be away for
	// hours. (Attempts, of the transport, bounds one request's tries.)
	OutboxAttempts int `yaml:"outbox_attempts"`
	// LookupTTL is how long another provider's answer to an
	// identifierQuery for a number is trusted.
	LookupTTL time.Duration `yaml:"lookup_ttl"`
}

// Defaults.
const (
	DefaultBucket         = "mimigw-provider"
	DefaultConsumer       = "mimigw-provider"
	DefaultWorkers        = 64
	DefaultOutboxAttempts = 200
	DefaultLookupTTL      = 10 * time.Minute
)

// WithDefaults fills what is unset.
func (c Config) WithDefaults() Config {
	c.Config = c.Config.WithDefaults()
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.OutboxAttempts == 0 {
		c.OutboxAttempts = DefaultOutboxAttempts
	}
	if c.LookupTTL == 0 {
		c.LookupTTL = DefaultLookupTTL
	}
	return c
}

// Validate checks c after WithDefaults; errors name the key under
// "provider".
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	for i, s := range c.Served {
		if s == "+" {
			continue
		}
		if !strings.HasPrefix(s, "+") || len(s) < 2 || strings.Trim(s[1:], "0123456789") != "" {
			return fmt.Errorf("provider.served[%d]: %q is not a + followed by digits", i, s)
		}
	}
	peers := map[string]bool{}
	for _, p := range c.Peers {
		peers[strings.ToLower(p.Domain)] = true
	}
	for i, d := range c.AcceptRoomsFrom {
		if !peers[strings.ToLower(d)] {
			return fmt.Errorf("provider.accept_rooms_from[%d]: %q is not a configured peer", i, d)
		}
	}
	if c.Workers < 1 {
		return fmt.Errorf("provider.workers: %d, want at least 1", c.Workers)
	}
	if c.OutboxAttempts < 1 {
		return fmt.Errorf("provider.outbox_attempts: %d, want at least 1", c.OutboxAttempts)
	}
	if c.LookupTTL < 0 {
		return fmt.Errorf("provider.lookup_ttl: negative")
	}
	return nil
}

// serves reports whether n is one of this gateway's phone users.
func (c Config) serves(n uri.Number) bool {
	for _, s := range c.Served {
		if strings.HasPrefix(string(n), s) {
			return true
		}
	}
	return false
}

// acceptsRoomsFrom reports whether phone users join rooms hosted by domain.
func (c Config) acceptsRoomsFrom(domain string) bool {
	if len(c.AcceptRoomsFrom) == 0 {
		for _, p := range c.Peers {
			if strings.EqualFold(p.Domain, domain) {
				return true
			}
		}
		return false
	}
	for _, d := range c.AcceptRoomsFrom {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}
