package fthttp

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

func TestParse(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   []byte
		want Descriptor
	}{
		{"RCC.07 FT-HTTP descriptor with thumbnail", readFile(t, "spec.xml"), Descriptor{
			File:      Info{Size: 123456, Name: "a.jpg", ContentType: "image/jpeg", URL: "https://ft.example/f", Until: until, Disposition: "render"},
			Thumbnail: &Info{Size: 9216, ContentType: "image/jpeg", URL: "https://ft.example/t", Until: until},
		}},
		{"audio message with vendor extensions", readFile(t, "audio.xml"), Descriptor{
			File: Info{Size: 28710, Name: "voice & note.amr", ContentType: "audio/amr;voice-recording=yes", URL: "https://ft.example:444/s/abc?x=1&y=2",
				Until: time.Date(2026, 8, 15, 20, 48, 7, 0, time.UTC), PlayingLength: 4046},
		}},
		{"no type attribute, no until, unknown file-info type", []byte(`<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">` +
			`<file-info type="sticker"><data url="javascript:x"/></file-info>` +
			`<file-info><file-size>1</file-size><content-type>text/plain</content-type><data url="http://ft.example/x"/></file-info></file>`), Descriptor{
			File: Info{Size: 1, ContentType: "text/plain", URL: "http://ft.example/x"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, &tt.want) {
				t.Errorf("Parse() = %+v %+v\nwant %+v %+v", got.File, got.Thumbnail, tt.want.File, tt.want.Thumbnail)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const open = `<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">`
	const file = `<file-info type="file"><file-size>5</file-size><content-type>image/png</content-type><data url="https://ft.example/f"/></file-info>`
	tests := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"doctype", `<!DOCTYPE file [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + open + file + `</file>`, ErrDTD, "DOCTYPE"},
		{"wrong namespace", `<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:ft">` + file + `</file>`, ErrWrongNamespace, "want <file>"},
		{"wrong root", `<files xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp"/>`, ErrWrongNamespace, "<files>"},
		{"only a thumbnail", open + strings.Replace(file, `"file"`, `"thumbnail"`, 1) + `</file>`, ErrMissing, "no file-info of type file"},
		{"no url", open + strings.Replace(file, `url="https://ft.example/f"`, ``, 1) + `</file>`, ErrMissing, "file: required element missing: data url"},
		{"no content type", open + strings.Replace(file, `<content-type>image/png</content-type>`, ``, 1) + `</file>`, ErrMissing, "content-type"},
		{"javascript url", open + strings.Replace(file, `https://ft.example/f`, `javascript:alert(1)`, 1) + `</file>`, ErrBadValue, "not an http(s) URL"},
		{"relative url", open + strings.Replace(file, `https://ft.example/f`, `/f`, 1) + `</file>`, ErrBadValue, "not an http(s) URL"},
		{"bad thumbnail url", open + strings.Replace(file, `"file"`, `"thumbnail"`, 1) + strings.Replace(file, "https://ft.example/f", "ftp://x/y", 1) + `</file>`, ErrBadValue, "ftp://x/y"},
		{"bad size", open + strings.Replace(file, ">5<", ">5 kB<", 1) + `</file>`, ErrBadValue, "file-size"},
		{"negative size", open + strings.Replace(file, ">5<", ">-5<", 1) + `</file>`, ErrBadValue, "file-size"},
		{"bad playing length", open + strings.Replace(file, "</file-size>", `</file-size><am:playing-length xmlns:am="urn:gsma:params:xml:ns:rcs:rcs:rram">long</am:playing-length>`, 1) + `</file>`, ErrBadValue, "playing-length"},
		{"bad until", open + strings.Replace(file, `"/>`, `" until="next week"/>`, 1) + `</file>`, ErrBadValue, "until"},
		{"two files", open + file + file + `</file>`, ErrBadValue, "two file-info"},
		{"two thumbnails", open + strings.Repeat(strings.Replace(file, `"file"`, `"thumbnail"`, 1), 2) + `</file>`, ErrBadValue, "two thumbnails"},
		{"malformed", open + file, ErrMalformed, "EOF"},
		{"too large", open + file + "<!--" + strings.Repeat("x", MaxSize) + "--></file>", ErrTooLarge, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse() = %+v, %v; want %v", d, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "fthttp: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"spec.xml", "audio.xml"} {
		d, err := Parse(readFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, d)
	}
	checkRoundTrip(t, &Descriptor{File: Info{Size: 0, Name: `<"quoted" & 'odd'>`, ContentType: "a/b", URL: `https://x.example/?a="b"&c=<d>`,
		Until: time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)), Disposition: "attachment", PlayingLength: 1}})
}

func TestBytesSpecShape(t *testing.T) {
	t.Parallel()
	d, err := Parse(readFile(t, "spec.xml"))
	if err != nil {
		t.Fatal(err)
	}
	out := string(d.Bytes())
	for _, want := range []string{
		`<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">`,
		`<file-info type="thumbnail">`,
		`<file-info type="file" file-disposition="render">`,
		`<data url="https://ft.example/f" until="2026-10-10T00:00:00Z"/>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Bytes() lacks %s:\n%s", want, out)
		}
	}
	if strings.Index(out, "thumbnail") > strings.Index(out, `type="file"`) {
		t.Error("thumbnail must come first")
	}
}

func TestIsFileTransfer(t *testing.T) {
	t.Parallel()
	if !IsFileTransfer("application/vnd.gsma.rcs-ft-http+xml; charset=UTF-8") || IsFileTransfer("application/xml") {
		t.Error("IsFileTransfer")
	}
}

func checkRoundTrip(t testing.TB, d *Descriptor) {
	t.Helper()
	out := d.Bytes()
	d2, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Bytes()): %v\n%s", err, out)
	}
	if !equal(d, d2) {
		t.Fatalf("round trip differs:\n%+v %+v\n%+v %+v", d.File, d.Thumbnail, d2.File, d2.Thumbnail)
	}
	if out2 := d2.Bytes(); !bytes.Equal(out, out2) {
		t.Fatalf("Bytes() not stable:\n%s\n%s", out, out2)
	}
}

func equal(a, b *Descriptor) bool {
	if (a.Thumbnail == nil) != (b.Thumbnail == nil) {
		return false
	}
	if a.Thumbnail != nil && !infoEqual(*a.Thumbnail, *b.Thumbnail) {
		return false
	}
	return infoEqual(a.File, b.File)
}

func infoEqual(a, b Info) bool {
	ua, ub := a.Until, b.Until
	a.Until, b.Until = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b) && ua.Equal(ub)
}

func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "spec.xml"))
	f.Add(readFile(f, "audio.xml"))
	f.Add([]byte(`<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp"><file-info><content-type>a</content-type><data url="http://h/"/></file-info></file>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := Parse(in)
		if err != nil {
			return
		}
		checkRoundTrip(t, d)
	})
}

func BenchmarkParse(b *testing.B) {
	in := readFile(b, "spec.xml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
