package cpim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A pager-mode MESSAGE body as RCC.07 and RFC 3862 show it, with bare LF
// line ends as such examples are usually written.
func TestParseSpecExample(t *testing.T) {
	t.Parallel()
	m, err := Parse(readFile(t, "pager.cpim"))
	if err != nil {
		t.Fatal(err)
	}
	nameAddr, uri := m.From()
	if nameAddr != "<sip:+15551230001@ims.example.net>" || uri != "sip:+15551230001@ims.example.net" {
		t.Errorf("From() = %q, %q", nameAddr, uri)
	}
	if _, uri := m.To(); uri != "sip:+15551230002@ims.example.net" {
		t.Errorf("To() uri = %q", uri)
	}
	if got := m.MessageID(); got != "Msg2BCqcBUWKA" {
		t.Errorf("MessageID() = %q", got)
	}
	dt, err := m.DateTime()
	if err != nil || !dt.Equal(time.Date(2026, 8, 8, 6, 40, 56, 0, time.UTC)) {
		t.Errorf("DateTime() = %v, %v", dt, err)
	}
	pos, neg, disp := m.DispositionNotification()
	if !pos || neg || !disp {
		t.Errorf("DispositionNotification() = %v %v %v, want true false true", pos, neg, disp)
	}
	if m.ContentType() != "text/plain;charset=UTF-8" || m.MediaType() != "text/plain" {
		t.Errorf("ContentType() = %q, MediaType() = %q", m.ContentType(), m.MediaType())
	}
	if string(m.Body) != "Hello" {
		t.Errorf("Body = %q", m.Body)
	}
	if len(m.Headers) != 6 || len(m.Content) != 2 {
		t.Errorf("%d headers, %d content headers; want 6 and 2", len(m.Headers), len(m.Content))
	}
}

func TestParseBase64AndNamespaces(t *testing.T) {
	t.Parallel()
	m, err := Parse(readFile(t, "base64.cpim"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Body); got != "Hello, wörld! 👈" {
		t.Errorf("Body = %q", got)
	}
	if got := m.Header(NamespaceCPM, "Payload-Type"); got != "Advertisement" {
		t.Errorf("cpm.Payload-Type = %q", got)
	}
	if got := m.Header("", "X-Vendor-Thing"); got != "kept" {
		t.Errorf("unknown header = %q, want it kept", got)
	}
	dt, err := m.DateTime()
	if err != nil || !dt.Equal(time.Date(2026, 8, 8, 4, 40, 56, 0, time.UTC)) {
		t.Errorf("DateTime() = %v, %v", dt, err)
	}
	if pos, neg, disp := m.DispositionNotification(); pos || neg || disp {
		t.Errorf("no Disposition-Notification, got %v %v %v", pos, neg, disp)
	}
	var names []string
	for _, h := range m.Headers {
		names = append(names, h.Name)
	}
	wantNames := []string{"From", "To", "NS", "NS", "imdn.Message-ID", "DateTime", "cpm.Payload-Type", "X-Vendor-Thing"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("header order %q, want %q", names, wantNames)
	}
	want := map[string]string{"imdn": NamespaceIMDN, "cpm": NamespaceCPM}
	if got := m.Namespaces(); !reflect.DeepEqual(got, want) {
		t.Errorf("Namespaces() = %v", got)
	}
}

func TestParseIMDNEnvelope(t *testing.T) {
	t.Parallel()
	m, err := Parse(readFile(t, "imdn.cpim"))
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType() != "message/imdn+xml" || m.ContentHeader("content-disposition") != "notification" {
		t.Errorf("content headers = %+v", m.Content)
	}
	if !bytes.HasPrefix(m.Body, []byte("<?xml")) || !bytes.HasSuffix(m.Body, []byte("</imdn>\r\n")) {
		t.Errorf("Body = %q", m.Body)
	}
}

func TestParseCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, m *Message)
	}{
		{
			name: "imdn bound to another prefix",
			in:   "From: <tel:+15551230001>\nTo: <tel:+15551230002>\nNS: x <urn:ietf:params:imdn>\nNS: imdn <urn:example:other>\nimdn.Message-ID: wrong\nx.Message-ID: right\nx.Disposition-Notification: Negative-Delivery\n\nContent-Type: text/plain\n\nhi",
			check: func(t *testing.T, m *Message) {
				if m.MessageID() != "right" {
					t.Errorf("MessageID() = %q, want right", m.MessageID())
				}
				if pos, neg, disp := m.DispositionNotification(); pos || !neg || disp {
					t.Errorf("dispositions %v %v %v", pos, neg, disp)
				}
				if got := m.Header("urn:example:other", "Message-ID"); got != "wrong" {
					t.Errorf("other namespace = %q", got)
				}
			},
		},
		{
			name: "NS declaration forgotten: conventional prefix",
			in:   "From: <tel:+15551230001>\nTo: <tel:+15551230002>\nimdn.Message-ID: abc\n\nContent-Type: text/plain\n\nhi",
			check: func(t *testing.T, m *Message) {
				if m.MessageID() != "abc" {
					t.Errorf("MessageID() = %q", m.MessageID())
				}
			},
		},
		{
			name: "conventional prefix declared for another namespace",
			in:   "From: <tel:+1>\nNS: imdn <urn:example:else>\nimdn.Message-ID: abc\n\nContent-Type: text/plain\n\n",
			check: func(t *testing.T, m *Message) {
				if m.MessageID() != "" {
					t.Errorf("MessageID() = %q, want none", m.MessageID())
				}
			},
		},
		{
			name: "default namespace and language parameter",
			in:   "From: Pooh Bear <im:pooh@100akerwood.com>\nTo: \"A <weird> one\" <im:piglet@100akerwood.com>\nTo: <im:eeyore@100akerwood.com>\ncc: <im:owl@100akerwood.com>\nSubject: the weather\nSubject:;lang=fr beau temps\n\nContent-Type: text/plain\n\nbody",
			check: func(t *testing.T, m *Message) {
				if name, uri, _ := ParseNameAddr(m.Header("", "From")); name != "Pooh Bear" || uri != "im:pooh@100akerwood.com" {
					t.Errorf("From = %q %q", name, uri)
				}
				if _, uri := m.To(); uri != "im:piglet@100akerwood.com" {
					t.Errorf("To() = %q", uri)
				}
				if got := m.Values("", "to"); len(got) != 2 {
					t.Errorf("Values(To) = %q", got)
				}
				if got := m.Header(NamespaceCore, "CC"); got != "<im:owl@100akerwood.com>" {
					t.Errorf("cc = %q", got)
				}
				if h := m.Headers[5]; h.Params != ";lang=fr" || h.Value != "beau temps" {
					t.Errorf("Subject;lang = %+v", h)
				}
			},
		},
		{
			name: "folded MIME header, no space after colon, CRLF",
			in:   "From:<tel:+15551230001>\r\n\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nline1\r\nline2",
			check: func(t *testing.T, m *Message) {
				if m.ContentType() != "text/plain; charset=utf-8" {
					t.Errorf("ContentType() = %q", m.ContentType())
				}
				if _, uri := m.From(); uri != "tel:+15551230001" {
					t.Errorf("From() uri = %q", uri)
				}
				if string(m.Body) != "line1\r\nline2" {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "Content-Length shorter than what follows",
			in:   "From: <tel:+1>\n\nContent-Type: text/plain\nContent-Length: 2\n\nhi\r\n",
			check: func(t *testing.T, m *Message) {
				if string(m.Body) != "hi" {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "Content-Length past the end is not trusted",
			in:   "From: <tel:+1>\n\nContent-Type: text/plain\nContent-Length: 99999\n\nhi",
			check: func(t *testing.T, m *Message) {
				if string(m.Body) != "hi" {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "no content after the MIME headers",
			in:   "From: <tel:+1>\n\nContent-Type: text/plain",
			check: func(t *testing.T, m *Message) {
				if len(m.Body) != 0 {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "quoted-printable content",
			in:   "From: <tel:+1>\n\nContent-Type: text/plain\nContent-Transfer-Encoding: Quoted-Printable\n\ncaf=C3=A9 =\nau lait",
			check: func(t *testing.T, m *Message) {
				if string(m.Body) != "café au lait" {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "base64 with spaces",
			in:   "From: <tel:+1>\n\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n aGVs bG8=\n",
			check: func(t *testing.T, m *Message) {
				if string(m.Body) != "hello" {
					t.Errorf("Body = %q", m.Body)
				}
			},
		},
		{
			name: "no CPIM headers at all",
			in:   "\nContent-Type: text/plain\n\nx",
			check: func(t *testing.T, m *Message) {
				if len(m.Headers) != 0 || string(m.Body) != "x" {
					t.Errorf("Headers %v, Body %q", m.Headers, m.Body)
				}
				if nameAddr, uri := m.From(); nameAddr != "" || uri != "" {
					t.Errorf("From() = %q %q", nameAddr, uri)
				}
				if _, err := m.DateTime(); !errors.Is(err, ErrMissingHeader) {
					t.Errorf("DateTime() error = %v, want ErrMissingHeader", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, m)
		})
	}
}

// The bad inputs of issue 4's "Must show", and the other ways a header
// section goes wrong: each gets an error naming what is wrong.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	const good = "From: <tel:+1>\nTo: <tel:+2>\n"
	tests := []struct {
		name string
		in   string
		want error
		text string // must appear in the message
	}{
		{"no blank line between CPIM and MIME headers", good + "Content-Type: text/plain\n\nHello", ErrNoSeparator, "Content-Type among the CPIM message headers"},
		{"no blank line at all", good + "NS: imdn <urn:ietf:params:imdn>", ErrNoSeparator, "no blank line after the message headers"},
		{"empty input", "", ErrNoSeparator, "no blank line"},
		{"missing Content-Type", good + "\nContent-Length: 5\n\nHello", ErrNoContentType, "Content-Type"},
		{"empty MIME headers", good + "\n\nHello", ErrNoContentType, "Content-Type"},
		{"NS without angle brackets", good + "NS: imdn urn:ietf:params:imdn\n\nContent-Type: text/plain\n\nx", ErrBadNS, "imdn urn:ietf:params:imdn"},
		{"NS with empty URI", good + "NS: imdn <>\n\nContent-Type: text/plain\n\nx", ErrBadNS, "NS"},
		{"NS prefix with a space", good + "NS: im dn <urn:x>\n\nContent-Type: text/plain\n\nx", ErrBadNS, "NS"},
		{"bad base64", good + "\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!notbase64!!", ErrBadEncoding, "base64"},
		{"unknown transfer encoding", good + "\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nx", ErrBadEncoding, "x-uuencode"},
		{"100 KB header line", good + "Subject: " + strings.Repeat("a", 100<<10) + "\n\nContent-Type: text/plain\n\nx", ErrLineTooLong, "line 3"},
		{"100 KB header line at the end", good + "Subject: " + strings.Repeat("a", 100<<10), ErrLineTooLong, "line 3"},
		{"line just over the limit", "Subject: " + strings.Repeat("a", MaxLineLength-8) + "\r\n\nContent-Type: text/plain\n\n", ErrLineTooLong, "line 1"},
		{"too many headers", strings.Repeat("X-A: b\n", MaxHeaders+1) + "\nContent-Type: text/plain\n\nx", ErrTooManyHeaders, "limit 100"},
		{"header without colon", good + "garbage line\n\nContent-Type: text/plain\n\nx", ErrBadHeader, "no colon"},
		{"content where MIME headers belong", good + "\nHello there\n", ErrBadHeader, "no blank line before the content"},
		{"empty header name", good + ": value\n\nContent-Type: text/plain\n\nx", ErrBadHeader, "bad name"},
		{"control character", good + "Subject: a\x00b\n\nContent-Type: text/plain\n\nx", ErrBadHeader, "control character 0x00"},
		{"bare CR inside a line", good + "Subject: a\rInjected: b\n\nContent-Type: text/plain\n\nx", ErrBadHeader, "0x0d"},
		{"continuation first", " folded\n\nContent-Type: text/plain\n\nx", ErrBadHeader, "continuation"},
		{"bad Content-Length", good + "\nContent-Type: text/plain\nContent-Length: five\n\nHello", ErrBadContentLength, "five"},
		{"negative Content-Length", good + "\nContent-Type: text/plain\nContent-Length: -1\n\nHello", ErrBadContentLength, "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v (message %v), want %v", err, m != nil, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "cpim: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long; it must stay short enough for a reason phrase", len(err.Error()))
			}
		})
	}
}

// New and Bytes must produce the spec's pager example, CRLF line ends.
func TestNewMatchesSpecExample(t *testing.T) {
	t.Parallel()
	dt := time.Date(2026, 8, 8, 6, 40, 56, 0, time.UTC)
	m := New("sip:+15551230001@ims.example.net", "<sip:+15551230002@ims.example.net>", "Msg2BCqcBUWKA", dt,
		NotifyPositiveDelivery|NotifyDisplay, "text/plain;charset=UTF-8", []byte("Hello"))
	want := strings.ReplaceAll(string(readFile(t, "pager.cpim")), "\n", "\r\n")
	if got := string(m.Bytes()); got != want {
		t.Errorf("Bytes() =\n%q\nwant\n%q", got, want)
	}
}

func TestNewAddsHeaders(t *testing.T) {
	t.Parallel()
	m := New("tel:+15551230001", "tel:+15551230002", "id1", time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("x", 3600)), 0, "message/imdn+xml", []byte("<imdn/>"))
	m.Content = append(m.Content, Header{Name: "Content-Disposition", Value: "notification"})
	m.Headers = append(m.Headers, Header{Name: "NS", Value: "cpm <" + NamespaceCPM + ">"}, Header{Name: "cpm.Payload-Type", Value: "x"})
	got, err := Parse(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.Header("", "DateTime") != "2026-01-02T02:04:05.006Z" {
		t.Errorf("DateTime = %q", got.Header("", "DateTime"))
	}
	if got.Header(NamespaceIMDN, "Disposition-Notification") != "" {
		t.Error("Disposition-Notification written though none was asked for")
	}
	if got.ContentHeader("Content-Disposition") != "notification" || got.Header(NamespaceCPM, "Payload-Type") != "x" {
		t.Errorf("added headers lost: %+v %+v", got.Headers, got.Content)
	}
}

func TestBytesEncodesAndSanitises(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n'}, 40)
	m := &Message{
		Headers: []Header{{Name: "Subject", Value: "evil\r\nInjected: yes"}, {Name: "Bad Name:", Value: "v"}},
		Content: []Header{{Name: "Content-Type", Value: "application/octet-stream"}, {Name: "Content-Transfer-Encoding", Value: "BASE64"}, {Name: "Content-Length", Value: "1"}},
		Body:    body,
	}
	out := m.Bytes()
	for _, line := range strings.Split(string(out), "\r\n") {
		if len(line) > 200 {
			t.Errorf("line of %d bytes: base64 not wrapped", len(line))
		}
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Bytes()): %v\n%s", err, out)
	}
	if got.Header("", "Injected") != "" || len(got.Headers) != 2 {
		t.Errorf("header injection: %+v", got.Headers)
	}
	if got.Headers[1].Name != "Bad-Name-" {
		t.Errorf("name = %q", got.Headers[1].Name)
	}
	if !bytes.Equal(got.Body, body) {
		t.Errorf("Body = %x, want %x", got.Body, body)
	}
	// 240 bytes are 320 base64 characters on 5 lines: 4 CRLFs between them.
	if cl := got.ContentHeader("Content-Length"); cl != "328" {
		t.Errorf("Content-Length = %s, want the encoded length", cl)
	}
}

func TestRoundTripTestdata(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"pager.cpim", "base64.cpim", "imdn.cpim"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkRoundTrip(t, readFile(t, name))
		})
	}
}

func TestIsComposing(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/im-iscomposing+xml":                true,
		"Application/IM-isComposing+XML; charset=utf-8": true,
		" application/im-iscomposing+xml ":              true,
		"text/plain":                                    false,
		"":                                              false,
		"application/im-iscomposing+xmlx":               false,
	} {
		if got := IsComposing(ct); got != want {
			t.Errorf("IsComposing(%q) = %v", ct, got)
		}
	}
}

func TestNotifyString(t *testing.T) {
	t.Parallel()
	all := NotifyPositiveDelivery | NotifyNegativeDelivery | NotifyDisplay | NotifyProcessing
	if got := all.String(); got != "positive-delivery, negative-delivery, display, processing" {
		t.Errorf("String() = %q", got)
	}
	if ParseNotify(all.String()) != all {
		t.Error("ParseNotify(String()) differs")
	}
	if ParseNotify(" display ,bogus,,") != NotifyDisplay {
		t.Error("ParseNotify ignores unknown items badly")
	}
}

func TestParseNameAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, name, uri string
		ok            bool
	}{
		{"<sip:a@b>", "", "sip:a@b", true},
		{"Alice <sip:a@b>", "Alice", "sip:a@b", true},
		{`"Al <x> ice" <tel:+1>`, "Al <x> ice", "tel:+1", true},
		{"tel:+15551230001", "", "tel:+15551230001", true},
		{"", "", "", false},
		{"<>", "", "", false},
		{"<sip:a@b", "", "", false},
		{`"unterminated <sip:a@b>`, "", "", false},
		{"two words", "", "", false},
	}
	for _, tt := range tests {
		name, uri, ok := ParseNameAddr(tt.in)
		if name != tt.name || uri != tt.uri || ok != tt.ok {
			t.Errorf("ParseNameAddr(%q) = %q, %q, %v", tt.in, name, uri, ok)
		}
	}
}

// checkRoundTrip asserts that what parses is written and read back the
// same, and that writing is then stable.
func checkRoundTrip(t testing.TB, in []byte) {
	t.Helper()
	m1, err := Parse(in)
	if err != nil {
		return
	}
	out1 := m1.Bytes()
	m2, err := Parse(out1)
	if err != nil {
		t.Fatalf("Parse(Bytes()) failed: %v\ninput  %q\noutput %q", err, in, out1)
	}
	if !headersEqual(m1.Headers, m2.Headers) {
		t.Fatalf("headers differ after a round trip:\n%+v\n%+v", m1.Headers, m2.Headers)
	}
	if !headersEqualExceptLength(m1.Content, m2.Content) {
		t.Fatalf("content headers differ after a round trip:\n%+v\n%+v", m1.Content, m2.Content)
	}
	if !bytes.Equal(m1.Body, m2.Body) {
		t.Fatalf("body differs after a round trip: %q vs %q", m1.Body, m2.Body)
	}
	if out2 := m2.Bytes(); !bytes.Equal(out1, out2) {
		t.Fatalf("Bytes() not stable:\n%q\n%q", out1, out2)
	}
}

func headersEqual(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func headersEqualExceptLength(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.EqualFold(a[i].Name, "Content-Length") && strings.EqualFold(b[i].Name, "Content-Length") {
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
