package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Limits)
		bad  string // key named in the error; "" when valid
	}{
		{"defaults", func(*Limits) {}, ""},
		{"sender on", func(l *Limits) { l.Sender = Rate{Messages: 10, Window: time.Minute} }, ""},
		{"negative count", func(l *Limits) { l.Number.Messages = -1 }, "limits.number.messages"},
		{"window too short", func(l *Limits) { l.Sender = Rate{Messages: 1, Window: 500 * time.Millisecond} }, "limits.sender.window"},
		{"window too long", func(l *Limits) { l.Provider = Rate{Messages: 1, Window: 25 * time.Hour} }, "limits.provider.window"},
		{"window not whole seconds", func(l *Limits) { l.Country = Rate{Messages: 1, Window: 1500 * time.Millisecond} }, "limits.country.window"},
		{"window ignored while off", func(l *Limits) { l.Country = Rate{Window: 0} }, ""},
		{"country prefix", func(l *Limits) { l.Countries = map[string]Rate{"44": {Messages: 5}} }, ""},
		{"country prefix with plus", func(l *Limits) { l.Countries = map[string]Rate{"+44": {Messages: 5}} }, "limits.countries"},
		{"country prefix from 0", func(l *Limits) { l.Countries = map[string]Rate{"044": {Messages: 5}} }, "limits.countries"},
		{"country prefix window bad", func(l *Limits) { l.Countries = map[string]Rate{"1876": {Messages: 5, Window: time.Millisecond}} }, "limits.countries.1876.window"},
		{"country prefix takes a bad country window", func(l *Limits) {
			l.Country.Window = 0
			l.Countries = map[string]Rate{"44": {Messages: 5}}
		}, "limits.countries.44.window"},
		{"negative budget", func(l *Limits) { l.SenderDailySegments = -1 }, "limits.sender_daily_segments"},
		{"negative provider budget", func(l *Limits) { l.ProviderDailySegments = -5 }, "limits.provider_daily_segments"},
		{"bus error policy", func(l *Limits) { l.OnBusError = "maybe" }, "limits.on_bus_error"},
		{"closed", func(l *Limits) { l.OnBusError = LimitsClosed }, ""},
		{"timeout", func(l *Limits) { l.Timeout = 0 }, "limits.timeout"},
		{"bucket", func(l *Limits) { l.Bucket = "a.b" }, "limits.bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits()
			tc.edit(&l)
			err := l.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.bad != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.bad)):
				t.Fatalf("Validate: %v, want an error about %s", err, tc.bad)
			}
			// The gateway's Validate checks them too.
			c := DefaultConfig()
			c.Limits = l
			if gerr := c.Validate(); (gerr == nil) != (err == nil) {
				t.Errorf("Config.Validate: %v, Limits.Validate: %v", gerr, err)
			}
		})
	}
}

func TestCallingCode(t *testing.T) {
	t.Parallel()
	for digits, want := range map[string]string{
		"15551230002":   "1",
		"79161234567":   "7",
		"447700900123":  "44",
		"4915112345":    "49",
		"33612345678":   "33",
		"35312345678":   "353",
		"8613812345678": "86",
		"85212345678":   "852",
		"97150123456":   "971",
		"2348012345678": "234",
		"2712345678":    "27",
		"88212345":      "882",
		"9":             "9",
		"":              "0",
	} {
		if got := callingCode(digits); got != want {
			t.Errorf("callingCode(%q) = %q, want %q", digits, got, want)
		}
	}
}

func TestMessageCharges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 10, 30, 15, 0, time.UTC)
	minute := fmt.Sprint(now.Truncate(time.Minute).Unix())
	hour := fmt.Sprint(now.Truncate(time.Hour).Unix())
	day := fmt.Sprint(now.Truncate(24 * time.Hour).Unix())
	on := Rate{Messages: 5, Window: time.Minute}
	for _, tc := range []struct {
		name   string
		edit   func(*Limits)
		sender string
		to     uri.Number
		want   []string // limit=key
	}{
		{"all off", func(*Limits) {}, alice, phone, nil},
		{"sender and provider", func(l *Limits) { l.Sender, l.Provider = on, on }, alice, phone, []string{
			"sender=sender." + keyPart(alice) + "." + minute,
			"provider=provider." + keyPart("desk.example") + "." + minute,
		}},
		{"provider of a mixed-case URI", func(l *Limits) { l.Provider = on }, "mimi://Desk.Example/u/bob", phone, []string{
			"provider=provider." + keyPart("desk.example") + "." + minute,
		}},
		{"tel sender is the gateway's own", func(l *Limits) { l.Provider = on }, "tel:+15551239999", phone, []string{
			"provider=provider." + keyPart(domain) + "." + minute,
		}},
		{"country by calling code", func(l *Limits) { l.Country = on }, alice, "+447700900123", []string{
			"country=country.44." + minute,
		}},
		{"longest configured prefix wins", func(l *Limits) {
			l.Country = on
			l.Countries = map[string]Rate{"1": {Messages: 100, Window: time.Hour}, "1876": {Messages: 2}}
		}, alice, "+18765550123", []string{
			"country=country.1876." + minute,
		}},
		{"prefix with its own window", func(l *Limits) {
			l.Countries = map[string]Rate{"1": {Messages: 100, Window: time.Hour}, "1876": {Messages: 2}}
		}, alice, "+15551230002", []string{
			"country=country.1." + hour,
		}},
		{"prefix turned off leaves the number unlimited by country", func(l *Limits) {
			l.Country = on
			l.Countries = map[string]Rate{"44": {Messages: 0}}
		}, alice, "+447700900123", nil},
		{"number", func(l *Limits) { l.Number = on }, alice, phone, []string{
			"number=number.15551230002." + minute,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits()
			tc.edit(&l)
			if err := l.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range l.messageCharges(tc.sender, tc.to, domain, now) {
				got = append(got, c.limit+"="+c.key)
				if c.n != 1 {
					t.Errorf("%s counts %d per message", c.key, c.n)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("charges\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	l := DefaultLimits()
	l.SenderDailySegments, l.ProviderDailySegments = 100, 1000
	var got []string
	for _, c := range l.segmentCharges(alice, domain, 3, now) {
		got = append(got, fmt.Sprintf("%s=%s n=%d max=%d", c.limit, c.key, c.n, c.max))
	}
	want := []string{
		"sender_daily_segments=sender-day." + keyPart(alice) + "." + day + " n=3 max=100",
		"provider_daily_segments=provider-day." + keyPart("desk.example") + "." + day + " n=3 max=1000",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("segment charges\n got %v\nwant %v", got, want)
	}
	if long := keyPart(strings.Repeat("x", 500)); len(long) != 65 || long[0] != '=' {
		t.Errorf("a long URI's key part: %q", long)
	}
}

// clock is a settable time for the limiter.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time               { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration)          { c.ns.Add(int64(d)) }
func limiterOn(b *bus.Bus, l Limits) *limiter { return newLimiter(b, l, nil) }

// The limit logic against a real bucket: counts up to the limit, refuses
// past it, gives back what a refused message counted elsewhere, and starts
// again in the next window.
func TestLimiterCounts(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	l := DefaultLimits()
	l.Sender = Rate{Messages: 3, Window: time.Minute}
	l.Number = Rate{Messages: 2, Window: time.Minute}
	lim := limiterOn(b, l)
	clk := newClock(time.Date(2026, 12, 4, 10, 0, 5, 0, time.UTC))
	lim.now = clk.Now

	try := func(to uri.Number) error {
		cfg := lim.cfg.Load()
		return lim.admit(ctx, cfg.messageCharges(alice, to, domain, clk.Now()))
	}
	steps := []struct {
		to    uri.Number
		limit string // "" allowed
	}{
		{phone, ""},
		{phone, ""},
		{phone, limitNumber},          // the number's 2 are used; the sender's count is given back
		{"+15551230003", ""},          // sender at 3
		{"+15551230004", limitSender}, // sender past 3
		{"+15551230004", limitSender}, // still
	}
	for i, s := range steps {
		err := try(s.to)
		var le *limitError
		switch {
		case s.limit == "" && err != nil:
			t.Fatalf("step %d to %s: %v, want allowed", i, s.to, err)
		case s.limit != "" && (!errors.As(err, &le) || le.limit != s.limit):
			t.Fatalf("step %d to %s: %v, want refused by the %s limit", i, s.to, err, s.limit)
		}
	}
	sender := l.messageCharges(alice, phone, domain, clk.Now())[0]
	if v, err := lim.ctrs.Add(ctx, sender.key, 0, sender.window); err != nil || v != 3 {
		t.Errorf("sender count %d (%v), want 3: what refused messages counted was given back", v, err)
	}

	// The next window starts from zero.
	clk.Add(time.Minute)
	for i := range 3 {
		if err := try(uri.Number(fmt.Sprintf("+1555777000%d", i))); err != nil {
			t.Fatalf("next window, message %d: %v", i, err)
		}
	}
	if err := try("+15557770009"); !errors.Is(err, errLimited) {
		t.Fatalf("4th message of the next window: %v, want refused", err)
	}
	if got := testutil.ToFloat64(lim.m.decisions.WithLabelValues(limitSender, "refused")); got != 3 {
		t.Errorf("sender refusals counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(lim.m.decisions.WithLabelValues(limitNumber, "refused")); got != 1 {
		t.Errorf("number refusals counted %v, want 1", got)
	}
}

// Many messages on one key at once, from two instances: exactly the
// limit goes through, and on each instance they share writes.
func TestLimiterBatchesOneKey(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	l := DefaultLimits()
	l.Provider = Rate{Messages: 40, Window: time.Hour}
	now := newClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)).Now
	lims := []*limiter{limiterOn(srv.Bus(t), l), limiterOn(srv.Bus(t), l)}
	for _, lim := range lims {
		lim.now = now
	}
	const n = 200
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cs := l.messageCharges(fmt.Sprintf("mimi://desk.example/u/u%d", i), phone, domain, now())
			err := lims[i%2].admit(context.Background(), cs)
			switch {
			case err == nil:
				allowed.Add(1)
			case errors.Is(err, errLimited):
				refused.Add(1)
			default:
				t.Errorf("admit: %v", err)
			}
		})
	}
	wg.Wait()
	var adds float64
	for _, lim := range lims {
		adds += testutil.ToFloat64(lim.m.busOps.WithLabelValues("add"))
	}
	t.Logf("%d messages at once from two instances: %d allowed, %d refused, %v additions", n, allowed.Load(), refused.Load(), adds)
	if allowed.Load() != 40 || refused.Load() != n-40 {
		t.Errorf("allowed %d, refused %d; want 40 and %d", allowed.Load(), refused.Load(), n-40)
	}
	if adds >= n {
		t.Errorf("%v additions for %d messages: none shared a write", adds, n)
	}
}

// A bus that cannot answer: open lets the message go, closed holds it.
func TestLimitsBusGone(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{LimitsOpen, LimitsClosed} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			srv := bustest.NewServer(t)
			b := srv.Bus(t)
			cfg := testConfig()
			cfg.Limits.Sender = Rate{Messages: 5, Window: time.Minute}
			cfg.Limits.OnBusError = policy
			cfg.Limits.Timeout = 200 * time.Millisecond
			g, err := New(context.Background(), cfg, b, mustIdentity(t, b), bustest.Logger(t), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			srv.Stop()
			o := &outbound{sender: alice, recipient: phone}
			err = g.checkLimits(context.Background(), o)
			var f *failure
			switch {
			case policy == LimitsOpen && err != nil:
				t.Fatalf("open: %v, want the message let through", err)
			case policy == LimitsClosed && (!errors.Is(err, ErrUnavailable) || errors.As(err, &f)):
				t.Fatalf("closed: %v, want a retryable ErrUnavailable", err)
			}
			if got := testutil.ToFloat64(g.lim.m.decisions.WithLabelValues(limitSender, "unavailable_"+policy)); got != 1 {
				t.Errorf("unavailable_%s counted %v, want 1", policy, got)
			}
		})
	}
}

// limitHarness runs one gateway with the given limits and clock.
func limitHarness(t *testing.T, b *bus.Bus, cfg Config, clk *clock, sms SMSSender) *Gateway {
	t.Helper()
	return limitHarnessRCS(t, b, cfg, clk, nil, sms)
}

// limitHarnessRCS is limitHarness with an RCS edge too (either may be nil).
func limitHarnessRCS(t *testing.T, b *bus.Bus, cfg Config, clk *clock, rcs RCSSender, sms SMSSender) *Gateway {
	t.Helper()
	ids, err := identity.New(b.Identity(), identity.Config{Domain: domain, Pools: []string{"+15559990000-+15559990009"}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, b, ids, bustest.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g.lim.now = clk.Now
	if sms != nil {
		g.UseSMS(sms)
	}
	if rcs != nil {
		g.UseRCS(rcs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return g
}

// outcomes is what became of one message: sent by SMS, or an error report
// with its reason.
type outcomes struct {
	mu      sync.Mutex
	sent    map[string]int    // message ID -> SMS sent
	refused map[string]string // message ID -> reason of its error report
	changed chan struct{}
}

func newOutcomes() *outcomes {
	return &outcomes{sent: map[string]int{}, refused: map[string]string{}, changed: make(chan struct{}, 1000)}
}

func (o *outcomes) edge(onSend func()) smsFunc {
	return func(ctx context.Context, m OutboundSMS) (SMSSent, error) {
		if onSend != nil {
			onSend()
		}
		o.mu.Lock()
		o.sent[m.ID]++
		o.mu.Unlock()
		o.changed <- struct{}{}
		return SMSSent{Source: "smsc1", Refs: []string{m.ID[:16]}}, nil
	}
}

// follow reads the error reports on mimi.from.tel.>.
func (o *outcomes) follow(t *testing.T, b *bus.Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.WatchFromPhone(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range ch {
			m, err := content.Decode(d.Data)
			if err != nil {
				continue
			}
			entries, ok, _ := m.StatusReport()
			if !ok || len(entries) != 1 || entries[0].Status != content.Error {
				continue
			}
			reason := ""
			if v, ok := m.Extensions.Get(ReasonExtension); ok {
				_ = content.Extension{Key: ReasonExtension, Value: v}.Unmarshal(&reason)
			}
			o.mu.Lock()
			o.refused[entries[0].ID.String()] = reason
			o.mu.Unlock()
			o.changed <- struct{}{}
		}
	}()
}

// waitFor waits until sent and refused messages add up to n.
func (o *outcomes) waitFor(t *testing.T, n int) (sent map[string]int, refused map[string]string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		o.mu.Lock()
		total := len(o.sent) + len(o.refused)
		o.mu.Unlock()
		if total >= n {
			break
		}
		select {
		case <-o.changed:
		case <-deadline:
			o.mu.Lock()
			defer o.mu.Unlock()
			t.Fatalf("%d sent and %d refused, want %d in all", len(o.sent), len(o.refused), n)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.sent), maps.Clone(o.refused)
}

// Two gateway instances on one bus count a sender's messages together:
// with a limit of 10 per window, 20 messages to 20 numbers, spread over
// both instances, give exactly 10 SMS and 10 error reports naming the
// limit.
func TestLimitsSharedByTwoInstances(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	cfg := testConfig()
	cfg.Channel = ChannelSMS
	cfg.Workers = 2
	cfg.Limits.Sender = Rate{Messages: 10, Window: time.Hour}
	clk := newClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	out := newOutcomes()

	// Each instance's edge holds its SMS until both instances have sent
	// one, so that neither takes all the work.
	var calledA, calledB atomic.Bool
	both := make(chan struct{})
	var once sync.Once
	gate := func(mine *atomic.Bool) func() {
		return func() {
			mine.Store(true)
			if calledA.Load() && calledB.Load() {
				once.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(wait):
			}
		}
	}
	gA := limitHarness(t, srv.Bus(t), cfg, clk, out.edge(gate(&calledA)))
	gB := limitHarness(t, srv.Bus(t), cfg, clk, out.edge(gate(&calledB)))

	publisher := srv.Bus(t)
	out.follow(t, publisher)
	h := &harness{t: t, bus: publisher}
	const n = 20
	for i := range n {
		h.sendToPhone(uri.Number(fmt.Sprintf("+1555123%04d", i)), alice, "", fmt.Sprintf("m%d", i), ChannelSMS)
	}
	sent, refused := out.waitFor(t, n)
	perInstance := func(g *Gateway) (a, r float64) {
		return testutil.ToFloat64(g.lim.m.decisions.WithLabelValues(limitSender, "allowed")),
			testutil.ToFloat64(g.lim.m.decisions.WithLabelValues(limitSender, "refused"))
	}
	aA, rA := perInstance(gA)
	aB, rB := perInstance(gB)
	t.Logf("instance A: %v allowed, %v refused; instance B: %v allowed, %v refused", aA, rA, aB, rB)
	if len(sent) != 10 || len(refused) != 10 {
		t.Fatalf("%d sent, %d refused; want 10 and 10", len(sent), len(refused))
	}
	if !calledA.Load() || !calledB.Load() {
		t.Errorf("an instance sent nothing (A %v, B %v): the work was not spread", calledA.Load(), calledB.Load())
	}
	if aA+aB != 10 || rA+rB != 10 {
		t.Errorf("decisions: %v allowed, %v refused across the instances", aA+aB, rA+rB)
	}
	for id, reason := range refused {
		if sent[id] > 0 {
			t.Errorf("message %s both sent and refused", id)
		}
		if want := "refused: sender limit: 10 messages per 1h0m0s"; reason != want {
			t.Errorf("report on %s gives the reason %q, want %q", id, reason, want)
		}
	}
	for id, c := range sent {
		if c != 1 {
			t.Errorf("message %s sent %d times", id, c)
		}
	}
}

// Limits per destination number and per country, and the daily budget of
// SMS segments, on one instance; and a limit that starts again in its next
// window.
func TestLimitsNumberCountrySegmentsWindow(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig()
	cfg.Channel = ChannelSMS
	cfg.Limits.Number = Rate{Messages: 2, Window: time.Minute}
	cfg.Limits.Countries = map[string]Rate{"44": {Messages: 1, Window: time.Minute}}
	cfg.Limits.SenderDailySegments = 5
	clk := newClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	out := newOutcomes()
	limitHarness(t, b, cfg, clk, out.edge(nil))
	out.follow(t, b)
	h := &harness{t: t, bus: b}

	total := 0
	step := func(to uri.Number, sender, text, wantReason string) {
		t.Helper()
		id := h.sendToPhone(to, sender, "", text, ChannelSMS).String()
		total++
		sent, refused := out.waitFor(t, total)
		switch {
		case wantReason == "" && sent[id] != 1:
			t.Fatalf("message to %s: refused (%q), want sent", to, refused[id])
		case wantReason != "" && refused[id] != wantReason:
			t.Fatalf("message to %s: sent %d, reason %q; want refused with %q", to, sent[id], refused[id], wantReason)
		}
	}
	bob := "mimi://desk.example/u/bob"
	carol := "mimi://desk.example/u/carol"
	// Per number: two to phone, the third refused, another number fine.
	step(phone, bob, "1", "")
	step(phone, carol, "2", "")
	step(phone, bob, "3", "refused: number limit: 2 messages per 1m0s")
	step("+15551230003", bob, "4", "")
	// Per country (+44 has 1 per minute): the second UK number refused.
	step("+447700900001", bob, "5", "")
	step("+447700900002", carol, "6", "refused: country limit: 1 message per 1m0s")
	// Daily segments of one sender (5): 3 segments, then 3 more refused,
	// then 1 more fits; the refused message counted nothing.
	long := strings.Repeat("a", 400) // 3 segments
	step("+15551230010", alice, long, "")
	step("+15551230011", alice, long, "refused: sender_daily_segments limit: 5 SMS segments per UTC day")
	step("+15551230012", alice, "short", "")
	step("+15551230013", alice, "short", "")
	step("+15551230014", alice, "short", "refused: sender_daily_segments limit: 5 SMS segments per UTC day")
	// A minute on, the number can take messages again; the day's budget
	// is still spent.
	clk.Add(time.Minute)
	step(phone, bob, "7", "")
	step("+15551230015", alice, "short", "refused: sender_daily_segments limit: 5 SMS segments per UTC day")
	// The next day, the budget is back.
	clk.Add(24 * time.Hour)
	step("+15551230016", alice, long, "")
}

// Messages that go by RCS count too; a refused one never reaches the
// edge.
func TestLimitsCountRCS(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig()
	cfg.Limits.Sender = Rate{Messages: 1, Window: time.Hour}
	rcs := newRCSEdge(Capabilities{Chat: true})
	limitHarnessRCS(t, b, cfg, newClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)), rcs, nil)
	out := newOutcomes()
	out.follow(t, b)
	h := &harness{t: t, bus: b}
	first := h.sendToPhone(phone, alice, "", "one", ChannelAuto)
	if m := recv(t, rcs.sent, "RCS message"); m.ID != first.String() {
		t.Fatalf("sent %s, want %s", m.ID, first)
	}
	second := h.sendToPhone("+15551230003", alice, "", "two", ChannelAuto)
	_, refused := out.waitFor(t, 1)
	if want := "refused: sender limit: 1 message per 1h0m0s"; refused[second.String()] != want {
		t.Fatalf("reports %v, want the second message refused with %q", refused, want)
	}
	select {
	case m := <-rcs.sent:
		t.Fatalf("a refused message went by RCS: %s", m.ID)
	default:
	}
}

// The limits reload: a new rate applies to the current window's count; a
// new bucket needs a restart; a bad one is refused.
func TestReloadLimits(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig()
	cfg.Limits.Sender = Rate{Messages: 1, Window: time.Minute}
	g, err := New(context.Background(), cfg, b, mustIdentity(t, b), bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.lim.now = newClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)).Now
	ctx := context.Background()
	o := &outbound{sender: alice, recipient: phone}
	if err := g.checkLimits(ctx, o); err != nil {
		t.Fatal(err)
	}
	var f *failure
	if err := g.checkLimits(ctx, o); !errors.As(err, &f) || !errors.Is(err, errLimited) {
		t.Fatalf("second message: %v, want refused", err)
	}
	l := cfg.Limits
	l.Sender.Messages = 2
	if err := g.ReloadLimits(l); err != nil {
		t.Fatal(err)
	}
	if err := g.checkLimits(ctx, o); err != nil {
		t.Fatalf("after raising the limit to 2: %v", err)
	}
	bad := l
	bad.Sender.Messages = -1
	if err := g.ReloadLimits(bad); err == nil {
		t.Error("a negative limit was taken")
	}
	moved := l
	moved.Bucket = "elsewhere"
	if err := g.ReloadLimits(moved); err == nil {
		t.Error("a new bucket was taken without a restart")
	}
	if got := g.lim.cfg.Load().Sender.Messages; got != 2 {
		t.Errorf("limit now %d, want 2 (refused reloads change nothing)", got)
	}
}

// BenchmarkLimits measures one message counted against four limits
// (sender, provider, country, number) on one instance, and reports the
// bus round trips per message.
func BenchmarkLimits(b *testing.B) {
	bb := bustest.New(b)
	l := DefaultLimits()
	big := Rate{Messages: 1 << 40, Window: time.Hour}
	l.Sender, l.Provider, l.Country, l.Number = big, big, big, big
	lim := limiterOn(bb, l)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cs := l.messageCharges(alice, uri.Number(fmt.Sprintf("+1555123%04d", i%100)), domain, time.Now())
		if err := lim.admit(ctx, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(testutil.ToFloat64(lim.m.busOps.WithLabelValues("add"))/float64(b.N), "roundtrips/msg")
}

// BenchmarkLimitsTwoInstances counts one sender's messages against four
// limits from two instances at once (8 goroutines per GOMAXPROCS, half on
// each instance), so that both add to the same hot keys: it reports the
// round trips per message.
func BenchmarkLimitsTwoInstances(b *testing.B) {
	srv := bustest.NewServer(b)
	l := DefaultLimits()
	big := Rate{Messages: 1 << 40, Window: time.Hour}
	l.Sender, l.Provider, l.Country, l.Number = big, big, big, big
	lims := []*limiter{limiterOn(srv.Bus(b), l), limiterOn(srv.Bus(b), l)}
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lim := lims[next.Add(1)%2]
		for pb.Next() {
			cs := l.messageCharges(alice, phone, domain, time.Now())
			if err := lim.admit(ctx, cs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	var ops float64
	for _, lim := range lims {
		ops += testutil.ToFloat64(lim.m.busOps.WithLabelValues("add"))
	}
	b.ReportMetric(ops/float64(b.N), "roundtrips/msg")
}
