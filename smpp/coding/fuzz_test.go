package coding

import (
	"testing"
	"unicode/utf8"
)

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		dc     byte
		udhi   bool
		packed bool
		def    byte
		hex    string
	}{
		{0x00, false, false, 0, "68656c6c6f201b65"},
		{0x00, true, false, 0, "05000303020141"},
		{0x08, true, false, 0, "0608041234030100410042d83d"},
		{0x08, true, false, 0, "050003070202de000042"},
		{0x00, true, true, 0, "050003070201d069"},
		{0x00, true, true, 0, "06080400070201e834"},
		{0x00, false, true, 0, "31d98c56b3dd1a0d"},
		{0x03, false, false, 0, "a3e7e9ff"},
		{0x06, false, false, 0, "bfe0d8d2d5e2"},
		{0x07, false, false, 0, "f9ece5ed"},
		{0xF0, false, false, 0, "1b65"},
		{0x00, true, false, 0, "0a00030102"},
		{0x00, true, false, 0, "050003010203"},
		{0x00, false, false, 1, "7b7d"},
		{0x00, false, false, 2, "636166e9"},
		{0x18, false, false, 0, "0041"},
	}
	for _, s := range seeds {
		f.Add(s.dc, s.udhi, s.packed, s.def, mustHex(f, s.hex))
	}
	f.Fuzz(func(t *testing.T, dc byte, udhi, packed bool, def byte, sm []byte) {
		o := Options{DefaultAlphabet: Alphabet(def % 3), Packed: packed}
		p, err := Decode(dc, udhi, sm, o)
		if err != nil {
			return
		}
		if !utf8.ValidString(p.Text) {
			t.Fatalf("invalid UTF-8 text %q", p.Text)
		}
		if c := p.Concat; c != nil && (c.Total == 0 || c.Seq == 0 || c.Seq > c.Total) {
			t.Fatalf("impossible concat %+v accepted", c)
		}
		if p.HeadLow != 0 || p.TailHigh != 0 {
			return
		}
		switch p.Alphabet {
		case GSM7, IA5, Latin1, UCS2:
		default:
			return
		}
		// decode -> encode -> decode is stable.
		o2 := Options{DefaultAlphabet: o.DefaultAlphabet, Packed: packed, Concat: ConcatPayload}
		if p.Alphabet == GSM7 {
			o2.DefaultAlphabet = GSM7
		}
		e, err := EncodeAs(p.Text, p.Alphabet, 0, o2)
		if err != nil {
			t.Fatalf("decoded %q (%v) does not encode back: %v", p.Text, p.Alphabet, err)
		}
		if len(e.Segments) != 1 {
			t.Fatalf("payload mode gave %d segments", len(e.Segments))
		}
		q, err := Decode(e.DataCoding, false, e.Segments[0].ShortMessage, o2)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", e.Segments[0].ShortMessage, err)
		}
		want := p.Text
		if q.Text != want && !(packed && p.Alphabet == GSM7 && q.Text == want+"\r") {
			// The one allowed difference is TS 23.038's CR == CR CR at the
			// end of packed text.
			t.Fatalf("decode->encode->decode: %q -> %q", want, q.Text)
		}
	})
}
