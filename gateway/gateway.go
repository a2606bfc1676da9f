package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
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
	salts             sync.Pool // of *saltState keyed with secret
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
// identity must not change when they are made again: the first 16 bytes
// of HMAC-SHA256 over each part followed by a zero byte.
func (g *Gateway) salt(parts ...string) [16]byte {
	// A keyed HMAC and its buffers are reused: keying one costs two
	// SHA-256 states and two pads, for every message from a phone.
	st, _ := g.salts.Get().(*saltState)
	if st == nil {
		st = &saltState{h: hmac.New(sha256.New, g.secret)}
	} else {
		st.h.Reset()
	}
	in := st.in[:0]
	for _, p := range parts {
		in = append(in, p...)
		in = append(in, 0)
	}
	st.h.Write(in)
	st.sum = st.h.Sum(st.sum[:0])
	var s [16]byte
	copy(s[:], st.sum)
	if cap(in) <= maxSaltInput {
		st.in = in
		g.salts.Put(st)
	}
	return s
}

// saltState is a keyed HMAC with its input and output buffers.
type saltState struct {
	h   hash.Hash
	in  []byte
	sum []byte
}

// maxSaltInput bounds the input buffer a saltState keeps for reuse.
const maxSaltInput = 4 << 10

func randomSalt() [16]byte {
	var s [16]byte
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}
