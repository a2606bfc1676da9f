package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Pumping protection shared by every instance: before a MIMI message goes
// to a phone, it is counted against the limits that apply to it (its
// sender, the sender's provider, the destination country and number), and
// before it goes by SMS its segments are counted against the daily
// budgets of its sender and provider. The counts live on the bus as
// JetStream counters, one per limit, subject and window: an instance
// sends what to add and the server answers with the total, so N instances
// allow what one would, without conflicts or retries. A message over a
// limit is not sent: its sender gets an error report naming the limit.
//
// Cost: one bus round trip per applicable limit, all of a message's at
// once, so its latency is about one round trip; one more for a key where
// a message was refused, to give its count back. Within an instance,
// messages counted against the same key at once share one write: while a
// write is on the bus, the next ones queue and go in one write after it,
// so a hot key (a big provider) costs one round trip per batch, not per
// message. BenchmarkLimits and BenchmarkLimitsTwoInstances measure it.
//
// Only the SMS a message goes by from the handler of mimi.to.tel counts
// against the daily segment budgets; the SMS sent after a revoked RCS
// message (a timer's work) does not, as the message was counted when it
// went by RCS. A message retried after a failure counts again.
//
// The per-bind protection of the SMS edge (smpp.protection: segment cap,
// allowed destinations, per-bind rates) stays: it guards the SMSC links of
// one instance whatever the MIMI side does; these limits guard against
// senders, across instances.

// Limits configures the shared limits (gateway.limits). A zero count turns
// a limit off; all are off by default.
type Limits struct {
	// Sender limits the messages of one MIMI sender (its URI).
	Sender Rate `yaml:"sender"`
	// Provider limits the messages of all senders of one provider (the
	// domain of the sender's URI; tel: senders count as the gateway's own
	// domain).
	Provider Rate `yaml:"provider"`
	// Country limits the messages to one destination country, by E.164
	// calling code, unless Countries has a prefix for the number.
	Country Rate `yaml:"country"`
	// Countries overrides Country for numbers under an E.164 prefix
	// (digits, no plus): the longest prefix that matches is counted on its
	// own, with its own rate (0 messages: no country limit there). A
	// window of 0 takes Country's.
	Countries map[string]Rate `yaml:"countries"`
	// Number limits the messages to one destination number.
	Number Rate `yaml:"number"`
	// SenderDailySegments and ProviderDailySegments bound the SMS segments
	// a sender, or all senders of a provider, may send per UTC day.
	SenderDailySegments   int64 `yaml:"sender_daily_segments"`
	ProviderDailySegments int64 `yaml:"provider_daily_segments"`
	// OnBusError says what happens to a message when the bus cannot
	// answer for its limits within Timeout: open sends it (the default;
	// the edge's per-bind protection still applies), closed holds it and
	// retries it later with the bus's backoff.
	OnBusError string `yaml:"on_bus_error"`
	// Timeout bounds the bus's answer for one message's limits.
	Timeout time.Duration `yaml:"timeout"`
	// Bucket names the counts' streams: "<bucket>-<window seconds>s",
	// one per window length.
	Bucket string `yaml:"bucket"`
}

// Rate is a count of messages per window. Windows are fixed, aligned to
// the Unix epoch (a 24h window is a UTC day).
type Rate struct {
	Messages int64         `yaml:"messages"`
	Window   time.Duration `yaml:"window"`
}

// Policies when the bus cannot answer (Limits.OnBusError).
const (
	LimitsOpen   = "open"
	LimitsClosed = "closed"
)

// Names of the limits, as the error reports and metrics give them.
const (
	limitSender        = "sender"
	limitProvider      = "provider"
	limitCountry       = "country"
	limitNumber        = "number"
	limitSenderDaily   = "sender_daily_segments"
	limitProviderDaily = "provider_daily_segments"
)

// maxLimitWindow bounds windows: the daily budgets are the longest.
const maxLimitWindow = 24 * time.Hour

// DefaultLimits returns the limits when nothing is said: all off.
func DefaultLimits() Limits {
	return Limits{
		Sender:     Rate{Window: time.Minute},
		Provider:   Rate{Window: time.Minute},
		Country:    Rate{Window: time.Minute},
		Number:     Rate{Window: time.Minute},
		OnBusError: LimitsOpen,
		Timeout:    2 * time.Second,
		Bucket:     "mimigw-limits",
	}
}

// Validate checks the limits and names the key at fault.
func (l *Limits) Validate() error {
	rate := func(name string, r Rate, zeroWindowOK bool) error {
		if r.Messages < 0 {
			return fmt.Errorf("limits.%s.messages: %d is negative", name, r.Messages)
		}
		if r.Messages == 0 || (zeroWindowOK && r.Window == 0) {
			return nil
		}
		if r.Window < time.Second || r.Window > maxLimitWindow || r.Window%time.Second != 0 {
			return fmt.Errorf("limits.%s.window: %s is not whole seconds between 1s and 24h", name, r.Window)
		}
		return nil
	}
	for _, r := range []struct {
		name string
		r    Rate
	}{{limitSender, l.Sender}, {limitProvider, l.Provider}, {limitCountry, l.Country}, {limitNumber, l.Number}} {
		if err := rate(r.name, r.r, false); err != nil {
			return err
		}
	}
	for p, r := range l.Countries {
		if p == "" || len(p) > 15 || strings.Trim(p, "0123456789") != "" || p[0] == '0' {
			return fmt.Errorf("limits.countries: %q is not an E.164 prefix (digits, no plus)", p)
		}
		if err := rate("countries."+p, r, true); err != nil {
			return err
		}
		if r.Window == 0 && r.Messages > 0 {
			if err := rate("country", Rate{Messages: 1, Window: l.Country.Window}, false); err != nil {
				return fmt.Errorf("limits.countries.%s.window: 0 takes country's window, which is unusable: %w", p, err)
			}
		}
	}
	if l.SenderDailySegments < 0 {
		return fmt.Errorf("limits.sender_daily_segments: %d is negative", l.SenderDailySegments)
	}
	if l.ProviderDailySegments < 0 {
		return fmt.Errorf("limits.provider_daily_segments: %d is negative", l.ProviderDailySegments)
	}
	switch l.OnBusError {
	case LimitsOpen, LimitsClosed:
	default:
		return fmt.Errorf("limits.on_bus_error: %q is not open or closed", l.OnBusError)
	}
	if l.Timeout < 10*time.Millisecond || l.Timeout > time.Minute {
		return fmt.Errorf("limits.timeout: %s is not between 10ms and 1m", l.Timeout)
	}
	if !bus.ValidCountersName(l.Bucket) {
		return fmt.Errorf("limits.bucket: %q is not a name of letters, digits, - and _ (its streams are named after it)", l.Bucket)
	}
	return nil
}

// ReloadLimits takes new limits (SIGHUP). Counts already on the bus stay:
// a changed rate applies to the counts of the current window.
func (g *Gateway) ReloadLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if l.Bucket != g.lim.cfg.Load().Bucket {
		return errors.New("gateway: limits.bucket changed; that needs a restart")
	}
	g.lim.cfg.Store(&l)
	return nil
}

// errLimited is what a refused message's failure wraps.
var errLimited = errors.New("over a limit")

// limitError says which limit refused a message.
type limitError struct {
	limit string // limitSender ...
	desc  string // "10 messages per 1m0s"
}

func (e *limitError) Error() string { return e.limit + " limit: " + e.desc }
func (e *limitError) Unwrap() error { return errLimited }

// charge is one count to make: n units against key, up to max per window.
type charge struct {
	limit  string
	key    string
	n, max int64
	window time.Duration
	desc   string
}

// limiter keeps, per key, the queue of messages waiting to be counted
// against it.
type limiter struct {
	ctrs *bus.Counters
	cfg  atomic.Pointer[Limits]
	now  func() time.Time
	m    *limitMetrics

	mu   sync.Mutex
	keys map[counterKey]*counter
}

// maxCounterKeys bounds the keys whose queues are kept in memory; past
// it, the idle ones are dropped.
const maxCounterKeys = 1 << 16

type limitMetrics struct {
	decisions *prometheus.CounterVec // limit, outcome
	busOps    *prometheus.CounterVec // op
	adds      prometheus.Counter     // busOps "add"
	addErrors prometheus.Counter     // busOps "error"
}

func newLimitMetrics(reg prometheus.Registerer) *limitMetrics {
	m := &limitMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "limit_decisions_total",
			Help: "Messages for phones counted against a shared limit (gateway.limits), by limit and outcome (allowed, refused; unavailable_open: sent without counting, unavailable_closed: held, the bus could not answer).",
		}, []string{"limit", "outcome"}),
		busOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "limit_bus_operations_total",
			Help: "Round trips to the limits' counters, by op (add, error).",
		}, []string{"op"}),
	}
	m.adds, m.addErrors = m.busOps.WithLabelValues("add"), m.busOps.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.decisions, m.busOps)
	}
	return m
}

func newLimiter(b *bus.Bus, l Limits, reg prometheus.Registerer) *limiter {
	lim := &limiter{ctrs: b.Counters(l.Bucket), now: time.Now, m: newLimitMetrics(reg), keys: map[counterKey]*counter{}}
	lim.cfg.Store(&l)
	return lim
}

// messageCharges lists the limits a message from sender to n counts
// against. domain is the gateway's own, the provider of tel: senders.
func (cfg *Limits) messageCharges(sender string, n uri.Number, domain string, now time.Time) []charge {
	var cs []charge
	if cfg.Sender.Messages > 0 || cfg.Provider.Messages > 0 {
		user, provider := senderKeys(sender, domain)
		if r := cfg.Sender; r.Messages > 0 {
			cs = append(cs, rateCharge(limitSender, "sender."+user, r, now))
		}
		if r := cfg.Provider; r.Messages > 0 {
			cs = append(cs, rateCharge(limitProvider, "provider."+provider, r, now))
		}
	}
	digits := n.Digits()
	if prefix, r, ok := cfg.countryOverride(digits); ok {
		if r.Messages > 0 {
			cs = append(cs, rateCharge(limitCountry, "country."+prefix, r, now))
		}
	} else if r := cfg.Country; r.Messages > 0 {
		cs = append(cs, rateCharge(limitCountry, "country."+callingCode(digits), r, now))
	}
	if r := cfg.Number; r.Messages > 0 {
		cs = append(cs, rateCharge(limitNumber, "number."+digits, r, now))
	}
	return cs
}

// segmentCharges lists the daily budgets a message's SMS segments count
// against.
func (cfg *Limits) segmentCharges(sender, domain string, segments int64, now time.Time) []charge {
	user, provider := senderKeys(sender, domain)
	day := Rate{Window: maxLimitWindow}
	var cs []charge
	if cfg.SenderDailySegments > 0 {
		day.Messages = cfg.SenderDailySegments
		c := rateCharge(limitSenderDaily, "sender-day."+user, day, now)
		c.n, c.desc = segments, plural(day.Messages, "SMS segment")+" per UTC day"
		cs = append(cs, c)
	}
	if cfg.ProviderDailySegments > 0 {
		day.Messages = cfg.ProviderDailySegments
		c := rateCharge(limitProviderDaily, "provider-day."+provider, day, now)
		c.n, c.desc = segments, plural(day.Messages, "SMS segment")+" per UTC day"
		cs = append(cs, c)
	}
	return cs
}

// countryOverride finds the longest configured prefix of digits; its
// rate decides, even when it is off (0: no country limit there).
func (cfg *Limits) countryOverride(digits string) (string, Rate, bool) {
	for i := min(len(digits), 15); i > 0; i-- {
		if r, ok := cfg.Countries[digits[:i]]; ok {
			if r.Window == 0 {
				r.Window = cfg.Country.Window
			}
			return digits[:i], r, true
		}
	}
	return "", Rate{}, false
}

// rateCharge makes the charge of one message against r, in the window
// now falls in. The key ends in the window's start, in Unix seconds.
func rateCharge(limit, key string, r Rate, now time.Time) charge {
	w := int64(r.Window / time.Second)
	start := now.Unix() / w * w
	return charge{
		limit: limit, key: key + "." + strconv.FormatInt(start, 10),
		n: 1, max: r.Messages, window: r.Window,
		desc: plural(r.Messages, "message") + " per " + r.Window.String(),
	}
}

// plural writes n things: "1 message", "10 messages".
func plural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.FormatInt(n, 10) + " " + thing + "s"
}

// senderKeys returns the key parts of a sender and its provider.
func senderKeys(sender, domain string) (user, provider string) {
	if u, err := uri.ParseMIMI(sender); err == nil {
		sender, domain = u.String(), u.Domain
	}
	return keyPart(sender), keyPart(strings.ToLower(domain))
}

// keyPart writes s as the counters' keys allow: in unpadded base64url, or
// for a long s, "=" and the hex of its SHA-256 (base64url never has "=").
func keyPart(s string) string {
	if len(s) > 180 {
		h := sha256.Sum256([]byte(s))
		return "=" + hex.EncodeToString(h[:])
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// admit counts every charge, or none: when one is refused (or the bus
// fails for one), those counted are given back. It returns nil, a
// *limitError, or the bus's error.
func (l *limiter) admit(ctx context.Context, cs []charge) error {
	if len(cs) == 0 {
		return nil
	}
	cfg := l.cfg.Load()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// The keys are counted at once: a message costs the time of one
	// round trip, not one per limit.
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i := range cs[1:] {
		c := &cs[i+1]
		wg.Go(func() { errs[i+1] = l.count(ctx, c, c.n) })
	}
	errs[0] = l.count(ctx, &cs[0], cs[0].n)
	wg.Wait()
	var refused *charge
	var busErr error
	for i := range cs {
		switch {
		case errs[i] == nil:
		case errors.Is(errs[i], errOverLimit):
			if refused == nil {
				refused = &cs[i]
			}
		case busErr == nil:
			busErr = errs[i]
		}
	}
	if refused == nil && busErr == nil {
		for _, c := range cs {
			l.m.decisions.WithLabelValues(c.limit, "allowed").Inc()
		}
		return nil
	}
	// Give back what was counted; a failure here leaves a count too high
	// for the rest of its window, never too low.
	for i := range cs {
		if errs[i] == nil {
			c := &cs[i]
			wg.Go(func() { _ = l.count(ctx, c, -c.n) })
		}
	}
	wg.Wait()
	if refused != nil {
		l.m.decisions.WithLabelValues(refused.limit, "refused").Inc()
		return &limitError{limit: refused.limit, desc: refused.desc}
	}
	return busErr
}

// errOverLimit: the count would go past its maximum.
var errOverLimit = errors.New("over the limit")

// counterKey names a count: its key in the stream of its window length.
type counterKey struct {
	key    string
	window time.Duration
}

// counter is the queue of one key's messages waiting to be counted.
type counter struct {
	mu    sync.Mutex
	busy  bool // a batch is being written
	queue []*ask
}

type ask struct {
	n, max int64
	done   chan askResult
}

type askResult struct {
	err  error
	lead bool // the waiter is to write the next batch
}

// count adds n (negative: gives back) to c's key if the result stays
// within c.max. Callers on the same key at once are batched: one of them
// writes, the others wait; then the first waiter writes the next batch.
func (l *limiter) count(ctx context.Context, ch *charge, n int64) error {
	k := counterKey{ch.key, ch.window}
	c := l.counter(k)
	a := &ask{n: n, max: ch.max, done: make(chan askResult, 2)}
	c.mu.Lock()
	c.queue = append(c.queue, a)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	for !lead {
		// No select on ctx: a waiter must be there to take the lead, and
		// every leader's writes are bounded by its own deadline.
		r := <-a.done
		if !r.lead {
			return r.err
		}
		lead = true
	}
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	l.write(ctx, k, batch)
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- askResult{lead: true}
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	return (<-a.done).err
}

func (l *limiter) counter(k counterKey) *counter {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.keys[k]
	if c == nil {
		if len(l.keys) >= maxCounterKeys {
			for k, old := range l.keys {
				old.mu.Lock()
				idle := !old.busy
				old.mu.Unlock()
				if idle {
					delete(l.keys, k)
				}
			}
		}
		c = &counter{}
		l.keys[k] = c
	}
	return c
}

// write counts a batch against k in one addition: the sum of the batch.
// The total the bus answers, less that sum, is what others had counted;
// from it the batch's messages are taken in order, each while it fits,
// and what did not fit is given back in a second addition. The count seen
// includes what others are about to give back, so a message may be
// refused that a moment later would fit, never the reverse.
func (l *limiter) write(ctx context.Context, k counterKey, batch []*ask) {
	errs := make([]error, len(batch))
	defer func() {
		for i, a := range batch {
			a.done <- askResult{err: errs[i]}
		}
	}()
	var sum int64
	for _, a := range batch {
		sum += a.n
	}
	total, err := l.ctrs.Add(ctx, k.key, sum, k.window)
	l.m.adds.Inc()
	if err != nil {
		l.m.addErrors.Inc()
		for i := range errs {
			errs[i] = err
		}
		return
	}
	running, refund := total-sum, int64(0)
	for i, a := range batch {
		switch {
		case a.n < 0:
			running += a.n
		case running+a.n <= a.max:
			running += a.n
		default:
			errs[i] = errOverLimit
			refund += a.n
		}
	}
	if refund > 0 {
		// A failure leaves the count too high for the rest of its
		// window, never too low.
		_, err := l.ctrs.Add(ctx, k.key, -refund, k.window)
		l.m.adds.Inc()
		if err != nil {
			l.m.addErrors.Inc()
		}
	}
}

// checkLimits counts a message for a phone against the limits of its
// sender, provider, destination country and number. A refusal ends the
// message with an error report; a bus that cannot answer lets it go or
// holds it, as configured.
func (g *Gateway) checkLimits(ctx context.Context, o *outbound) error {
	cfg := g.lim.cfg.Load()
	return g.applyLimits(ctx, cfg, cfg.messageCharges(o.sender, o.recipient, g.ids.Domain(), g.lim.now()))
}

// checkSegments counts the SMS segments of text, as the SMS edge splits
// it, against the daily budgets of o's sender and provider.
func (g *Gateway) checkSegments(ctx context.Context, o *outbound, text string) error {
	cfg := g.lim.cfg.Load()
	if g.sms == nil || cfg.SenderDailySegments == 0 && cfg.ProviderDailySegments == 0 {
		return nil // no budget (or no SMS): the text is not even counted
	}
	return g.applyLimits(ctx, cfg, cfg.segmentCharges(o.sender, g.ids.Domain(), int64(g.sms.Segments(text)), g.lim.now()))
}

func (g *Gateway) applyLimits(ctx context.Context, cfg *Limits, cs []charge) error {
	err := g.lim.admit(ctx, cs)
	var le *limitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return fail("refused: "+le.Error(), err)
	case cfg.OnBusError == LimitsClosed:
		for _, c := range cs {
			g.lim.m.decisions.WithLabelValues(c.limit, "unavailable_closed").Inc()
		}
		return fmt.Errorf("%w: limits: %w", ErrUnavailable, err)
	}
	for _, c := range cs {
		g.lim.m.decisions.WithLabelValues(c.limit, "unavailable_open").Inc()
	}
	g.log.Warn("limits not counted, the bus did not answer; sending anyway (gateway.limits.on_bus_error: open)", "err", err)
	return nil
}

// callingCode is the E.164 country calling code digits starts with: one
// digit for 1 (North America) and 7, two for the codes in twoDigitCodes,
// three for every other.
func callingCode(digits string) string {
	switch {
	case digits == "":
		return "0"
	case digits[0] == '1' || digits[0] == '7':
		return digits[:1]
	case len(digits) >= 2 && slices.Contains(twoDigitCodes, digits[:2]):
		return digits[:2]
	case len(digits) >= 3:
		return digits[:3]
	}
	return digits
}

// twoDigitCodes are the ITU-T E.164 country codes of two digits.
var twoDigitCodes = []string{
	"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
	"51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
	"81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
}
