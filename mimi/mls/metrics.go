package mls

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what the MLS clients do. Labels are bounded sets (an
// operation, a rejection reason), never user or group identifiers.
type metrics struct {
	encrypted       prometheus.Counter
	decrypted       prometheus.Counter
	rejected        *prometheus.CounterVec
	handshakes      *prometheus.CounterVec
	commitsSent     prometheus.Counter
	joins           prometheus.Counter
	kpGenerated     prometheus.Counter
	kpIssued        *prometheus.CounterVec
	kpAvailable     prometheus.Gauge
	leaseConflicts  prometheus.Counter
	storeWrites     prometheus.Counter
	storeBytes      prometheus.Counter
	storeConflicts  prometheus.Counter
	opSeconds       *prometheus.HistogramVec
	refillFailures  prometheus.Counter
	identityCreated prometheus.Counter
}

// Rejection reasons, the values of the reason label.
const (
	reasonMalformed  = "malformed"
	reasonEpoch      = "wrong_epoch"
	reasonReplay     = "replay"
	reasonAuth       = "authentication"
	reasonContent    = "content_mismatch"
	reasonOwn        = "own_message"
	reasonUnknownKP  = "unknown_key_package"
	reasonUsedKP     = "used_key_package"
	reasonPolicy     = "policy"
	reasonCredential = "credential"
)

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		encrypted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "messages_encrypted_total",
			Help: "Application messages encrypted for MLS groups.",
		}),
		decrypted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "messages_decrypted_total",
			Help: "Application messages decrypted and accepted.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "rejected_total",
			Help: "MLS input rejected, by reason.",
		}, []string{"reason"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "handshakes_processed_total",
			Help: "Proposals and commits from others applied, by kind.",
		}, []string{"kind"}),
		commitsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "commits_created_total",
			Help: "Commits created by the gateway's clients.",
		}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "groups_joined_total",
			Help: "Groups joined from a Welcome.",
		}),
		kpGenerated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "key_packages_generated_total",
			Help: "KeyPackages generated.",
		}),
		kpIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "key_packages_issued_total",
			Help: "KeyPackages handed out, by kind (one_time, last_resort).",
		}, []string{"kind"}),
		kpAvailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "key_packages_available",
			Help: "One-time KeyPackages ready across all users at the last refill.",
		}),
		leaseConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "lease_conflicts_total",
			Help: "Group operations refused because another instance holds the group.",
		}),
		storeWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "state_writes_total",
			Help: "Sealed records written to the state bucket.",
		}),
		storeBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "state_written_bytes_total",
			Help: "Bytes of sealed records written to the state bucket.",
		}),
		storeConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "state_conflicts_total",
			Help: "Writes refused because the record changed since it was read.",
		}),
		opSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "operation_seconds",
			Help:    "Time per MLS operation including the state write, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op"}),
		refillFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "key_package_refill_failures_total",
			Help: "Users whose KeyPackage pool could not be refilled in a pass.",
		}),
		identityCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mimigw", Subsystem: "mls", Name: "clients_created_total",
			Help: "MLS client identities created for phone users.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.encrypted, m.decrypted, m.rejected, m.handshakes, m.commitsSent,
			m.joins, m.kpGenerated, m.kpIssued, m.kpAvailable, m.leaseConflicts,
			m.storeWrites, m.storeBytes, m.storeConflicts, m.opSeconds, m.refillFailures,
			m.identityCreated)
	}
	return m
}
