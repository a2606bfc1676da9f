package sdp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mimigw/mimigw/sip/msrp"
)

// ErrNotAcceptable is wrapped by every error Answer returns for an offer
// the gateway cannot take, together with the reason (one of the errors
// below, or ErrNotMSRP or ErrBadAttribute): the caller answers the INVITE
// 488 Not Acceptable Here.
var ErrNotAcceptable = errors.New("offer not acceptable")

// Reasons an offer or an answer is refused.
var (
	// ErrNoMSRP: no m=message line with a non-zero port.
	ErrNoMSRP = errors.New("no MSRP stream")
	// ErrTransport: an m=message line over something but TCP/MSRP and
	// TCP/TLS/MSRP (an MSRP data channel, RFC 8873), one of those two
	// where this side has no path of that kind, or a path whose scheme is
	// not the m= line's.
	ErrTransport = errors.New("transport not supported")
	// ErrNoAcceptableType: the two sides' accept-types have nothing in
	// common, or only message/cpim with nothing in common inside it.
	ErrNoAcceptableType = errors.New("no acceptable media type")
	// ErrNoPath: an MSRP stream without a=path.
	ErrNoPath = errors.New("no a=path")
	// ErrNoFingerprint: TCP/TLS/MSRP without a=fingerprint, which is what
	// the peer's certificate is checked against.
	ErrNoFingerprint = errors.New("TLS without a=fingerprint")
	// ErrSetup: a=setup values that do not pair (RFC 4145 section 4.1).
	ErrSetup = errors.New("a=setup values do not pair")
	// ErrRejected: the answer rejected the MSRP stream (port 0).
	ErrRejected = errors.New("MSRP stream rejected")
	// ErrMismatch: an answer whose m= lines are not the offer's.
	ErrMismatch = errors.New("answer does not match the offer")
)

// AnswerOptions is what the gateway answers an MSRP offer with. The zero
// values of AcceptTypes, AcceptWrappedTypes and Setup are filled by
// Defaults; Origin and Address are derived per answer when zero.
type AnswerOptions struct {
	// Path is the a=path for TCP/MSRP offers: any relays first (a Use-Path
	// from an RFC 4976 relay), the gateway's own msrp:// URI for this
	// session last. Empty: TCP/MSRP offers are refused.
	Path []msrp.URI
	// TLSPath is the same for TCP/TLS/MSRP offers, with msrps:// URIs.
	// Empty: TCP/TLS/MSRP offers are refused.
	TLSPath []msrp.URI
	// Fingerprints of the gateway's certificate, sent with TLS answers;
	// required with TLSPath.
	Fingerprints []msrp.Fingerprint
	// Setup is the answer to an offer of actpass: SetupPassive (default,
	// the gateway listens) or SetupActive (the gateway connects).
	Setup Setup
	// AcceptTypes and AcceptWrappedTypes are what the gateway accepts;
	// nil means DefaultAcceptTypes and DefaultAcceptWrappedTypes. The
	// answer carries their intersection with the offer's.
	AcceptTypes        []string
	AcceptWrappedTypes []string
	// MaxSize is the largest message the gateway takes, written as
	// a=max-size; 0 leaves it out.
	MaxSize int64
	// Origin is the answer's o= line. When SessionID is empty a random
	// one is drawn, with the same version; an empty Username is "-", empty
	// address fields come from Address.
	Origin Origin
	// Address is the c= (and default o=) address; empty means the host of
	// the gateway's own URI.
	Address string
}

// Defaults fills what was left zero.
func (o *AnswerOptions) Defaults() {
	if o.AcceptTypes == nil {
		o.AcceptTypes = DefaultAcceptTypes()
	}
	if o.AcceptWrappedTypes == nil {
		o.AcceptWrappedTypes = DefaultAcceptWrappedTypes()
	}
	if o.Setup == "" {
		o.Setup = SetupPassive
	}
}

// Validate checks filled options, naming the field at fault.
func (o AnswerOptions) Validate() error {
	var errs []error
	if len(o.Path) == 0 && len(o.TLSPath) == 0 {
		errs = append(errs, errors.New("sdp: answer options: path and tls_path both empty"))
	}
	if len(o.Path) > 0 {
		errs = append(errs, validatePath("answer options: path", o.Path, false))
	}
	if len(o.TLSPath) > 0 {
		errs = append(errs, validatePath("answer options: tls_path", o.TLSPath, true))
		if len(o.Fingerprints) == 0 {
			errs = append(errs, errors.New("sdp: answer options: fingerprints: none, and tls_path needs one"))
		}
	}
	errs = append(errs, validateCommon("answer", o.Fingerprints, o.AcceptTypes, o.AcceptWrappedTypes, o.MaxSize))
	if o.Setup != SetupPassive && o.Setup != SetupActive {
		errs = append(errs, fmt.Errorf("sdp: answer options: setup: %q is not passive or active", o.Setup))
	}
	return errors.Join(errs...)
}

func validatePath(field string, path []msrp.URI, secure bool) error {
	own := path[len(path)-1]
	switch {
	case own.Secure && !secure:
		return fmt.Errorf("sdp: %s: own URI %s is msrps, for TCP/MSRP", field, own)
	case !own.Secure && secure:
		return fmt.Errorf("sdp: %s: own URI %s is msrp, for TCP/TLS/MSRP", field, own)
	case own.SessionID == "" || own.Port == 0:
		return fmt.Errorf("sdp: %s: own URI %s has no port or session-id", field, own)
	}
	for _, u := range path {
		if u.Host == "" || u.Transport == "" {
			return fmt.Errorf("sdp: %s: %q is not a whole MSRP URI", field, u)
		}
	}
	return nil
}

func validateCommon(what string, fps []msrp.Fingerprint, accept, wrapped []string, maxSize int64) error {
	var errs []error
	for _, fp := range fps {
		if _, err := msrp.ParseFingerprint(fp.String()); err != nil {
			errs = append(errs, fmt.Errorf("sdp: %s options: fingerprints: %w", what, err))
		}
	}
	if len(accept) == 0 {
		errs = append(errs, fmt.Errorf("sdp: %s options: accept_types: empty", what))
	}
	for _, t := range slices.Concat(accept, wrapped) {
		if !validType(t) {
			errs = append(errs, fmt.Errorf("sdp: %s options: accept types: %q is not a media type", what, t))
		}
	}
	if maxSize < 0 {
		errs = append(errs, fmt.Errorf("sdp: %s options: max_size: %d is negative", what, maxSize))
	}
	return errors.Join(errs...)
}

// Answer answers an MSRP offer (RFC 3264, RFC 4975 section 8, RFC 6135).
//
// The first m=message stream the gateway can take is accepted: its
// transport has a path in local, it has a=path (and a=fingerprint when
// TLS), and its accept-types overlap local's. Every other m= line is
// answered with port 0, as RFC 3264 wants one answer line per offer line.
// The accepted stream is answered with:
//
//   - a=path: local's path for the transport;
//   - a=accept-types: the intersection of the offer's and local's (see
//     Intersect), and a=accept-wrapped-types likewise when message/cpim is
//     among them;
//   - a=setup: passive to active or to no a=setup (RFC 4145's default for
//     an offer is active), active to passive, local.Setup to actpass,
//     holdconn to holdconn;
//   - a=connection:new when the offer has a=connection (new is a valid
//     answer to both values; the MSRP layer shares connections as RFC
//     4975 says, whatever this attribute claims);
//   - the direction reversed (sendonly to recvonly), written out;
//   - a=fingerprint when TLS; a=max-size when local has one;
//   - the m= port of the gateway's own URI, or 9 (discard) when the
//     gateway is the active side (RFC 4145).
//
// The answer's t= is the offer's (RFC 3264 section 6). An offer the
// gateway cannot take returns an error wrapping ErrNotAcceptable and the
// reason found on the first m=message line; options that do not validate
// return an error that does not.
func Answer(offer *Session, local AnswerOptions) (*Session, error) {
	local.Defaults()
	if err := local.Validate(); err != nil {
		return nil, err
	}
	chosen := -1
	var mine MSRPMedia
	var firstErr error
	for i, md := range offer.Media {
		if !strings.EqualFold(md.Type, MediaMessage) || md.Port == 0 {
			continue
		}
		if !md.IsMSRP() {
			if firstErr == nil {
				firstErr = fmt.Errorf("m-line %d: %w: %s", i+1, ErrTransport, md.Proto)
			}
			continue
		}
		m, err := answerMedia(offer, i, &local)
		if err == nil {
			chosen, mine = i, m
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if chosen < 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w among %d m= lines", ErrNoMSRP, len(offer.Media))
		}
		return nil, fmt.Errorf("sdp: %w: %w", ErrNotAcceptable, firstErr)
	}
	ans := newSession(local.Origin, local.Address, mine.Local().Host)
	ans.Timing = copyTiming(offer.Timing)
	ans.Media = make([]*Media, len(offer.Media))
	for i, md := range offer.Media {
		if i == chosen {
			ans.Media[i] = mine.Media()
			continue
		}
		ans.Media[i] = &Media{Type: md.Type, Proto: md.Proto, Formats: slices.Clone(md.Formats)}
	}
	return ans, nil
}

// answerMedia judges offer stream i and builds the gateway's side of it.
func answerMedia(offer *Session, i int, local *AnswerOptions) (MSRPMedia, error) {
	theirs, err := offer.msrp(i)
	if err != nil {
		return MSRPMedia{}, err
	}
	path := local.Path
	if theirs.TLS() {
		path = local.TLSPath
	}
	if len(path) == 0 {
		return MSRPMedia{}, fmt.Errorf("m-line %d: %w: %s", i+1, ErrTransport, theirs.Proto)
	}
	if err := theirs.usable(); err != nil {
		return MSRPMedia{}, fmt.Errorf("m-line %d: %w", i+1, err)
	}
	accept, wrapped, err := negotiateTypes(&theirs, local.AcceptTypes, local.AcceptWrappedTypes)
	if err != nil {
		return MSRPMedia{}, fmt.Errorf("m-line %d: %w", i+1, err)
	}
	mine := MSRPMedia{
		Proto:              theirs.Proto,
		Path:               slices.Clone(path),
		AcceptTypes:        accept,
		AcceptWrappedTypes: wrapped,
		MaxSize:            local.MaxSize,
		Direction:          theirs.Direction.Reverse(),
	}
	switch theirs.Setup {
	case "", SetupActive:
		mine.Setup = SetupPassive
	case SetupPassive:
		mine.Setup = SetupActive
	case SetupActPass:
		mine.Setup = local.Setup
	case SetupHoldConn:
		mine.Setup = SetupHoldConn
	}
	if theirs.Connection != "" {
		mine.Connection = ConnectionNew
	}
	if mine.TLS() {
		mine.Fingerprints = slices.Clone(local.Fingerprints)
	}
	mine.Port = portFor(mine.Setup, mine.Local())
	return mine, nil
}

// usable checks what an MSRP stream needs whichever side wrote it.
func (m *MSRPMedia) usable() error {
	if len(m.Path) == 0 {
		return ErrNoPath
	}
	if own := m.Local(); own.Secure != m.TLS() {
		return fmt.Errorf("%w: %s with path %s", ErrTransport, m.Proto, own)
	}
	if m.TLS() && len(m.Fingerprints) == 0 {
		return ErrNoFingerprint
	}
	return nil
}

// negotiateTypes intersects their accept lists with ours. When their
// offer lists no accept-wrapped-types, ours are answered as they are:
// RFC 4975 would read the absence as "only accept-types inside a
// wrapper", but clients that leave it out do send CPIM with text inside,
// and what matters to the gateway is what it will receive.
func negotiateTypes(theirs *MSRPMedia, accept, wrapped []string) ([]string, []string, error) {
	if len(theirs.AcceptTypes) == 0 {
		return nil, nil, fmt.Errorf("%w: no a=accept-types", ErrNoAcceptableType)
	}
	top := Intersect(theirs.AcceptTypes, accept)
	if len(top) == 0 {
		return nil, nil, fmt.Errorf("%w: offered %s, accepted %s", ErrNoAcceptableType,
			strings.Join(theirs.AcceptTypes, " "), strings.Join(accept, " "))
	}
	if !slices.ContainsFunc(top, isWrapper) {
		return top, nil, nil
	}
	if len(theirs.AcceptWrappedTypes) == 0 {
		return top, slices.Clone(wrapped), nil
	}
	// Their wrapped list adds to their accept-types (RFC 4975 section
	// 8.6): anything they take bare they take wrapped too.
	theirWrapped := slices.Concat(theirs.AcceptWrappedTypes, slices.DeleteFunc(slices.Clone(theirs.AcceptTypes), isWrapper))
	in := Intersect(theirWrapped, wrapped)
	if len(in) == 0 && !slices.ContainsFunc(top, func(t string) bool { return !isWrapper(t) }) {
		return nil, nil, fmt.Errorf("%w: message/cpim only, wrapping %s, accepted inside %s", ErrNoAcceptableType,
			strings.Join(theirs.AcceptWrappedTypes, " "), strings.Join(wrapped, " "))
	}
	return top, in, nil
}

// portFor is the m= port: the own URI's, or 9 (discard) when this side
// only connects out (RFC 4145 section 4).
func portFor(setup Setup, own msrp.URI) int {
	if setup == SetupActive {
		return 9
	}
	return own.Port
}

func newSession(o Origin, address, ownHost string) *Session {
	if address == "" {
		address = ownHost
	}
	addrType := "IP4"
	if a, err := netip.ParseAddr(address); err == nil && a.Is6() {
		addrType = "IP6"
	}
	if o.Username == "" {
		o.Username = "-"
	}
	if o.SessionID == "" {
		o.SessionID = strconv.FormatUint(rand.Uint64()>>1, 10)
		if o.SessionVersion == "" {
			o.SessionVersion = o.SessionID
		}
	}
	if o.SessionVersion == "" {
		o.SessionVersion = "1"
	}
	if o.NetType == "" {
		o.NetType = "IN"
	}
	if o.AddrType == "" {
		o.AddrType = addrType
	}
	if o.Address == "" {
		o.Address = address
	}
	return &Session{
		Origin:     o,
		Name:       "-",
		Connection: &Connection{NetType: "IN", AddrType: addrType, Address: address},
	}
}

func copyTiming(ts []Timing) []Timing {
	if len(ts) == 0 {
		return []Timing{{}}
	}
	out := make([]Timing, len(ts))
	for i, t := range ts {
		out[i] = Timing{Start: t.Start, Stop: t.Stop, Repeats: slices.Clone(t.Repeats)}
	}
	return out
}

// Mode is the kind of session an offer opens.
type Mode int

const (
	// ModeChat is a one-to-one or group chat session: sendrecv.
	ModeChat Mode = iota
	// ModeLargeMessage is RCS large message mode (and the shape of a
	// deferred delivery): one message sent, nothing received: sendonly.
	ModeLargeMessage
)

// OfferOptions is what the gateway offers an outgoing MSRP session with.
type OfferOptions struct {
	// Mode says the direction: ModeChat sendrecv, ModeLargeMessage
	// sendonly.
	Mode Mode
	// Path is the gateway's a=path: relays first, its own URI last. An
	// msrps:// own URI offers TCP/TLS/MSRP, msrp:// TCP/MSRP.
	Path []msrp.URI
	// Fingerprints of the gateway's certificate; required for TLS.
	Fingerprints []msrp.Fingerprint
	// Setup is SetupActPass (default), SetupPassive or SetupActive.
	Setup Setup
	// AcceptTypes and AcceptWrappedTypes: nil means the defaults.
	AcceptTypes        []string
	AcceptWrappedTypes []string
	// MaxSize is written as a=max-size when positive.
	MaxSize int64
	// Origin and Address as in AnswerOptions.
	Origin  Origin
	Address string
	// Attributes are added to the media description after the MSRP ones
	// (a=file-selector and the like).
	Attributes []Attribute
}

// Defaults fills what was left zero.
func (o *OfferOptions) Defaults() {
	if o.AcceptTypes == nil {
		o.AcceptTypes = DefaultAcceptTypes()
	}
	if o.AcceptWrappedTypes == nil {
		o.AcceptWrappedTypes = DefaultAcceptWrappedTypes()
	}
	if o.Setup == "" {
		o.Setup = SetupActPass
	}
}

// Validate checks filled options, naming the field at fault.
func (o OfferOptions) Validate() error {
	var errs []error
	if len(o.Path) == 0 {
		errs = append(errs, errors.New("sdp: offer options: path: empty"))
	} else {
		secure := o.Path[len(o.Path)-1].Secure
		errs = append(errs, validatePath("offer options: path", o.Path, secure))
		if secure && len(o.Fingerprints) == 0 {
			errs = append(errs, errors.New("sdp: offer options: fingerprints: none, and an msrps path needs one"))
		}
	}
	errs = append(errs, validateCommon("offer", o.Fingerprints, o.AcceptTypes, o.AcceptWrappedTypes, o.MaxSize))
	switch o.Setup {
	case SetupActPass, SetupPassive, SetupActive:
	default:
		errs = append(errs, fmt.Errorf("sdp: offer options: setup: %q is not actpass, passive or active", o.Setup))
	}
	if o.Mode != ModeChat && o.Mode != ModeLargeMessage {
		errs = append(errs, fmt.Errorf("sdp: offer options: mode: unknown %d", o.Mode))
	}
	return errors.Join(errs...)
}

// Offer builds the offer of an outgoing MSRP session: one m=message
// stream with the gateway's path, accept lists, a=setup (actpass unless
// configured), a=connection:new as RCS clients write it, the mode's
// direction, a=fingerprint for TLS, t=0 0.
func Offer(opts OfferOptions) (*Session, error) {
	opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := MSRPMedia{
		Path:               slices.Clone(opts.Path),
		AcceptTypes:        slices.Clone(opts.AcceptTypes),
		AcceptWrappedTypes: slices.Clone(opts.AcceptWrappedTypes),
		MaxSize:            opts.MaxSize,
		Setup:              opts.Setup,
		Connection:         ConnectionNew,
		Direction:          SendRecv,
		Other:              slices.Clone(opts.Attributes),
	}
	m.Proto = ProtoMSRP
	if m.Local().Secure {
		m.Proto = ProtoMSRPTLS
		m.Fingerprints = slices.Clone(opts.Fingerprints)
	}
	if opts.Mode == ModeLargeMessage {
		m.Direction = SendOnly
	}
	if !slices.ContainsFunc(m.AcceptTypes, isWrapper) {
		m.AcceptWrappedTypes = nil
	}
	m.Port = portFor(m.Setup, m.Local())
	s := newSession(opts.Origin, opts.Address, m.Local().Host)
	s.Timing = []Timing{{}}
	s.Media = []*Media{m.Media()}
	return s, nil
}

// Party is which side of an offer/answer exchange the gateway was.
type Party int

const (
	Offerer Party = iota
	Answerer
)

// Negotiated is the outcome of an offer/answer exchange for the MSRP
// stream both sides kept.
type Negotiated struct {
	// Index is the stream's m= line (counted from 0).
	Index int
	// Local is the gateway's side as it wrote it, Remote the peer's.
	Local, Remote MSRPMedia
	// Active: the gateway opens the connection (to its first relay if its
	// path has one, else to the first URI of Remote.Path). Otherwise it
	// waits for the peer to connect, unless Hold.
	Active bool
	// Hold: both sides said holdconn; nobody connects yet.
	Hold bool
	// CEMA: both sides wrote a=msrp-cema (RFC 6714).
	CEMA bool
}

// SessionConfig is what the exchange decides of an msrp.SessionConfig:
// Local is the gateway's own URI; Remote is the To-Path of what it sends,
// its own relays (RFC 4976) then the peer's whole path, so that the
// connection goes to its first relay when it has one; Active; the peer's
// first fingerprint when TLS; CEMA. The caller adds the handler, report
// settings and chunk size.
func (n Negotiated) SessionConfig() msrp.SessionConfig {
	relays := n.Local.Path[:len(n.Local.Path)-1]
	cfg := msrp.SessionConfig{
		Local:  n.Local.Local(),
		Remote: slices.Concat(relays, n.Remote.Path),
		Active: n.Active,
		CEMA:   n.CEMA,
	}
	if n.Local.TLS() && len(n.Remote.Fingerprints) > 0 {
		cfg.Fingerprint = n.Remote.Fingerprints[0].String()
	}
	return cfg
}

// Negotiate reads the outcome of an exchange: the first MSRP stream the
// answer accepted, both sides' views of it, and who connects (RFC 4145:
// no a=setup is active in an offer and passive in an answer). It refuses
// an answer that does not pair with the offer: a different number of m=
// lines, no accepted MSRP stream, another transport, setup values that do
// not pair, no path, no accept-types, no fingerprint for TLS.
func Negotiate(offer, answer *Session, us Party) (Negotiated, error) {
	if len(offer.Media) != len(answer.Media) {
		return Negotiated{}, fmt.Errorf("sdp: %w: %d m= lines offered, %d answered", ErrMismatch, len(offer.Media), len(answer.Media))
	}
	idx := -1
	for i := range offer.Media {
		if offer.Media[i].IsMSRP() && offer.Media[i].Port != 0 && answer.Media[i].Port != 0 {
			idx = i
			break
		}
	}
	if idx < 0 {
		return Negotiated{}, fmt.Errorf("sdp: %w", ErrRejected)
	}
	off, err := offer.msrp(idx)
	if err != nil {
		return Negotiated{}, fmt.Errorf("sdp: offer: %w", err)
	}
	ans, err := answer.msrp(idx)
	if err != nil {
		return Negotiated{}, fmt.Errorf("sdp: answer: %w", err)
	}
	if off.Proto != ans.Proto {
		return Negotiated{}, fmt.Errorf("sdp: m-line %d: %w: %s offered, %s answered", idx+1, ErrMismatch, off.Proto, ans.Proto)
	}
	for _, side := range []struct {
		name string
		m    *MSRPMedia
	}{{"offer", &off}, {"answer", &ans}} {
		if err := side.m.usable(); err != nil {
			return Negotiated{}, fmt.Errorf("sdp: %s m-line %d: %w", side.name, idx+1, err)
		}
		if len(side.m.AcceptTypes) == 0 {
			return Negotiated{}, fmt.Errorf("sdp: %s m-line %d: %w: no a=accept-types", side.name, idx+1, ErrNoAcceptableType)
		}
	}
	os, as := off.Setup, ans.Setup
	if os == "" {
		os = SetupActive
	}
	if as == "" {
		as = SetupPassive
	}
	n := Negotiated{Index: idx}
	var offererActive bool
	switch {
	case os == SetupHoldConn && as == SetupHoldConn:
		n.Hold = true
	case as == SetupPassive && (os == SetupActive || os == SetupActPass):
		offererActive = true
	case as == SetupActive && (os == SetupPassive || os == SetupActPass):
	default:
		return Negotiated{}, fmt.Errorf("sdp: m-line %d: %w: offer %s, answer %s", idx+1, ErrSetup, os, as)
	}
	_, offCEMA := off.Attr("msrp-cema")
	_, ansCEMA := ans.Attr("msrp-cema")
	n.CEMA = offCEMA && ansCEMA
	if us == Offerer {
		n.Local, n.Remote = off, ans
		n.Active = offererActive && !n.Hold
	} else {
		n.Local, n.Remote = ans, off
		n.Active = !offererActive && !n.Hold
	}
	return n, nil
}
