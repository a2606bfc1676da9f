package sip

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/answers"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/imdn"
)

// Media types the edge takes in a MESSAGE (besides message/cpim and
// multipart/mixed).
const (
	typeText        = "text/plain"
	typeIsComposing = "application/im-iscomposing+xml"
	typeRevoke      = "application/vnd.gsma.rcsrevoke+xml"
	typeFTHTTP      = "application/vnd.gsma.rcs-ft-http+xml"
	typeMultipart   = "multipart/mixed"
)

// serve handles one request (never an ACK) and returns its final answer.
// A panic in a body parser becomes a 500 rather than a dead process.
func (e *Edge) serve(ctx context.Context, req *sip.Request, p peer) (ans answers.Answer) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("sip: request handling panicked", "peer", p.addr.String(), "method", string(req.Method), "panic", fmt.Sprint(r))
			ans = answers.Answer{Status: 500, Reason: "Server Internal Error"}
		}
	}()
	who, refuse := e.trust(req, p)
	if refuse != nil {
		return *refuse
	}
	switch req.Method {
	case sip.MESSAGE:
		return e.message(ctx, req, who)
	case sip.OPTIONS:
		return e.options(ctx, req, who)
	case sip.CANCEL, sip.BYE:
		// A CANCEL that matched an INVITE being handled, and a BYE of a
		// session, never come here (session.go).
		return answers.Answer{Status: 481}
	}
	return answers.Answer{Status: 405}
}

// senderNumber is who sent req: the P-Asserted-Identity from a trusted peer
// (its first value that is a number), else From.
func (e *Edge) senderNumber(req *sip.Request, who sender) (uri.Number, error) {
	if who.user != "" {
		return who.user, nil
	}
	if who.trusted {
		for _, h := range req.GetHeaders("P-Asserted-Identity") {
			for _, v := range splitHeaderValues(h.Value()) {
				if n, err := uri.ParseNumber(v, e.cfg.DefaultRegion); err == nil {
					return n, nil
				}
			}
		}
	}
	n, err := uriNumber(addrOf(req.From()), e.cfg.DefaultRegion)
	if err != nil {
		return "", fmt.Errorf("sender: %w", err)
	}
	return n, nil
}

// recipientNumber is whom req is for: the Request-URI when it names a
// number, else To.
func (e *Edge) recipientNumber(req *sip.Request) (uri.Number, error) {
	if n, err := uriNumber(&req.Recipient, e.cfg.DefaultRegion); err == nil {
		return n, nil
	}
	var to *sip.Uri
	if h := req.To(); h != nil {
		to = &h.Address
	}
	n, err := uriNumber(to, e.cfg.DefaultRegion)
	if err != nil {
		return "", fmt.Errorf("recipient: %w", err)
	}
	return n, nil
}

// splitHeaderValues splits a header value list at commas outside angle
// brackets and quotes ("<sip:+1...>, <tel:+1...>").
func splitHeaderValues(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// inbound is one MESSAGE as far as it is understood before its body.
type inbound struct {
	from           uri.Number
	to             uri.Number
	conversationID string
}

func (e *Edge) message(ctx context.Context, req *sip.Request, who sender) answers.Answer {
	from, err := e.senderNumber(req, who)
	if err != nil {
		return e.badRequest("identity", 400, err)
	}
	body := req.Body()
	if len(body) > e.cfg.MaxBody {
		return e.tooLarge(uint64(len(body)))
	}
	if len(body) == 0 {
		return e.badRequest("empty", 400, errors.New("MESSAGE without a body"))
	}
	ct := req.ContentType()
	if ct == nil {
		return e.badRequest("no_content_type", 400, errors.New("body without Content-Type"))
	}
	in := inbound{from: from}
	if h := req.GetHeader("Conversation-ID"); h != nil {
		in.conversationID = h.Value()
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Receive)
	defer cancel()

	switch media := mediaType(ct.Value()); media {
	case cpim.ContentType:
		if in.to, err = e.recipientNumber(req); err != nil {
			return e.badRequest("identity", 400, err)
		}
		return e.cpimBody(ctx, in, body)
	case typeMultipart:
		return e.oneToMany(ctx, req, in, ct.Value(), body)
	case typeIsComposing:
		e.m.isComposing.Inc()
		return answers.Answer{Status: 200}
	case typeRevoke:
		return e.revocationResult(ctx, in, "", body)
	default:
		e.m.badBodies.WithLabelValues("media_type").Inc()
		return answers.Answer{Status: 415, Reason: reasonPhrase("Unsupported Media Type", fmt.Errorf("%.60q: want message/cpim", media))}
	}
}

// cpimBody is the one way a CPIM body from a phone reaches the gateway,
// whether it came in a pager-mode MESSAGE or as an MSRP message of a session
// (session.go): text, FT-HTTP and other contents go to Receive, IMDNs to
// Receipt, revocation results to RevocationResult, isComposing nowhere.
// in names the sender, the recipient and the conversation as SIP (the
// MESSAGE, or the INVITE of the session) gave them.
func (e *Edge) cpimBody(ctx context.Context, in inbound, body []byte) answers.Answer {
	m, err := cpim.Parse(body)
	if err != nil {
		return e.badRequest("cpim", 400, err)
	}
	return e.cpimMessage(ctx, in, m)
}

// cpimMessage hands one CPIM message to the gateway and maps the outcome to
// the answer.
func (e *Edge) cpimMessage(ctx context.Context, in inbound, m *cpim.Message) answers.Answer {
	media := m.MediaType()
	switch {
	case media == "":
		return e.badRequest("cpim", 400, errors.New("CPIM content without Content-Type"))
	case media == imdn.ContentType:
		n, err := imdn.Parse(m.Body)
		if err != nil {
			return e.badRequest("imdn", 400, err)
		}
		st, ok := receiptStatus(n)
		if !ok {
			// processing notifications and the like: nothing to report.
			return answers.Answer{Status: 200}
		}
		at := n.DateTime
		if at.IsZero() {
			at = time.Now()
		}
		r := gateway.Receipt{Channel: gateway.ChannelRCS, From: in.from, Ref: n.MessageID, Status: st, At: at}
		e.m.delivered.WithLabelValues("receipt").Inc()
		return e.outcome(e.call(ctx, func(ctx context.Context) error { return e.recv.Receipt(ctx, r) }), 200, "receipt", in.from)
	case cpim.IsComposing(m.ContentType()):
		e.m.isComposing.Inc()
		return answers.Answer{Status: 200}
	case media == typeRevoke:
		return e.revocationResult(ctx, in, m.MessageID(), m.Body)
	}

	ref := m.MessageID()
	if ref == "" {
		return e.badRequest("cpim", 400, errors.New("CPIM without imdn.Message-ID"))
	}
	part, err := e.part(m.ContentType(), m.Body)
	if err != nil {
		return e.badRequest(partKind(media), 400, err)
	}
	msg := gateway.Inbound{
		Channel:        gateway.ChannelRCS,
		From:           in.from,
		To:             in.to,
		Ref:            ref,
		Parts:          []gateway.Part{part},
		Notify:         notifications(m.Notify()),
		ConversationID: in.conversationID,
	}
	if t, err := m.DateTime(); err == nil {
		msg.Sent = t
	}
	e.m.delivered.WithLabelValues("message").Inc()
	return e.outcome(e.call(ctx, func(ctx context.Context) error { return e.recv.Receive(ctx, msg) }), 202, "message", in.from)
}

// part turns a CPIM content into a message part: text, a file by link, or
// any other media type passed through unchanged (chatbot bodies).
func (e *Edge) part(contentType string, body []byte) (gateway.Part, error) {
	switch cpim.MediaType(contentType) {
	case typeText:
		if !utf8.Valid(body) {
			return gateway.Part{}, errors.New("text/plain content is not UTF-8")
		}
		return gateway.Part{Text: string(body)}, nil
	case typeFTHTTP:
		f, err := fileTransfer(body)
		if err != nil {
			return gateway.Part{}, err
		}
		return gateway.Part{File: f}, nil
	}
	return gateway.Part{ContentType: contentType, Data: body}, nil
}

func partKind(media string) string {
	switch media {
	case typeText:
		return "text"
	case typeFTHTTP:
		return "fthttp"
	}
	return "other"
}

func notifications(n cpim.Notify) gateway.Notifications {
	return gateway.Notifications{
		Delivery: n&cpim.NotifyPositiveDelivery != 0,
		Display:  n&cpim.NotifyDisplay != 0,
	}
}

// receiptStatus maps an IMDN to the status the gateway reports.
func receiptStatus(n *imdn.Notification) (gateway.Status, bool) {
	switch n.Status {
	case imdn.Delivered:
		return gateway.StatusDelivered, true
	case imdn.Displayed:
		return gateway.StatusRead, true
	case imdn.Failed, imdn.Forbidden, imdn.Error:
		return gateway.StatusFailed, true
	}
	return 0, false
}

// call runs f, a call into the gateway, once fewer than
// receive_concurrency calls are running. A request that waits longer than
// queue_timeout for its turn is refused with ErrUnavailable (503).
func (e *Edge) call(ctx context.Context, f func(context.Context) error) error {
	select {
	case e.gate <- struct{}{}:
	default:
		wait := time.NewTimer(e.cfg.QueueTimeout)
		select {
		case e.gate <- struct{}{}:
			wait.Stop()
		case <-wait.C:
			e.m.refused.WithLabelValues("busy").Inc()
			return fmt.Errorf("gateway busy for %s: %w", e.cfg.QueueTimeout, gateway.ErrUnavailable)
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("waiting for the gateway: %w: %w", gateway.ErrUnavailable, ctx.Err())
		}
	}
	defer func() { <-e.gate }()
	return f(ctx)
}

// outcome maps what the gateway returned to the answer: success only once
// it returned nil; 503 with Retry-After for ErrUnavailable and anything
// unexpected (the message is not durable, so the peer must retry); 413
// for ErrOversize (larger than the bus can store); 403 naming the reason
// for ErrRejected.
func (e *Edge) outcome(err error, ok uint16, kind string, from uri.Number) answers.Answer {
	switch {
	case err == nil:
		return answers.Answer{Status: ok}
	case errors.Is(err, gateway.ErrOversize):
		e.log.Info("sip: gateway refused a message too large", "kind", kind, "number", from.String(), "err", err)
		e.m.badBodies.WithLabelValues("too_large").Inc()
		return answers.Answer{Status: 413, Reason: "Request Entity Too Large: larger than the gateway can store"}
	case errors.Is(err, gateway.ErrRejected):
		e.log.Info("sip: gateway rejected", "kind", kind, "number", from.String(), "err", err)
		return answers.Answer{Status: 403, Reason: reasonPhrase("Forbidden", err)}
	case errors.Is(err, gateway.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.log.Warn("sip: gateway unavailable", "kind", kind, "number", from.String(), "err", err)
	default:
		e.log.Error("sip: gateway failed", "kind", kind, "number", from.String(), "err", err)
	}
	return e.tryLater()
}

// tooLarge refuses a body of size bytes, over max_body.
func (e *Edge) tooLarge(size uint64) answers.Answer {
	e.m.badBodies.WithLabelValues("too_large").Inc()
	return answers.Answer{Status: 413, Reason: fmt.Sprintf("Request Entity Too Large: body of %d bytes, limit %d", size, e.cfg.MaxBody)}
}

func (e *Edge) badRequest(kind string, status uint16, err error) answers.Answer {
	e.m.badBodies.WithLabelValues(kind).Inc()
	std := "Bad Request"
	if status == 415 {
		std = "Unsupported Media Type"
	}
	return answers.Answer{Status: status, Reason: reasonPhrase(std, err)}
}

// mediaType is the lower-case type/subtype of a Content-Type value.
func mediaType(v string) string {
	if plainMediaType(v) {
		// What mime.ParseMediaType gives for it, without its map of
		// parameters.
		return v
	}
	if t, _, err := mime.ParseMediaType(v); err == nil {
		return t
	}
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// plainMediaType reports whether v is a lower-case type/subtype and
// nothing else: two RFC 2045 tokens around one slash.
func plainMediaType(v string) bool {
	slash := strings.IndexByte(v, '/')
	if slash <= 0 || slash == len(v)-1 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if i != slash && (c <= ' ' || c >= 0x7f || 'A' <= c && c <= 'Z' || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0) {
			return false
		}
	}
	return true
}

// options answers an OPTIONS: for a number the gateway serves toward the
// asking number, 200 with our feature tags; for another number, 404; a
// request not addressed to a number (a keep-alive ping from the IMS core)
// gets 200.
func (e *Edge) options(ctx context.Context, req *sip.Request, who sender) answers.Answer {
	if req.Recipient.User == "" && strings.EqualFold(req.Recipient.Scheme, "sip") {
		return answers.Answer{Status: 200}
	}
	number, err := e.recipientNumber(req)
	if err != nil {
		return answers.Answer{Status: 404, Reason: reasonPhrase("Not Found", err)}
	}
	contact, err := e.senderNumber(req, who)
	if err != nil {
		return e.badRequest("identity", 400, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeouts.Receive)
	defer cancel()
	var serves bool
	err = e.call(ctx, func(ctx context.Context) (err error) {
		serves, err = e.recv.Serves(ctx, contact, number)
		return err
	})
	if err != nil {
		e.log.Warn("sip: serves lookup failed", "number", number.String(), "err", err)
		return e.tryLater()
	}
	if !serves {
		return answers.Answer{Status: 404}
	}
	return answers.Answer{Status: 200}
}
