package sdp

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf turns a test's LF text into what a SIP body carries.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const chatOffer = `v=0
o=- 3849283742 3849283742 IN IP4 10.0.0.1
s=-
t=0 0
m=message 9 TCP/MSRP *
c=IN IP4 10.0.0.1
a=sendrecv
a=path:msrp://10.0.0.1:2855/s3ssi0n;tcp
a=setup:active
a=accept-types:message/cpim application/im-iscomposing+xml
`

func chatOfferSession() *Session {
	return &Session{
		Origin: Origin{Username: "-", SessionID: "3849283742", SessionVersion: "3849283742", NetType: "IN", AddrType: "IP4", Address: "10.0.0.1"},
		Name:   "-",
		Timing: []Timing{{}},
		Media: []*Media{{
			Type: "message", Port: 9, Proto: "TCP/MSRP", Formats: []string{"*"},
			Connection: &Connection{NetType: "IN", AddrType: "IP4", Address: "10.0.0.1"},
			Attributes: []Attribute{
				{Name: "sendrecv"},
				{Name: "path", Value: "msrp://10.0.0.1:2855/s3ssi0n;tcp"},
				{Name: "setup", Value: "active"},
				{Name: "accept-types", Value: "message/cpim application/im-iscomposing+xml"},
			},
		}},
	}
}

// Inputs real clients send that are not canonical but must parse, each to
// the same session as the canonical chatOffer.
func TestParseTolerant(t *testing.T) {
	t.Parallel()
	want := chatOfferSession()
	cases := map[string]string{
		"CRLF":                 crlf(chatOffer),
		"LF":                   chatOffer,
		"mixed line ends":      strings.Replace(crlf(chatOffer), "\r\n", "\n", 3),
		"no final line end":    strings.TrimSuffix(crlf(chatOffer), "\r\n"),
		"trailing blank lines": crlf(chatOffer) + "\r\n\r\n",
		"no s=":                strings.Replace(chatOffer, "s=-\n", "", 1),
		"empty s=":             strings.Replace(chatOffer, "s=-\n", "s=\n", 1),
		"no t=":                strings.Replace(chatOffer, "t=0 0\n", "", 1),
		"t= before s=":         strings.Replace(strings.Replace(chatOffer, "t=0 0\n", "", 1), "s=-\n", "t=0 0\ns=-\n", 1),
		"o= after s=":          strings.Replace(strings.Replace(chatOffer, "o=- 3849283742 3849283742 IN IP4 10.0.0.1\n", "", 1), "s=-\n", "s=-\no=- 3849283742 3849283742 IN IP4 10.0.0.1\n", 1),
		"c= after a=":          strings.Replace(strings.Replace(chatOffer, "c=IN IP4 10.0.0.1\n", "", 1), "a=accept-types", "c=IN IP4 10.0.0.1\na=accept-types", 1),
		"double spaces":        strings.Replace(strings.Replace(chatOffer, "IN IP4 10.0.0.1", "IN  IP4\t10.0.0.1", 2), "9 TCP/MSRP", "9  TCP/MSRP", 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, want)
			}
			if string(got.Bytes()) != crlf(chatOffer) {
				t.Errorf("Bytes =\n%s\nwant the canonical form", got.Bytes())
			}
		})
	}
}

func TestParseKeepsEverything(t *testing.T) {
	t.Parallel()
	in := crlf(`v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
p=+1 617 555-6011
c=IN IP4 224.2.17.12/127
b=CT:128
t=2873397496 2873404696
r=7d 1h 0 25h
t=0 0
z=2882844526 -1h 2898848070 0
k=prompt
a=recvonly
a=x-session:1
m=audio 49170 RTP/AVP 0
m=video 51372/2 RTP/AVP 99
i=the video
c=IN IP6 2001:db8::1
b=AS:256
k=prompt
a=rtpmap:99 h263-1998/90000
a=flag
`)
	s, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.Bytes()); got != in {
		t.Errorf("Bytes =\n%s\nwant\n%s", got, in)
	}
	if len(s.Timing) != 2 || s.Timing[0].Start != 2873397496 || len(s.Timing[0].Repeats) != 1 || len(s.Timing[1].Repeats) != 0 {
		t.Errorf("Timing = %+v", s.Timing)
	}
	if s.Name != "SDP Seminar" || s.Connection.Address != "224.2.17.12/127" {
		t.Errorf("Name %q, Connection %+v", s.Name, s.Connection)
	}
	if v, ok := s.Attr("X-Session"); !ok || v != "1" {
		t.Errorf("Attr(X-Session) = %q, %v", v, ok)
	}
	v := s.Media[1]
	if v.Port != 51372 || v.NumPorts != 2 || v.Formats[0] != "99" || v.Connection.AddrType != "IP6" || len(v.Other) != 3 {
		t.Errorf("video = %+v", v)
	}
	if _, ok := v.Attr("flag"); !ok {
		t.Error("a=flag lost")
	}
	if s.Media[0].Attributes != nil {
		t.Errorf("audio attributes = %v, want nil", s.Media[0].Attributes)
	}
}

// A space-only s= is what RFC 8866 recommends for "no name"; it is kept.
func TestParseNameKeptAsWritten(t *testing.T) {
	t.Parallel()
	for _, name := range []string{" ", " -", "-", "Chat"} {
		in := crlf("v=0\no=- 1 1 IN IP4 h\ns=" + name + "\nt=0 0\n")
		s, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != name || string(s.Bytes()) != in {
			t.Errorf("s=%q: Name %q, Bytes %q", name, s.Name, s.Bytes())
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const head = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n"
	long := strings.Repeat("x", MaxLineLength+1)
	cases := []struct {
		name string
		in   string
		line int
		err  error
	}{
		{"empty", "", 1, ErrMissing},
		{"no v=", "o=- 1 1 IN IP4 h\n", 1, ErrMisplaced},
		{"v=1", "v=1\n", 1, ErrBadField},
		{"no o=", "v=0\ns=-\n", 2, ErrMissing},
		{"not type=value", head + "a:b\n", 5, ErrBadLine},
		{"space before =", head + "a =b\n", 5, ErrBadLine},
		{"one letter", head + "a\n", 5, ErrBadLine},
		{"unknown type", head + "x=1\n", 5, ErrUnknownType},
		{"upper-case type", head + "A=sendrecv\n", 5, ErrUnknownType},
		{"unknown type in media", head + "m=message 9 TCP/MSRP *\ny=1\n", 6, ErrUnknownType},
		{"second v=", head + "v=0\n", 5, ErrDuplicate},
		{"second o=", head + "o=- 1 1 IN IP4 h\n", 5, ErrDuplicate},
		{"second s=", head + "s=x\n", 5, ErrDuplicate},
		{"second c=", head + "c=IN IP4 a\nc=IN IP4 b\n", 6, ErrDuplicate},
		{"second media c=", head + "m=message 9 TCP/MSRP *\nc=IN IP4 a\nc=IN IP4 b\n", 7, ErrDuplicate},
		{"o= short", "v=0\no=- 1 IN IP4 h\n", 2, ErrBadField},
		{"o= id not decimal", "v=0\no=- 1a 1 IN IP4 h\n", 2, ErrBadField},
		{"c= short", head + "c=IN IP4\n", 5, ErrBadField},
		{"t= not decimal", "v=0\no=- 1 1 IN IP4 h\nt=0 x\n", 3, ErrBadField},
		{"t= too big", "v=0\no=- 1 1 IN IP4 h\nt=0 99999999999999999999\n", 3, ErrBadField},
		{"r= before t=", "v=0\no=- 1 1 IN IP4 h\nr=1 1 1\n", 3, ErrMisplaced},
		{"m= short", head + "m=message 9\n", 5, ErrBadField},
		{"m= port", head + "m=message x TCP/MSRP *\n", 5, ErrBadField},
		{"m= port too big", head + "m=message 65536 TCP/MSRP *\n", 5, ErrBadField},
		{"m= negative port", head + "m=message -1 TCP/MSRP *\n", 5, ErrBadField},
		{"m= port count", head + "m=message 9/0 TCP/MSRP *\n", 5, ErrBadField},
		{"m= proto", head + "m=message 9 TCP//MSRP *\n", 5, ErrBadField},
		{"a= empty", head + "a=\n", 5, ErrBadField},
		{"a= bad name", head + "a=pa th:x\n", 5, ErrBadField},
		{"a= name with colon only", head + "a=:x\n", 5, ErrBadField},
		{"i= empty", head + "i=\n", 5, ErrBadField},
		{"t= in media", head + "m=message 9 TCP/MSRP *\nt=0 0\n", 6, ErrMisplaced},
		{"o= in media", head + "m=message 9 TCP/MSRP *\no=- 1 1 IN IP4 h\n", 6, ErrMisplaced},
		{"NUL", head + "a=x\x00y\n", 5, ErrBadLine},
		{"bare CR", head + "a=x\ry\n", 5, ErrBadLine},
		{"line after blank line", head + "\na=sendrecv\n", 6, ErrMisplaced},
		{"line too long", head + "a=" + long + "\n", 5, ErrTooLong},
		{"too many lines", head + strings.Repeat("a=x\n", MaxLines), MaxLines + 1, ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", s)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Line != c.line || !errors.Is(err, c.err) {
				t.Errorf("error %q: line %d, want line %d and %v", err, se.Line, c.line, c.err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}
