package coding

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	latin := Options{UseLatin1: true}
	tests := []struct {
		name string
		text string
		o    Options
		want Alphabet
	}{
		{"ascii", "hello", Options{}, GSM7},
		{"extension", "€[]{}", Options{}, GSM7},
		{"accented in table", "café à Öl", Options{}, GSM7},
		{"small c cedilla", "ça va", Options{}, UCS2},
		{"small c cedilla latin1", "ça va", latin, Latin1},
		{"cyrillic", "Привет", latin, UCS2},
		{"greek mixed", "ΔΣ and α", Options{}, UCS2},
		{"emoji", "hi 😀", latin, UCS2},
		{"euro not latin1", "5€ ç", latin, UCS2},
		// 100 brackets: 200 septets (2 messages) but 100 Latin-1 octets (1).
		{"brackets cheaper in latin1", strings.Repeat("[", 100), latin, Latin1},
		// Without Latin-1: GSM 2 messages, UCS-2 2 messages; GSM wins the tie.
		{"brackets tie", strings.Repeat("[", 100), Options{}, GSM7},
		{"ia5 default", "plain [text]", Options{DefaultAlphabet: IA5}, IA5},
		{"ia5 default, pound", "£5", Options{DefaultAlphabet: IA5}, UCS2},
		{"latin1 default", "£5 ç", Options{DefaultAlphabet: Latin1}, Latin1},
		{"empty", "", Options{}, GSM7},
	}
	for _, tc := range tests {
		if got := Choose(tc.text, tc.o); got != tc.want {
			t.Errorf("%s: Choose(%q) = %v, want %v", tc.name, tc.text, got, tc.want)
		}
	}
}

func TestEncodeSingle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		o    Options
		dc   byte
		sm   string
	}{
		{"hello €", Options{}, 0x00, "68656c6c6f201b65"},
		{"€[]{}", Options{}, 0x00, "1b651b3c1b3e1b281b29"},
		{"hello", Options{Packed: true}, 0x00, "e8329bfd06"},
		{"ça", Options{UseLatin1: true}, 0x03, "e761"},
		{"ça", Options{}, 0x08, "00e70061"},
		{"😀", Options{}, 0x08, "d83dde00"},
		{"abc", Options{DefaultAlphabet: IA5}, 0x00, "616263"},
		{"ç", Options{DefaultAlphabet: Latin1}, 0x00, "e7"},
	}
	for _, tc := range tests {
		e, err := Encode(tc.text, tc.o)
		if err != nil {
			t.Errorf("Encode(%q): %v", tc.text, err)
			continue
		}
		if e.DataCoding != tc.dc || len(e.Segments) != 1 || e.Count != 1 {
			t.Errorf("Encode(%q): dc 0x%02X, %d segments, count %d", tc.text, e.DataCoding, len(e.Segments), e.Count)
			continue
		}
		s := e.Segments[0]
		if got := hex.EncodeToString(s.ShortMessage); got != tc.sm || s.ESMClassUDHI || s.SAR != nil || s.Payload {
			t.Errorf("Encode(%q) = %s %+v, want %s", tc.text, got, s, tc.sm)
		}
	}
}

// decodeAll decodes every segment on its own and joins the texts in order,
// checking each one's concatenation numbering.
func decodeAll(t *testing.T, e Encoded, ref uint16, o Options) string {
	t.Helper()
	var b strings.Builder
	for i, s := range e.Segments {
		var p Part
		var err error
		if s.SAR != nil {
			p, err = DecodeSAR(e.DataCoding, s.ESMClassUDHI, s.ShortMessage,
				ConcatInfo{Ref: s.SAR.Ref, Total: s.SAR.Total, Seq: s.SAR.Seq}, o)
		} else {
			p, err = Decode(e.DataCoding, s.ESMClassUDHI, s.ShortMessage, o)
		}
		if err != nil {
			t.Fatalf("segment %d (%x) does not decode on its own: %v", i+1, s.ShortMessage, err)
		}
		if p.HeadLow != 0 || p.TailHigh != 0 {
			t.Fatalf("segment %d cuts a surrogate pair", i+1)
		}
		if len(e.Segments) > 1 && !s.Payload {
			c := p.Concat
			if c == nil || int(c.Seq) != i+1 || int(c.Total) != len(e.Segments) {
				t.Fatalf("segment %d: concat %+v", i+1, c)
			}
			wantRef := ref
			if o.Concat == ConcatUDH8 {
				wantRef &= 0xFF
			}
			if c.Ref != wantRef {
				t.Fatalf("segment %d: ref %d, want %d", i+1, c.Ref, wantRef)
			}
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

func TestEncodeLong(t *testing.T) {
	t.Parallel()
	emoji90 := strings.Repeat("😀", 90) // 180 UTF-16 units
	tests := []struct {
		name  string
		text  string
		o     Options
		sizes []int // body units per segment (septets, octets or UTF-16 units)
	}{
		{"gsm 161", strings.Repeat("a", 161), Options{}, []int{153, 8}},
		{"gsm 160 fits", strings.Repeat("a", 160), Options{}, []int{160}},
		{"gsm escape not split", strings.Repeat("a", 152) + "€" + strings.Repeat("b", 10), Options{}, []int{152, 12}},
		{"gsm escape fits", strings.Repeat("a", 151) + "€" + strings.Repeat("b", 10), Options{}, []int{153, 10}},
		{"gsm udh16", strings.Repeat("a", 161), Options{Concat: ConcatUDH16}, []int{152, 9}},
		{"gsm sar", strings.Repeat("a", 321), Options{Concat: ConcatSAR}, []int{160, 160, 1}},
		{"ucs2 three", emoji90, Options{}, []int{66, 66, 48}},
		{"ucs2 pair at edge", "a" + strings.Repeat("😀", 40), Options{}, []int{67, 14}},
		{"ucs2 pair not split", "ab" + strings.Repeat("😀", 40), Options{}, []int{66, 16}},
		{"ucs2 udh16", strings.Repeat("я", 71), Options{Concat: ConcatUDH16}, []int{66, 5}},
		{"ucs2 sar", strings.Repeat("я", 71), Options{Concat: ConcatSAR}, []int{70, 1}},
		{"latin1", strings.Repeat("ç", 141), Options{UseLatin1: true}, []int{134, 7}},
		{"latin1 udh16", strings.Repeat("ç", 141), Options{UseLatin1: true, Concat: ConcatUDH16}, []int{133, 8}},
		{"greek cyrillic mixed", strings.Repeat("Ωмир ", 20), Options{}, []int{67, 33}},
		{"packed gsm", strings.Repeat("x", 200), Options{Packed: true}, []int{153, 47}},
		{"packed gsm udh16", strings.Repeat("x", 200), Options{Packed: true, Concat: ConcatUDH16}, []int{152, 48}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const ref = 0x1234
			e, err := EncodeRef(tc.text, ref, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Segments) != len(tc.sizes) || e.Count != len(tc.sizes) {
				t.Fatalf("%d segments (count %d), want %d", len(e.Segments), e.Count, len(tc.sizes))
			}
			for i, s := range e.Segments {
				if s.ShortMessage == nil || len(s.ShortMessage) > 160 {
					t.Fatalf("segment %d: %d octets", i+1, len(s.ShortMessage))
				}
				body := s.ShortMessage
				if len(e.Segments) > 1 {
					switch tc.o.Concat {
					case ConcatUDH8:
						want := []byte{5, 0, 3, 0x34, byte(len(e.Segments)), byte(i + 1)}
						if !s.ESMClassUDHI || !bytes.Equal(body[:6], want) {
							t.Fatalf("segment %d: UDH %x, want %x", i+1, body[:6], want)
						}
						body = body[6:]
					case ConcatUDH16:
						want := []byte{6, 8, 4, 0x12, 0x34, byte(len(e.Segments)), byte(i + 1)}
						if !s.ESMClassUDHI || !bytes.Equal(body[:7], want) {
							t.Fatalf("segment %d: UDH %x, want %x", i+1, body[:7], want)
						}
						body = body[7:]
					case ConcatSAR:
						if s.ESMClassUDHI || s.SAR == nil || *s.SAR != (SAR{Ref: ref, Total: uint8(len(e.Segments)), Seq: uint8(i + 1)}) {
							t.Fatalf("segment %d: SAR %+v udhi %v", i+1, s.SAR, s.ESMClassUDHI)
						}
					}
				}
				got := len(body)
				switch {
				case e.Alphabet == UCS2:
					got /= 2
					// The 140-octet user data limit holds with the header.
					if len(s.ShortMessage) > 140 {
						t.Fatalf("segment %d: %d octets", i+1, len(s.ShortMessage))
					}
				case tc.o.Packed:
					if len(s.ShortMessage) > 140 {
						t.Fatalf("packed segment %d: %d octets", i+1, len(s.ShortMessage))
					}
					got = -1 // checked through decoding below
				}
				if got >= 0 && got != tc.sizes[i] {
					t.Errorf("segment %d: %d units, want %d", i+1, got, tc.sizes[i])
				}
			}
			if back := decodeAll(t, e, ref, tc.o); back != tc.text {
				t.Fatalf("round trip:\n got %q\nwant %q", back, tc.text)
			}
		})
	}
}

func TestEmojiThreeSegments(t *testing.T) {
	t.Parallel()
	// The interop case: an emoji text long enough for three UCS-2
	// segments, each decodable on its own and each a whole-character text.
	text := strings.Repeat("Hi 👋🏽 from the gateway 🎉! ", 6)
	e, err := EncodeRef(text, 77, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Alphabet != UCS2 || e.DataCoding != 0x08 || len(e.Segments) != 3 {
		t.Fatalf("alphabet %v dc 0x%02X, %d segments; want UCS2, 3", e.Alphabet, e.DataCoding, len(e.Segments))
	}
	for i, s := range e.Segments {
		body := s.ShortMessage[6:]
		units := make([]uint16, len(body)/2)
		for j := range units {
			units[j] = uint16(body[2*j])<<8 | uint16(body[2*j+1])
		}
		if utf16.IsSurrogate(rune(units[0])) && units[0] >= 0xDC00 {
			t.Errorf("segment %d starts with a low surrogate", i+1)
		}
		if last := units[len(units)-1]; last >= 0xD800 && last < 0xDC00 {
			t.Errorf("segment %d ends with a high surrogate", i+1)
		}
	}
	if got := decodeAll(t, e, 77, Options{}); got != text {
		t.Fatalf("got %q", got)
	}
}

func TestEncodePayload(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("long text ", 40) // 400 septets
	e, err := Encode(text, Options{Concat: ConcatPayload})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Segments) != 1 || !e.Segments[0].Payload || e.Segments[0].ESMClassUDHI || e.Count != 3 {
		t.Fatalf("payload: %d segments, count %d, %+v", len(e.Segments), e.Count, e.Segments[0])
	}
	p, err := Decode(e.DataCoding, false, e.Segments[0].ShortMessage, Options{})
	if err != nil || p.Text != text {
		t.Fatalf("payload decode: %q, %v", p.Text, err)
	}
	// Short text goes in short_message even in payload mode.
	e, err = Encode("short", Options{Concat: ConcatPayload})
	if err != nil || e.Segments[0].Payload {
		t.Fatalf("short text in payload mode: %+v, %v", e, err)
	}
	if _, err := Encode(strings.Repeat("x", 153*4+1), Options{Concat: ConcatPayload, MaxSegments: 4}); !errors.Is(err, ErrTooManySegments) {
		t.Fatalf("payload over the cap: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	if _, err := Encode(strings.Repeat("a", 153*3+1), Options{MaxSegments: 3}); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("4 segments with cap 3: %v", err)
	} else if !strings.Contains(err.Error(), "4 short messages") {
		t.Errorf("error does not name the count: %v", err)
	}
	if _, err := Encode(strings.Repeat("a", 153*3), Options{MaxSegments: 3}); err != nil {
		t.Errorf("3 segments with cap 3: %v", err)
	}
	if _, err := Encode(strings.Repeat("a", 153*255+1), Options{}); !errors.Is(err, ErrTooManySegments) {
		t.Errorf("256 segments: %v", err)
	}
	if _, err := Encode("bad \xff", Options{}); !errors.Is(err, ErrInvalidText) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := EncodeAs("ç", GSM7, 0, Options{}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("EncodeAs GSM7 of ç: %v", err)
	}
	if _, err := EncodeAs("abc", GSM7, 0, Options{DefaultAlphabet: Latin1}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("EncodeAs GSM7 when 0x00 is Latin-1: %v", err)
	}
	if _, err := EncodeAs("é", IA5, 0, Options{}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("EncodeAs IA5 of é: %v", err)
	}
	if e, err := EncodeAs("abc", IA5, 0, Options{}); err != nil || e.DataCoding != 0x01 {
		t.Errorf("EncodeAs IA5: %+v, %v", e, err)
	}
}

func TestPackedCRPadding(t *testing.T) {
	t.Parallel()
	o := Options{Packed: true}
	tests := []struct {
		text string
		sm   string
		back string
	}{
		// Seven septets leave seven spare bits: a CR fills them and is
		// not read back as text (nor are the bits read as '@').
		{"1234567", "31d98c56b3dd1a", "1234567"},
		{"123456@", "", "123456@"},
		// A wanted final CR on an octet boundary gets a second CR, which
		// TS 23.038 defines as the same as one.
		{"1234567\r", "31d98c56b3dd1a0d", "1234567\r\r"},
		{"12345678", "31d98c56b3dd70", "12345678"},
	}
	for _, tc := range tests {
		e, err := Encode(tc.text, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(e.Segments[0].ShortMessage); tc.sm != "" && got != tc.sm {
			t.Errorf("Encode(%q) = %s, want %s", tc.text, got, tc.sm)
		}
		p, err := Decode(0, false, e.Segments[0].ShortMessage, o)
		if err != nil || p.Text != tc.back {
			t.Errorf("Decode(Encode(%q)) = %q, %v; want %q", tc.text, p.Text, err, tc.back)
		}
	}
	// A full packed segment ending in CR moves the CR to the next segment.
	text := strings.Repeat("z", 152) + "\r" + "tail tail tail"
	e, err := EncodeRef(text, 9, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Segments) != 2 {
		t.Fatalf("%d segments", len(e.Segments))
	}
	for _, s := range e.Segments {
		if len(s.ShortMessage) > 140 {
			t.Fatalf("segment of %d octets", len(s.ShortMessage))
		}
	}
	if got := decodeAll(t, e, 9, o); got != text {
		t.Fatalf("got %q", got)
	}
	first, err := Decode(e.DataCoding, true, e.Segments[0].ShortMessage, o)
	if err != nil || first.Text != strings.Repeat("z", 152) {
		t.Fatalf("first segment %q, %v; want the CR moved to the second", first.Text, err)
	}
}
