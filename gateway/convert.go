package gateway

import (
	"errors"
	"fmt"
	"html"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mimigw/mimigw/mimi/content"
)

// This file holds the conversion rules (docs/architecture.md, routing and
// conversion): MIMI content to what a phone shows (RCS parts, or one
// readable SMS text), and what a phone sent to MIMI content.

// errUnrenderable: nothing in the message can be shown on a phone.
var errUnrenderable = errors.New("nothing in the message can be shown on a phone")

// excerptFunc returns a short excerpt of an earlier message, or "" when it
// is not known.
type excerptFunc func(content.MessageID) string

// forPhone is a MIMI message made ready for a phone.
type forPhone struct {
	Parts []Part // for RCS
	Text  string // for SMS: everything as readable text
}

// renderForPhone converts a MIMI message. Replies, reactions, edits and
// deletes become readable text on both channels (Universal Profile pager
// mode has no standard form for them).
func renderForPhone(m *content.Message, excerpt excerptFunc) (forPhone, error) {
	quote := func(id *content.MessageID) string {
		if id == nil || excerpt == nil {
			return "a message"
		}
		if e := excerpt(*id); e != "" {
			return `"` + e + `"`
		}
		return "a message"
	}
	if m.Body.Cardinality == content.Null {
		var text string
		switch {
		case m.Replaces != nil && m.Body.Disposition == content.Reaction:
			text = "Removed a reaction from " + quote(m.Replaces)
		case m.Replaces != nil:
			text = "Deleted " + quote(m.Replaces)
		default:
			return forPhone{}, fmt.Errorf("%w: empty body", errUnrenderable)
		}
		return forPhone{Parts: []Part{{Text: text}}, Text: text}, nil
	}
	parts := phoneParts(&m.Body)
	if len(parts) == 0 {
		return forPhone{}, fmt.Errorf("%w: body of type %q", errUnrenderable, m.Body.MediaType())
	}
	var prefix string
	switch {
	case m.Body.Disposition == content.Reaction:
		var emoji []string
		for _, p := range parts {
			if p.Text != "" {
				emoji = append(emoji, p.Text)
			}
		}
		prefix = "Reacted " + strings.Join(emoji, " ")
		if m.InReplyTo != nil {
			prefix += " to " + quote(m.InReplyTo)
		}
		parts = []Part{{Text: prefix}}
		return forPhone{Parts: parts, Text: prefix}, nil
	case m.Replaces != nil:
		prefix = "Edited: "
	case m.InReplyTo != nil:
		prefix = "Reply to " + quote(m.InReplyTo) + ": "
	}
	if prefix != "" {
		if parts[0].Text != "" {
			parts[0].Text = prefix + parts[0].Text
		} else {
			parts = append([]Part{{Text: strings.TrimSuffix(prefix, ": ")}}, parts...)
		}
	}
	text := smsText(parts)
	if text == "" {
		return forPhone{}, fmt.Errorf("%w: only media types SMS cannot carry", errUnrenderable)
	}
	return forPhone{Parts: parts, Text: text}, nil
}

// phoneParts flattens a body into parts a phone can show.
func phoneParts(p *content.NestedPart) []Part {
	switch p.Cardinality {
	case content.Single:
		if p.Disposition == content.Preview || p.Disposition == content.Icon || p.Disposition == content.Profile {
			return nil
		}
		mt := strings.ToLower(p.ContentType)
		switch {
		case strings.HasPrefix(mt, "text/markdown"):
			return []Part{{Text: plainFromMarkdown(string(p.Content))}}
		case strings.HasPrefix(mt, "text/plain"), mt == "text":
			return []Part{{Text: string(p.Content)}}
		case strings.HasPrefix(mt, "text/html"):
			return []Part{{Text: plainFromHTML(string(p.Content))}}
		case mt == content.StatusReportType || mt == content.TypeMIMIContent:
			return nil
		default:
			return []Part{{ContentType: p.ContentType, Data: p.Content}}
		}
	case content.External:
		x := p.External
		if x == nil || p.Disposition == content.Preview {
			return nil
		}
		f := &File{URL: x.URL, Name: x.Filename, ContentType: x.ContentType, Size: x.Size}
		if x.Expires != 0 {
			f.Until = time.Unix(int64(x.Expires), 0).UTC()
		}
		return []Part{{File: f}}
	case content.Multi:
		if p.Semantics == content.ChooseOne {
			return chooseOne(p.Parts)
		}
		var out []Part
		for i := range p.Parts {
			sub := &p.Parts[i]
			if sub.Disposition == content.Preview && sub.Cardinality == content.External && sub.External != nil {
				// A preview goes with the file before it.
				if n := len(out); n > 0 && out[n-1].File != nil && out[n-1].File.Thumbnail == nil {
					out[n-1].File.Thumbnail = &File{URL: sub.External.URL, ContentType: sub.External.ContentType, Size: sub.External.Size, Name: sub.External.Filename}
				}
				continue
			}
			out = append(out, phoneParts(sub)...)
		}
		return out
	}
	return nil
}

// chooseOne picks the alternative a phone shows best: plain text, then
// markdown, then anything else it can render.
func chooseOne(alts []content.NestedPart) []Part {
	for _, want := range []string{"text/plain", "text/markdown", "text/html"} {
		for i := range alts {
			if strings.HasPrefix(strings.ToLower(alts[i].MediaType()), want) {
				if parts := phoneParts(&alts[i]); len(parts) > 0 {
					return parts
				}
			}
		}
	}
	for i := range alts {
		if parts := phoneParts(&alts[i]); len(parts) > 0 {
			return parts
		}
	}
	return nil
}

// plainFromHTML keeps the text of an HTML body: tags go, block ends
// become line breaks, images leave their alt text, entities are decoded.
func plainFromHTML(h string) string {
	var out strings.Builder
	for i := 0; i < len(h); {
		if h[i] != '<' {
			j := strings.IndexByte(h[i:], '<')
			if j < 0 {
				j = len(h) - i
			}
			out.WriteString(html.UnescapeString(h[i : i+j]))
			i += j
			continue
		}
		end := strings.IndexByte(h[i:], '>')
		if end < 0 {
			break
		}
		tag := strings.ToLower(h[i+1 : i+end])
		name := strings.TrimPrefix(strings.Fields(tag + " ")[0], "/")
		switch name {
		case "br", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr":
			if strings.HasPrefix(tag, "/") || name == "br" {
				out.WriteByte('\n')
			}
		case "img":
			if k := strings.Index(tag, "alt=\""); k >= 0 {
				if e := strings.IndexByte(tag[k+5:], '"'); e >= 0 {
					out.WriteString(html.UnescapeString(h[i+1+k+5 : i+1+k+5+e]))
				}
			}
		}
		i += end + 1
	}
	lines := strings.Split(out.String(), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// smsText joins parts into one readable text. Files become a line with
// name, size and link; bodies of other media types (chatbot messages) are
// never sent as text.
func smsText(parts []Part) string {
	var lines []string
	for _, p := range parts {
		switch {
		case p.File != nil:
			lines = append(lines, fileLine(p.File))
		case p.Data != nil:
		default:
			lines = append(lines, p.Text)
		}
	}
	return strings.Join(lines, "\n")
}

func fileLine(f *File) string {
	name := f.Name
	if name == "" {
		name = f.ContentType
	}
	if name == "" {
		name = "file"
	}
	if f.Size > 0 {
		return fmt.Sprintf("File: %s (%s) %s", name, humanSize(f.Size), f.URL)
	}
	return fmt.Sprintf("File: %s %s", name, f.URL)
}

func humanSize(n uint64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}

// excerptLen is how many characters of an earlier message a reaction or
// reply quotes.
const excerptLen = 40

// makeExcerpt shortens a text to quote it: its words joined by single
// spaces, cut to excerptLen characters with "..." when longer. Only the
// start of the text is read, and a text already in that form comes back
// as it is.
func makeExcerpt(s string) string {
	// The words of s joined by single spaces, up to one character past
	// excerptLen (at most 4 bytes each).
	var buf [4 * (excerptLen + 1)]byte
	out, n, space := buf[:0], 0, false
	for i := 0; i < len(s) && n <= excerptLen; {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			space = len(out) > 0
			i += size
			continue
		}
		if space {
			out, n, space = append(out, ' '), n+1, false
			if n > excerptLen {
				break
			}
		}
		out, n = append(out, s[i:i+size]...), n+1
		i += size
	}
	if n <= excerptLen {
		if string(out) == s {
			return s
		}
		return string(out)
	}
	r := []rune(string(out))
	return strings.TrimSpace(string(r[:excerptLen-3])) + "..."
}

// bodyFromPhone builds the MIMI body of what a phone user sent: text as
// text/plain, files as ExternalParts with their preview, other media types
// as they came.
func bodyFromPhone(parts []Part) (content.NestedPart, error) {
	if len(parts) == 1 && parts[0].File == nil && parts[0].Data == nil {
		// One text, as most messages from phones are.
		if !utf8.ValidString(parts[0].Text) {
			return content.NestedPart{}, fmt.Errorf("text is not UTF-8: %w", ErrRejected)
		}
		return content.NewSinglePart(content.Render, content.TypePlain, []byte(parts[0].Text)), nil
	}
	out := make([]content.NestedPart, 0, len(parts))
	for _, p := range parts {
		switch {
		case p.File != nil:
			out = append(out, content.NewExternalPart(content.Attachment, externalOf(p.File)))
			if p.File.Thumbnail != nil {
				out = append(out, content.NewExternalPart(content.Preview, externalOf(p.File.Thumbnail)))
			}
		case p.Data != nil:
			if p.ContentType == "" {
				return content.NestedPart{}, fmt.Errorf("part without a content type: %w", ErrRejected)
			}
			out = append(out, content.NewSinglePart(content.Render, p.ContentType, p.Data))
		default:
			if !utf8.ValidString(p.Text) {
				return content.NestedPart{}, fmt.Errorf("text is not UTF-8: %w", ErrRejected)
			}
			out = append(out, content.NewSinglePart(content.Render, content.TypePlain, []byte(p.Text)))
		}
	}
	switch len(out) {
	case 0:
		return content.NestedPart{}, fmt.Errorf("empty message: %w", ErrRejected)
	case 1:
		return out[0], nil
	}
	return content.NewMultiPart(content.Render, content.ProcessAll, out...), nil
}

func externalOf(f *File) content.ExternalPart {
	x := content.ExternalPart{ContentType: f.ContentType, URL: f.URL, Size: f.Size, Filename: f.Name}
	if x.ContentType == "" {
		x.ContentType = "application/octet-stream"
	}
	if !f.Until.IsZero() && f.Until.Unix() > 0 && f.Until.Unix() <= int64(^uint32(0)) {
		x.Expires = uint32(f.Until.Unix())
	}
	return x
}

// textOf returns the text a phone user would read in a message, for
// excerpts.
func textOf(m *content.Message) string {
	if p := &m.Body; p.Cardinality == content.Single && p.Disposition != content.Preview &&
		p.Disposition != content.Icon && p.Disposition != content.Profile && isPlain(p.ContentType) {
		// One text part, as most messages from phones are: its text.
		return string(p.Content)
	}
	parts := phoneParts(&m.Body)
	return smsText(parts)
}

// isPlain reports whether an ASCII media type is text/plain (with any
// parameters) or bare text, as phoneParts tells them.
func isPlain(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] >= utf8.RuneSelf {
			return false
		}
	}
	return len(ct) >= len("text/plain") && strings.EqualFold(ct[:len("text/plain")], "text/plain") ||
		strings.EqualFold(ct, "text")
}
