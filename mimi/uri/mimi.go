package uri

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadURI is returned for input that is not a MIMI URI.
var ErrBadURI = errors.New("not a MIMI URI")

// Kind says what a MIMI URI names.
type Kind byte

const (
	Provider Kind = 0   // mimi://a.example
	User     Kind = 'u' // mimi://a.example/u/alice
	Device   Kind = 'd' // mimi://a.example/d/ClientA1
	Room     Kind = 'r' // mimi://a.example/r/clubhouse
	Group    Kind = 'g' // mimi://a.example/g/clubhouse
)

func (k Kind) String() string {
	switch k {
	case Provider:
		return "provider"
	case User:
		return "user"
	case Device:
		return "device"
	case Room:
		return "room"
	case Group:
		return "group"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// MIMI is a parsed mimi:// URI.
type MIMI struct {
	Kind   Kind
	Domain string // provider domain, lower case
	ID     string // what follows "/u/", "/d/", "/r/" or "/g/"; may hold further slashes
}

// maxURI bounds MIMI URIs; content extension values are far shorter.
const maxURI = 2048

// ParseMIMI parses a mimi:// URI.
func ParseMIMI(s string) (MIMI, error) {
	if len(s) > maxURI {
		return MIMI{}, fmt.Errorf("%w: %d bytes", ErrBadURI, len(s))
	}
	if !utf8.ValidString(s) {
		return MIMI{}, fmt.Errorf("%w: not UTF-8", ErrBadURI)
	}
	const scheme = "mimi://"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return MIMI{}, fmt.Errorf("%w: %q has no mimi:// scheme", ErrBadURI, s)
	}
	rest := s[len(scheme):]
	domain, path, hasPath := strings.Cut(rest, "/")
	if !validDomain(domain) {
		return MIMI{}, fmt.Errorf("%w: %q has a bad domain", ErrBadURI, s)
	}
	u := MIMI{Kind: Provider, Domain: strings.ToLower(domain)}
	if !hasPath {
		return u, nil
	}
	if len(path) < 3 || path[1] != '/' {
		return MIMI{}, fmt.Errorf("%w: %q: path must be /u/, /d/, /r/ or /g/ and an id", ErrBadURI, s)
	}
	switch k := Kind(path[0]); k {
	case User, Device, Room, Group:
		u.Kind = k
	default:
		return MIMI{}, fmt.Errorf("%w: %q: unknown kind %q", ErrBadURI, s, path[0])
	}
	u.ID = path[2:]
	for _, r := range u.ID {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' {
			return MIMI{}, fmt.Errorf("%w: %q: id holds %q", ErrBadURI, s, r)
		}
	}
	return u, nil
}

// String formats the URI.
func (u MIMI) String() string {
	if u.Kind == Provider {
		return "mimi://" + u.Domain
	}
	return "mimi://" + u.Domain + "/" + string(rune(u.Kind)) + "/" + u.ID
}

// UserURI returns the MIMI URI of a phone user served by the provider at
// domain: "mimi://domain/u/+15551230002".
func UserURI(domain string, n Number) string {
	return MIMI{Kind: User, Domain: domain, ID: string(n)}.String()
}

// Number returns the phone number a user URI stands for, if its id is an
// E.164 number ("mimi://domain/u/+15551230002").
func (u MIMI) Number() (Number, bool) {
	if u.Kind != User || !strings.HasPrefix(u.ID, "+") {
		return "", false
	}
	n, err := ParseNumber(u.ID, "")
	if err != nil || string(n) != u.ID {
		return "", false
	}
	return n, true
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for rest := d; ; {
		label, more, dot := strings.Cut(rest, ".")
		if !checkLabel(label) {
			return false
		}
		if !dot {
			return true
		}
		rest = more
	}
}

// checkLabel reports whether one dot-separated label of a domain is valid.
func checkLabel(label string) bool {
	if label == "" || len(label) > 63 {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(label)-1:
		case c == ':' && i > 0: // port, as in mimi://localhost:8443
		default:
			return false
		}
	}
	return true
}
