package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/sip/answers"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// Sessions a phone opens with INVITE (RCS chat, cpm.session, and large
// message mode, cpm.largemsg) over TCP or TLS, when listen.msrp is set.
//
// The INVITE gets the trust check of a MESSAGE, then its SDP offer is
// answered with sip/sdp: our a=path is msrp://<listen.msrp>/<new
// session-id>;tcp, passive unless the phone asked us to connect (it
// offered a=setup:passive: we connect to its a=path once the 200 was
// ACKed, connectSession), and we
// accept CPIM carrying text, IMDNs and FT-HTTP descriptors. A TCP/TLS/MSRP
// offer, with listen.msrps set, is answered msrps://<listen.msrps>/...
// with the a=fingerprint of our certificate, and sip/msrp binds the
// session only to a TLS connection whose certificate matches the phone's
// a=fingerprint: any other is refused 403, which ends the MSRP session,
// and so the dialog with our BYE at once. Without listen.msrps, or without the phone's
// a=fingerprint, it gets 488.
//
// The dialog is sipgo's DialogServerCache until the 200 was ACKed: the
// 200 is retransmitted until the ACK over unreliable transports (only TCP
// and TLS reach here), a CANCEL before the 200 gets sipgo's 487. Then the edge
// keeps only what a BYE either way needs (sessionDialog) and lets sipgo's
// dialog go; a session has no goroutine of its own. Each MSRP message of
// the session goes through cpimBody, as a MESSAGE's body does, and its
// last chunk is answered after the gateway returned.
//
// With sessions.outbound: chat, the gateway's messages to the phone in the
// session's conversation go in the session too (chat.go), unless it is
// large message mode or the phone's offer said sendonly: the session is
// indexed by conversation (chatTable.phones) until it ends.
//
// A session ends with a BYE from us when its MSRP side does not bind
// within bindTimeout (or our connection to a passive phone fails), when
// its MSRP connection is lost, when no message went either way for
// sessions.idle_timeout, when no ACK came for the 200, or when the edge
// shuts down. Session-Expires is accepted and ignored: the 200 carries
// none and "timer" is not Supported, so nobody needs to refresh (RFC 4028
// section 7.2); an UPDATE without a body is answered 200 all the same, and
// a re-INVITE or an UPDATE with an offer as reoffer says. The idle timeout
// stands in for the session timer: a phone gone behind a relay or an SBC
// that keeps the TCP connections up would otherwise hold its sessions for
// ever. It costs a timer per session (idleSession), no goroutine.
//
// At most sessions.max_inbound sessions phones opened are open at once
// (from the INVITE that gets one to their end, e.inbound); past it an
// INVITE gets 503 with Retry-After, as when the edge is overloaded: the
// IMS core may try another instance, and RCS clients send the message by
// pager mode instead. 486 would say the called user is busy, which is not
// what is the matter.

// bindTimeout is how long a session waits for its MSRP connection (tests
// shorten Edge.bindTimeout).
const bindTimeout = 30 * time.Second

// Media types accepted in sessions: CPIM at the top level, and inside it
// text, IMDNs and FT-HTTP descriptors.
var (
	sessionAcceptTypes        = []string{sdp.TypeCPIM}
	sessionAcceptWrappedTypes = []string{sdp.TypeText, sdp.TypeIMDN, sdp.TypeFTHTTP}
)

// listenMSRP binds listen.msrp, and listen.msrps when set (tl is nil
// otherwise), and starts the pool that runs the sessions on both.
func (e *Edge) listenMSRP() (l, tl net.Listener, err error) {
	a, as := e.cfg.Listen.MSRP, e.cfg.Listen.MSRPS
	pcfg := msrp.Config{Logger: e.log.With("proto", "msrp")}
	var fp msrp.Fingerprint
	if as != "" {
		// Validate made sure tls.cert_file is set, so serverTLS is.
		cert := e.serverTLS.Certificates[0]
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, nil, fmt.Errorf("sip: msrps: tls.cert_file: %w", err)
		}
		if fp, err = msrp.FingerprintOf(leaf, "sha-256"); err != nil {
			return nil, nil, fmt.Errorf("sip: msrps: %w", err)
		}
		pcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	pool, err := msrp.NewPool(pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("sip: msrp: %w", err)
	}
	if l, err = net.Listen("tcp", a); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("sip: listen msrp %s: %w", a, err)
	}
	if as != "" {
		if tl, err = net.Listen("tcp", as); err != nil {
			pool.Close()
			l.Close()
			return nil, nil, fmt.Errorf("sip: listen msrps %s: %w", as, err)
		}
	}
	dialogs := sipgo.NewDialogServerCache(e.cli, e.dialogContact())
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pool = pool
	e.msrpHost, e.msrpPort = e.uriHostPort(a, l.Addr())
	e.dialogs = dialogs
	e.bound["msrp"] = l.Addr()
	if tl != nil {
		e.msrpsHost, e.msrpsPort = e.uriHostPort(as, tl.Addr())
		e.msrpsFP = fp
		e.bound["msrps"] = tl.Addr()
	}
	return l, tl, nil
}

// outboundMSRP is what a session the edge opens toward a phone starts
// from: the pool, our a=path, the fingerprints the offer carries, the
// relay the session goes through (nil for none), and the offer's a=setup:
// actpass, or active through a relay, which has no way to a phone that
// connects to it, so the phone must listen (or be behind a relay of its
// own).
type outboundMSRP struct {
	pool  *msrp.Pool
	path  []msrp.URI
	fps   []msrp.Fingerprint
	relay *msrp.Relay
	setup sdp.Setup
}

// outboundLocal is the start of a session the edge opens toward a phone:
// msrps on listen.msrps with the fingerprint of our certificate when
// sessions.msrps asks for it (Validate made sure listen.msrps is set),
// else msrp on listen.msrp, through sessions.relay when it is set; our
// URI has a new session-id. The pool is nil without listen.msrp; the
// error is the relay's, when it cannot be reached.
func (e *Edge) outboundLocal(ctx context.Context) (outboundMSRP, error) {
	e.mu.Lock()
	pool := e.pool
	if e.cfg.Sessions.MSRPS {
		local := msrp.URI{Secure: true, Host: e.msrpsHost, Port: e.msrpsPort, SessionID: msrp.NewSessionID(), Transport: "tcp"}
		e.mu.Unlock()
		return outboundMSRP{pool: pool, path: []msrp.URI{local}, fps: []msrp.Fingerprint{e.msrpsFP}}, nil
	}
	local := msrp.URI{Host: e.msrpHost, Port: e.msrpPort, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	e.mu.Unlock()
	if pool == nil {
		return outboundMSRP{}, nil
	}
	relay, err := e.relayFor(ctx)
	if err != nil {
		return outboundMSRP{}, err
	}
	out := outboundMSRP{pool: pool, path: relayed(relay, local), relay: relay}
	if relay != nil {
		out.setup = sdp.SetupActive
	}
	return out, nil
}

// relayed is the a=path of a session with our URI local: the relay's
// Use-Path first, when there is one.
func relayed(r *msrp.Relay, local msrp.URI) []msrp.URI {
	if r == nil {
		return []msrp.URI{local}
	}
	return append(r.UsePath(), local)
}

// relayFor is sessions.relay for a new session, nil without one: the
// relay as the edge AUTHed to it, or, when that AUTH ended (its
// connection lost, a refresh refused), AUTHed again, within
// timeouts.request.
func (e *Edge) relayFor(ctx context.Context) (*msrp.Relay, error) {
	if e.cfg.Sessions.Relay == "" {
		return nil, nil
	}
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	if e.relay != nil && e.relay.Err() == nil {
		return e.relay, nil
	}
	u, _ := msrp.ParseURI(e.cfg.Sessions.Relay) // checked by Validate
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Request)
	defer cancel()
	r, err := e.pool.Auth(ctx, msrp.RelayConfig{URI: u})
	if err != nil {
		return nil, fmt.Errorf("sip: msrp relay %s: %w", e.cfg.Sessions.Relay, err)
	}
	e.relay = r
	e.log.Info("sip: msrp relay AUTHed", "relay", e.cfg.Sessions.Relay, "use_path", msrp.FormatPath(r.UsePath()))
	return r, nil
}

// uriHostPort is the host and port of our MSRP URIs on a listener bound to
// addr as configured: the configured host unless it is unspecified (then
// the advertised one), the bound port.
func (e *Edge) uriHostPort(configured string, bound net.Addr) (string, int) {
	host := e.advHost
	if h, _, _ := net.SplitHostPort(configured); h != "" && !net.ParseIP(h).IsUnspecified() {
		host = h
	}
	_, port, _ := net.SplitHostPort(bound.String())
	n, _ := strconv.Atoi(port)
	return host, n
}

// dialogRequest handles INVITE, ACK, UPDATE and BYE over TCP and TLS when
// sessions are on. It reports false for a request it leaves to serve.
func (e *Edge) dialogRequest(req *sip.Request, tx sip.ServerTransaction) bool {
	switch {
	case req.IsAck():
		// The ACK of a 2xx: it confirms the dialog. An ACK of anything else
		// matched its INVITE's transaction and never comes here.
		_ = e.dialogs.ReadAck(req, tx)
		return true
	case req.IsInvite():
		if d := e.answeredDialog(req); d != nil {
			e.reoffer(d, req, tx) // a re-INVITE
		} else if _, err := e.dialogs.MatchDialogRequest(req); err == nil {
			e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
			if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
				e.respond(req, tx, *refuse, "")
			} else {
				e.respond(req, tx, requestPending, "")
			}
		} else if !e.chatDialogRequest(req, tx) {
			e.invite(req, tx)
		}
		return true
	case (req.Method == sip.UPDATE || req.Method == sip.BYE) && e.chatDialogRequest(req, tx):
		// In the dialog of a chat session the edge opened (chat.go).
		return true
	case req.Method == sip.UPDATE:
		// A session refresh some clients send although our 200 carried no
		// Session-Expires: 200 without a body keeps the session as it is;
		// one with an offer is answered by reoffer.
		d := e.answeredDialog(req)
		if d != nil && len(req.Body()) > 0 {
			e.reoffer(d, req, tx)
			return true
		}
		if _, err := e.dialogs.MatchDialogRequest(req); err != nil && d == nil {
			return false
		}
		e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
		if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
			e.respond(req, tx, *refuse, "")
		} else if len(req.Body()) > 0 {
			e.respond(req, tx, requestPending, "")
		} else {
			e.respond(req, tx, answers.Answer{Status: 200}, "")
		}
		return true
	case req.Method == sip.BYE:
		// sipgo's dialog first: watchSession stores the sessionDialog
		// before it lets sipgo's go, so one of the two has the dialog.
		dlg, err := e.dialogs.MatchDialogRequest(req)
		if err != nil {
			return e.sessionBye(req, tx) // or 481 from serve, after the trust check
		}
		if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
			e.respond(req, tx, *refuse, "")
			return true
		}
		if err := dlg.ReadBye(req, tx); err != nil {
			// A CSeq below the INVITE's; the 200 was not sent.
			e.respond(req, tx, answers.Answer{Status: 400, Reason: reasonPhrase("Bad Request", err)}, "")
		}
		e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
		return true
	}
	return false
}

// respond answers req on tx outside of serve.
func (e *Edge) respond(req *sip.Request, tx sip.ServerTransaction, ans answers.Answer, tag string) {
	if tag == "" {
		tag = sip.GenerateTagN(12)
	}
	if err := tx.Respond(e.response(req, ans, tag)); err != nil {
		e.log.Warn("sip: write answer", "peer", req.Source(), "status", ans.Status, "err", err)
	}
	e.m.answers.WithLabelValues(methodLabel(string(req.Method)), codeLabel(ans.Status)).Inc()
}

// invite handles an INVITE that may open a session.
func (e *Edge) invite(req *sip.Request, tx sip.ServerTransaction) {
	e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
	ctx, ok := e.enter()
	if !ok {
		e.respond(req, tx, answers.Answer{Status: 503, Reason: "Service Unavailable: shutting down", RetryAfter: e.retryAfter()}, "")
		return
	}
	defer e.exit()
	defer func() {
		// As in serve: a panic in a body parser must not end the process.
		if r := recover(); r != nil {
			e.log.Error("sip: INVITE handling panicked", "peer", req.Source(), "panic", fmt.Sprint(r))
			e.respond(req, tx, answers.Answer{Status: 500, Reason: "Server Internal Error"}, "")
		}
	}()
	select {
	case e.slots <- struct{}{}:
	default:
		e.m.refused.WithLabelValues("overload").Inc()
		e.respond(req, tx, answers.Answer{Status: 503, Reason: "Service Unavailable: overloaded", RetryAfter: e.retryAfter()}, "")
		return
	}
	slot := true
	release := func() {
		if slot {
			<-e.slots
			slot = false
		}
	}
	defer release()
	if e.inbound.Add(1) > int64(e.cfg.Sessions.MaxInbound) {
		e.inbound.Add(-1)
		e.m.refused.WithLabelValues("sessions").Inc()
		e.respond(req, tx, answers.Answer{Status: 503, Reason: "Service Unavailable: too many sessions", RetryAfter: e.retryAfter()}, "")
		return
	}
	counted := true // until endSession takes it over
	defer func() {
		if counted {
			e.inbound.Add(-1)
		}
	}()

	sess, dlg, ans := e.openSession(ctx, req, tx)
	if sess == nil {
		e.respond(req, tx, ans.Answer, "")
		return
	}
	e.mu.Lock()
	hook := e.testHookInvite
	e.mu.Unlock()
	if hook != nil {
		hook(dlg.Context())
	}
	if dlg.Context().Err() != nil { // CANCEL: sipgo answered 487
		sess.Close()
		dlg.Close()
		return
	}
	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, ans.body)
	res.AppendHeader(sip.NewHeader("Contact", e.sessionContact(req)))
	res.AppendHeader(sip.NewHeader("Allow", allowedSessions))
	res.AppendHeader(sip.NewHeader("Server", "mimigw"))
	release() // waiting for the ACK holds no slot
	err := dlg.WriteResponse(res)
	e.m.answers.WithLabelValues(methodLabel(string(req.Method)), codeLabel(200)).Inc()
	e.sessions.Add(1)
	counted = false
	d := newSessionDialog(dlg, sess)
	d.replies, d.maxSize, d.inForce = ans.replies, ans.maxSize, offerAnswer{offered: ans.offered, answer: ans.body}
	e.watchSession(d, dlg, err)
}

// requestPending answers an offer in a session's dialog that comes while
// the session is being set up (its 200 not ACKed yet, or just ACKed and
// the session not yet kept): the phone makes it again after a while (RFC
// 3261 section 14.1).
var requestPending = answers.Answer{Status: 491, Reason: "Request Pending"}

// sessionAnswer is the 200's SDP, carried in an answers.Answer's place,
// and what our messages to the phone need of the session.
type sessionAnswer struct {
	answers.Answer
	body    []byte
	replies chatKey // see sessionDialog
	maxSize int64
	offered sessionOffer
}

// openSession checks an INVITE and sets up its MSRP session and dialog; on
// refusal it returns the answer and no session.
func (e *Edge) openSession(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (*msrp.Session, *sipgo.DialogServerSession, sessionAnswer) {
	refuse := func(a answers.Answer) (*msrp.Session, *sipgo.DialogServerSession, sessionAnswer) {
		return nil, nil, sessionAnswer{Answer: a}
	}
	who, deny := e.trust(req, e.streamPeer(req, tx))
	if deny != nil {
		return refuse(*deny)
	}
	if ext := required(req); ext != "" {
		// "Require: timer" included: we never refresh a session.
		return refuse(answers.Answer{Status: 420, Reason: "Bad Extension"})
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A re-INVITE of a dialog that is not (or no longer) here.
		return refuse(answers.Answer{Status: 481, Reason: "Call/Transaction Does Not Exist"})
	}
	from, err := e.senderNumber(req, who)
	if err != nil {
		return refuse(e.badRequest("identity", 400, err))
	}
	to, err := e.recipientNumber(req)
	if err != nil {
		return refuse(e.badRequest("identity", 400, err))
	}
	in := inbound{from: from, to: to}
	if h := req.GetHeader("Conversation-ID"); h != nil {
		in.conversationID = h.Value()
	}
	contentType := ""
	if ct := req.ContentType(); ct != nil {
		contentType = ct.Value()
	}
	body, parts, err := sdp.SplitInviteBody(contentType, req.Body())
	if errors.Is(err, sdp.ErrNoOffer) {
		return refuse(answers.Answer{Status: 488, Reason: "Not Acceptable Here: INVITE without an SDP offer"})
	} else if err != nil {
		return refuse(e.badRequest("multipart", 400, err))
	}
	offer, err := sdp.Parse(body)
	if err != nil {
		return refuse(answers.Answer{Status: 488, Reason: reasonPhrase("Not Acceptable Here", err)})
	}
	relay, err := e.relayFor(ctx)
	if err != nil {
		e.log.Warn("sip: session not set up", "err", err)
		return refuse(e.tryLater())
	}
	e.mu.Lock()
	id := msrp.NewSessionID()
	pool, local := e.pool, msrp.URI{Host: e.msrpHost, Port: e.msrpPort, SessionID: id, Transport: "tcp"}
	opts := sdp.AnswerOptions{
		Path:               relayed(relay, local),
		AcceptTypes:        sessionAcceptTypes,
		AcceptWrappedTypes: sessionAcceptWrappedTypes,
		MaxSize:            e.cfg.Sessions.MaxMessageSize,
	}
	if relay != nil {
		// Through our relay we connect (to it): actpass is answered
		// active, so that the phone need not reach us.
		opts.Setup = sdp.SetupActive
	}
	if e.msrpsPort != 0 {
		// A TCP/TLS/MSRP offer is answered on listen.msrps; without it
		// sdp.Answer refuses it (ErrTransport), and without the phone's
		// a=fingerprint too (ErrNoFingerprint).
		opts.TLSPath = []msrp.URI{{Secure: true, Host: e.msrpsHost, Port: e.msrpsPort, SessionID: id, Transport: "tcp"}}
		opts.Fingerprints = []msrp.Fingerprint{e.msrpsFP}
	}
	e.mu.Unlock()
	answer, err := sdp.Answer(offer, opts)
	if err == nil {
		var neg sdp.Negotiated
		if neg, err = sdp.Negotiate(offer, answer, sdp.Answerer); err == nil {
			if relay != nil && !neg.Local.TLS() && !neg.Active && len(neg.Remote.Path) == 1 {
				// The phone would connect to our relay, which has no way
				// back to it: frames toward a phone go by its a=path.
				e.m.badBodies.WithLabelValues("sdp").Inc()
				return refuse(answers.Answer{Status: 488, Reason: "Not Acceptable Here: a=setup:active; the gateway is behind an MSRP relay, offer actpass or passive"})
			}
			if a, ok := e.firstMessage(ctx, in, parts); !ok {
				return refuse(a)
			}
			cfg := neg.SessionConfig()
			cfg.Handler = e.sessionHandler(in)
			cfg.MaxMessage = e.cfg.Sessions.MaxMessageSize
			if !neg.Local.TLS() {
				cfg.Relay = relay // msrps sessions are direct
			}
			sess, err := pool.NewSession(cfg)
			if err != nil {
				e.log.Warn("sip: msrp session", "err", err)
				return refuse(e.tryLater())
			}
			dlg, err := e.dialogs.ReadInvite(req, tx)
			if err != nil {
				sess.Close()
				return refuse(e.badRequest("invite", 400, err))
			}
			ans := sessionAnswer{Answer: answers.Answer{Status: 200}, body: answer.Bytes(), maxSize: neg.Remote.MaxSize,
				offered: offerOf(len(offer.Media), neg.Remote)}
			if e.chatOn() && !largeMessage(req) && neg.Remote.Direction != sdp.SendOnly && neg.Remote.Direction != sdp.Inactive {
				// A chat session the phone also takes messages in.
				ans.replies = chatKey{from: to, to: from, conversation: in.conversationID}
			}
			return sess, dlg, ans
		}
	}
	if errors.Is(err, sdp.ErrNotAcceptable) || errors.Is(err, sdp.ErrNoMSRP) || errors.Is(err, sdp.ErrRejected) {
		e.m.badBodies.WithLabelValues("sdp").Inc()
		return refuse(answers.Answer{Status: 488, Reason: reasonPhrase("Not Acceptable Here", err)})
	}
	e.log.Error("sip: sdp answer", "err", err)
	return refuse(answers.Answer{Status: 500, Reason: "Server Internal Error"})
}

// firstMessage takes the chat's first message when it rides in the
// INVITE beside the offer (a message/cpim part, RCC.07): it is handed to
// the gateway as a message of the session would be, before the 200, so
// that the 200 means it is durable. A refusal, or the bus unable to take
// it, answers the INVITE instead (the phone sends it again). Other parts
// are ignored.
func (e *Edge) firstMessage(ctx context.Context, in inbound, parts []sdp.BodyPart) (answers.Answer, bool) {
	for _, p := range parts {
		if mediaType(p.ContentType) != sdp.TypeCPIM {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Receive)
		defer cancel()
		a := e.cpimBody(ctx, in, p.Body)
		return a, a.Status < 300
	}
	return answers.Answer{}, true
}

// sessionDialog is what the edge keeps of a session's dialog past its
// 200: what a BYE either way needs, as text. sipgo's dialog holds the
// INVITE twice (its transaction's and its own copy) and the 200, every
// header parsed, about 7 KB a session; it is let go once the 200 was
// ACKed or given up.
type sessionDialog struct {
	id        string // sipgo's dialog ID: Call-ID and both tags
	callID    string
	inviteSeq uint32   // the INVITE's CSeq; a BYE below it is refused
	target    string   // the phone's Contact URI, where our BYE goes
	headers   []string // our BYE's header lines from the dialog: From, To, Route
	transport string
	sess      *msrp.Session
	once      sync.Once   // the session ends once
	idle      *time.Timer // sessions.idle_timeout; set before d is shared, nil when the 200 got no ACK
	// replies is the conversation whose messages to the phone go in the
	// session while it lasts (chat.go, sessions.outbound: chat), indexed
	// in chatTable.phones; zero when the session does not carry them.
	replies chatKey
	maxSize int64       // the phone's a=max-size, 0 when none
	inForce offerAnswer // what a new offer in the dialog is answered by (reoffer)
}

// offerAnswer is what a session's dialog answers a phone's new offer by:
// what the offer must repeat for the session to go on unchanged, and our
// answer then.
type offerAnswer struct {
	offered sessionOffer
	answer  []byte
}

// sessionOffer is what an offer in a session's dialog must repeat for the
// session to go on as it is: the number of m= lines and the MSRP media's
// path, transport and direction.
type sessionOffer struct {
	media     int
	path      string
	tls       bool
	direction sdp.Direction
}

func offerOf(media int, m sdp.MSRPMedia) sessionOffer {
	o := sessionOffer{media: media, path: msrp.FormatPath(m.Path), tls: m.TLS(), direction: m.Direction}
	if o.direction == "" {
		o.direction = sdp.SendRecv
	}
	return o
}

// reofferOf reads an offer made in a session's dialog: its first MSRP
// media that is not rejected, as sdp.Answer picks it.
func reofferOf(body []byte) (sessionOffer, error) {
	offer, err := sdp.Parse(body)
	if err != nil {
		return sessionOffer{}, err
	}
	for i, md := range offer.Media {
		if !md.IsMSRP() || md.Port == 0 {
			continue
		}
		m, err := offer.MSRP(i)
		if err != nil {
			return sessionOffer{}, err
		}
		return offerOf(len(offer.Media), m), nil
	}
	return sessionOffer{}, fmt.Errorf("sdp: %w", sdp.ErrNoMSRP)
}

// reoffer answers an offer the phone makes in the dialog of a session
// past its 200: a re-INVITE, or an UPDATE with SDP. Clients send one to
// refresh the session (RFC 4028, as their own refresher) or to confirm
// it. An offer of the same session gets the answer it got before, byte
// for byte (RFC 3264 section 8: an unchanged answer keeps its o=
// version); a re-INVITE without a body gets it as our offer, and the
// answer in its ACK is not read. Any change (another MSRP endpoint, a
// hold) gets 488, and the session goes on as it was.
func (e *Edge) reoffer(d *sessionDialog, req *sip.Request, tx sip.ServerTransaction) {
	e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
	if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
		e.respond(req, tx, *refuse, "")
		return
	}
	if cseq := req.CSeq(); cseq == nil || cseq.SeqNo < d.inviteSeq {
		// RFC 3261 section 12.2.2: a CSeq out of order gets 500.
		e.respond(req, tx, answers.Answer{Status: 500, Reason: "Server Internal Error: CSeq below the INVITE's"}, "")
		return
	}
	e.answerOffer(req, tx, d.inForce)
}

// answerOffer answers a new offer in a session's dialog (or a re-INVITE
// without one) by what is in force: 200 with its answer when the offer
// repeats the session, else 488.
func (e *Edge) answerOffer(req *sip.Request, tx sip.ServerTransaction, in offerAnswer) {
	if body := req.Body(); len(body) > 0 {
		if ct := req.ContentType(); ct == nil || mediaType(ct.Value()) != sdp.ContentType {
			e.respond(req, tx, answers.Answer{Status: 488, Reason: "Not Acceptable Here: the offer is not SDP"}, "")
			return
		}
		got, err := reofferOf(body)
		if err != nil {
			e.m.badBodies.WithLabelValues("sdp").Inc()
			e.respond(req, tx, answers.Answer{Status: 488, Reason: reasonPhrase("Not Acceptable Here", err)}, "")
			return
		}
		if got != in.offered {
			e.respond(req, tx, answers.Answer{Status: 488, Reason: "Not Acceptable Here: session changes not supported"}, "")
			return
		}
	}
	res := sip.NewSDPResponseFromRequest(req, in.answer)
	if req.IsInvite() {
		res.AppendHeader(sip.NewHeader("Contact", e.sessionContact(req)))
	}
	res.AppendHeader(sip.NewHeader("Allow", allowedSessions))
	res.AppendHeader(sip.NewHeader("Server", "mimigw"))
	if err := tx.Respond(res); err != nil {
		e.log.Warn("sip: write answer", "peer", req.Source(), "status", 200, "err", err)
	}
	e.m.answers.WithLabelValues(methodLabel(string(req.Method)), codeLabel(200)).Inc()
}

// newSessionDialog takes what sessionDialog keeps from a dialog whose
// 200 was written (sipgo's ReadInvite checked that Call-ID, From, To,
// CSeq and Contact are there).
func newSessionDialog(dlg *sipgo.DialogServerSession, sess *msrp.Session) *sessionDialog {
	inv := dlg.InviteRequest
	from, to := dlg.InviteResponse.To().AsFrom(), inv.From().AsTo()
	d := &sessionDialog{
		id:        dlg.ID,
		callID:    inv.CallID().Value(),
		inviteSeq: inv.CSeq().SeqNo,
		target:    inv.Contact().Address.String(),
		headers:   []string{"From: " + from.Value(), "To: " + to.Value()},
		transport: inv.Transport(),
		sess:      sess,
	}
	for _, rr := range inv.GetHeaders("Record-Route") {
		d.headers = append(d.headers, "Route: "+rr.Value())
	}
	return d
}

// watchSession ties a session to its dialog after the 200, with no
// goroutine while both last: a BYE from the phone ends the MSRP session,
// and the edge sends BYE when the MSRP side never bound, when it ended
// (connection lost, edge shutting down), when it was idle for
// sessions.idle_timeout or when the 200 got no ACK (writeErr). sipgo's
// dialog is let go here, after d is stored: the session's BYE and UPDATE
// find d from now on. When the phone offered a=setup:passive, we connect
// (connectSession): the 200 was ACKed by now.
func (e *Edge) watchSession(d *sessionDialog, dlg *sipgo.DialogServerSession, writeErr error) {
	if writeErr == nil {
		e.idleSession(d)
	}
	e.chats.addPhoneSession(d) // before anything can end it
	e.answered.Store(d.id, d)
	// A BYE that sipgo's dialog took before this.
	context.AfterFunc(dlg.Context(), func() { e.endSession(d, "") })
	dlg.Close()
	if writeErr != nil {
		go e.endSession(d, "no ACK") // the INVITE's handler does not wait for the BYE
		return
	}
	e.mu.Lock()
	wait := e.bindTimeout
	e.mu.Unlock()
	context.AfterFunc(d.sess.Context(), func() { e.endSession(d, "msrp session ended") })
	time.AfterFunc(wait, func() {
		if !d.sess.Bound() {
			e.endSession(d, "msrp not bound")
		}
	})
	if d.sess.Active() {
		go e.connectSession(d, wait)
	}
}

// connectSession connects the MSRP side of a session in which the phone
// is passive and binds it (msrp.Session.Connect: the binding SEND, and
// the phone's certificate checked against its a=fingerprint for msrps),
// within wait; the goroutine ends with it. On failure the session ends
// with our BYE.
func (e *Edge) connectSession(d *sessionDialog, wait time.Duration) {
	ctx, cancel := context.WithTimeout(d.sess.Context(), wait)
	defer cancel()
	if err := d.sess.Connect(ctx); err != nil {
		e.endSession(d, "msrp connect: "+err.Error())
	}
}

// idleSession sets d.idle: a timer that ends the session with our BYE
// once no message went either way in it for sessions.idle_timeout
// (msrp.Session.LastActivity). Traffic does not touch the timer: when it
// fires and a message went since it was set, it is set again for what is
// left. It is made stopped and only then started, so that its callback,
// which reads d.idle, runs after d.idle is set.
func (e *Edge) idleSession(d *sessionDialog) {
	limit := e.cfg.Sessions.IdleTimeout
	d.idle = time.AfterFunc(limit, func() {
		if d.sess.Context().Err() != nil {
			return // ended meanwhile
		}
		if left := limit - time.Since(d.sess.LastActivity()); left > 0 {
			d.idle.Reset(left)
			return
		}
		e.endSession(d, "idle for "+limit.String())
	})
	d.idle.Stop()
	d.idle.Reset(limit)
}

// endSession ends a session and its dialog, once, with a BYE from us
// unless the phone's BYE ended it (why is empty).
func (e *Edge) endSession(d *sessionDialog, why string) {
	d.once.Do(func() {
		defer e.sessions.Done()
		e.inbound.Add(-1)
		if d.idle != nil {
			d.idle.Stop()
		}
		e.answered.CompareAndDelete(d.id, d)
		e.chats.dropPhoneSession(d)
		d.sess.Close()
		if why == "" {
			return
		}
		e.log.Info("sip: ending session", "reason", why, "call_id", d.callID)
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request)
		defer cancel()
		if err := e.sessionByeOut(ctx, d); err != nil {
			e.log.Info("sip: BYE", "call_id", d.callID, "err", err)
		}
	})
}

// answeredDialog is the session dialog a request is in, or nil.
func (e *Edge) answeredDialog(req *sip.Request) *sessionDialog {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	if d, ok := e.answered.Load(id); ok {
		return d.(*sessionDialog)
	}
	return nil
}

// sessionBye answers a phone's BYE in a session dialog past its 200 and
// ends the session; false when req is in no such dialog.
func (e *Edge) sessionBye(req *sip.Request, tx sip.ServerTransaction) bool {
	d := e.answeredDialog(req)
	if d == nil {
		return false
	}
	e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
	if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
		e.respond(req, tx, *refuse, "")
		return true
	}
	if cseq := req.CSeq(); cseq == nil || cseq.SeqNo < d.inviteSeq {
		e.respond(req, tx, answers.Answer{Status: 400, Reason: "Bad Request: CSeq below the INVITE's"}, "")
		return true
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
		e.log.Warn("sip: write answer", "peer", req.Source(), "status", 200, "err", err)
	}
	e.endSession(d, "")
	return true
}

// sessionByeOut sends our BYE in d and waits for its final answer.
func (e *Edge) sessionByeOut(ctx context.Context, d *sessionDialog) error {
	var target sip.Uri
	if err := sip.ParseUri(d.target, &target); err != nil {
		return err
	}
	bye := sip.NewRequest(sip.BYE, target)
	parser := sip.HeadersParser(sip.DefaultHeadersParser())
	var hs []sip.Header
	for _, line := range d.headers {
		var err error
		if hs, err = parser.ParseHeader(hs, []byte(line)); err != nil {
			return err
		}
	}
	callID := sip.CallIDHeader(d.callID)
	maxForwards := sip.MaxForwardsHeader(70)
	contact := e.dialogContact()
	hs = append(hs, &callID, &maxForwards, &sip.CSeqHeader{SeqNo: d.inviteSeq + 1, MethodName: sip.BYE}, &contact)
	for _, h := range hs {
		bye.AppendHeader(h)
	}
	if route := bye.Route(); route != nil {
		bye.SetDestination(route.Address.HostPort())
	}
	bye.SetTransport(d.transport)
	tx, err := e.cli.TransactionRequest(ctx, bye, func(c *sipgo.Client, r *sip.Request) error {
		r.SetBody(nil) // Content-Length: 0
		return sipgo.ClientRequestAddVia(c, r)
	})
	if err != nil {
		return err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if res.StatusCode != 200 {
				return fmt.Errorf("BYE answered %d %s", res.StatusCode, res.Reason)
			}
			return nil
		case <-tx.Done():
			return tx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dialogContact is our Contact in the dialogs of sessions.
func (e *Edge) dialogContact() sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: e.advHost, Port: e.advertisedPort("tcp")}}
}

// sessionHandler takes the MSRP messages of a session: CPIM goes to the
// gateway as a MESSAGE's body does, bare isComposing is dropped, anything
// else is refused 415. Its answer becomes the response to the last chunk.
func (e *Edge) sessionHandler(in inbound) msrp.Handler {
	return func(ctx context.Context, m *msrp.Message) (err error) {
		defer func() {
			if r := recover(); r != nil {
				e.log.Error("sip: MSRP message handling panicked", "panic", fmt.Sprint(r))
				err = &msrp.StatusError{Code: 403, Comment: "internal error"}
			}
		}()
		if _, ok := e.enter(); !ok {
			return &msrp.StatusError{Code: 408, Comment: "shutting down"}
		}
		defer e.exit()
		switch mediaType(m.ContentType) {
		case sdp.TypeCPIM:
		case typeIsComposing:
			e.m.isComposing.Inc()
			return nil
		default:
			e.m.badBodies.WithLabelValues("media_type").Inc()
			return &msrp.StatusError{Code: 415}
		}
		ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Receive)
		defer cancel()
		return msrpError(e.cpimBody(ctx, in, m.Body))
	}
}

// msrpError maps the answer a MESSAGE would get to the MSRP response
// (RFC 4975 section 10 has no 503): "try again" becomes 408, which the phone
// does not take as delivered, a refusal 403, and 400, 413 and 415 stay.
func msrpError(a answers.Answer) error {
	switch a.Status {
	case 200, 202:
		return nil
	case 400, 413, 415:
		return &msrp.StatusError{Code: int(a.Status), Comment: a.Reason}
	case 503:
		return &msrp.StatusError{Code: 408, Comment: "try again later"}
	}
	return &msrp.StatusError{Code: 403, Comment: a.Reason}
}

// sessionContact is the Contact of a session's 200: the called number at
// our address, with the ICSI the phone asked for.
func (e *Edge) sessionContact(req *sip.Request) string {
	transport := strings.ToLower(req.Transport())
	u := sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: e.advHost, Port: e.advertisedPort(transport)}
	if transport != "udp" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	icsi := icsiSession
	if largeMessage(req) {
		icsi = icsiLargeMsg
	}
	return "<" + u.String() + ">;" + tagICSI + `="` + encodeURN(icsi) + `"`
}

// largeMessage reports whether an INVITE opens a large message mode session
// (cpm.largemsg in Accept-Contact or Contact). Both kinds are handled the
// same way; only our Contact's ICSI differs.
func largeMessage(req *sip.Request) bool {
	for _, name := range []string{"Accept-Contact", "Contact"} {
		for _, h := range req.GetHeaders(name) {
			if strings.Contains(h.Value(), "cpm.largemsg") {
				return true
			}
		}
	}
	return false
}

// allowedSessions is our Allow when sessions are on.
const allowedSessions = "INVITE, ACK, CANCEL, BYE, UPDATE, MESSAGE, OPTIONS"

// ourSessionTags are the feature tags of our OPTIONS Contact when sessions
// are on: pager mode, chat and large message mode, file transfer via HTTP.
var ourSessionTags = ";" + tagICSI + `="` + encodeURN(icsiMsg) + "," + encodeURN(icsiSession) + "," + encodeURN(icsiLargeMsg) + `";` +
	tagIARI + `="` + encodeURN(iariFTHTTP) + `"`

// required is the option tags of an INVITE's Require headers, none of which
// the edge supports (RFC 3261 section 8.2.2.3: the answer is 420 naming them
// in Unsupported).
func required(req *sip.Request) string {
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return strings.Join(tags, ", ")
}
