package coding

import (
	"strings"
	"testing"
)

// benchEmoji is a text that takes three UCS-2 segments.
var benchEmoji = strings.Repeat("Hi 👋🏽 from the gateway 🎉! ", 6)

func BenchmarkEncodeUCS2ThreeSegments(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		e, err := EncodeRef(benchEmoji, 1, Options{})
		if err != nil || len(e.Segments) != 3 {
			b.Fatal(err, len(e.Segments))
		}
	}
}

func BenchmarkEncodeGSM7Single(b *testing.B) {
	text := strings.Repeat("hello €", 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(text, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUCS2WithUDH(b *testing.B) {
	e, err := EncodeRef(benchEmoji, 1, Options{})
	if err != nil {
		b.Fatal(err)
	}
	sm := e.Segments[0].ShortMessage
	b.ReportAllocs()
	b.SetBytes(int64(len(sm)))
	for b.Loop() {
		if _, err := Decode(0x08, true, sm, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
