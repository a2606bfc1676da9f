package provider

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reg      *prometheus.Registry
	fanin    *prometheus.CounterVec // kind, outcome: what peers sent (notify, submitMessage, update)
	outbox   *prometheus.CounterVec // outcome: phone users' messages carried to rooms
	rooms    *prometheus.CounterVec // event: created, joined, left
	lookups  *prometheus.CounterVec // outcome: identifierQuery asked of peers
	answered *prometheus.CounterVec // endpoint, outcome: keyMaterial, identifierQuery and requestConsent answers
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		fanin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "provider", Name: "received_total",
			Help: "MLS messages received from peers, by kind (welcome, commit, proposal, application) and outcome (applied, delivered, duplicate, rejected, retry).",
		}, []string{"kind", "outcome"}),
		outbox: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "provider", Name: "outbox_total",
			Help: "Phone users' messages carried to MIMI rooms, by outcome (submitted, fanned_out, not_for_provider, retry, failed).",
		}, []string{"outcome"}),
		rooms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "provider", Name: "room_events_total",
			Help: "Rooms the gateway's phone users entered or left, by event (created, joined, left).",
		}, []string{"event"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "provider", Name: "lookups_total",
			Help: "identifierQuery lookups of phone numbers at peers, by outcome (found, not_found, cached, error).",
		}, []string{"outcome"}),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "provider", Name: "answers_total",
			Help: "keyMaterial, identifierQuery and requestConsent requests answered, by endpoint and outcome (the protocol's status name; for requestConsent: granted, not_granted, ignored, queue_full, refused).",
		}, []string{"endpoint", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.fanin, m.outbox, m.rooms, m.lookups, m.answered)
	}
	return m
}
