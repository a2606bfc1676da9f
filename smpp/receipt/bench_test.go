package receipt

import "testing"

func BenchmarkParse(b *testing.B) {
	in := []byte("id:0123abcd sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:Hello")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	r, err := Parse([]byte("id:0123abcd sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:Hello"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Format(r)
	}
}

func BenchmarkNormalizeHex(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize("00A1B2C3D4", IDForm{Base: Hex}); err != nil {
			b.Fatal(err)
		}
	}
}
