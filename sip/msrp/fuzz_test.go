package msrp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzLimits are small so that fuzzing reaches them.
var fuzzLimits = Limits{MaxHeaderBytes: 1024, MaxHeaders: 16, MaxChunk: 2048, MaxMessage: 4096, MaxInFlight: 4}

func addSeedFiles(f *testing.F) {
	for _, pattern := range []string{"testdata/*.msrp", "testdata/torture/*.msrp"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzReader: any input either ends in an error or yields frames that the
// writer marshals and the reader reads back to the same frames; nothing
// panics, and the reassembler takes whatever the reader gives it.
func FuzzReader(f *testing.F) {
	addSeedFiles(f)
	for _, s := range []string{
		"MSRP abcd SEND\r\n" + toPath + fromPath + "Content-Type: a/b\r\n\r\nabcd\r\n-------abcd+\r\n",
		"MSRP abcd SEND\n" + toPath + fromPath + "Byte-Range: 3-*/*\nContent-Type: a/b\n\n\n-------abcd#",
		"MSRP abcd 200\r\n" + toPath + fromPath + "X-A: \t1\t\r\n-------abcd$\r\n\r\n",
		"MSRP abcd REPORT\r\n" + toPath + fromPath + "Status: 000 413\r\nByte-Range: 1-0/0\r\n-------abcd$\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), fuzzLimits)
		ra := NewReassembler(fuzzLimits)
		for range 64 {
			fr, err := r.Next()
			var fe *FrameError
			if errors.As(err, &fe) {
				if fe.Frame == nil || fe.Frame.TID == "" || fe.Code < 400 {
					t.Fatalf("FrameError %v without frame or code", err)
				}
				_ = Response(fe.Frame, fe.Code, "")
				continue
			}
			if err != nil {
				return
			}
			fr.Range()
			fr.Interrupted()
			if fr.Method == MethodSEND {
				_, _ = ra.Add(fr)
			}
			b, err := fr.Marshal()
			if err != nil {
				t.Fatalf("Marshal of a parsed frame: %v\n%+v", err, fr)
			}
			// Canonical form may be a little longer than the input
			// (CRLF for LF, a space after each colon).
			again := NewReader(bytes.NewReader(b), Limits{MaxHeaderBytes: 4 * fuzzLimits.MaxHeaderBytes,
				MaxHeaders: fuzzLimits.MaxHeaders, MaxChunk: fuzzLimits.MaxChunk, MaxMessage: fuzzLimits.MaxMessage})
			g, err := again.Next()
			if err != nil {
				t.Fatalf("re-parse: %v\n%q", err, b)
			}
			if !reflect.DeepEqual(fr, g) {
				t.Fatalf("re-parse differs:\n%+v\n%+v\n%q", fr, g, b)
			}
			if _, err := again.Next(); err != io.EOF {
				t.Fatalf("after the re-marshalled frame: %v", err)
			}
		}
	})
}

// FuzzParseURI: what ParseURI accepts, String writes back to the same
// URI, equal to itself.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"msrp://10.0.0.1:2855/s3ssi0n;tcp", "msrps://[2001:db8::1]:2855/a+b=c/d;tcp;x=1;y",
		"msrps://alice@intra.example.com;tcp", "msrp://a;b@relay.example.com:9000;tcp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		if err := u.check(); err != nil {
			t.Fatalf("check(%q): %v", s, err)
		}
		v, err := ParseURI(u.String())
		if err != nil || v != u || !u.Equal(v) {
			t.Fatalf("ParseURI(%q) = %+v; again from %q: %+v, %v", s, u, u.String(), v, err)
		}
		_ = u.Authority()
	})
}
