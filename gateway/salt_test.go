package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
)

// The salt is the first 16 bytes of HMAC-SHA256 over each part and a zero
// byte, under the gateway secret, whether the keyed HMAC is new or reused,
// from many goroutines at once, and for inputs longer than the buffer kept.
func TestSaltIsHMACOfParts(t *testing.T) {
	t.Parallel()
	g := &Gateway{secret: []byte("0123456789abcdef0123456789abcdef")}
	want := func(parts ...string) [16]byte {
		h := hmac.New(sha256.New, g.secret)
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		var s [16]byte
		copy(s[:], h.Sum(nil))
		return s
	}
	cases := [][]string{
		{},
		{""},
		{"in", "rcs", "+15551230000", "+15559870000", "ref-1"},
		{"in", "rcs", "+15551230000", "+15559870000", "ref-2"},
		{"report", strings.Repeat("ab", 32), "delivered"},
		{"in", "sms", strings.Repeat("x", 2*maxSaltInput), "y"},
		{"in", "sms", "+15551230000", "+15559870000", "ref-1"},
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				for _, c := range cases {
					if got, w := g.salt(c...), want(c...); got != w {
						t.Errorf("salt(%q) = %x, want %x", c, got, w)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if g.salt("a", "bc") == g.salt("ab", "c") {
		t.Error("parts are not separated")
	}
}
