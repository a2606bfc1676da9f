package msrp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalidFrame is wrapped by every error Marshal, AppendTo and WriteTo
// return: the frame cannot be written as it is.
var ErrInvalidFrame = errors.New("invalid frame")

// Marshal returns the frame in canonical form: CRLF line ends; To-Path and
// From-Path first, then Message-ID, Byte-Range, Success-Report,
// Failure-Report, Status, the RFC 4976 headers, the other headers in their
// order, and Content-Type last before the content, as the grammar of RFC
// 4975 section 9 lays them out.
//
// A request whose TID is empty, or occurs anywhere in its body, gets a new
// random one, stored in f.TID: RFC 4975 section 7.1 makes the sender pick
// a transaction ID that does not occur in the content, so the end-line
// cannot either. Values with line breaks or other control characters
// have them replaced by spaces, so no value can forge a header or an
// end-line.
func (f *Frame) Marshal() ([]byte, error) {
	return f.AppendTo(make([]byte, 0, f.size()))
}

// WriteTo writes the frame as Marshal returns it, in one Write.
func (f *Frame) WriteTo(w io.Writer) (int64, error) {
	b, err := f.Marshal()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

// AppendTo appends the frame as Marshal returns it to b.
func (f *Frame) AppendTo(b []byte) ([]byte, error) {
	if err := f.prepare(); err != nil {
		return b, err
	}
	b = append(b, "MSRP "...)
	b = append(b, f.TID...)
	b = append(b, ' ')
	if f.IsRequest() {
		b = append(b, f.Method...)
	} else {
		b = strconv.AppendInt(b, int64(f.Code), 10)
		if f.Comment != "" {
			b = append(b, ' ')
			b = appendText(b, f.Comment)
		}
	}
	b = append(b, "\r\n"...)

	b = appendPathHeader(b, "To-Path: ", f.ToPath)
	b = appendPathHeader(b, "From-Path: ", f.FromPath)
	if f.MessageID != "" {
		b = appendHeader(b, "Message-ID: ", f.MessageID)
	}
	if !f.ByteRange.IsZero() {
		b = append(b, "Byte-Range: "...)
		b = f.ByteRange.appendTo(b)
		b = append(b, "\r\n"...)
	}
	if f.SuccessReport != ReportUnset {
		b = appendHeader(b, "Success-Report: ", f.SuccessReport.String())
	}
	if f.FailureReport != ReportUnset {
		b = appendHeader(b, "Failure-Report: ", f.FailureReport.String())
	}
	if f.Status != nil {
		b = append(b, "Status: "...)
		b = f.Status.appendTo(b)
		b = append(b, "\r\n"...)
	}
	if f.UsePath != nil {
		b = appendPathHeader(b, "Use-Path: ", f.UsePath)
	}
	for _, h := range [...]struct{ name, value string }{
		{"WWW-Authenticate: ", f.WWWAuthenticate},
		{"Authorization: ", f.Authorization},
		{"Authentication-Info: ", f.AuthenticationInfo},
	} {
		if h.value != "" {
			b = appendHeader(b, h.name, h.value)
		}
	}
	for _, h := range [...]struct {
		name  string
		value int
	}{{"Expires: ", f.Expires}, {"Min-Expires: ", f.MinExpires}, {"Max-Expires: ", f.MaxExpires}} {
		if h.value > 0 {
			b = append(b, h.name...)
			b = strconv.AppendInt(b, int64(h.value), 10)
			b = append(b, "\r\n"...)
		}
	}
	for _, h := range f.Headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = appendText(b, strings.Trim(h.Value, " \t"))
		b = append(b, "\r\n"...)
	}
	if f.ContentType != "" {
		b = appendHeader(b, "Content-Type: ", f.ContentType)
		b = append(b, "\r\n"...)
		b = append(b, f.Body...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "-------"...)
	b = append(b, f.TID...)
	b = append(b, byte(f.Flag), '\r', '\n')
	return b, nil
}

func appendPathHeader(b []byte, name string, path []URI) []byte {
	b = append(b, name...)
	b = appendPath(b, path)
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = appendText(b, value)
	return append(b, "\r\n"...)
}

// appendText appends s with control characters (but tab) made spaces.
func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// size is about what AppendTo writes, to allocate once.
func (f *Frame) size() int {
	n := 64 + len(f.TID)*2 + len(f.Method) + len(f.Comment) + len(f.MessageID) + len(f.ContentType) + len(f.Body)
	for _, p := range [][]URI{f.ToPath, f.FromPath, f.UsePath} {
		for _, u := range p {
			n += 24 + len(u.User) + len(u.Host) + len(u.SessionID) + len(u.Transport) + len(u.Params)
		}
	}
	for _, h := range f.Headers {
		n += len(h.Name) + len(h.Value) + 4
	}
	if !f.ByteRange.IsZero() {
		n += 48
	}
	return n + len(f.WWWAuthenticate) + len(f.Authorization) + len(f.AuthenticationInfo) + 96
}

// prepare checks what the writer cannot repair and picks a TID when the
// frame needs one.
func (f *Frame) prepare() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("msrp: %w: %s", ErrInvalidFrame, fmt.Sprintf(format, a...))
	}
	if f.IsRequest() {
		if !validChars(f.Method, upper) {
			return bad("method %q is not upper-case letters", clip(f.Method))
		}
		if f.Code != 0 {
			return bad("both method %s and status %d", f.Method, f.Code)
		}
	} else {
		if f.Code < 100 || f.Code > 999 {
			return bad("neither a method nor a status code (%d)", f.Code)
		}
		if f.Body != nil || f.ContentType != "" {
			return bad("response %d with content", f.Code)
		}
		if !isIdent(f.TID) {
			return bad("response transaction ID %q", clip(f.TID))
		}
	}
	if len(f.ToPath) == 0 || len(f.FromPath) == 0 {
		return bad("To-Path and From-Path are required")
	}
	for _, p := range [][]URI{f.ToPath, f.FromPath, f.UsePath} {
		for _, u := range p {
			if err := u.check(); err != nil {
				return bad("%v", err)
			}
		}
	}
	if f.MessageID != "" && !isIdent(f.MessageID) {
		return bad("Message-ID %q", clip(f.MessageID))
	}
	if br := f.ByteRange; !br.IsZero() {
		if err := br.check(); err != nil {
			return bad("Byte-Range %s: %v", br, err)
		}
	}
	if f.Status != nil && (f.Status.Namespace < 0 || f.Status.Namespace > 999 || f.Status.Code < 100 || f.Status.Code > 999) {
		return bad("Status %d %d", f.Status.Namespace, f.Status.Code)
	}
	if f.SuccessReport > ReportNo || f.FailureReport > ReportPartial {
		return bad("report value")
	}
	for _, h := range f.Headers {
		if !isHeaderName(h.Name) {
			return bad("header name %q", clip(h.Name))
		}
		if knownHeader(h.Name) {
			return bad("header %s has a field of its own", h.Name)
		}
	}
	if f.Body != nil && f.ContentType == "" {
		return bad("a body without Content-Type")
	}
	if f.Flag == 0 {
		f.Flag = FlagEnd
	}
	if !f.Flag.valid() {
		return bad("flag %q", byte(f.Flag))
	}
	if f.IsRequest() && (f.TID == "" || !isIdent(f.TID) || bytes.Contains(f.Body, []byte(f.TID))) {
		if f.TID != "" && !isIdent(f.TID) {
			return bad("transaction ID %q", clip(f.TID))
		}
		tid, err := pickTID(f.Body)
		if err != nil {
			return bad("%v", err)
		}
		f.TID = tid
	}
	return nil
}

// pickTID returns a random transaction ID that does not occur in body.
func pickTID(body []byte) (string, error) {
	for range 16 {
		tid := NewTID()
		if !bytes.Contains(body, []byte(tid)) {
			return tid, nil
		}
	}
	return "", errors.New("no transaction ID found that the body does not contain")
}

// NewTID returns a random transaction ID (or Message-ID): 12 letters and
// digits, about 71 bits. They need to be unique, not secret.
func NewTID() string {
	return randomIdent(12, func(b []byte) (int, error) {
		for i := 0; i < len(b); i += 8 {
			v := rand.Uint64()
			for j := i; j < min(i+8, len(b)); j++ {
				b[j] = byte(v)
				v >>= 8
			}
		}
		return len(b), nil
	})
}

// check tells whether ParseURI would read back what String writes,
// without writing it.
func (u URI) check() error {
	bad := func(what string) error { return fmt.Errorf("URI %s: bad %s", clip(u.String()), what) }
	if strings.IndexByte(u.Host, ':') >= 0 {
		if a, err := netip.ParseAddr(u.Host); err != nil || !a.Is6() || a.Zone() != "" {
			return bad("host")
		}
	} else if u.Host == "" || !validChars(u.Host, hostChar) {
		return bad("host")
	}
	switch {
	case u.Port < 0 || u.Port > 65535:
		return bad("port")
	case u.User != "" && !validChars(u.User, userChar):
		return bad("userinfo")
	case !validChars(u.SessionID, sessionChar):
		return bad("session-id")
	case u.Transport == "" || !validChars(u.Transport, alnum):
		return bad("transport")
	}
	if u.Params != "" {
		for p := range strings.SplitSeq(u.Params, ";") {
			name, value, _ := strings.Cut(p, "=")
			if name == "" || !validChars(name, tokenChar) || !validChars(value, tokenChar) {
				return bad("parameter")
			}
		}
	}
	return nil
}

func knownHeader(name string) bool {
	for _, k := range [...]string{"To-Path", "From-Path", "Message-ID", "Byte-Range", "Success-Report",
		"Failure-Report", "Status", "Use-Path", "WWW-Authenticate", "Authorization",
		"Authentication-Info", "Expires", "Min-Expires", "Max-Expires", "Content-Type"} {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}
