package gateway

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mimigw/mimigw/mimi/content"
)

// vectors are the drafts' examples, kept with the codec that reads them.
const vectors = "../mimi/content/testdata/mimi-content"

func vector(t *testing.T, name string) *content.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name+".cbor"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := content.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// The drafts' examples as a phone sees them.
func TestRenderVectors(t *testing.T) {
	t.Parallel()
	original := vector(t, "original")
	originalID, err := original.ID()
	if err != nil {
		t.Fatal(err)
	}
	excerpts := func(id content.MessageID) string {
		if id == originalID {
			return makeExcerpt(textOf(original))
		}
		return ""
	}
	tests := []struct {
		name, want string
	}{
		{"original", "Hi everyone, we just shipped release 2.0. Good  work!"},
		{"reply", `Reply to "Hi everyone, we just shipped release...": Right on! Congratulations 'all!`},
		{"reaction", `Reacted ❤ to "Hi everyone, we just shipped release..."`},
		{"edit", "Edited: Right on! Congratulations y'all!"},
		{"delete", "Deleted a message"},
		{"unlike", "Removed a reaction from a message"},
		{"attachment", "File: bigfile.mp4 (708.2 MB) https://example.com/storage/8ksB4bSrrRE.mp4"},
		{"multipart-1", "Welcome!"},
		{"multipart-2", "Reacted ❤ 🥳 🤞"},
		{"multipart-3", "Welcome!\nWelcome image"},
	}
	for _, tt := range tests {
		got, err := renderForPhone(vector(t, tt.name), excerpts)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got.Text != tt.want {
			t.Errorf("%s: SMS text %q, want %q", tt.name, got.Text, tt.want)
		}
		if len(got.Parts) == 0 {
			t.Errorf("%s: no RCS parts", tt.name)
		}
	}
}

func TestRenderParts(t *testing.T) {
	t.Parallel()
	att := vector(t, "attachment")
	got, err := renderForPhone(att, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := got.Parts[0].File
	if f == nil || f.URL != "https://example.com/storage/8ksB4bSrrRE.mp4" || f.Size != 708234961 || f.Name != "bigfile.mp4" || f.ContentType != "video/mp4" {
		t.Fatalf("attachment as RCS part: %+v", got.Parts[0])
	}

	// A chatbot body goes to RCS as it is and never to SMS as text.
	bot := &content.Message{Body: content.NewSinglePart(content.Render, "application/vnd.gsma.botmessage.v1.0+json", []byte(`{"a":1}`))}
	if _, err := renderForPhone(bot, nil); !errors.Is(err, errUnrenderable) {
		t.Errorf("bot-only message: %v, want errUnrenderable", err)
	}
	mixed := &content.Message{Body: content.NewMultiPart(content.Render, content.ProcessAll,
		content.NewSinglePart(content.Render, content.TypePlain, []byte("menu")),
		content.NewSinglePart(content.Render, "application/vnd.gsma.botsuggestion.v1.0+json", []byte(`{}`)))}
	got, err = renderForPhone(mixed, nil)
	if err != nil || got.Text != "menu" || len(got.Parts) != 2 || got.Parts[1].ContentType != "application/vnd.gsma.botsuggestion.v1.0+json" {
		t.Errorf("text with a bot suggestion: %+v, %v", got, err)
	}
}

func TestBodyFromPhoneRoundTrip(t *testing.T) {
	t.Parallel()
	in := []Part{
		{Text: "look €"},
		{File: &File{URL: "https://ft.example/f", Name: "a.jpg", ContentType: "image/jpeg", Size: 123456,
			Thumbnail: &File{URL: "https://ft.example/t", ContentType: "image/jpeg", Size: 9216}}},
	}
	body, err := bodyFromPhone(in)
	if err != nil {
		t.Fatal(err)
	}
	m := &content.Message{Extensions: content.Extensions{SenderURI: "mimi://gw.example.net/u/+15551230001", RoomURI: "mimi://gw.example.net/r/dm-1"}, Body: body}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := content.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := renderForPhone(back, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "look €\nFile: a.jpg (123.5 kB) https://ft.example/f" {
		t.Errorf("text %q", out.Text)
	}
	if len(out.Parts) != 2 || out.Parts[1].File == nil || out.Parts[1].File.Thumbnail == nil || out.Parts[1].File.Thumbnail.URL != "https://ft.example/t" {
		t.Errorf("parts %+v", out.Parts)
	}
	for _, bad := range [][]Part{nil, {{Text: "\xff"}}, {{Data: []byte("x")}}} {
		if _, err := bodyFromPhone(bad); !errors.Is(err, ErrRejected) {
			t.Errorf("bodyFromPhone(%+v): %v, want ErrRejected", bad, err)
		}
	}
}

func TestPlainFromHTML(t *testing.T) {
	t.Parallel()
	got := plainFromHTML("<html><body><h1>Welcome!</h1>\n<img src=\"cid:5@local.invalid\" alt=\"Welcome image\"/>\n<p>a &amp; b<br>c</p></body></html>")
	if want := "Welcome!\nWelcome image\na & b\nc"; got != want {
		t.Errorf("plainFromHTML = %q, want %q", got, want)
	}
}

func TestMakeExcerpt(t *testing.T) {
	t.Parallel()
	if got := makeExcerpt("short\n text"); got != "short text" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("é", 100)
	if got := makeExcerpt(long); len([]rune(got)) != excerptLen || !strings.HasSuffix(got, "...") {
		t.Errorf("%q", got)
	}
}

// excerptBySplitting is what an excerpt is: the words of a text joined by
// single spaces, cut to excerptLen characters with "..." when longer.
func excerptBySplitting(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= excerptLen {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:excerptLen-3])) + "..."
}

// makeExcerpt, which reads only the start of a text, gives the same
// excerpt as joining all its words, at and around the length limit, with
// Unicode spaces, runs of spaces, and bytes that are not UTF-8.
func TestMakeExcerptSameAsSplitting(t *testing.T) {
	t.Parallel()
	cases := []string{"", " ", "a", " a ", "a  b", "\t\na\u00a0b\u3000c\u0085", "\xff", "a \xff\xfe b",
		strings.Repeat("x", excerptLen), strings.Repeat("x", excerptLen+1), strings.Repeat("x", excerptLen-1) + " y",
		strings.Repeat("x", excerptLen-4) + "   " + strings.Repeat("y", 10), strings.Repeat("x ", 60),
		strings.Repeat("日本", 30), strings.Repeat("é ", excerptLen/2) + " ", "  " + strings.Repeat("ab\u2003", 20)}
	words := []string{"a", "bc", "défg", "\u2028", " ", "  ", "\n", "\xc3", "😀", "long-word-of-many-letters"}
	seed := uint32(1)
	for range 2000 {
		var b strings.Builder
		seed = seed*1664525 + 1013904223
		for n := seed >> 27; n > 0; n-- {
			seed = seed*1664525 + 1013904223
			b.WriteString(words[int(seed>>16)%len(words)])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := makeExcerpt(s), excerptBySplitting(s); got != want {
			t.Errorf("makeExcerpt(%q) = %q, want %q", s, got, want)
		}
	}
}

// textOf a single text part is its text, whatever the case of its media
// type; other parts go through phoneParts.
func TestTextOfSinglePart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ ct, want string }{
		{"text/plain", "hi"}, {"TEXT/Plain;charset=utf-8", "hi"}, {"text", "hi"}, {"Text", "hi"},
		{"text/markdown", "hi"}, {"text/plainish", "hi"}, {"image/png", ""}, {"text/plaın", ""},
	} {
		m := &content.Message{Body: content.NewSinglePart(content.Render, c.ct, []byte("hi"))}
		if got := textOf(m); got != c.want {
			t.Errorf("textOf(%s) = %q, want %q", c.ct, got, c.want)
		}
		if got, want := textOf(m), smsText(phoneParts(&m.Body)); got != want {
			t.Errorf("textOf(%s) = %q, phoneParts give %q", c.ct, got, want)
		}
	}
	m := &content.Message{Body: content.NewSinglePart(content.Preview, "text/plain", []byte("hi"))}
	if got := textOf(m); got != "" {
		t.Errorf("textOf(preview) = %q", got)
	}
}

// One text from a phone is one text/plain part of it, encoded the same
// as the text among other parts.
func TestBodyFromPhoneOneText(t *testing.T) {
	t.Parallel()
	body, err := bodyFromPhone([]Part{{Text: "hello €"}})
	if err != nil {
		t.Fatal(err)
	}
	multi, err := bodyFromPhone([]Part{{Text: "hello €"}, {Text: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if multi.Cardinality != content.Multi || len(multi.Parts) != 2 {
		t.Fatalf("two texts make %+v", multi)
	}
	want := content.NewSinglePart(content.Render, content.TypePlain, []byte("hello €"))
	for _, p := range []content.NestedPart{body, multi.Parts[0]} {
		got, err := (&content.Message{Body: p}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		w, err := (&content.Message{Body: want}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("body %x, want %x", got, w)
		}
	}
}

// BenchmarkBodyFromPhone is the MIMI body of one text from a phone.
func BenchmarkBodyFromPhone(b *testing.B) {
	parts := []Part{{Text: "load test message of a typical length"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bodyFromPhone(parts); err != nil {
			b.Fatal(err)
		}
	}
}
