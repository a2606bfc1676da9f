package gsm7

import (
	"strings"
	"testing"
)

var benchText = strings.Repeat("Hello {world}, price 5€ ", 7)[:160]

func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		if _, err := Encode(benchText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	s, err := Encode(benchText)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPack(b *testing.B) {
	s, err := Encode(strings.Repeat("hellohello", 16))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		Pack(s, 1)
	}
}

func BenchmarkUnpack(b *testing.B) {
	s, err := Encode(strings.Repeat("hellohello", 16))
	if err != nil {
		b.Fatal(err)
	}
	p := Pack(s, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := Unpack(p, len(s), 1); err != nil {
			b.Fatal(err)
		}
	}
}
