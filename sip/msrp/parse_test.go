package msrp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every frame of in, failing on any error but io.EOF.
func readAll(t testing.TB, in []byte, l Limits) []*Frame {
	t.Helper()
	r := NewReader(bytes.NewReader(in), l)
	var frames []*Frame
	for {
		f, err := r.Next()
		if err == io.EOF {
			return frames
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(frames)+1, err)
		}
		frames = append(frames, f)
	}
}

func mustURI(t testing.TB, s string) URI {
	t.Helper()
	u, err := ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGoldenOverview(t *testing.T) {
	t.Parallel()
	frames := readAll(t, readFile(t, "rfc4975-overview.msrp"), Limits{})
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	send, ok := frames[0], frames[1]
	want := &Frame{
		TID:         "a786hjs2",
		Method:      MethodSEND,
		ToPath:      []URI{mustURI(t, "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp")},
		FromPath:    []URI{mustURI(t, "msrp://atlanta.example.com:7654/jshA7weztas;tcp")},
		MessageID:   "87652491",
		ByteRange:   ByteRange{1, 25, 25},
		ContentType: "text/plain",
		Body:        []byte("Hey Bob, are you there?"),
		Flag:        FlagEnd,
	}
	if !reflect.DeepEqual(send, want) {
		t.Errorf("SEND =\n%+v\nwant\n%+v", send, want)
	}
	if ok.Code != 200 || ok.Comment != "OK" || ok.IsRequest() || ok.TID != "a786hjs2" || ok.Body != nil {
		t.Errorf("response = %+v", ok)
	}
	// The response our writer builds for the SEND is the RFC's.
	got, err := Response(send, 200, "").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	in := readFile(t, "rfc4975-overview.msrp")
	if wantRes := in[bytes.Index(in, []byte("MSRP a786hjs2 200")):]; !bytes.Equal(got, wantRes) {
		t.Errorf("Response() =\n%s\nwant\n%s", got, wantRes)
	}
}

func TestGoldenBasicIM(t *testing.T) {
	t.Parallel()
	in := readFile(t, "rfc4975-basic-im.msrp")
	frames := readAll(t, in, Limits{})
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	if string(frames[0].Body) != "Hi, I'm Alice!" || string(frames[2].Body) != "Hi, Alice! I'm Bob!" {
		t.Errorf("bodies %q, %q", frames[0].Body, frames[2].Body)
	}
	// The body is what comes before the end-line, whatever the
	// Byte-Range says (the RFC counts the line end too).
	if start, end := frames[0].Range(); start != 1 || end != 14 || frames[0].ByteRange.End != 16 {
		t.Errorf("Range() = %d-%d, Byte-Range %v", start, end, frames[0].ByteRange)
	}
	// The whole exchange is written back byte for byte: it is canonical.
	var out []byte
	for _, f := range frames {
		var err error
		if out, err = f.AppendTo(out); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, in) {
		t.Errorf("re-marshalled exchange differs:\n%s\nwant\n%s", out, in)
	}
}

func TestGoldenPositiveReport(t *testing.T) {
	t.Parallel()
	frames := readAll(t, readFile(t, "rfc4975-positive-report.msrp"), Limits{})
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	send, report := frames[0], frames[1]
	if send.SuccessReport != ReportYes || send.FailureReport != ReportNo || send.ContentType != "text/html" {
		t.Errorf("SEND reports %v/%v, type %q", send.SuccessReport, send.FailureReport, send.ContentType)
	}
	if !WantsSuccessReport(send) || Respond(send, 200) || Respond(send, 400) {
		t.Error("Failure-Report: no must mean no response at all, Success-Report: yes a REPORT")
	}
	if report.Method != MethodREPORT || report.Status == nil || *report.Status != (Status{0, 200, "OK"}) ||
		report.ByteRange != (ByteRange{1, 106, 106}) || report.MessageID != "12339sdqwer" {
		t.Errorf("REPORT = %+v, Status %+v", report, report.Status)
	}
	if Respond(report, 200) {
		t.Error("a REPORT is never answered")
	}
	// SuccessReport builds the RFC's REPORT for the message it acknowledges
	// but for the tid and the Byte-Range, which counts the body we got.
	m := &Message{ID: send.MessageID, Body: send.Body, Last: send}
	built := SuccessReport(m, send.ToPath[0])
	built.TID = report.TID
	n := int64(len(send.Body))
	report.ByteRange = ByteRange{1, n, n}
	if !reflect.DeepEqual(built, report) {
		t.Errorf("SuccessReport() =\n%+v\nwant\n%+v", built, report)
	}
}

func TestGoldenAuth(t *testing.T) {
	t.Parallel()
	frames := readAll(t, readFile(t, "rfc4976-auth.msrp"), Limits{})
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	auth := frames[0]
	relay := auth.ToPath[0]
	if auth.Method != MethodAUTH || relay.User != "alice" || relay.Port != 0 || relay.SessionID != "" || !relay.Secure {
		t.Errorf("AUTH to %+v", relay)
	}
	if c := frames[1]; c.Code != 401 || !strings.HasPrefix(c.WWWAuthenticate, "Digest realm=") {
		t.Errorf("401 = %+v", c)
	}
	if !strings.Contains(frames[2].Authorization, `response="`) {
		t.Errorf("Authorization = %q", frames[2].Authorization)
	}
	ok := frames[3]
	if ok.Expires != 900 || len(ok.UsePath) != 1 || ok.UsePath[0].String() != "msrps://relay.example.com:9000/hjdhfha;tcp" {
		t.Errorf("200 = %+v", ok)
	}
}

// Frames come out whole however the stream is cut up.
func TestReaderOneByteAtATime(t *testing.T) {
	t.Parallel()
	in := readFile(t, "rfc4975-basic-im.msrp")
	want := readAll(t, in, Limits{})
	r := NewReader(iotest.OneByteReader(bytes.NewReader(in)), Limits{})
	for i := range want {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, want[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

const (
	toPath   = "To-Path: msrp://10.0.0.2:2855/kjhd37s2s20w2a;tcp\r\n"
	fromPath = "From-Path: msrp://10.0.0.1:2855/s3ssi0n;tcp\r\n"
)

func TestParseCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, f *Frame)
	}{
		{
			name: "binding SEND without body",
			in:   "MSRP a1b2c3 SEND\r\n" + toPath + fromPath + "Message-ID: m1x9\r\n-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if f.Body != nil || f.ContentType != "" || f.MessageID != "m1x9" || f.Flag != FlagEnd {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "empty content with Content-Type",
			in:   "MSRP a1b2c3 SEND\r\n" + toPath + fromPath + "Byte-Range: 1-0/0\r\nContent-Type: text/plain\r\n\r\n\r\n-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if f.Body != nil || f.ContentType != "text/plain" || f.ByteRange != (ByteRange{1, 0, 0}) {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "end-line right after the blank line",
			in:   "MSRP a1b2c3 SEND\r\n" + toPath + fromPath + "Content-Type: text/plain\r\n\r\n-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if f.Body != nil || f.ContentType != "text/plain" {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "unknown method, unknown headers kept in order, bare LF",
			in:   "MSRP a1b2c3 NICKNAME\n" + "To-Path: msrp://h:1/s;tcp\nFrom-Path: msrp://g:2/t;tcp\nUse-Nickname: \"Bob\"\nX-B: 2\nx-a: 1\n-------a1b2c3$\n",
			check: func(t *testing.T, f *Frame) {
				want := []Header{{"Use-Nickname", `"Bob"`}, {"X-B", "2"}, {"x-a", "1"}}
				if f.Method != "NICKNAME" || !reflect.DeepEqual(f.Headers, want) || f.Header("X-A") != "1" {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "body with line ends, dashes and a near end-line",
			in: "MSRP a1b2c3 SEND\r\n" + toPath + fromPath + "Message-ID: m1x9\r\nByte-Range: 1-*/*\r\nContent-Type: text/plain\r\n\r\n" +
				"line\r\n-------\r\n-------a1b2c\r\n-------a1b2c3x\r\nx-------a1b2c3$\r\n\r\n-------a1b2c3+\r\n",
			check: func(t *testing.T, f *Frame) {
				if string(f.Body) != "line\r\n-------\r\n-------a1b2c\r\n-------a1b2c3x\r\nx-------a1b2c3$\r\n" || f.Flag != FlagMore {
					t.Errorf("body %q flag %c", f.Body, f.Flag)
				}
				if f.ByteRange != (ByteRange{1, Unknown, Unknown}) {
					t.Errorf("Byte-Range %+v", f.ByteRange)
				}
			},
		},
		{
			name: "binary body with NUL and CR",
			in:   "MSRP a1b2c3 SEND\r\n" + toPath + fromPath + "Content-Type: application/octet-stream\r\n\r\n\x00\r\x00\xff\r\r\n-------a1b2c3#\r\n",
			check: func(t *testing.T, f *Frame) {
				if string(f.Body) != "\x00\r\x00\xff\r" || f.Flag != FlagAbort {
					t.Errorf("body %q flag %c", f.Body, f.Flag)
				}
			},
		},
		{
			name: "response without comment, relays in paths, IPv6",
			in:   "MSRP a1b2c3 481\r\nTo-Path: msrps://[2001:db8::1]:2855/a;tcp\r\nFrom-Path: msrp://relay.example:9000/r1;tcp msrp://[::1]:3000/b;tcp\r\n-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if f.Code != 481 || f.Comment != "" || len(f.FromPath) != 2 || f.ToPath[0].Host != "2001:db8::1" {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "REPORT with failure status and all RFC 4976 headers",
			in: "MSRP a1b2c3 REPORT\r\n" + toPath + fromPath + "Message-ID: m1x9\r\nByte-Range: 1-10/20\r\nStatus: 000 413 Too Large\r\n" +
				"Use-Path: msrp://r:1/x;tcp\r\nWWW-Authenticate: Digest realm=\"r\"\r\nAuthorization: Digest x\r\nAuthentication-Info: a=b\r\n" +
				"Expires: 900\r\nMin-Expires: 60\r\nMax-Expires: 3600\r\n-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if *f.Status != (Status{0, 413, "Too Large"}) || f.Expires != 900 || f.MinExpires != 60 || f.MaxExpires != 3600 ||
					f.WWWAuthenticate != `Digest realm="r"` || f.Authorization != "Digest x" || f.AuthenticationInfo != "a=b" || len(f.UsePath) != 1 {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "CRLF keepalives between frames are skipped",
			in:   "\r\n\r\nMSRP a1b2c3 200 OK\r\n" + toPath + fromPath + "-------a1b2c3$\r\n",
			check: func(t *testing.T, f *Frame) {
				if f.Code != 200 {
					t.Errorf("%+v", f)
				}
			},
		},
		{
			name: "stream ends right after the flag",
			in:   "MSRP a1b2c3 200 OK\r\n" + toPath + fromPath + "-------a1b2c3$",
			check: func(t *testing.T, f *Frame) {
				if f.Code != 200 {
					t.Errorf("%+v", f)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frames := readAll(t, []byte(tt.in), Limits{})
			if len(frames) != 1 {
				t.Fatalf("%d frames", len(frames))
			}
			tt.check(t, frames[0])
			checkRoundTrip(t, frames[0])
		})
	}
}

// Errors that leave the stream out of step: Next returns them again.
func TestParseFatal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"not MSRP", "HTTP/1.1 200 OK\r\n\r\n", ErrSyntax, "does not start with MSRP"},
		{"short tid", "MSRP abc SEND\r\n", ErrSyntax, "bad transaction ID"},
		{"tid with bad character", "MSRP abc/def SEND\r\n", ErrSyntax, "bad transaction ID"},
		{"lower-case method", "MSRP abcd send\r\n", ErrSyntax, "bad method"},
		{"no method", "MSRP abcd \r\n", ErrSyntax, "bad method"},
		{"status under 100", "MSRP abcd 099 x\r\n", ErrSyntax, "under 100"},
		{"status code glued to comment", "MSRP abcd 200OK\r\n", ErrSyntax, "bad status code"},
		{"end of stream in headers", "MSRP abcd SEND\r\n" + toPath, io.ErrUnexpectedEOF, "headers"},
		{"end of stream in body", "MSRP abcd SEND\r\n" + toPath + fromPath + "Content-Type: a/b\r\n\r\nxyz", io.ErrUnexpectedEOF, "before the end-line"},
		{"end-line with junk after the flag", "MSRP abcd SEND\r\n" + toPath + fromPath + "Content-Type: a/b\r\n\r\nxyz\r\n-------abcd$ \r\n", ErrBadEndLine, "-------abcd$"},
		{"end-line of another transaction", "MSRP abcd SEND\r\n" + toPath + fromPath + "Content-Type: a/b\r\n\r\nxyz\r\n-------wxyz$\r\n", io.ErrUnexpectedEOF, "before the end-line"},
		{"header line too long", "MSRP abcd SEND\r\nX: " + strings.Repeat("a", 40<<10) + "\r\n", ErrHeadersTooLarge, "over 16384 bytes"},
		{"too many headers", "MSRP abcd SEND\r\n" + strings.Repeat("X: 1\r\n", 65), ErrHeadersTooLarge, "more than 64 header lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(strings.NewReader(tt.in), Limits{})
			_, err := r.Next()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var fe *FrameError
			if errors.As(err, &fe) {
				t.Errorf("%v is a FrameError", err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
			if _, again := r.Next(); again != err {
				t.Errorf("second Next: %v, want the same error", again)
			}
		})
	}
}

// Frames refused with the stream still in step: the frame after is read.
func TestParseFrameErrors(t *testing.T) {
	t.Parallel()
	send := func(headers, body string) string {
		s := "MSRP abcd SEND\r\n" + headers
		if body != "" {
			s += "\r\n" + body + "\r\n"
		}
		return s + "-------abcd$\r\n"
	}
	tests := []struct {
		name string
		in   string
		code int
		want error
		text string
	}{
		{"no To-Path", send(fromPath, ""), 400, ErrMissingHeader, "To-Path"},
		{"no From-Path", send(toPath, ""), 400, ErrMissingHeader, "From-Path"},
		{"body without Content-Type", send(toPath+fromPath, "hello"), 400, ErrMissingHeader, "Content-Type for a body of 5 bytes"},
		{"bad URI", send("To-Path: http://x/y\r\n"+fromPath, ""), 400, ErrBadHeader, "scheme is not msrp"},
		{"URI without transport", send("To-Path: msrp://h:1/s\r\n"+fromPath, ""), 400, ErrBadHeader, "no ;transport"},
		{"two To-Paths", send(toPath+toPath+fromPath, ""), 400, ErrBadHeader, "To-Path twice"},
		{"bad Byte-Range", send(toPath+fromPath+"Byte-Range: 1-x/3\r\n", ""), 400, ErrBadHeader, `bad number "x"`},
		{"Byte-Range from 0", send(toPath+fromPath+"Byte-Range: 0-3/3\r\n", ""), 400, ErrBadHeader, "start under 1"},
		{"Byte-Range past its total", send(toPath+fromPath+"Byte-Range: 1-9/3\r\n", ""), 400, ErrBadHeader, "end past total"},
		{"Byte-Range overflowing", send(toPath+fromPath+"Byte-Range: 1-99999999999999999999/*\r\n", ""), 400, ErrBadHeader, "bad number"},
		{"bad Failure-Report", send(toPath+fromPath+"Failure-Report: maybe\r\n", ""), 400, ErrBadHeader, "Failure-Report"},
		{"partial Success-Report", send(toPath+fromPath+"Success-Report: partial\r\n", ""), 400, ErrBadHeader, "Success-Report"},
		{"bad Message-ID", send(toPath+fromPath+"Message-ID: a b\r\n", ""), 400, ErrBadHeader, "Message-ID"},
		{"header without colon", send(toPath+fromPath+"Nonsense\r\n", ""), 400, ErrBadHeader, "line \"Nonsense\""},
		{"bad Content-Type", send(toPath+fromPath+"Content-Type: text\r\n", "x"), 400, ErrBadHeader, "not a media type"},
		{"REPORT without Status", "MSRP abcd REPORT\r\n" + toPath + fromPath + "-------abcd$\r\n", 400, ErrMissingHeader, "Status"},
		{"response with content", "MSRP abcd 200 OK\r\n" + toPath + fromPath + "Content-Type: a/b\r\n\r\nx\r\n-------abcd$\r\n", 400, nil, "response with content"},
		{"body over the chunk limit", send(toPath+fromPath+"Content-Type: a/b\r\n", strings.Repeat("z", 1500)), 413, ErrChunkTooLarge, "over 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := "MSRP wxyz 200 OK\r\n" + toPath + fromPath + "-------wxyz$\r\n"
			r := NewReader(strings.NewReader(tt.in+next), Limits{MaxChunk: 1024})
			_, err := r.Next()
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FrameError", err)
			}
			if fe.Code != tt.code || fe.Frame.TID != "abcd" || fe.Frame.Body != nil {
				t.Errorf("code %d tid %q, want %d abcd", fe.Code, fe.Frame.TID, tt.code)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "msrp: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes: too long for a log line", len(err.Error()))
			}
			f, err := r.Next()
			if err != nil || f.TID != "wxyz" {
				t.Fatalf("the next frame: %v %v", f, err)
			}
		})
	}
}

func checkRoundTrip(t testing.TB, f *Frame) {
	t.Helper()
	b, err := f.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	r := NewReader(bytes.NewReader(b), Limits{MaxChunk: max(len(f.Body), 1), MaxMessage: int64(max(len(f.Body), 1))})
	g, err := r.Next()
	if err != nil {
		t.Fatalf("parse(marshal(f)): %v\n%q", err, b)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("parse(marshal(f)) differs:\n%+v\n%+v\n%q", f, g, b)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the frame: %v", err)
	}
	if b2, _ := g.Marshal(); !bytes.Equal(b, b2) {
		t.Fatalf("marshal is not stable:\n%q\n%q", b, b2)
	}
}
