package receipt

import (
	"errors"
	"testing"
	"time"
)

func at(y, mo, d, h, mi, s int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Receipt
	}{
		{
			"spec example",
			"id:0123abcd sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:Hello",
			Receipt{ID: "0123abcd", Submitted: 1, Delivered: 1, SubmitDate: at(2026, 11, 26, 6, 40, 0),
				DoneDate: at(2026, 11, 26, 6, 41, 0), Stat: "DELIVRD", Err: "000", Text: "Hello"},
		},
		{
			"seconds and mixed case",
			"ID:A1b2C3 Sub:1 DLVRD:0 Submit Date:261126064012 Done Date:261126064159 Stat:undeliv Err:0A3 Text:Hi there: stat:DELIVRD",
			Receipt{ID: "A1b2C3", Submitted: 1, SubmitDate: at(2026, 11, 26, 6, 40, 12),
				DoneDate: at(2026, 11, 26, 6, 41, 59), Stat: "UNDELIV", Err: "0A3", Text: "Hi there: stat:DELIVRD"},
		},
		{
			"extra spaces and underscores",
			"  id : 42   sub:001  dlvrd:001 submit_date: 2601010000 done_date:2601010001   stat : EXPIRED err:  027 text:   x",
			Receipt{ID: "42", Submitted: 1, Delivered: 1, SubmitDate: at(2026, 1, 1, 0, 0, 0),
				DoneDate: at(2026, 1, 1, 0, 1, 0), Stat: "EXPIRED", Err: "027", Text: "x"},
		},
		{
			"only id and stat",
			"id:7 stat:ENROUTE",
			Receipt{ID: "7", Stat: "ENROUTE"},
		},
		{
			"other order, unknown fields, no text",
			"stat:REJECTD smsc:op1 id:ff00 err:011 dlvrd:000 sub:001",
			Receipt{ID: "ff00", Submitted: 1, Stat: "REJECTD", Err: "011"},
		},
		{
			"empty optional value before next field",
			"id:9 sub: dlvrd:001 err: stat:DELIVRD text:",
			Receipt{ID: "9", Delivered: 1, Stat: "DELIVRD"},
		},
		{
			"first of a repeated field counts",
			"id:1 id:2 stat:DELIVRD stat:UNDELIV",
			Receipt{ID: "1", Stat: "DELIVRD"},
		},
		{
			"uuid id",
			"id:6f1c2a8e-1b7d-4a3e-9c5f-0e2d4b6a8c10 sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
			Receipt{ID: "6f1c2a8e-1b7d-4a3e-9c5f-0e2d4b6a8c10", Submitted: 1, Delivered: 1, Stat: "DELIVRD", Err: "000"},
		},
		{
			"newline separated",
			"id:5\nsub:001\ndlvrd:001\nstat:DELIVRD\ntext:two\nlines",
			Receipt{ID: "5", Submitted: 1, Delivered: 1, Stat: "DELIVRD", Text: "two\nlines"},
		},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	bad := []string{
		"",
		"hello world",
		"sub:001 dlvrd:001 stat:DELIVRD",           // no id
		"id:1 sub:001 dlvrd:001",                   // no stat
		"id: stat:DELIVRD",                         // empty id
		"id:1 stat:DELIVRD sub:one",                // count not a number
		"id:1 stat:DELIVRD submit date:26112606",   // 8-digit date
		"id:1 stat:DELIVRD done date:2613260640",   // month 13
		"id:1 stat:DELIVRD done date:2602300640",   // 30 February
		"id:1 stat:DELIVRD done date:2611262460",   // 24:60
		"id:1 stat:DELIVRD done date:26112606401x", // not digits
		"id:1 stat:DELIVRD dlvrd:12345678901",      // too long
		"text:id:1 stat:DELIVRD",                   // all of it is text
	}
	for _, in := range bad {
		if r, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrMalformed", in, r, err)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()
	rs := []Receipt{
		{ID: "0123abcd", Submitted: 1, Delivered: 1, SubmitDate: at(2026, 11, 26, 6, 40, 0),
			DoneDate: at(2026, 11, 26, 6, 41, 0), Stat: "DELIVRD", Err: "000", Text: "Hello"},
		{ID: "42", Submitted: 3, Delivered: 0, SubmitDate: at(2099, 12, 31, 23, 59, 59),
			DoneDate: at(2000, 1, 1, 0, 0, 1), Stat: "UNDELIV", Err: "0A3", Text: "text: with stat:DELIVRD inside"},
		{ID: "x", Stat: "ENROUTE"},
		{ID: "big", Submitted: 1000, Delivered: 999, Stat: "ACCEPTD", Text: "€ and ünïcode"},
	}
	for _, r := range rs {
		b := Format(r)
		got, err := Parse(b)
		if err != nil || got != r {
			t.Errorf("Parse(Format) of %+v:\n %s\n got %+v, %v", r, b, got, err)
		}
	}
	want := "id:0123abcd sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:Hello"
	if got := string(Format(rs[0])); got != want {
		t.Errorf("Format = %q\nwant %q", got, want)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stat  string
		state uint8
		final bool
		out   Outcome
	}{
		{"DELIVRD", StateDelivered, true, Delivered},
		{"EXPIRED", StateExpired, true, Expired},
		{"DELETED", StateDeleted, true, Failed},
		{"UNDELIV", StateUndeliverable, true, Failed},
		{"REJECTD", StateRejected, true, Failed},
		{"SKIPPED", StateSkipped, true, Failed},
		{"ENROUTE", StateEnroute, false, Pending},
		{"ACCEPTD", StateAccepted, false, Pending},
		{"UNKNOWN", StateUnknown, false, Pending},
		{"SCHEDULED", StateScheduled, false, Pending},
	}
	for _, tc := range tests {
		if f, o := Classify(tc.stat); f != tc.final || o != tc.out {
			t.Errorf("Classify(%s) = %v, %v", tc.stat, f, o)
		}
		if f, o := ClassifyState(tc.state); f != tc.final || o != tc.out {
			t.Errorf("ClassifyState(%d) = %v, %v", tc.state, f, o)
		}
		if s, ok := Stat(tc.state); !ok || s != tc.stat {
			t.Errorf("Stat(%d) = %q", tc.state, s)
		}
		if st, ok := State(tc.stat); !ok || st != tc.state {
			t.Errorf("State(%s) = %d", tc.stat, st)
		}
	}
	for _, s := range []string{"delivrd", " Delivered ", "DELIVERED"} {
		if f, o := Classify(s); !f || o != Delivered {
			t.Errorf("Classify(%q) = %v %v", s, f, o)
		}
	}
	if f, o := Classify("WHATEVER"); f || o != Pending {
		t.Errorf("unknown stat: %v %v", f, o)
	}
	if f, _ := ClassifyState(200); f {
		t.Error("state 200 final")
	}
	if _, ok := Stat(10); ok {
		t.Error("Stat(10) defined")
	}
}
