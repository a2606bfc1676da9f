package sip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// Large message mode toward phones (RFC 4975, GSMA RCS large message mode):
// a CPIM message too large for a pager-mode MESSAGE goes in a session of
// its own. An INVITE over TCP (TLS when the outbound proxy is TLS) through
// the outbound proxy, with cpm.largemsg in Accept-Contact and Contact,
// offers MSRP sendonly, a=setup:actpass, our a=path on listen.msrp (msrps
// on listen.msrps with our a=fingerprint with sessions.msrps); on the
// 200 we ACK, Negotiate, and connect when the answer makes us active
// (otherwise we wait for the phone's binding SEND), send the CPIM message,
// wait for the 200 of its last chunk, and send BYE.
//
// Every step is bounded by largeMessageTimeout. A non-2xx answer maps as a
// MESSAGE's would (answerError); no answer and MSRP failures wrap
// gateway.ErrOffline, an MSRP refusal (4xx) gateway.ErrRejected: the
// gateway treats them as pager failures and falls back to SMS.

// largeMessageTimeout bounds each step of a large message: the INVITE's
// answer, the MSRP binding, and the sending of the message.
const largeMessageTimeout = 30 * time.Second

// sessionsOn reports whether listen.msrp is set and its pool runs.
func (e *Edge) sessionsOn() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pool != nil
}

// largeMessageAcceptContact asks the network for the phone's large message
// mode.
var largeMessageAcceptContact = "*;" + tagICSI + `="` + encodeURN(icsiLargeMsg) + `"`

// sendLargeMessage sends body, a CPIM message, to to by large message mode.
func (e *Edge) sendLargeMessage(ctx context.Context, from, to uri.Number, conversationID, contributionID string, body []byte) error {
	out, err := e.outboundLocal(ctx)
	if err != nil {
		return fmt.Errorf("%v: %w", err, gateway.ErrOffline)
	}
	if out.pool == nil {
		return fmt.Errorf("no MSRP listener: %w", gateway.ErrTooLarge)
	}
	offer, err := sdp.Offer(sdp.OfferOptions{
		Mode:               sdp.ModeLargeMessage,
		Path:               out.path,
		Setup:              out.setup,
		Fingerprints:       out.fps,
		AcceptTypes:        sessionAcceptTypes,
		AcceptWrappedTypes: sessionAcceptWrappedTypes,
		MaxSize:            int64(len(body)),
	})
	if err != nil {
		return fmt.Errorf("sdp offer: %w", err)
	}

	transport := e.proxy.transport
	if transport == "udp" {
		transport = "tcp"
	}
	req := e.newRequest(sip.INVITE, from, to, transport)
	req.AppendHeader(sip.NewHeader("Accept-Contact", largeMessageAcceptContact))
	req.AppendHeader(sip.NewHeader("P-Preferred-Service", icsiLargeMsg))
	if contributionID != "" {
		req.AppendHeader(sip.NewHeader("Contribution-ID", contributionID))
	}
	if conversationID != "" {
		req.AppendHeader(sip.NewHeader("Conversation-ID", conversationID))
	}
	contact := sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: e.numberURI(from).User, Host: e.advHost, Port: e.advertisedPort(transport),
			UriParams: sip.HeaderParams{{K: "transport", V: transport}}},
		Params: sip.HeaderParams{{K: tagICSI, V: `"` + encodeURN(icsiLargeMsg) + `"`}},
	}
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Allow", allowedSessions))
	req.AppendHeader(sip.NewHeader("Content-Type", sdp.ContentType))
	req.SetBody(offer.Bytes())

	setup, cancel := context.WithTimeout(ctx, largeMessageTimeout)
	defer cancel()
	ua := sipgo.DialogUA{Client: e.cli, ContactHDR: contact}
	start := time.Now()
	dlg, err := ua.WriteInvite(setup, req)
	if err != nil {
		e.m.outbound.WithLabelValues("INVITE", "transport_error").Inc()
		return fmt.Errorf("INVITE to %s:%d: %v: %w", e.proxy.host, e.proxy.port, err, gateway.ErrUnavailable)
	}
	defer dlg.Close()
	err = dlg.WaitAnswer(setup, sipgo.AnswerOptions{})
	e.m.outSeconds.WithLabelValues("INVITE").Observe(time.Since(start).Seconds())
	if err != nil {
		var refused *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &refused):
			e.m.outbound.WithLabelValues("INVITE", codeLabel(uint16(refused.Res.StatusCode))).Inc()
			return fmt.Errorf("INVITE: %w", answerError(refused.Res))
		case ctx.Err() != nil:
			e.m.outbound.WithLabelValues("INVITE", "cancelled").Inc()
			return fmt.Errorf("INVITE: %w", ctx.Err())
		case setup.Err() != nil:
			e.m.outbound.WithLabelValues("INVITE", "timeout").Inc()
			return fmt.Errorf("INVITE: %w within %s: %w", errNoAnswer, largeMessageTimeout, gateway.ErrOffline)
		}
		e.m.outbound.WithLabelValues("INVITE", "transport_error").Inc()
		return fmt.Errorf("INVITE: %v: %w", err, gateway.ErrOffline)
	}
	e.m.outbound.WithLabelValues("INVITE", codeLabel(uint16(dlg.InviteResponse.StatusCode))).Inc()
	// The session is set up before the ACK, so that a phone that connects
	// as soon as it sent its 200 finds it.
	sess, sessErr := e.largeMessageSession(out, offer, dlg.InviteResponse)
	if sess != nil {
		defer sess.Close()
	}
	if err := dlg.Ack(setup); err != nil {
		return fmt.Errorf("ACK: %v: %w", err, gateway.ErrOffline)
	}
	callID := req.CallID().Value()
	bye := func() {
		bctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request)
		defer cancel()
		if err := dlg.Bye(bctx); err != nil {
			e.log.Info("sip: BYE of a large message", "call_id", callID, "err", err)
		}
	}
	if sessErr != nil {
		bye()
		return sessErr
	}
	e.mu.Lock()
	wait := e.bindTimeout
	e.mu.Unlock()
	bind, cancelBind := context.WithTimeout(ctx, min(wait, largeMessageTimeout))
	err = sess.Connect(bind)
	cancelBind()
	if err != nil {
		bye()
		return fmt.Errorf("msrp not bound: %v: %w", err, gateway.ErrOffline)
	}
	send, cancelSend := context.WithTimeout(ctx, largeMessageTimeout)
	err = sess.Send(send, typeCPIM, body)
	cancelSend()
	sess.Close()
	bye()
	if err != nil {
		var refused *msrp.StatusError
		if errors.As(err, &refused) && refused.Code >= 400 && refused.Code < 500 && refused.Code != 408 {
			return fmt.Errorf("msrp: %v: %w", err, gateway.ErrRejected)
		}
		return fmt.Errorf("msrp: %v: %w", err, gateway.ErrOffline)
	}
	return nil
}

// largeMessageSession negotiates the 200's answer against our offer and
// sets up the MSRP session it describes. Incoming content is refused: the
// session is sendonly.
func (e *Edge) largeMessageSession(out outboundMSRP, offer *sdp.Session, res *sip.Response) (*msrp.Session, error) {
	if ct := res.ContentType(); ct == nil || mediaType(ct.Value()) != sdp.ContentType || len(res.Body()) == 0 {
		return nil, fmt.Errorf("200 without an SDP answer: %w", gateway.ErrRejected)
	}
	answer, err := sdp.Parse(res.Body())
	if err != nil {
		return nil, fmt.Errorf("SDP answer: %v: %w", err, gateway.ErrRejected)
	}
	neg, err := sdp.Negotiate(offer, answer, sdp.Offerer)
	if err != nil {
		return nil, fmt.Errorf("SDP answer: %v: %w", err, gateway.ErrRejected)
	}
	if neg.Hold {
		return nil, fmt.Errorf("SDP answer: holdconn: %w", gateway.ErrRejected)
	}
	cfg := neg.SessionConfig()
	cfg.Relay = out.relay
	sess, err := out.pool.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("msrp session: %v: %w", err, gateway.ErrUnavailable)
	}
	return sess, nil
}
