package msrp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testSend(t testing.TB, body string) *Frame {
	t.Helper()
	return &Frame{
		Method:      MethodSEND,
		ToPath:      []URI{mustURI(t, "msrp://10.0.0.2:2855/kjhd37s2s20w2a;tcp")},
		FromPath:    []URI{mustURI(t, "msrp://10.0.0.1:2855/s3ssi0n;tcp")},
		MessageID:   "87652491",
		ByteRange:   ByteRange{1, int64(len(body)), int64(len(body))},
		ContentType: "message/cpim",
		Body:        []byte(body),
		Flag:        FlagEnd,
	}
}

// The spec's example frame (specs: MSRP frame), in canonical order.
func TestMarshalOrder(t *testing.T) {
	t.Parallel()
	f := testSend(t, "<CPIM message>")
	f.TID = "a786hjs2"
	f.FailureReport, f.SuccessReport = ReportYes, ReportNo
	f.Headers = []Header{{"Content-Disposition", "render"}}
	got, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "MSRP a786hjs2 SEND\r\n" +
		"To-Path: msrp://10.0.0.2:2855/kjhd37s2s20w2a;tcp\r\n" +
		"From-Path: msrp://10.0.0.1:2855/s3ssi0n;tcp\r\n" +
		"Message-ID: 87652491\r\n" +
		"Byte-Range: 1-14/14\r\n" +
		"Success-Report: no\r\n" +
		"Failure-Report: yes\r\n" +
		"Content-Disposition: render\r\n" +
		"Content-Type: message/cpim\r\n" +
		"\r\n" +
		"<CPIM message>\r\n" +
		"-------a786hjs2$\r\n"
	if string(got) != want {
		t.Errorf("Marshal() =\n%s\nwant\n%s", got, want)
	}
	var buf bytes.Buffer
	if n, err := f.WriteTo(&buf); err != nil || n != int64(len(want)) || buf.String() != want {
		t.Errorf("WriteTo: %d %v", n, err)
	}
	checkRoundTrip(t, f)
}

// RFC 4975 section 7.1: the transaction ID must not occur in the body.
func TestMarshalRepicksTIDFoundInBody(t *testing.T) {
	t.Parallel()
	f := testSend(t, "quoting a frame:\r\n-------a786hjs2$\r\nand more")
	f.TID = "a786hjs2"
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if f.TID == "a786hjs2" || !isIdent(f.TID) || bytes.Contains(f.Body, []byte(f.TID)) {
		t.Fatalf("TID %q kept or not picked well", f.TID)
	}
	frames := readAll(t, b, Limits{})
	if len(frames) != 1 || !bytes.Equal(frames[0].Body, f.Body) || frames[0].TID != f.TID {
		t.Fatalf("read back %d frames: %+v", len(frames), frames)
	}
	// A TID that occurs anywhere in the body, not only as an end-line.
	g := testSend(t, "xxabcdxx")
	g.TID = "abcd"
	if _, err := g.Marshal(); err != nil || g.TID == "abcd" {
		t.Errorf("TID %q, %v", g.TID, err)
	}
	// No TID: one is picked.
	h := testSend(t, "hi")
	if _, err := h.Marshal(); err != nil || !isIdent(h.TID) {
		t.Errorf("TID %q, %v", h.TID, err)
	}
}

func TestMarshalSanitises(t *testing.T) {
	t.Parallel()
	f := &Frame{
		TID:      "abcd",
		Code:     400,
		Comment:  "bad\r\n-------abcd$\r\nMSRP x",
		ToPath:   []URI{mustURI(t, "msrp://h:1/s;tcp")},
		FromPath: []URI{mustURI(t, "msrp://g:2/t;tcp")},
		Headers:  []Header{{"X-Note", "one\r\nTo-Path: msrp://evil:1/x;tcp"}},
	}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	frames := readAll(t, b, Limits{})
	if len(frames) != 1 || len(frames[0].Headers) != 1 || frames[0].ToPath[0].Host != "h" {
		t.Fatalf("injection got through:\n%s", b)
	}
}

func TestMarshalErrors(t *testing.T) {
	t.Parallel()
	to, from := []URI{mustURI(t, "msrp://h:1/s;tcp")}, []URI{mustURI(t, "msrp://g:2/t;tcp")}
	tests := []struct {
		name string
		f    Frame
		text string
	}{
		{"neither request nor response", Frame{TID: "abcd", ToPath: to, FromPath: from}, "neither a method nor a status code"},
		{"lower-case method", Frame{Method: "send", ToPath: to, FromPath: from}, "upper-case"},
		{"response with body", Frame{TID: "abcd", Code: 200, ToPath: to, FromPath: from, ContentType: "a/b", Body: []byte("x")}, "with content"},
		{"response without TID", Frame{Code: 200, ToPath: to, FromPath: from}, "response transaction ID"},
		{"no To-Path", Frame{Method: "SEND", FromPath: from}, "To-Path and From-Path"},
		{"body without type", Frame{Method: "SEND", ToPath: to, FromPath: from, Body: []byte("x")}, "without Content-Type"},
		{"bad URI", Frame{Method: "SEND", ToPath: []URI{{Host: "h h", Transport: "tcp"}}, FromPath: from}, "bad host"},
		{"bad Message-ID", Frame{Method: "SEND", ToPath: to, FromPath: from, MessageID: "a b"}, "Message-ID"},
		{"bad Byte-Range", Frame{Method: "SEND", ToPath: to, FromPath: from, ByteRange: ByteRange{5, 2, 9}}, "Byte-Range"},
		{"known header in Headers", Frame{Method: "SEND", ToPath: to, FromPath: from, Headers: []Header{{"to-path", "x"}}}, "field of its own"},
		{"bad header name", Frame{Method: "SEND", ToPath: to, FromPath: from, Headers: []Header{{"X Y", "x"}}}, "header name"},
		{"bad flag", Frame{Method: "SEND", ToPath: to, FromPath: from, Flag: '!'}, "flag"},
		{"bad TID", Frame{TID: "a/b!", Method: "SEND", ToPath: to, FromPath: from}, "transaction ID"},
	}
	for _, tt := range tests {
		_, err := tt.f.Marshal()
		if !errors.Is(err, ErrInvalidFrame) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.text)
		}
	}
}

func TestChunks(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789"), 2500) // 25000 bytes
	frames := Chunks("m1x9", "message/cpim", body, 0)
	if len(frames) != 3 {
		t.Fatalf("%d chunks, want 3", len(frames))
	}
	wantRanges := []ByteRange{{1, 10000, 25000}, {10001, 20000, 25000}, {20001, 25000, 25000}}
	var joined []byte
	for i, f := range frames {
		if f.ByteRange != wantRanges[i] || f.MessageID != "m1x9" || f.Method != MethodSEND || f.ContentType != "message/cpim" {
			t.Errorf("chunk %d: %+v", i, f.ByteRange)
		}
		wantFlag := FlagMore
		if i == 2 {
			wantFlag = FlagEnd
		}
		if f.Flag != wantFlag {
			t.Errorf("chunk %d flag %c", i, f.Flag)
		}
		joined = append(joined, f.Body...)
	}
	if !bytes.Equal(joined, body) {
		t.Error("chunks do not add up to the body")
	}
	// An exact multiple makes no empty last chunk; an empty body one chunk.
	if n := len(Chunks("m", "a/b", body[:20000], 10000)); n != 2 {
		t.Errorf("20000 bytes in %d chunks", n)
	}
	empty := Chunks("m", "a/b", nil, 10)
	if len(empty) != 1 || empty[0].ByteRange != (ByteRange{1, 0, 0}) || empty[0].Flag != FlagEnd || empty[0].Body != nil {
		t.Errorf("empty body: %+v", empty[0])
	}
	// A chunk's body cannot be appended to over the next one's bytes.
	if cap(frames[0].Body) != len(frames[0].Body) {
		t.Error("chunk body has spare capacity into the caller's bytes")
	}
}
