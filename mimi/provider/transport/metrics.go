package transport

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values beyond the endpoint names.
const (
	labelDirectory = "directory" // the well-known directory
	labelUnknown   = "unknown"   // a path that names no endpoint
)

// Outcomes of an outbound request (Client.Do), as metric labels.
const (
	outcomeOK       = "ok"        // 2xx
	outcomeRefused  = "refused"   // another status, returned at once
	outcomeGaveUp   = "gave_up"   // Attempts used up on 429, 5xx or network errors
	outcomeCanceled = "canceled"  // the caller's context ended first
	outcomeNoRoute  = "no_route"  // no directory, or no entry for the endpoint
	outcomeBadInput = "bad_input" // the call itself was wrong (a body on a GET)
)

// serverMetrics counts what the Server answers. Labels are fixed sets:
// endpoint names, "directory", "unknown", and status codes.
type serverMetrics struct {
	requests *prometheus.CounterVec   // endpoint, code
	seconds  *prometheus.HistogramVec // endpoint
}

// clientMetrics counts what the Client sends. Peers are the configured
// domains only.
type clientMetrics struct {
	requests    *prometheus.CounterVec   // peer, endpoint, outcome
	attempts    *prometheus.CounterVec   // peer, endpoint, code ("error" for no answer)
	seconds     *prometheus.HistogramVec // peer, endpoint
	directories *prometheus.CounterVec   // peer, outcome (ok, error)
}

var secondsBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

const ns, sub = "mimigw", "provider"

func newServerMetrics(reg *prometheus.Registry) *serverMetrics {
	return &serverMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests from peers answered, by endpoint (or directory, unknown) and status code.",
		}, []string{"endpoint", "code"})),
		seconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_seconds",
			Help:    "Time from a request's headers to its answer, body reading and handler included, by endpoint.",
			Buckets: secondsBuckets,
		}, []string{"endpoint"})),
	}
}

func newClientMetrics(reg *prometheus.Registry) *clientMetrics {
	return &clientMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "outbound_requests_total",
			Help: "Requests to peers, by peer, endpoint and outcome (ok, refused, gave_up, canceled, no_route, bad_input).",
		}, []string{"peer", "endpoint", "outcome"})),
		attempts: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "outbound_attempts_total",
			Help: "Attempts at requests to peers, by peer, endpoint and status code (error: no answer).",
		}, []string{"peer", "endpoint", "code"})),
		seconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "outbound_attempt_seconds",
			Help:    "Time of one attempt at a request to a peer, until its answer's body is read, by peer and endpoint.",
			Buckets: secondsBuckets,
		}, []string{"peer", "endpoint"})),
		directories: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "directory_fetches_total",
			Help: "Fetches of peers' directories, by peer and outcome (ok, error).",
		}, []string{"peer", "outcome"})),
	}
}

// register adds c to reg, or returns the collector already registered
// under its name, so servers and clients can share one registry.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
