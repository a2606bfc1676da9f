package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Delivery state lives in the deliveries KV bucket (its shards, by key):
//
//	out.<id>.<digits>         what became of a MIMI message sent to one phone
//	in.<id>                   a phone user's message: whom to tell what
//	ref.rcs.<ref>             imdn.Message-ID we sent -> out.<id>.<digits>
//	ref.sms.<smsc>.<ref>      SMSC message id of one segment -> out.<id>.<digits>
//	seg.<from>.<to>.<ref>...  segments of a concatenated SMS (segment.go)
//
// (<ref>, <smsc> and <user> unpadded base64url; <id> hex; <digits> the
// recipient's number without its plus). A ref key is created either by
// the sender, naming the message, or by a receipt that came first,
// holding that receipt; whoever comes second applies it. Records written
// before each recipient had its own are under out.<id>, and their ref
// keys name no recipient: they are read where they are.

// outState is where a message for a phone stands.
type outState string

const (
	outSent      outState = "sent"      // the network accepted it
	outRevoking  outState = "revoking"  // RCS revocation asked for
	outRevoked   outState = "revoked"   // revoked; going by SMS
	outDelivered outState = "delivered" // reported delivered
	outRead      outState = "read"
	outExpired   outState = "expired"
	outFailed    outState = "failed"
)

type outRecord struct {
	ID        string     `json:"id"`
	Sender    string     `json:"sender"`
	Recipient uri.Number `json:"recipient"`
	Room      string     `json:"room"`
	From      string     `json:"from"` // presented sender address
	Channel   Channel    `json:"channel"`
	State     outState   `json:"state"`
	// RCS
	Ref            string `json:"ref,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
	ContributionID string `json:"contribution_id,omitempty"`
	Revocable      bool   `json:"revocable,omitempty"`
	// SMS: one entry per segment, its id and what its receipt said.
	Source   string   `json:"source,omitempty"`
	Segments []string `json:"segments,omitempty"`
	SegState []Status `json:"seg_state,omitempty"`
	// Content keeps the MIMI message for an SMS after a revocation.
	Content  []byte    `json:"content,omitempty"`
	Excerpt  string    `json:"excerpt,omitempty"`
	Accepted time.Time `json:"accepted"` // when the gateway took it from the bus
	Attempts int       `json:"attempts,omitempty"`
	// MIMIAccepted is the message's Mimi-Accepted, when the bus took it
	// (zero in records written before it was kept).
	MIMIAccepted time.Time `json:"mimi_accepted,omitzero"`
	// What the trace of the message shows (trace.go): the channel asked
	// for, the capability lookup that routed it, why RCS failed before
	// SMS, when the network accepted it, and what happened since.
	Asked    Channel    `json:"asked,omitempty"`
	Caps     *capNote   `json:"caps,omitempty"`
	RCSError string     `json:"rcs_err,omitempty"`
	Sent     time.Time  `json:"sent,omitzero"`
	Events   []outEvent `json:"ev,omitempty"`
}

// outEvent is one thing that happened to a message after the network
// accepted it, kept in its record for its trace. Events are added only by
// writes the record gets anyway (a receipt that changes it, a state
// change), so they cost no extra round trip.
type outEvent struct {
	At   time.Time `json:"at"`
	Kind string    `json:"k"` // receipt, report, revoke, revoked, too_late
	// Channel and Segment (0-based) name the receipt's channel and SMS
	// segment; Status is the receipt's status or the report's.
	Channel Channel `json:"ch,omitempty"`
	Segment int     `json:"seg,omitempty"`
	Status  string  `json:"st,omitempty"`
}

// Kinds of outEvent.
const (
	evReceipt = "receipt"
	evReport  = "report"
	evRevoke  = "revoke"  // revocation requested
	evRevoked = "revoked" // the network revoked it; SMS follows
	evTooLate = "too_late"
	evRCSSent = "rcs_sent" // the RCS attempt's 2xx, kept when SMS follows
)

func (o *outRecord) event(at time.Time, kind string, ch Channel, segment int, status string) {
	o.Events = append(o.Events, outEvent{At: at, Kind: kind, Channel: ch, Segment: segment, Status: status})
}

type inRecord struct {
	Channel        Channel       `json:"channel"`
	From           uri.Number    `json:"from"`
	To             uri.Number    `json:"to"`
	Ref            string        `json:"ref,omitempty"`
	ConversationID string        `json:"conversation_id,omitempty"`
	Notify         Notifications `json:"notify"`
	Excerpt        string        `json:"excerpt,omitempty"`
	// Told records the notifications already sent, so a repeated report
	// does not send a second IMDN.
	Told []Status `json:"told,omitempty"`
	// At is when the message was accepted (stored on the bus).
	At time.Time `json:"at,omitzero"`
}

// refRecord is the value of a ref key: the message and segment it names,
// or receipts that arrived before the message was known.
type refRecord struct {
	ID string `json:"id,omitempty"`
	// To is the message's recipient: its record is out.<id>.<digits>
	// (empty in records that point at out.<id>).
	To      uri.Number `json:"to,omitempty"`
	Segment int        `json:"segment,omitempty"`
	Early   []Receipt  `json:"early,omitempty"`
	// Taken is when the gateway took the message from the bus (its
	// record's Accepted): of two messages under one network id, the later
	// one owns it.
	Taken time.Time `json:"taken,omitzero"`
}

// copyKey names one phone user's copy of a MIMI message: a message for a
// room goes to each of its phone users, each with its own record, timers
// and network references. A zero to names a record written before copies
// were kept apart, under the message ID alone.
type copyKey struct {
	id string // the message ID, hex
	to uri.Number
}

// String is the copy's part of record and timer keys: "<id>.<digits>",
// or "<id>" for a record written before copies were kept apart.
func (k copyKey) String() string {
	if k.to == "" {
		return k.id
	}
	return k.id + "." + k.to.Digits()
}

// parseCopyKey reads what String wrote.
func parseCopyKey(s string) (copyKey, error) {
	id, digits, ok := strings.Cut(s, ".")
	if !ok {
		return copyKey{id: s}, nil
	}
	n, err := uri.NumberFromDigits(digits)
	if err != nil {
		return copyKey{}, err
	}
	return copyKey{id: id, to: n}, nil
}

// copyOf is the copy a ref key points at.
func (r *refRecord) copyOf() copyKey { return copyKey{id: r.ID, to: r.To} }

func outKey(k copyKey) string {
	if k.to == "" {
		return "out." + k.id
	}
	return "out." + k.id + "." + k.to.Digits() // one allocation, not two
}

func inKey(id string) string { return "in." + id }

func rcsRefKey(ref string) string { return "ref.rcs." + b64(ref) }

func smsRefKey(source, ref string) string { return "ref.sms." + b64(source) + "." + b64(ref) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// records reads and writes state records with compare-and-set.
type records struct {
	bus *bus.Bus
}

var errNoRecord = errors.New("no such record")

// get loads key into v and returns its revision.
func (r records) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := r.bus.Deliveries(key).Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, errNoRecord
	}
	if err != nil {
		return 0, fmt.Errorf("%w: get %s: %w", ErrUnavailable, key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("corrupt record %s: %w", key, err)
	}
	return e.Revision(), nil
}

// getOut reads the record of the copy k into v and returns its key;
// where there is none, it reads the record of the message written before
// copies were kept apart (out.<id>), if it is the same recipient's. Only
// a miss costs the second read.
func (r records) getOut(ctx context.Context, k copyKey, v *outRecord) (string, error) {
	key := outKey(k)
	_, err := r.get(ctx, key, v)
	if !errors.Is(err, errNoRecord) || k.to == "" {
		return key, err
	}
	old := copyKey{id: k.id}
	var rec outRecord
	if _, err := r.get(ctx, outKey(old), &rec); err != nil {
		return key, err
	}
	if rec.Recipient != k.to {
		return key, errNoRecord
	}
	*v = rec
	return outKey(old), nil
}

func (r records) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := r.bus.Deliveries(key).Put(ctx, key, b); err != nil {
		return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
	}
	return nil
}

// create writes v under key if the key does not exist; exists reports a
// key that does.
func (r records) create(ctx context.Context, key string, v any) (exists bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	_, err = r.bus.Deliveries(key).Create(ctx, key, b)
	if bus.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: create %s: %w", ErrUnavailable, key, err)
	}
	return false, nil
}

// replace writes v under key if the key is still at revision rev;
// conflict reports that it is not.
func (r records) replace(ctx context.Context, key string, rev uint64, v any) (conflict bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	_, err = r.bus.Deliveries(key).Update(ctx, key, b, rev)
	if bus.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: update %s: %w", ErrUnavailable, key, err)
	}
	return false, nil
}

// update applies change to the record under key until the write wins over
// concurrent writers. change returns false to leave the record as it is.
func update[T any](ctx context.Context, r records, key string, change func(*T) (bool, error)) (T, error) {
	for {
		var v T
		rev, err := r.get(ctx, key, &v)
		if err != nil {
			return v, err
		}
		ok, err := change(&v)
		if err != nil || !ok {
			return v, err
		}
		b, err := json.Marshal(&v)
		if err != nil {
			return v, err
		}
		_, err = r.bus.Deliveries(key).Update(ctx, key, b, rev)
		if bus.IsConflict(err) {
			continue
		}
		if err != nil {
			return v, fmt.Errorf("%w: update %s: %w", ErrUnavailable, key, err)
		}
		return v, nil
	}
}
