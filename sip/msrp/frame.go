package msrp

import (
	"strconv"
	"strings"
)

// Methods this package knows. A request with any other method is parsed
// with its method as written and answered 501 by a Conn.
const (
	MethodSEND   = "SEND"
	MethodREPORT = "REPORT"
	MethodAUTH   = "AUTH" // RFC 4976
)

// Flag is the last character of an end-line.
type Flag byte

const (
	// FlagEnd ends the last chunk of a message ('$').
	FlagEnd Flag = '$'
	// FlagMore ends a chunk that more chunks follow ('+'); it also ends a
	// chunk the sender interrupted before the end of its Byte-Range.
	FlagMore Flag = '+'
	// FlagAbort ends a message the sender gave up on ('#').
	FlagAbort Flag = '#'
)

func (f Flag) valid() bool { return f == FlagEnd || f == FlagMore || f == FlagAbort }

// Report is the value of a Success-Report or Failure-Report header.
// ReportUnset (no header) means the default: yes for Failure-Report, no
// for Success-Report (RFC 4975 section 7.1.1).
type Report uint8

const (
	ReportUnset Report = iota
	ReportYes
	ReportNo
	ReportPartial // Failure-Report only
)

func (r Report) String() string {
	switch r {
	case ReportYes:
		return "yes"
	case ReportNo:
		return "no"
	case ReportPartial:
		return "partial"
	}
	return ""
}

// Unknown stands for '*' in a Byte-Range.
const Unknown = -1

// ByteRange is "start-end/total" (RFC 4975 section 9): start counts from
// 1, end is the last byte of this chunk, and end and total may be Unknown.
// The zero value (Start 0) means the header is absent, which receivers
// read as "the whole message in this chunk".
type ByteRange struct {
	Start, End, Total int64
}

// IsZero reports whether the header is absent.
func (r ByteRange) IsZero() bool { return r.Start == 0 }

func (r ByteRange) String() string {
	b := make([]byte, 0, 32)
	return string(r.appendTo(b))
}

func (r ByteRange) appendTo(b []byte) []byte {
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = appendNumOrStar(b, r.End)
	b = append(b, '/')
	return appendNumOrStar(b, r.Total)
}

func appendNumOrStar(b []byte, n int64) []byte {
	if n == Unknown {
		return append(b, '*')
	}
	return strconv.AppendInt(b, n, 10)
}

// Status is a REPORT's Status header: "000 200 OK". Namespace 000 is the
// only one RFC 4975 defines.
type Status struct {
	Namespace int
	Code      int
	Reason    string
}

func (s Status) String() string { return string(s.appendTo(nil)) }

func (s Status) appendTo(b []byte) []byte {
	b = append(b, byte('0'+s.Namespace/100%10), byte('0'+s.Namespace/10%10), byte('0'+s.Namespace%10), ' ')
	b = strconv.AppendInt(b, int64(s.Code), 10)
	if s.Reason != "" {
		b = append(b, ' ')
		b = appendText(b, s.Reason)
	}
	return b
}

// Header is a header line this package has no field for (an extension,
// or a MIME header other than Content-Type), with the name as written.
type Header struct {
	Name  string
	Value string
}

// Frame is one MSRP request or response: a whole message or one chunk.
//
// A request has Method set; a response has Code (and Method empty). The
// typed fields hold the headers RFC 4975 and RFC 4976 define; Headers
// keeps every other header in the order it came. A field at its zero value
// means the header is absent (Expires and its kin: an "Expires: 0" reads
// as absent, a lifetime RFC 4976 gives no meaning).
type Frame struct {
	TID string

	Method  string // request: SEND, REPORT, AUTH or another method
	Code    int    // response: the status code
	Comment string // response: the text after the code

	ToPath   []URI
	FromPath []URI

	MessageID     string
	ByteRange     ByteRange
	SuccessReport Report
	FailureReport Report
	Status        *Status // REPORT

	// RFC 4976 (relays).
	UsePath            []URI
	WWWAuthenticate    string
	Authorization      string
	AuthenticationInfo string
	Expires            int
	MinExpires         int
	MaxExpires         int

	Headers []Header

	// ContentType is set when the frame carries content; Body is the
	// content, nil when there is none. The reader returns a Body of its
	// own for every frame.
	ContentType string
	Body        []byte

	Flag Flag
}

// IsRequest reports whether f is a request.
func (f *Frame) IsRequest() bool { return f.Method != "" }

// Header returns the first value of a header kept in Headers, matching the
// name case-insensitively.
func (f *Frame) Header(name string) string {
	for _, h := range f.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Range returns the bytes this chunk carries as a closed interval, from
// what actually arrived rather than from the Byte-Range's end: a chunk the
// sender interrupted (RFC 4975 section 7.1: an end-line before the end of
// the range) carries fewer bytes than its header says. An absent
// Byte-Range counts as 1-*/*.
func (f *Frame) Range() (start, end int64) {
	start = f.ByteRange.Start
	if start == 0 {
		start = 1
	}
	return start, start + int64(len(f.Body)) - 1
}

// Interrupted reports whether the chunk ended before the end its
// Byte-Range announced: the sender cut it short and continues the message
// in another chunk from where this one stopped.
func (f *Frame) Interrupted() bool {
	if f.Flag != FlagMore || f.ByteRange.IsZero() || f.ByteRange.End == Unknown {
		return false
	}
	_, end := f.Range()
	return end < f.ByteRange.End
}
