package content

import "fmt"

// StatusReportType is the media type of a status report body
// (draft-mahy-mimi-message-status-01).
const StatusReportType = "application/mimi-message-status"

// Status is what the sender of a report says about one message.
type Status uint8

const (
	Unread    Status = 0
	Delivered Status = 1
	Read      Status = 2
	Expired   Status = 3
	Deleted   Status = 4
	Hidden    Status = 5
	Error     Status = 6
)

var statusNames = [...]string{"unread", "delivered", "read", "expired", "deleted", "hidden", "error"}

// Known reports whether s is one of the seven defined values; 7-255 are
// valid on the wire but unknown.
func (s Status) Known() bool { return int(s) < len(statusNames) }

func (s Status) String() string {
	if s.Known() {
		return statusNames[s]
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

// StatusEntry is the status of one message.
type StatusEntry struct {
	ID     MessageID
	Status Status
}

// minEntrySize is the encoded size of one entry: array head, byte string
// head (2 bytes), 32-byte ID, status.
const minEntrySize = 1 + 2 + 32 + 1

// EncodeStatusReport encodes MessageStatusReport = [* [messageId, status]].
func EncodeStatusReport(entries []StatusEntry) ([]byte, error) {
	return appendStatusReport(make([]byte, 0, 9+len(entries)*(minEntrySize+1)), entries), nil
}

func appendStatusReport(b []byte, entries []StatusEntry) []byte {
	b = appendHead(b, majorArray, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, majorArray<<5|2)
		b = appendBytes(b, e.ID[:])
		b = appendHead(b, majorUint, uint64(e.Status))
	}
	return b
}

// DecodeStatusReport parses a status report body with the same strictness
// as Decode. Status values 7-255 decode as unknown (Known is false);
// larger values are errors.
func DecodeStatusReport(b []byte) ([]StatusEntry, error) {
	r := reader{b: b}
	n, err := r.array("report", -1, 1)
	if err != nil {
		return nil, err
	}
	// Room for what the bytes left can hold, not for what was declared.
	entries := make([]StatusEntry, 0, min(n, r.remaining()/minEntrySize))
	for i := range n {
		var e StatusEntry
		if err := r.statusEntry(&e); err != nil {
			return nil, within(err, fmt.Sprintf("report[%d]", i))
		}
		entries = append(entries, e)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return entries, nil
}

func (r *reader) statusEntry(e *StatusEntry) error {
	if _, err := r.array("", 2, 1); err != nil {
		return err
	}
	if err := r.fixedBytes("messageId", e.ID[:]); err != nil {
		return err
	}
	s, err := r.uint("status", 255)
	e.Status = Status(s)
	return err
}

// NewStatusReport returns a message from sender in room carrying a status
// report as a SinglePart of type StatusReportType, disposition unspecified
// (it is for the sender's client, not for display).
func NewStatusReport(sender, room string, entries []StatusEntry, salt [16]byte) *Message {
	return &Message{
		Salt:       salt,
		Extensions: Extensions{SenderURI: sender, RoomURI: room},
		Body:       NewSinglePart(Unspecified, StatusReportType, appendStatusReport(nil, entries)),
	}
}

// StatusReport returns the entries of a status report message. ok is false
// when the body is not a SinglePart of StatusReportType; err is set when it
// is one but its content does not parse.
func (m *Message) StatusReport() (entries []StatusEntry, ok bool, err error) {
	if m.Body.Cardinality != Single || !sameMediaType(m.Body.ContentType, StatusReportType) {
		return nil, false, nil
	}
	entries, err = DecodeStatusReport(m.Body.Content)
	return entries, true, err
}
