package smpp

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/time/rate"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Reasons for refusing a message, as they appear in errors and in the
// smpp_refused_total metric.
const (
	refuseSegments    = "segments"
	refuseCountry     = "destination_country"
	refuseSenderRate  = "sender_rate"
	refuseDestRate    = "destination_rate"
	refuseText        = "text"
	refuseAddress     = "address"
	refuseAlphanumSMS = "alphanumeric_sender"
)

// destination is one entry of the allow-list: a calling code or a region.
type destination struct {
	code   int
	region string
}

func parseDestination(s string) (destination, error) {
	if code, ok := strings.CutPrefix(s, "+"); ok {
		n, err := strconv.Atoi(code)
		if err != nil || n <= 0 || phonenumbers.GetRegionCodeForCountryCode(n) == phonenumbers.UNKNOWN_REGION {
			return destination{}, fmt.Errorf("%q is not a country calling code", s)
		}
		return destination{code: n}, nil
	}
	if !validRegion(s) {
		return destination{}, fmt.Errorf("%q is neither a calling code (+44) nor an ISO 3166 region (GB)", s)
	}
	return destination{region: strings.ToUpper(s)}, nil
}

// protection holds the pumping guards shared by all SMSCs.
type protection struct {
	maxSegments int
	allowed     []destination
	senders     *keyedLimiter
	dests       *keyedLimiter
}

func newProtection(c ProtectionConfig) *protection {
	p := &protection{maxSegments: c.MaxSegments}
	for _, d := range c.AllowedDestinations {
		dst, _ := parseDestination(d) // validated
		p.allowed = append(p.allowed, dst)
	}
	p.senders = newKeyedLimiter(c.SenderRate)
	p.dests = newKeyedLimiter(c.DestinationRate)
	return p
}

// refusal is a message the gateway will never send as it is.
type refusal struct {
	reason string
	detail string
}

func (r *refusal) Error() string { return fmt.Sprintf("smpp: refused (%s): %s", r.reason, r.detail) }
func (r *refusal) Unwrap() error { return gateway.ErrRejected }

func refuse(reason, format string, args ...any) error {
	return &refusal{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// checkDestination applies the country allow-list.
func (p *protection) checkDestination(to uri.Number) error {
	if len(p.allowed) == 0 {
		return nil
	}
	num, err := phonenumbers.Parse(string(to), "")
	if err != nil {
		return refuse(refuseAddress, "destination %s: %v", to, err)
	}
	code := int(num.GetCountryCode())
	region := phonenumbers.GetRegionCodeForNumber(num)
	for _, a := range p.allowed {
		if (a.code != 0 && a.code == code) || (a.region != "" && a.region == region) {
			return nil
		}
	}
	return refuse(refuseCountry, "destination %s (+%d %s) is not in allowed_destinations", to, code, region)
}

// checkRates takes one message from the sender's and the destination's
// budget.
func (p *protection) checkRates(from string, to uri.Number, now time.Time) error {
	if !p.senders.allow(from, now) {
		return refuse(refuseSenderRate, "sender %s is over its rate", from)
	}
	if !p.dests.allow(string(to), now) {
		return refuse(refuseDestRate, "destination %s is over its rate", to)
	}
	return nil
}

func (p *protection) checkSegments(n int) error {
	if p.maxSegments > 0 && n > p.maxSegments {
		return refuse(refuseSegments, "%d segments, at most %d", n, p.maxSegments)
	}
	return nil
}

// keyedLimiter is a token bucket per key. Its memory stays bounded by
// dropping buckets that are full again: a full bucket is what a new key
// gets, so forgetting one changes nothing.
type keyedLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// sweepEvery bounds how often the bucket map is walked.
const sweepEvery = 10 * time.Second

func newKeyedLimiter(c RateConfig) *keyedLimiter {
	if c.Count <= 0 {
		return nil
	}
	return &keyedLimiter{
		limit:   rate.Limit(float64(c.Count) / c.Per.Seconds()),
		burst:   c.Count,
		buckets: map[string]*rate.Limiter{},
	}
}

func (k *keyedLimiter) allow(key string, now time.Time) bool {
	if k == nil {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) >= sweepEvery {
		k.lastSweep = now
		for key, l := range k.buckets {
			if l.TokensAt(now) >= float64(k.burst) {
				delete(k.buckets, key)
			}
		}
	}
	l, ok := k.buckets[key]
	if !ok {
		l = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = l
	}
	return l.AllowN(now, 1)
}

func (k *keyedLimiter) size() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
