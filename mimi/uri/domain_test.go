package uri

import (
	"strings"
	"testing"
)

// validDomainBySplitting is what validDomain means: every dot-separated
// label valid, in at most 253 bytes.
func validDomainBySplitting(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if !checkLabel(label) {
			return false
		}
	}
	return true
}

func TestValidDomainSameAsSplitting(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"", ".", "a", "a.", ".a", "a..b", "a.b", "gw.example.net", "GW.Example.NET", "-a.b", "a-.b",
		"a-b.c", "localhost:8443", ":8443", "a.b:1", "a_b.c", "a b", "é.example", strings.Repeat("a", 63) + ".b",
		strings.Repeat("a", 64) + ".b", strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a", "a.b.c.d.e"} {
		if got, want := validDomain(d), validDomainBySplitting(d); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", d, got, want)
		}
	}
}
