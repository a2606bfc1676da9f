package imdn

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/xmldoc"
)

// Media type, disposition and namespace of an IMDN.
const (
	ContentType        = "message/imdn+xml"
	ContentDisposition = "notification"
	Namespace          = "urn:ietf:params:xml:ns:imdn"
)

// MaxSize bounds the documents Parse accepts; a notification is a few
// hundred bytes.
const MaxSize = 64 << 10

// Errors about the notification's content.
var (
	ErrWrongNamespace = errors.New("not an IMDN document")
	ErrMissing        = errors.New("required element missing")
	ErrBadStatus      = errors.New("bad status")
	ErrBadDateTime    = errors.New("bad datetime")
)

// Kind says which notification a document carries.
type Kind string

// The notification kinds of RFC 5438.
const (
	Delivery   Kind = "delivery"
	Display    Kind = "display"
	Processing Kind = "processing"
)

// Status is the disposition reported.
type Status string

// Statuses; which ones a kind allows is in allowed.
const (
	Delivered Status = "delivered"
	Displayed Status = "displayed"
	Processed Status = "processed"
	Stored    Status = "stored"
	Failed    Status = "failed"
	Forbidden Status = "forbidden"
	Error     Status = "error"
)

var allowed = map[Kind][]Status{
	Delivery:   {Delivered, Failed, Forbidden, Error},
	Display:    {Displayed, Forbidden, Error},
	Processing: {Processed, Stored, Forbidden, Error},
}

// Notification is one IMDN. RecipientURI, OriginalRecipientURI and Subject
// are optional ("" when absent).
type Notification struct {
	MessageID            string
	DateTime             time.Time
	RecipientURI         string
	OriginalRecipientURI string
	Subject              string
	Kind                 Kind
	Status               Status
}

// NewDelivered reports msgID delivered at at.
func NewDelivered(msgID string, at time.Time) *Notification {
	return &Notification{MessageID: msgID, DateTime: at, Kind: Delivery, Status: Delivered}
}

// NewDisplayed reports msgID displayed (read) at at.
func NewDisplayed(msgID string, at time.Time) *Notification {
	return &Notification{MessageID: msgID, DateTime: at, Kind: Display, Status: Displayed}
}

// NewFailed reports that msgID could not be delivered.
func NewFailed(msgID string, at time.Time) *Notification {
	return &Notification{MessageID: msgID, DateTime: at, Kind: Delivery, Status: Failed}
}

// IsNotification reports whether a Content-Type names an IMDN.
func IsNotification(contentType string) bool {
	return cpim.MediaType(contentType) == ContentType
}

// Parse reads an IMDN document. It requires the IMDN namespace, a
// message-id, a datetime and exactly one notification with a status the
// kind allows; unknown elements, in the IMDN namespace or any other, are
// ignored. Documents with a DOCTYPE or entity declarations are refused
// before any parsing.
func Parse(b []byte) (*Notification, error) {
	n, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("imdn: %w", err)
	}
	return n, nil
}

func parse(b []byte) (*Notification, error) {
	d, _, err := xmldoc.Open(b, MaxSize, Namespace, "imdn", ErrWrongNamespace)
	if err != nil {
		return nil, err
	}
	n := &Notification{}
	var datetime string
	var seen [5]bool // message-id, datetime, recipient-uri, original-recipient-uri, subject
	err = xmldoc.Children(d, func(t xml.StartElement) (err error) {
		name := t.Name.Local
		if t.Name.Space != Namespace {
			return xmldoc.Skip(d)
		}
		var field *string
		var slot int
		switch name {
		case "message-id":
			field, slot = &n.MessageID, 0
		case "datetime":
			field, slot = &datetime, 1
		case "recipient-uri":
			field, slot = &n.RecipientURI, 2
		case "original-recipient-uri":
			field, slot = &n.OriginalRecipientURI, 3
		case "subject":
			field, slot = &n.Subject, 4
		case "delivery-notification", "display-notification", "processing-notification":
			if n.Kind != "" {
				return fmt.Errorf("%w: <%s> after <%s-notification>: one notification per document", ErrBadStatus, name, n.Kind)
			}
			n.Kind = Kind(strings.TrimSuffix(name, "-notification"))
			n.Status, err = status(d, n.Kind)
			return err
		default:
			return xmldoc.Skip(d)
		}
		if seen[slot] {
			return fmt.Errorf("%w: <%s> twice", ErrMalformed, name)
		}
		seen[slot] = true
		*field, err = xmldoc.Text(d)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := xmldoc.End(d); err != nil {
		return nil, err
	}
	switch {
	case n.MessageID == "":
		return nil, fmt.Errorf("%w: <message-id>", ErrMissing)
	case datetime == "":
		return nil, fmt.Errorf("%w: <datetime>", ErrMissing)
	case n.Kind == "":
		return nil, fmt.Errorf("%w: no delivery, display or processing notification", ErrMissing)
	}
	if n.DateTime, err = parseDateTime(datetime); err != nil {
		return nil, err
	}
	return n, nil
}

// status reads <status><delivered/></status> inside a notification
// element; other children are ignored.
func status(d *xml.Decoder, kind Kind) (Status, error) {
	var st Status
	found := false
	err := xmldoc.Children(d, func(t xml.StartElement) (err error) {
		if t.Name.Space != Namespace || t.Name.Local != "status" {
			return xmldoc.Skip(d)
		}
		if found {
			return fmt.Errorf("%w: two <status> in <%s-notification>", ErrBadStatus, kind)
		}
		found = true
		st, err = statusValue(d, kind)
		return err
	})
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", fmt.Errorf("%w: <status> in <%s-notification>", ErrMissing, kind)
	}
	return st, nil
}

func statusValue(d *xml.Decoder, kind Kind) (Status, error) {
	var st Status
	err := xmldoc.Children(d, func(t xml.StartElement) error {
		if err := xmldoc.Skip(d); err != nil {
			return err
		}
		if t.Name.Space != Namespace {
			return nil
		}
		s := Status(t.Name.Local)
		if !kindAllows(kind, s) {
			return fmt.Errorf("%w: <%s> in <%s-notification>", ErrBadStatus, t.Name.Local, kind)
		}
		if st != "" && st != s {
			return fmt.Errorf("%w: both <%s> and <%s>", ErrBadStatus, st, s)
		}
		st = s
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case st == "":
		return "", fmt.Errorf("%w: empty <status> in <%s-notification>", ErrBadStatus, kind)
	}
	return st, nil
}

func kindAllows(kind Kind, s Status) bool {
	for _, a := range allowed[kind] {
		if a == s {
			return true
		}
	}
	return false
}

// parseDateTime reads RFC 3339; a time without a zone, which some senders
// write, is taken as UTC.
func parseDateTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05", v); err == nil {
		return t, nil
	}
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return time.Time{}, fmt.Errorf("%w: %q", ErrBadDateTime, v)
}

// Bytes writes the document in the form of RFC 5438's examples. It writes
// what n holds; an n that Parse would refuse (no status, a status the kind
// does not allow) is written as it is, still well-formed.
func (n *Notification) Bytes() []byte {
	out := make([]byte, 0, 256+len(n.MessageID)+len(n.RecipientURI)+len(n.OriginalRecipientURI)+len(n.Subject))
	out = append(out, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<imdn xmlns="`+Namespace+`">`+"\n"...)
	out = element(out, "message-id", n.MessageID)
	out = n.DateTime.AppendFormat(append(out, " <datetime>"...), time.RFC3339Nano)
	out = append(out, "</datetime>\n"...)
	if n.RecipientURI != "" {
		out = element(out, "recipient-uri", n.RecipientURI)
	}
	if n.OriginalRecipientURI != "" {
		out = element(out, "original-recipient-uri", n.OriginalRecipientURI)
	}
	if n.Subject != "" {
		out = element(out, "subject", n.Subject)
	}
	kind := xmlName(string(n.Kind))
	out = append(append(append(out, " <"...), kind...), "-notification><status>"...)
	if n.Status != "" {
		out = append(append(append(out, '<'), xmlName(string(n.Status))...), "/>"...)
	}
	out = append(append(append(out, "</status></"...), kind...), "-notification>\n</imdn>\n"...)
	return out
}

func element(out []byte, name, value string) []byte {
	out = append(append(append(out, " <"...), name...), '>')
	out = xmldoc.AppendEscaped(out, value)
	return append(append(append(out, "</"...), name...), ">\n"...)
}

// CPIM wraps the notification in the CPIM envelope it travels in: a new
// message id of its own (msgID, not the one it reports on), no disposition
// request, and Content-Disposition: notification.
func (n *Notification) CPIM(from, to, msgID string) *cpim.Message {
	m := cpim.New(from, to, msgID, n.DateTime, 0, ContentType, n.Bytes())
	m.Content = append(m.Content, cpim.Header{Name: "Content-Disposition", Value: ContentDisposition})
	return m
}

// xmlName keeps a kind or status usable as an element name whatever a
// caller put in it.
func xmlName(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = c == '-' && i > 0 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0
	}
	if !ok {
		return "unknown"
	}
	return s
}
