package rcssim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// call is one MSRP session of the simulator's, opened by either side.
type call struct {
	mode           string
	ours, theirs   uri.Number
	callID         string
	conversationID string

	mu   sync.Mutex
	sess *msrp.Session

	ctx context.Context                 // the dialog's: ends with a BYE either way
	bye func(ctx context.Context) error // ends the dialog from our side
	key string                          // in Sim.chats, for an outgoing chat

	// answer, offerPath and contact are what a re-INVITE of a session the
	// simulator took is answered with, and must offer again.
	answer    []byte
	offerPath string
	contact   string

	// client is the dialog of a session the simulator opened; touch
	// keeps an outgoing chat open (chatIdle).
	client *sipgo.DialogClientSession
	touch  chan struct{}
}

func (c *call) session() *msrp.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// largeMessage reports whether an INVITE opens a large message mode
// session (cpm.largemsg in Accept-Contact or Contact) rather than a chat.
func largeMessage(req *sip.Request) bool {
	for _, name := range []string{"Accept-Contact", "Contact", "P-Preferred-Service", "P-Asserted-Service"} {
		for _, h := range req.GetHeaders(name) {
			if strings.Contains(h.Value(), "cpm.largemsg") {
				return true
			}
		}
	}
	return false
}

// handler takes the MSRP messages of a session: CPIM messages are taken
// as a MESSAGE's body is, with their IMDNs sent inside the session for a
// chat and by MESSAGE for a large message (RCC.07: the large message
// session is sendonly from its sender and ends after the message);
// isComposing is dropped; other types are refused 415.
func (s *Sim) handler(c *call) msrp.Handler {
	return func(ctx context.Context, m *msrp.Message) error {
		switch mediaType(m.ContentType) {
		case cpim.ContentType:
		case sdp.TypeIsComposing:
			return nil
		default:
			return &msrp.StatusError{Code: 415}
		}
		cm, err := cpim.Parse(m.Body)
		if err != nil {
			return &msrp.StatusError{Code: 400, Comment: "bad CPIM"}
		}
		s.take(c.mode, c.theirs, c.ours, c.callID, cm, s.replyTo(c))
		return nil
	}
}

// replyTo is how IMDNs about what came in a session go back: inside it for
// a chat, by MESSAGE for a large message.
func (s *Sim) replyTo(c *call) func(context.Context, []byte) error {
	if c.mode != ModeChat {
		return func(ctx context.Context, b []byte) error {
			return s.sendMessage(ctx, c.ours, c.theirs, c.conversationID, b)
		}
	}
	return func(ctx context.Context, b []byte) error {
		sess := c.session()
		if sess == nil {
			return errors.New("no MSRP session")
		}
		return sess.Send(ctx, cpim.ContentType, b)
	}
}

// inviteBody takes the SDP offer and the chat's first message, when it
// rides beside the offer in a multipart/mixed body.
func inviteBody(contentType string, body []byte) (offer []byte, first *cpim.Message, err error) {
	offer, parts, err := sdp.SplitInviteBody(contentType, body)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range parts {
		if mediaType(p.ContentType) == cpim.ContentType {
			if first, err = cpim.Parse(p.Body); err != nil {
				return nil, nil, errors.New("bad CPIM part")
			}
			break
		}
	}
	return offer, first, nil
}

// answerSetup is how the simulator answers a=setup:actpass: through a
// relay it always connects (to the relay).
func (s *Sim) answerSetup() sdp.Setup {
	if s.cfg.Setup == "passive" && s.relay == nil {
		return sdp.SetupPassive
	}
	return sdp.SetupActive
}

func (s *Sim) localURI() msrp.URI {
	return msrp.URI{Host: s.msrpHost, Port: s.msrpPort, SessionID: msrp.NewSessionID(), Transport: "tcp"}
}

// path is the a=path of a new session: the relay's Use-Path, if any, then
// a fresh URI of the simulator's own.
func (s *Sim) path() []msrp.URI {
	local := s.localURI()
	if s.relay == nil {
		return []msrp.URI{local}
	}
	return append(s.relay.UsePath(), local)
}

// onInvite answers a session INVITE: an SDP answer (a=setup per
// Config.Setup for actpass), the MSRP session set up before the 200 so that
// a peer connecting at once finds it, then, after the ACK, the connection
// when this side is active.
func (s *Sim) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	to, ok := s.ours(req)
	if !ok {
		respond(req, tx, 404, "Not Found")
		return
	}
	if t := req.To(); t != nil && t.Params.Has("tag") {
		s.reinvite(req, tx)
		return
	}
	from, err := sender(req)
	if err != nil {
		respond(req, tx, 400, "Bad Request: sender")
		return
	}
	contentType := ""
	if ct := req.ContentType(); ct != nil {
		contentType = ct.Value()
	}
	offerBody, first, err := inviteBody(contentType, req.Body())
	if err != nil {
		respond(req, tx, 488, "Not Acceptable Here: "+err.Error())
		return
	}
	offer, err := sdp.Parse(offerBody)
	if err != nil {
		respond(req, tx, 488, "Not Acceptable Here: SDP")
		return
	}
	answer, err := sdp.Answer(offer, sdp.AnswerOptions{Path: s.path(), Setup: s.answerSetup()})
	if err != nil {
		s.log.Info("INVITE refused", "from", from, "to", to, "err", err)
		respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	neg, err := sdp.Negotiate(offer, answer, sdp.Answerer)
	if err != nil {
		respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	c := &call{mode: ModeChat, ours: to, theirs: from, callID: callID(req)}
	icsi := icsiSession
	if largeMessage(req) {
		c.mode, icsi = ModeLarge, icsiLargeMsg
	}
	if h := req.GetHeader("Conversation-ID"); h != nil {
		c.conversationID = h.Value()
	}
	cfg := neg.SessionConfig()
	cfg.Handler, cfg.Relay = s.handler(c), s.relay
	sess, err := s.pool.NewSession(cfg)
	if err != nil {
		s.log.Warn("msrp session", "err", err)
		respond(req, tx, 500, "Server Internal Error")
		return
	}
	c.mu.Lock()
	c.sess = sess
	c.mu.Unlock()
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		sess.Close()
		respond(req, tx, 400, "Bad Request")
		return
	}
	s.log.Info("session offered", "mode", c.mode, "from", from, "to", to, "call_id", c.callID, "active", neg.Active)
	if first != nil {
		// The first message rode in the INVITE (RCC.07): its IMDN goes in
		// the session once it is bound.
		s.take(c.mode, from, to, c.callID, first, s.replyTo(c))
	}
	c.answer, c.offerPath = answer.Bytes(), msrp.FormatPath(neg.Remote.Path)
	c.contact = s.contact(to, strings.ToLower(req.Transport()), ";"+tagICSI+`="`+encodeURN(icsi)+`"`)
	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, c.answer)
	res.AppendHeader(sip.NewHeader("Contact", c.contact))
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	c.ctx = dlg.Context()
	c.bye = dlg.Bye
	s.mu.Lock()
	s.answered[c.callID] = c
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.answered, c.callID)
		s.mu.Unlock()
	}
	if err := dlg.WriteResponse(res); err != nil {
		s.log.Info("session not confirmed", "call_id", c.callID, "err", err)
		forget()
		sess.Close()
		dlg.Close()
		return
	}
	if !s.spawn(func() {
		defer dlg.Close()
		defer forget()
		s.run(c)
	}) {
		forget()
		sess.Close()
		dlg.Close()
	}
}

// reinvite answers a re-INVITE in a session the simulator took, as
// clients send to refresh one (RFC 4028): an offer of the same MSRP
// session (its a=path), or none, gets the answer the session has; any
// other 488, and a dialog it does not hold 481.
func (s *Sim) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	s.mu.Lock()
	c := s.answered[callID(req)]
	s.mu.Unlock()
	if c == nil {
		respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if body := req.Body(); len(body) > 0 {
		if !sameSession(body, c.offerPath) {
			respond(req, tx, 488, "Not Acceptable Here: session changes not supported")
			return
		}
	}
	res := sip.NewSDPResponseFromRequest(req, c.answer)
	res.AppendHeader(sip.NewHeader("Contact", c.contact))
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	_ = tx.Respond(res)
	s.log.Info("session refreshed", "call_id", c.callID)
}

// sameSession reports whether an SDP offer's first MSRP media in use has
// the a=path path.
func sameSession(body []byte, path string) bool {
	offer, err := sdp.Parse(body)
	if err != nil {
		return false
	}
	for i, md := range offer.Media {
		if md.IsMSRP() && md.Port != 0 {
			m, err := offer.MSRP(i)
			return err == nil && msrp.FormatPath(m.Path) == path
		}
	}
	return false
}

// run holds a session until either side ends it: it connects first (or
// waits for the peer's binding SEND, when passive), and sends BYE when the
// MSRP side ends or the simulator stops.
func (s *Sim) run(c *call) {
	sess := c.session()
	defer sess.Close()
	why := ""
	ctx, cancel := context.WithTimeout(c.ctx, stepTimeout)
	err := sess.Connect(ctx)
	cancel()
	switch {
	case c.ctx.Err() != nil:
		s.log.Info("session ended by the peer", "mode", c.mode, "call_id", c.callID)
		return
	case err != nil:
		why = "msrp not bound: " + err.Error()
	default:
		select {
		case <-c.ctx.Done():
			s.log.Info("session ended by the peer", "mode", c.mode, "call_id", c.callID)
			return
		case <-sess.Done():
			why = "msrp session ended"
		case <-s.ctx.Done():
			why = "simulator stopping"
		}
	}
	s.endCall(c, why)
}

// stopByeTimeout bounds a BYE sent while the simulator stops.
const stopByeTimeout = 2 * time.Second

// endCall sends the BYE of a session still up.
func (s *Sim) endCall(c *call, why string) {
	if c.ctx.Err() != nil {
		return
	}
	s.log.Info("ending session", "mode", c.mode, "call_id", c.callID, "reason", why)
	if sess := c.session(); sess != nil {
		sess.Close()
	}
	// Stopping bounds the wait further: the gateway may be gone already
	// (in serve --dev the simulator outlives the edges), and stopping must
	// not wait for a BYE nobody answers.
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, func() { time.AfterFunc(stopByeTimeout, cancel) })
	defer stop()
	if err := c.bye(ctx); err != nil {
		s.log.Info("BYE", "call_id", c.callID, "err", err)
	}
}

func (s *Sim) onAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = s.dialogs.ReadAck(req, tx)
}

func (s *Sim) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if _, err := s.dialogs.MatchDialogRequest(req); err != nil && s.outgoing(req) == nil {
		respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if len(req.Body()) > 0 {
		respond(req, tx, 488, "Not Acceptable Here: session changes not supported")
		return
	}
	respond(req, tx, 200, "OK")
}

func (s *Sim) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if dlg, err := s.dialogs.MatchDialogRequest(req); err == nil {
		if err := dlg.ReadBye(req, tx); err != nil {
			respond(req, tx, 400, "Bad Request")
		}
		return
	}
	if c := s.outgoing(req); c != nil {
		_ = c.client.ReadBye(req, tx)
		return
	}
	respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

// outgoing is the session the simulator opened that an in-dialog request
// belongs to (by Call-ID and tags).
func (s *Sim) outgoing(req *sip.Request) *call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id.Value()]
}

// open sets up a session from one of the simulator's numbers: INVITE with
// an SDP offer (actpass, or passive with Config.Setup passive; sendonly for
// a large message), the MSRP session set up before the ACK, then connected
// (or bound by the peer).
func (s *Sim) open(ctx context.Context, mode string, from, to uri.Number) (*call, error) {
	opts := sdp.OfferOptions{Mode: sdp.ModeChat, Path: s.path()}
	switch {
	case s.relay != nil:
		opts.Setup = sdp.SetupActive
	case s.cfg.Setup == "passive":
		// The peer must connect, as a phone that cannot do otherwise asks.
		opts.Setup = sdp.SetupPassive
	}
	icsi := icsiSession
	if mode == ModeLarge {
		opts.Mode, icsi = sdp.ModeLargeMessage, icsiLargeMsg
	}
	offer, err := sdp.Offer(opts)
	if err != nil {
		return nil, fmt.Errorf("sdp offer: %w", err)
	}
	// Sessions go over TCP whatever the transport of pager mode.
	req := s.newRequest(sip.INVITE, from, to, "tcp")
	req.AppendHeader(sip.NewHeader("Accept-Contact", "*;"+tagICSI+`="`+encodeURN(icsi)+`"`))
	req.AppendHeader(sip.NewHeader("P-Preferred-Service", icsi))
	c := &call{mode: mode, ours: from, theirs: to, callID: req.CallID().Value(), conversationID: newID()}
	req.AppendHeader(sip.NewHeader("Conversation-ID", c.conversationID))
	req.AppendHeader(sip.NewHeader("Contribution-ID", newID()))
	contact := sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: from.String(), Host: s.host, Port: s.sipPort,
			UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}},
		Params: sip.HeaderParams{{K: tagICSI, V: `"` + encodeURN(icsi) + `"`}},
	}
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	req.AppendHeader(sip.NewHeader("Content-Type", sdp.ContentType))
	req.SetBody(offer.Bytes())

	setup, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	ua := sipgo.DialogUA{Client: s.cli, ContactHDR: contact}
	dlg, err := ua.WriteInvite(setup, req)
	if err != nil {
		return nil, fmt.Errorf("INVITE to %s via %s: %w", to, s.gw.addr(), err)
	}
	c.client = dlg
	c.ctx, c.bye = dlg.Context(), dlg.Bye
	s.mu.Lock()
	s.calls[c.callID] = c
	s.mu.Unlock()
	fail := func(err error) (*call, error) {
		s.forget(c)
		dlg.Close()
		return nil, err
	}
	if err := dlg.WaitAnswer(setup, sipgo.AnswerOptions{}); err != nil {
		var refused *sipgo.ErrDialogResponse
		if errors.As(err, &refused) {
			return fail(fmt.Errorf("INVITE to %s: %d %s", to, refused.Res.StatusCode, refused.Res.Reason))
		}
		return fail(fmt.Errorf("INVITE to %s: %w", to, err))
	}
	res := dlg.InviteResponse
	neg, err := func() (sdp.Negotiated, error) {
		if ct := res.ContentType(); ct == nil || mediaType(ct.Value()) != sdp.ContentType {
			return sdp.Negotiated{}, errors.New("200 without an SDP answer")
		}
		answer, err := sdp.Parse(res.Body())
		if err != nil {
			return sdp.Negotiated{}, err
		}
		return sdp.Negotiate(offer, answer, sdp.Offerer)
	}()
	var sess *msrp.Session
	if err == nil {
		cfg := neg.SessionConfig()
		cfg.Handler, cfg.Relay = s.handler(c), s.relay
		sess, err = s.pool.NewSession(cfg)
	}
	if ackErr := dlg.Ack(setup); ackErr != nil && err == nil {
		err = fmt.Errorf("ACK: %w", ackErr)
	}
	if err != nil {
		if sess != nil {
			sess.Close()
		}
		s.endCall(c, "no session: "+err.Error())
		return fail(err)
	}
	c.mu.Lock()
	c.sess = sess
	c.mu.Unlock()
	bind, cancelBind := context.WithTimeout(ctx, stepTimeout)
	err = sess.Connect(bind)
	cancelBind()
	if err != nil {
		s.endCall(c, "msrp not bound")
		return fail(fmt.Errorf("msrp: %w", err))
	}
	s.log.Info("session open", "mode", mode, "from", from, "to", to, "call_id", c.callID, "active", neg.Active)
	return c, nil
}

func (s *Sim) forget(c *call) {
	s.mu.Lock()
	if s.calls[c.callID] == c {
		delete(s.calls, c.callID)
	}
	if c.key != "" && s.chats[c.key] == c {
		delete(s.chats, c.key)
	}
	s.mu.Unlock()
}

// chatIdle is how long an outgoing chat session stays open after its last
// message, for the peer's IMDNs and for further messages.
const chatIdle = 60 * time.Second
