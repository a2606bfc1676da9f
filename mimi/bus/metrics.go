package bus

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what crosses the bus. Label values are fixed sets (subject
// kinds, consumer roles, outcomes), never numbers or IDs.
type metrics struct {
	publishes       *prometheus.CounterVec   // kind
	publishFailures *prometheus.CounterVec   // kind, reason
	duplicates      *prometheus.CounterVec   // kind
	publishSeconds  *prometheus.HistogramVec // kind
	publishRetries  *prometheus.CounterVec   // kind
	deliveries      *prometheus.CounterVec   // consumer
	badEnvelopes    *prometheus.CounterVec   // consumer
	settles         *prometheus.CounterVec   // consumer, outcome
	handlerPanics   *prometheus.CounterVec   // consumer
	exhausted       *prometheus.CounterVec   // consumer
	disconnects     prometheus.Counter
	reconnects      prometheus.Counter
	asyncErrors     prometheus.Counter
	connected       prometheus.GaugeFunc
	lag             *lagCollector // consumer and stream backlog, read on scrape (lag.go)
}

// Consumer roles, as metric labels.
const (
	roleToPhone   = "to_phone"
	roleFromPhone = "from_phone"
	roleTimers    = "timers"
	roleWatch     = "watch"
)

func newMetrics(conn func() *nats.Conn) *metrics {
	const ns, sub = "mimigw", "bus"
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "publishes_total",
			Help: "Messages JetStream acknowledged, by subject kind (duplicates included).",
		}, []string{"kind"}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_failures_total",
			Help: "Publishes not acknowledged: reason unavailable (retry later) or rejected (never).",
		}, []string{"kind", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "duplicates_total",
			Help: "Publishes JetStream reported as duplicates of a message ID it already held.",
		}, []string{"kind"}),
		publishSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_seconds",
			Help:    "Time from publish to JetStream acknowledgement.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"kind"}),
		publishRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_retries_total",
			Help: "Publishes sent again, with the same ID, because the stream could not take them (no leader, lost ack).",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "deliveries_total",
			Help: "Messages handed to handlers, redeliveries included, by consumer.",
		}, []string{"consumer"}),
		badEnvelopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "bad_envelopes_total",
			Help: "Delivered messages whose headers break the bus contract.",
		}, []string{"consumer"}),
		settles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "settles_total",
			Help: "Acks, naks, terms and in-progress signals sent, by consumer and outcome.",
		}, []string{"consumer", "outcome"}),
		handlerPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "handler_panics_total",
			Help: "Handlers that panicked; their message was NAKed.",
		}, []string{"consumer"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "exhausted_total",
			Help: "Messages the server stopped delivering because they reached their delivery limit unsettled.",
		}, []string{"consumer"}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "disconnects_total",
			Help: "Times the connection to NATS was lost.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reconnects_total",
			Help: "Times the connection to NATS was re-established.",
		}),
		asyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "async_errors_total",
			Help: "Asynchronous errors the NATS connection reported (slow consumer, permissions).",
		}),
	}
	m.connected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "connected",
		Help: "1 while the connection to NATS is up.",
	}, func() float64 {
		if nc := conn(); nc != nil && nc.IsConnected() {
			return 1
		}
		return 0
	})
	return m
}

// register puts every collector on reg, or none of them.
func (m *metrics) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{
		m.publishes, m.publishFailures, m.duplicates, m.publishSeconds, m.publishRetries, m.deliveries,
		m.badEnvelopes, m.settles, m.handlerPanics, m.exhausted, m.disconnects,
		m.reconnects, m.asyncErrors, m.connected,
	}
	if m.lag != nil {
		cs = append(cs, m.lag)
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}
