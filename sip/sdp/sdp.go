package sdp

import (
	"errors"
	"fmt"
	"strings"
)

// ContentType is the media type of a SIP body holding a session
// description.
const ContentType = "application/sdp"

// Session is a session description (RFC 8866). The lines the gateway works
// with have fields of their own; every other line is kept in Other (or in a
// Timing's Repeats, or a Media's Other) so that writing a parsed
// description loses nothing but the order of lines within a section, which
// Bytes puts back into RFC 8866 order.
type Session struct {
	// Version is the v= value; only 0 exists.
	Version int
	Origin  Origin
	// Name is the s= value as written, " " and "-" included. A description
	// without s= (or with an empty one) reads as "-".
	Name string
	// Connection is the session-level c= line, nil when there is none.
	Connection *Connection
	// Timing holds the t= lines with their r= lines. A description without
	// t= reads as one "t=0 0".
	Timing []Timing
	// Attributes are the session-level a= lines, in order.
	Attributes []Attribute
	// Other holds the session-level i=, u=, e=, p=, b=, z= and k= lines,
	// in the order they came; Bytes writes each type at its RFC 8866 place.
	Other []Line
	// Media are the m= sections, in order.
	Media []*Media
}

// Origin is the o= line.
type Origin struct {
	// Username is "-" when the originator has none.
	Username string
	// SessionID and SessionVersion are decimal strings, kept as written
	// (leading zeros included) so that an answer can echo them.
	SessionID      string
	SessionVersion string
	NetType        string
	AddrType       string
	Address        string
}

// Connection is a c= line: "IN", "IP4" or "IP6", and an address (a
// multicast address keeps its "/ttl/count" suffix here).
type Connection struct {
	NetType  string
	AddrType string
	Address  string
}

// Timing is a t= line and the r= lines that follow it.
type Timing struct {
	Start, Stop uint64
	// Repeats are the r= values, as written.
	Repeats []string
}

// Media is one media description: the m= line and what follows it up to
// the next m= line.
type Media struct {
	// Type is the media type ("message" for MSRP).
	Type string
	// Port is the transport port; 0 rejects or disables the stream.
	Port int
	// NumPorts is the "/<number of ports>" suffix, 0 when absent.
	NumPorts int
	// Proto is the transport protocol ("TCP/MSRP", "TCP/TLS/MSRP").
	Proto string
	// Formats is the format list ("*" for MSRP).
	Formats []string
	// Connection is the media-level c= line, nil when there is none.
	Connection *Connection
	// Attributes are the media-level a= lines, in order.
	Attributes []Attribute
	// Other holds the media-level i=, b= and k= lines, in order.
	Other []Line
}

// Attribute is an a= line: "a=name" (Value empty) or "a=name:value".
type Attribute struct {
	Name  string
	Value string
}

func (a Attribute) String() string {
	if a.Value == "" {
		return a.Name
	}
	return a.Name + ":" + a.Value
}

// Line is a line kept as written: its type letter and its value.
type Line struct {
	Type  byte
	Value string
}

// Attr returns the value of the first session-level attribute with that
// name (compared without regard to case) and whether there is one.
func (s *Session) Attr(name string) (string, bool) { return findAttr(s.Attributes, name) }

// Attr returns the value of the first attribute of the media description
// with that name (compared without regard to case) and whether there is
// one.
func (m *Media) Attr(name string) (string, bool) { return findAttr(m.Attributes, name) }

func findAttr(attrs []Attribute, name string) (string, bool) {
	for _, a := range attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Value, true
		}
	}
	return "", false
}

// Errors Parse wraps in a *SyntaxError.
var (
	// ErrBadLine: the line is not "<letter>=<value>", or holds a NUL or a
	// bare CR.
	ErrBadLine = errors.New("not a <type>=<value> line")
	// ErrUnknownType: a type letter RFC 8866 does not define. RFC 8866
	// lets a parser ignore or refuse such a description; this one refuses
	// it, since nothing can say what the line means.
	ErrUnknownType = errors.New("unknown line type")
	// ErrMisplaced: v= not first, a session-level line inside a media
	// section, or r= before any t=.
	ErrMisplaced = errors.New("line out of place")
	// ErrDuplicate: a second o=, s= or c= where only one may be.
	ErrDuplicate = errors.New("line repeated")
	// ErrBadField: a known line whose fields do not parse.
	ErrBadField = errors.New("bad field")
	// ErrMissing: no v= or o= line.
	ErrMissing = errors.New("required line missing")
	// ErrTooLong: a line over MaxLineLength, or more than MaxLines lines.
	ErrTooLong = errors.New("over the size limit")
)

// Limits on what Parse reads. An SDP body for MSRP is well under a
// kilobyte; the bounds keep a hostile peer from making the parser work in
// proportion to garbage.
const (
	// MaxLineLength is the longest line accepted, in bytes, without its
	// line end.
	MaxLineLength = 8 << 10
	// MaxLines bounds the lines of one description.
	MaxLines = 1000
)

// SyntaxError is a description Parse refuses, naming the line at fault
// (counted from 1) and quoting the start of it.
type SyntaxError struct {
	Line int
	Text string
	Err  error
}

func (e *SyntaxError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("sdp: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("sdp: line %d %q: %v", e.Line, e.Text, e.Err)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// clip shortens input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
