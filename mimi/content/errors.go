package content

import (
	"errors"
	"fmt"
)

// Sentinels a *DecodeError wraps; callers branch on them with errors.Is.
var (
	ErrTruncated        = errors.New("truncated input")
	ErrMalformed        = errors.New("malformed CBOR")
	ErrIndefinite       = errors.New("indefinite length not allowed")
	ErrNotDeterministic = errors.New("not core deterministic encoding")
	ErrDuplicateKey     = errors.New("duplicate map key")
	ErrTooDeep          = errors.New("nested too deep")
	ErrInvalidUTF8      = errors.New("text is not valid UTF-8")
	ErrTrailingData     = errors.New("trailing bytes after the message")
	ErrSchema           = errors.New("does not match the MIMI schema")
	ErrLimit            = errors.New("over a MIMI limit")
)

// Sentinels for messages that are well-formed but cannot be used as asked.
var (
	// ErrNoURI: the message lacks the sender (extension 1) or room
	// (extension 2) URI that the operation needs.
	ErrNoURI = errors.New("content: message has no sender or room URI")
	// ErrInvalid: a message built in code breaks a rule of the format.
	ErrInvalid = errors.New("content: invalid message")
)

// DecodeError says what is wrong with input and where.
type DecodeError struct {
	Field  string // path of the offending item, e.g. "nestedPart.parts[1].content"
	Offset int    // byte offset where the offending item starts
	Err    error  // one of the Err* sentinels above
	Detail string // what was found, and what was expected
}

func (e *DecodeError) Error() string {
	field := e.Field
	if field == "" {
		field = "input"
	}
	if e.Detail == "" {
		return fmt.Sprintf("content: %s at byte %d: %v", field, e.Offset, e.Err)
	}
	return fmt.Sprintf("content: %s at byte %d: %v: %s", field, e.Offset, e.Err, e.Detail)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// within prefixes the field path of a *DecodeError raised inside a
// container, so the report names the full path from the top.
func within(err error, prefix string) error {
	var de *DecodeError
	if errors.As(err, &de) {
		if de.Field == "" {
			de.Field = prefix
		} else if de.Field[0] == '[' {
			de.Field = prefix + de.Field
		} else {
			de.Field = prefix + "." + de.Field
		}
	}
	return err
}

// fieldError reports a message built in code that cannot be encoded; it
// wraps ErrInvalid.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return fmt.Sprintf("%v: %s: %s", ErrInvalid, e.field, e.msg) }
func (e *fieldError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// under prefixes the field path of a fieldError raised inside a part.
func under(err error, prefix string) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		fe.field = prefix + "." + fe.field
	}
	return err
}
