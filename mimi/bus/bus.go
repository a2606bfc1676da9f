package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors callers branch on.
var (
	// ErrUnavailable: the bus cannot take or settle the message now (no
	// server, no stream leader, timeout, disconnected); retry later. A
	// gateway answers the phone network with a retryable failure.
	ErrUnavailable = errors.New("bus unavailable")
	// ErrClosed: the Bus was closed.
	ErrClosed = errors.New("bus closed")
	// ErrTooLarge: the message with its headers is larger than the server
	// takes (its max_payload, or the stream's largest message); sending it
	// again will not help.
	ErrTooLarge = errors.New("message too large for the bus")
)

// Bus is a connection to the NATS JetStream bus (docs/architecture.md, bus
// contract), with its streams, buckets and consumers in place. It is safe
// for concurrent use.
type Bus struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	srv       *Server // the embedded server, nil with an external one
	clientURL string
	nc        atomic.Pointer[nats.Conn]
	js        jetstream.JetStream

	gates gates // the health of each stream as its publishes see it (failover.go)

	probeMu  sync.Mutex // Ready's last look at the server
	probeAt  time.Time
	probeErr error

	identity, capabilities jetstream.KeyValue
	deliveries             []jetstream.KeyValue // the shards, see deliveries.go

	closeOnce sync.Once
	closed    chan struct{}

	now func() time.Time // the clock records are aged by (tests move it)
}

// Open connects to the bus (starting the embedded server when cfg.URL is
// empty) and creates or updates its streams, buckets and consumers to
// match cfg. It never deletes any of them. It waits for a server that is
// not reachable yet until ctx is done. Metrics are registered on reg; a nil
// reg keeps them private. One registry takes one Bus.
func Open(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*Bus, error) {
	return open(ctx, cfg, log, reg, true)
}

// Attach connects to a running gateway's bus at cfg.URL without creating
// or changing anything on it: the streams and buckets must exist. Tools
// (mimigw send, mimigw numbers) use it, so that their settings never
// overwrite the gateway's. It has no consumers of its own; ConsumeToPhone
// and ConsumeTimers must not be called on it.
func Attach(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("bus: attach: %w", &ConfigError{Key: "url", Problem: "a server URL is needed to attach to"})
	}
	return open(ctx, cfg, log, nil, false)
}

func open(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry, provision bool) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus: config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := log // the embedded server's log names its own component
	log = log.With("component", "bus")
	password, token, err := cfg.secrets()
	if err != nil {
		return nil, fmt.Errorf("bus: config: %w", err)
	}
	b := &Bus{cfg: cfg, log: log, closed: make(chan struct{}), now: time.Now}
	b.m = newMetrics(b.nc.Load)
	b.m.lag = newLagCollector(b)

	b.clientURL = cfg.URL
	if cfg.URL == "" {
		if b.srv, err = StartServer(cfg.Embedded, cfg.User, password, token, base); err != nil {
			return nil, err
		}
		b.clientURL = b.srv.ClientURL()
	}
	ok := false
	defer func() {
		if !ok {
			if nc := b.nc.Load(); nc != nil {
				nc.Close()
			}
			if b.srv != nil {
				b.srv.Shutdown()
			}
		}
	}()

	if err := b.connect(ctx, password, token); err != nil {
		return nil, err
	}
	if !provision {
		if err := b.bind(ctx); err != nil {
			return nil, err
		}
		ok = true
		return b, nil
	}
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	b.watchExhausted()
	// Registered last, so that a failed Open can be retried on the same
	// registry.
	if reg != nil {
		if err := b.m.register(reg); err != nil {
			return nil, fmt.Errorf("bus: metrics: %w", err)
		}
	}
	ok = true
	log.Info("bus open", "url", RedactURL(b.clientURL), "embedded", b.srv != nil)
	return b, nil
}

// reconnectDelay backs off from 100 ms to 2 s, with jitter so that many
// gateway instances do not return to a restarted server in step.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond << min(attempts, 5)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Waiting for a server at start: the first line after connectLogFirst, then
// one every connectLogEvery, so that an operator sees what the gateway waits
// for instead of silence.
const (
	connectLogFirst = time.Second
	connectLogEvery = 5 * time.Second
)

func (b *Bus) connect(ctx context.Context, password, token string) error {
	cfg := b.cfg
	// Failed attempts at reaching a server, and the last one's error: with
	// RetryOnFailedConnect the first connection is tried like a reconnect.
	var failed atomic.Int64
	var lastErr atomic.Pointer[error]
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		// No reconnect buffer: a publish while disconnected fails at once
		// (and the caller answers "retry") instead of being sent later,
		// after its caller was already told it failed.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		// A node that is gone without closing its connections (host down,
		// network cut) is noticed after about three unanswered pings, so
		// 6 s instead of a minute; a killed process is noticed at once.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		// Dialling a node that does not answer gives up quickly and the
		// client moves to the next URL.
		nats.Timeout(time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			b.m.disconnects.Inc()
			b.log.Warn("bus disconnected", "err", err)
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			failed.Add(1)
			if err != nil {
				lastErr.Store(&err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.m.reconnects.Inc()
			b.log.Info("bus reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			b.log.Debug("bus connected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.log.Debug("bus connection closed") }),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			b.m.asyncErrors.Inc()
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("bus async error", "subject", subject, "err", err)
		}),
	}
	if cfg.TLS.enabled() {
		// Secure first: it replaces the TLS config the others amend.
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLS.ServerName}))
		if cfg.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
		}
		if cfg.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
		}
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return fmt.Errorf("bus: nkey_file %s: %w", cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	case token != "":
		opts = append(opts, nats.Token(token))
	case password != "":
		opts = append(opts, nats.UserInfo(cfg.User, password))
	}
	if b.srv != nil {
		// Our own connection to our own server skips the TCP stack: it
		// publishes about 1.7 times as fast (BenchmarkPublishEmbedded).
		// Other clients (mimigw send) still use ClientURL.
		opts = append(opts, nats.InProcessServer(b.srv.ns))
	}
	url := RedactURL(b.clientURL)
	nc, err := nats.Connect(b.clientURL, opts...)
	if err != nil {
		return b.connectError(fmt.Sprintf("cannot connect to %s: %v", url, err), err)
	}
	b.nc.Store(nc)
	// RetryOnFailedConnect returns at once; wait for the first connection
	// so that Open fails plainly when the server never comes, saying
	// every few seconds what it waits for.
	start := time.Now()
	nextLog := start.Add(connectLogFirst)
	last := func() error {
		if p := lastErr.Load(); p != nil {
			return *p
		}
		if err := nc.LastError(); err != nil {
			return err
		}
		return errors.New("none yet")
	}
	for !nc.IsConnected() {
		if nc.IsClosed() {
			return b.connectError(fmt.Sprintf("connection to %s closed before it was up (last error: %v)", url, last()), nats.ErrConnectionClosed)
		}
		select {
		case <-ctx.Done():
			return b.connectError(fmt.Sprintf("no NATS server answered at %s: %d attempts in %s, last error: %v; stopped waiting: %v",
				url, failed.Load()+1, time.Since(start).Round(time.Millisecond), last(), ctx.Err()), errors.Join(ErrUnavailable, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
		if now := time.Now(); now.After(nextLog) {
			nextLog = now.Add(connectLogEvery)
			b.log.Warn("waiting for the NATS server", "url", url, "attempt", failed.Load()+1,
				"waited", now.Sub(start).Round(time.Second), "last_err", last().Error())
		}
	}
	if waited := time.Since(start); waited > connectLogFirst {
		b.log.Info("NATS server reached", "url", url, "attempt", failed.Load()+1, "waited", waited.Round(time.Millisecond))
	}
	// Publishes go out without waiting on each other and each waits for
	// its own ack (see publish), sending again when none came within the
	// ack timeout; the async timeout drops the futures of acks that never
	// came.
	b.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.PublishTimeout),
		jetstream.WithPublishAsyncTimeout(min(cfg.PublishAckTimeout, cfg.PublishTimeout)), jetstream.WithPublishAsyncMaxPending(maxPendingPublishes))
	if err != nil {
		return fmt.Errorf("bus: jetstream: %w", err)
	}
	return nil
}

// connectError is a failure to reach the server, on one line. With an
// external server it names the bus.url key, the one to check.
func (b *Bus) connectError(problem string, cause error) error {
	if b.cfg.URL == "" {
		return fmt.Errorf("bus: embedded server: %s: %w", problem, cause)
	}
	return fmt.Errorf("bus: %w", &ConfigError{Key: "url", Problem: problem, Err: cause})
}

// ensure creates or updates every stream, bucket and consumer. Each call
// is idempotent; the server keeps what it holds and adopts the new limits.
func (b *Bus) ensure(ctx context.Context) error {
	cfg := b.cfg
	streams := []jetstream.StreamConfig{
		{
			Name:        cfg.ToPhoneStream,
			Description: "MIMI messages for phone users, to be delivered by the gateway",
			Subjects:    []string{ToPhoneSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.DuplicateWindow,
			MaxBytes:    cfg.ToPhoneMaxBytes,
			MaxMsgs:     -1,
			// A full work queue refuses new work rather than dropping old.
			Discard: jetstream.DiscardNew,
		},
		{
			Name:        cfg.FromPhoneStream,
			Description: "MIMI messages and reports from phone users",
			Subjects:    []string{FromPhoneSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.DuplicateWindow,
			MaxAge:      cfg.FromPhoneMaxAge,
			MaxBytes:    cfg.FromPhoneMaxBytes,
			MaxMsgs:     -1,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        cfg.TimerStream,
			Description: "mimigw durable timers, shared by gateway instances",
			Subjects:    []string{timerPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxMsgs:     -1,
			MaxBytes:    -1,
			Discard:     jetstream.DiscardNew,
		},
	}
	for _, sc := range streams {
		if err := b.retry(ctx, "stream "+sc.Name, func(ctx context.Context) error {
			_, err := b.js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return fmt.Errorf("bus: stream %s: %w", sc.Name, err)
		}
	}
	buckets := []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&b.identity, jetstream.KeyValueConfig{Bucket: cfg.IdentityBucket,
			Description: "phone number bindings"}},
		{&b.capabilities, jetstream.KeyValueConfig{Bucket: cfg.CapabilitiesBucket,
			Description: "RCS capability cache", TTL: cfg.CapabilitiesTTL}},
	}
	for _, bk := range buckets {
		bk.cfg.Storage = jetstream.FileStorage
		bk.cfg.Replicas = cfg.Replicas
		if err := b.retry(ctx, "bucket "+bk.cfg.Bucket, func(ctx context.Context) error {
			kv, err := b.js.CreateOrUpdateKeyValue(ctx, bk.cfg)
			*bk.kv = kv
			return err
		}); err != nil {
			return fmt.Errorf("bus: bucket %s: %w", bk.cfg.Bucket, err)
		}
	}
	if err := b.provisionDeliveries(ctx); err != nil {
		return err
	}
	for _, cc := range []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{
		{cfg.ToPhoneStream, b.toPhoneConsumerConfig()},
		{cfg.TimerStream, b.timerConsumerConfig()},
	} {
		if err := b.retry(ctx, "consumer "+cc.cfg.Durable, func(ctx context.Context) error {
			_, err := b.js.CreateOrUpdateConsumer(ctx, cc.stream, cc.cfg)
			return err
		}); err != nil {
			return fmt.Errorf("bus: consumer %s on %s: %w", cc.cfg.Durable, cc.stream, err)
		}
	}
	return nil
}

// bind finds the buckets and checks that the streams exist, changing
// nothing. A server without JetStream, or without the gateway's streams
// and buckets, is refused at once with an error naming bus.url: it is not
// a mimigw bus (or the gateway never ran on it).
func (b *Bus) bind(ctx context.Context) error {
	url := RedactURL(b.clientURL)
	notMimigw := func(what string, err error) error {
		return fmt.Errorf("bus: %w", &ConfigError{Key: "url", Err: err, Problem: fmt.Sprintf(
			"%s is not a mimigw bus: %s (is it the gateway's NATS server, and has the gateway run on it? tools never create streams)", url, what)})
	}
	// JetStream answers within a moment on a server that has it; a server
	// still starting gets a few tries.
	for try := 1; ; try++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := b.js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		}
		notEnabled := errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
		if !notEnabled && !transient(err) {
			return fmt.Errorf("bus: jetstream at %s: %w", url, err)
		}
		if try == 3 || ctx.Err() != nil {
			if notEnabled {
				return notMimigw("JetStream is not enabled there", err)
			}
			return fmt.Errorf("bus: jetstream at %s: %w", url, errors.Join(ErrUnavailable, err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	for _, name := range []string{b.cfg.ToPhoneStream, b.cfg.FromPhoneStream} {
		if err := b.retry(ctx, "stream "+name, func(ctx context.Context) error {
			_, err := b.js.Stream(ctx, name)
			return err
		}); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return notMimigw("it has no stream "+name, err)
			}
			return fmt.Errorf("bus: stream %s: %w", name, err)
		}
	}
	for _, bk := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&b.identity, b.cfg.IdentityBucket}, {&b.capabilities, b.cfg.CapabilitiesBucket}} {
		if err := b.retry(ctx, "bucket "+bk.name, func(ctx context.Context) error {
			kv, err := b.js.KeyValue(ctx, bk.name)
			*bk.kv = kv
			return err
		}); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return notMimigw("it has no bucket "+bk.name, err)
			}
			return fmt.Errorf("bus: bucket %s: %w", bk.name, err)
		}
	}
	return b.bindDeliveries(ctx)
}

// toPhoneConsumerConfig shapes the shared durable consumer. The server's
// BackOff[i] is the ack wait of delivery i+1, so each step is the handler's
// time (AckWait) plus the configured pause: an instance that dies mid-work
// has its message redelivered after both. One delivery beyond MaxDeliver is
// allowed so that a message whose last attempt was never settled (its
// instance died) reaches a handler once more, marked LastAttempt, instead
// of lingering unseen.
func (b *Bus) toPhoneConsumerConfig() jetstream.ConsumerConfig {
	backoff := make([]time.Duration, len(b.cfg.Backoff))
	for i, d := range b.cfg.Backoff {
		backoff[i] = b.cfg.AckWait + d
	}
	return jetstream.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		Description:   "gateway instances delivering MIMI messages to phones",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       backoff[0],
		MaxDeliver:    b.cfg.MaxDeliver + 1,
		BackOff:       backoff,
		MaxAckPending: b.cfg.MaxAckPending,
		FilterSubject: ToPhoneSubjects,
	}
}

// timerConsumerConfig shapes the timer consumer: no delivery limit (a
// timer is NAKed until due) and no limit on timers held, so that timers
// far in the future never block those due now.
func (b *Bus) timerConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       b.cfg.Consumer + "-timers",
		Description:   "gateway instances firing durable timers",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		FilterSubject: timerPrefix + ">",
	}
}

// KeyValue creates a bucket, or updates it to cfg, for a part of the
// gateway that keeps its own (MLS state, provider rooms, limits), waiting
// out what the bus's own setup waits out: a cluster whose nodes are still
// joining cannot place a replicated bucket yet.
func (b *Bus) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.retry(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = b.js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
}

// retry runs f until it succeeds, fails for good, or ctx is done. Setup
// meets transient failures after a (re)start: no JetStream leader yet, no
// responders while the server recovers its store.
func (b *Bus) retry(ctx context.Context, what string, f func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for try := 1; ; try++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		if try > 1 { // the first failure is common while a server starts
			b.log.Warn("bus setup waiting for the server", "step", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ErrUnavailable, err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// transient reports whether err may go away on its own.
func transient(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting),
		// Another instance opening at the same moment created the stream
		// (a bucket shard, then bounded it) between this one's look and
		// its create; the next try updates what is there.
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503s: cluster or stream without a leader, insufficient resources
		// while recovering. No suitable peers for placement: a cluster
		// whose nodes are still joining (or one down) cannot place a
		// replicated stream yet.
		return apiErr.Code == 503 || apiErr.ErrorCode == jsErrCodeClusterNoPeers
	}
	return false
}

// jsErrCodeClusterNoPeers is the server's "no suitable peers for
// placement" error.
const jsErrCodeClusterNoPeers = 10005

// watchExhausted counts and logs messages the server gave up on: they
// reached their delivery limit without being settled. One instance (a
// queue group) reports each.
func (b *Bus) watchExhausted() {
	nc := b.nc.Load()
	for _, c := range []struct{ stream, consumer, role string }{
		{b.cfg.ToPhoneStream, b.cfg.Consumer, roleToPhone},
	} {
		subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", c.stream, c.consumer)
		role := c.role
		_, err := nc.QueueSubscribe(subject, c.consumer, func(m *nats.Msg) {
			b.m.exhausted.WithLabelValues(role).Inc()
			b.log.Error("bus message exhausted its deliveries unsettled; it stays in the stream, undelivered",
				"stream", c.stream, "consumer", c.consumer, "advisory", string(m.Data))
		})
		if err != nil {
			b.log.Warn("bus cannot watch delivery advisories", "subject", subject, "err", err)
		}
	}
}

// Close drains the connection (in-flight acks and publishes complete) and
// stops the embedded server. Consumers still running return ErrClosed.
func (b *Bus) Close() {
	b.closeOnce.Do(func() {
		close(b.closed)
		nc := b.nc.Load()
		// Drain lets acks and publishes in flight finish; it fails at once
		// when the connection is down or already closed.
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		deadline := time.Now().Add(35 * time.Second) // nats.DefaultDrainTimeout is 30 s
		for !nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		nc.Close()
		if b.srv != nil {
			b.srv.Shutdown()
		}
		b.log.Info("bus closed")
	})
}

// Ready reports nil when the bus can store: the connection is up and
// neither a publish's stream (failover.go) nor a probe of the streams the
// gateway writes what phones send finds one without a leader. A stream a
// publish found down counts until one succeeds on it again; when none
// is trying, Ready asks the stream itself.
func (b *Bus) Ready() error {
	select {
	case <-b.closed:
		return ErrClosed
	default:
	}
	nc := b.nc.Load()
	if !nc.IsConnected() {
		return fmt.Errorf("bus: %w: %s", ErrUnavailable, nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys, since, errs := b.gates.downNow()
	for i, key := range keys {
		if time.Since(since[i]) < readyGrace {
			continue
		}
		if name := b.streamOf(key); name != "" {
			if err := b.canStore(ctx, name); err == nil {
				b.gates.get(key).succeeded()
				continue
			}
		}
		return fmt.Errorf("bus: %w: publishes on %s failing for %s: %v", ErrUnavailable, key,
			time.Since(since[i]).Round(100*time.Millisecond), errs[i])
	}
	return b.probe(ctx)
}

// readyGrace is how long a stream may fail publishes before Ready says so:
// a failure that the next sending overcomes is no reason to stop traffic.
const readyGrace = 500 * time.Millisecond

// probeEvery bounds how often Ready asks the server.
const probeEvery = time.Second

// probe asks whether the from-phone stream has a leader, at most once per
// probeEvery; in between it gives the last answer.
func (b *Bus) probe(ctx context.Context) error {
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	if time.Since(b.probeAt) < probeEvery {
		return b.probeErr
	}
	err := b.canStore(ctx, b.cfg.FromPhoneStream)
	b.probeAt, b.probeErr = time.Now(), err
	return err
}

// canStore asks for a stream's info: it can store when it has a leader.
// (A replica answers for a stream without a leader, saying so.)
func (b *Bus) canStore(ctx context.Context, name string) error {
	st, err := b.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w: %w", name, ErrUnavailable, err)
	}
	if c := st.CachedInfo().Cluster; c != nil && c.Leader == "" {
		return fmt.Errorf("bus: stream %s: %w: no leader", name, ErrUnavailable)
	}
	return nil
}

// streamOf names the stream behind a gate key, or "" when unknown.
func (b *Bus) streamOf(key string) string {
	switch {
	case strings.HasPrefix(key, "$KV."):
		return "KV_" + strings.TrimPrefix(key, "$KV.")
	case key == gateKey(FromPhoneSubjects):
		return b.cfg.FromPhoneStream
	case key == gateKey(ToPhoneSubjects):
		return b.cfg.ToPhoneStream
	case key == gateKey(timerPrefix+"x"):
		return b.cfg.TimerStream
	}
	return ""
}

// ClientURL is where other clients (such as `mimigw send`) reach the same
// bus: the embedded server's URL, or the configured external URLs.
func (b *Bus) ClientURL() string { return b.clientURL }

// Config returns the configuration the Bus was opened with.
func (b *Bus) Config() Config { return b.cfg }

// Conn is the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc.Load() }

// MaxPayload is the most bytes, headers and data together, the server
// takes in one message (its max_payload, 1 MB unless configured); 0 while
// the Bus has not connected yet.
func (b *Bus) MaxPayload() int64 {
	if nc := b.nc.Load(); nc != nil {
		return nc.MaxPayload()
	}
	return 0
}

// JetStream is the JetStream context on Conn.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Identity is the number-binding bucket.
func (b *Bus) Identity() jetstream.KeyValue { return b.identity }

// Capabilities is the RCS capability cache bucket.
func (b *Bus) Capabilities() jetstream.KeyValue { return b.capabilities }

// RedactURL hides the credentials (user, password, token) written into a
// list of server URLs, for logs, errors and status pages.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndexByte(p, '@'); at >= 0 {
			scheme := ""
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				scheme = p[:j+3]
			}
			parts[i] = scheme + "[redacted]" + p[at:]
		}
	}
	return strings.Join(parts, ",")
}
