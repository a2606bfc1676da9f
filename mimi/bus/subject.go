package bus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mimigw/mimigw/mimi/uri"
)

// Subject prefixes of the bus contract (docs/architecture.md, bus
// contract); the last token is the E.164 number without its plus.
const (
	toPhonePrefix   = "mimi.to.tel."
	fromPhonePrefix = "mimi.from.tel."

	// ToPhoneSubjects and FromPhoneSubjects are the streams' subject filters.
	ToPhoneSubjects   = toPhonePrefix + ">"
	FromPhoneSubjects = fromPhonePrefix + ">"
)

// ErrBadSubject is returned for a subject that is not a bus subject.
var ErrBadSubject = errors.New("not a bus subject")

// SubjectToPhone is where MIMI messages for the phone user n are published:
// "mimi.to.tel.15551230002".
func SubjectToPhone(n uri.Number) string { return toPhonePrefix + n.Digits() }

// SubjectFromPhone is where the gateway publishes what the phone user n
// sends: "mimi.from.tel.15551230002".
func SubjectFromPhone(n uri.Number) string { return fromPhonePrefix + n.Digits() }

// NumberFromSubject returns the phone number a to- or from-phone subject
// names.
func NumberFromSubject(subject string) (uri.Number, error) {
	var digits string
	switch {
	case strings.HasPrefix(subject, toPhonePrefix):
		digits = subject[len(toPhonePrefix):]
	case strings.HasPrefix(subject, fromPhonePrefix):
		digits = subject[len(fromPhonePrefix):]
	default:
		return "", fmt.Errorf("%w: %.80q does not start with %q or %q", ErrBadSubject, subject, toPhonePrefix, fromPhonePrefix)
	}
	n, err := uri.NumberFromDigits(digits)
	if err != nil {
		return "", fmt.Errorf("%w: %.80q: %w", ErrBadSubject, subject, err)
	}
	return n, nil
}

// isFromPhone reports whether subject is on the from-phone stream's subjects.
func isFromPhone(subject string) bool { return strings.HasPrefix(subject, fromPhonePrefix) }

// validSubject reports whether s is a literal NATS subject one can publish
// to: non-empty tokens, no wildcards, no whitespace or control bytes.
func validSubject(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	tokenStart := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			tok := s[tokenStart:i]
			if tok == "" || tok == "*" || tok == ">" {
				return false
			}
			tokenStart = i + 1
			continue
		}
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// subjectKind labels metrics without putting numbers in label values.
func subjectKind(s string) string {
	switch {
	case strings.HasPrefix(s, toPhonePrefix):
		return "to_phone"
	case strings.HasPrefix(s, fromPhonePrefix):
		return "from_phone"
	case strings.HasPrefix(s, timerPrefix):
		return "timer"
	}
	return "other"
}
