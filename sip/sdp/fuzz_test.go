package sdp

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; whatever it accepts Bytes writes into
// something that parses to the same session and is written the same
// again; and whatever Answer accepts, the answer it writes parses and
// pairs with the offer under Negotiate.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"v=0\no=- 1 1 IN IP4 h\n",
		"v=0\r\no=- 1 1 IN IP4 h\r\nt=1 2\r\nr=1 2 3\r\nm=message 9/2 TCP/MSRP\r\na=x:\r\n\r\n",
		"v=0\no=- 1 1 IN IP4 h\na=setup:passive\na=recvonly\nm=message 1 TCP/TLS/MSRP *\na=path:msrps://h:1/a;tcp\na=accept-types:*\na=fingerprint:sha-1 " + fp1 + "\n",
		"v=0\no=- 1 1 IN IP4 h\nm=message 1 TCP/MSRP *\na=path:msrp://h:1/a;tcp\na=accept-types:message/cpim\na=accept-wrapped-types:text/*\na=setup:holdconn\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		checkRoundTrip(t, in)
		for i := range s.Media {
			m, err := s.MSRP(i)
			if err == nil {
				_ = m.Media().appendTo(nil)
			}
		}
		ans, err := Answer(s, gateway(t))
		if err != nil {
			return
		}
		ans2, err := Parse(ans.Bytes())
		if err != nil {
			t.Fatalf("the answer does not parse: %v\n%s", err, ans.Bytes())
		}
		if _, err := Negotiate(s, ans2, Answerer); err != nil {
			t.Fatalf("the answer does not pair with the offer: %v\noffer %q\nanswer\n%s", err, in, ans.Bytes())
		}
	})
}
