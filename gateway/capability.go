package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/uri"
)

// capRecord is what the capabilities bucket holds for a number.
type capRecord struct {
	Caps    Capabilities `json:"caps"`
	Checked time.Time    `json:"checked"`
}

// capabilities says what n can do over RCS, from the cache while it is
// fresh, else by asking the network (one query per number at a time on
// this instance). known is false when nothing is known: the number is then
// treated as not reachable by RCS for this message. note says where the
// answer came from, for the message's delivery record.
func (g *Gateway) capabilities(ctx context.Context, n uri.Number) (caps Capabilities, known bool, note *capNote) {
	old, have := g.cachedCaps(ctx, n)
	if have {
		ttl := g.cfg.NegativeTTL
		if old.Caps.Chat {
			ttl = g.cfg.CapabilityTTL
		}
		if g.now().Sub(old.Checked) < ttl {
			g.m.capabilities.WithLabelValues("cached").Inc()
			return old.Caps, true, newCapNote("cached", old.Caps, old.Checked)
		}
	}
	type answer struct {
		caps  Capabilities
		known bool
		note  *capNote
	}
	v, _, _ := g.probes.Do(n.Digits(), func() (any, error) {
		caps, err := g.rcs.Capabilities(ctx, n)
		switch {
		case err == nil:
			g.storeCaps(ctx, n, caps)
			result := "not_rcs"
			if caps.Chat {
				result = "rcs"
			}
			g.m.capabilities.WithLabelValues(result).Inc()
			return answer{caps, true, newCapNote(result, caps, g.now())}, nil
		case errors.Is(err, ErrOffline) && have:
			// An RCS user who is offline stays one.
			g.m.capabilities.WithLabelValues("offline").Inc()
			return answer{old.Caps, true, newCapNote("offline", old.Caps, g.now())}, nil
		}
		g.log.Info("capability query failed", "number", n, "err", err)
		g.m.capabilities.WithLabelValues("error").Inc()
		return answer{note: &capNote{Result: "error", Checked: g.now(), Err: err.Error()}}, nil
	})
	a := v.(answer)
	return a.caps, a.known, a.note
}

// capNote is what a message's delivery record keeps of the capability
// lookup that routed it: the lookup's result (the metric's label: cached,
// rcs, not_rcs, offline, error; or why no lookup was made), what the
// answer said, and when the OPTIONS answer it rests on came.
type capNote struct {
	Result  string    `json:"r"`
	Chat    bool      `json:"chat,omitempty"`
	FT      bool      `json:"ft,omitempty"`
	Revoke  bool      `json:"revoke,omitempty"`
	Checked time.Time `json:"at,omitzero"`
	Err     string    `json:"err,omitempty"`
}

func newCapNote(result string, c Capabilities, checked time.Time) *capNote {
	return &capNote{Result: result, Chat: c.Chat, FT: c.FileTransfer, Revoke: c.Revoke, Checked: checked}
}

func (g *Gateway) cachedCaps(ctx context.Context, n uri.Number) (capRecord, bool) {
	e, err := g.capCache.Get(ctx, n.Digits())
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			g.log.Warn("capability cache unreadable", "number", n, "err", err)
		}
		return capRecord{}, false
	}
	var r capRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return capRecord{}, false
	}
	return r, true
}

func (g *Gateway) storeCaps(ctx context.Context, n uri.Number, caps Capabilities) {
	b, _ := json.Marshal(capRecord{Caps: caps, Checked: g.now()})
	if _, err := g.caps.Put(ctx, n.Digits(), b); err != nil {
		g.log.Warn("capability cache not written", "number", n, "err", err)
	}
}

// forgetRCS records that n answered a MESSAGE as no RCS user does.
func (g *Gateway) forgetRCS(ctx context.Context, n uri.Number) {
	g.storeCaps(ctx, n, Capabilities{})
}
