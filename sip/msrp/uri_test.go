package msrp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want URI
	}{
		{"msrp://10.0.0.1:2855/s3ssi0n;tcp", URI{Host: "10.0.0.1", Port: 2855, SessionID: "s3ssi0n", Transport: "tcp"}},
		{"msrps://[2001:db8::1]:2855/a+b=c/d;tcp", URI{Secure: true, Host: "2001:db8::1", Port: 2855, SessionID: "a+b=c/d", Transport: "tcp"}},
		{"MSRP://Host.Example.COM:1/x;TCP;foo=bar;baz", URI{Host: "Host.Example.COM", Port: 1, SessionID: "x", Transport: "TCP", Params: "foo=bar;baz"}},
		{"msrps://alice@intra.example.com;tcp", URI{Secure: true, User: "alice", Host: "intra.example.com", Transport: "tcp"}},
		{"msrp://a;b@relay.example.com:9000;tcp", URI{User: "a;b", Host: "relay.example.com", Port: 9000, Transport: "tcp"}},
		{"msrp://[::1]/x;sctp", URI{Host: "::1", SessionID: "x", Transport: "sctp"}},
	}
	for _, tt := range tests {
		got, err := ParseURI(tt.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		again, err := ParseURI(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURI(%q.String() = %q) = %+v, %v", tt.in, got.String(), again, err)
		}
		if err := got.check(); err != nil {
			t.Errorf("check(%q): %v", tt.in, err)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, text string }{
		{"sip:alice@example.com", "no ://"},
		{"http://h:1/s;tcp", "scheme is not msrp"},
		{"msrp://h:1/s", "no ;transport"},
		{"msrp://h:1", "no ;transport"},
		{"msrp://h:1/;tcp", "bad session-id"},
		{"msrp://h:1/a b;tcp", "bad session-id"},
		{"msrp://h:1/s;", "bad transport"},
		{"msrp://h:1/s;t-cp", "bad transport"},
		{"msrp://h:1/s;tcp;", "empty parameter"},
		{"msrp://h:1/s;tcp;a b", "bad parameter"},
		{"msrp://:1/s;tcp", "bad host"},
		{"msrp://h:0/s;tcp", "port out of range"},
		{"msrp://h:65536/s;tcp", "port out of range"},
		{"msrp://h:12ab/s;tcp", "bad port"},
		{"msrp://h:/s;tcp", "bad port"},
		{"msrp://[::1/s;tcp", "unclosed ["},
		{"msrp://[1.2.3.4]:1/s;tcp", "bad IPv6"},
		{"msrp://[fe80::1%25eth0]:1/s;tcp", "bad IPv6"},
		{"msrp://[::1]x/s;tcp", "junk after ]"},
		{"msrp://@h:1/s;tcp", "bad userinfo"},
	}
	for _, tt := range tests {
		_, err := ParseURI(tt.in)
		if !errors.Is(err, ErrBadURI) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("ParseURI(%q) error %v, want one saying %q", tt.in, err, tt.text)
		}
	}
}

// RFC 4975 section 6.1.
func TestURIEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"msrp://h.example.com:1/s;tcp", "MSRP://H.EXAMPLE.com:1/s;TCP", true},
		{"msrp://alice@h:1/s;tcp", "msrp://bob@h:1/s;tcp", true},                 // userinfo ignored
		{"msrp://h:1/s;tcp;x=1", "msrp://h:1/s;tcp", true},                       // other parameters ignored
		{"msrp://[2001:db8::1]:1/s;tcp", "msrp://[2001:DB8:0::1]:1/s;tcp", true}, // addresses, not strings
		{"msrp://h:1/s;tcp", "msrps://h:1/s;tcp", false},
		{"msrp://h:1/s;tcp", "msrp://h:2/s;tcp", false},
		{"msrp://h:1/s;tcp", "msrp://h/s;tcp", false}, // an explicit port never equals none
		{"msrp://h:1/s;tcp", "msrp://h:1/S;tcp", false},
		{"msrp://h:1/s;tcp", "msrp://h:1;tcp", false}, // no session-id never equals one
		{"msrp://h:1/s;tcp", "msrp://h:1/s;sctp", false},
		{"msrp://h:1/s;tcp", "msrp://g:1/s;tcp", false},
	}
	for _, tt := range tests {
		a, b := mustURI(t, tt.a), mustURI(t, tt.b)
		if got := a.Equal(b); got != tt.want {
			t.Errorf("%s Equal %s = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := b.Equal(a); got != tt.want {
			t.Errorf("%s Equal %s = %v, not symmetric", tt.b, tt.a, got)
		}
	}
}

func TestAuthority(t *testing.T) {
	t.Parallel()
	a := mustURI(t, "msrp://[2001:DB8::1]:2855/a;tcp").Authority()
	b := mustURI(t, "msrp://[2001:db8:0::1]:2855/b;tcp").Authority()
	if a != b || a != "msrp://[2001:db8::1]:2855" {
		t.Errorf("Authority %q, %q", a, b)
	}
	if x, y := mustURI(t, "msrp://h:1/a;tcp").Authority(), mustURI(t, "msrps://h:1/a;tcp").Authority(); x == y {
		t.Errorf("msrp and msrps share authority %q", x)
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	in := "msrp://relay.example.com:9000/r1;tcp  msrp://[::1]:2855/x;tcp"
	p, err := ParsePath(in)
	if err != nil || len(p) != 2 {
		t.Fatalf("ParsePath: %v %v", p, err)
	}
	if got := FormatPath(p); got != "msrp://relay.example.com:9000/r1;tcp msrp://[::1]:2855/x;tcp" {
		t.Errorf("FormatPath = %q", got)
	}
	if _, err := ParsePath(" "); !errors.Is(err, ErrBadURI) {
		t.Errorf("empty path: %v", err)
	}
}

func TestNewSessionID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := NewSessionID()
		if len(id) != 20 || !validChars(id, sessionChar) || seen[id] {
			t.Fatalf("NewSessionID() = %q", id)
		}
		seen[id] = true
	}
}
