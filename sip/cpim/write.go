package cpim

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"
)

// DateTimeLayout is how New writes DateTime: UTC with milliseconds, the
// form RCS clients send.
const DateTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// New builds an outbound message: From, To, the IMDN namespace, the
// message id, DateTime, the dispositions asked for (none when notify is 0),
// then Content-Type and Content-Length. from and to are URIs or name-addrs;
// a bare URI is put in angle brackets. Callers add further headers (such as
// cpm.Payload-Type, or Content-Disposition for an IMDN) by appending to
// Headers or Content.
func New(from, to, msgID string, dt time.Time, notify Notify, contentType string, body []byte) *Message {
	m := &Message{Body: body}
	m.Headers = m.inline[:0:10]
	m.Headers = append(m.Headers,
		Header{Name: "From", Value: angle(from)},
		Header{Name: "To", Value: angle(to)},
		Header{Name: "NS", Value: "imdn <" + NamespaceIMDN + ">"},
		Header{Name: "imdn.Message-ID", Value: msgID},
		Header{Name: "DateTime", Value: dt.UTC().Format(DateTimeLayout)},
	)
	if notify != 0 {
		m.Headers = append(m.Headers, Header{Name: "imdn.Disposition-Notification", Value: notify.String()})
	}
	m.Content = m.inline[10:10:inlineHeaders]
	m.Content = append(m.Content,
		Header{Name: "Content-Type", Value: contentType},
		Header{Name: "Content-Length", Value: strconv.Itoa(len(body))},
	)
	return m
}

func angle(addr string) string {
	addr = strings.TrimSpace(addr)
	if strings.ContainsRune(addr, '<') {
		return addr
	}
	return "<" + addr + ">"
}

// Bytes writes the message with CRLF line ends. The content is encoded as
// its Content-Transfer-Encoding says, and every Content-Length is set to
// the length of the content as written. Characters that cannot appear in a
// header line (line ends, other controls, a colon in a name) are replaced,
// so no value can inject a header.
func (m *Message) Bytes() []byte {
	content := m.encodeBody()
	length := strconv.Itoa(len(content))
	size := 4 + len(content)
	for _, h := range m.Headers {
		size += len(h.Name) + len(h.Params) + len(h.Value) + 4
	}
	for _, h := range m.Content {
		size += len(h.Name) + len(h.Params) + len(h.Value) + len(length) + 4
	}
	out := make([]byte, 0, size)
	for _, h := range m.Headers {
		out = appendHeader(out, h)
	}
	out = append(out, "\r\n"...)
	for _, h := range m.Content {
		if strings.EqualFold(h.Name, "Content-Length") {
			h.Value = length
		}
		out = appendHeader(out, h)
	}
	out = append(out, "\r\n"...)
	return append(out, content...)
}

func appendHeader(out []byte, h Header) []byte {
	out = appendClean(out, h.Name, true)
	out = append(out, ':')
	out = appendClean(out, strings.TrimLeft(h.Params, " \t"), false)
	out = append(out, ' ')
	out = appendClean(out, strings.TrimSpace(h.Value), false)
	return append(out, "\r\n"...)
}

func appendClean(out []byte, s string, name bool) []byte {
	if name && s == "" {
		return append(out, "X-Empty"...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case (c < 0x20 && c != '\t') || c == 0x7f:
			c = ' '
			if name {
				c = '-'
			}
		case name && (c == ':' || c == ' ' || c == '\t'):
			c = '-'
		}
		out = append(out, c)
	}
	return out
}

func (m *Message) encodeBody() []byte {
	switch strings.ToLower(m.ContentHeader("Content-Transfer-Encoding")) {
	case "base64":
		return encodeBase64(m.Body)
	case "quoted-printable":
		var buf bytes.Buffer
		w := quotedprintable.NewWriter(&buf)
		// Binary keeps CR and LF as they are in the content instead of
		// rewriting line ends.
		w.Binary = true
		_, _ = w.Write(m.Body) // writes to a bytes.Buffer do not fail
		_ = w.Close()
		return buf.Bytes()
	default:
		return m.Body
	}
}

// encodeBase64 writes MIME base64: lines of 76 characters ending in CRLF.
func encodeBase64(b []byte) []byte {
	const lineLen = 76
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(enc, b)
	out := make([]byte, 0, len(enc)+2*(len(enc)/lineLen+1))
	for len(enc) > lineLen {
		out = append(out, enc[:lineLen]...)
		out = append(out, "\r\n"...)
		enc = enc[lineLen:]
	}
	return append(out, enc...)
}
