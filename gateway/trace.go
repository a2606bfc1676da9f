package gateway

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Trace is what the bus holds about the messages a search key names: the
// steps of each, read from its delivery record (record.go). A step the
// record does not hold the time of has a zero At; nothing is shown that
// the records do not say.
type Trace struct {
	Key string
	// As lists how the key was read (a MIMI message ID, an imdn
	// Message-ID, an SMSC message ID, a phone number).
	As       []string
	Messages []MessageTrace
	// Notes say plainly what the search covers and what it cannot find.
	Notes []string
}

// MessageTrace is one message and what happened to it.
type MessageTrace struct {
	ID        string
	Direction string // "to phone" or "from phone"
	Phone     uri.Number
	// Peer is the MIMI sender of a message to a phone, or the number a
	// phone user wrote to.
	Peer    string
	Channel Channel
	State   string
	FoundBy string // the record or map the key led to
	Steps   []Step
}

// Step is one thing that happened to a message.
type Step struct {
	At     time.Time // zero: the record does not hold the time
	Name   string
	Detail string
	// Timeless marks a step that has no time of its own (the channel
	// taken, the state now).
	Timeless bool
}

// When is the step's time in UTC with milliseconds, "not recorded", or
// empty for a timeless step.
func (s Step) When() string {
	switch {
	case s.Timeless:
		return ""
	case s.At.IsZero():
		return "not recorded"
	}
	return s.At.UTC().Format("2006-01-02 15:04:05.000Z")
}

// traceLimit bounds the messages a search by phone number shows.
const traceLimit = 20

// Trace looks key up in the delivery records: a MIMI message ID, an imdn
// Message-ID the gateway sent (ref.rcs), an SMSC message ID (ref.sms, any
// SMSC), or a phone number in E.164 (its latest messages, from the
// from-phone stream). It changes nothing on the bus.
func (g *Gateway) Trace(ctx context.Context, key string) (*Trace, error) {
	return TraceBus(ctx, g.bus, key, "")
}

// TraceBus is Trace over any bus connection (the gateway's, or a tool's
// Attach); region reads national phone numbers.
func TraceBus(ctx context.Context, b *bus.Bus, key, region string) (*Trace, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, fmt.Errorf("gateway: trace: empty key: %w", ErrRejected)
	}
	tr := &tracer{b: b, rec: records{bus: b}, t: &Trace{Key: key}, seen: map[string]bool{}}
	if err := tr.search(ctx, key, region); err != nil {
		return nil, err
	}
	return tr.t, nil
}

type tracer struct {
	b    *bus.Bus
	rec  records
	t    *Trace
	seen map[string]bool
}

func (tr *tracer) note(format string, args ...any) {
	tr.t.Notes = append(tr.t.Notes, fmt.Sprintf(format, args...))
}

func (tr *tracer) search(ctx context.Context, key, region string) error {
	if id, err := content.ParseMessageID(strings.ToLower(key)); err == nil {
		tr.t.As = append(tr.t.As, "MIMI message ID")
		found, err := tr.byID(ctx, id.String())
		if err != nil {
			return err
		}
		if !found {
			tr.note("No delivery record holds this ID. Records are written once the phone network took a message " +
				"(to a phone) or once it was stored on the bus (from a phone): a message refused, failed before sending " +
				"or still queued on mimi.to.tel has none, nor has a status report; records also go after bus.deliveries_ttl " +
				"or when bus.deliveries_max_records pushes them out.")
		}
		return nil
	}
	before := len(tr.t.Messages)
	tr.t.As = append(tr.t.As, "imdn Message-ID", "SMSC message ID")
	if err := tr.byRCSRef(ctx, key); err != nil {
		return err
	}
	if err := tr.bySMSCRef(ctx, key); err != nil {
		return err
	}
	if n, ok := phoneNumber(key, region); ok {
		tr.t.As = append(tr.t.As, "phone number "+string(n))
		if err := tr.byNumber(ctx, n); err != nil {
			return err
		}
	}
	if len(tr.t.Messages) == before {
		tr.note("Nothing found. An imdn Message-ID is found for RCS messages the gateway sent to phones; the " +
			"imdn Message-ID of a phone user's own message is not indexed (search by its MIMI message ID or the " +
			"phone's number). SIP Call-IDs are not recorded. SMSC message IDs are searched as the gateway stores " +
			"them (in each SMSC's configured id form).")
	}
	return nil
}

// byID adds every record of message id: each phone user's copy of it
// (out.<id>.<digits>, in any shard, or out.<id> from before copies were
// kept apart) or the phone user's message (in.<id>).
func (tr *tracer) byID(ctx context.Context, id string) (bool, error) {
	keys, err := tr.keys(ctx, outKey(copyKey{id: id})+".*")
	if err != nil {
		return false, err
	}
	copies := []copyKey{{id: id}}
	for _, key := range keys {
		if k, err := parseCopyKey(strings.TrimPrefix(key, "out.")); err == nil {
			copies = append(copies, k)
		}
	}
	found := false
	for _, k := range copies {
		ok, err := tr.byCopy(ctx, k, "")
		if err != nil {
			return false, err
		}
		found = found || ok
	}
	ok, err := tr.byIn(ctx, id, "")
	return found || ok, err
}

// byCopy adds the message sent to a phone whose record is the copy k's;
// an empty foundBy names the record.
func (tr *tracer) byCopy(ctx context.Context, k copyKey, foundBy string) (bool, error) {
	if tr.seen[outKey(k)] {
		return true, nil
	}
	var out outRecord
	key, err := tr.rec.getOut(ctx, k, &out)
	switch {
	case errors.Is(err, errNoRecord) || tr.seen[key]:
		return err == nil, nil
	case err != nil:
		return false, err
	}
	tr.seen[key] = true
	tr.t.Messages = append(tr.t.Messages, outTrace(k.id, &out, cmp.Or(foundBy, "its delivery record "+key)))
	return true, nil
}

// byIn adds the phone user's message id from its in.<id> record; an empty
// foundBy names the record.
func (tr *tracer) byIn(ctx context.Context, id, foundBy string) (bool, error) {
	key := inKey(id)
	if tr.seen[key] {
		return true, nil
	}
	var in inRecord
	_, err := tr.rec.get(ctx, key, &in)
	switch {
	case errors.Is(err, errNoRecord):
		return false, nil
	case err != nil:
		return false, err
	}
	tr.seen[key] = true
	tr.t.Messages = append(tr.t.Messages, inTrace(id, &in, cmp.Or(foundBy, "its delivery record "+key)))
	return true, nil
}

func (tr *tracer) byRef(ctx context.Context, key, foundBy string) error {
	var ref refRecord
	_, err := tr.rec.get(ctx, key, &ref)
	switch {
	case errors.Is(err, errNoRecord):
		return nil
	case err != nil:
		return err
	case ref.ID == "":
		tr.note("%s holds %d receipt(s) that came before any message was recorded under it (held until one is).", foundBy, len(ref.Early))
		return nil
	}
	found, err := tr.byCopy(ctx, ref.copyOf(), foundBy)
	if err == nil && !found {
		tr.note("%s names message %s, whose record is gone.", foundBy, ref.ID)
	}
	return err
}

func (tr *tracer) byRCSRef(ctx context.Context, ref string) error {
	return tr.byRef(ctx, rcsRefKey(ref), "imdn Message-ID "+ref+" (ref.rcs)")
}

// bySMSCRef finds ref.sms.<smsc>.<ref> under any SMSC.
func (tr *tracer) bySMSCRef(ctx context.Context, ref string) error {
	for _, cand := range smscIDForms(ref) {
		keys, err := tr.keys(ctx, "ref.sms.*."+b64(cand))
		if err != nil {
			return err
		}
		for _, key := range keys {
			smsc := key[len("ref.sms."):strings.LastIndexByte(key, '.')]
			name, err := base64.RawURLEncoding.DecodeString(smsc)
			if err != nil {
				name = []byte(smsc)
			}
			if err := tr.byRef(ctx, key, fmt.Sprintf("SMSC %s message id %s (ref.sms)", name, cand)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keys lists the delivery records whose keys match pattern (NATS
// wildcards), shard by shard, each sorted: each shard's stream is asked
// for the subjects that match, which the server answers from its subject
// index.
func (tr *tracer) keys(ctx context.Context, pattern string) ([]string, error) {
	cfg := tr.b.Config()
	var keys []string
	for i := range max(cfg.DeliveriesShards, 1) {
		bucket := cfg.DeliveriesBucket
		if i > 0 {
			bucket += "-" + strconv.Itoa(i)
		}
		prefix := "$KV." + bucket + "."
		st, err := tr.b.JetStream().Stream(ctx, "KV_"+bucket)
		if err != nil {
			return nil, fmt.Errorf("%w: bucket %s: %w", ErrUnavailable, bucket, err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+pattern))
		if err != nil {
			return nil, fmt.Errorf("%w: bucket %s: %w", ErrUnavailable, bucket, err)
		}
		subjects := make([]string, 0, len(info.State.Subjects))
		for s := range info.State.Subjects {
			subjects = append(subjects, strings.TrimPrefix(s, prefix))
		}
		slices.Sort(subjects)
		keys = append(keys, subjects...)
	}
	return keys, nil
}

// smscIDForms are the spellings an SMSC message id may be stored under:
// as given, lower-cased, without leading zeros, and, read as hex, its
// decimal value (the canonical form of hex and decimal ids).
func smscIDForms(id string) []string {
	forms := []string{id, strings.ToLower(id)}
	trimmed := strings.TrimLeft(id, "0")
	if trimmed == "" {
		trimmed = "0"
	}
	forms = append(forms, trimmed)
	if len(trimmed) <= 15 {
		if v, err := strconv.ParseUint(trimmed, 16, 64); err == nil {
			forms = append(forms, strconv.FormatUint(v, 10))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// phoneNumber reads key as a phone number: E.164, a tel: or sip: URI, or
// (with a region) a national number. Keys with letters other than a URI
// scheme are not numbers.
func phoneNumber(key, region string) (uri.Number, bool) {
	lower := strings.ToLower(key)
	if !strings.HasPrefix(lower, "tel:") && !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") {
		for _, r := range key {
			if !strings.ContainsRune("+0123456789 -().", r) {
				return "", false
			}
		}
	}
	n, err := uri.ParseNumber(key, region)
	return n, err == nil
}

// byNumber shows the latest messages of a phone number that the
// from-phone stream still holds: what the phone sent, and the messages
// sent to it that a status report was published about. The stream is
// read through a short-lived consumer over a time window that is widened
// until it holds enough messages, or narrowed while it holds too many.
func (tr *tracer) byNumber(ctx context.Context, n uri.Number) error {
	cfg := tr.b.Config()
	subject := bus.SubjectFromPhone(n)
	tr.note("By number: the latest %d messages on %s in stream %s (kept %s): what %s sent, and the messages sent to it "+
		"that a status report was published about. Messages to it still waiting for the network or for a report are not listed.",
		traceLimit, subject, cfg.FromPhoneStream, cfg.FromPhoneMaxAge, n)
	st, err := tr.b.JetStream().Stream(ctx, cfg.FromPhoneStream)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrUnavailable, cfg.FromPhoneStream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrUnavailable, cfg.FromPhoneStream, err)
	}
	if info.State.Subjects[subject] == 0 {
		return nil
	}
	const enough, tooMany = traceLimit, 5000
	window := 15 * time.Minute
	grown, shrunk := false, false
	var cons jetstream.Consumer
	defer func() {
		if cons != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
			cancel()
		}
	}()
	for {
		cc := jetstream.ConsumerConfig{
			FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			InactiveThreshold: time.Minute, MemoryStorage: true, Replicas: 1,
		}
		if window > 0 {
			since := time.Now().Add(-window)
			cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
		}
		c, err := st.CreateConsumer(ctx, cc)
		if err != nil {
			return fmt.Errorf("%w: stream %s: %w", ErrUnavailable, cfg.FromPhoneStream, err)
		}
		cons = c
		pending := c.CachedInfo().NumPending
		switch {
		case pending > tooMany && !grown && window > time.Second:
			window /= 8
			shrunk = true
		case pending < enough && !shrunk && window > 0:
			window *= 8
			if window > 3*24*time.Hour {
				window = 0 // everything the stream holds
			}
			grown = true
		default:
			return tr.readNumber(ctx, c, pending, n)
		}
		_ = st.DeleteConsumer(ctx, c.CachedInfo().Name)
		cons = nil
	}
}

// readNumber reads pending messages of n from c and traces the latest.
func (tr *tracer) readNumber(ctx context.Context, c jetstream.Consumer, pending uint64, n uri.Number) error {
	type item struct {
		ids     []string
		fromBus *bus.Envelope // a phone's message, if its record is gone
	}
	var latest []item
	const readLimit = 20000
	read := uint64(0)
	for read < pending && read < readLimit {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		batch, err := c.Fetch(int(min(500, pending-read)), jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			read++
			env, err := bus.ParseEnvelope(m.Headers())
			if err != nil {
				continue
			}
			var it item
			if msg, err := content.Decode(m.Data()); err == nil {
				if entries, ok, _ := msg.StatusReport(); ok {
					for _, e := range entries {
						it.ids = append(it.ids, e.ID.String())
					}
				}
			}
			if it.ids == nil {
				e := env
				it.ids, it.fromBus = []string{env.ID}, &e
			}
			latest = append(latest, it)
			if len(latest) > 4*traceLimit {
				latest = latest[len(latest)-2*traceLimit:]
			}
		}
		err = batch.Error()
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if got == 0 {
			break
		}
	}
	if read >= readLimit && pending > readLimit {
		tr.note("Only the first %d of %d messages in the window were read.", readLimit, pending)
	}
	foundBy := "the number's messages on " + bus.SubjectFromPhone(n)
	shown := 0
	for i := len(latest) - 1; i >= 0 && shown < traceLimit; i-- {
		own := latest[i].fromBus
		for _, id := range latest[i].ids {
			// A status report is about n's copy of a message sent to it.
			k := copyKey{id: id, to: n}
			key := outKey(k)
			if own != nil {
				key = inKey(id)
			}
			if tr.seen[key] || shown >= traceLimit {
				continue
			}
			var found bool
			var err error
			if own != nil {
				found, err = tr.byIn(ctx, id, foundBy)
			} else {
				found, err = tr.byCopy(ctx, k, foundBy)
			}
			if err != nil {
				return err
			}
			if !found && own != nil {
				tr.seen[key] = true
				tr.t.Messages = append(tr.t.Messages, busTrace(own, n, foundBy))
				found = true
			}
			if found {
				shown++
			}
		}
	}
	return nil
}

// outTrace lays out the record of a message sent to a phone.
func outTrace(id string, o *outRecord, foundBy string) MessageTrace {
	mt := MessageTrace{ID: id, Direction: "to phone", Phone: o.Recipient, Peer: o.Sender, Channel: o.Channel, State: string(o.State), FoundBy: foundBy}
	add := func(at time.Time, name, detail string) {
		mt.Steps = append(mt.Steps, Step{At: at, Name: name, Detail: detail})
	}
	asked := "not recorded"
	if o.Asked != "" {
		asked = string(o.Asked)
	}
	add(o.Accepted, "accepted", fmt.Sprintf("taken from %s for delivery: from %s, shown to the phone as %s; channel asked: %s",
		bus.SubjectToPhone(o.Recipient), o.Sender, o.From, asked))
	switch c := o.Caps; {
	case c == nil:
		add(time.Time{}, "OPTIONS", "not recorded")
	case strings.HasPrefix(c.Result, "not asked"):
		add(time.Time{}, "OPTIONS", c.Result)
	case c.Result == "error":
		add(c.Checked, "OPTIONS", "query failed, capabilities unknown (treated as not RCS): "+c.Err)
	default:
		how := map[string]string{"cached": "cached answer", "rcs": "asked now", "not_rcs": "asked now", "offline": "asked now: offline, earlier answer kept"}[c.Result]
		add(c.Checked, "OPTIONS", fmt.Sprintf("%s: RCS chat %s, file transfer %s, revocation %s", how, yes(c.Chat), yes(c.FT), yes(c.Revoke)))
	}
	var rcsSent time.Time
	for _, e := range o.Events {
		if e.Kind == evRCSSent {
			rcsSent = e.At
		}
	}
	channel := func(detail string) {
		mt.Steps = append(mt.Steps, Step{Name: "channel", Detail: detail, Timeless: true})
	}
	switch {
	case o.RCSError != "":
		channel("rcs, then sms")
		add(time.Time{}, "fallback", "RCS failed ("+o.RCSError+"): sent by SMS")
	case !rcsSent.IsZero():
		channel("rcs, then sms after revocation")
	default:
		channel(string(o.Channel))
	}
	if !rcsSent.IsZero() || o.Channel == ChannelRCS {
		at := rcsSent
		if o.Channel == ChannelRCS {
			at = o.Sent
		}
		add(at, "SIP answer", "2xx: accepted by the network (final code not recorded); imdn.Message-ID "+o.Ref)
	}
	// What follows the network's acceptance goes in time order (an SMS
	// after a revocation falls after the revocation's events); steps whose
	// time is not recorded go last.
	head := len(mt.Steps)
	if o.Channel == ChannelSMS {
		for i, ref := range o.Segments {
			add(o.Sent, "submit_sm_resp", fmt.Sprintf("ESME_ROK from SMSC %s: message id %s (segment %d of %d)", o.Source, ref, i+1, len(o.Segments)))
		}
	}
	seenSeg := map[int]bool{}
	for _, e := range o.Events {
		switch e.Kind {
		case evReceipt, evTooLate:
			name, detail := "IMDN", e.Status
			if e.Channel == ChannelSMS {
				name = "receipt"
				detail = fmt.Sprintf("%s (%s): segment %d of %d", smsStat(e.Status), e.Status, e.Segment+1, len(o.Segments))
				seenSeg[e.Segment] = true
			}
			if e.Kind == evTooLate {
				name, detail = "revocation", "too late: the network had delivered it"
			}
			add(e.At, name, detail)
		case evReport:
			add(e.At, "status report", fmt.Sprintf("%s, to %s on %s", e.Status, o.Sender, bus.SubjectFromPhone(o.Recipient)))
		case evRevoke:
			add(e.At, "revocation", "requested: no IMDN delivered in time")
		case evRevoked:
			add(e.At, "revocation", "revoked by the network; going by SMS")
		}
	}
	// Receipts from before records held events: the state only.
	for i, s := range o.SegState {
		if s != 0 && !seenSeg[i] {
			add(time.Time{}, "receipt", fmt.Sprintf("%s (%s): segment %d of %d", smsStat(s.String()), s, i+1, len(o.Segments)))
		}
	}
	slices.SortStableFunc(mt.Steps[head:], func(a, b Step) int {
		switch {
		case a.At.IsZero() && b.At.IsZero():
			return 0
		case a.At.IsZero():
			return 1
		case b.At.IsZero():
			return -1
		}
		return a.At.Compare(b.At)
	})
	mt.Steps = append(mt.Steps, Step{Name: "state", Detail: string(o.State), Timeless: true})
	return mt
}

// smsStat names an SMS receipt's status as SMPP receipts spell it.
func smsStat(status string) string {
	switch status {
	case StatusDelivered.String():
		return "DELIVRD"
	case StatusExpired.String():
		return "EXPIRED"
	case StatusFailed.String():
		return "UNDELIV, REJECTD or DELETED"
	}
	return status
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// inTrace lays out the record of a phone user's message.
func inTrace(id string, in *inRecord, foundBy string) MessageTrace {
	mt := MessageTrace{ID: id, Direction: "from phone", Phone: in.From, Peer: string(in.To), Channel: in.Channel, FoundBy: foundBy, State: "on the bus"}
	detail := fmt.Sprintf("from %s to %s by %s, stored on %s", in.From, in.To, in.Channel, bus.SubjectFromPhone(in.From))
	if in.Ref != "" && in.Channel == ChannelRCS {
		detail += "; imdn.Message-ID " + in.Ref
	}
	mt.Steps = append(mt.Steps, Step{At: in.At, Name: "accepted", Detail: detail})
	if in.Channel == ChannelRCS {
		var asked []string
		if in.Notify.Delivery {
			asked = append(asked, "delivery")
		}
		if in.Notify.Display {
			asked = append(asked, "display")
		}
		mt.Steps = append(mt.Steps, Step{Name: "notifications asked", Detail: cmp.Or(strings.Join(asked, ", "), "none"), Timeless: true})
		for _, s := range in.Told {
			mt.Steps = append(mt.Steps, Step{Name: "IMDN sent", Detail: s.String()})
		}
	}
	return mt
}

// busTrace lays out a phone user's message whose record is gone, from
// what the bus message says.
func busTrace(env *bus.Envelope, n uri.Number, foundBy string) MessageTrace {
	return MessageTrace{ID: env.ID, Direction: "from phone", Phone: n, Peer: env.Recipient, Channel: Channel(env.Channel),
		State: "on the bus; delivery record gone", FoundBy: foundBy,
		Steps: []Step{{At: env.Accepted, Name: "accepted", Detail: fmt.Sprintf("from %s to %s by %s (from the bus message; no record left)", env.Sender, env.Recipient, env.Channel)}}}
}
