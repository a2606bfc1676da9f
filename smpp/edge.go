package smpp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/wire"
)

// Edge is the SMS edge: it keeps binds to the configured SMSCs, submits
// what the gateway sends (gateway.SMSSender), and hands MO messages and
// delivery receipts to a gateway.Receiver, answering each deliver_sm only
// after the receiver returned.
type Edge struct {
	cfg     Config
	recv    gateway.Receiver
	log     *slog.Logger
	m       *metrics
	links   []*smscLink                // by priority
	protect atomic.Pointer[protection] // swapped by ReloadProtection

	changeMu sync.Mutex
	changeCh chan struct{}

	running atomic.Bool
	moCtx   context.Context // lives until every bind is down
	rr      atomic.Uint32
}

var _ gateway.SMSSender = (*Edge)(nil)

// NewEdge checks cfg and prepares the edge; Run brings the binds up.
// Metrics are registered on reg (nil: not registered).
func NewEdge(cfg Config, recv gateway.Receiver, log *slog.Logger, reg *prometheus.Registry) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if recv == nil {
		return nil, errors.New("smpp: NewEdge needs a gateway.Receiver")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	e := &Edge{
		cfg:      cfg,
		recv:     recv,
		log:      log.With("channel", "sms"),
		m:        newMetrics(reg),
		changeCh: make(chan struct{}),
		moCtx:    context.Background(),
	}
	e.protect.Store(newProtection(cfg.Protection))
	for _, c := range cfg.SMSCs {
		l, err := newLink(e, c)
		if err != nil {
			return nil, err
		}
		e.links = append(e.links, l)
	}
	slices.SortStableFunc(e.links, func(a, b *smscLink) int { return cmp.Compare(a.cfg.Priority, b.cfg.Priority) })
	return e, nil
}

// Run keeps every SMSC's binds up until ctx ends, then drains each bind's
// window, unbinds, and returns.
func (e *Edge) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("smpp: Edge.Run called twice")
	}
	// MO handlers outlive ctx so that what is in hand at shutdown is still
	// answered; they stop once every bind is down.
	moCtx, stopMO := context.WithCancel(context.WithoutCancel(ctx))
	e.moCtx = moCtx
	defer stopMO()
	var wg sync.WaitGroup
	for _, l := range e.links {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Wait()
	return nil
}

// Ready reports whether some SMSC can take messages now.
func (e *Edge) Ready() error {
	var down []string
	for _, l := range e.links {
		if tx, _ := l.bound(); tx > 0 {
			return nil
		}
		down = append(down, l.cfg.Name)
	}
	return fmt.Errorf("smpp: no SMSC bound for sending (%s)", strings.Join(down, ", "))
}

// changes returns a channel closed at the next change of any bind.
func (e *Edge) changes() <-chan struct{} {
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	return e.changeCh
}

func (e *Edge) changed() {
	e.changeMu.Lock()
	close(e.changeCh)
	e.changeCh = make(chan struct{})
	e.changeMu.Unlock()
}

// Submission bounds.
const (
	// maxResends bounds how often a segment is submitted again after its
	// submit_sm went unanswered (timeout, link loss).
	maxResends = 3
	// maxThrottled bounds the ESME_RTHROTTLED/ESME_RMSGQFUL answers one
	// segment takes before the message is handed back for later.
	maxThrottled = 20
	// routeWait bounds the wait for a bind when none is up, so that a
	// message sent while the SMSC reconnects goes out once it is back.
	routeWait = 5 * time.Second
)

// SendSMS implements gateway.SMSSender.
func (e *Edge) SendSMS(ctx context.Context, m gateway.OutboundSMS) (gateway.SMSSent, error) {
	sent, err := e.sendSMS(ctx, m)
	var r *refusal
	if errors.As(err, &r) {
		e.m.refused.WithLabelValues(r.reason).Inc()
		e.log.Info("message refused", "msg_id", m.ID, "number", m.To, "reason", r.reason, "err", err)
	}
	return sent, err
}

// ReloadProtection replaces the pumping guards (segment cap, destination
// allow-list, sender and destination rates) while running; the rates'
// counts start again.
func (e *Edge) ReloadProtection(p ProtectionConfig) error {
	if err := p.validate(); err != nil {
		return err
	}
	e.protect.Store(newProtection(p))
	return nil
}

func (e *Edge) sendSMS(ctx context.Context, m gateway.OutboundSMS) (gateway.SMSSent, error) {
	dest, err := destAddress(m.To)
	if err != nil {
		return gateway.SMSSent{}, err
	}
	if err := e.protect.Load().checkDestination(m.To); err != nil {
		return gateway.SMSSent{}, err
	}
	// The rates count every message offered, also those refused later for
	// their length: a pumping attempt spends its budget either way.
	if err := e.protect.Load().checkRates(m.From, m.To, time.Now()); err != nil {
		return gateway.SMSSent{}, err
	}
	for range 3 {
		sent, err := e.sendOnce(ctx, m, dest)
		if !errors.Is(err, errReroute) {
			return sent, err
		}
	}
	return gateway.SMSSent{}, errReroute
}

// Segments is how many short messages text costs with the coding of the
// first SMSC (the one of highest priority), the cap on segments aside;
// text that cannot be encoded counts 1 (it is refused when sent).
func (e *Edge) Segments(text string) int {
	opts := e.links[0].cfg.Coding
	opts.MaxSegments = 0
	enc, err := coding.Encode(text, opts)
	if err != nil {
		return 1
	}
	return max(enc.Count, 1)
}

// sendOnce routes, encodes and submits a message.
func (e *Edge) sendOnce(ctx context.Context, m gateway.OutboundSMS, dest address) (gateway.SMSSent, error) {
	l, s, err := e.route(ctx, isAlphanumeric(m.From))
	if err != nil {
		return gateway.SMSSent{}, err
	}
	src, err := sourceAddress(m.From, l.cfg)
	if err != nil {
		return gateway.SMSSent{}, err
	}
	opts := l.cfg.Coding
	if c := e.protect.Load().maxSegments; c > 0 && (opts.MaxSegments == 0 || c < opts.MaxSegments) {
		opts.MaxSegments = c
	}
	enc, err := coding.EncodeRef(m.Text, l.nextRef(), opts)
	switch {
	case errors.Is(err, coding.ErrTooManySegments):
		return gateway.SMSSent{}, refuse(refuseSegments, "%v", err)
	case err != nil:
		return gateway.SMSSent{}, refuse(refuseText, "%v", err)
	}
	if err := e.protect.Load().checkSegments(enc.Count); err != nil {
		return gateway.SMSSent{}, err
	}
	msgs := make([]*wire.Message, len(enc.Segments))
	for i, seg := range enc.Segments {
		w := &wire.Message{
			SourceTON: src.ton, SourceNPI: src.npi, Source: src.addr,
			DestTON: dest.ton, DestNPI: dest.npi, Dest: dest.addr,
			DataCoding: enc.DataCoding,
		}
		if m.Receipt {
			w.RegisteredDelivery = 1
		}
		if seg.ESMClassUDHI {
			w.ESMClass |= wire.ESMClassUDHI
		}
		if seg.Payload {
			w.SetTLV(wire.TagMessagePayload, seg.ShortMessage)
		} else {
			w.ShortMessage = seg.ShortMessage
		}
		if seg.SAR != nil {
			w.SetTLV(wire.TagSarMsgRefNum, []byte{byte(seg.SAR.Ref >> 8), byte(seg.SAR.Ref)})
			w.SetTLV(wire.TagSarTotalSegments, []byte{seg.SAR.Total})
			w.SetTLV(wire.TagSarSegmentSeqnum, []byte{seg.SAR.Seq})
		}
		msgs[i] = w
	}
	ids, err := l.submitAll(ctx, s, msgs, m.ID)
	if err != nil {
		return gateway.SMSSent{}, err
	}
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = l.normalize(id, l.cfg.SubmitIDForm, "submit_sm_resp")
	}
	e.log.Debug("message submitted", "msg_id", m.ID, "number", m.To, "smsc", l.cfg.Name,
		"segments", len(ids), "alphabet", enc.Alphabet.String())
	return gateway.SMSSent{Source: l.cfg.Name, Refs: refs}, nil
}

// route picks the SMSC and bind for a message: the lowest priority number
// with a bind up (round robin among equals), waiting a little when none is.
func (e *Edge) route(ctx context.Context, alnum bool) (*smscLink, *session, error) {
	eligible := e.links[:0:0]
	for _, l := range e.links {
		if !alnum || l.cfg.allowsAlphanumeric() {
			eligible = append(eligible, l)
		}
	}
	if len(eligible) == 0 {
		return nil, nil, refuse(refuseAlphanumSMS, "no SMSC takes alphanumeric senders")
	}
	var wctx context.Context
	for {
		ch := e.changes()
		for i := 0; i < len(eligible); {
			// eligible[i:j] share one priority.
			j := i + 1
			for j < len(eligible) && eligible[j].cfg.Priority == eligible[i].cfg.Priority {
				j++
			}
			n := j - i
			start := int(e.rr.Add(1)) % n
			for k := range n {
				l := eligible[i+(start+k)%n]
				if s := l.pickNow(); s != nil {
					return l, s, nil
				}
			}
			i = j
		}
		if wctx == nil {
			// None is up: wait a little for one, which costs a timer.
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, routeWait)
			defer cancel()
		}
		select {
		case <-ch:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("smpp: %w: no SMSC bound for sending", gateway.ErrUnavailable)
		}
	}
}

// submitAll submits every segment, in order, through bind s, and waits for
// all answers. Segments the SMSC did not answer go again (on s, or on
// another bind of the same SMSC if s is gone), so the message keeps one
// SMSC and one concatenation reference. A permanent refusal of any segment
// fails the message with gateway.ErrRejected.
func (l *smscLink) submitAll(ctx context.Context, s *session, msgs []*wire.Message, msgID string) ([]string, error) {
	ids := make([]string, len(msgs))
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	resends, throttled := 0, 0
	name := l.cfg.Name
	for {
		calls := make([]*call, len(todo))
		var startErr error
		for i, idx := range todo {
			c, err := s.startSubmit(ctx, msgs[idx])
			if err != nil {
				startErr = err
				break
			}
			calls[i] = c
		}
		switch {
		case startErr == nil, errors.Is(startErr, errClosed), errors.Is(startErr, errDraining):
		case errors.Is(startErr, wire.ErrFieldValue):
			// The segment cannot be written as a PDU: it never will be.
			return nil, fmt.Errorf("smpp: submit to %s: %w: %v", name, gateway.ErrRejected, startErr)
		default:
			// ctx ended, or the rate limit cannot be met before its deadline.
			return nil, fmt.Errorf("smpp: submit to %s: %w: %w", name, gateway.ErrUnavailable, startErr)
		}
		var retry []int
		var rejected error
		for i, idx := range todo {
			c := calls[i]
			if c == nil {
				retry = append(retry, idx) // never sent
				continue
			}
			r, err := await(ctx, c)
			if err != nil {
				// Withdraw what still waits for the pace: it must not go
				// out after the message was given up.
				for _, rest := range calls[i:] {
					if rest != nil {
						s.abandon(rest)
					}
				}
				return nil, fmt.Errorf("smpp: submit to %s: %w: %w", name, gateway.ErrUnavailable, err)
			}
			switch {
			case r.err != nil && errors.Is(r.err, errNotSent):
				retry = append(retry, idx) // the SMSC never saw it
			case r.err != nil && (errors.Is(r.err, errTimeout) || errors.Is(r.err, errClosed)):
				// Sent, unanswered: the SMSC may have taken it.
				result := "timeout"
				if errors.Is(r.err, errClosed) {
					result = "closed"
				}
				l.submitResult[result].Inc()
				l.resentCount.Inc()
				resends++
				retry = append(retry, idx)
			case r.err != nil:
				l.submitResult["error"].Inc()
				resends++
				retry = append(retry, idx)
			case r.status == wire.StatusOK:
				l.submitResult["ok"].Inc()
				ids[idx] = r.id
			case r.status == wire.StatusThrottled || r.status == wire.StatusMsgQFul:
				l.submitResult["throttled"].Inc()
				throttled++
				retry = append(retry, idx)
			case wire.Temporary(r.status):
				l.submitResult["error"].Inc()
				resends++
				retry = append(retry, idx)
			default:
				l.submitResult["rejected"].Inc()
				if rejected == nil {
					rejected = fmt.Errorf("smpp: %s refused segment %d of %d: %w: %s (%#x)",
						name, idx+1, len(msgs), gateway.ErrRejected, r.status.Error(), uint32(r.status))
				}
			}
		}
		if rejected != nil {
			if len(msgs) > 1 {
				s.log.Warn("segment refused, message goes out incomplete", "msg_id", msgID, "err", rejected)
			}
			return nil, rejected
		}
		if len(retry) == 0 {
			return ids, nil
		}
		if resends > maxResends*len(msgs) || throttled > maxThrottled*len(msgs) {
			return nil, fmt.Errorf("smpp: submit to %s: %w: %d segments unanswered after %d resends and %d throttled answers",
				name, gateway.ErrUnavailable, len(retry), resends, throttled)
		}
		todo = retry
		if s.draining.Load() || isDone(s.done) {
			if len(todo) == len(msgs) && l.pickNow() == nil {
				// Nothing of the message is at this SMSC and it has no
				// bind left: let the message take another SMSC.
				return nil, errReroute
			}
			pctx, cancel := context.WithTimeout(ctx, routeWait)
			next, err := l.pick(pctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("smpp: submit to %s: %w", name, ctx.Err())
				}
				return nil, fmt.Errorf("smpp: submit to %s: %w: no bind up for %d segments", name, gateway.ErrUnavailable, len(todo))
			}
			s = next
		}
	}
}

// errReroute: the SMSC chosen for a message lost its binds before it took
// any segment.
var errReroute = fmt.Errorf("smpp: %w: SMSC lost its binds", gateway.ErrUnavailable)

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
