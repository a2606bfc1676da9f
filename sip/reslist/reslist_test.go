package reslist

import (
	"bytes"
	"errors"
	"fmt"
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

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want []Entry
	}{
		{"RCS group chat INVITE list", readFile(t, "group.xml"), []Entry{{URI: "tel:+15551230003", CopyControl: To}}},
		{"nested lists, copy control, external references skipped", readFile(t, "nested.xml"), []Entry{
			{URI: "sip:+15551230003@ims.example.net;user=phone", DisplayName: "Bill & Ben", CopyControl: To},
			{URI: "tel:+15551230004", CopyControl: CC},
			{URI: "tel:+15551230005", CopyControl: BCC, Anonymize: true},
			{URI: "tel:+15551230006"},
			{URI: "tel:+15551230007"},
		}},
		{"no lists", []byte(`<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	open := `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list>`
	closing := `</list></resource-lists>`
	tests := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"doctype", `<!DOCTYPE resource-lists [<!ENTITY e "x">]>` + open + `<entry uri="tel:+1"/>` + closing, ErrDTD, "DOCTYPE"},
		{"wrong namespace", `<resource-lists xmlns="urn:ietf:params:xml:ns:rl"><list/></resource-lists>`, ErrWrongNamespace, "want <resource-lists>"},
		{"entry without uri", open + `<entry/>` + closing, ErrBadEntry, "without uri"},
		{"uri with a space", open + `<entry uri="tel:+1 2"/>` + closing, ErrBadEntry, "tel:+1 2"},
		{"bad copyControl", open + `<entry uri="tel:+1" cp:copyControl="from"/>` + closing, ErrBadEntry, "copyControl \"from\""},
		{"bad anonymize", open + `<entry uri="tel:+1" cp:anonymize="yes"/>` + closing, ErrBadEntry, "anonymize"},
		{"too many entries", open + strings.Repeat(`<entry uri="tel:+1"/>`, MaxEntries+1) + closing, ErrTooManyEntries, "limit 1000"},
		{"nested too deep", open + strings.Repeat("<list>", MaxDepth) + strings.Repeat("</list>", MaxDepth) + closing, ErrBadEntry, "nested deeper"},
		{"too large", open + "<!--" + strings.Repeat("x", MaxSize) + "-->" + closing, ErrTooLarge, "limit"},
		{"malformed", open + `<entry uri="tel:+1">`, ErrMalformed, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse() = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "reslist: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	t.Parallel()
	entries, err := Parse(readFile(t, "nested.xml"))
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, Entry{URI: `sip:a@b;x=1&y=2?h=%3C`, DisplayName: "Ünïcode \"quoted\" <name>"})
	checkRoundTrip(t, entries)
	if got := string(Bytes([]Entry{{URI: "tel:+15551230003", CopyControl: To}})); !strings.Contains(got, `<entry uri="tel:+15551230003" cp:copyControl="to"/>`) {
		t.Errorf("Bytes() = %s", got)
	}
}

func checkRoundTrip(t testing.TB, entries []Entry) {
	t.Helper()
	out := Bytes(entries)
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Bytes()): %v\n%s", err, out)
	}
	if len(got) != len(entries) || (len(got) > 0 && !reflect.DeepEqual(got, entries)) {
		t.Fatalf("round trip:\n%+v\n%+v", got, entries)
	}
	if out2 := Bytes(got); !bytes.Equal(out, out2) {
		t.Fatalf("Bytes() not stable:\n%s\n%s", out, out2)
	}
}

func TestSplitRecipientList(t *testing.T) {
	t.Parallel()
	body := readFile(t, "one-to-many.txt")
	for name, b := range map[string][]byte{"LF": body, "CRLF": bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, msg, err := SplitRecipientList(`multipart/mixed; boundary="b1"`, b)
			if err != nil {
				t.Fatal(err)
			}
			want := []Entry{{URI: "tel:+15551230003", CopyControl: To}, {URI: "tel:+15551230004", CopyControl: To}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("recipients = %+v (the duplicate must be gone)", got)
			}
			if !bytes.HasPrefix(msg, []byte("From: <sip:+15551230001@ims.example.net>")) || !bytes.Contains(msg, []byte("Hello")) {
				t.Errorf("cpim part = %q", msg)
			}
		})
	}
}

func TestJoinSplit(t *testing.T) {
	t.Parallel()
	entries := []Entry{{URI: "tel:+15551230003", CopyControl: To}, {URI: "tel:+15551230004", CopyControl: BCC, Anonymize: true}}
	msg := []byte("From: <tel:+15551230001>\r\n\r\nContent-Type: text/plain\r\n\r\n--not a boundary\r\n")
	ct, body := JoinRecipientList(entries, msg)
	got, gotMsg, err := SplitRecipientList(ct, body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if !reflect.DeepEqual(got, entries) || !bytes.Equal(gotMsg, msg) {
		t.Errorf("Split(Join()) = %+v, %q", got, gotMsg)
	}
	if !strings.Contains(string(body), "Content-Disposition: recipient-list") {
		t.Errorf("no recipient-list disposition:\n%s", body)
	}
}

func TestSplitEncodedParts(t *testing.T) {
	t.Parallel()
	list := "PHJlc291cmNlLWxpc3RzIHhtbG5zPSJ1cm46aWV0ZjpwYXJhbXM6eG1sOm5zOnJlc291cmNlLWxpc3RzIj48bGlzdD48ZW50cnkgdXJpPSJ0ZWw6KzE1NTUxMjMwMDAzIi8+PC9saXN0PjwvcmVzb3VyY2UtbGlzdHM+"
	body := "--b\r\nContent-Type: application/resource-lists+xml\r\nContent-Transfer-Encoding: base64\r\n\r\n" + list +
		"\r\n--b\r\nContent-Type: text/plain\r\n\r\nignored part\r\n--b\r\nContent-Type: message/cpim\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nFrom: <tel:+1>=0D=0A=0D=0AContent-Type: text/plain=0D=0A=0D=0Ahi\r\n--b--\r\n"
	got, msg, err := SplitRecipientList("multipart/mixed;boundary=b", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].URI != "tel:+15551230003" || string(msg) != "From: <tel:+1>\r\n\r\nContent-Type: text/plain\r\n\r\nhi" {
		t.Errorf("got %+v, %q", got, msg)
	}
}

func TestSplitErrors(t *testing.T) {
	t.Parallel()
	listPart := "--b\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n" + string(readFile(t, "group.xml")) + "\r\n"
	cpimPart := "--b\r\nContent-Type: message/cpim\r\n\r\nFrom: <tel:+1>\r\n\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	const ct = "multipart/mixed; boundary=b"
	tests := []struct {
		name, ct, body string
		want           error
		text           string
	}{
		{"not multipart", "message/cpim", listPart + cpimPart + "--b--", ErrNotMultipart, "message/cpim"},
		{"multipart/alternative", "multipart/alternative; boundary=b", listPart + cpimPart + "--b--", ErrNotMultipart, "alternative"},
		{"no boundary", "multipart/mixed", listPart + cpimPart + "--b--", ErrNotMultipart, "no boundary"},
		{"no list", ct, cpimPart + "--b--", ErrNoRecipientList, "recipient-list"},
		{"no cpim", ct, listPart + "--b--", ErrNoMessage, "message/cpim"},
		{"two lists", ct, listPart + listPart + cpimPart + "--b--", ErrBadMultipart, "two recipient lists"},
		{"two messages", ct, listPart + cpimPart + cpimPart + "--b--", ErrBadMultipart, "two message/cpim"},
		{"too many parts", ct, strings.Repeat("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n", MaxParts+1) + "--b--", ErrBadMultipart, "more than 8 parts"},
		{"part too large", ct, "--b\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("x", MaxPartSize+1) + "\r\n--b--", ErrBadMultipart, "part over"},
		{"body too large", ct, strings.Repeat("x", MaxBodySize+1), ErrBadMultipart, "limit"},
		{"bad list", ct, strings.Replace(listPart, "urn:ietf:params:xml:ns:resource-lists", "urn:x", 1) + cpimPart + "--b--", ErrWrongNamespace, "recipient-list part"},
		{"empty list", ct, strings.Replace(listPart, `<entry uri="tel:+15551230003" cp:copyControl="to"/>`, "", 1) + cpimPart + "--b--", ErrNoRecipients, "empty"},
		{"bad base64", ct, "--b\r\nContent-Type: application/resource-lists+xml\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n" + cpimPart + "--b--", ErrBadMultipart, "base64"},
		{"no parts", ct, "just text", ErrBadMultipart, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, msg, err := SplitRecipientList(tt.ct, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("SplitRecipientList() = %+v, %q, %v; want %v", got, msg, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "reslist: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "group.xml"))
	f.Add(readFile(f, "nested.xml"))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := Parse(in)
		if err != nil {
			return
		}
		checkRoundTrip(t, entries)
	})
}

// FuzzSplitRecipientList: never panics, and what splits joins and splits
// again to the same recipients and message.
func FuzzSplitRecipientList(f *testing.F) {
	f.Add("b1", readFile(f, "one-to-many.txt"))
	ct, body := JoinRecipientList([]Entry{{URI: "tel:+1", CopyControl: CC}}, []byte("x"))
	f.Add(strings.TrimPrefix(ct, "multipart/mixed;boundary="), body)
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		entries, msg, err := SplitRecipientList(fmt.Sprintf("multipart/mixed; boundary=%q", boundary), body)
		if err != nil {
			return
		}
		ct, joined := JoinRecipientList(entries, msg)
		entries2, msg2, err := SplitRecipientList(ct, joined)
		if err != nil {
			t.Fatalf("Split(Join()) failed: %v", err)
		}
		if !reflect.DeepEqual(entries, entries2) || !bytes.Equal(msg, msg2) {
			t.Fatalf("Split(Join()) differs: %+v %q vs %+v %q", entries, msg, entries2, msg2)
		}
	})
}

func BenchmarkSplitRecipientList(b *testing.B) {
	body := readFile(b, "one-to-many.txt")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := SplitRecipientList(`multipart/mixed; boundary="b1"`, body); err != nil {
			b.Fatal(err)
		}
	}
}
