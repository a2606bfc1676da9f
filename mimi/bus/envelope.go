package bus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mimigw/mimigw/mimi/uri"
)

// Header names of the bus contract (docs/architecture.md, bus contract).
const (
	HeaderMsgID     = "Nats-Msg-Id"
	HeaderID        = "Mimi-Id"
	HeaderSender    = "Mimi-Sender"
	HeaderRecipient = "Mimi-Recipient"
	HeaderRoom      = "Mimi-Room"
	HeaderChannel   = "Mimi-Channel"
	HeaderAccepted  = "Mimi-Accepted"
)

// Channels a Mimi-Channel header may name.
const (
	ChannelRCS  = "rcs"
	ChannelSMS  = "sms"
	ChannelAuto = "auto"
)

// acceptedLayout is RFC 3339 with milliseconds, as the contract writes it.
const acceptedLayout = "2006-01-02T15:04:05.000Z07:00"

// minAccepted is the earliest plausible acceptance time; it also keeps
// the zero time, which Header leaves out, from parsing.
var minAccepted = time.Unix(0, 0)

// ErrBadEnvelope is returned for headers that break the bus contract.
var ErrBadEnvelope = errors.New("bad envelope")

// Envelope is what travels in the NATS headers of every bus message.
type Envelope struct {
	// ID is the MIMI message ID in lowercase hex (64 digits). It is also
	// the JetStream de-duplication key (Nats-Msg-Id), on to-phone subjects
	// with the recipient's digits after it (msgID).
	ID        string
	Sender    string // mimi:// or tel: URI
	Recipient string // mimi:// or tel: URI
	Room      string // mimi:// room URI
	// Channel is "rcs" or "sms" on from-phone messages (how it arrived);
	// on to-phone messages "", "auto", "rcs" or "sms" (how to send it).
	Channel  string
	Accepted time.Time
}

// headerCount is the number of headers Header writes.
const headerCount = 7

// Header returns the NATS headers for e published on subject. Empty
// fields and a zero Accepted are left out.
func (e Envelope) Header(subject string) nats.Header {
	h := make(nats.Header, headerCount)
	// One backing array for all values: one allocation instead of seven.
	vals := make([]string, 0, headerCount)
	set := func(k, v string) {
		if v == "" {
			return
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderMsgID, msgID(e.ID, subject))
	set(HeaderID, e.ID)
	set(HeaderSender, e.Sender)
	set(HeaderRecipient, e.Recipient)
	set(HeaderRoom, e.Room)
	set(HeaderChannel, e.Channel)
	if !e.Accepted.IsZero() {
		set(HeaderAccepted, e.Accepted.UTC().Format(acceptedLayout))
	}
	return h
}

// msgID is the de-duplication key of message id on subject: the ID, and on
// a to-phone subject the ID and the recipient's digits ("<id>.<digits>"),
// because JetStream de-duplicates across a stream's subjects and one
// message for a room goes to each of its phone users.
func msgID(id, subject string) string {
	if digits, ok := strings.CutPrefix(subject, toPhonePrefix); ok && id != "" {
		return id + "." + digits
	}
	return id
}

// messageIDOf is the message ID in a Nats-Msg-Id: all of it, or what
// comes before a recipient's ".<digits>".
func messageIDOf(msgID string) string {
	id, digits, ok := strings.Cut(msgID, ".")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return msgID
	}
	return id
}

// ParseEnvelope reads the envelope from NATS headers, strictly: every
// header present once, a 64-digit lowercase hex ID in Mimi-Id equal to
// the one in Nats-Msg-Id where both are present (which may carry a
// recipient's ".<digits>" after it, as on to-phone subjects), sender and recipient as mimi:// URIs
// or tel: URIs in E.164 form, a mimi:// room URI, a known channel and an
// RFC 3339 time. Header names match regardless of case.
//
// On error the returned Envelope still holds every field that was valid,
// so a caller can name the sender in an error report; the error joins one
// ErrBadEnvelope error per problem.
func ParseEnvelope(h nats.Header) (Envelope, error) {
	var p envelopeCheck
	get := func(name string) (string, bool) {
		v, ok := h[name]
		if !ok {
			for k, kv := range h {
				if strings.EqualFold(k, name) {
					if ok { // two spellings of the same header
						p.fail("%s appears more than once", name)
						return "", false
					}
					v, ok = kv, true
				}
			}
		}
		if !ok || len(v) == 0 {
			return "", false
		}
		if len(v) > 1 {
			p.fail("%s appears %d times", name, len(v))
			return "", false
		}
		return v[0], true
	}
	id, hasID := get(HeaderID)
	dedupe, hasMsgID := get(HeaderMsgID)
	switch {
	case !hasID && !hasMsgID:
		p.fail("%s is missing", HeaderID)
	case hasID && hasMsgID && id != messageIDOf(dedupe):
		p.fail("%s %.80q differs from %s %.80q", HeaderID, id, HeaderMsgID, dedupe)
	default:
		if !hasID {
			id = messageIDOf(dedupe)
		}
		p.id(id)
	}
	if v, ok := get(HeaderSender); ok {
		p.e.Sender = p.participant(HeaderSender, v)
	} else {
		p.fail("%s is missing", HeaderSender)
	}
	if v, ok := get(HeaderRecipient); ok {
		p.e.Recipient = p.participant(HeaderRecipient, v)
	} else {
		p.fail("%s is missing", HeaderRecipient)
	}
	if v, ok := get(HeaderRoom); ok {
		p.room(v)
	} else {
		p.fail("%s is missing", HeaderRoom)
	}
	if v, ok := get(HeaderChannel); ok {
		p.channel(v)
	}
	if v, ok := get(HeaderAccepted); !ok {
		p.fail("%s is missing", HeaderAccepted)
	} else if t, err := time.Parse(time.RFC3339Nano, v); err != nil {
		p.fail("%s %.80q is not an RFC 3339 time", HeaderAccepted, v)
	} else {
		p.accepted(t, v)
	}
	return p.e, errors.Join(p.errs...)
}

// Validate checks e as ParseEnvelope checks headers, except that a zero
// Accepted passes (Publish stamps it). Publish calls it so that nothing
// leaves this process that its readers would reject.
func (e Envelope) Validate() error {
	var p envelopeCheck
	p.id(e.ID)
	if e.Sender == "" {
		p.fail("%s is missing", HeaderSender)
	} else {
		p.participant(HeaderSender, e.Sender)
	}
	if e.Recipient == "" {
		p.fail("%s is missing", HeaderRecipient)
	} else {
		p.participant(HeaderRecipient, e.Recipient)
	}
	if e.Room == "" {
		p.fail("%s is missing", HeaderRoom)
	} else {
		p.room(e.Room)
	}
	if e.Channel != "" {
		p.channel(e.Channel)
	}
	if !e.Accepted.IsZero() {
		p.accepted(e.Accepted, "")
	}
	return errors.Join(p.errs...)
}

// envelopeCheck collects the envelope's valid fields and its problems.
type envelopeCheck struct {
	e    Envelope
	errs []error
}

func (p *envelopeCheck) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%w: "+format, append([]any{ErrBadEnvelope}, args...)...))
}

func (p *envelopeCheck) id(v string) {
	if validID(v) {
		p.e.ID = v
	} else {
		p.fail("%s %.80q is not 64 lowercase hex digits", HeaderID, v)
	}
}

func (p *envelopeCheck) participant(name, v string) string {
	if err := checkParticipant(v); err != nil {
		p.fail("%s %.80q: %v", name, v, err)
		return ""
	}
	return v
}

func (p *envelopeCheck) room(v string) {
	if u, err := uri.ParseMIMI(v); err != nil {
		p.fail("%s %.80q: %v", HeaderRoom, v, err)
	} else if u.Kind != uri.Room {
		p.fail("%s %.80q names a %s, not a room", HeaderRoom, v, u.Kind)
	} else {
		p.e.Room = v
	}
}

func (p *envelopeCheck) channel(v string) {
	switch v {
	case ChannelRCS, ChannelSMS, ChannelAuto:
		p.e.Channel = v
	default:
		p.fail("%s %.80q is not rcs, sms or auto", HeaderChannel, v)
	}
}

func (p *envelopeCheck) accepted(t time.Time, v string) {
	if t.Before(minAccepted) {
		if v == "" {
			v = t.Format(acceptedLayout)
		}
		p.fail("%s %.80q is before 1970", HeaderAccepted, v)
		return
	}
	p.e.Accepted = t
}

// validID reports whether s is a MIMI message ID in lowercase hex.
func validID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkParticipant accepts a mimi:// URI other than a provider's, or a tel:
// URI in E.164 form ("tel:+15551230002": a plus, a country code not
// starting with 0, at most 15 digits, nothing else). The form is checked,
// not the numbering plan: routing normalises numbers where it needs to.
func checkParticipant(s string) error {
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		if !strings.HasPrefix(s, "tel:+") {
			return errors.New("tel URI must be \"tel:+\" and E.164 digits")
		}
		digits := s[len("tel:+"):]
		if len(digits) < 2 || len(digits) > 15 || digits[0] == '0' {
			return errors.New("not an E.164 number (2 to 15 digits, no leading 0)")
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return errors.New("not an E.164 number (digits only, no separators or parameters)")
			}
		}
		return nil
	}
	u, err := uri.ParseMIMI(s)
	if err != nil {
		return err
	}
	if u.Kind == uri.Provider {
		return errors.New("names a provider, not a user, device, room or group")
	}
	return nil
}
