package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
)

// Gateway moves messages between the phone edges and the MIMI bus.
type Gateway struct {
	cfg  Config
	bus  *bus.Bus
	ids  *identity.Store
	rec  records
	caps jetstream.KeyValue
	// Caches of the buckets read for every message, kept current by Run.
	idCache, capCache *bus.ReadCache
	rcs               RCSSender
	sms               SMSSender
	log               *slog.Logger
	m                 *metrics
	secret            []byte
	probes            singleflight.Group
	now               func() time.Time
	lim               *limiter // pumping limits shared by all instances
}

var _ Receiver = (*Gateway)(nil)

// secretKey holds, in the identity bucket, the key every instance derives
// salts from, so that a message re-sent by a phone gets the same MIMI
// message ID on whichever instance it lands.
const secretKey = "secret.salt"

// readCacheSize bounds each cache of number bindings and capabilities.
const readCacheSize = 1 << 17

// New returns a gateway over an open bus. The edges are attached with
// UseRCS and UseSMS before Run.
func New(ctx context.Context, cfg Config, b *bus.Bus, ids *identity.Store, log *slog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	secret, err := loadSecret(ctx, b.Identity())
	if err != nil {
		return nil, err
	}
	idCache := bus.NewReadCache(b.Identity(), readCacheSize)
	ids.UseCache(idCache)
	return &Gateway{
		cfg:      cfg,
		bus:      b,
		ids:      ids,
		rec:      records{bus: b},
		caps:     b.Capabilities(),
		idCache:  idCache,
		capCache: bus.NewReadCache(b.Capabilities(), readCacheSize),
		log:      log,
		m:        newMetrics(reg),
		secret:   secret,
		now:      time.Now,
		lim:      newLimiter(b, cfg.Limits, reg),
	}, nil
}

func loadSecret(ctx context.Context, kv jetstream.KeyValue) ([]byte, error) {
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	_, err := kv.Create(ctx, secretKey, s)
	if err == nil {
		return s, nil
	}
	if !bus.IsConflict(err) {
		return nil, fmt.Errorf("gateway: create %s: %w", secretKey, err)
	}
	e, err := kv.Get(ctx, secretKey)
	if err != nil {
		return nil, fmt.Errorf("gateway: read %s: %w", secretKey, err)
	}
	if len(e.Value()) != 32 {
		return nil, fmt.Errorf("gateway: %s holds %d bytes, want 32", secretKey, len(e.Value()))
	}
	return e.Value(), nil
}

// UseRCS attaches the RCS edge.
func (g *Gateway) UseRCS(s RCSSender) { g.rcs = s }

// UseSMS attaches the SMS edge.
func (g *Gateway) UseSMS(s SMSSender) { g.sms = s }

// Identity returns the number bindings.
func (g *Gateway) Identity() *identity.Store { return g.ids }

// Run delivers MIMI messages to phones and fires delivery timers until ctx
// is cancelled, then waits for the messages in flight.
func (g *Gateway) Run(ctx context.Context) error {
	if g.rcs == nil && g.sms == nil {
		return errors.New("gateway: no edge to deliver by (neither RCS nor SMS is configured)")
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.idCache.Run(ctx) })
	eg.Go(func() error { return g.capCache.Run(ctx) })
	eg.Go(func() error { return g.bus.ConsumeToPhone(ctx, g.cfg.Workers, g.handleToPhone) })
	eg.Go(func() error { return g.bus.ConsumeTimers(ctx, g.cfg.TimerWorkers, g.handleTimer) })
	err := eg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// salt derives a 16-byte salt from the gateway secret, for messages whose
// identity must not change when they are made again.
func (g *Gateway) salt(parts ...string) [16]byte {
	h := hmac.New(sha256.New, g.secret)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var s [16]byte
	copy(s[:], h.Sum(nil))
	return s
}

func randomSalt() [16]byte {
	var s [16]byte
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}
