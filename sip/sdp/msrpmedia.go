package sdp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mimigw/mimigw/sip/msrp"
)

// The transport protocols of an MSRP media description (RFC 4975 section
// 8.1).
const (
	ProtoMSRP    = "TCP/MSRP"
	ProtoMSRPTLS = "TCP/TLS/MSRP"
)

// MediaMessage is the media type of an MSRP media description.
const MediaMessage = "message"

// Setup is the a=setup value (RFC 4145 section 4, used for MSRP by RFC
// 6135): which end opens the TCP connection. The zero value is "no
// a=setup", which RFC 4145 reads as active in an offer and passive in an
// answer: the offerer connects, as RFC 4975 has it.
type Setup string

// The a=setup values.
const (
	SetupActive   Setup = "active"
	SetupPassive  Setup = "passive"
	SetupActPass  Setup = "actpass"
	SetupHoldConn Setup = "holdconn"
)

// Direction is the direction attribute of RFC 3264 section 5.1. The zero
// value is "none written", which means sendrecv.
type Direction string

// The direction attributes.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Sends reports whether the side that wrote d sends media.
func (d Direction) Sends() bool { return d == "" || d == SendRecv || d == SendOnly }

// Receives reports whether the side that wrote d receives media.
func (d Direction) Receives() bool { return d == "" || d == SendRecv || d == RecvOnly }

// Reverse is the direction an answer gives to an offer's d (RFC 3264
// section 6.1): sendonly becomes recvonly and recvonly sendonly; sendrecv
// (written or not) and inactive stay.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

func parseDirection(name string) (Direction, bool) {
	for _, d := range [...]Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		if strings.EqualFold(name, string(d)) {
			return d, true
		}
	}
	return "", false
}

// The a=connection values (RFC 4145 section 5).
const (
	ConnectionNew      = "new"
	ConnectionExisting = "existing"
)

// Errors about MSRP media descriptions, wrapped with the m-line's number
// (counted from 1) and the attribute at fault.
var (
	// ErrNotMSRP: the media description is not m=message with TCP/MSRP or
	// TCP/TLS/MSRP.
	ErrNotMSRP = errors.New("not an MSRP media description")
	// ErrBadAttribute: an MSRP attribute whose value does not parse, or
	// one that may appear once appearing twice.
	ErrBadAttribute = errors.New("bad attribute")
)

// MSRPMedia is the MSRP view of an m=message media description (RFC 4975
// section 8): what the side that wrote it offers or answers.
//
// It is read from a Session by Session.MSRP and written into one by
// MSRPMedia.Media. Reading and writing keeps every attribute, but in this
// type's order rather than the one it came in: for a byte-exact copy of
// what a peer sent, use the Session's Media.
type MSRPMedia struct {
	// Port is the m= port. RFC 4975 addresses by the path, not by port and
	// c=; port 0 still rejects the stream (RFC 3264).
	Port int
	// Proto is ProtoMSRP or ProtoMSRPTLS.
	Proto string
	// Path is the a=path list (RFC 4975 section 8.2): the writer's own URI
	// last, any relays it reaches the session through (RFC 4976) before
	// it.
	Path []msrp.URI
	// AcceptTypes and AcceptWrappedTypes are the a=accept-types and
	// a=accept-wrapped-types lists, as written: media types, "type/*" or
	// "*".
	AcceptTypes        []string
	AcceptWrappedTypes []string
	// MaxSize is a=max-size in bytes; 0 when absent.
	MaxSize int64
	// Setup is a=setup, "" when absent (media level first, else session
	// level).
	Setup Setup
	// Connection is a=connection (ConnectionNew or ConnectionExisting), ""
	// when absent (media level first, else session level).
	Connection string
	// Fingerprints are the a=fingerprint lines (RFC 8122) with a hash
	// function sip/msrp takes, media level if there are any, else session
	// level. One with another hash function (md5) or that does not parse
	// is kept in Other: nothing can be checked against it.
	Fingerprints []msrp.Fingerprint
	// Direction is the direction attribute, "" when absent (media level
	// first, else session level).
	Direction Direction
	// Other holds the remaining media-level attributes in order:
	// a=file-selector, a=file-transfer-id, a=file-disposition (RFC 5547),
	// a=msrp-cema, vendor attributes.
	Other []Attribute
}

// IsMSRP reports whether m is an MSRP media description: m=message over
// TCP/MSRP or TCP/TLS/MSRP (compared without regard to case).
func (m *Media) IsMSRP() bool {
	return strings.EqualFold(m.Type, MediaMessage) &&
		(strings.EqualFold(m.Proto, ProtoMSRP) || strings.EqualFold(m.Proto, ProtoMSRPTLS))
}

// TLS reports whether the media is TCP/TLS/MSRP.
func (m *MSRPMedia) TLS() bool { return strings.EqualFold(m.Proto, ProtoMSRPTLS) }

// Attr returns the value of the first attribute in Other with that name.
func (m *MSRPMedia) Attr(name string) (string, bool) { return findAttr(m.Other, name) }

// Local is the URI of the side that wrote the media description: the last
// of its path. It is the zero URI when the path is empty.
func (m *MSRPMedia) Local() msrp.URI {
	if len(m.Path) == 0 {
		return msrp.URI{}
	}
	return m.Path[len(m.Path)-1]
}

// MSRP reads media description i (counted from 0) as MSRP. Direction,
// setup, connection and fingerprint fall back to the session level when
// the media level has none. It does not judge whether the media is usable
// (a path, accept-types, a fingerprint for TLS): Answer and Negotiate do.
func (s *Session) MSRP(i int) (MSRPMedia, error) {
	m, err := s.msrp(i)
	if err != nil {
		return MSRPMedia{}, fmt.Errorf("sdp: %w", err)
	}
	return m, nil
}

// msrp is MSRP with errors that do not say "sdp:" yet.
func (s *Session) msrp(i int) (MSRPMedia, error) {
	if i < 0 || i >= len(s.Media) {
		return MSRPMedia{}, fmt.Errorf("m-line %d: no such media description", i+1)
	}
	md := s.Media[i]
	if !md.IsMSRP() {
		return MSRPMedia{}, fmt.Errorf("m-line %d (%s %s): %w", i+1, md.Type, md.Proto, ErrNotMSRP)
	}
	m := MSRPMedia{Port: md.Port, Proto: canonicalProto(md.Proto)}
	if err := m.read(md.Attributes, true); err != nil {
		return MSRPMedia{}, fmt.Errorf("m-line %d: %w", i+1, err)
	}
	var sess MSRPMedia
	if err := sess.read(s.Attributes, false); err != nil {
		return MSRPMedia{}, fmt.Errorf("session level: %w", err)
	}
	if m.Setup == "" {
		m.Setup = sess.Setup
	}
	if m.Connection == "" {
		m.Connection = sess.Connection
	}
	if m.Direction == "" {
		m.Direction = sess.Direction
	}
	if len(m.Fingerprints) == 0 {
		m.Fingerprints = sess.Fingerprints
	}
	return m, nil
}

func canonicalProto(p string) string {
	switch {
	case strings.EqualFold(p, ProtoMSRP):
		return ProtoMSRP
	case strings.EqualFold(p, ProtoMSRPTLS):
		return ProtoMSRPTLS
	}
	return p
}

// read fills m from attributes. At session level (media false) only
// setup, connection, fingerprint and direction are read, and the rest is
// not m's business.
func (m *MSRPMedia) read(attrs []Attribute, media bool) error {
	var seen [8]bool
	once := func(k int, name string) error {
		if seen[k] {
			return fmt.Errorf("%w: a=%s twice", ErrBadAttribute, name)
		}
		seen[k] = true
		return nil
	}
	bad := func(a Attribute, err error) error {
		return fmt.Errorf("%w: a=%s: %w", ErrBadAttribute, clip(a.String()), err)
	}
	for _, a := range attrs {
		name := strings.ToLower(a.Name)
		if d, ok := parseDirection(name); ok {
			if err := once(0, "<direction>"); err != nil {
				return err
			}
			if a.Value != "" {
				return bad(a, errors.New("takes no value"))
			}
			m.Direction = d
			continue
		}
		switch name {
		case "setup":
			if err := once(1, name); err != nil {
				return err
			}
			v := Setup(strings.ToLower(strings.TrimSpace(a.Value)))
			switch v {
			case SetupActive, SetupPassive, SetupActPass, SetupHoldConn:
			default:
				return bad(a, errors.New("not active, passive, actpass or holdconn"))
			}
			m.Setup = v
			continue
		case "connection":
			if err := once(2, name); err != nil {
				return err
			}
			v := strings.ToLower(strings.TrimSpace(a.Value))
			if v != ConnectionNew && v != ConnectionExisting {
				return bad(a, errors.New("not new or existing"))
			}
			m.Connection = v
			continue
		case "fingerprint":
			if fp, err := msrp.ParseFingerprint(a.Value); err == nil {
				m.Fingerprints = append(m.Fingerprints, fp)
				continue
			}
		}
		if !media {
			continue
		}
		switch name {
		case "path":
			if err := once(3, name); err != nil {
				return err
			}
			p, err := msrp.ParsePath(a.Value)
			if err != nil {
				return bad(a, err)
			}
			m.Path = p
		case "accept-types":
			types, err := parseTypeList(a.Value)
			if err != nil {
				return bad(a, err)
			}
			m.AcceptTypes = append(m.AcceptTypes, types...)
		case "accept-wrapped-types":
			types, err := parseTypeList(a.Value)
			if err != nil {
				return bad(a, err)
			}
			m.AcceptWrappedTypes = append(m.AcceptWrappedTypes, types...)
		case "max-size":
			if err := once(4, name); err != nil {
				return err
			}
			v := strings.TrimSpace(a.Value)
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || !isDigits(v) {
				return bad(a, errors.New("not a decimal byte count"))
			}
			m.MaxSize = n
		default:
			m.Other = append(m.Other, a)
		}
	}
	return nil
}

// Media writes m as a media description: "m=message <port> <proto> *"
// and its attributes in this order: accept-types, accept-wrapped-types,
// max-size, path, setup, connection, fingerprint, direction, then Other.
// Empty fields are left out. Session.MSRP reads it back to an equal
// MSRPMedia when m's fields are in the form it reads (Proto as the
// constants spell it, setup and direction in lower case).
func (m *MSRPMedia) Media() *Media {
	md := &Media{Type: MediaMessage, Port: m.Port, Proto: m.Proto, Formats: []string{"*"}}
	add := func(name, value string) {
		md.Attributes = append(md.Attributes, Attribute{Name: name, Value: value})
	}
	if len(m.AcceptTypes) > 0 {
		add("accept-types", strings.Join(m.AcceptTypes, " "))
	}
	if len(m.AcceptWrappedTypes) > 0 {
		add("accept-wrapped-types", strings.Join(m.AcceptWrappedTypes, " "))
	}
	if m.MaxSize > 0 {
		add("max-size", strconv.FormatInt(m.MaxSize, 10))
	}
	if len(m.Path) > 0 {
		add("path", msrp.FormatPath(m.Path))
	}
	if m.Setup != "" {
		add("setup", string(m.Setup))
	}
	if m.Connection != "" {
		add("connection", m.Connection)
	}
	for _, fp := range m.Fingerprints {
		add("fingerprint", fp.String())
	}
	if m.Direction != "" {
		add(string(m.Direction), "")
	}
	md.Attributes = append(md.Attributes, m.Other...)
	return md
}
