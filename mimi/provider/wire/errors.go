package wire

import (
	"errors"
	"strconv"
	"strings"
)

// Errors callers branch on with errors.Is.
var (
	// ErrMalformed: bytes from outside are not the structure asked for.
	// Every error a decoder returns wraps it, as a *FieldError.
	ErrMalformed = errors.New("wire: malformed")
	// ErrInvalid: a value built in code cannot be encoded, because the
	// decoder would refuse what it would write. Every error Marshal returns
	// wraps it, as a *FieldError.
	ErrInvalid = errors.New("wire: invalid value")
)

// What is wrong with a field. A *FieldError wraps one of these beside
// ErrMalformed or ErrInvalid; they stay unexported so that callers branch
// on the two classes only, while the message says what happened.
var (
	errTruncated     = errors.New("truncated")
	errOversize      = errors.New("oversize vector")
	errNonMinimal    = errors.New("non-minimal varint")
	errLongVarint    = errors.New("8-byte varint")
	errTrailing      = errors.New("trailing bytes")
	errEnum          = errors.New("unknown value")
	errOptional      = errors.New("bad optional flag")
	errUTF8          = errors.New("invalid UTF-8")
	errElementLength = errors.New("vector length not a multiple of its element size")
	errNotAllowed    = errors.New("not allowed here")
	errEmpty         = errors.New("empty")
	errOrder         = errors.New("out of order")
	errDuplicate     = errors.New("listed twice")
	errBadTree       = errors.New("bad ratchet tree")
)

// FieldError names the field that is wrong, by its path from the top
// structure, in the spelling of the draft that defines it (RFC 9420 names
// inside MLS structures), e.g.
// "keyMaterialResponse.clients[0].clientUri".
type FieldError struct {
	Field  string // path of the offending field
	Offset int    // byte offset where the offending field starts (decoding), or the length written so far (encoding)
	Detail string // what was found, when that helps
	kind   error  // one of the err* reasons above
	class  error  // ErrMalformed or ErrInvalid
}

func (e *FieldError) Error() string {
	s := "wire: " + e.Field + ": " + e.kind.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the class (ErrMalformed or ErrInvalid) and the reason.
func (e *FieldError) Unwrap() []error { return []error{e.class, e.kind} }

// elem is one step of a field path: a name, and an index when the step is
// an element of a vector.
type elem struct {
	name string
	idx  int // -1: not an element
}

// fieldPath renders path and a last field name as
// "a.b[2].c"; built only when an error is reported.
func fieldPath(path []elem, field string) string {
	var sb strings.Builder
	for i, e := range path {
		if i > 0 && e.name != "" {
			sb.WriteByte('.')
		}
		sb.WriteString(e.name)
		if e.idx >= 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(e.idx))
			sb.WriteByte(']')
		}
	}
	if field != "" {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(field)
	}
	return sb.String()
}
