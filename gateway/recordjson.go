package gateway

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// marshalInRecord is json.Marshal(r), byte for byte, written without
// reflection for the record every message from a phone gets. Records it
// does not cover (with notifications told, or a time JSON cannot hold)
// go through json.Marshal.
func marshalInRecord(r inRecord) ([]byte, error) {
	if len(r.Told) > 0 || !r.At.IsZero() && !plainTime(r.At) {
		return marshalInRecordJSON(r)
	}
	// The names, quotes and a time with nanoseconds come to under 176.
	n := 176 + len(r.Channel) + len(r.From) + len(r.To) + len(r.Ref) + len(r.ConversationID) + len(r.Excerpt)
	b := make([]byte, 0, n)
	b = append(b, `{"channel":`...)
	b = appendJSONString(b, string(r.Channel))
	b = append(b, `,"from":`...)
	b = appendJSONString(b, string(r.From))
	b = append(b, `,"to":`...)
	b = appendJSONString(b, string(r.To))
	if r.Ref != "" {
		b = append(b, `,"ref":`...)
		b = appendJSONString(b, r.Ref)
	}
	if r.ConversationID != "" {
		b = append(b, `,"conversation_id":`...)
		b = appendJSONString(b, r.ConversationID)
	}
	b = append(b, `,"notify":{"Delivery":`...)
	b = strconv.AppendBool(b, r.Notify.Delivery)
	b = append(b, `,"Display":`...)
	b = strconv.AppendBool(b, r.Notify.Display)
	b = append(b, '}')
	if r.Excerpt != "" {
		b = append(b, `,"excerpt":`...)
		b = appendJSONString(b, r.Excerpt)
	}
	if !r.At.IsZero() {
		b = append(b, `,"at":`...)
		b = r.At.AppendFormat(b, `"`+"2006-01-02T15:04:05.999999999Z07:00"+`"`)
	}
	return append(b, '}'), nil
}

// marshalInRecordJSON is json.Marshal(r), apart so that r does not escape
// to the heap in marshalInRecord.
//
//go:noinline
func marshalInRecordJSON(r inRecord) ([]byte, error) { return json.Marshal(r) }

// plainTime reports whether t is in the range of RFC 3339 times that
// time.Time.MarshalJSON writes (years 0 to 9999, zone offsets under 24
// hours, in whole minutes).
func plainTime(t time.Time) bool {
	_, off := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && off > -24*3600 && off < 24*3600 && off%60 == 0
}

// appendJSONString appends s as encoding/json writes a string: quoted,
// with control characters, quotes, backslashes, <, > and & escaped, bytes
// that are not UTF-8 as U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
