package sip

import (
	"fmt"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/mimi/uri"
)

// parseNumber reads a number in any form the phone network writes it:
// tel:+..., sip:+...@host;user=phone, national with the default region.
// Successful results are remembered: the phone number library's parse
// costs tens of microseconds, about half the edge's work for a MESSAGE,
// and the same senders and recipients recur.
func parseNumber(s, region string) (uri.Number, error) {
	key := region + "\x00" + s
	if n, ok := numbers.get(key); ok {
		return n, nil
	}
	n, err := uri.ParseNumber(s, region)
	if err == nil {
		numbers.put(key, n)
	}
	return n, err
}

// numberCache maps written numbers to E.164. It holds at most
// maxNumberCache entries and is emptied when full, which keeps it bounded
// without bookkeeping per entry.
type numberCache struct {
	mu sync.RWMutex
	m  map[string]uri.Number
}

const maxNumberCache = 1 << 16

var numbers = &numberCache{m: map[string]uri.Number{}}

func (c *numberCache) get(k string) (uri.Number, bool) {
	c.mu.RLock()
	n, ok := c.m[k]
	c.mu.RUnlock()
	return n, ok
}

func (c *numberCache) put(k string, n uri.Number) {
	if len(k) > 128 {
		return
	}
	c.mu.Lock()
	if len(c.m) >= maxNumberCache {
		c.m = make(map[string]uri.Number, maxNumberCache/4)
	}
	c.m[k] = n
	c.mu.Unlock()
}

// uriNumber reads the number a SIP URI names.
func uriNumber(u *sip.Uri, region string) (uri.Number, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URI", uri.ErrBadNumber)
	}
	switch strings.ToLower(u.Scheme) {
	case "tel":
		return parseNumber("tel:"+u.Raw(), region)
	case "sip", "sips":
		user := u.User
		if user == "" {
			return "", fmt.Errorf("%w: %q has no user part", uri.ErrBadNumber, u.String())
		}
		phone := false
		if v, ok := u.UriParams.Get("user"); ok && strings.EqualFold(v, "phone") {
			phone = true
		}
		if !phone && !strings.HasPrefix(user, "+") {
			return "", fmt.Errorf("%w: %q is not a phone number URI", uri.ErrBadNumber, u.String())
		}
		return parseNumber(user, region)
	}
	return "", fmt.Errorf("%w: scheme %q", uri.ErrBadNumber, u.Scheme)
}

// numberURI writes n as our configured URI form.
func (e *Edge) numberURI(n uri.Number) sip.Uri {
	if e.cfg.URIForm == "tel" {
		var u sip.Uri
		// A tel URI is kept raw by sipgo; parsing our own E.164 cannot fail.
		_ = sip.ParseUri(n.TelURI(), &u)
		return u
	}
	return sip.Uri{
		Scheme:    "sip",
		User:      n.String(),
		Host:      e.cfg.Domain,
		UriParams: sip.HeaderParams{{K: "user", V: "phone"}},
	}
}
