package sip

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/imdn"
)

// udpLimit is RFC 3261 18.1.1's bound for requests on a path that may be
// UDP when its MTU is unknown.
const udpLimit = 1300

// Capabilities queries n by OPTIONS with the UP feature tags. 200: the
// tags of its Contact; 404/410/604: not an RCS user, Capabilities{} and no
// error; 408/480: ErrOffline; no answer within timeouts.request: an error
// wrapping gateway.ErrUnavailable (unknown, try later); other answers:
// ErrRejected (4xx, 6xx) or ErrUnavailable (5xx).
func (e *Edge) Capabilities(ctx context.Context, n uri.Number) (gateway.Capabilities, error) {
	req := e.newRequest(sip.OPTIONS, "", n, e.proxy.transport)
	req.AppendHeader(sip.NewHeader("Accept-Contact", optionsAcceptContact))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Contact", e.ourContactFor(e.proxy.transport)))
	res, err := e.do(ctx, req)
	if err != nil {
		if errors.Is(err, errNoAnswer) {
			return gateway.Capabilities{}, fmt.Errorf("sip: OPTIONS %s: %w: %w", n, err, gateway.ErrUnavailable)
		}
		return gateway.Capabilities{}, fmt.Errorf("sip: OPTIONS %s: %w", n, err)
	}
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		var contacts []string
		for _, h := range res.GetHeaders("Contact") {
			contacts = append(contacts, h.Value())
		}
		return capabilities(contacts), nil
	case code == 404 || code == 410 || code == 604:
		return gateway.Capabilities{}, nil
	default:
		return gateway.Capabilities{}, fmt.Errorf("sip: OPTIONS %s: %w", n, answerError(res))
	}
}

// SendRCS sends m as a pager-mode MESSAGE carrying CPIM: imdn.Message-ID
// m.Ref, the dispositions m.Notify asks for (negative-delivery always),
// text/plain or an FT-HTTP body. A 2xx is acceptance by the network, not
// delivery.
//
// Errors: 404/410/604 wrap gateway.ErrNotRCS; 408/480 and no answer within
// timeouts.request wrap gateway.ErrOffline (the network did not take it
// now; the gateway falls back to SMS, accepting that a message whose
// answer was lost may arrive twice); 403 and other 4xx/6xx wrap
// gateway.ErrRejected; 5xx and transport failures wrap
// gateway.ErrUnavailable (retry). gateway.ErrTooLarge when pager mode cannot carry
// it.
//
// When pager mode cannot carry it, m.LargeMessage is set (the phone
// advertised cpm.largemsg) and sessions are on (listen.msrp), it goes by
// large message mode instead (largemsg.go); a failure there is returned as
// a pager failure would be, so the gateway falls back to SMS.
//
// With sessions.outbound: chat, when m.ChatSession is set (the phone
// advertised cpm.session) and sessions are on, it goes in the chat session
// with the phone for m's conversation (chat.go), opened if need be; the
// 200 to its last MSRP chunk is the acceptance. When the session cannot be
// opened or the message cannot be sent in it, it goes by pager mode (or
// large message mode) as above, and the errors are theirs.
func (e *Edge) SendRCS(ctx context.Context, m gateway.OutboundRCS) error {
	body, err := e.outboundCPIM(m)
	if err != nil {
		return fmt.Errorf("sip: MESSAGE %s to %s: %w", m.ID, m.To, err)
	}
	after := ""
	if m.ChatSession && e.chatOn() {
		key := chatKey{from: m.From, to: m.To, conversation: m.ConversationID}
		err := e.viaChat(ctx, m.ID, key, m.ContributionID, body, true)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sip: chat message %s to %s: %w", m.ID, m.To, err)
		}
		after = " (chat session: " + err.Error() + ")"
	}
	err = e.sendMessage(ctx, m.From, m.To, m.ConversationID, m.ContributionID, body, typeCPIM)
	if errors.Is(err, gateway.ErrTooLarge) && m.LargeMessage && e.sessionsOn() {
		if err := e.sendLargeMessage(ctx, m.From, m.To, m.ConversationID, m.ContributionID, body); err != nil {
			return fmt.Errorf("sip: large message %s to %s%s: %w", m.ID, m.To, after, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("sip: MESSAGE %s to %s%s: %w", m.ID, m.To, after, err)
	}
	return nil
}

// viaChat sends body in a chat session of key (sendChat; one is opened if
// need be when open is set) and returns nil once it was sent. Otherwise
// the caller sends it by pager mode, unless ctx ended: the failure is
// logged and counted as a fallback, unless there was no session to try
// (errNoChat).
func (e *Edge) viaChat(ctx context.Context, id string, key chatKey, contribution string, body []byte, open bool) error {
	err := e.sendChat(ctx, key, contribution, body, open)
	if err == nil || ctx.Err() != nil || errors.Is(err, errNoChat) {
		return err
	}
	e.log.Info("sip: chat session failed, sending by pager mode", "msg_id", id, "number", key.to, "err", err)
	e.m.chatMessages.WithLabelValues("fallback").Inc()
	return err
}

// outboundCPIM is the CPIM message that carries m, in pager mode and in
// large message mode alike.
func (e *Edge) outboundCPIM(m gateway.OutboundRCS) ([]byte, error) {
	contentType, body, err := e.content(m.Parts)
	if err != nil {
		return nil, err
	}
	notify := cpim.NotifyNegativeDelivery
	if m.Notify.Delivery {
		notify |= cpim.NotifyPositiveDelivery
	}
	if m.Notify.Display {
		notify |= cpim.NotifyDisplay
	}
	sent := m.Sent
	if sent.IsZero() {
		sent = time.Now()
	}
	from, to := e.numberURI(m.From), e.numberURI(m.To)
	c := cpim.New(from.String(), to.String(), m.Ref, sent, notify, contentType, body)
	return c.Bytes(), nil
}

const typeCPIM = cpim.ContentType

// content is the CPIM content for the parts of a message. A pager-mode
// MESSAGE carries one body: texts are joined with newlines; a file goes
// alone; a part of another media type (a chatbot body) goes alone and
// unchanged.
func (e *Edge) content(parts []gateway.Part) (contentType string, body []byte, err error) {
	if len(parts) == 0 {
		return "", nil, fmt.Errorf("no content: %w", gateway.ErrRejected)
	}
	var texts []string
	for _, p := range parts {
		if p.File == nil && p.Data == nil {
			texts = append(texts, p.Text)
		}
	}
	if len(texts) == len(parts) {
		return "text/plain;charset=UTF-8", []byte(strings.Join(texts, "\n")), nil
	}
	if len(parts) > 1 {
		return "", nil, fmt.Errorf("%d parts with a file or other media: a pager-mode MESSAGE carries one: %w", len(parts), gateway.ErrRejected)
	}
	p := parts[0]
	if p.File != nil {
		b, err := fileTransferBody(p.File)
		if err != nil {
			return "", nil, fmt.Errorf("file %q: %w: %w", p.File.Name, err, gateway.ErrRejected)
		}
		return typeFTHTTP, b, nil
	}
	if p.ContentType == "" {
		return "", nil, fmt.Errorf("data part without a media type: %w", gateway.ErrRejected)
	}
	return p.ContentType, p.Data, nil
}

// Notify sends an IMDN about a message an RCS user sent: a CPIM message
// with a new imdn.Message-ID, Content-Disposition: notification and the
// delivery, display or failure report. With sessions.outbound: chat it
// goes in the chat session open with the phone for the conversation when
// there is one (chat.go), else by pager mode. Errors as for SendRCS.
func (e *Edge) Notify(ctx context.Context, n gateway.Notification) error {
	at := n.At
	if at.IsZero() {
		at = time.Now()
	}
	var doc *imdn.Notification
	switch n.Status {
	case gateway.StatusDelivered:
		doc = imdn.NewDelivered(n.Ref, at)
	case gateway.StatusRead:
		doc = imdn.NewDisplayed(n.Ref, at)
	case gateway.StatusFailed, gateway.StatusExpired:
		doc = imdn.NewFailed(n.Ref, at)
	default:
		return fmt.Errorf("sip: IMDN for %s to %s: status %v: %w", n.Ref, n.To, n.Status, gateway.ErrRejected)
	}
	from, to := e.numberURI(n.From), e.numberURI(n.To)
	body := doc.CPIM(from.String(), to.String(), newMessageID()).Bytes()
	if e.chatOn() {
		key := chatKey{from: n.From, to: n.To, conversation: n.ConversationID}
		err := e.viaChat(ctx, n.Ref, key, "", body, false)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sip: IMDN for %s to %s: %w", n.Ref, n.To, err)
		}
	}
	if err := e.sendMessage(ctx, n.From, n.To, n.ConversationID, "", body, typeCPIM); err != nil {
		return fmt.Errorf("sip: IMDN for %s to %s: %w", n.Ref, n.To, err)
	}
	return nil
}

// sendMessage sends a MESSAGE with the UP headers and maps its answer.
func (e *Edge) sendMessage(ctx context.Context, from, to uri.Number, conversationID, contributionID string, body []byte, contentType string) error {
	transport := e.proxy.transport
	build := func(transport string) *sip.Request {
		req := e.newRequest(sip.MESSAGE, from, to, transport)
		req.AppendHeader(sip.NewHeader("Accept-Contact", acceptContactM))
		req.AppendHeader(sip.NewHeader("P-Preferred-Service", icsiMsg))
		if contributionID != "" {
			req.AppendHeader(sip.NewHeader("Contribution-ID", contributionID))
		}
		if conversationID != "" {
			req.AppendHeader(sip.NewHeader("Conversation-ID", conversationID))
		}
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
		return req
	}
	if len(body) > e.cfg.MaxBody {
		return fmt.Errorf("body of %d bytes over max_body %d: %w", len(body), e.cfg.MaxBody, gateway.ErrTooLarge)
	}
	req := build(transport)
	if transport == "udp" {
		if size := len(req.String()); size > udpLimit {
			if !*e.cfg.LargeOverTCP {
				return fmt.Errorf("%d bytes over UDP (limit %d) and large_over_tcp is off: %w", size, udpLimit, gateway.ErrTooLarge)
			}
			req = build("tcp")
		}
	}
	res, err := e.do(ctx, req)
	if err != nil {
		if errors.Is(err, errNoAnswer) {
			return fmt.Errorf("%w: %w", err, gateway.ErrOffline)
		}
		return err
	}
	if res.IsSuccess() {
		return nil
	}
	return answerError(res)
}

// errNoAnswer marks a request that got no final answer in time.
var errNoAnswer = errors.New("no answer")

// do sends req through sipgo's client transaction and waits for its final
// answer, at most timeouts.request.
func (e *Edge) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	method := string(req.Method)
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Request)
	defer cancel()
	res, err := e.cli.Do(tctx, req)
	e.m.outSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if err != nil {
		switch {
		case ctx.Err() != nil:
			e.m.outbound.WithLabelValues(method, "cancelled").Inc()
			return nil, fmt.Errorf("%w", ctx.Err())
		case tctx.Err() != nil, errors.Is(err, sip.ErrTransactionTimeout):
			e.m.outbound.WithLabelValues(method, "timeout").Inc()
			return nil, fmt.Errorf("%w within %s", errNoAnswer, e.cfg.Timeouts.Request)
		}
		e.m.outbound.WithLabelValues(method, "transport_error").Inc()
		return nil, fmt.Errorf("send to %s:%d: %v: %w", e.proxy.host, e.proxy.port, err, gateway.ErrUnavailable)
	}
	e.m.outbound.WithLabelValues(method, codeLabel(uint16(res.StatusCode))).Inc()
	return res, nil
}

// answerError maps a final non-2xx answer to the gateway's errors.
func answerError(res *sip.Response) error {
	code := res.StatusCode
	var kind error
	switch {
	case code == 404 || code == 410 || code == 604:
		kind = gateway.ErrNotRCS
	case code == 408 || code == 480:
		kind = gateway.ErrOffline
	case code >= 500 && code < 600:
		kind = gateway.ErrUnavailable
	default:
		kind = gateway.ErrRejected
	}
	return fmt.Errorf("%d %s: %w", code, printable(res.Reason), kind)
}

func printable(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// newRequest builds a request from one of our numbers (none for OPTIONS)
// to a number, routed through the outbound proxy over transport.
func (e *Edge) newRequest(method sip.RequestMethod, from, to uri.Number, transport string) *sip.Request {
	target := e.numberURI(to)
	req := sip.NewRequest(method, target)
	req.SetTransport(strings.ToUpper(transport))
	route := sip.Uri{Scheme: "sip", Host: e.proxy.host, Port: e.proxy.port,
		UriParams: sip.HeaderParams{{K: "transport", V: transport}, {K: "lr", V: ""}}}
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: e.advHost, Port: e.advertisedPort(transport), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	req.AppendHeader(&sip.RouteHeader{Address: route})
	var fromURI sip.Uri
	if from != "" {
		fromURI = e.numberURI(from)
	} else {
		fromURI = sip.Uri{Scheme: "sip", Host: e.cfg.Domain}
	}
	fromH := &sip.FromHeader{Address: fromURI, Params: sip.NewParams()}
	fromH.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	callID := sip.CallIDHeader(newMessageID() + "@" + e.advHost)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sip.NewHeader("User-Agent", "mimigw"))
	if transport == "udp" {
		// Send from the listening socket, so that answers come back to the
		// address in our Via and the read filter passes them to sipgo.
		if a := e.Addr("udp"); a != nil {
			if host, port, err := net.SplitHostPort(a.String()); err == nil {
				p, _ := strconv.Atoi(port)
				req.Laddr = sip.Addr{IP: net.ParseIP(host), Port: p}
			}
		}
	}
	return req
}

// ourContactFor is the Contact of what we send about a number.
func (e *Edge) ourContactFor(transport string) string {
	u := sip.Uri{Scheme: "sip", Host: e.advHost, Port: e.advertisedPort(transport)}
	if transport != "udp" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	return "<" + u.String() + ">" + ourTags
}

// newMessageID is a random identifier for an imdn.Message-ID or Call-ID.
func newMessageID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
