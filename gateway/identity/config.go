package identity

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mimigw/mimigw/mimi/uri"
)

// Config says which numbers the operator lends and whom it trusts.
type Config struct {
	// Domain is the gateway's MIMI provider domain: phone users are
	// mimi://<domain>/u/+<digits>.
	Domain string `yaml:"domain"`
	// Pools are the E.164 ranges lent to MIMI users without a number, as
	// "+15559990000-+15559990999" or single numbers.
	Pools []string `yaml:"pools"`
	// TrustedProviders are MIMI provider domains whose users' own tel
	// identities (mimi://<domain>/u/+<digits>, or tel: senders for the
	// gateway's own domain) may be shown to phone users.
	TrustedProviders []string `yaml:"trusted_providers"`
	// AlphanumericSenders maps MIMI sender URIs to an alphanumeric sender
	// id for one-way traffic (SMS only; replies cannot reach them).
	AlphanumericSenders map[string]string `yaml:"alphanumeric_senders"`
}

// Range is an inclusive range of E.164 numbers of one length.
type Range struct {
	First, Last uint64
	Digits      int
}

// Size is how many numbers the range holds.
func (r Range) Size() uint64 { return r.Last - r.First + 1 }

// Number returns the i-th number of the range.
func (r Range) Number(i uint64) uri.Number {
	return uri.Number(fmt.Sprintf("+%0*d", r.Digits, r.First+i))
}

// Contains reports whether n lies in the range.
func (r Range) Contains(n uri.Number) bool {
	d := n.Digits()
	if len(d) != r.Digits {
		return false
	}
	v, err := strconv.ParseUint(d, 10, 64)
	return err == nil && v >= r.First && v <= r.Last
}

// ParseRange parses "+15559990000-+15559990999" or a single number.
func ParseRange(s string) (Range, error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		b = a
	}
	first, err := uri.ParseNumber(strings.TrimSpace(a), "")
	if err != nil {
		return Range{}, fmt.Errorf("range %q: %w", s, err)
	}
	last, err := uri.ParseNumber(strings.TrimSpace(b), "")
	if err != nil {
		return Range{}, fmt.Errorf("range %q: %w", s, err)
	}
	if len(first) != len(last) {
		return Range{}, fmt.Errorf("range %q: ends differ in length", s)
	}
	f, _ := strconv.ParseUint(first.Digits(), 10, 64)
	l, _ := strconv.ParseUint(last.Digits(), 10, 64)
	if f > l {
		return Range{}, fmt.Errorf("range %q: first is after last", s)
	}
	return Range{First: f, Last: l, Digits: len(first.Digits())}, nil
}

// Validate checks the configuration and names the key at fault.
func (c *Config) Validate() error {
	if _, err := uri.ParseMIMI("mimi://" + c.Domain); err != nil || c.Domain == "" || strings.Contains(c.Domain, "/") {
		return fmt.Errorf("domain: %q is not a provider domain", c.Domain)
	}
	var ranges []Range
	for i, p := range c.Pools {
		r, err := ParseRange(p)
		if err != nil {
			return fmt.Errorf("pools[%d]: %w", i, err)
		}
		for j, o := range ranges {
			if r.Digits == o.Digits && r.First <= o.Last && o.First <= r.Last {
				return fmt.Errorf("pools[%d]: %q overlaps pools[%d]", i, p, j)
			}
		}
		ranges = append(ranges, r)
	}
	for i, d := range c.TrustedProviders {
		if _, err := uri.ParseMIMI("mimi://" + d); err != nil || d == "" || strings.Contains(d, "/") {
			return fmt.Errorf("trusted_providers[%d]: %q is not a provider domain", i, d)
		}
	}
	for sender, alnum := range c.AlphanumericSenders {
		if !validAlphanumeric(alnum) {
			return fmt.Errorf("alphanumeric_senders[%s]: %q must be 1-11 letters, digits or spaces with a letter", sender, alnum)
		}
	}
	return nil
}

// validAlphanumeric checks a GSM alphanumeric originator (TS 23.040: up to
// 11 characters); one that is all digits would pass for a number.
func validAlphanumeric(s string) bool {
	if s == "" || len(s) > 11 {
		return false
	}
	letter := false
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
			letter = true
		case r >= '0' && r <= '9', r == ' ', r == '-', r == '.':
		default:
			return false
		}
	}
	return letter
}
