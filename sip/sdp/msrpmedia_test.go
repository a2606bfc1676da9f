package sdp

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mimigw/mimigw/sip/msrp"
)

func mustPath(t testing.TB, s string) []msrp.URI {
	t.Helper()
	p, err := msrp.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t testing.TB, b []byte) *Session {
	t.Helper()
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMSRPFromGolden(t *testing.T) {
	t.Parallel()
	cases := map[string]MSRPMedia{
		"rfc4975-exchange-offer.sdp": {
			Port: 7394, Proto: ProtoMSRP,
			Path:        mustPath(t, "msrp://alice.example.com:7394/2s93i93idj;tcp"),
			AcceptTypes: []string{"message/cpim", "text/plain", "text/html"},
		},
		"rfc4976-relay-offer.sdp": {
			Port: 7777, Proto: ProtoMSRPTLS,
			Path:         mustPath(t, "msrps://relay.example.com:2855/hjdhfha;tcp msrps://alicepc.example.com:7777/iau39soe2843z;tcp"),
			AcceptTypes:  []string{"message/cpim", "text/plain", "text/html"},
			Fingerprints: []msrp.Fingerprint{mustFP(t, "sha-256 1E:53:B8:E4:14:0C:F5:3B:D7:89:3C:A2:D8:5F:AE:77:E5:27:F7:8B:0A:A0:4B:81:8D:64:0C:6B:0E:33:63:6F")},
		},
		"rcs-chat-offer.sdp": {
			Port: 9, Proto: ProtoMSRP,
			Path:               mustPath(t, "msrp://10.0.0.1:2855/s3ssi0n;tcp"),
			AcceptTypes:        []string{TypeCPIM, TypeIsComposing},
			AcceptWrappedTypes: []string{TypeText, TypeIMDN, TypeFTHTTP, TypeMultipart},
			MaxSize:            16384,
			Setup:              SetupActive,
			Connection:         ConnectionNew,
			Direction:          SendRecv,
		},
		"rcs-largemsg-offer.sdp": {
			Port: 9, Proto: ProtoMSRP,
			Path:               mustPath(t, "msrp://10.0.0.1:2855/l4rg3m5g;tcp"),
			AcceptTypes:        []string{TypeCPIM},
			AcceptWrappedTypes: []string{TypeText, TypeIMDN},
			Setup:              SetupActPass,
			Connection:         ConnectionNew,
			Direction:          SendOnly,
		},
		"rcs-nosetup-offer.sdp": {
			Port: 2855, Proto: ProtoMSRP,
			Path:               mustPath(t, "msrp://10.0.0.1:2855/n0s3tup;tcp"),
			AcceptTypes:        []string{TypeCPIM},
			AcceptWrappedTypes: []string{TypeText, TypeIMDN},
		},
		"rcs-file-offer.sdp": {
			Port: 9, Proto: ProtoMSRP,
			Path:               mustPath(t, "msrp://10.0.0.1:2855/f1l3tr;tcp"),
			AcceptTypes:        []string{TypeCPIM},
			AcceptWrappedTypes: []string{"*"},
			Setup:              SetupActPass,
			Direction:          SendOnly,
			Other: []Attribute{
				{"file-selector", `name:"My cool picture.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E`},
				{"file-transfer-id", "vBnG916bdberum2fFEABR1FR3ExZMUrd"},
				{"file-disposition", "attachment"},
				{"file-date", `creation:"Mon, 15 May 2006 15:01:31 +0300"`},
				{"file-icon", "cid:id2@alicepc.example.com"},
				{"x-vendor-thing", ""},
			},
		},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, readFile(t, name))
			got, err := s.MSRP(0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("MSRP(0) =\n%#v\nwant\n%#v", got, want)
			}
			// Written into a media description and read back, it is the
			// same.
			s2 := &Session{Media: []*Media{got.Media()}}
			again, err := s2.MSRP(0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("MSRP(Media()) =\n%#v\nwant\n%#v", again, got)
			}
		})
	}
	t.Run("file-selector kept", func(t *testing.T) {
		t.Parallel()
		m, err := mustParse(t, readFile(t, "rcs-file-offer.sdp")).MSRP(0)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := m.Attr("File-Selector"); !ok || !strings.HasPrefix(v, `name:"My cool picture.jpg"`) {
			t.Errorf("Attr(file-selector) = %q, %v", v, ok)
		}
	})
}

// Direction, setup, connection and fingerprint at session level apply
// to a media description that has none of its own; its own win.
func TestMSRPSessionLevel(t *testing.T) {
	t.Parallel()
	in := crlf(`v=0
o=- 1 1 IN IP4 h
s=-
t=0 0
a=sendonly
a=setup:passive
a=connection:existing
a=fingerprint:sha-256 ` + fp256 + `
m=message 1 TCP/TLS/MSRP *
a=path:msrps://h:1/a;tcp
m=message 2 TCP/TLS/MSRP *
a=path:msrps://h:2/b;tcp
a=recvonly
a=setup:active
a=connection:new
a=fingerprint:sha-1 ` + fp1 + `
`)
	s := mustParse(t, []byte(in))
	m0, err := s.MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	if m0.Direction != SendOnly || m0.Setup != SetupPassive || m0.Connection != ConnectionExisting || len(m0.Fingerprints) != 1 || m0.Fingerprints[0].Hash != "sha-256" {
		t.Errorf("m-line 1 = %+v, want the session-level values", m0)
	}
	m1, err := s.MSRP(1)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Direction != RecvOnly || m1.Setup != SetupActive || m1.Connection != ConnectionNew || len(m1.Fingerprints) != 1 || m1.Fingerprints[0].Hash != "sha-1" {
		t.Errorf("m-line 2 = %+v, want its own values", m1)
	}
}

func TestMSRPErrors(t *testing.T) {
	t.Parallel()
	const head = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n"
	cases := []struct {
		name, in string
		err      error
		says     string
	}{
		{"audio", head + "m=audio 9 RTP/AVP 0\n", ErrNotMSRP, "m-line 1"},
		{"UDP", head + "m=message 9 UDP/DTLS/SCTP webrtc-datachannel\n", ErrNotMSRP, "UDP/DTLS/SCTP"},
		{"bad path", head + "m=message 9 TCP/MSRP *\na=path:http://x/y\n", msrp.ErrBadURI, "a=path"},
		{"empty path", head + "m=message 9 TCP/MSRP *\na=path: \n", msrp.ErrBadURI, "a=path"},
		{"two paths", head + "m=message 9 TCP/MSRP *\na=path:msrp://h:1/a;tcp\na=path:msrp://h:1/b;tcp\n", ErrBadAttribute, "a=path twice"},
		{"bad type", head + "m=message 9 TCP/MSRP *\na=accept-types:text\n", ErrBadAttribute, "a=accept-types"},
		{"wildcard type", head + "m=message 9 TCP/MSRP *\na=accept-types:*/plain\n", ErrBadAttribute, "*/plain"},
		{"empty types", head + "m=message 9 TCP/MSRP *\na=accept-wrapped-types:\n", ErrBadAttribute, "empty list"},
		{"bad max-size", head + "m=message 9 TCP/MSRP *\na=max-size:-1\n", ErrBadAttribute, "a=max-size"},
		{"huge max-size", head + "m=message 9 TCP/MSRP *\na=max-size:99999999999999999999\n", ErrBadAttribute, "a=max-size"},
		{"bad setup", head + "m=message 9 TCP/MSRP *\na=setup:both\n", ErrBadAttribute, "a=setup:both"},
		{"bad connection", head + "m=message 9 TCP/MSRP *\na=connection:old\n", ErrBadAttribute, "a=connection"},
		{"two directions", head + "m=message 9 TCP/MSRP *\na=sendonly\na=recvonly\n", ErrBadAttribute, "twice"},
		{"direction with value", head + "m=message 9 TCP/MSRP *\na=sendonly:yes\n", ErrBadAttribute, "takes no value"},
		{"bad session setup", head + "a=setup:x\nm=message 9 TCP/TLS/MSRP *\n", ErrBadAttribute, "session level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := mustParse(t, []byte(c.in)).MSRP(0)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("MSRP(0) error %v, want %v saying %q", err, c.err, c.says)
			}
		})
	}
	if _, err := mustParse(t, []byte(head)).MSRP(0); err == nil {
		t.Error("MSRP(0) of a session without media: no error")
	}
}

// White space clients leave around values and after flags is not
// significant.
func TestMSRPWhiteSpace(t *testing.T) {
	t.Parallel()
	in := "v=0 \r\no=- 1 1 IN IP4 h \r\nt=0 0 \r\nm=message 9 TCP/MSRP * \r\na=path: msrp://h:1/a;tcp \r\na=sendonly \r\na=setup: active \r\na=connection: new\r\na=max-size: 1024 \r\na=accept-types: message/cpim  text/plain \r\n"
	m, err := mustParse(t, []byte(in)).MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Direction != SendOnly || m.Setup != SetupActive || m.Connection != ConnectionNew || m.MaxSize != 1024 ||
		len(m.Path) != 1 || strings.Join(m.AcceptTypes, " ") != "message/cpim text/plain" {
		t.Errorf("MSRP(0) = %+v", m)
	}
}

// Case is not significant in the names this package reads.
func TestMSRPCaseInsensitive(t *testing.T) {
	t.Parallel()
	in := "v=0\no=- 1 1 IN IP4 h\nm=Message 9 tcp/msrp *\na=PATH:msrp://h:1/a;tcp\na=SendOnly\na=Setup:ACTPASS\na=Accept-Types:Message/CPIM\n"
	m, err := mustParse(t, []byte(in)).MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Proto != ProtoMSRP || m.Direction != SendOnly || m.Setup != SetupActPass || len(m.Path) != 1 || !Accepts(m.AcceptTypes, TypeCPIM) {
		t.Errorf("MSRP(0) = %+v", m)
	}
}

// A fingerprint sip/msrp cannot check (md5, a bad length) is kept as an
// attribute, not taken as one to check against, and not an error.
func TestMSRPFingerprintKept(t *testing.T) {
	t.Parallel()
	in := "v=0\no=- 1 1 IN IP4 h\nm=message 9 TCP/TLS/MSRP *\na=path:msrps://h:1/a;tcp\na=fingerprint:md5 AA:BB\na=fingerprint:SHA-256 " + fp256 + "\n"
	m, err := mustParse(t, []byte(in)).MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Fingerprints) != 1 || m.Fingerprints[0].Hash != "sha-256" {
		t.Errorf("Fingerprints = %v", m.Fingerprints)
	}
	if v, ok := m.Attr("fingerprint"); !ok || v != "md5 AA:BB" {
		t.Errorf("md5 fingerprint in Other: %q, %v", v, ok)
	}
}

// Made-up fingerprints of the right lengths.
var (
	fp256 = strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	fp1   = strings.TrimSuffix(strings.Repeat("CD:", 20), ":")
)

func mustFP(t testing.TB, s string) msrp.Fingerprint {
	t.Helper()
	fp, err := msrp.ParseFingerprint(s)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestIntersect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		theirs, ours, want string
	}{
		{"message/cpim text/plain text/html", "message/cpim text/plain", "message/cpim text/plain"},
		{"text/plain", "message/cpim text/plain", "text/plain"},
		{"TEXT/Plain", "text/plain", "text/plain"},
		{"*", "message/cpim text/plain", "message/cpim text/plain"},
		{"text/*", "message/cpim text/plain", "text/plain"},
		{"text/plain text/html", "text/*", "text/plain text/html"},
		{"text/plain;charset=UTF-8", "text/plain", "text/plain"},
		{"image/jpeg", "message/cpim text/plain", ""},
		{"text/plain text/plain", "text/*", "text/plain"},
	}
	for _, c := range cases {
		got := strings.Join(Intersect(strings.Fields(c.theirs), strings.Fields(c.ours)), " ")
		if got != c.want {
			t.Errorf("Intersect(%q, %q) = %q, want %q", c.theirs, c.ours, got, c.want)
		}
	}
	if !Accepts([]string{"text/*"}, "text/plain") || Accepts([]string{"text/plain"}, "image/png") {
		t.Error("Accepts wrong")
	}
}
