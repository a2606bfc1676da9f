package sdp

import "testing"

func BenchmarkParse(b *testing.B) {
	in := readFile(b, "rcs-chat-offer.sdp")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBytes(b *testing.B) {
	s := mustParse(b, readFile(b, "rcs-chat-offer.sdp"))
	b.ReportAllocs()
	for b.Loop() {
		if len(s.Bytes()) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkAnswer is what an incoming INVITE costs here: parse the offer,
// answer it, write the answer.
func BenchmarkAnswer(b *testing.B) {
	in := readFile(b, "rcs-chat-offer.sdp")
	opts := gateway(b)
	b.ReportAllocs()
	for b.Loop() {
		offer, err := Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		ans, err := Answer(offer, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(ans.Bytes()) == 0 {
			b.Fatal("empty")
		}
	}
}
