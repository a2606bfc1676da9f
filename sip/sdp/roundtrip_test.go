package sdp

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
)

func goldenFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	return files
}

// write(parse(b)) == b for every golden body, each canonical.
func TestGoldenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range goldenFiles(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			in := readFile(t, filepath.Base(name))
			s, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			if out := s.Bytes(); !bytes.Equal(out, in) {
				t.Errorf("Bytes =\n%s\nwant\n%s", out, in)
			}
			checkRoundTrip(t, in)
		})
	}
}

// checkRoundTrip: what parses is written into something that parses to
// an equal session and is written the same again.
func checkRoundTrip(t *testing.T, in []byte) {
	t.Helper()
	s, err := Parse(in)
	if err != nil {
		return
	}
	out := s.Bytes()
	s2, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Bytes()) failed: %v\ninput %q\nwritten %q", err, in, out)
	}
	if !reflect.DeepEqual(s, s2) {
		t.Fatalf("Parse(Bytes()) differs:\n%#v\n%#v\ninput %q\nwritten %q", s, s2, in, out)
	}
	if out2 := s2.Bytes(); !bytes.Equal(out, out2) {
		t.Fatalf("second Bytes differs:\n%q\n%q", out, out2)
	}
}

// parse(write(s)) == s for sessions built in code, in the form Parse
// produces (names and times filled, nil for what is absent).
func TestBuiltRoundTrip(t *testing.T) {
	t.Parallel()
	sessions := map[string]*Session{
		"chat offer": chatOfferSession(),
		"everything": {
			Origin:     Origin{Username: "gw", SessionID: "0042", SessionVersion: "7", NetType: "IN", AddrType: "IP6", Address: "2001:db8::7"},
			Name:       " ",
			Connection: &Connection{NetType: "IN", AddrType: "IP6", Address: "2001:db8::7"},
			Timing:     []Timing{{Start: 1, Stop: 2, Repeats: []string{"7d 1h 0 25h"}}, {}},
			Attributes: []Attribute{{Name: "sendonly"}, {Name: "setup", Value: "actpass"}},
			Other:      []Line{{'k', "prompt"}, {'b', "AS:64"}, {'i', "info"}, {'z', "0 0"}, {'u', "http://x"}, {'e', "a@b"}, {'p', "+1"}},
			Media: []*Media{
				{Type: "message", Port: 2855, Proto: "TCP/TLS/MSRP", Formats: []string{"*"},
					Attributes: []Attribute{{Name: "path", Value: "msrps://[2001:db8::7]:2855/abc;tcp"}}},
				{Type: "audio", Port: 0, NumPorts: 2, Proto: "RTP/AVP", Formats: []string{"0", "8"},
					Other: []Line{{'i', "off"}, {'b', "AS:1"}}, Connection: &Connection{"IN", "IP4", "0.0.0.0"}},
				{Type: "message", Port: 9, Proto: "TCP/MSRP"},
			},
		},
	}
	for name, s := range sessions {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(s.Bytes())
			if err != nil {
				t.Fatalf("%v\n%s", err, s.Bytes())
			}
			// Other comes back in RFC 8866 order, which is what Bytes
			// wrote; compare after putting the original in that order.
			want := *s
			want.Other = canonicalOther(s.Other, "iuepbzk")
			want.Media = make([]*Media, len(s.Media))
			for i, m := range s.Media {
				mm := *m
				mm.Other = canonicalOther(m.Other, "ibk")
				want.Media[i] = &mm
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Parse(Bytes()) =\n%#v\nwant\n%#v", got, &want)
			}
		})
	}
}

func canonicalOther(lines []Line, order string) []Line {
	var out []Line
	for i := 0; i < len(order); i++ {
		for _, l := range lines {
			if l.Type == order[i] {
				out = append(out, l)
			}
		}
	}
	return out
}
