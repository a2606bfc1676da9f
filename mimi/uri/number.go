package uri

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// ErrBadNumber is returned for input that is not a phone number.
var ErrBadNumber = errors.New("not a phone number")

// Number is a phone number in E.164 form with its leading plus, such as
// "+15551230002". The zero value is no number.
type Number string

// maxNumberInput bounds what is handed to the phone number library; no
// written form of a phone number comes near it.
const maxNumberInput = 256

// ParseNumber normalises a phone number to E.164. It accepts "tel:+..." URIs
// (with parameters), "sip:" and "sips:" URIs whose user part is a number
// (user=phone or a leading plus), bare international numbers with visual
// separators, and national numbers, which are read in defaultRegion (an ISO
// 3166 code such as "US"; empty means national numbers are rejected).
// Numbers of impossible length for their country are rejected.
func ParseNumber(s, defaultRegion string) (Number, error) {
	// Numbers recur on every message (subjects, bindings, addresses) and
	// the phone number library takes microseconds a parse: results are
	// remembered.
	// The key is looked up from a buffer on the stack and made a string
	// only to be remembered.
	var buf [128]byte
	key := append(append(append(buf[:0], defaultRegion...), 0), s...)
	if r, ok := parsed.get(key); ok {
		return r.n, r.err
	}
	n, err := parseNumber(s, defaultRegion)
	parsed.put(string(key), parseResult{n, err})
	return n, err
}

func parseNumber(s, defaultRegion string) (Number, error) {
	if len(s) > maxNumberInput {
		return "", fmt.Errorf("%w: %d bytes", ErrBadNumber, len(s))
	}
	in := strings.TrimSpace(s)
	in = strings.TrimPrefix(strings.TrimSuffix(in, ">"), "<")
	lower := strings.ToLower(in)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		in = in[len("tel:"):]
		if i := strings.IndexByte(in, ';'); i >= 0 {
			in = in[:i]
		}
	case strings.HasPrefix(lower, "sip:"), strings.HasPrefix(lower, "sips:"):
		user, ok := sipUser(in)
		if !ok {
			return "", fmt.Errorf("%w: %q has no number in its user part", ErrBadNumber, s)
		}
		in = user
	}
	if !isDialString(in) {
		return "", fmt.Errorf("%w: %q", ErrBadNumber, s)
	}
	region := strings.ToUpper(defaultRegion)
	if !strings.HasPrefix(in, "+") && region == "" {
		return "", fmt.Errorf("%w: %q is national and no default region is set", ErrBadNumber, s)
	}
	pn, err := phonenumbers.Parse(in, region)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadNumber, s, err)
	}
	if !phonenumbers.IsPossibleNumber(pn) {
		return "", fmt.Errorf("%w: %q has an impossible length", ErrBadNumber, s)
	}
	return Number(phonenumbers.Format(pn, phonenumbers.E164)), nil
}

// NumberFromDigits makes a Number from E.164 digits without the plus, as
// they stand in bus subjects.
func NumberFromDigits(digits string) (Number, error) {
	if digits == "" || strings.HasPrefix(digits, "+") {
		return "", fmt.Errorf("%w: digits %q", ErrBadNumber, digits)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", fmt.Errorf("%w: digits %q", ErrBadNumber, digits)
		}
	}
	return ParseNumber("+"+digits, "")
}

// Digits returns the number without its plus: "15551230002".
func (n Number) Digits() string { return strings.TrimPrefix(string(n), "+") }

// TelURI returns the number as a tel URI: "tel:+15551230002".
func (n Number) TelURI() string { return "tel:" + string(n) }

// String returns the E.164 form.
func (n Number) String() string { return string(n) }

// sipUser returns the user part of a sip or sips URI if it is a number: the
// URI says user=phone, or the user part starts with a plus.
func sipUser(s string) (string, bool) {
	rest := s[strings.IndexByte(s, ':')+1:]
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return "", false
	}
	user, hostpart := rest[:at], rest[at+1:]
	if i := strings.IndexByte(user, ';'); i >= 0 { // user parameters (RFC 3261 telephone-subscriber)
		user = user[:i]
	}
	phone := strings.Contains(strings.ToLower(hostpart), "user=phone")
	if !phone && !strings.HasPrefix(user, "+") {
		return "", false
	}
	return user, user != ""
}

// isDialString reports whether s holds only what a written phone number may:
// digits, a leading plus, and visual separators.
func isDialString(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ', r == '-', r == '.', r == '(', r == ')', r == '/':
		default:
			return false
		}
	}
	return digits > 0
}

type parseResult struct {
	n   Number
	err error
}

// parsed remembers recent ParseNumber results.
var parsed = newMemo[parseResult](1<<16, 16)

// memo is a bounded map of recent results, in shards so that the message
// workers do not queue on one lock. A full shard forgets everything it
// held: recurring keys come back at once.
type memo[V any] struct {
	shards []memoShard[V]
	per    int
}

type memoShard[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func newMemo[V any](size, shards int) *memo[V] {
	c := &memo[V]{shards: make([]memoShard[V], shards), per: size / shards}
	for i := range c.shards {
		c.shards[i].m = make(map[string]V)
	}
	return c
}

func shardOf[K string | []byte](key K, shards int) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % uint32(shards))
}

// get takes the key as bytes: a lookup does not make it a string.
func (c *memo[V]) get(key []byte) (V, bool) {
	sh := &c.shards[shardOf(key, len(c.shards))]
	sh.mu.Lock()
	v, ok := sh.m[string(key)]
	sh.mu.Unlock()
	return v, ok
}

func (c *memo[V]) put(key string, v V) {
	sh := &c.shards[shardOf(key, len(c.shards))]
	sh.mu.Lock()
	if len(sh.m) >= c.per {
		clear(sh.m)
	}
	sh.m[key] = v
	sh.mu.Unlock()
}
