package sdp

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mimigw/mimigw/sip/msrp"
)

// gateway is the answering side of most tests: a TCP and a TLS path and a
// fixed origin, so that answers can be compared byte for byte.
func gateway(t testing.TB) AnswerOptions {
	return AnswerOptions{
		Path:         mustPath(t, "msrp://192.0.2.10:2855/gw5e55i0n;tcp"),
		TLSPath:      mustPath(t, "msrps://192.0.2.10:2856/gwt15e55;tcp"),
		Fingerprints: []msrp.Fingerprint{mustFP(t, "sha-256 "+fp256)},
		Origin:       Origin{SessionID: "1000", SessionVersion: "1000"},
	}
}

// The golden answer to the RCS chat offer.
func TestAnswerGolden(t *testing.T) {
	t.Parallel()
	ans, err := Answer(mustParse(t, readFile(t, "rcs-chat-offer.sdp")), gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(ans.Bytes()), string(readFile(t, "answer-rcs-chat.sdp")); got != want {
		t.Errorf("Answer =\n%s\nwant\n%s", got, want)
	}
}

const offerHead = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n"

// msrpOffer is an offer with one m=message line and the given attribute
// lines.
func msrpOffer(proto, attrs string) string {
	return offerHead + "m=message 9 " + proto + " *\nc=IN IP4 10.0.0.1\n" + attrs
}

const (
	peerPath     = "a=path:msrp://10.0.0.1:2855/p33r;tcp\n"
	peerTLSPath  = "a=path:msrps://10.0.0.1:2856/p33r;tcp\n"
	rcsAccept    = "a=accept-types:message/cpim application/im-iscomposing+xml\na=accept-wrapped-types:text/plain message/imdn+xml\n"
	defaultTypes = "message/cpim application/im-iscomposing+xml"
)

func TestAnswer(t *testing.T) {
	t.Parallel()
	type want struct {
		setup      Setup
		port       int
		direction  Direction
		connection string
		accept     string
		wrapped    string
		active     bool // the gateway connects
		hold       bool
	}
	cases := []struct {
		name  string
		offer string
		opts  func(*AnswerOptions)
		want  want
	}{
		{"active gets passive", msrpOffer(ProtoMSRP, peerPath+"a=setup:active\na=connection:new\n"+rcsAccept),
			nil, want{SetupPassive, 2855, SendRecv, ConnectionNew, defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"actpass gets passive by default", msrpOffer(ProtoMSRP, peerPath+"a=setup:actpass\n"+rcsAccept),
			nil, want{SetupPassive, 2855, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"actpass gets active when configured", msrpOffer(ProtoMSRP, peerPath+"a=setup:actpass\n"+rcsAccept),
			func(o *AnswerOptions) { o.Setup = SetupActive }, want{SetupActive, 9, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", true, false}},
		{"passive gets active", msrpOffer(ProtoMSRP, peerPath+"a=setup:passive\n"+rcsAccept),
			nil, want{SetupActive, 9, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", true, false}},
		{"no setup is active, gets passive", msrpOffer(ProtoMSRP, peerPath+rcsAccept),
			nil, want{SetupPassive, 2855, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"holdconn gets holdconn", msrpOffer(ProtoMSRP, peerPath+"a=setup:holdconn\n"+rcsAccept),
			nil, want{SetupHoldConn, 2855, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, true}},
		{"session-level setup", offerHead + "a=setup:passive\nm=message 9 TCP/MSRP *\n" + peerPath + rcsAccept,
			nil, want{SetupActive, 9, SendRecv, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", true, false}},
		{"existing gets new", msrpOffer(ProtoMSRP, peerPath+"a=connection:existing\n"+rcsAccept),
			nil, want{SetupPassive, 2855, SendRecv, ConnectionNew, defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"large message mode: sendonly gets recvonly", string(readFile(t, "rcs-largemsg-offer.sdp")),
			nil, want{SetupPassive, 2855, RecvOnly, ConnectionNew, "message/cpim", "text/plain message/imdn+xml", false, false}},
		{"recvonly gets sendonly", msrpOffer(ProtoMSRP, peerPath+"a=recvonly\n"+rcsAccept),
			nil, want{SetupPassive, 2855, SendOnly, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"inactive gets inactive", msrpOffer(ProtoMSRP, peerPath+"a=inactive\n"+rcsAccept),
			nil, want{SetupPassive, 2855, Inactive, "", defaultTypes, "text/plain message/imdn+xml application/im-iscomposing+xml", false, false}},
		{"only text/plain", string(readFile(t, "rfc4975-overview-offer.sdp")),
			nil, want{SetupPassive, 2855, SendRecv, "", "text/plain", "", false, false}},
		{"RFC 4975 exchange: no accept-wrapped-types, ours", string(readFile(t, "rfc4975-exchange-offer.sdp")),
			nil, want{SetupPassive, 2855, SendRecv, "", "message/cpim text/plain", strings.Join(DefaultAcceptWrappedTypes(), " "), false, false}},
		{"CPIM without accept-wrapped-types gets ours", msrpOffer(ProtoMSRP, peerPath+"a=accept-types:message/cpim\n"),
			func(o *AnswerOptions) { o.AcceptWrappedTypes = []string{TypeText, TypeIMDN} },
			want{SetupPassive, 2855, SendRecv, "", "message/cpim", "text/plain message/imdn+xml", false, false}},
		{"wildcards narrowed to ours", msrpOffer(ProtoMSRP, peerPath+"a=accept-types:message/cpim text/*\na=accept-wrapped-types:text/*\n"),
			func(o *AnswerOptions) { o.AcceptWrappedTypes = []string{TypeText, TypeIMDN} },
			want{SetupPassive, 2855, SendRecv, "", "message/cpim text/plain", "text/plain", false, false}},
		{"* takes ours", msrpOffer(ProtoMSRP, peerPath+"a=accept-types:*\n"),
			func(o *AnswerOptions) {
				o.AcceptTypes = []string{TypeCPIM}
				o.AcceptWrappedTypes = []string{TypeText, TypeIMDN}
			},
			want{SetupPassive, 2855, SendRecv, "", "message/cpim", "text/plain message/imdn+xml", false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := gateway(t)
			if c.opts != nil {
				c.opts(&opts)
			}
			offer := mustParse(t, []byte(c.offer))
			ans, err := Answer(offer, opts)
			if err != nil {
				t.Fatal(err)
			}
			// What the answer says, as a peer would read it.
			ans = mustParse(t, ans.Bytes())
			m, err := ans.MSRP(0)
			if err != nil {
				t.Fatal(err)
			}
			got := want{m.Setup, m.Port, m.Direction, m.Connection,
				strings.Join(m.AcceptTypes, " "), strings.Join(m.AcceptWrappedTypes, " "), false, false}
			n, err := Negotiate(offer, ans, Answerer)
			if err != nil {
				t.Fatal(err)
			}
			got.active, got.hold = n.Active, n.Hold
			if got != c.want {
				t.Errorf("answer\n%+v\nwant\n%+v\n%s", got, c.want, ans.Bytes())
			}
			if m.Proto != ProtoMSRP || len(m.Path) != 1 || m.Path[0].String() != "msrp://192.0.2.10:2855/gw5e55i0n;tcp" {
				t.Errorf("proto %s, path %v", m.Proto, m.Path)
			}
			if len(m.Fingerprints) != 0 {
				t.Errorf("fingerprints %v over TCP", m.Fingerprints)
			}
			if !reflect.DeepEqual(ans.Timing, offer.Timing) {
				t.Errorf("t= %v, offer's %v", ans.Timing, offer.Timing)
			}
		})
	}
}

func TestAnswerTLS(t *testing.T) {
	t.Parallel()
	offer := mustParse(t, readFile(t, "rcs-msrps-offer.sdp"))
	ans, err := Answer(offer, gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	ans = mustParse(t, ans.Bytes())
	m, err := ans.MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Proto != ProtoMSRPTLS || m.Port != 2856 || m.Path[0].String() != "msrps://192.0.2.10:2856/gwt15e55;tcp" {
		t.Errorf("answer %s port %d path %v", m.Proto, m.Port, m.Path)
	}
	if len(m.Fingerprints) != 1 || m.Fingerprints[0].String() != "sha-256 "+fp256 {
		t.Errorf("answer fingerprints %v, want ours", m.Fingerprints)
	}
	n, err := Negotiate(offer, ans, Answerer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := n.SessionConfig()
	want := "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3B:FB:0F:3B:2F:86:0B:2D:3A:16:F2:C6"
	if cfg.Fingerprint != want || cfg.Active || cfg.Local.String() != "msrps://192.0.2.10:2856/gwt15e55;tcp" ||
		msrp.FormatPath(cfg.Remote) != "msrps://10.0.0.1:2856/t1s3ss;tcp" {
		t.Errorf("SessionConfig = %+v", cfg)
	}
}

// Relays on both sides (RFC 4976): the peer's a=path is its relay then
// itself; the gateway's is its relay then itself. The gateway's m= port
// is its own URI's, and what it sends goes through its relay, then the
// peer's.
func TestAnswerRelays(t *testing.T) {
	t.Parallel()
	offer := mustParse(t, readFile(t, "rfc4976-relay-offer.sdp"))
	opts := gateway(t)
	opts.TLSPath = mustPath(t, "msrps://relay.gw.example.net:2855/r3l4y;tcp msrps://192.0.2.10:2856/gwt15e55;tcp")
	ans, err := Answer(offer, opts)
	if err != nil {
		t.Fatal(err)
	}
	ans = mustParse(t, ans.Bytes())
	path, _ := ans.Media[0].Attr("path")
	if path != "msrps://relay.gw.example.net:2855/r3l4y;tcp msrps://192.0.2.10:2856/gwt15e55;tcp" || ans.Media[0].Port != 2856 {
		t.Errorf("answer path %q port %d", path, ans.Media[0].Port)
	}
	if ans.Connection.Address != "192.0.2.10" {
		t.Errorf("c= %v, want the gateway's own host", ans.Connection)
	}
	n, err := Negotiate(offer, ans, Answerer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := n.SessionConfig()
	wantTo := "msrps://relay.gw.example.net:2855/r3l4y;tcp msrps://relay.example.com:2855/hjdhfha;tcp msrps://alicepc.example.com:7777/iau39soe2843z;tcp"
	if got := msrp.FormatPath(cfg.Remote); got != wantTo || cfg.Local.Host != "192.0.2.10" {
		t.Errorf("To-Path %q, Local %v; want %q", got, cfg.Local, wantTo)
	}
	if len(n.Remote.Path) != 2 || n.Remote.Path[0].Host != "relay.example.com" {
		t.Errorf("Remote.Path = %v", n.Remote.Path)
	}
}

// Streams the gateway does not take are answered with port 0, in place.
func TestAnswerOtherStreams(t *testing.T) {
	t.Parallel()
	offer := mustParse(t, []byte(offerHead+
		"m=audio 49170 RTP/AVP 0 8\n"+
		"m=message 0 TCP/MSRP *\n"+peerPath+rcsAccept+
		"m=message 9 TCP/MSRP *\n"+peerPath+rcsAccept+
		"m=message 9 TCP/MSRP *\n"+peerPath+rcsAccept))
	ans, err := Answer(offer, gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	ans = mustParse(t, ans.Bytes())
	if len(ans.Media) != 4 {
		t.Fatalf("%d m= lines, want 4", len(ans.Media))
	}
	for i, port := range []int{0, 0, 2855, 0} {
		if ans.Media[i].Port != port || ans.Media[i].Type != offer.Media[i].Type || ans.Media[i].Proto != offer.Media[i].Proto {
			t.Errorf("m-line %d: %+v, want port %d", i+1, ans.Media[i], port)
		}
	}
	if !slices.Equal(ans.Media[0].Formats, []string{"0", "8"}) || ans.Media[0].Attributes != nil {
		t.Errorf("rejected audio %+v", ans.Media[0])
	}
	n, err := Negotiate(offer, ans, Answerer)
	if err != nil || n.Index != 2 {
		t.Errorf("Negotiate: index %d, %v", n.Index, err)
	}
}

func TestAnswerRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		offer string
		opts  func(*AnswerOptions)
		err   error
	}{
		{"no media", offerHead, nil, ErrNoMSRP},
		{"audio only", offerHead + "m=audio 49170 RTP/AVP 0\n", nil, ErrNoMSRP},
		{"MSRP rejected already", offerHead + "m=message 0 TCP/MSRP *\n" + peerPath + rcsAccept, nil, ErrNoMSRP},
		{"MSRP data channel", offerHead + "m=message 9 UDP/DTLS/SCTP webrtc-datachannel\n", nil, ErrTransport},
		{"TLS not configured", msrpOffer(ProtoMSRPTLS, peerTLSPath+"a=fingerprint:sha-256 "+fp256+"\n"+rcsAccept),
			func(o *AnswerOptions) { o.TLSPath, o.Fingerprints = nil, nil }, ErrTransport},
		{"TCP not configured", msrpOffer(ProtoMSRP, peerPath+rcsAccept), func(o *AnswerOptions) { o.Path = nil }, ErrTransport},
		{"msrps path over TCP", msrpOffer(ProtoMSRP, peerTLSPath+rcsAccept), nil, ErrTransport},
		{"TLS without fingerprint", msrpOffer(ProtoMSRPTLS, peerTLSPath+rcsAccept), nil, ErrNoFingerprint},
		{"TLS with only an md5 fingerprint", msrpOffer(ProtoMSRPTLS, peerTLSPath+"a=fingerprint:md5 AA:BB\n"+rcsAccept), nil, ErrNoFingerprint},
		{"no path", msrpOffer(ProtoMSRP, rcsAccept), nil, ErrNoPath},
		{"bad path", msrpOffer(ProtoMSRP, "a=path:msrp://h/x\n"+rcsAccept), nil, msrp.ErrBadURI},
		{"bad setup", msrpOffer(ProtoMSRP, peerPath+"a=setup:sideways\n"+rcsAccept), nil, ErrBadAttribute},
		{"no accept-types", msrpOffer(ProtoMSRP, peerPath), nil, ErrNoAcceptableType},
		{"nothing acceptable", msrpOffer(ProtoMSRP, peerPath+"a=accept-types:image/jpeg video/mp4\n"), nil, ErrNoAcceptableType},
		{"only text/plain, CPIM required", string(readFile(t, "rfc4975-overview-offer.sdp")),
			func(o *AnswerOptions) { o.AcceptTypes = []string{TypeCPIM} }, ErrNoAcceptableType},
		{"CPIM wrapping nothing acceptable", msrpOffer(ProtoMSRP, peerPath+"a=accept-types:message/cpim\na=accept-wrapped-types:image/jpeg\n"), nil, ErrNoAcceptableType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := gateway(t)
			if c.opts != nil {
				c.opts(&opts)
			}
			ans, err := Answer(mustParse(t, []byte(c.offer)), opts)
			if err == nil {
				t.Fatalf("Answer accepted it:\n%s", ans.Bytes())
			}
			if !errors.Is(err, ErrNotAcceptable) || !errors.Is(err, c.err) {
				t.Errorf("error %v, want ErrNotAcceptable and %v", err, c.err)
			}
		})
	}
}

// The refusal names the m= line it is about.
func TestAnswerRefusalNamesLine(t *testing.T) {
	t.Parallel()
	offer := mustParse(t, []byte(offerHead+"m=audio 1 RTP/AVP 0\nm=message 9 TCP/MSRP *\n"+peerPath+"a=accept-types:image/png\n"))
	_, err := Answer(offer, gateway(t))
	if err == nil || !strings.Contains(err.Error(), "m-line 2") || !strings.Contains(err.Error(), "image/png") {
		t.Errorf("error %v, want it to name m-line 2 and what was offered", err)
	}
}

func TestAnswerOptions(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*AnswerOptions){
		"no paths":          func(o *AnswerOptions) { o.Path, o.TLSPath = nil, nil },
		"msrps in Path":     func(o *AnswerOptions) { o.Path = mustPath(t, "msrps://h:1/a;tcp") },
		"msrp in TLSPath":   func(o *AnswerOptions) { o.TLSPath = mustPath(t, "msrp://h:1/a;tcp") },
		"no session-id":     func(o *AnswerOptions) { o.Path = mustPath(t, "msrp://h:1;tcp") },
		"no port":           func(o *AnswerOptions) { o.Path = mustPath(t, "msrp://h/a;tcp") },
		"TLS without ours":  func(o *AnswerOptions) { o.Fingerprints = nil },
		"bad fingerprint":   func(o *AnswerOptions) { o.Fingerprints = []msrp.Fingerprint{{Hash: "sha-256", Sum: []byte{1}}} },
		"actpass":           func(o *AnswerOptions) { o.Setup = SetupActPass },
		"empty accept":      func(o *AnswerOptions) { o.AcceptTypes = []string{} },
		"bad type":          func(o *AnswerOptions) { o.AcceptWrappedTypes = []string{"text"} },
		"negative max-size": func(o *AnswerOptions) { o.MaxSize = -1 },
	}
	offer := mustParse(t, readFile(t, "rcs-chat-offer.sdp"))
	for name, change := range cases {
		opts := gateway(t)
		change(&opts)
		_, err := Answer(offer, opts)
		if err == nil || errors.Is(err, ErrNotAcceptable) {
			t.Errorf("%s: Answer error %v, want an options error", name, err)
		}
	}
	var o AnswerOptions
	o.Defaults()
	if o.Setup != SetupPassive || !slices.Equal(o.AcceptTypes, DefaultAcceptTypes()) || !slices.Equal(o.AcceptWrappedTypes, DefaultAcceptWrappedTypes()) {
		t.Errorf("Defaults = %+v", o)
	}
}

// An answer without a fixed origin draws one; the address family follows
// the gateway's own host.
func TestAnswerOrigin(t *testing.T) {
	t.Parallel()
	opts := gateway(t)
	opts.Origin = Origin{}
	opts.Path = mustPath(t, "msrp://[2001:db8::10]:2855/gw6;tcp")
	ans, err := Answer(mustParse(t, readFile(t, "rcs-nosetup-offer.sdp")), opts)
	if err != nil {
		t.Fatal(err)
	}
	o := ans.Origin
	if o.Username != "-" || !isDigits(o.SessionID) || o.SessionVersion != o.SessionID || o.AddrType != "IP6" || o.Address != "2001:db8::10" {
		t.Errorf("Origin = %+v", o)
	}
	if *ans.Connection != (Connection{"IN", "IP6", "2001:db8::10"}) {
		t.Errorf("c= %+v", ans.Connection)
	}
	if _, err := Parse(ans.Bytes()); err != nil {
		t.Error(err)
	}
}

func TestOfferGolden(t *testing.T) {
	t.Parallel()
	s, err := Offer(OfferOptions{
		Mode:    ModeLargeMessage,
		Path:    mustPath(t, "msrp://192.0.2.10:2855/gw0ut60ing;tcp"),
		MaxSize: 16384,
		Origin:  Origin{SessionID: "2000", SessionVersion: "2000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(s.Bytes()), string(readFile(t, "offer-largemsg.sdp")); got != want {
		t.Errorf("Offer =\n%s\nwant\n%s", got, want)
	}
}

func TestOffer(t *testing.T) {
	t.Parallel()
	base := func() OfferOptions {
		return OfferOptions{Path: mustPath(t, "msrp://192.0.2.10:2855/gw0ut;tcp")}
	}
	t.Run("chat", func(t *testing.T) {
		t.Parallel()
		s, err := Offer(base())
		if err != nil {
			t.Fatal(err)
		}
		m, err := mustParse(t, s.Bytes()).MSRP(0)
		if err != nil {
			t.Fatal(err)
		}
		if m.Direction != SendRecv || m.Setup != SetupActPass || m.Port != 2855 || m.Proto != ProtoMSRP || m.Connection != ConnectionNew || m.MaxSize != 0 {
			t.Errorf("chat offer %+v", m)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		o := base()
		o.Path = mustPath(t, "msrps://192.0.2.10:2856/gw0ut;tcp")
		o.Fingerprints = []msrp.Fingerprint{mustFP(t, "sha-256 "+fp256)}
		s, err := Offer(o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mustParse(t, s.Bytes()).MSRP(0)
		if err != nil {
			t.Fatal(err)
		}
		if m.Proto != ProtoMSRPTLS || len(m.Fingerprints) != 1 || m.Port != 2856 {
			t.Errorf("TLS offer %+v", m)
		}
		o.Fingerprints = nil
		if _, err := Offer(o); err == nil {
			t.Error("a TLS offer without a fingerprint was made")
		}
	})
	t.Run("active, no CPIM, extra attributes", func(t *testing.T) {
		t.Parallel()
		o := base()
		o.Setup = SetupActive
		o.AcceptTypes = []string{TypeText}
		o.Attributes = []Attribute{{Name: "msrp-cema"}, {Name: "file-transfer-id", Value: "x1"}}
		s, err := Offer(o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mustParse(t, s.Bytes()).MSRP(0)
		if err != nil {
			t.Fatal(err)
		}
		if m.Port != 9 || m.Setup != SetupActive || m.AcceptWrappedTypes != nil || !reflect.DeepEqual(m.Other, o.Attributes) {
			t.Errorf("offer %+v", m)
		}
	})
	for name, change := range map[string]func(*OfferOptions){
		"no path":      func(o *OfferOptions) { o.Path = nil },
		"holdconn":     func(o *OfferOptions) { o.Setup = SetupHoldConn },
		"mode":         func(o *OfferOptions) { o.Mode = 7 },
		"relay last":   func(o *OfferOptions) { o.Path = mustPath(t, "msrp://relay.example.net;tcp") },
		"bad type":     func(o *OfferOptions) { o.AcceptTypes = []string{"*/*"} },
		"empty accept": func(o *OfferOptions) { o.AcceptTypes = []string{} },
	} {
		o := base()
		change(&o)
		if _, err := Offer(o); err == nil {
			t.Errorf("%s: Offer made one", name)
		}
	}
}

// The gateway offers, a peer answers: who connects, and what is refused.
func TestNegotiateAsOfferer(t *testing.T) {
	t.Parallel()
	offer, err := Offer(OfferOptions{Path: mustPath(t, "msrp://192.0.2.10:2855/gw0ut;tcp")})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(attrs string) *Session {
		return mustParse(t, []byte(offerHead+"m=message 2855 TCP/MSRP *\n"+peerPath+"a=accept-types:message/cpim\n"+attrs))
	}
	for _, c := range []struct {
		name   string
		ans    *Session
		active bool
		hold   bool
		err    error
	}{
		{"answer passive: the gateway connects", answer("a=setup:passive\n"), true, false, nil},
		{"answer without setup is passive", answer(""), true, false, nil},
		{"answer active: the peer connects", answer("a=setup:active\n"), false, false, nil},
		{"answer actpass", answer("a=setup:actpass\n"), false, false, ErrSetup},
		{"answer holdconn to actpass", answer("a=setup:holdconn\n"), false, false, ErrSetup},
		{"rejected", mustParse(t, []byte(offerHead+"m=message 0 TCP/MSRP *\n")), false, false, ErrRejected},
		{"two m= lines", mustParse(t, []byte(offerHead+"m=message 9 TCP/MSRP *\nm=audio 0 RTP/AVP 0\n")), false, false, ErrMismatch},
		{"other transport", mustParse(t, []byte(offerHead+"m=message 9 TCP/TLS/MSRP *\n"+peerTLSPath+"a=accept-types:message/cpim\n")), false, false, ErrMismatch},
		{"no path", mustParse(t, []byte(offerHead+"m=message 9 TCP/MSRP *\na=accept-types:message/cpim\n")), false, false, ErrNoPath},
		{"no accept-types", mustParse(t, []byte(offerHead+"m=message 9 TCP/MSRP *\n"+peerPath)), false, false, ErrNoAcceptableType},
	} {
		n, err := Negotiate(offer, c.ans, Offerer)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == nil && (n.Active != c.active || n.Hold != c.hold):
			t.Errorf("%s: active %v hold %v, want %v %v", c.name, n.Active, n.Hold, c.active, c.hold)
		case c.err == nil && (n.Local.Local().SessionID != "gw0ut" || n.Remote.Local().SessionID != "p33r"):
			t.Errorf("%s: local %v remote %v", c.name, n.Local.Path, n.Remote.Path)
		}
	}
}

// Both ends of one exchange agree: exactly one side connects.
func TestNegotiateBothSides(t *testing.T) {
	t.Parallel()
	for _, setup := range []Setup{SetupActPass, SetupActive, SetupPassive} {
		for _, answerSetup := range []Setup{SetupPassive, SetupActive} {
			offer, err := Offer(OfferOptions{Path: mustPath(t, "msrp://192.0.2.20:2855/0ff3r;tcp"), Setup: setup,
				Attributes: []Attribute{{Name: "msrp-cema"}}})
			if err != nil {
				t.Fatal(err)
			}
			offer = mustParse(t, offer.Bytes())
			opts := gateway(t)
			opts.Setup = answerSetup
			ans, err := Answer(offer, opts)
			if err != nil {
				t.Fatal(err)
			}
			ans = mustParse(t, ans.Bytes())
			a, err1 := Negotiate(offer, ans, Offerer)
			b, err2 := Negotiate(offer, ans, Answerer)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s/%s: %v, %v", setup, answerSetup, err1, err2)
			}
			if a.Active == b.Active {
				t.Errorf("offer %s, answer option %s: offerer active %v, answerer active %v", setup, answerSetup, a.Active, b.Active)
			}
			if !reflect.DeepEqual(a.Local, b.Remote) || !reflect.DeepEqual(a.Remote, b.Local) {
				t.Errorf("%s/%s: the two views differ", setup, answerSetup)
			}
			// The offer had msrp-cema, the gateway's answer does not.
			if a.CEMA || b.CEMA {
				t.Errorf("CEMA with one side only")
			}
		}
	}
}
