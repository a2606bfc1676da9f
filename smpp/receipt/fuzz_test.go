package receipt

import (
	"strings"
	"testing"
)

func FuzzReceiptParse(f *testing.F) {
	for _, s := range []string{
		"id:0123abcd sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:Hello",
		"ID:A1b2C3 Sub:1 DLVRD:0 Submit Date:261126064012 Done Date:261126064159 Stat:undeliv Err:0A3 Text:x",
		"id : 42 stat : EXPIRED",
		"id:9 sub: dlvrd:001 err: stat:DELIVRD text:",
		"stat:REJECTD id:ff00",
		"id:1 stat:DELIVRD done date:2602300640",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := Parse(in)
		if err != nil {
			return
		}
		if r.ID == "" || r.Stat == "" || strings.ContainsFunc(r.Stat, func(c rune) bool { return 'a' <= c && c <= 'z' }) {
			t.Fatalf("accepted %+v", r)
		}
		// Parse -> Format -> Parse is stable.
		again, err := Parse(Format(r))
		if err != nil {
			t.Fatalf("Format(%+v) = %q does not parse: %v", r, Format(r), err)
		}
		if again != r {
			t.Fatalf("unstable:\n first %+v\nsecond %+v\n  text %q", r, again, Format(r))
		}
	})
}

func FuzzNormalize(f *testing.F) {
	f.Add("0A1B2C", uint8(1))
	f.Add("000255", uint8(2))
	f.Add("AbC", uint8(0))
	f.Fuzz(func(t *testing.T, id string, base uint8) {
		form := IDForm{Base: IDBase(base % 3)}
		n, err := Normalize(id, form)
		if err != nil {
			return
		}
		// A normalised id is a fixed point for its form (as decimal for
		// the number forms).
		if form.Base != AsIs {
			form.Base = Decimal
		}
		m, err := Normalize(n, form)
		if err != nil || m != n {
			t.Fatalf("Normalize(%q) = %q, again %q (%v)", id, n, m, err)
		}
	})
}
