package coding

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Octet alphabets: one octet per character.

func decodeIA5(b []byte) (string, error) {
	for i, c := range b {
		if c > 0x7F {
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d is not IA5", ErrUndecodable, c, i)
		}
	}
	return string(b), nil
}

func decodeLatin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for _, c := range b {
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// decodeCyrillic decodes ISO-8859-5: Latin-1 below 0xA1, then the Cyrillic
// block U+0401..U+045F at a fixed offset, except for three code points.
func decodeCyrillic(b []byte) string {
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for _, c := range b {
		switch {
		case c < utf8.RuneSelf:
			sb.WriteByte(c)
		case c <= 0xA0 || c == 0xAD:
			sb.WriteRune(rune(c))
		case c == 0xF0:
			sb.WriteRune('№')
		case c == 0xFD:
			sb.WriteRune('§')
		default:
			sb.WriteRune(rune(c) + 0x360)
		}
	}
	return sb.String()
}

// decodeHebrew decodes ISO-8859-8; its unassigned octets are an error.
func decodeHebrew(b []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for i, c := range b {
		switch {
		case c < utf8.RuneSelf:
			sb.WriteByte(c)
		case c <= 0xA0 || (c >= 0xA2 && c <= 0xBE && c != 0xAA && c != 0xBA):
			sb.WriteRune(rune(c))
		case c == 0xAA:
			sb.WriteRune('×')
		case c == 0xBA:
			sb.WriteRune('÷')
		case c == 0xDF:
			sb.WriteRune('\u2017')
		case c >= 0xE0 && c <= 0xFA:
			sb.WriteRune(rune(c) - 0xE0 + 0x05D0)
		case c == 0xFD:
			sb.WriteRune('\u200E')
		case c == 0xFE:
			sb.WriteRune('\u200F')
		default:
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d is unassigned in ISO-8859-8", ErrUndecodable, c, i)
		}
	}
	return sb.String(), nil
}

// appendOctets appends text in IA5 (max 0x7F) or Latin-1 (max 0xFF).
func appendOctets(dst []byte, text string, max rune) ([]byte, error) {
	for i, r := range text {
		if r > max || (r == utf8.RuneError && !validRuneAt(text, i)) {
			return dst, fmt.Errorf("%w: %q (U+%04X) at byte %d", ErrUnencodable, r, r, i)
		}
		dst = append(dst, byte(r))
	}
	return dst, nil
}

func validRuneAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return r != utf8.RuneError || size > 1
}

// appendUCS2 appends text as UTF-16BE.
func appendUCS2(dst []byte, text string) []byte {
	for _, r := range text {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			dst = append(dst, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
			continue
		}
		dst = append(dst, byte(r>>8), byte(r))
	}
	return dst
}

func isHigh(u uint16) bool { return u >= 0xD800 && u < 0xDC00 }
func isLow(u uint16) bool  { return u >= 0xDC00 && u < 0xE000 }

// decodeUCS2 decodes UTF-16BE. An odd length or a lone surrogate is an
// error, except that a part of a concatenated message (edges true) may
// begin with a low surrogate or end with a high surrogate: some senders cut
// a surrogate pair between two segments, and reassembly joins the halves.
// Those halves are returned apart from the text.
func decodeUCS2(b []byte, edges bool) (text string, headLow, tailHigh uint16, err error) {
	if len(b)%2 != 0 {
		return "", 0, 0, fmt.Errorf("%w: UCS-2 text of odd length %d", ErrUndecodable, len(b))
	}
	n := len(b) / 2
	unit := func(i int) uint16 { return uint16(b[2*i])<<8 | uint16(b[2*i+1]) }
	start, end := 0, n
	if edges && n > 0 {
		if u := unit(0); isLow(u) {
			headLow, start = u, 1
		}
		if u := unit(n - 1); end > start && isHigh(u) {
			tailHigh, end = u, n-1
		}
	}
	var sb strings.Builder
	sb.Grow(3 * (end - start))
	for i := start; i < end; i++ {
		u := unit(i)
		switch {
		case u < utf8.RuneSelf:
			sb.WriteByte(byte(u))
		case isHigh(u):
			if i+1 == end || !isLow(unit(i+1)) {
				return "", 0, 0, fmt.Errorf("%w: lone UTF-16 high surrogate 0x%04X at offset %d", ErrUndecodable, u, 2*i)
			}
			sb.WriteRune(utf16.DecodeRune(rune(u), rune(unit(i+1))))
			i++
		case isLow(u):
			return "", 0, 0, fmt.Errorf("%w: lone UTF-16 low surrogate 0x%04X at offset %d", ErrUndecodable, u, 2*i)
		default:
			sb.WriteRune(rune(u))
		}
	}
	return sb.String(), headLow, tailHigh, nil
}
