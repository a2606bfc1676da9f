package sip

import (
	"fmt"
	"strings"
	"testing"
)

func framedMsg(cl string, body string) string {
	h := "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-1\r\nCall-ID: c1\r\n"
	if cl != "" {
		h += cl + "\r\n"
	}
	return h + "\r\n" + body
}

// feedAll runs stream through a fresh framer in chunks of at most size
// bytes (0: all at once) and returns what passed and what was refused.
func feedAll(stream string, size int) (string, []string, frameState) {
	f := framer{maxBody: 10, maxHeader: 300}
	var out []byte
	var refused []string
	data := []byte(stream)
	for len(data) > 0 {
		n := len(data)
		if size > 0 && size < n {
			n = size
		}
		var r [][]byte
		out, r = f.feed(out, data[:n])
		for _, h := range r {
			refused = append(refused, string(h))
		}
		data = data[n:]
	}
	return string(out), refused, f.state
}

func TestFramer(t *testing.T) {
	small := framedMsg("Content-Length: 5", "hello")
	big := framedMsg("Content-Length: 20", strings.Repeat("x", 20))
	bigHeader := framedMsg("Content-Length: 20", "")
	tests := []struct {
		name    string
		stream  string
		out     string
		refused []string
		state   frameState
	}{
		{"small passes", small, small, nil, frameHeader},
		{"no body passes", framedMsg("Content-Length: 0", ""), framedMsg("Content-Length: 0", ""), nil, frameHeader},
		{"big refused, next passes", big + small, small, []string{bigHeader}, frameHeader},
		{"keep-alives pass", "\r\n\r\n" + small + "\r\n\r\n" + small, "\r\n\r\n" + small + "\r\n\r\n" + small, nil, frameHeader},
		{"compact form", framedMsg("l: 20", strings.Repeat("x", 20)) + small, small,
			[]string{framedMsg("l: 20", "")}, frameHeader},
		{"name in any case, spaces", framedMsg("content-LENGTH :  20 ", strings.Repeat("x", 20)), "",
			[]string{framedMsg("content-LENGTH :  20 ", "")}, frameHeader},
		{"bare line feeds", "MESSAGE sip:a SIP/2.0\nl: 20\n\n" + strings.Repeat("x", 20) + small, small,
			[]string{"MESSAGE sip:a SIP/2.0\nl: 20\n\n"}, frameHeader},
		{"big body not yet whole", big[:len(big)-5], "", []string{bigHeader}, frameSkip},
		{"header not yet whole", small[:30], "", nil, frameHeader},
		{"no Content-Length: off", framedMsg("", "") + big, framedMsg("", "") + big, nil, frameOff},
		{"bad Content-Length: off", framedMsg("Content-Length: -1", "") + big, framedMsg("Content-Length: -1", "") + big, nil, frameOff},
		{"two that disagree: off", framedMsg("Content-Length: 2\r\nl: 20", "") + big,
			framedMsg("Content-Length: 2\r\nl: 20", "") + big, nil, frameOff},
		{"two that agree", framedMsg("Content-Length: 5\r\nl: 5", "hello"), framedMsg("Content-Length: 5\r\nl: 5", "hello"), nil, frameHeader},
		{"header over maxHeader: off", "MESSAGE sip:a SIP/2.0\r\nX: " + strings.Repeat("h", 400) + "\r\n",
			"MESSAGE sip:a SIP/2.0\r\nX: " + strings.Repeat("h", 400) + "\r\n", nil, frameOff},
		{"folded line is no Content-Length", framedMsg("X: a\r\n Content-Length: 20", ""), framedMsg("X: a\r\n Content-Length: 20", ""), nil, frameOff},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 2, 7, 64} {
			out, refused, state := feedAll(tt.stream, size)
			if out != tt.out || fmt.Sprint(refused) != fmt.Sprint(tt.refused) || state != tt.state {
				t.Errorf("%s, chunks of %d:\n out %q\nwant %q\n refused %q, want %q\n state %d, want %d",
					tt.name, size, out, tt.out, refused, tt.refused, state, tt.state)
			}
		}
	}
}

func TestWithoutBody(t *testing.T) {
	got := string(withoutBody([]byte(framedMsg("Content-Length: 70000\r\nl: 70000", ""))))
	want := "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-1\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n"
	if got != want {
		t.Errorf("withoutBody = %q, want %q", got, want)
	}
}

// However a stream is cut into reads, the framer passes and refuses the
// same; and a stream it never refuses from nor gives up on passes whole.
func FuzzFramer(f *testing.F) {
	small := framedMsg("Content-Length: 5", "hello")
	f.Add(small+framedMsg("Content-Length: 20", strings.Repeat("x", 20))+small, uint8(3))
	f.Add("\r\n\r\n"+small, uint8(1))
	f.Add("MESSAGE sip:a SIP/2.0\nl: 20\n\n"+strings.Repeat("x", 20), uint8(5))
	f.Add(framedMsg("", "")+small, uint8(2))
	f.Fuzz(func(t *testing.T, stream string, size uint8) {
		out, refused, state := feedAll(stream, 0)
		out2, refused2, state2 := feedAll(stream, int(size)%32+1)
		if out != out2 || fmt.Sprint(refused) != fmt.Sprint(refused2) || state != state2 {
			t.Fatalf("chunking changed the result:\n %q %q %d\n %q %q %d", out, refused, state, out2, refused2, state2)
		}
		switch {
		case len(refused) > 0:
		case state == frameOff && out != stream:
			t.Fatalf("gave up framing but passed %q of %q", out, stream)
		case !strings.HasPrefix(stream, out):
			t.Fatalf("passed %q, not a prefix of %q", out, stream)
		}
		for _, h := range refused {
			if n, ok := contentLength([]byte(h)); !ok || n <= 10 {
				t.Fatalf("refused %q: Content-Length %d %v", h, n, ok)
			}
		}
		if len(out) > len(stream) {
			t.Fatal("passed more than came")
		}
	})
}

// BenchmarkFramer is what framing costs a pager-mode MESSAGE over TCP:
// its header block scanned and held, its Content-Length read, and both
// passed on, 32 messages to a read.
func BenchmarkFramer(b *testing.B) {
	msg := request{transport: "TCP", contentType: "message/cpim", body: cpimText("bench-1", "load test message of a typical length")}.String()
	chunk := []byte(strings.Repeat(msg, 32))
	f := framer{maxBody: 64 << 10, maxHeader: 80 << 10}
	var out []byte
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = f.feed(out[:0], chunk)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/msg")
}
