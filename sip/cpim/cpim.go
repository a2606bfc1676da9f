package cpim

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"
)

// ContentType is the media type of a CPIM message.
const ContentType = "message/cpim"

// Limits on what Parse accepts. A CPIM header section is a few hundred bytes
// in practice; the bounds keep a hostile peer from making the parser work or
// allocate in proportion to garbage.
const (
	// MaxLineLength is the longest header line accepted, in bytes, without
	// its line end.
	MaxLineLength = 8 << 10
	// MaxHeaders bounds the CPIM and MIME header lines together.
	MaxHeaders = 100
)

// Errors Parse returns, wrapped with the line and an excerpt of the input.
var (
	ErrNoSeparator      = errors.New("no blank line between sections")
	ErrNoContentType    = errors.New("missing Content-Type")
	ErrBadNS            = errors.New("bad NS declaration")
	ErrBadHeader        = errors.New("bad header line")
	ErrLineTooLong      = errors.New("header line too long")
	ErrTooManyHeaders   = errors.New("too many headers")
	ErrBadContentLength = errors.New("bad Content-Length")
	ErrBadEncoding      = errors.New("bad Content-Transfer-Encoding")
	// ErrMissingHeader is returned by accessors asked for a header the
	// message does not carry.
	ErrMissingHeader = errors.New("missing header")
)

// Header is one header line. Name is as written, with any namespace prefix
// ("imdn.Message-ID"); Params holds the raw parameters RFC 3862 allows
// between the colon and the value (";lang=fr"), usually empty; Value has
// surrounding white space removed.
type Header struct {
	Name   string
	Params string
	Value  string
}

// inlineHeaders is how many headers a Message holds without a separate
// allocation; a typical RCS message has eight to ten.
const inlineHeaders = 16

// Message is a parsed CPIM message. Headers are the CPIM message headers and
// Content the MIME headers of the encapsulated object, both in wire order
// and including headers this package does not know. Body is the content,
// transfer-decoded: for plain 7bit/8bit/binary content it shares memory with
// the slice given to Parse, so copy it if that slice is reused.
//
// Use a Message through its pointer: Headers and Content may point into
// storage inside the Message itself.
type Message struct {
	Headers []Header
	Content []Header
	Body    []byte

	inline [inlineHeaders]Header
}

// Parse reads a CPIM message. It accepts CRLF and bare LF line ends, folded
// header lines, and plain, base64 or quoted-printable content; it honours
// Content-Length when present but never reads past the end of b. Unknown
// headers and namespaces are kept, never an error.
func Parse(b []byte) (*Message, error) {
	var sc scan
	if err := sc.run(b); err != nil {
		return nil, err
	}
	m := &Message{}
	store := m.inline[:]
	if n := sc.counts[0] + sc.counts[1]; n > len(store) {
		store = make([]Header, n)
	}
	s := string(b[:sc.headerEnd])
	if err := m.parseHeaders(s, sc, store); err != nil {
		return nil, err
	}
	if m.ContentHeader("Content-Type") == "" {
		return nil, fmt.Errorf("cpim: %w in the MIME headers", ErrNoContentType)
	}
	body, err := m.decodeBody(b[sc.headerEnd:])
	if err != nil {
		return nil, err
	}
	m.Body = body
	return m, nil
}

// scan is the first pass over the input: it finds the two header sections
// and counts their lines, enforcing the line and header limits before
// anything is allocated.
type scan struct {
	sepEnd    [2]int // offset just past each section's blank line; -1 if none
	counts    [2]int // header lines (not continuations) per section
	headerEnd int    // where the body starts
}

func (sc *scan) run(b []byte) error {
	sc.sepEnd = [2]int{-1, -1}
	pos, line, section := 0, 0, 0
	for pos < len(b) && section < 2 {
		line++
		window := b[pos:]
		if len(window) > MaxLineLength+2 {
			window = window[:MaxLineLength+2]
		}
		lineEnd, next := len(b), len(b)
		if nl := bytes.IndexByte(window, '\n'); nl >= 0 {
			lineEnd, next = pos+nl, pos+nl+1
		} else if len(window) < len(b)-pos {
			return fmt.Errorf("cpim: line %d: %w: more than %d bytes", line, ErrLineTooLong, MaxLineLength)
		}
		text := b[pos:lineEnd]
		if len(text) > 0 && text[len(text)-1] == '\r' {
			text = text[:len(text)-1]
		}
		if len(text) > MaxLineLength {
			return fmt.Errorf("cpim: line %d: %w: %d bytes, limit %d", line, ErrLineTooLong, len(text), MaxLineLength)
		}
		switch {
		case isBlank(text):
			sc.sepEnd[section] = next
			section++
		case text[0] != ' ' && text[0] != '\t':
			sc.counts[section]++
			if sc.counts[0]+sc.counts[1] > MaxHeaders {
				return fmt.Errorf("cpim: line %d: %w: limit %d", line, ErrTooManyHeaders, MaxHeaders)
			}
		}
		pos = next
	}
	if sc.sepEnd[0] < 0 {
		return fmt.Errorf("cpim: %w: no blank line after the message headers", ErrNoSeparator)
	}
	sc.headerEnd = len(b)
	if sc.sepEnd[1] >= 0 {
		sc.headerEnd = sc.sepEnd[1]
	}
	return nil
}

func isBlank(text []byte) bool {
	for _, c := range text {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// parseHeaders is the second pass: it slices names and values out of s, the
// header bytes converted to a string once.
func (m *Message) parseHeaders(s string, sc scan, store []Header) error {
	n0 := sc.counts[0]
	m.Headers = store[:0:n0]
	m.Content = store[n0 : n0 : n0+sc.counts[1]]
	section, line, pos := 0, 0, 0
	for pos < len(s) && section < 2 {
		line++
		text := s[pos:]
		if nl := strings.IndexByte(text, '\n'); nl >= 0 {
			text, pos = text[:nl], pos+nl+1
		} else {
			pos = len(s)
		}
		text = strings.TrimSuffix(text, "\r")
		if isBlankString(text) {
			if section == 0 {
				if err := m.checkMessageHeaders(); err != nil {
					return err
				}
			}
			section++
			continue
		}
		dst := &m.Headers
		if section == 1 {
			dst = &m.Content
		}
		if err := checkLine(text, line); err != nil {
			return err
		}
		if text[0] == ' ' || text[0] == '\t' {
			if len(*dst) == 0 {
				return fmt.Errorf("cpim: line %d: %w: continuation line without a header: %q", line, ErrBadHeader, excerpt(text))
			}
			h := &(*dst)[len(*dst)-1]
			h.Value = strings.TrimSpace(h.Value + " " + strings.TrimSpace(text))
			continue
		}
		h, err := parseHeaderLine(text, line)
		if err != nil {
			if section == 1 {
				return fmt.Errorf("%w (no blank line before the content?)", err)
			}
			return err
		}
		*dst = append(*dst, h)
	}
	return nil
}

func isBlankString(text string) bool {
	for i := 0; i < len(text); i++ {
		if text[i] != ' ' && text[i] != '\t' {
			return false
		}
	}
	return true
}

// checkLine rejects control characters, which RFC 3862 forbids in header
// lines and which would let a value smuggle line ends into what is written.
func checkLine(text string, line int) error {
	for i := 0; i < len(text); i++ {
		if c := text[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("cpim: line %d: %w: control character 0x%02x", line, ErrBadHeader, c)
		}
	}
	return nil
}

func parseHeaderLine(text string, line int) (Header, error) {
	colon := strings.IndexByte(text, ':')
	if colon < 0 {
		return Header{}, fmt.Errorf("cpim: line %d: %w: no colon in %q", line, ErrBadHeader, excerpt(text))
	}
	name := strings.TrimRight(text[:colon], " \t")
	if !validName(name) {
		return Header{}, fmt.Errorf("cpim: line %d: %w: bad name %q", line, ErrBadHeader, excerpt(name))
	}
	rest := text[colon+1:]
	var params string
	if strings.HasPrefix(rest, ";") {
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		params, rest = rest[:end], rest[end:]
	}
	return Header{Name: name, Params: params, Value: strings.TrimSpace(rest)}, nil
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// checkMessageHeaders runs when the CPIM header section ends, so that a
// missing separator is reported as such rather than as whatever the content
// then looks like.
func (m *Message) checkMessageHeaders() error {
	for _, h := range m.Headers {
		switch {
		case strings.EqualFold(h.Name, "Content-Type"):
			return fmt.Errorf("cpim: %w: Content-Type among the CPIM message headers", ErrNoSeparator)
		case strings.EqualFold(h.Name, "NS"):
			if _, _, ok := parseNS(h.Value); !ok {
				return fmt.Errorf("cpim: %w: %q", ErrBadNS, excerpt(h.Value))
			}
		}
	}
	return nil
}

// decodeBody applies Content-Length (bounded by what is there) and the
// transfer encoding.
func (m *Message) decodeBody(raw []byte) ([]byte, error) {
	if cl, ok := m.contentHeader("Content-Length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cpim: %w: %q", ErrBadContentLength, excerpt(cl))
		}
		if n < len(raw) {
			raw = raw[:n]
		}
	}
	raw = raw[:len(raw):len(raw)]
	switch enc := strings.ToLower(m.ContentHeader("Content-Transfer-Encoding")); enc {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		return decodeBase64(raw)
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return nil, fmt.Errorf("cpim: %w: quoted-printable: %v", ErrBadEncoding, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("cpim: %w: %q not supported", ErrBadEncoding, excerpt(enc))
	}
}

// decodeBase64 accepts the encoding with or without line breaks (the
// decoder skips CR and LF) and, for senders that indent or pad with spaces,
// with other white space removed first.
func decodeBase64(raw []byte) ([]byte, error) {
	out := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(out, raw)
	if err == nil {
		return out[:n], nil
	}
	compact := make([]byte, 0, len(raw))
	for _, c := range raw {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			compact = append(compact, c)
		}
	}
	n, err = base64.StdEncoding.Decode(out, compact)
	if err != nil {
		return nil, fmt.Errorf("cpim: %w: base64: %v", ErrBadEncoding, err)
	}
	return out[:n], nil
}

// excerpt keeps error messages short: they end up in SIP reason phrases
// and logs.
func excerpt(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
