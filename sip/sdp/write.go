package sdp

import (
	"strconv"
)

// Bytes writes the description as canonical SDP: CRLF line ends and the
// lines of each section in RFC 8866 order (v o s i u e p c b t r z k a at
// session level; m i c b k a in each media section), lines of one type in
// the order they are held. Parse reads it back to an equal Session.
//
// An empty Name is written "s=-" and an empty Timing "t=0 0", as Parse
// reads their absence; an empty Origin username "-".
func (s *Session) Bytes() []byte {
	return s.AppendTo(make([]byte, 0, s.sizeHint()))
}

// String is Bytes as a string.
func (s *Session) String() string { return string(s.Bytes()) }

// AppendTo appends what Bytes writes to b.
func (s *Session) AppendTo(b []byte) []byte {
	b = append(b, "v="...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, "\r\n"...)
	b = appendOrigin(b, s.Origin)
	name := s.Name
	if name == "" {
		name = "-"
	}
	b = appendLine(b, 's', name)
	for _, typ := range []byte("iuep") {
		b = appendOther(b, s.Other, typ)
	}
	if s.Connection != nil {
		b = appendConnection(b, *s.Connection)
	}
	b = appendOther(b, s.Other, 'b')
	if len(s.Timing) == 0 {
		b = append(b, "t=0 0\r\n"...)
	}
	for _, t := range s.Timing {
		b = append(b, "t="...)
		b = strconv.AppendUint(b, t.Start, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, t.Stop, 10)
		b = append(b, "\r\n"...)
		for _, r := range t.Repeats {
			b = appendLine(b, 'r', r)
		}
	}
	b = appendOther(b, s.Other, 'z')
	b = appendOther(b, s.Other, 'k')
	b = appendAttributes(b, s.Attributes)
	for _, m := range s.Media {
		b = m.appendTo(b)
	}
	return b
}

func (m *Media) appendTo(b []byte) []byte {
	b = append(b, "m="...)
	b = append(b, m.Type...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Port), 10)
	if m.NumPorts > 0 {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(m.NumPorts), 10)
	}
	b = append(b, ' ')
	b = append(b, m.Proto...)
	for _, f := range m.Formats {
		b = append(b, ' ')
		b = append(b, f...)
	}
	b = append(b, "\r\n"...)
	b = appendOther(b, m.Other, 'i')
	if m.Connection != nil {
		b = appendConnection(b, *m.Connection)
	}
	b = appendOther(b, m.Other, 'b')
	b = appendOther(b, m.Other, 'k')
	return appendAttributes(b, m.Attributes)
}

func appendOrigin(b []byte, o Origin) []byte {
	user := o.Username
	if user == "" {
		user = "-"
	}
	b = append(b, "o="...)
	for i, f := range [...]string{user, o.SessionID, o.SessionVersion, o.NetType, o.AddrType, o.Address} {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	return append(b, "\r\n"...)
}

func appendConnection(b []byte, c Connection) []byte {
	b = append(b, "c="...)
	b = append(b, c.NetType...)
	b = append(b, ' ')
	b = append(b, c.AddrType...)
	b = append(b, ' ')
	b = append(b, c.Address...)
	return append(b, "\r\n"...)
}

func appendAttributes(b []byte, attrs []Attribute) []byte {
	for _, a := range attrs {
		b = append(b, "a="...)
		b = append(b, a.Name...)
		if a.Value != "" {
			b = append(b, ':')
			b = append(b, a.Value...)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

func appendOther(b []byte, lines []Line, typ byte) []byte {
	for _, l := range lines {
		if l.Type == typ {
			b = appendLine(b, typ, l.Value)
		}
	}
	return b
}

func appendLine(b []byte, typ byte, value string) []byte {
	b = append(b, typ, '=')
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func (s *Session) sizeHint() int {
	n := 128 + len(s.Name)
	for _, a := range s.Attributes {
		n += len(a.Name) + len(a.Value) + 5
	}
	for _, m := range s.Media {
		n += 32 + len(m.Proto)
		for _, a := range m.Attributes {
			n += len(a.Name) + len(a.Value) + 5
		}
	}
	return n
}
