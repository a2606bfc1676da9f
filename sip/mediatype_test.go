package sip

import (
	"mime"
	"strings"
	"testing"
)

// mediaTypeByParsing is what mediaType means: mime.ParseMediaType's type,
// or the lower-case text before any ';' of a value it refuses.
func mediaTypeByParsing(v string) string {
	if t, _, err := mime.ParseMediaType(v); err == nil {
		return t
	}
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// mediaType gives what parsing the whole value gives, for plain
// type/subtype values and for ones that need parsing (upper case,
// parameters, spaces, separators, missing parts, bytes beyond ASCII).
func TestMediaTypeSameAsParsing(t *testing.T) {
	t.Parallel()
	cases := []string{"", "/", "a/", "/b", "a", "a/b", "message/cpim", "Message/CPIM", "text/plain;charset=UTF-8",
		"text/plain ; charset=utf-8", " text/plain", "text/plain ", "a/b/c", "a//b", "a/b\t", "a b/c", "a/b=c",
		"a@b/c", "application/vnd.gsma.rcs-ft-http+xml", "application/im-iscomposing+xml", "message/imdn+xml",
		"x/\x7f", "x/é", "text/\"plain\"", "a/b;", "a/b,c", "application/sdp", "multipart/mixed;boundary=x",
		"a/{b}", "a/b|c", "a/b~c", "a/b'c", "a/b*c", "a/b#c", "a/b\\c", "a/b[c", "a/b?c", "a/b:c", "a/b)c"}
	for _, v := range cases {
		if got, want := mediaType(v), mediaTypeByParsing(v); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", v, got, want)
		}
	}
	for _, v := range []string{"message/cpim", "application/vnd.gsma.rcs-ft-http+xml", "a/b"} {
		if !plainMediaType(v) {
			t.Errorf("plainMediaType(%q) = false", v)
		}
	}
}
