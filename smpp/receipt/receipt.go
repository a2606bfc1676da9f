package receipt

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrMalformed reports receipt text that lacks the id or stat field or
// has a field whose value cannot be read (a count that is not a number, a
// date that is not YYMMDDhhmm[ss]).
var ErrMalformed = errors.New("receipt: malformed delivery receipt")

// Receipt is the content of a delivery receipt.
type Receipt struct {
	ID         string    // message id as the SMSC wrote it (see Normalize)
	Submitted  int       // sub: messages originally submitted (usually 1)
	Delivered  int       // dlvrd: messages delivered
	SubmitDate time.Time // zero when absent
	DoneDate   time.Time // zero when absent
	Stat       string    // final or intermediate state, upper case (see Classify)
	Err        string    // network or SMSC error code, as written
	Text       string    // first characters of the original message
}

type field uint8

const (
	fieldNone field = iota
	fieldID
	fieldSub
	fieldDlvrd
	fieldSubmitDate
	fieldDoneDate
	fieldStat
	fieldErr
	fieldText
)

var fieldNames = [...]string{
	fieldID: "id", fieldSub: "sub", fieldDlvrd: "dlvrd", fieldSubmitDate: "submit date",
	fieldDoneDate: "done date", fieldStat: "stat", fieldErr: "err", fieldText: "text",
}

// keys are the field names as words; between two words any run of spaces
// or underscores, or nothing, is accepted ("submit date", "submit_date",
// "SubmitDate").
var keys = [...]struct {
	f     field
	words []string
}{
	{fieldSubmitDate, []string{"submit", "date"}},
	{fieldDoneDate, []string{"done", "date"}},
	{fieldDlvrd, []string{"dlvrd"}},
	{fieldStat, []string{"stat"}},
	{fieldText, []string{"text"}},
	{fieldSub, []string{"sub"}},
	{fieldErr, []string{"err"}},
	{fieldID, []string{"id"}},
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// matchWord reports whether s[i:] starts with w, ignoring ASCII case.
func matchWord(s string, i int, w string) bool {
	if len(s)-i < len(w) {
		return false
	}
	for k := 0; k < len(w); k++ {
		if lower(s[i+k]) != w[k] {
			return false
		}
	}
	return true
}

// matchKey reports which field name starts at s[i], followed by optional
// spaces and a colon, and the offset after the colon.
func matchKey(s string, i int) (field, int) {
	for _, k := range keys {
		j := i
		ok := true
		for n, w := range k.words {
			if n > 0 {
				for j < len(s) && (s[j] == ' ' || s[j] == '_') {
					j++
				}
			}
			if !matchWord(s, j, w) {
				ok = false
				break
			}
			j += len(w)
		}
		if !ok {
			continue
		}
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j < len(s) && s[j] == ':' {
			return k.f, j + 1
		}
	}
	return fieldNone, i
}

// Parse reads the text form of a delivery receipt. Field names are matched
// without regard to case, in any order, with any spacing; unknown fields
// are skipped; a field given twice counts by its first occurrence. id and
// stat are required, the others optional. text runs to the end of the
// input (leading spaces removed). Dates are YYMMDDhhmm or YYMMDDhhmmss, in
// years 2000-2099, read as UTC: the SMSC's zone is not in the receipt.
func Parse(text []byte) (Receipt, error) {
	s := string(text)
	var r Receipt
	var seen [fieldText + 1]bool
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		f, after := matchKey(s, i)
		if f == fieldNone {
			for i < len(s) && !isSpace(s[i]) {
				i++
			}
			continue
		}
		if f == fieldText {
			j := after
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if !seen[fieldText] {
				r.Text, seen[fieldText] = s[j:], true
			}
			break
		}
		j := after
		for j < len(s) && s[j] == ' ' {
			j++
		}
		end := j
		if next, _ := matchKey(s, j); next == fieldNone || j == after {
			// A value follows the colon, unless spaces lead to the next
			// field name: then this field is empty.
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
		}
		if !seen[f] {
			seen[f] = true
			if err := r.set(f, s[j:end]); err != nil {
				return Receipt{}, err
			}
		}
		i = end
	}
	if r.ID == "" {
		return Receipt{}, fmt.Errorf("%w: no id", ErrMalformed)
	}
	if r.Stat == "" {
		return Receipt{}, fmt.Errorf("%w: no stat (id %q)", ErrMalformed, r.ID)
	}
	return r, nil
}

func (r *Receipt) set(f field, v string) error {
	var err error
	switch f {
	case fieldID:
		r.ID = v
	case fieldSub:
		r.Submitted, err = count(v)
	case fieldDlvrd:
		r.Delivered, err = count(v)
	case fieldSubmitDate:
		r.SubmitDate, err = date(v)
	case fieldDoneDate:
		r.DoneDate, err = date(v)
	case fieldStat:
		r.Stat = upper(v)
	case fieldErr:
		r.Err = v
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, fieldNames[f], err)
	}
	return nil
}

func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// count reads sub: or dlvrd:, nominally three digits; an empty value is 0.
func count(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	if len(v) > 9 {
		return 0, fmt.Errorf("%q: too long", v)
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("%q: not a number", v)
		}
		n = 10*n + int(v[i]-'0')
	}
	return n, nil
}

func digits2(v string, i int) int { return int(v[i]-'0')*10 + int(v[i+1]-'0') }

// date reads YYMMDDhhmm or YYMMDDhhmmss; an empty value is the zero time.
func date(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if len(v) != 10 && len(v) != 12 {
		return time.Time{}, fmt.Errorf("%q: want YYMMDDhhmm or YYMMDDhhmmss", v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return time.Time{}, fmt.Errorf("%q: want YYMMDDhhmm or YYMMDDhhmmss", v)
		}
	}
	y, mo, d, h, mi := 2000+digits2(v, 0), digits2(v, 2), digits2(v, 4), digits2(v, 6), digits2(v, 8)
	sec := 0
	if len(v) == 12 {
		sec = digits2(v, 10)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Month() != time.Month(mo) || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != sec {
		return time.Time{}, fmt.Errorf("%q: not a valid date", v)
	}
	return t, nil
}

// Format writes r in the text form Parse reads: the SMPP 3.4 Appendix B
// layout, sub and dlvrd as three digits, dates as YYMMDDhhmm (with seconds
// when they are not zero). A zero date and an empty err are left out.
func Format(r Receipt) []byte {
	b := make([]byte, 0, 96+len(r.ID)+len(r.Text))
	b = append(b, "id:"...)
	b = append(b, r.ID...)
	b = append(b, " sub:"...)
	b = pad3(b, r.Submitted)
	b = append(b, " dlvrd:"...)
	b = pad3(b, r.Delivered)
	if !r.SubmitDate.IsZero() {
		b = append(b, " submit date:"...)
		b = appendDate(b, r.SubmitDate)
	}
	if !r.DoneDate.IsZero() {
		b = append(b, " done date:"...)
		b = appendDate(b, r.DoneDate)
	}
	b = append(b, " stat:"...)
	b = append(b, r.Stat...)
	if r.Err != "" {
		b = append(b, " err:"...)
		b = append(b, r.Err...)
	}
	b = append(b, " text:"...)
	return append(b, r.Text...)
}

func pad3(b []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	for p := 100; p > n && p > 1; p /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = two(b, t.Year()%100)
	b = two(b, int(t.Month()))
	b = two(b, t.Day())
	b = two(b, t.Hour())
	b = two(b, t.Minute())
	if t.Second() != 0 {
		b = two(b, t.Second())
	}
	return b
}
