package smpp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the SMS edge's Prometheus series. Labels hold SMSC names,
// command names and fixed outcome words, never numbers or texts.
type metrics struct {
	binds         *prometheus.GaugeVec   // smsc, mode
	bindAttempts  *prometheus.CounterVec // smsc, outcome
	pdus          *prometheus.CounterVec // smsc, direction, command
	badPDUs       *prometheus.CounterVec // smsc, reason
	unmatched     *prometheus.CounterVec // smsc
	window        *prometheus.GaugeVec   // smsc
	submits       *prometheus.CounterVec // smsc, outcome
	submitSeconds *prometheus.HistogramVec
	resent        *prometheus.CounterVec // smsc
	throttled     *prometheus.CounterVec // smsc
	mo            *prometheus.CounterVec // smsc, outcome
	receipts      *prometheus.CounterVec // smsc, outcome
	refused       *prometheus.CounterVec // reason
	badIDs        *prometheus.CounterVec // smsc, where
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		binds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mimigw_smpp_binds_up", Help: "Binds currently up, per SMSC and bind mode.",
		}, []string{"smsc", "mode"}),
		bindAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_bind_attempts_total", Help: "Bind attempts by outcome (ok, refused, error).",
		}, []string{"smsc", "outcome"}),
		pdus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_pdus_total", Help: "PDUs sent (out) and received (in), by command.",
		}, []string{"smsc", "direction", "command"}),
		badPDUs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_bad_pdus_total", Help: "PDUs from an SMSC that were refused, by reason.",
		}, []string{"smsc", "reason"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_unmatched_responses_total", Help: "Responses that matched no outstanding request (late after a timeout, or wrong command).",
		}, []string{"smsc"}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mimigw_smpp_window_in_use", Help: "submit_sm awaiting their response, over all binds of the SMSC.",
		}, []string{"smsc"}),
		submits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_submits_total", Help: "submit_sm outcomes (ok, throttled, rejected, timeout, closed, error).",
		}, []string{"smsc", "outcome"}),
		submitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mimigw_smpp_submit_seconds", Help: "Time from submit_sm to its response.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"smsc"}),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_resent_segments_total", Help: "Segments submitted again after their first submit_sm got no answer; each may reach the phone twice.",
		}, []string{"smsc"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_throttle_pauses_total", Help: "Pauses of a bind after ESME_RTHROTTLED or ESME_RMSGQFUL.",
		}, []string{"smsc"}),
		mo: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_mo_total", Help: "MO deliver_sm by outcome (ok, held, part_answered, answered_before_complete, rejected, unavailable, busy, bad).",
		}, []string{"smsc", "outcome"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_receipts_total", Help: "Delivery receipts by outcome (ok, rejected, unavailable, bad, intermediate).",
		}, []string{"smsc", "outcome"}),
		badIDs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_bad_message_ids_total", Help: "Message ids not in the form configured for the SMSC (submit_sm_resp or receipt); their receipts cannot match.",
		}, []string{"smsc", "where"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimigw_smpp_refused_total", Help: "Outbound messages refused before submission, by reason (pumping protection, segment cap, bad text or address).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.binds, m.bindAttempts, m.pdus, m.badPDUs, m.unmatched, m.window,
			m.submits, m.submitSeconds, m.resent, m.throttled, m.mo, m.receipts, m.refused, m.badIDs)
	}
	return m
}
