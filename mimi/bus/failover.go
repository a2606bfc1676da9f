package bus

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A clustered stream cannot store while it has no leader: after its
// leader's node is lost the other replicas elect a new one once they have
// missed its heartbeats for the server's election timeout (4 to 9 s in
// nats-server, not configurable). A publish in that time finds no
// responders; one in flight when the node went never gets its ack. Rather
// than fail each such publish at once (and have the phone network told to
// retry, which it does into the same gap), a publish is sent again, with
// its same ID, until the stream takes it or the publish's time is up
// (PublishTimeout, or the caller's deadline if shorter). Sending again is
// safe: JetStream de-duplicates the message by its ID, and a record
// written create-only reports a duplicate, taken as success.
//
// While a stream is down, the publishes waiting for it do not each poll
// it: one at a time probes (sends its own message again, backing off from
// probeFirst to probeMax), and the first that succeeds wakes the others.

const (
	probeFirst = 50 * time.Millisecond
	probeMax   = 250 * time.Millisecond
	// wakeSpread spreads the publishes woken together when a stream
	// recovers, so that thousands of them do not hit it in one instant.
	wakeSpread = 100 * time.Millisecond
)

// streamGate is the health of one stream as its publishes see it.
type streamGate struct {
	mu      sync.Mutex
	down    bool
	since   time.Time     // when it went down
	up      chan struct{} // closed when a publish succeeds again
	probing bool          // a publish is probing
	lastErr error
	nDown   *atomic.Int32 // the gates' count of those down
}

// gates holds the streams' gates, keyed by gateKey.
type gates struct {
	mu    sync.Mutex
	m     map[string]*streamGate
	nDown atomic.Int32 // how many are down: none on the hot path
}

// succeeded marks the gate of subject up, if any gate is down.
func (g *gates) succeeded(subject string) {
	if g.nDown.Load() > 0 {
		g.get(gateKey(subject)).succeeded()
	}
}

func (g *gates) get(key string) *streamGate {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]*streamGate{}
	}
	sg := g.m[key]
	if sg == nil {
		sg = &streamGate{nDown: &g.nDown}
		g.m[key] = sg
	}
	return sg
}

// downNow reports the gates that are down: key, since when, last error.
func (g *gates) downNow() (keys []string, since []time.Time, errs []error) {
	if g.nDown.Load() == 0 {
		return nil, nil, nil
	}
	g.mu.Lock()
	all := make(map[string]*streamGate, len(g.m))
	for k, v := range g.m {
		all[k] = v
	}
	g.mu.Unlock()
	for k, sg := range all {
		sg.mu.Lock()
		if sg.down {
			keys = append(keys, k)
			since = append(since, sg.since)
			errs = append(errs, sg.lastErr)
		}
		sg.mu.Unlock()
	}
	return keys, since, errs
}

// gateKey names the stream a subject is stored in, as far as publishing
// goes: "$KV.<bucket>" for a record, else the subject's first two tokens
// (mimi.from, mimi.to, mimigw.timer).
func gateKey(subject string) string {
	if i := strings.IndexByte(subject, '.'); i >= 0 {
		if j := strings.IndexByte(subject[i+1:], '.'); j >= 0 {
			return subject[:i+1+j]
		}
	}
	return subject
}

// failed marks the gate down (if it was not) after a publish failed with
// err.
func (sg *streamGate) failed(err error) {
	sg.mu.Lock()
	if !sg.down {
		sg.down, sg.since, sg.up = true, time.Now(), make(chan struct{})
		sg.nDown.Add(1)
	}
	sg.lastErr = err
	sg.mu.Unlock()
}

// succeeded marks the gate up and wakes the publishes waiting on it.
func (sg *streamGate) succeeded() {
	sg.mu.Lock()
	if sg.down {
		sg.down = false
		close(sg.up)
		sg.nDown.Add(-1)
	}
	sg.mu.Unlock()
}

// wait holds a publish that failed on a down stream until it should send
// again: when the stream came back (then after a short spread), or when it
// is this publish's turn to probe (probe true: the caller must call
// endProbe after its attempt). It returns false when deadline or ctx ends
// first.
func (sg *streamGate) wait(ctx context.Context, deadline time.Time, backoff time.Duration) (probe, ok bool) {
	for {
		sg.mu.Lock()
		if !sg.down {
			sg.mu.Unlock()
			return false, true
		}
		up := sg.up
		sg.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return false, false
		}
		t := time.NewTimer(min(left, backoff/2+rand.N(backoff/2+1)))
		select {
		case <-up:
			t.Stop()
			spread := time.NewTimer(rand.N(wakeSpread))
			select {
			case <-spread.C:
			case <-ctx.Done():
				spread.Stop()
				return false, false
			}
			return false, time.Now().Before(deadline)
		case <-ctx.Done():
			t.Stop()
			return false, false
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			return false, false
		}
		sg.mu.Lock()
		if sg.down && !sg.probing {
			sg.probing = true
			sg.mu.Unlock()
			return true, true
		}
		sg.mu.Unlock()
	}
}

func (sg *streamGate) endProbe() {
	sg.mu.Lock()
	sg.probing = false
	sg.mu.Unlock()
}

// retryable reports whether a publish that failed with err may succeed if
// sent again soon: no stream leader or no responders, an ack that never
// came (its server died, or the client moved to another), a connection
// being re-established, too many publishes in flight.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) || errors.Is(err, nats.ErrConnectionClosed) {
		return false
	}
	return transient(err) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs) ||
		errors.Is(err, nats.ErrNoServers)
}

// mayBeStored reports whether a publish that failed with err may still
// have been stored: it reached a server, whose answer was lost.
func mayBeStored(err error) bool {
	return errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, context.DeadlineExceeded)
}
