package content

import "testing"

// The benchmarks use original.cbor (193 bytes), a typical chat message.

func benchMessage(b *testing.B) ([]byte, *Message) {
	v := loadVector(b, "mimi-content", "original")
	m, err := Decode(v.cbor)
	if err != nil {
		b.Fatal(err)
	}
	return v.cbor, m
}

func BenchmarkDecode(b *testing.B) {
	in, _ := benchMessage(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	in, m := benchMessage(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	in, m := benchMessage(b)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkID(b *testing.B) {
	in, m := benchMessage(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := m.ID(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkComputeID(b *testing.B) {
	in, m := benchMessage(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, in, m.Salt)
	}
}

func BenchmarkDecodeMultipart(b *testing.B) {
	in := loadVector(b, "mimi-content", "multipart-3").cbor
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewTextEncode(b *testing.B) {
	var salt [16]byte
	b.ReportAllocs()
	for b.Loop() {
		m := NewText("tel:+15551230002", "mimi://example.com/r/dm-4f2a", "See you at 8, bring the slides", salt)
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusReport(b *testing.B) {
	in := loadVector(b, "mimi-status", "status").cbor
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		es, err := DecodeStatusReport(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EncodeStatusReport(es); err != nil {
			b.Fatal(err)
		}
	}
}
