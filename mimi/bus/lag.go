package bus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// How the backlog gauges read the server: at most one read (one consumer
// info and one stream info request) per lagCacheFor, each bounded by
// lagReadTimeout; a scrape waits at most lagScrapeWait for a read in
// flight and otherwise shows what the last read found.
const (
	lagCacheFor    = 5 * time.Second
	lagReadTimeout = 5 * time.Second
	lagScrapeWait  = time.Second
)

// lagSnapshot is what one read of the server found; a part whose request
// failed is not ok and its series are left out.
type lagSnapshot struct {
	consumerOK                       bool
	pending, ackPending, redelivered uint64
	streamOK                         bool
	streamMessages, streamBytes      uint64
}

// lagCollector exports the to-phone consumer's backlog (messages not yet
// delivered, delivered and not yet acknowledged, redelivered) and the
// from-phone stream's size, read from the server when scraped, cached for
// lagCacheFor so that scrapes (Prometheus, the status page's sampler) never
// add up to more than one read per interval.
type lagCollector struct {
	pending, ackPending, redelivered *prometheus.GaugeVec // consumer
	streamMessages, streamBytes      *prometheus.GaugeVec // stream

	fetch    func(context.Context) lagSnapshot
	cacheFor time.Duration
	wait     time.Duration
	mu       sync.Mutex
	last     time.Time     // when the last read started
	inFlight chan struct{} // closed when the read in flight ends; nil when none
}

func newLagCollector(b *Bus) *lagCollector {
	const ns, sub = "mimigw", "bus"
	c := &lagCollector{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "consumer_pending",
			Help: "Messages in the stream the consumer has not delivered yet, by consumer (to_phone), read from the server at most every 5 s.",
		}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "consumer_ack_pending",
			Help: "Messages delivered by the consumer and not yet acknowledged, by consumer (to_phone).",
		}, []string{"consumer"}),
		redelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "consumer_redelivered",
			Help: "Messages unacknowledged and delivered more than once, by consumer (to_phone).",
		}, []string{"consumer"}),
		streamMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "stream_messages",
			Help: "Messages the stream holds, by stream (from_phone), read from the server at most every 5 s.",
		}, []string{"stream"}),
		streamBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "stream_bytes",
			Help: "Bytes the stream holds, by stream (from_phone).",
		}, []string{"stream"}),
		cacheFor: lagCacheFor,
		wait:     lagScrapeWait,
	}
	c.fetch = b.readLag
	return c
}

// readLag asks the server about the to-phone consumer and the from-phone
// stream: one request each.
func (b *Bus) readLag(ctx context.Context) lagSnapshot {
	var s lagSnapshot
	select {
	case <-b.closed:
		return s
	default:
	}
	if nc := b.nc.Load(); nc == nil || !nc.IsConnected() {
		return s
	}
	ctx, cancel := context.WithTimeout(ctx, lagReadTimeout)
	defer cancel()
	if cons, err := b.js.Consumer(ctx, b.cfg.ToPhoneStream, b.cfg.Consumer); err == nil {
		ci := cons.CachedInfo()
		s.consumerOK = true
		s.pending, s.ackPending, s.redelivered = ci.NumPending, uint64(ci.NumAckPending), uint64(ci.NumRedelivered)
	} else {
		b.log.Debug("bus backlog: consumer info", "consumer", b.cfg.Consumer, "err", err)
	}
	if st, err := b.js.Stream(ctx, b.cfg.FromPhoneStream); err == nil {
		si := st.CachedInfo()
		s.streamOK = true
		s.streamMessages, s.streamBytes = si.State.Msgs, si.State.Bytes
	} else {
		b.log.Debug("bus backlog: stream info", "stream", b.cfg.FromPhoneStream, "err", err)
	}
	return s
}

func (c *lagCollector) vecs() []*prometheus.GaugeVec {
	return []*prometheus.GaugeVec{c.pending, c.ackPending, c.redelivered, c.streamMessages, c.streamBytes}
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
}

// Collect implements prometheus.Collector: it starts a read when the last
// one is older than cacheFor, waits for a read in flight at most c.wait,
// and exports what the last finished read found.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	if done, wait := c.refresh(); done != nil {
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
}

// refresh starts a read unless one is in flight or the last one is recent,
// and returns the channel that closes when the read in flight ends (nil
// when none is) and how long a scrape may wait for it.
func (c *lagCollector) refresh() (<-chan struct{}, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight != nil {
		return c.inFlight, c.wait
	}
	if !c.last.IsZero() && time.Since(c.last) < c.cacheFor {
		return nil, 0
	}
	c.last = time.Now()
	done := make(chan struct{})
	c.inFlight = done
	fetch := c.fetch
	go func() {
		defer close(done)
		s := fetch(context.Background())
		c.mu.Lock()
		defer c.mu.Unlock()
		c.set(s)
		c.inFlight = nil
	}()
	return done, c.wait
}

// set replaces the exported values with s; what s could not read is
// dropped rather than shown stale.
func (c *lagCollector) set(s lagSnapshot) {
	for _, v := range c.vecs() {
		v.Reset()
	}
	if s.consumerOK {
		c.pending.WithLabelValues(roleToPhone).Set(float64(s.pending))
		c.ackPending.WithLabelValues(roleToPhone).Set(float64(s.ackPending))
		c.redelivered.WithLabelValues(roleToPhone).Set(float64(s.redelivered))
	}
	if s.streamOK {
		c.streamMessages.WithLabelValues(roleFromPhone).Set(float64(s.streamMessages))
		c.streamBytes.WithLabelValues(roleFromPhone).Set(float64(s.streamBytes))
	}
}
