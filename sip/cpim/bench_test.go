package cpim

import (
	"testing"
	"time"
)

func BenchmarkParse(b *testing.B) {
	in := readFile(b, "pager.cpim")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		m, err := Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		if m.MessageID() == "" {
			b.Fatal("no message id")
		}
	}
}

func BenchmarkParseBase64(b *testing.B) {
	in := readFile(b, "base64.cpim")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBytes(b *testing.B) {
	m := New("sip:+15551230001@ims.example.net", "sip:+15551230002@ims.example.net", "Msg2BCqcBUWKA",
		time.Date(2026, 8, 8, 6, 40, 56, 0, time.UTC), NotifyPositiveDelivery|NotifyDisplay, "text/plain;charset=UTF-8", []byte("Hello"))
	b.ReportAllocs()
	for b.Loop() {
		if len(m.Bytes()) == 0 {
			b.Fatal("empty")
		}
	}
}
