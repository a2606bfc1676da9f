package msrp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadURI is wrapped by every URI parse error.
var ErrBadURI = errors.New("bad MSRP URI")

// URI is an MSRP URI (RFC 4975 section 6):
//
//	msrp://host:port/session-id;tcp
//	msrps://[2001:db8::1]:2855/session-id;tcp;param=value
//	msrps://alice@relay.example.com;tcp     (a relay, RFC 4976: no session-id)
//
// Fields hold what was written; Equal compares as section 6.1 says.
type URI struct {
	// Secure is true for msrps (TLS).
	Secure bool
	// User is the userinfo before '@', if any; it never takes part in a
	// comparison.
	User string
	// Host is a name, an IPv4 address or an IPv6 address without its
	// brackets.
	Host string
	// Port is 0 when the URI has none (relay URIs may leave it out).
	Port int
	// SessionID is empty when the URI has none.
	SessionID string
	// Transport is the first parameter, "tcp" in practice.
	Transport string
	// Params are the parameters after the transport, as written and
	// without the leading ';' ("a=1;b").
	Params string
}

// ParseURI reads one MSRP URI.
func ParseURI(s string) (URI, error) {
	var u URI
	bad := func(why string) (URI, error) {
		return URI{}, fmt.Errorf("msrp: %w %q: %s", ErrBadURI, clip(s), why)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		return bad("no ://")
	case strings.EqualFold(scheme, "msrp"):
	case strings.EqualFold(scheme, "msrps"):
		u.Secure = true
	default:
		return bad("scheme is not msrp or msrps")
	}
	// The authority ends at the session-id's '/' or, without one, at the
	// first ';' after any userinfo (userinfo may itself hold ';').
	var authority, tail string
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	} else {
		from := strings.LastIndexByte(rest, '@') + 1
		i := strings.IndexByte(rest[from:], ';')
		if i < 0 {
			return bad("no ;transport")
		}
		authority, tail = rest[:from+i], rest[from+i:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		u.User, authority = authority[:at], authority[at+1:]
		if u.User == "" || !validChars(u.User, userChar) {
			return bad("bad userinfo")
		}
	}
	host, port, err := splitHostPort(authority)
	if err != nil {
		return bad(err.Error())
	}
	u.Host, u.Port = host, port
	if strings.HasPrefix(tail, "/") {
		end := strings.IndexByte(tail, ';')
		if end < 0 {
			return bad("no ;transport")
		}
		u.SessionID, tail = tail[1:end], tail[end:]
		if u.SessionID == "" || !validChars(u.SessionID, sessionChar) {
			return bad("bad session-id")
		}
	}
	// tail is ";transport[;params]".
	tail = tail[1:]
	u.Transport, u.Params, _ = strings.Cut(tail, ";")
	if u.Transport == "" || !validChars(u.Transport, alnum) {
		return bad("bad transport")
	}
	if _, ok := strings.CutPrefix(tail, u.Transport+";"); ok && u.Params == "" {
		return bad("empty parameter")
	}
	if u.Params != "" {
		for p := range strings.SplitSeq(u.Params, ";") {
			name, value, _ := strings.Cut(p, "=")
			if name == "" || !validChars(name, tokenChar) || !validChars(value, tokenChar) {
				return bad("bad parameter")
			}
		}
	}
	return u, nil
}

func splitHostPort(a string) (host string, port int, err error) {
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", 0, errors.New("unclosed [")
		}
		host, a = a[1:end], a[end+1:]
		if addr, err := netip.ParseAddr(host); err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", 0, errors.New("bad IPv6 address")
		}
		if a != "" && a[0] != ':' {
			return "", 0, errors.New("junk after ]")
		}
	} else {
		host = a
		if i := strings.IndexByte(a, ':'); i >= 0 {
			host, a = a[:i], a[i:]
		} else {
			a = ""
		}
		if host == "" || !validChars(host, hostChar) {
			return "", 0, errors.New("bad host")
		}
	}
	if a == "" {
		return host, 0, nil
	}
	digits := a[1:]
	if len(digits) == 0 || len(digits) > 5 || !validChars(digits, digit) {
		return "", 0, errors.New("bad port")
	}
	port, _ = strconv.Atoi(digits)
	if port < 1 || port > 65535 {
		return "", 0, errors.New("port out of range")
	}
	return host, port, nil
}

// String writes the URI; ParseURI reads it back to the same value.
func (u URI) String() string {
	return string(u.appendTo(make([]byte, 0, len(u.User)+len(u.Host)+len(u.SessionID)+len(u.Transport)+len(u.Params)+24)))
}

func (u URI) appendTo(b []byte) []byte {
	if u.Secure {
		b = append(b, "msrps://"...)
	} else {
		b = append(b, "msrp://"...)
	}
	if u.User != "" {
		b = append(b, u.User...)
		b = append(b, '@')
	}
	if strings.IndexByte(u.Host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, u.Host...)
		b = append(b, ']')
	} else {
		b = append(b, u.Host...)
	}
	if u.Port != 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(u.Port), 10)
	}
	if u.SessionID != "" {
		b = append(b, '/')
		b = append(b, u.SessionID...)
	}
	b = append(b, ';')
	b = append(b, u.Transport...)
	if u.Params != "" {
		b = append(b, ';')
		b = append(b, u.Params...)
	}
	return b
}

// Equal compares as RFC 4975 section 6.1 says: schemes match; hosts match
// as addresses when both are IP literals and case-insensitively otherwise
// (no name is resolved); ports match exactly, an absent port matching only
// an absent port; session-ids match exactly, case-sensitively; transports
// match case-insensitively. Userinfo and further parameters are ignored.
func (u URI) Equal(v URI) bool {
	return u.Secure == v.Secure && u.Port == v.Port && u.SessionID == v.SessionID &&
		strings.EqualFold(u.Transport, v.Transport) && sameHost(u.Host, v.Host)
}

func sameHost(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	return errX == nil && errY == nil && x == y
}

// Authority is the key under which connections to this URI's host are
// shared: scheme, host (lower case, IP addresses in canonical form) and
// port. Two URIs with the same Authority reach the same peer.
func (u URI) Authority() string {
	h := strings.ToLower(u.Host)
	if a, err := netip.ParseAddr(h); err == nil {
		h = a.String()
	}
	scheme := "msrp"
	if u.Secure {
		scheme = "msrps"
	}
	return scheme + "://" + net.JoinHostPort(h, strconv.Itoa(u.Port))
}

// ParsePath reads a space-separated list of MSRP URIs, the value of
// To-Path, From-Path, Use-Path or an SDP a=path.
func ParsePath(s string) ([]URI, error) {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("msrp: %w: empty path", ErrBadURI)
	}
	path := make([]URI, 0, n)
	for f := range strings.FieldsSeq(s) {
		u, err := ParseURI(f)
		if err != nil {
			return nil, err
		}
		path = append(path, u)
	}
	return path, nil
}

// FormatPath writes a path as ParsePath reads it.
func FormatPath(path []URI) string {
	return string(appendPath(nil, path))
}

func appendPath(b []byte, path []URI) []byte {
	for i, u := range path {
		if i > 0 {
			b = append(b, ' ')
		}
		b = u.appendTo(b)
	}
	return b
}

// NewSessionID returns a session-id with 120 bits from crypto/rand: RFC
// 4975 section 14.1 wants one that cannot be guessed (at least 80 bits).
func NewSessionID() string {
	return randomIdent(20, rand.Read)
}

const identAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomIdent returns n characters of identAlphabet (6 bits each, near
// enough: 62 of 64 values).
func randomIdent(n int, read func([]byte) (int, error)) string {
	b := make([]byte, n)
	_, _ = read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = identAlphabet[int(b[i])%len(identAlphabet)]
	}
	return string(b)
}

func validChars(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

func unreserved(c byte) bool {
	return alnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// sessionChar: session-id = 1*( unreserved / "+" / "=" / "/" ).
func sessionChar(c byte) bool { return unreserved(c) || c == '+' || c == '=' || c == '/' }

// hostChar: reg-name and IPv4 (unreserved, pct-encoded, sub-delims but
// ';', which ends the authority here).
func hostChar(c byte) bool {
	return unreserved(c) || c == '%' || strings.IndexByte("!$&'()*+,=", c) >= 0
}

// userChar: userinfo (unreserved, pct-encoded, sub-delims, ':').
func userChar(c byte) bool {
	return unreserved(c) || c == '%' || c == ':' || strings.IndexByte("!$&'()*+,;=", c) >= 0
}

// tokenChar: RFC 3261 token.
func tokenChar(c byte) bool {
	return alnum(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// clip shortens input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// detached is u with strings of its own: a URI parsed out of a larger
// text (an SDP body) would keep all of it alive for the session's life.
func (u URI) detached() URI {
	u.User, u.Host, u.SessionID = strings.Clone(u.User), strings.Clone(u.Host), strings.Clone(u.SessionID)
	u.Transport, u.Params = strings.Clone(u.Transport), strings.Clone(u.Params)
	return u
}
