package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/sip/answers"
)

// Requests over UDP never reach sipgo's transaction layer, which would keep
// every non-INVITE server transaction for Timer J (32 s): at 10,000
// MESSAGE/s that is some 320,000 live transactions with their timers and
// goroutines. Instead the transport's read filter takes every UDP request
// before sipgo parses it; the edge handles it on its own goroutine (bounded
// by MaxInFlight), answers on the listening socket, and remembers only the
// answer's status in a bounded cache keyed by transaction, which is all a
// retransmission needs. Responses (to what the edge sends) still go to
// sipgo's client transactions.

// readFilter runs on sipgo's read loop for every datagram and stream read.
// It must not block.
func (e *Edge) readFilter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if props.Transport != "UDP" || isResponseOrKeepalive(data) {
		return data, nil
	}
	pc := e.udpListener(props.LocalAddr)
	raddr, ok := props.RemoteAddr.(*net.UDPAddr)
	if pc == nil || !ok {
		return data, nil
	}
	ctx, ok := e.enter()
	if !ok {
		return nil, nil // shutting down: the peer retransmits elsewhere or later
	}
	msg := bytes.Clone(data) // sipgo reuses its read buffer
	select {
	case e.slots <- struct{}{}:
		go e.serveUDP(ctx, pc, raddr, msg)
	default:
		// Overloaded: answer 503 right here, cheaply, and remember nothing,
		// so that a retransmission gets another chance.
		e.m.refused.WithLabelValues("overload").Inc()
		e.shedUDP(pc, raddr, msg)
		e.exit()
	}
	return nil, nil
}

func isResponseOrKeepalive(data []byte) bool {
	if bytes.HasPrefix(data, []byte("SIP/")) {
		return true
	}
	return len(bytes.Trim(data, "\r\n\x00 ")) == 0
}

func (e *Edge) udpListener(local net.Addr) net.PacketConn {
	if local == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.udp[local.String()]
}

// serveUDP handles one datagram that holds a request.
func (e *Edge) serveUDP(ctx context.Context, pc net.PacketConn, raddr *net.UDPAddr, data []byte) {
	defer func() { <-e.slots; e.exit() }()
	start := time.Now()
	req, err := e.parseRequest(data)
	if req == nil {
		e.m.refused.WithLabelValues("malformed").Inc()
		e.log.Debug("sip: unparseable datagram dropped", "peer", raddr.String(), "err", err)
		return
	}
	req.SetTransport("UDP")
	req.SetSource(raddr.String())
	method := methodLabel(string(req.Method))
	e.m.requests.WithLabelValues(method, "udp").Inc()
	if req.IsAck() {
		return // ACKs of our final answers need no answer
	}
	key := transactionKey(req)
	state, ans := e.cache.Begin(key)
	switch state {
	case answers.Pending:
		e.m.retrans.WithLabelValues("pending").Inc()
		return
	case answers.Answered:
		e.m.retrans.WithLabelValues("answered").Inc()
		e.writeUDP(pc, raddr, req, ans, key)
		return
	}
	if err != nil {
		ans = answers.Answer{Status: 400, Reason: reasonPhrase("Bad Request", err)}
		e.m.refused.WithLabelValues("malformed").Inc()
	} else {
		ans = e.serve(ctx, req, peer{addr: raddr.AddrPort(), transport: "UDP"})
	}
	e.cache.Finish(key, ans)
	e.writeUDP(pc, raddr, req, ans, key)
	e.m.answers.WithLabelValues(method, codeLabel(ans.Status)).Inc()
	e.m.answerSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// parseRequest parses a datagram. A request whose body is broken but whose
// headers name its transaction comes back with the error, to be answered
// 400; nil means nothing can be answered.
func (e *Edge) parseRequest(data []byte) (*sip.Request, error) {
	msg, err := e.parser.ParseSIP(data)
	req, ok := msg.(*sip.Request)
	if !ok || req == nil {
		if err == nil {
			err = fmt.Errorf("not a request")
		}
		return nil, err
	}
	if req.Via() == nil || req.CSeq() == nil || req.CallID() == nil || req.From() == nil || req.To() == nil {
		if err == nil {
			err = fmt.Errorf("missing Via, CSeq, Call-ID, From or To")
		}
		return nil, err
	}
	return req, err
}

// transactionKey names the server transaction of req (RFC 3261 17.2.3):
// top Via branch, sent-by and method; for RFC 2543 peers without the magic
// cookie, Call-ID, CSeq and From tag stand in for the branch.
func transactionKey(req *sip.Request) answers.Key {
	via := req.Via()
	branch, _ := via.Params.Get("branch")
	sentBy := via.Host + ":" + strconv.Itoa(via.Port)
	if !strings.HasPrefix(branch, "z9hG4bK") {
		tag, _ := req.From().Params.Get("tag")
		branch = req.CallID().Value() + "\x00" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10) + "\x00" + tag
	}
	return answers.KeyOf(branch, sentBy, string(req.Method))
}

// shedUDP answers 503 without handling the request.
func (e *Edge) shedUDP(pc net.PacketConn, raddr *net.UDPAddr, data []byte) {
	req, _ := e.parseRequest(data)
	if req == nil || req.IsAck() {
		return
	}
	req.SetTransport("UDP")
	req.SetSource(raddr.String())
	ans := answers.Answer{Status: 503, Reason: "Service Unavailable: overloaded", RetryAfter: e.retryAfter()}
	e.writeUDP(pc, raddr, req, ans, transactionKey(req))
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeUDP sends the answer where RFC 3261 18.2.2 and RFC 3581 say: the
// source address of the request, at the Via port or, with rport, the
// source port.
func (e *Edge) writeUDP(pc net.PacketConn, raddr *net.UDPAddr, req *sip.Request, ans answers.Answer, key answers.Key) {
	dst := *raddr
	if via := req.Via(); via != nil {
		if _, rport := via.Params.Get("rport"); !rport && via.Port > 0 {
			dst.Port = via.Port
		} else if !rport {
			dst.Port = sip.DefaultUdpPort
		}
	}
	buf := bufs.Get().(*bytes.Buffer)
	buf.Reset()
	e.writeResponse(buf, req, ans, strconv.FormatUint(key.Tag(), 36))
	if _, err := pc.WriteTo(buf.Bytes(), &dst); err != nil {
		e.log.Warn("sip: write answer", "peer", dst.String(), "status", ans.Status, "err", err)
	}
	bufs.Put(buf)
}

// onRequest handles requests over TCP and TLS, which come through sipgo's
// transaction layer; sipgo ends those transactions as soon as this returns.
func (e *Edge) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	if e.dialogs != nil && e.dialogRequest(req, tx) {
		return
	}
	if req.IsAck() {
		return
	}
	start := time.Now()
	method := methodLabel(string(req.Method))
	transport := strings.ToLower(req.Transport())
	e.m.requests.WithLabelValues(method, transport).Inc()
	var ans answers.Answer
	if ctx, ok := e.enter(); !ok {
		ans = answers.Answer{Status: 503, Reason: "Service Unavailable: shutting down", RetryAfter: e.retryAfter()}
	} else {
		select {
		case e.slots <- struct{}{}:
			ans = e.serve(ctx, req, e.streamPeer(req, tx))
			<-e.slots
		default:
			e.m.refused.WithLabelValues("overload").Inc()
			ans = answers.Answer{Status: 503, Reason: "Service Unavailable: overloaded", RetryAfter: e.retryAfter()}
		}
		e.exit()
	}
	res := e.response(req, ans, sip.GenerateTagN(12))
	if err := tx.Respond(res); err != nil {
		e.log.Warn("sip: write answer", "peer", req.Source(), "status", ans.Status, "err", err)
	}
	e.m.answers.WithLabelValues(method, codeLabel(ans.Status)).Inc()
	e.m.answerSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (e *Edge) streamPeer(req *sip.Request, tx sip.ServerTransaction) peer {
	p := peer{transport: strings.ToUpper(req.Transport())}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		p.addr = ap
	}
	if stx, ok := tx.(*sip.ServerTx); ok {
		if c, ok := stx.Connection().(*sip.TCPConnection); ok {
			if fc, ok := c.Conn.(*framedConn); ok {
				if st, ok := fc.ConnectionState(); ok {
					p.tls = &st
				}
			}
		}
	}
	return p
}

func (e *Edge) retryAfter() uint16 { return uint16(e.cfg.RetryAfter / time.Second) }

// tryLater is the 503 for a request the gateway could not take now (the
// bus, a lookup, room to remember it): the peer sends it again later.
func (e *Edge) tryLater() answers.Answer {
	return answers.Answer{Status: 503, Reason: "Service Unavailable: try again later", RetryAfter: e.retryAfter()}
}

// response builds the answer to req. Headers that depend on the answer
// (Contact of an OPTIONS 200, Allow, Accept, a digest challenge,
// Retry-After) are derived from the method and status, so the cache needs
// to hold nothing else to repeat the answer to a retransmission.
func (e *Edge) response(req *sip.Request, ans answers.Answer, tag string) *sip.Response {
	stamp(req, tag)
	res := sip.NewResponseFromRequest(req, int(ans.Status), reasonOr(ans), nil)
	e.answerHeaders(req, ans, func(name, value string) { res.AppendHeader(sip.NewHeader(name, value)) })
	return res
}

// writeResponse writes to w the answer response would build, byte for
// byte, straight from req's headers: the UDP path answers every datagram
// this way, without copying the request's headers into a sipgo Response.
func (e *Edge) writeResponse(w *bytes.Buffer, req *sip.Request, ans answers.Answer, tag string) {
	stamp(req, tag)
	w.WriteString(req.SipVersion)
	w.WriteByte(' ')
	w.WriteString(strconv.Itoa(int(ans.Status)))
	w.WriteByte(' ')
	w.WriteString(reasonOr(ans))
	w.WriteString("\r\n")
	line := func(h sip.Header) {
		h.StringWrite(w)
		w.WriteString("\r\n")
	}
	// Record-Route where RFC 3261 section 20, table 3, has it (as sipgo
	// copies it), then the Vias; one pass over the headers for both.
	routes := req.Method != sip.REGISTER && !req.IsAck() && (ans.Status >= 180 && ans.Status < 190 ||
		ans.Status >= 200 && ans.Status < 300 || req.IsInvite() && ans.Status > 100 && ans.Status < 200)
	hs := req.Headers()
	if routes {
		for _, h := range hs {
			if strings.EqualFold(h.Name(), "Record-Route") {
				line(h)
			}
		}
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name(), "Via") {
			line(h)
		}
	}
	line(req.From())
	line(req.To())
	line(req.CallID())
	line(req.CSeq())
	w.WriteString("Content-Length: 0\r\n")
	e.answerHeaders(req, ans, func(name, value string) {
		w.WriteString(name)
		w.WriteString(": ")
		w.WriteString(value)
		w.WriteString("\r\n")
	})
	w.WriteString("\r\n")
}

// stamp readies req's headers for being copied into an answer: the To
// tag where there is none, and on the top Via where the request came from
// (RFC 3261 18.2.1; rport, RFC 3581 section 4). req is not used for
// anything else afterwards.
func stamp(req *sip.Request, tag string) {
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", tag)
	}
	via := req.Via()
	if via == nil {
		return
	}
	host, port, err := net.SplitHostPort(req.Source())
	if err != nil {
		return
	}
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		via.Params.Add("rport", port)
		via.Params.Add("received", host)
	} else if host != via.Host {
		via.Params.Add("received", host)
	}
}

// answerHeaders calls add for each header the edge puts in its answer ans
// to req after those copied from the request.
func (e *Edge) answerHeaders(req *sip.Request, ans answers.Answer, add func(name, value string)) {
	switch {
	case ans.Status == 200 && req.Method == sip.OPTIONS:
		add("Contact", e.ourContact(req))
		add("Accept", acceptedTypes)
		if e.dialogs != nil {
			add("Allow", allowedSessions)
		} else {
			add("Allow", allowed)
		}
	case ans.Status == 405:
		add("Allow", allowed)
	case ans.Status == 415:
		add("Accept", acceptedTypes)
	case ans.Status == 420:
		add("Unsupported", required(req))
	case ans.Status == 401 && e.digest != nil:
		add("WWW-Authenticate", e.challenge(ans.Reason == reasonStale))
	}
	if ans.RetryAfter > 0 {
		add("Retry-After", strconv.Itoa(int(ans.RetryAfter)))
	}
	add("Server", "mimigw")
}

const (
	allowed       = "MESSAGE, OPTIONS"
	acceptedTypes = "message/cpim, multipart/mixed, application/im-iscomposing+xml, application/vnd.gsma.rcsrevoke+xml"
	reasonStale   = "Unauthorized: stale nonce"
)

// ourContact is the Contact of our OPTIONS answers: the number asked about
// at our address, with the feature tags of what the gateway does (chat and
// large message mode too when sessions are on).
func (e *Edge) ourContact(req *sip.Request) string {
	transport := strings.ToLower(req.Transport())
	u := sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: e.advHost, Port: e.advertisedPort(transport)}
	if transport != "udp" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	if e.dialogs != nil {
		return "<" + u.String() + ">" + ourSessionTags
	}
	return "<" + u.String() + ">" + ourTags
}

// reasonOr returns the answer's reason phrase, or the standard one.
func reasonOr(a answers.Answer) string {
	if a.Reason != "" {
		return a.Reason
	}
	if s, ok := standardReasons[a.Status]; ok {
		return s
	}
	return "Status " + strconv.Itoa(int(a.Status))
}

var standardReasons = map[uint16]string{
	200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 481: "Call/Transaction Does Not Exist",
	500: "Server Internal Error", 503: "Service Unavailable",
}

// reasonPhrase is a reason phrase naming what went wrong: the standard
// phrase, a colon and err's text, kept to printable ASCII and a sane length
// so that no input can inject a header.
func reasonPhrase(standard string, err error) string {
	var b strings.Builder
	b.WriteString(standard)
	if err == nil {
		return b.String()
	}
	b.WriteString(": ")
	for _, r := range err.Error() {
		if b.Len() >= 160 {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
