package admin

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The status page's rates come from the process's own Prometheus
// registry: the sampler gathers the gateway's series every few seconds
// into a ring covering a little more than the rate window, and a rate is
// what a counter gained between the sample a window ago (or the oldest
// one, while the process is younger) and a gather made for the page.

// rateWindow is the span rates are given over.
const rateWindow = time.Minute

// series is one labelled value of a metric.
type series struct {
	labels map[string]string
	value  float64
}

// snapshot is the registry's mimigw_ counters and gauges at one time.
type snapshot struct {
	at     time.Time
	values map[string][]series // by metric name
}

// sum adds the series of name whose labels match: each matcher names a
// label and the values it may take.
func (s *snapshot) sum(name string, match ...matcher) float64 {
	if s == nil {
		return 0
	}
	total := 0.0
next:
	for _, se := range s.values[name] {
		for _, m := range match {
			if !m.matches(se.labels[m.label]) {
				continue next
			}
		}
		total += se.value
	}
	return total
}

// labelValues lists the values label takes among name's series.
func (s *snapshot) labelValues(name, label string) []string {
	seen := map[string]bool{}
	for _, se := range s.values[name] {
		if v, ok := se.labels[label]; ok {
			seen[v] = true
		}
	}
	return sortedKeys(seen)
}

type matcher struct {
	label  string
	values []string
}

func (m matcher) matches(v string) bool {
	for _, want := range m.values {
		if v == want {
			return true
		}
	}
	return false
}

func is(label string, values ...string) matcher { return matcher{label: label, values: values} }

// gather reads the registry's mimigw_ counters and gauges.
func gather(g prometheus.Gatherer, at time.Time) (*snapshot, error) {
	families, err := g.Gather()
	s := &snapshot{at: at, values: map[string][]series{}}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "mimigw_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			default:
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			s.values[name] = append(s.values[name], series{labels: labels, value: v})
		}
	}
	return s, err
}

// sampler keeps the ring of snapshots, and what each SMSC last failed at.
type sampler struct {
	reg   prometheus.Gatherer
	every time.Duration
	smscs []string
	now   func() time.Time

	mu       sync.Mutex
	ring     []*snapshot // oldest first
	lastFail map[string]failure
}

// failure is the latest failure seen on an SMSC: which counters rose
// between two samples, and when the later one was taken.
type failure struct {
	at   time.Time
	what string
}

func newSampler(reg prometheus.Gatherer, every time.Duration, smscs []string) *sampler {
	s := &sampler{reg: reg, every: every, smscs: smscs, now: time.Now, lastFail: map[string]failure{}}
	s.sample()
	return s
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *sampler) sample() {
	snap, _ := gather(s.reg, s.now()) // a partial gather still has its counters
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev *snapshot
	if n := len(s.ring); n > 0 {
		prev = s.ring[n-1]
	}
	s.noteFailures(prev, snap)
	s.ring = append(s.ring, snap)
	// Keep one sample at least a window older than the newest.
	keep := int(rateWindow/s.every) + 2
	if len(s.ring) > keep {
		s.ring = append(s.ring[:0], s.ring[len(s.ring)-keep:]...)
	}
}

// smscFailures are the counters that say an SMSC failed at something,
// with the label values that count as failures and what to call them.
var smscFailures = []struct {
	metric, label string
	values        []string
	what          string
}{
	{"mimigw_smpp_bind_attempts_total", "outcome", []string{"refused"}, "bind refused"},
	{"mimigw_smpp_bind_attempts_total", "outcome", []string{"error"}, "bind failed (connection or TLS)"},
	{"mimigw_smpp_submits_total", "outcome", []string{"rejected"}, "submit_sm rejected"},
	{"mimigw_smpp_submits_total", "outcome", []string{"timeout"}, "submit_sm unanswered (timeout)"},
	{"mimigw_smpp_submits_total", "outcome", []string{"closed"}, "submit_sm unanswered (link closed)"},
	{"mimigw_smpp_submits_total", "outcome", []string{"error"}, "submit_sm temporary error"},
	{"mimigw_smpp_bad_pdus_total", "", nil, "bad PDU from the SMSC"},
	{"mimigw_smpp_bad_message_ids_total", "", nil, "message id not in its configured form"},
	{"mimigw_smpp_receipts_total", "outcome", []string{"bad"}, "unreadable delivery receipt"},
	{"mimigw_smpp_mo_total", "outcome", []string{"bad"}, "unreadable deliver_sm"},
}

// noteFailures records, per SMSC, the failure counters that rose from
// prev to cur (from zero for the first sample), and a bind lost.
func (s *sampler) noteFailures(prev, cur *snapshot) {
	for _, smsc := range s.smscs {
		var what []string
		for _, f := range smscFailures {
			match := []matcher{is("smsc", smsc)}
			if f.label != "" {
				match = append(match, is(f.label, f.values...))
			}
			if d := cur.sum(f.metric, match...) - prev.sum(f.metric, match...); d > 0 {
				what = append(what, f.what+" ×"+formatCount(d))
			}
		}
		if prev != nil && cur.sum("mimigw_smpp_binds_up", is("smsc", smsc)) < prev.sum("mimigw_smpp_binds_up", is("smsc", smsc)) {
			what = append(what, "bind lost")
		}
		if len(what) > 0 {
			s.lastFail[smsc] = failure{at: cur.at, what: strings.Join(what, ", ")}
		}
	}
}

// view is a fresh gather and the sample it is compared with.
type view struct {
	now, base *snapshot
	lastFail  map[string]failure
}

// current gathers now and picks the base a window back.
func (s *sampler) current() view {
	now, _ := gather(s.reg, s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	v := view{now: now, lastFail: make(map[string]failure, len(s.lastFail))}
	for k, f := range s.lastFail {
		v.lastFail[k] = f
	}
	for _, snap := range s.ring {
		if now.at.Sub(snap.at) >= rateWindow || v.base == nil {
			v.base = snap
		}
	}
	return v
}

// span is how long the rates cover.
func (v view) span() time.Duration {
	if v.base == nil {
		return 0
	}
	return v.now.at.Sub(v.base.at)
}

// delta is what the matching series of name gained over the span.
func (v view) delta(name string, match ...matcher) float64 {
	d := v.now.sum(name, match...) - v.base.sum(name, match...)
	if d < 0 {
		return 0
	}
	return d
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
