package sip

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/sip/answers"
)

// metrics are the edge's Prometheus series. Labels take values from small
// fixed sets (methods we know, status codes, reasons named in code).
type metrics struct {
	requests      *prometheus.CounterVec   // method, transport
	answers       *prometheus.CounterVec   // method, code
	answerSeconds *prometheus.HistogramVec // method
	retrans       *prometheus.CounterVec   // state: pending, answered
	refused       *prometheus.CounterVec   // reason: untrusted, unauthenticated, replayed, identity, overload, malformed, sessions
	badBodies     *prometheus.CounterVec   // kind
	isComposing   prometheus.Counter
	delivered     *prometheus.CounterVec // kind: message, receipt, revocation
	outbound      *prometheus.CounterVec // method, code (or cancelled, timeout, transport_error)
	outSeconds    *prometheus.HistogramVec
	chatOpen      prometheus.Gauge       // chat sessions toward phones, open or opening
	chatSetups    *prometheus.CounterVec // result: ok, refused, no_answer, failed, limit, held_off
	chatMessages  *prometheus.CounterVec // result: sent, failed, queue_full, fallback
}

func newMetrics(reg *prometheus.Registry, cache *answers.Cache) (*metrics, error) {
	const ns, sub = "mimigw", "sip"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "requests_total", Help: "SIP requests received, retransmissions included."},
			[]string{"method", "transport"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "answers_total", Help: "Final answers sent to SIP requests, by status code."},
			[]string{"method", "code"}),
		answerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "answer_seconds", Help: "Time from a request's arrival to its final answer.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"method"}),
		retrans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "retransmissions_total", Help: "Retransmitted UDP requests: absorbed while pending, or answered from the answer cache."},
			[]string{"state"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "refused_total", Help: "Requests refused before reaching the gateway, by reason."},
			[]string{"reason"}),
		badBodies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bad_bodies_total", Help: "MESSAGE bodies rejected as malformed or unsupported, by kind."},
			[]string{"kind"}),
		isComposing: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "iscomposing_total", Help: "isComposing indications received (answered, not forwarded)."}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "inbound_total", Help: "What inbound MESSAGEs handed to the gateway, by kind."},
			[]string{"kind"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "outbound_total", Help: "Requests the edge sent, by method and the final answer's status code (cancelled, timeout or transport_error when none came)."},
			[]string{"method", "code"}),
		outSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "outbound_seconds", Help: "Time from sending a request to its final answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)},
			[]string{"method"}),
		chatOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "chat_sessions", Help: "Chat sessions the edge opened toward phones that are open or being opened."}),
		chatSetups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "chat_setups_total", Help: "Chat sessions the edge tried to open toward phones, by result (ok, refused, no_answer, failed, limit; held_off when a recent failure with the phone sent the message by pager mode without trying)."},
			[]string{"result"}),
		chatMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "chat_messages_total", Help: "Messages for phones handed to chat sessions, by result (sent, failed, queue_full; fallback when pager mode carried one instead)."},
			[]string{"result"}),
	}
	cacheEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
		Name: "answer_cache_entries", Help: "Answers remembered for UDP retransmissions."},
		func() float64 { return float64(cache.Stats().Entries) })
	cacheEvicted := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "answer_cache_evictions_total", Help: "Answers forgotten before their TTL because the cache was full."},
		func() float64 { return float64(cache.Stats().Evicted) })
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.answers, m.answerSeconds, m.retrans, m.refused,
		m.badBodies, m.isComposing, m.delivered, m.outbound, m.outSeconds, m.chatOpen, m.chatSetups, m.chatMessages, cacheEntries, cacheEvicted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// methodLabel keeps the method label to a fixed set.
func methodLabel(m string) string {
	switch m {
	case "MESSAGE", "OPTIONS", "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "SUBSCRIBE", "NOTIFY", "INFO", "UPDATE", "PRACK", "REFER", "PUBLISH":
		return m
	}
	return "other"
}

func codeLabel(code uint16) string { return strconv.Itoa(int(code)) }
