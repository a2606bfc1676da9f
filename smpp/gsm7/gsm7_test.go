package gsm7

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fullDefault is every character of the default table in code order, with
// the escape (0x1B) left out.
const fullDefault = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

func TestEncodeTables(t *testing.T) {
	t.Parallel()
	got, err := Encode(fullDefault)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 0, 127)
	for c := 0; c < 128; c++ {
		if c != Escape {
			want = append(want, byte(c))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("default table:\n got %x\nwant %x", got, want)
	}

	extCases := []struct {
		r    rune
		code byte
	}{
		{'\f', 0x0A}, {'^', 0x14}, {'{', 0x28}, {'}', 0x29}, {'\\', 0x2F},
		{'[', 0x3C}, {'~', 0x3D}, {']', 0x3E}, {'|', 0x40}, {'€', 0x65},
	}
	for _, c := range extCases {
		got, err := Encode(string(c.r))
		if err != nil {
			t.Fatalf("%q: %v", c.r, err)
		}
		if want := []byte{Escape, c.code}; !bytes.Equal(got, want) {
			t.Errorf("%q: got %x want %x", c.r, got, want)
		}
		back, err := Decode(got)
		if err != nil || back != string(c.r) {
			t.Errorf("%q: decode %x = %q, %v", c.r, got, back, err)
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // hex
	}{
		{"", ""},
		{"hello €", "68656c6c6f201b65"},
		{"€[]{}", "1b651b3c1b3e1b281b29"},
		{"@", "00"},
		{"a\fb", "611b0a62"},
		{"ΔΣ", "1018"},
	}
	for _, tc := range tests {
		got, err := Encode(tc.in)
		if err != nil {
			t.Errorf("Encode(%q): %v", tc.in, err)
			continue
		}
		if h := hex.EncodeToString(got); h != tc.want {
			t.Errorf("Encode(%q) = %s, want %s", tc.in, h, tc.want)
		}
	}
}

func TestEncodeUnencodable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		r     rune
		index int
	}{
		{"ç", 'ç', 0},                      // 0x09 is capital Ç; the small one is not in the table
		{"abc`", '`', 3},                   // grave accent has no code
		{"hi 😀", '😀', 3},                   // emoji
		{"Привет", 'П', 0},                 // Cyrillic capital Pe, not Greek capital Pi
		{"ΑΒΓ", 'Α', 0},                    // Greek capital alpha is not Latin A: no look-alike
		{"ok\x00", 0, 2},                   // NUL has no code (0x00 is '@')
		{"bad\xffutf8", utf8.RuneError, 3}, // invalid UTF-8
		{"ü\u00a0", '\u00a0', 2},           // no-break space
	}
	for _, tc := range tests {
		_, err := Encode(tc.in)
		var ue *UnencodableError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnencodable) {
			t.Errorf("Encode(%q): err = %v, want UnencodableError", tc.in, err)
			continue
		}
		if ue.Rune != tc.r || ue.Index != tc.index {
			t.Errorf("Encode(%q): rune %q at %d, want %q at %d", tc.in, ue.Rune, ue.Index, tc.r, tc.index)
		}
		if _, ok := Septets(tc.in); ok {
			t.Errorf("Septets(%q) ok, want not encodable", tc.in)
		}
	}
}

func TestSeptets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		n  int
	}{
		{"", 0}, {"hello", 5}, {"€", 2}, {"a€b", 4}, {"€[]{}", 10}, {fullDefault, 127}, {"ΔΦ", 2},
	}
	for _, tc := range tests {
		n, ok := Septets(tc.in)
		if !ok || n != tc.n {
			t.Errorf("Septets(%q) = %d, %v; want %d, true", tc.in, n, ok, tc.n)
		}
		enc, err := Encode(tc.in)
		if err != nil || len(enc) != n {
			t.Errorf("Septets(%q) = %d but Encode gives %d septets (%v)", tc.in, n, len(enc), err)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string // hex
		want string
		err  error
	}{
		{"", "", nil},
		{"68656c6c6f", "hello", nil},
		{"1b65", "€", nil},
		{"1b0a", "\f", nil},
		{"1b1b", " ", nil},    // reserved second escape: shown as a space
		{"1b1b41", " A", nil}, // and the next septet is a default character
		{"1b41", "A", nil},    // unknown extension code: default-table character
		{"1b0d", "\r", nil},   // CR2 (reserved control): default-table CR
		{"1b00", "@", nil},
		{"1b", "", ErrInvalid}, // trailing escape
		{"41421b", "", ErrInvalid},
		{"80", "", ErrInvalid},
		{"41ff", "", ErrInvalid},
		{"1b80", "", ErrInvalid},
	}
	for _, tc := range tests {
		in, _ := hex.DecodeString(tc.in)
		got, err := Decode(in)
		if !errors.Is(err, tc.err) {
			t.Errorf("Decode(%s) err = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if got != tc.want {
			t.Errorf("Decode(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	texts := []string{
		fullDefault,
		"€[]{}^~|\\\f",
		"Price: 5€ {a|b} [x] ~y^ \\z",
		"ΔΦΓΛΩΠΨΣΘΞ ΣΑΣ", // Greek capitals that exist, plus Latin A
		strings.Repeat("@", 300),
	}
	for _, s := range texts {
		if strings.Contains(s, "Α") { // Greek alpha: not encodable
			continue
		}
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		dec, err := Decode(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip %q -> %x -> %q (%v)", s, enc, dec, err)
		}
		for fill := 0; fill < 8; fill++ {
			packed := Pack(enc, fill)
			if want := (fill + 7*len(enc) + 7) / 8; len(packed) != want {
				t.Fatalf("Pack len %d, want %d", len(packed), want)
			}
			un, err := Unpack(packed, len(enc), fill)
			if err != nil || !bytes.Equal(un, enc) {
				t.Fatalf("fill %d: unpack(pack) = %x, %v; want %x", fill, un, err, enc)
			}
		}
	}
}

func TestPackVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		fill int
		want string
	}{
		// TS 23.038 style examples widely used in SMS PDU documentation.
		{"hellohello", 0, "e8329bfd4697d9ec37"},
		{"Hello", 0, "c8329bfd06"},
		{"1234567", 0, "31d98c56b3dd00"}, // 7 septets: 7 spare bits in the last octet
		{"12345678", 0, "31d98c56b3dd70"},
		// After a 6-octet concatenation UDH one fill bit aligns the text.
		{"A", 1, "82"},
		{"hi", 1, "d069"},
	}
	for _, tc := range tests {
		s, err := Encode(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(Pack(s, tc.fill))
		if got != tc.want {
			t.Errorf("Pack(%q, %d) = %s, want %s", tc.text, tc.fill, got, tc.want)
		}
	}
}

func TestUnpackErrors(t *testing.T) {
	t.Parallel()
	if _, err := Unpack([]byte{0x31}, 2, 0); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	if _, err := Unpack(nil, 1, 0); !errors.Is(err, ErrShort) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Unpack([]byte{1, 2}, -1, 0); err == nil {
		t.Error("negative n accepted")
	}
	if _, err := Unpack([]byte{1, 2}, 1, 8); err == nil {
		t.Error("fill 8 accepted")
	}
	if got, err := Unpack([]byte{0xff}, 1, 1); err != nil || got[0] != 0x7f {
		t.Errorf("one septet after one fill bit = %x, %v", got, err)
	}
}

func TestCountAndFill(t *testing.T) {
	t.Parallel()
	if got := Count(140, 0); got != 160 {
		t.Errorf("Count(140,0) = %d", got)
	}
	if got := Count(134, FillBits(6)); got != 153 {
		t.Errorf("Count(134, fill for 6-octet UDH) = %d", got)
	}
	if got := Count(133, FillBits(7)); got != 152 {
		t.Errorf("Count(133, fill for 7-octet UDH) = %d", got)
	}
	for udh, want := range map[int]int{0: 0, 6: 1, 7: 0, 5: 2, 1: 6, 12: 2} {
		if got := FillBits(udh); got != want {
			t.Errorf("FillBits(%d) = %d, want %d", udh, got, want)
		}
	}
	if Count(0, 3) != 0 {
		t.Error("Count(0,3) != 0")
	}
}

func TestRuneSeptetsAndAppend(t *testing.T) {
	t.Parallel()
	for r, want := range map[rune]int{'a': 1, '@': 1, 'Δ': 1, '€': 2, '{': 2, '\f': 2, 'ç': 0, '😀': 0, -1: 0, 0x110000: 0} {
		if got := RuneSeptets(r); got != want {
			t.Errorf("RuneSeptets(%q) = %d, want %d", r, got, want)
		}
		if Encodable(r) != (want > 0) {
			t.Errorf("Encodable(%q) = %v", r, Encodable(r))
		}
	}
	dst := []byte{0x7F}
	got, err := AppendEncode(dst, "a€")
	if err != nil || !bytes.Equal(got, []byte{0x7F, 'a', Escape, 0x65}) {
		t.Fatalf("AppendEncode = %x, %v", got, err)
	}
	got, err = AppendEncode(dst, "aç")
	if err == nil || len(got) != 1 {
		t.Fatalf("AppendEncode with ç = %x, %v; want dst unchanged and an error", got, err)
	}
}
