package gateway

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	inbound      *prometheus.CounterVec // channel, outcome
	outbound     *prometheus.CounterVec // channel, outcome
	fallbacks    *prometheus.CounterVec // reason
	reports      *prometheus.CounterVec // status: the MIMI status reported
	receipts     *prometheus.CounterVec // channel, outcome
	capabilities *prometheus.CounterVec // outcome
	revocations  *prometheus.CounterVec // outcome
	notified     *prometheus.CounterVec // channel, outcome: MIMI reports turned into IMDNs
	segments     *prometheus.CounterVec // outcome
	resent       prometheus.Counter
	delivery     *prometheus.HistogramVec // channel: accepted on the bus to delivered
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "inbound_total",
			Help: "Messages from phone users, by channel and outcome (accepted, duplicate, rejected, unavailable).",
		}, []string{"channel", "outcome"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "outbound_total",
			Help: "MIMI messages for phone users, by the channel they went by and outcome (sent, failed, retry, duplicate).",
		}, []string{"channel", "outcome"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "sms_fallbacks_total",
			Help: "Messages sent by SMS after RCS could not take them, by reason.",
		}, []string{"reason"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "status_reports_total",
			Help: "Status reports published to MIMI senders, by status.",
		}, []string{"status"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "receipts_total",
			Help: "IMDNs and SMS delivery receipts received, by channel and outcome (applied, held before the message was recorded, early: held then applied, unknown), and id_reused: a network message id given out again, now naming the newer message.",
		}, []string{"channel", "outcome"}),
		capabilities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "capability_lookups_total",
			Help: "RCS capability lookups, by outcome (cached, rcs, not_rcs, offline, error).",
		}, []string{"outcome"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "revocations_total",
			Help: "RCS revocations, by outcome (requested, revoked, too_late, unsupported, gave_up, no_result), and what became of messages that could not be revoked (sms_anyway, expired).",
		}, []string{"outcome"}),
		notified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "notifications_total",
			Help: "MIMI status reports about phone users' messages, by outcome (sent, not_requested, unknown, sms).",
		}, []string{"outcome"}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "sms_segments_total",
			Help: "Segments of concatenated SMS, by outcome (held, duplicate), and messages made of them (complete, incomplete).",
		}, []string{"outcome"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "resent_total",
			Help: "Messages sent to the phone network again because an earlier attempt's outcome was not recorded (possible duplicates).",
		}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mimigw", Subsystem: "gateway", Name: "delivery_seconds",
			Help:    "Time from a message for a phone being accepted on the bus (Mimi-Accepted) to its IMDN delivered (or read) or the SMS receipts of all its segments, by the channel it went by.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"channel"}),
	}
	if reg != nil {
		reg.MustRegister(m.inbound, m.outbound, m.fallbacks, m.reports, m.receipts, m.capabilities, m.revocations, m.notified, m.segments, m.resent, m.delivery)
	}
	return m
}
