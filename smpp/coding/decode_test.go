package coding

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDataCoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dc   byte
		o    Options
		sm   string
		want string
		a    Alphabet
		err  error
	}{
		{"gsm default", 0x00, Options{}, "68656c6c6f201b65", "hello €", GSM7, nil},
		{"gsm packed", 0x00, Options{Packed: true}, "e8329bfd06", "hello", GSM7, nil},
		{"0x00 as latin1", 0x00, Options{DefaultAlphabet: Latin1}, "636166e9", "café", Latin1, nil},
		{"0x00 as ia5", 0x00, Options{DefaultAlphabet: IA5}, "7b7d", "{}", IA5, nil},
		{"ia5", 0x01, Options{}, "5b5d7e", "[]~", IA5, nil},
		{"ia5 high byte", 0x01, Options{}, "41e9", "", IA5, ErrUndecodable},
		{"binary 0x02", 0x02, Options{}, "0102", "", Binary, ErrUndecodable},
		{"binary 0x04", 0x04, Options{}, "0102", "", Binary, ErrUndecodable},
		{"latin1", 0x03, Options{}, "a3 e7 e9 ff", "£çéÿ", Latin1, nil},
		{"jis", 0x05, Options{}, "2422", "", Binary, ErrUndecodable},
		{"cyrillic", 0x06, Options{}, "bfe0d8d2d5e2 a1 f0 fd", "ПриветЁ№§", Cyrillic, nil},
		{"hebrew", 0x07, Options{}, "f9ec e5ed aa", "שלום×", Hebrew, nil},
		{"hebrew unassigned", 0x07, Options{}, "c0", "", Hebrew, ErrUndecodable},
		{"ucs2", 0x08, Options{}, "041f 0440 0438 0020 d83d de00", "При 😀", UCS2, nil},
		{"ucs2 odd", 0x08, Options{}, "041f04", "", UCS2, ErrUndecodable},
		{"ucs2 lone high", 0x08, Options{}, "d83d0041", "", UCS2, ErrUndecodable},
		{"ucs2 lone low", 0x08, Options{}, "0041de00", "", UCS2, ErrUndecodable},
		{"ucs2 high at end", 0x08, Options{}, "0041d83d", "", UCS2, ErrUndecodable},
		{"pictogram", 0x09, Options{}, "00", "", Binary, ErrUndecodable},
		{"reserved 0x0B", 0x0B, Options{}, "00", "", Binary, ErrUndecodable},
		{"gsm class 1", 0x11, Options{}, "414243", "ABC", GSM7, nil},
		{"8-bit class 1", 0x15, Options{}, "414243", "", Binary, ErrUndecodable},
		{"ucs2 class 2", 0x1A, Options{}, "00410042", "AB", UCS2, nil},
		{"reserved alphabet", 0x1C, Options{}, "00", "", Binary, ErrUndecodable},
		{"compressed", 0x24, Options{}, "00", "", Binary, ErrUndecodable},
		{"auto-delete gsm", 0x40, Options{}, "41", "A", GSM7, nil},
		{"auto-delete ucs2", 0x58, Options{}, "0041", "A", UCS2, nil},
		{"reserved group", 0x90, Options{}, "41", "", Binary, ErrUndecodable},
		{"mwi discard", 0xC0, Options{}, "41", "A", GSM7, nil},
		{"mwi store", 0xD8, Options{}, "41", "A", GSM7, nil},
		{"mwi store ucs2", 0xE0, Options{}, "20ac", "€", UCS2, nil},
		{"class 0 gsm", 0xF0, Options{}, "1b65", "€", GSM7, nil},
		{"class 0 gsm packed", 0xF0, Options{Packed: true}, "c8329bfd06", "Hello", GSM7, nil},
		{"class 1 8-bit", 0xF5, Options{}, "41", "", Binary, ErrUndecodable},
		{"gsm high byte", 0x00, Options{}, "41c1", "", GSM7, ErrUndecodable},
		{"gsm trailing escape", 0x00, Options{}, "411b", "", GSM7, ErrUndecodable},
		{"empty", 0x00, Options{}, "", "", GSM7, nil},
	}
	for _, tc := range tests {
		p, err := Decode(tc.dc, false, mustHex(t, tc.sm), tc.o)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "0x") {
				t.Errorf("%s: error does not name the coding or byte: %v", tc.name, err)
			}
			continue
		}
		if p.Text != tc.want || p.Alphabet != tc.a || p.Concat != nil {
			t.Errorf("%s: got %q (%v, %+v), want %q (%v)", tc.name, p.Text, p.Alphabet, p.Concat, tc.want, tc.a)
		}
	}
}

func TestParseUDH(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sm     string
		concat *ConcatInfo
		body   string
		err    error
	}{
		{"8-bit ref", "050003 2a 03 02 41", &ConcatInfo{Ref: 0x2a, Total: 3, Seq: 2}, "41", nil},
		{"16-bit ref", "060804 1234 03 01 41", &ConcatInfo{Ref: 0x1234, Total: 3, Seq: 1, Wide: true}, "41", nil},
		{"other IEs skipped", "0d 240101 0a03000000 0003030301 41", &ConcatInfo{Ref: 3, Total: 3, Seq: 1}, "41", nil},
		{"other IEs around concat", "0c 240101 0003010202 0a020000 41", &ConcatInfo{Ref: 1, Total: 2, Seq: 2}, "41", nil},
		{"no concat", "03 240101 41", nil, "41", nil},
		{"empty header", "00 41", nil, "41", nil},
		{"last concat wins", "0a 000301 0201 000302 0202 41", &ConcatInfo{Ref: 2, Total: 2, Seq: 2}, "41", nil},
		{"header past end", "0a 000301 0201", nil, "", ErrBadUDH},
		{"element past header", "04 0003 01 02 41", nil, "", ErrBadUDH},
		{"element header cut", "01 00 41", nil, "", ErrBadUDH},
		{"part 0", "050003 01 02 00", nil, "", ErrBadUDH},
		{"part above total", "050003 01 02 03", nil, "", ErrBadUDH},
		{"total 0", "050003 01 00 00", nil, "", ErrBadUDH},
		{"16-bit part 0", "060804 0001 02 00", nil, "", ErrBadUDH},
		{"concat8 wrong length", "060004 01 02 01 00 41", nil, "", ErrBadUDH},
		{"concat16 wrong length", "050803 01 02 01 41", nil, "", ErrBadUDH},
		{"empty message", "", nil, "", ErrBadUDH},
	}
	for _, tc := range tests {
		_, body, c, err := ParseUDH(mustHex(t, tc.sm))
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if hex.EncodeToString(body) != tc.body {
			t.Errorf("%s: body %x, want %s", tc.name, body, tc.body)
		}
		if (c == nil) != (tc.concat == nil) || (c != nil && *c != *tc.concat) {
			t.Errorf("%s: concat %+v, want %+v", tc.name, c, tc.concat)
		}
	}
}

func TestDecodeWithUDH(t *testing.T) {
	t.Parallel()
	// Packed GSM after a 6-octet header: one fill bit.
	p, err := Decode(0x00, true, mustHex(t, "050003 07 02 01 d069"), Options{Packed: true})
	if err != nil || p.Text != "hi" || p.Concat == nil || p.Concat.Ref != 7 {
		t.Fatalf("packed with header: %+v, %v", p, err)
	}
	// Packed GSM after a 7-octet header: no fill bits.
	p, err = Decode(0x00, true, mustHex(t, "060804 0007 02 01 e834"), Options{Packed: true})
	if err != nil || p.Text != "hi" {
		t.Fatalf("packed with 16-bit header: %+v, %v", p, err)
	}
	// A bad header fails even when the text is fine.
	if _, err := Decode(0x00, true, mustHex(t, "050003 07 02 03 41"), Options{}); !errors.Is(err, ErrBadUDH) {
		t.Fatalf("part 3 of 2: %v", err)
	}
	// UCS-2 parts may carry half of a surrogate pair a sender cut.
	p, err = Decode(0x08, true, mustHex(t, "050003 07 02 01 0041 d83d"), Options{})
	if err != nil || p.Text != "A" || p.TailHigh != 0xd83d {
		t.Fatalf("cut pair, first half: %+v, %v", p, err)
	}
	p, err = Decode(0x08, true, mustHex(t, "050003 07 02 02 de00 0042"), Options{})
	if err != nil || p.Text != "B" || p.HeadLow != 0xde00 {
		t.Fatalf("cut pair, second half: %+v, %v", p, err)
	}
	// But not inside a part, nor in a message that is not a part.
	if _, err := Decode(0x08, true, mustHex(t, "050003 07 02 02 0042 de00 0042"), Options{}); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("lone low surrogate inside a part: %v", err)
	}
}

func TestSAR(t *testing.T) {
	t.Parallel()
	c, err := ParseSAR([]byte{0x12, 0x34}, []byte{3}, []byte{2})
	if err != nil || c != (ConcatInfo{Ref: 0x1234, Total: 3, Seq: 2, Wide: true}) {
		t.Fatalf("ParseSAR: %+v, %v", c, err)
	}
	bad := [][3][]byte{
		{{0x12}, {3}, {2}},
		{{0x12, 0x34}, nil, {2}},
		{{0x12, 0x34}, {3}, {0}},
		{{0x12, 0x34}, {3}, {4}},
		{{0x12, 0x34}, {0}, {0}},
		{{0x12, 0x34}, {3, 0}, {1}},
	}
	for _, b := range bad {
		if _, err := ParseSAR(b[0], b[1], b[2]); !errors.Is(err, ErrBadSAR) {
			t.Errorf("ParseSAR(%x, %x, %x): %v", b[0], b[1], b[2], err)
		}
	}
	p, err := DecodeSAR(0x08, false, mustHex(t, "0041 d83d"), c, Options{})
	if err != nil || p.Text != "A" || p.TailHigh != 0xd83d || p.Concat == nil || *p.Concat != c {
		t.Fatalf("DecodeSAR: %+v, %v", p, err)
	}
	// Header and SAR that disagree.
	if _, err := DecodeSAR(0x00, true, mustHex(t, "050003 01 03 01 41"), c, Options{}); !errors.Is(err, ErrBadSAR) {
		t.Fatalf("conflicting header: %v", err)
	}
	if _, err := DecodeSAR(0x00, false, []byte("A"), ConcatInfo{Ref: 1, Total: 2, Seq: 3}, Options{}); !errors.Is(err, ErrBadSAR) {
		t.Fatalf("part 3 of 2: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	good := []Options{{}, {DefaultAlphabet: IA5, Packed: true}, {DefaultAlphabet: Latin1, Concat: ConcatPayload, MaxSegments: 255}}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]Options{
		"default_alphabet": {DefaultAlphabet: UCS2},
		"concat":           {Concat: 9},
		"max_segments":     {MaxSegments: 256},
	}
	for key, o := range bad {
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%+v: err %v does not name %s", o, err, key)
		}
	}
	var a Alphabet
	if err := a.UnmarshalText([]byte("latin1")); err != nil || a != Latin1 {
		t.Errorf("UnmarshalText latin1: %v %v", a, err)
	}
	if err := a.UnmarshalText([]byte("utf8")); err == nil {
		t.Error("UnmarshalText utf8 accepted")
	}
	var c Concat
	if err := c.UnmarshalText([]byte("udh16")); err != nil || c != ConcatUDH16 {
		t.Errorf("UnmarshalText udh16: %v %v", c, err)
	}
	if b, err := ConcatSAR.MarshalText(); err != nil || string(b) != "sar" {
		t.Errorf("MarshalText: %s %v", b, err)
	}
}
