package smpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/smpp/wire"
)

// smscLink is one SMSC: its binds, kept up by one goroutine each, and what
// the SMSC's messages share across binds (concatenation references).
type smscLink struct {
	edge *Edge
	cfg  SMSCConfig
	log  *slog.Logger
	m    *metrics
	tls  *tls.Config

	mu       sync.Mutex
	sessions []*session

	ref atomic.Uint32 // concatenation reference of the last long message

	pdusIn, pdusOut map[pdu.ID]prometheus.Counter
	otherIn         prometheus.Counter
	otherOut        prometheus.Counter

	mo *moState

	// Series of the submission path, resolved once.
	submitResult  map[string]prometheus.Counter
	windowGauge   prometheus.Gauge
	submitLatency prometheus.Observer
	resentCount   prometheus.Counter
}

func newLink(e *Edge, c SMSCConfig) (*smscLink, error) {
	l := &smscLink{
		edge: e,
		cfg:  c,
		log:  e.log.With("smsc", c.Name),
		m:    e.m,
	}
	l.ref.Store(rand.Uint32())
	if c.TLS.Enabled {
		t, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		l.tls = t
	}
	if _, err := c.password(); err != nil {
		return nil, err
	}
	l.pdusIn = map[pdu.ID]prometheus.Counter{}
	l.pdusOut = map[pdu.ID]prometheus.Counter{}
	for id, name := range commandNames {
		l.pdusIn[id] = e.m.pdus.WithLabelValues(c.Name, "in", name)
		l.pdusOut[id] = e.m.pdus.WithLabelValues(c.Name, "out", name)
	}
	l.otherIn = e.m.pdus.WithLabelValues(c.Name, "in", "other")
	l.otherOut = e.m.pdus.WithLabelValues(c.Name, "out", "other")
	l.submitResult = map[string]prometheus.Counter{}
	for _, r := range []string{"ok", "throttled", "rejected", "timeout", "closed", "error"} {
		l.submitResult[r] = e.m.submits.WithLabelValues(c.Name, r)
	}
	l.windowGauge = e.m.window.WithLabelValues(c.Name)
	l.submitLatency = e.m.submitSeconds.WithLabelValues(c.Name)
	l.resentCount = e.m.resent.WithLabelValues(c.Name)
	l.mo = newMOState(l)
	return l, nil
}

var commandNames = map[pdu.ID]string{
	wire.GenericNack:     "generic_nack",
	wire.BindTransceiver: "bind_transceiver", wire.BindTransceiverResp: "bind_transceiver_resp",
	wire.BindTransmitter: "bind_transmitter", wire.BindTransmitterResp: "bind_transmitter_resp",
	wire.BindReceiver: "bind_receiver", wire.BindReceiverResp: "bind_receiver_resp",
	wire.SubmitSM: "submit_sm", wire.SubmitSMResp: "submit_sm_resp",
	wire.DeliverSM: "deliver_sm", wire.DeliverSMResp: "deliver_sm_resp",
	wire.DataSM: "data_sm", wire.DataSMResp: "data_sm_resp",
	wire.Unbind: "unbind", wire.UnbindResp: "unbind_resp",
	wire.EnquireLink: "enquire_link", wire.EnquireLinkResp: "enquire_link_resp",
}

func tlsConfig(c SMSCConfig) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(c.Address)
	t := &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify,
	}
	if c.TLS.ServerName != "" {
		t.ServerName = c.TLS.ServerName
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smpp: smsc %s: tls.ca_file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smpp: smsc %s: tls.ca_file %s holds no PEM certificate", c.Name, c.TLS.CAFile)
		}
		t.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("smpp: smsc %s: tls.cert_file: %w", c.Name, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

func (l *smscLink) countPDUID(dir string, id pdu.ID) {
	m, other := l.pdusIn, l.otherIn
	if dir == "out" {
		m, other = l.pdusOut, l.otherOut
	}
	if c, ok := m[id]; ok {
		c.Inc()
		return
	}
	other.Inc()
}

func (l *smscLink) countPDU(dir string, frame []byte) {
	if len(frame) >= wire.HeaderLen {
		id := pdu.ID(uint32(frame[4])<<24 | uint32(frame[5])<<16 | uint32(frame[6])<<8 | uint32(frame[7]))
		l.countPDUID(dir, id)
	}
}

func (l *smscLink) badPDU(s *session, reason string, err error) {
	l.m.badPDUs.WithLabelValues(l.cfg.Name, reason).Inc()
	s.log.Warn("bad PDU from SMSC", "reason", reason, "err", err)
}

// run keeps the SMSC's binds up until ctx ends.
func (l *smscLink) run(ctx context.Context) {
	var wg sync.WaitGroup
	start := func(mode pdu.ID) {
		wg.Add(1)
		go func() { defer wg.Done(); l.bindLoop(ctx, mode) }()
	}
	for range l.cfg.Binds {
		if l.cfg.BindMode == BindTransmitterReceiver {
			start(wire.BindTransmitter)
			start(wire.BindReceiver)
		} else {
			start(wire.BindTransceiver)
		}
	}
	wg.Wait()
}

// bindLoop binds, serves the session, and binds again after a jittered
// exponential pause, which grows while binds keep failing or dying young
// (an SMSC answering ESME_RALYBND, or dropping every new bind) and starts
// over once a session has lived longer than the longest pause.
func (l *smscLink) bindLoop(ctx context.Context, mode pdu.ID) {
	b := backoff{min: l.cfg.ReconnectMin, max: l.cfg.ReconnectMax}
	gauge := l.m.binds.WithLabelValues(l.cfg.Name, modeName(mode))
	for ctx.Err() == nil {
		s, err := l.connect(ctx, mode)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var be *bindError
			result := "error"
			if errors.As(err, &be) {
				result = "refused"
			}
			l.m.bindAttempts.WithLabelValues(l.cfg.Name, result).Inc()
			d := b.next()
			l.log.Warn("bind failed", "mode", modeName(mode), "addr", l.cfg.Address, "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		l.m.bindAttempts.WithLabelValues(l.cfg.Name, "ok").Inc()
		gauge.Inc()
		l.add(s)
		s.log.Info("bound", "addr", l.cfg.Address)
		up := time.Now()
		err = s.run(ctx)
		l.remove(s)
		gauge.Dec()
		if ctx.Err() != nil {
			return
		}
		if time.Since(up) > l.cfg.ReconnectMax {
			b.reset()
		}
		d := b.next()
		s.log.Warn("link down", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return
		}
	}
}

func (l *smscLink) connect(ctx context.Context, mode pdu.ID) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ResponseTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", l.cfg.Address)
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		tc := tls.Client(conn, l.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	pw, err := l.cfg.password()
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := newSession(l, conn, mode)
	if err := s.bind(ctx, pw); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (l *smscLink) add(s *session) {
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
	l.sessionsChanged()
}

func (l *smscLink) remove(s *session) {
	l.mu.Lock()
	for i, x := range l.sessions {
		if x == s {
			l.sessions = append(l.sessions[:i], l.sessions[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	l.sessionsChanged()
}

func (l *smscLink) sessionsChanged() { l.edge.changed() }

// pickNow returns the submit-capable bind with the most free window, or
// nil.
func (l *smscLink) pickNow() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *session
	for _, s := range l.sessions {
		if !s.canSubmit() || s.draining.Load() {
			continue
		}
		select {
		case <-s.done:
			continue
		default:
		}
		if best == nil || len(s.window) < len(best.window) {
			best = s
		}
	}
	return best
}

// pick waits for a submit-capable bind.
func (l *smscLink) pick(ctx context.Context) (*session, error) {
	for {
		ch := l.edge.changes()
		if s := l.pickNow(); s != nil {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// receivers reports whether a bind that takes deliver_sm is up.
func (l *smscLink) bound() (tx, rx int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sessions {
		if s.draining.Load() {
			continue
		}
		if s.canSubmit() {
			tx++
		}
		if s.mode != wire.BindTransmitter {
			rx++
		}
	}
	return tx, rx
}

// nextRef allocates the concatenation reference of a long message.
func (l *smscLink) nextRef() uint16 { return uint16(l.ref.Add(1)) }

// backoff is a jittered exponential backoff: each pause is drawn between
// half and all of min·2^n, capped at max, so binds that failed together do
// not come back together.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.n = 0 }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
