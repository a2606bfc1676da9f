// Package xmldoc reads the small XML documents that travel in SIP bodies
// (IMDN, FT-HTTP, resource-lists, revocation) safely: bounded size, no DTD
// or entity declarations, strict tokens. It holds no schema of its own.
package xmldoc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Errors about the XML document itself.
var (
	ErrTooLarge  = errors.New("document too large")
	ErrDTD       = errors.New("DOCTYPE or entity declaration not allowed")
	ErrMalformed = errors.New("malformed XML")
)

// NewDecoder refuses what the XML decoder must never see: documents over
// limit and anything declaring a DTD or entities. encoding/xml expands no
// external entities, but a DTD has no business in these bodies and is the
// usual vehicle for entity attacks, so it is refused before parsing; the
// token readers below refuse any directive that slips past this scan.
func NewDecoder(b []byte, limit int) (*xml.Decoder, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), limit)
	}
	if HasDTD(b) {
		return nil, ErrDTD
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	return d, nil
}

// HasDTD reports whether b declares a DOCTYPE, an entity or another DTD
// markup declaration anywhere.
func HasDTD(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("<!"))
		if j < 0 {
			return false
		}
		i += j + 2
		rest := b[i:]
		for _, word := range []string{"doctype", "entity", "element", "attlist", "notation"} {
			if len(rest) >= len(word) && bytes.EqualFold(rest[:len(word)], []byte(word)) {
				return true
			}
		}
	}
}

// Token returns the next token, refusing directives.
func Token(d *xml.Decoder) (xml.Token, error) {
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, ok := tok.(xml.Directive); ok {
		return nil, ErrDTD
	}
	return tok, nil
}

// Root returns the document element's start tag.
func Root(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := Token(d)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return xml.StartElement{}, fmt.Errorf("%w: no root element", ErrMalformed)
			}
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text before the root element", ErrMalformed)
			}
		}
	}
}

// Open starts reading a document whose root element must be <local> in
// namespace space; any other root is reported as wrong, wrapped.
func Open(b []byte, limit int, space, local string, wrong error) (*xml.Decoder, xml.StartElement, error) {
	d, err := NewDecoder(b, limit)
	if err != nil {
		return nil, xml.StartElement{}, err
	}
	start, err := Root(d)
	if err != nil {
		return nil, xml.StartElement{}, err
	}
	if start.Name.Local != local || start.Name.Space != space {
		return nil, xml.StartElement{}, fmt.Errorf("%w: root element <%s> in namespace %q, want <%s> in %q",
			wrong, start.Name.Local, start.Name.Space, local, space)
	}
	return d, start, nil
}

// Children calls child for each element inside the one whose start tag was
// just read, up to its end tag; child must consume the element it is given
// (Skip, Text or its own reading). Character data between children is
// ignored.
func Children(d *xml.Decoder, child func(xml.StartElement) error) error {
	for {
		tok, err := Token(d)
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if err := child(t); err != nil {
				return err
			}
		}
	}
}

// End checks that only white space, comments and processing instructions
// follow the root element.
func End(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return ErrDTD
		case xml.StartElement:
			return fmt.Errorf("%w: second root element <%s>", ErrMalformed, t.Name.Local)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("%w: text after the root element", ErrMalformed)
			}
		}
	}
}

// Skip consumes the rest of the element whose start tag was just read.
func Skip(d *xml.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := Token(d)
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// Text returns the character data of the element whose start tag was just
// read, trimmed; text inside nested elements is ignored.
func Text(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := Token(d)
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.StartElement:
			if err := Skip(d); err != nil {
				return "", err
			}
		case xml.EndElement:
			return strings.TrimSpace(sb.String()), nil
		}
	}
}

// AppendEscaped writes s as XML character data. Line ends and tabs are
// written as references so they survive a parser's normalisation, and
// what XML cannot carry (invalid UTF-8, most control characters) becomes
// U+FFFD.
func AppendEscaped(out []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '&':
			out = append(out, "&amp;"...)
		case r == '<':
			out = append(out, "&lt;"...)
		case r == '>':
			out = append(out, "&gt;"...)
		case r == '"':
			out = append(out, "&#34;"...)
		case r == '\'':
			out = append(out, "&#39;"...)
		case r == '\t':
			out = append(out, "&#x9;"...)
		case r == '\n':
			out = append(out, "&#xA;"...)
		case r == '\r':
			out = append(out, "&#xD;"...)
		case r < 0x20 || r == utf8.RuneError || r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF:
			out = utf8.AppendRune(out, utf8.RuneError)
		default:
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}
