package cpim

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts is written by
// Bytes into something that parses to the same message.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.cpim"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"From: <tel:+1>\n\nContent-Type: text/plain\n\n",
		"Subject:;lang=fr x\n\nContent-Type: a/b\nContent-Transfer-Encoding: quoted-printable\n\n=41=\n",
		"NS: <urn:x>\nNS: p <urn:y>\np.A: 1\n\nContent-Type: a/b\n folded\nContent-Length: 3\n\nabcdef",
		"\n\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(in)
		if err != nil {
			return
		}
		// The accessors must hold up on anything Parse accepts.
		m.From()
		m.To()
		_, _ = m.DateTime()
		m.DispositionNotification()
		m.Namespaces()
		m.Header(NamespaceIMDN, "Message-ID")
		checkRoundTrip(t, in)
	})
}
