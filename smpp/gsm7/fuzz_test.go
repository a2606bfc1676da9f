package gsm7

import (
	"bytes"
	"testing"
)

func FuzzGSM7Decode(f *testing.F) {
	for _, s := range []string{"", "hello", "\x1b\x65", "\x1b\x1b", "\x1b", "\x1b\x41", "\x80", "\x1b\x0a\x1b\x3c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		text, err := Decode(in)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes, and the canonical septets decode
		// to the same text.
		enc, err := Encode(text)
		if err != nil {
			t.Fatalf("Decode(%x) = %q which does not encode: %v", in, text, err)
		}
		again, err := Decode(enc)
		if err != nil || again != text {
			t.Fatalf("decode->encode->decode unstable: %q -> %x -> %q (%v)", text, enc, again, err)
		}
		if n, ok := Septets(text); !ok || n != len(enc) {
			t.Fatalf("Septets(%q) = %d,%v; Encode gave %d", text, n, ok, len(enc))
		}
	})
}

func FuzzUnpack(f *testing.F) {
	f.Add([]byte{0xe8, 0x32, 0x9b, 0xfd, 0x46, 0x97, 0xd9, 0xec, 0x37}, 10, 0)
	f.Add([]byte{0x82}, 1, 1)
	f.Add([]byte{}, 0, 0)
	f.Add([]byte{0xff, 0xff}, 3, 6)
	f.Fuzz(func(t *testing.T, packed []byte, n, fill int) {
		if n > 1<<16 {
			n = 1 << 16
		}
		s, err := Unpack(packed, n, fill)
		if err != nil {
			return
		}
		if len(s) != n {
			t.Fatalf("Unpack returned %d septets, want %d", len(s), n)
		}
		for _, c := range s {
			if c > 0x7F {
				t.Fatalf("septet %x above 0x7F", c)
			}
		}
		re := Pack(s, fill)
		// Pack writes zero fill and no trailing bits; the septets agree.
		again, err := Unpack(re, n, fill)
		if err != nil || !bytes.Equal(again, s) {
			t.Fatalf("pack->unpack unstable: %x -> %x (%v)", s, again, err)
		}
		if len(re) > len(packed) {
			t.Fatalf("repacked %d octets from %d", len(re), len(packed))
		}
	})
}
