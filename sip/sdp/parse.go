package sdp

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a session description.
//
// It is strict about the grammar of every line it reads and tolerant where
// real clients are loose: CRLF, bare LF or a mix; no line end after the
// last line; blank lines at the end; lines of one section in any order (v=
// must still come first, and a media section holds only media-level
// lines); no s= (read as "s=-"); no t= (read as "t=0 0"); no c= at all
// (MSRP addresses by a=path, not c=); fields separated by more than one
// space. Unknown attributes and the lines this package has no field for are
// kept. Any line it refuses is named in a *SyntaxError.
func Parse(b []byte) (*Session, error) {
	// One copy of the input; every field the Session holds is a slice of
	// it.
	p := parser{in: string(b)}
	return p.run()
}

type parser struct {
	in   string
	pos  int
	line int

	s         Session
	seen      [128]bool // session-level types seen, by letter
	media     *Media
	mediaSeen [128]bool
}

func (p *parser) fail(text string, err error) error {
	return &SyntaxError{Line: p.line, Text: clip(text), Err: err}
}

func (p *parser) failf(text string, err error, format string, a ...any) error {
	return &SyntaxError{Line: p.line, Text: clip(text), Err: fmt.Errorf("%w: %s", err, fmt.Sprintf(format, a...))}
}

// next returns the next line without its line end; ok is false at the end
// of the input.
func (p *parser) next() (line string, ok bool, err error) {
	if p.pos >= len(p.in) {
		return "", false, nil
	}
	p.line++
	if p.line > MaxLines {
		return "", false, p.failf("", ErrTooLong, "more than %d lines", MaxLines)
	}
	rest := p.in[p.pos:]
	end := strings.IndexByte(rest, '\n')
	if end < 0 {
		end = len(rest)
	}
	p.pos += end + 1
	raw := rest[:end]
	if len(raw) > 0 && raw[len(raw)-1] == '\r' {
		raw = raw[:len(raw)-1]
	}
	if len(raw) > MaxLineLength {
		return "", false, p.failf(raw[:64], ErrTooLong, "line over %d bytes", MaxLineLength)
	}
	return raw, true, nil
}

func (p *parser) run() (*Session, error) {
	first := true
	for {
		line, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if line == "" {
			if err := p.restBlank(); err != nil {
				return nil, err
			}
			break
		}
		if len(line) < 2 || line[1] != '=' || line[0] >= 128 {
			return nil, p.fail(line, ErrBadLine)
		}
		if i := strings.IndexAny(line, "\x00\r"); i >= 0 {
			return nil, p.failf(line, ErrBadLine, "byte %#x at column %d", line[i], i+1)
		}
		typ, value := line[0], line[2:]
		if first {
			if typ != 'v' {
				return nil, p.failf(line, ErrMisplaced, "a description starts with v=")
			}
			if strings.TrimRight(value, " \t") != "0" {
				return nil, p.failf(line, ErrBadField, "version %q, only 0 exists", value)
			}
			first = false
			p.seen['v'] = true
			continue
		}
		if p.media != nil {
			err = p.mediaLine(line, typ, value)
		} else {
			err = p.sessionLine(line, typ, value)
		}
		if err != nil {
			return nil, err
		}
	}
	if first {
		return nil, &SyntaxError{Line: 1, Err: fmt.Errorf("%w: empty description, no v=", ErrMissing)}
	}
	if !p.seen['o'] {
		return nil, &SyntaxError{Line: 2, Err: fmt.Errorf("%w: no o= line", ErrMissing)}
	}
	if p.s.Name == "" {
		p.s.Name = "-"
	}
	if len(p.s.Timing) == 0 {
		p.s.Timing = []Timing{{}}
	}
	return &p.s, nil
}

// restBlank accepts what follows a blank line only if it is blank too.
func (p *parser) restBlank() error {
	for {
		line, ok, err := p.next()
		if err != nil || !ok {
			return err
		}
		if strings.TrimRight(line, " \t") != "" {
			return p.failf(line, ErrMisplaced, "a line after a blank line")
		}
	}
}

func (p *parser) sessionLine(line string, typ byte, value string) error {
	switch typ {
	case 'v':
		return p.failf(line, ErrDuplicate, "second v=")
	case 'o':
		if p.seen['o'] {
			return p.failf(line, ErrDuplicate, "second o=")
		}
		o, err := parseOrigin(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		p.s.Origin = o
	case 's':
		if p.seen['s'] {
			return p.failf(line, ErrDuplicate, "second s=")
		}
		p.s.Name = value
	case 'c':
		if p.seen['c'] {
			return p.failf(line, ErrDuplicate, "second session-level c=")
		}
		c, err := parseConnection(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		p.s.Connection = &c
	case 't':
		t, err := parseTiming(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		p.s.Timing = append(p.s.Timing, t)
	case 'r':
		if len(p.s.Timing) == 0 {
			return p.failf(line, ErrMisplaced, "r= before any t=")
		}
		if value == "" {
			return p.failf(line, ErrBadField, "empty r=")
		}
		t := &p.s.Timing[len(p.s.Timing)-1]
		t.Repeats = append(t.Repeats, value)
	case 'a':
		a, err := parseAttribute(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		p.s.Attributes = append(p.s.Attributes, a)
	case 'm':
		return p.startMedia(line, value)
	case 'i', 'u', 'e', 'p', 'b', 'z', 'k':
		if value == "" {
			return p.failf(line, ErrBadField, "empty %c=", typ)
		}
		p.s.Other = append(p.s.Other, Line{Type: typ, Value: value})
	default:
		return p.failf(line, ErrUnknownType, "%c=", typ)
	}
	p.seen[typ] = true
	return nil
}

func (p *parser) startMedia(line, value string) error {
	m, err := parseMediaLine(value)
	if err != nil {
		return p.failf(line, ErrBadField, "%s", err)
	}
	p.s.Media = append(p.s.Media, m)
	p.media = m
	p.mediaSeen = [128]bool{}
	return nil
}

func (p *parser) mediaLine(line string, typ byte, value string) error {
	m := p.media
	switch typ {
	case 'm':
		return p.startMedia(line, value)
	case 'c':
		if p.mediaSeen['c'] {
			return p.failf(line, ErrDuplicate, "second c= in one media section")
		}
		c, err := parseConnection(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		m.Connection = &c
	case 'a':
		a, err := parseAttribute(value)
		if err != nil {
			return p.failf(line, ErrBadField, "%s", err)
		}
		m.Attributes = append(m.Attributes, a)
	case 'i', 'b', 'k':
		if value == "" {
			return p.failf(line, ErrBadField, "empty %c=", typ)
		}
		m.Other = append(m.Other, Line{Type: typ, Value: value})
	case 'v', 'o', 's', 'u', 'e', 'p', 't', 'r', 'z':
		return p.failf(line, ErrMisplaced, "%c= is session-level, after m=", typ)
	default:
		return p.failf(line, ErrUnknownType, "%c=", typ)
	}
	p.mediaSeen[typ] = true
	return nil
}

// parseOrigin reads "<username> <sess-id> <sess-version> <nettype>
// <addrtype> <unicast-address>".
func parseOrigin(v string) (Origin, error) {
	f := strings.Fields(v)
	if len(f) != 6 {
		return Origin{}, fmt.Errorf("o= has %d fields, want 6", len(f))
	}
	if !isDigits(f[1]) || !isDigits(f[2]) {
		return Origin{}, fmt.Errorf("session id %q and version %q must be decimal", f[1], f[2])
	}
	if !isToken(f[3]) || !isToken(f[4]) {
		return Origin{}, fmt.Errorf("bad network or address type")
	}
	return Origin{Username: f[0], SessionID: f[1], SessionVersion: f[2], NetType: f[3], AddrType: f[4], Address: f[5]}, nil
}

// parseConnection reads "<nettype> <addrtype> <connection-address>".
func parseConnection(v string) (Connection, error) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return Connection{}, fmt.Errorf("c= has %d fields, want 3", len(f))
	}
	if !isToken(f[0]) || !isToken(f[1]) {
		return Connection{}, fmt.Errorf("bad network or address type")
	}
	return Connection{NetType: f[0], AddrType: f[1], Address: f[2]}, nil
}

// parseTiming reads "<start-time> <stop-time>", both decimal NTP seconds.
func parseTiming(v string) (Timing, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return Timing{}, fmt.Errorf("t= has %d fields, want 2", len(f))
	}
	start, err1 := strconv.ParseUint(f[0], 10, 64)
	stop, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || !isDigits(f[0]) || !isDigits(f[1]) {
		return Timing{}, fmt.Errorf("times %q %q are not decimal", f[0], f[1])
	}
	return Timing{Start: start, Stop: stop}, nil
}

// parseMediaLine reads "<media> <port>[/<number of ports>] <proto>
// [<fmt> ...]". RFC 8866 wants at least one format; a line without any is
// tolerated and kept as it came.
func parseMediaLine(v string) (*Media, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil, fmt.Errorf("m= has %d fields, want at least 3", len(f))
	}
	if !isToken(f[0]) {
		return nil, fmt.Errorf("bad media type %q", f[0])
	}
	m := &Media{Type: f[0], Proto: f[2]}
	port, num, hasNum := strings.Cut(f[1], "/")
	var err error
	if m.Port, err = parsePort(port); err != nil {
		return nil, err
	}
	if hasNum {
		n, err := strconv.Atoi(num)
		if err != nil || !isDigits(num) || n < 1 || n > 65535 {
			return nil, fmt.Errorf("bad number of ports %q", num)
		}
		m.NumPorts = n
	}
	for _, part := range strings.Split(m.Proto, "/") {
		if !isToken(part) {
			return nil, fmt.Errorf("bad transport protocol %q", m.Proto)
		}
	}
	if len(f) > 3 {
		m.Formats = f[3:]
	}
	return m, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !isDigits(s) || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// parseAttribute reads "<name>" or "<name>:<value>"; the name is a token.
// White space after a property attribute's name ("a=sendrecv ") is
// dropped; a value is kept as written.
func parseAttribute(v string) (Attribute, error) {
	name, value, hasValue := strings.Cut(v, ":")
	if !hasValue {
		name = strings.TrimRight(name, " \t")
	}
	if !isToken(name) {
		return Attribute{}, fmt.Errorf("bad attribute name %q", clip(name))
	}
	return Attribute{Name: name, Value: value}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken: RFC 8866 token, 1*token-char (visible ASCII but " ( ) , / : ;
// < = > ? @ [ \ ]).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

func tokenChar(c byte) bool {
	switch {
	case c <= 0x20 || c >= 0x7f:
		return false
	case strings.IndexByte("\"(),/:;<=>?@[\\]", c) >= 0:
		return false
	}
	return true
}
