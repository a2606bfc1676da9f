package identity

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mimigw/mimigw/mimi/uri"
)

// canonicalByParsing is what canonicalURI means: a MIMI URI or tel URI
// parsed and written again, anything else as it is.
func canonicalByParsing(s string) string {
	switch {
	case len(s) >= 7 && strings.EqualFold(s[:7], "mimi://"):
		if u, err := uri.ParseMIMI(s); err == nil {
			return u.String()
		}
	case len(s) >= 4 && strings.EqualFold(s[:4], "tel:"):
		if n, err := uri.ParseNumber(s, ""); err == nil {
			return n.TelURI()
		}
	}
	return s
}

// dmRoomByParts is what DMRoom means: a room of the domain named by the
// hash of both canonical URIs in order.
func dmRoomByParts(domain, a, b string) string {
	a, b = canonicalByParsing(a), canonicalByParsing(b)
	if b < a {
		a, b = b, a
	}
	h := sha256.Sum256([]byte("mimigw dm\x00" + a + "\x00" + b))
	return uri.MIMI{Kind: uri.Room, Domain: strings.ToLower(domain), ID: "dm-" + hex.EncodeToString(h[:16])}.String()
}

// canonicalURI and DMRoom, which skip rewriting URIs already in canonical
// form and hash in a buffer, give what parsing and concatenating give, for
// URIs in every spelling and for long ones.
func TestCanonicalAndDMRoomSameAsParsing(t *testing.T) {
	t.Parallel()
	uris := []string{"", "x", "mimi://gw.example.net/u/+15551230001", "MIMI://gw.example.net/u/+15551230001",
		"mimi://GW.Example.net/u/alice", "mimi://gw.example.net", "mimi://GW.example.net", "mimi://gw.example.net/",
		"mimi://gw.example.net/x/y", "mimi://gw.example.net/r/Room-A", "mimi://gw.example.netx/u/a", "tel:+15551230001",
		"TEL:+15551230001", "tel:+1-555-123-0001", "tel:+15551230001;phone-context=x", "tel:garbage", "sip:+15551230001@x",
		"mimi://gw.example.net/u/" + strings.Repeat("a", 300), "mimi://desk.EXAMPLE/u/alice"}
	for _, s := range uris {
		if got, want := canonicalURI(s), canonicalByParsing(s); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", s, got, want)
		}
	}
	for _, d := range []string{"gw.example.net", "GW.Example.NET"} {
		for _, a := range uris {
			for _, b := range uris[len(uris)-6:] {
				if got, want := DMRoom(d, a, b), dmRoomByParts(d, a, b); got != want {
					t.Errorf("DMRoom(%q, %q, %q) = %q, want %q", d, a, b, got, want)
				}
			}
		}
	}
}

func BenchmarkDMRoom(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DMRoom("gw.example.net", "mimi://desk.example/u/alice", "mimi://gw.example.net/u/+15551230001")
	}
}

// The keys of a user toward a contact are the prefix, the user's URI in
// unpadded URL-safe base64, a dot and the contact's digits.
func TestUserKeys(t *testing.T) {
	t.Parallel()
	for _, user := range []string{"", "mimi://gw.example.net/u/alice", "mimi://x/u/" + strings.Repeat("é?", 50)} {
		enc := base64.RawURLEncoding.EncodeToString([]byte(user))
		for _, c := range []struct{ got, want string }{
			{convKey(user, "+15551230001"), "conv." + enc + ".15551230001"},
			{roomKey(user, "+15551230001"), "room." + enc + ".15551230001"},
			{lentByKey(user, "+15551230001"), "lentby." + enc + ".15551230001"},
			{roomKey(user, ""), "room." + enc + "."},
		} {
			if c.got != c.want {
				t.Errorf("key %q, want %q", c.got, c.want)
			}
		}
	}
}
