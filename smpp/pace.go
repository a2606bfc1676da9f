package smpp

import (
	"math"
	"time"
)

// Pacing of submit_sm on one bind. The writer is the one place a submit_sm
// leaves, so it is where the pace is kept: every submit_sm, whether it was
// just queued or had been waiting for a window slot, waits there for the
// end of a throttle pause and for the rate.
//
// An SMSC that answers ESME_RTHROTTLED or ESME_RMSGQFUL to a submit_sm
// sent at the current pace pauses the bind (ThrottleBackoff, doubling
// while the SMSC keeps refusing, up to 32 times it) and halves the rate:
// the configured rate, or, with none configured, the rate the bind was
// sending at. After a quiet period (throttleQuiet times ThrottleBackoff)
// without a throttled answer the rate rises by a quarter, period after
// period, back to the configured rate (or, with none, to no limit once it
// is twice what the SMSC refused).

const (
	// throttleQuiet: a quiet period is this many ThrottleBackoff (5 s by
	// default).
	throttleQuiet = 25
	// throttleMaxPause: the pause stops doubling at this many
	// ThrottleBackoff.
	throttleMaxPause = 32
	// minPace is the lowest rate a throttled bind is slowed to, per
	// second (or the configured rate, if lower).
	minPace = 1.0
)

// bucket is a token bucket; rate 0 means no limit.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64, now time.Time) bucket {
	return bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// take takes a token if there is one, else says how long until there is.
func (b *bucket) take(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return max(time.Duration((1-b.tokens)/b.rate*float64(time.Second)), time.Millisecond)
}

// meter counts submit_sm written over the last second, in tenths.
type meter struct {
	slot   int64 // the current tenth of a second since the epoch
	counts [10]int
	first  time.Time
}

func (m *meter) advance(now time.Time) {
	slot := now.UnixNano() / int64(100*time.Millisecond)
	if slot-m.slot >= int64(len(m.counts)) {
		m.counts = [10]int{}
	} else {
		for i := m.slot + 1; i <= slot; i++ {
			m.counts[i%int64(len(m.counts))] = 0
		}
	}
	m.slot = slot
}

func (m *meter) add(now time.Time) {
	if m.first.IsZero() {
		m.first = now
	}
	m.advance(now)
	m.counts[m.slot%int64(len(m.counts))]++
}

// rate is submit_sm per second over the last second (or since the first,
// if that is more recent, counting at least a tenth).
func (m *meter) rate(now time.Time) float64 {
	if m.first.IsZero() {
		return 0
	}
	m.advance(now)
	n := 0
	for _, c := range m.counts {
		n += c
	}
	span := min(max(now.Sub(m.first), 100*time.Millisecond), time.Second)
	return float64(n) / span.Seconds()
}

// pacer is a bind's submit_sm pace. Its fields are the session's, under
// throttleMu.
type pacer struct {
	bucket       bucket
	configured   float64       // the configured rate (0: none)
	until        time.Time     // no submit_sm before this
	pausedAt     time.Time     // when the last pause began
	step         time.Duration // the next pause
	lastThrottle time.Time
	raisedAt     time.Time
	peak         float64 // the rate the SMSC last refused
	sent         meter
}

func (s *session) initPace(now time.Time) {
	c := s.link.cfg
	p := &s.pace
	p.configured = c.Rate
	p.step = c.ThrottleBackoff
	if c.Rate > 0 {
		p.bucket = newBucket(c.Rate, math.Max(1, math.Floor(c.Rate)), now)
	}
}

// submitDelay says whether a submit_sm may be written now: 0, and the
// submit_sm is counted as written; or how long to wait before asking
// again. Only the writer calls it.
func (s *session) submitDelay(now time.Time) time.Duration {
	s.throttleMu.Lock()
	defer s.throttleMu.Unlock()
	p := &s.pace
	if now.Before(p.until) {
		return p.until.Sub(now)
	}
	s.raisePaceLocked(now)
	if d := p.bucket.take(now); d > 0 {
		return d
	}
	p.sent.add(now)
	return 0
}

// raisePaceLocked raises a throttled bind's rate by a quarter for every
// quiet period without a throttled answer since the last throttle or
// raise.
func (s *session) raisePaceLocked(now time.Time) {
	p := &s.pace
	base := s.link.cfg.ThrottleBackoff
	if p.bucket.rate <= 0 || p.bucket.rate == p.configured || p.lastThrottle.IsZero() {
		return
	}
	quiet := throttleQuiet * base
	periods := min(now.Sub(p.lastThrottle), now.Sub(p.raisedAt)) / quiet
	if periods < 1 {
		return
	}
	next := p.bucket.rate * math.Pow(1.25, float64(min(periods, 64)))
	switch {
	case p.configured > 0 && next >= p.configured:
		p.bucket.rate, p.bucket.burst = p.configured, math.Max(1, math.Floor(p.configured))
		s.log.Info("SMSC quiet, submissions back at the configured rate", "rate", p.configured)
	case p.configured == 0 && next >= 2*p.peak:
		p.bucket = bucket{}
		s.log.Info("SMSC quiet, submissions no longer paced", "refused_at", math.Round(p.peak))
	default:
		p.bucket.rate, p.bucket.burst = next, math.Max(1, math.Floor(next/10))
		s.log.Debug("SMSC quiet, raising the submit rate", "rate", math.Round(next*10)/10)
	}
	p.raisedAt = now
}

// throttled acts on ESME_RTHROTTLED or ESME_RMSGQFUL to a submit_sm
// written at sentAt: unless it was written before the last pause began
// (at the pace the SMSC already refused), submissions on this bind pause,
// the pause doubling while the SMSC keeps refusing, and the rate halves.
func (s *session) throttled(sentAt time.Time) {
	s.throttleMu.Lock()
	defer s.throttleMu.Unlock()
	p := &s.pace
	now := time.Now()
	if sentAt.Before(p.pausedAt) || now.Before(p.until) {
		return
	}
	base := s.link.cfg.ThrottleBackoff
	if !p.lastThrottle.IsZero() && now.Sub(p.lastThrottle) >= throttleQuiet*base {
		p.step = base // quiet since the last one: start over
	}
	pause := p.step
	p.until, p.pausedAt, p.lastThrottle = now.Add(pause), now, now
	if p.step < throttleMaxPause*base {
		p.step = min(2*p.step, throttleMaxPause*base)
	}
	rate := p.sent.rate(now)
	if p.bucket.rate > 0 && (rate == 0 || p.bucket.rate < rate) {
		rate = p.bucket.rate
	}
	p.peak = rate
	floor := minPace
	if p.configured > 0 {
		floor = math.Min(floor, p.configured)
	}
	next := math.Max(rate/2, floor)
	// Resume with an empty bucket: nothing saved up during the pause
	// goes out in one burst.
	p.bucket = bucket{rate: next, burst: math.Max(1, math.Floor(next/10)), tokens: 1, last: p.until}
	p.raisedAt = now
	s.log.Info("SMSC throttles, pausing submissions", "pause", pause, "rate", math.Round(next*10)/10)
	s.link.m.throttled.WithLabelValues(s.link.cfg.Name).Inc()
}
