package gsm7

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape is the septet that switches the next septet to the extension
// table.
const Escape = 0x1B

var (
	// ErrUnencodable reports a character that has no code in the default
	// table nor in the extension table. Errors returned by Encode wrap it in
	// an *UnencodableError that names the character and its position.
	ErrUnencodable = errors.New("gsm7: character not in the GSM 7-bit alphabet")

	// ErrInvalid reports septets that are not a valid GSM 7-bit text: a
	// byte above 0x7F, or an escape with nothing after it.
	ErrInvalid = errors.New("gsm7: invalid septets")

	// ErrShort reports packed input too short for the septets asked for.
	ErrShort = errors.New("gsm7: packed input too short")
)

// UnencodableError names the first character Encode could not represent.
type UnencodableError struct {
	Rune  rune // the character; utf8.RuneError for invalid UTF-8
	Index int  // byte offset of the character in the input string
}

func (e *UnencodableError) Error() string {
	return fmt.Sprintf("%v: %q (U+%04X) at byte %d", ErrUnencodable, e.Rune, e.Rune, e.Index)
}

func (e *UnencodableError) Unwrap() error { return ErrUnencodable }

// basic is the default table, indexed by septet (TS 23.038 §6.2.1).
// 0x1B is the escape; it decodes through ext and never stands alone.
var basic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// ext is the extension table (TS 23.038 §6.2.1.1), indexed by the septet
// after an escape; zero marks a code with no extension character.
var ext = [128]rune{
	0x0A: '\f', // page break, encoded for U+000C FORM FEED
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// none marks a rune with no code in encLatin.
const none = 0xFFFF

// encLatin maps runes below U+0100 to their code: a septet, or
// Escape<<8|code for an extension character, or none.
var encLatin [0x100]uint16

func init() {
	for i := range encLatin {
		encLatin[i] = none
	}
	for code, r := range basic {
		if code != Escape && r < 0x100 {
			encLatin[r] = uint16(code)
		}
	}
	for code, r := range ext {
		if r != 0 && r < 0x100 {
			encLatin[r] = Escape<<8 | uint16(code)
		}
	}
}

// lookup returns the code for r as encLatin does, for any rune.
func lookup(r rune) uint16 {
	if r < 0x100 {
		if r < 0 {
			return none
		}
		return encLatin[r]
	}
	switch r {
	case 'Δ':
		return 0x10
	case 'Φ':
		return 0x12
	case 'Γ':
		return 0x13
	case 'Λ':
		return 0x14
	case 'Ω':
		return 0x15
	case 'Π':
		return 0x16
	case 'Ψ':
		return 0x17
	case 'Σ':
		return 0x18
	case 'Θ':
		return 0x19
	case 'Ξ':
		return 0x1A
	case '€':
		return Escape<<8 | 0x65
	}
	return none
}

// Encodable reports whether r has a code in the default or the extension
// table.
func Encodable(r rune) bool { return lookup(r) != none }

// RuneSeptets returns the number of septets r costs: 1 in the default
// table, 2 in the extension table, 0 when r has no code.
func RuneSeptets(r rune) int {
	switch code := lookup(r); {
	case code < 0x80:
		return 1
	case code != none:
		return 2
	}
	return 0
}

// Encode converts s to unpacked septets, one per octet; an extension
// character becomes the two septets 0x1B and its code. A character with no
// code (or invalid UTF-8) is an error wrapping ErrUnencodable: nothing is
// ever replaced by a look-alike or a question mark.
func Encode(s string) ([]byte, error) {
	return AppendEncode(make([]byte, 0, len(s)+len(s)/8), s)
}

// AppendEncode appends the unpacked septets of s to dst, as Encode does. On
// error dst is returned unchanged in length (its spare capacity may have
// been written).
func AppendEncode(dst []byte, s string) ([]byte, error) {
	out := dst
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			code := encLatin[c]
			switch {
			case code < 0x80:
				out = append(out, byte(code))
			case code != none:
				out = append(out, Escape, byte(code))
			default:
				return dst, &UnencodableError{Rune: rune(c), Index: i}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		code := uint16(none)
		if r != utf8.RuneError || size > 1 {
			code = lookup(r)
		}
		switch {
		case code < 0x80:
			out = append(out, byte(code))
		case code != none:
			out = append(out, Escape, byte(code))
		default:
			return dst, &UnencodableError{Rune: r, Index: i}
		}
		i += size
	}
	return out, nil
}

// Septets returns the number of septets s costs (an extension character
// costs two) and whether every character of s is encodable.
func Septets(s string) (n int, ok bool) {
	for i := 0; i < len(s); {
		c := s[i]
		var code uint16
		if c < utf8.RuneSelf {
			code = encLatin[c]
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			code = none
			if r != utf8.RuneError || size > 1 {
				code = lookup(r)
			}
			i += size
		}
		switch {
		case code < 0x80:
			n++
		case code != none:
			n += 2
		default:
			return n, false
		}
	}
	return n, true
}

// Decode converts unpacked septets to text.
//
// A byte above 0x7F is an error wrapping ErrInvalid, and so is an escape
// that ends the input. Following TS 23.038 §6.2.1.1, an escape followed by a
// code with no extension character decodes as the default-table character
// of that code (so 0x1B 0x41 is "A", and 0x1B 0x0D, the reserved CR2, is a
// carriage return), and 0x1B 0x1B, reserved for a further extension table,
// decodes as a space. Decoding therefore maps a few distinct inputs to one
// text; Encode of the result yields the canonical septets.
func Decode(septets []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(septets) + len(septets)/4)
	for i := 0; i < len(septets); i++ {
		c := septets[i]
		if c > 0x7F {
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d is not a septet", ErrInvalid, c, i)
		}
		if c != Escape {
			writeRune(&b, basic[c])
			continue
		}
		if i+1 == len(septets) {
			return "", fmt.Errorf("%w: escape at offset %d ends the text", ErrInvalid, i)
		}
		i++
		c = septets[i]
		switch {
		case c > 0x7F:
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d is not a septet", ErrInvalid, c, i)
		case c == Escape:
			b.WriteByte(' ')
		case ext[c] != 0:
			writeRune(&b, ext[c])
		default:
			writeRune(&b, basic[c])
		}
	}
	return b.String(), nil
}

func writeRune(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf {
		b.WriteByte(byte(r))
		return
	}
	b.WriteRune(r)
}

// Pack packs septets into octets, least significant bit first (TS 23.038
// §6.1.2.1.1), after fillBits zero bits. The fill bits align the first
// septet on a septet boundary when a user data header precedes the text:
// see FillBits. Only the low seven bits of each byte are used; septets come
// from Encode. fillBits must be in 0..7.
func Pack(septets []byte, fillBits int) []byte {
	if fillBits < 0 || fillBits > 7 {
		panic(fmt.Sprintf("gsm7: Pack: fill bits %d out of range 0..7", fillBits))
	}
	total := fillBits + 7*len(septets)
	out := make([]byte, (total+7)/8)
	bit := fillBits
	for _, s := range septets {
		v := uint16(s&0x7F) << (bit & 7)
		idx := bit >> 3
		out[idx] |= byte(v)
		if bit&7 > 1 {
			out[idx+1] |= byte(v >> 8)
		}
		bit += 7
	}
	return out
}

// Unpack extracts n septets from packed after skipping fillBits bits. It
// fails with ErrShort if packed holds fewer than fillBits+7n bits; bits
// after the n-th septet are ignored. Use Count for the number of septets a
// packed field can hold.
func Unpack(packed []byte, n int, fillBits int) ([]byte, error) {
	if n < 0 || fillBits < 0 || fillBits > 7 {
		return nil, fmt.Errorf("gsm7: unpack %d septets after %d fill bits: invalid arguments", n, fillBits)
	}
	if need := fillBits + 7*n; need > 8*len(packed) {
		return nil, fmt.Errorf("%w: %d septets after %d fill bits need %d octets, have %d",
			ErrShort, n, fillBits, (need+7)/8, len(packed))
	}
	out := make([]byte, n)
	bit := fillBits
	for i := range out {
		idx := bit >> 3
		v := uint16(packed[idx])
		if idx+1 < len(packed) {
			v |= uint16(packed[idx+1]) << 8
		}
		out[i] = byte(v>>(bit&7)) & 0x7F
		bit += 7
	}
	return out, nil
}

// Count returns how many whole septets fit in octets packed octets after
// fillBits fill bits.
func Count(octets, fillBits int) int {
	bits := 8*octets - fillBits
	if bits <= 0 {
		return 0
	}
	return bits / 7
}

// FillBits returns the number of fill bits that align the text on a septet
// boundary after a user data header of udhLen octets (the UDHL octet
// included), as TS 23.040 §9.2.3.24 requires.
func FillBits(udhLen int) int {
	return (7 - (8*udhLen)%7) % 7
}
