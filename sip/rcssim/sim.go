package rcssim

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/imdn"
	"github.com/mimigw/mimigw/sip/msrp"
)

// How a message travelled, as Received.Mode says it.
const (
	ModePager = "pager" // a MESSAGE (RCS pager mode)
	ModeLarge = "large" // an MSRP session of its own (cpm.largemsg)
	ModeChat  = "chat"  // a chat session (cpm.session)
)

// Service identifiers and feature tags (GSMA RCC.07, 3GPP TS 24.229): the
// URNs are percent-encoded inside feature-tag values.
const (
	icsiMsg      = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.msg"
	icsiLargeMsg = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg"
	icsiSession  = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.session"
	iariFTHTTP   = "urn:urn-7:3gpp-application.ims.iari.rcs.fthttp"
	tagICSI      = "+g.3gpp.icsi-ref"
	tagIARI      = "+g.3gpp.iari-ref"
	allowed      = "INVITE, ACK, CANCEL, BYE, UPDATE, MESSAGE, OPTIONS"
	textPlain    = "text/plain;charset=UTF-8"
)

func encodeURN(s string) string { return strings.ReplaceAll(s, ":", "%3A") }

// capabilityTags are the feature tags of the Contact of every OPTIONS
// answer: pager mode, chat, large message mode, file transfer via HTTP.
var capabilityTags = ";" + tagICSI + `="` + encodeURN(icsiSession) + "," + encodeURN(icsiMsg) + "," + encodeURN(icsiLargeMsg) + `";` +
	tagIARI + `="` + encodeURN(iariFTHTTP) + `"`

// stepTimeout bounds each step of what the simulator does on its own: a
// request's answer, an MSRP binding, a message's sending, a BYE.
const stepTimeout = 30 * time.Second

// Received is one message (or IMDN) a phone of the simulator received.
type Received struct {
	At          time.Time `json:"at"`
	Mode        string    `json:"mode"` // pager, large or chat
	From        string    `json:"from"` // E.164
	To          string    `json:"to"`   // the simulator's number
	ContentType string    `json:"content_type"`
	// MessageID is the CPIM imdn.Message-ID.
	MessageID string `json:"message_id"`
	Text      string `json:"text,omitempty"` // the body of a text/* message
	Size      int    `json:"size"`           // bytes of the body inside the CPIM
	// Notification and About are an IMDN's status ("delivered",
	// "displayed", "failed"...) and the message-id it reports on.
	Notification string `json:"notification,omitempty"`
	About        string `json:"about,omitempty"`
	CallID       string `json:"call_id,omitempty"`
}

// Sim is the RCS phone simulator: a SIP user agent on Config.Listen and an
// MSRP endpoint on Config.MSRP that play Config.Numbers.
type Sim struct {
	cfg  Config
	nums numbers
	gw   target
	log  *slog.Logger

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	cli     *sipgo.Client
	dialogs *sipgo.DialogServerCache
	pool    *msrp.Pool
	relay   *msrp.Relay // Config.MSRPRelay's, after Listen

	udp      net.PacketConn
	tcp      net.Listener
	msrpLn   net.Listener
	host     string
	sipPort  int
	msrpHost string
	msrpPort int

	ctx    context.Context // ends when Serve ends: what the simulator does on its own stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // sessions and IMDNs under way

	mu       sync.Mutex
	received []Received
	calls    map[string]*call // sessions the simulator opened, by Call-ID
	chats    map[string]*call // open outgoing chat sessions, by from and to
	answered map[string]*call // sessions the simulator took, by Call-ID
}

// New checks cfg (empty fields take their defaults) and prepares the
// simulator; Listen binds it and Serve runs it.
func New(cfg Config, log *slog.Logger) (*Sim, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rcssim: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	nums, _ := parseNumbers(cfg.Numbers) // validated
	gw, _ := parseTarget(cfg.Gateway)    // validated
	s := &Sim{cfg: cfg, nums: nums, gw: gw, log: log.With("sim", "rcs"),
		calls: map[string]*call{}, chats: map[string]*call{}, answered: map[string]*call{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Listen binds the SIP address (UDP and TCP) and the MSRP listener.
func (s *Sim) Listen() (err error) {
	var closers []interface{ Close() error }
	defer func() {
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
		}
	}()
	s.tcp, err = net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("rcssim: listen tcp %s: %w", s.cfg.Listen, err)
	}
	closers = append(closers, s.tcp)
	// UDP on the port TCP got, so that a port 0 gives one address.
	s.udp, err = net.ListenPacket("udp", s.tcp.Addr().String())
	if err != nil {
		return fmt.Errorf("rcssim: listen udp %s: %w", s.tcp.Addr(), err)
	}
	closers = append(closers, s.udp)
	s.msrpLn, err = net.Listen("tcp", s.cfg.MSRP)
	if err != nil {
		return fmt.Errorf("rcssim: listen msrp %s: %w", s.cfg.MSRP, err)
	}
	closers = append(closers, s.msrpLn)
	s.host, s.sipPort = splitAddr(s.tcp.Addr())
	s.msrpHost, s.msrpPort = splitAddr(s.msrpLn.Addr())

	sipLog := s.log.With("proto", "sip")
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("mimigw-rcssim"), sipgo.WithUserAgentHostname(s.cfg.Domain),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err != nil {
		return fmt.Errorf("rcssim: user agent: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return fmt.Errorf("rcssim: server: %w", err)
	}
	if s.cli, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(s.host)); err != nil {
		return fmt.Errorf("rcssim: client: %w", err)
	}
	s.dialogs = sipgo.NewDialogServerCache(s.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: s.host, Port: s.sipPort}})
	s.srv.OnOptions(s.safe(s.onOptions))
	s.srv.OnMessage(s.safe(s.onMessage))
	s.srv.OnInvite(s.safe(s.onInvite))
	s.srv.OnAck(s.safe(s.onAck))
	s.srv.OnBye(s.safe(s.onBye))
	s.srv.OnUpdate(s.safe(s.onUpdate))
	s.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(req, tx, 481, "Call/Transaction Does Not Exist")
	})
	s.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) { respond(req, tx, 405, "Method Not Allowed") })

	s.pool, err = msrp.NewPool(msrp.Config{Logger: s.log.With("proto", "msrp")})
	if err != nil {
		return fmt.Errorf("rcssim: msrp: %w", err)
	}
	if s.cfg.MSRPRelay != "" {
		u, _ := msrp.ParseURI(s.cfg.MSRPRelay) // checked by Validate
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		if s.relay, err = s.pool.Auth(ctx, msrp.RelayConfig{URI: u}); err != nil {
			s.pool.Close()
			return fmt.Errorf("rcssim: msrp_relay: %w", err)
		}
		s.log.Info("MSRP through a relay", "relay", u.String(), "use_path", fmt.Sprint(s.relay.UsePath()))
	}
	return nil
}

// safe keeps a panic in a handler from ending the process: the request
// gets 500 and the panic is logged.
func (s *Sim) safe(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("request handling panicked", "method", req.Method, "panic", fmt.Sprint(r))
				if tx != nil {
					respond(req, tx, 500, "Server Internal Error")
				}
			}
		}()
		h(req, tx)
	}
}

func splitAddr(a net.Addr) (string, int) {
	h, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return h, n
}

// SIPAddr is the bound SIP address (UDP and TCP), MSRPAddr the MSRP one;
// both nil before Listen.
func (s *Sim) SIPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// MSRPAddr is the bound MSRP address.
func (s *Sim) MSRPAddr() net.Addr {
	if s.msrpLn == nil {
		return nil
	}
	return s.msrpLn.Addr()
}

// Serve runs the simulator until ctx ends (then nil) or a listener fails.
// On the way out it ends its sessions with a BYE each.
func (s *Sim) Serve(ctx context.Context) error {
	if s.ua == nil {
		return errors.New("rcssim: Serve before Listen")
	}
	s.log.Warn("RCS PHONE SIMULATOR listening: not a phone, nothing sent to its numbers reaches anyone",
		"sip", s.tcp.Addr().String(), "msrp", s.msrpLn.Addr().String(), "numbers", strings.Join(s.cfg.Numbers, ","), "gateway", s.cfg.Gateway)
	errc := make(chan error, 3)
	go func() { errc <- s.srv.ServeUDP(s.udp) }()
	go func() { errc <- s.srv.ServeTCP(s.tcp) }()
	go func() { errc <- s.pool.Serve(context.Background(), s.msrpLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("rcssim: serve: %w", err)
	}
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	s.udp.Close()
	s.tcp.Close()
	s.msrpLn.Close()
	s.ua.Close()
	return err
}

// Received is what the simulator's phones received, oldest first.
func (s *Sim) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.received))
	copy(out, s.received)
	return out
}

func (s *Sim) record(r Received) {
	r.At = time.Now().UTC()
	s.mu.Lock()
	if s.cfg.MaxLog > 0 && len(s.received) >= s.cfg.MaxLog {
		s.received = append(s.received[:0], s.received[len(s.received)-s.cfg.MaxLog+1:]...)
	}
	s.received = append(s.received, r)
	s.mu.Unlock()
	if r.Notification != "" {
		s.log.Info("IMDN received", "mode", r.Mode, "from", r.From, "to", r.To, "status", r.Notification, "about", r.About)
		return
	}
	s.log.Info("message received", "mode", r.Mode, "from", r.From, "to", r.To, "msg_id", r.MessageID,
		"content_type", r.ContentType, "bytes", r.Size)
	s.log.Debug("message text", "msg_id", r.MessageID, "text", clip(r.Text, 200))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// go runs f as work of the simulator's, waited for by Serve.
func (s *Sim) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// ---- numbers and URIs

// numberOf reads the number a SIP or tel URI names.
func numberOf(u *sip.Uri) (uri.Number, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URI", uri.ErrBadNumber)
	}
	switch strings.ToLower(u.Scheme) {
	case "tel":
		return uri.ParseNumber("tel:"+u.Raw(), "")
	case "sip", "sips":
		return uri.ParseNumber(u.User, "")
	}
	return "", fmt.Errorf("%w: scheme %q", uri.ErrBadNumber, u.Scheme)
}

// ours is the simulator's number a request is for, from its Request-URI
// or else its To.
func (s *Sim) ours(req *sip.Request) (uri.Number, bool) {
	n, err := numberOf(&req.Recipient)
	if err != nil {
		if to := req.To(); to != nil {
			n, err = numberOf(&to.Address)
		}
	}
	if err != nil || !s.nums.has(n) {
		return "", false
	}
	return n, true
}

// sender is whom a request is from: P-Asserted-Identity, else From.
func sender(req *sip.Request) (uri.Number, error) {
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		v := h.Value()
		if i, j := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); i >= 0 && j > i {
			v = v[i+1 : j]
		}
		var u sip.Uri
		if err := sip.ParseUri(v, &u); err == nil {
			if n, err := numberOf(&u); err == nil {
				return n, nil
			}
		}
	}
	if f := req.From(); f != nil {
		return numberOf(&f.Address)
	}
	return "", fmt.Errorf("%w: no From", uri.ErrBadNumber)
}

func (s *Sim) numberURI(n uri.Number) sip.Uri {
	return sip.Uri{Scheme: "sip", User: n.String(), Host: s.cfg.Domain, UriParams: sip.HeaderParams{{K: "user", V: "phone"}}}
}

// uriOf is n as the sip: URI the simulator writes.
func (s *Sim) uriOf(n uri.Number) string {
	u := s.numberURI(n)
	return u.String()
}

// contact is the Contact of what a number of the simulator sends or
// answers, with the feature tags given.
func (s *Sim) contact(n uri.Number, transport, tags string) string {
	u := sip.Uri{Scheme: "sip", User: n.String(), Host: s.host, Port: s.sipPort}
	if transport != "udp" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	return "<" + u.String() + ">" + tags
}

// callID is a request's Call-ID, "" when it has none.
func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// newID is a random imdn.Message-ID, Call-ID or Conversation-ID.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// ---- requests toward the gateway

// newRequest builds a request from one of the simulator's numbers to a
// number, routed through the gateway (which stands in for the IMS core).
func (s *Sim) newRequest(method sip.RequestMethod, from, to uri.Number, transport string) *sip.Request {
	target := s.numberURI(to)
	req := sip.NewRequest(method, target)
	req.SetTransport(strings.ToUpper(transport))
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: s.host, Port: s.sipPort, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	req.AppendHeader(&sip.RouteHeader{Address: sip.Uri{Scheme: "sip", Host: s.gw.host, Port: s.gw.port,
		UriParams: sip.HeaderParams{{K: "transport", V: transport}, {K: "lr", V: ""}}}})
	fromH := &sip.FromHeader{Address: s.numberURI(from), Params: sip.NewParams()}
	fromH.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	callID := sip.CallIDHeader(newID() + "@" + s.host)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+s.uriOf(from)+">"))
	req.AppendHeader(sip.NewHeader("User-Agent", "mimigw-rcssim"))
	if transport == "udp" {
		// From the listening socket, so that the answer comes back to it.
		req.Laddr = sip.Addr{IP: net.ParseIP(s.host), Port: s.sipPort}
	}
	return req
}

// sendMessage sends a pager-mode MESSAGE carrying CPIM and waits for a 2xx.
func (s *Sim) sendMessage(ctx context.Context, from, to uri.Number, conversationID string, body []byte) error {
	req := s.newRequest(sip.MESSAGE, from, to, s.gw.transport)
	req.AppendHeader(sip.NewHeader("Accept-Contact", "*;"+tagICSI+`="`+encodeURN(icsiMsg)+`"`))
	req.AppendHeader(sip.NewHeader("P-Preferred-Service", icsiMsg))
	if conversationID != "" {
		req.AppendHeader(sip.NewHeader("Conversation-ID", conversationID))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", cpim.ContentType))
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	res, err := s.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("MESSAGE to %s via %s: %w", to, s.gw.addr(), err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("MESSAGE to %s: %d %s", to, res.StatusCode, res.Reason)
	}
	return nil
}

// ---- what arrives

func (s *Sim) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	n, ok := s.ours(req)
	if !ok {
		respond(req, tx, 404, "Not Found")
		return
	}
	respond(req, tx, 200, "OK",
		sip.NewHeader("Contact", s.contact(n, strings.ToLower(req.Transport()), capabilityTags)),
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp, message/cpim"))
}

func (s *Sim) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	to, ok := s.ours(req)
	if !ok {
		respond(req, tx, 404, "Not Found")
		return
	}
	from, err := sender(req)
	if err != nil {
		respond(req, tx, 400, "Bad Request: sender")
		return
	}
	ct := req.ContentType()
	if ct == nil || mediaType(ct.Value()) != cpim.ContentType {
		respond(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", cpim.ContentType))
		return
	}
	m, err := cpim.Parse(req.Body())
	if err != nil {
		respond(req, tx, 400, "Bad Request: CPIM")
		return
	}
	conversationID := ""
	if h := req.GetHeader("Conversation-ID"); h != nil {
		conversationID = h.Value()
	}
	respond(req, tx, 200, "OK")
	s.take(ModePager, from, to, callID(req), m, func(ctx context.Context, b []byte) error {
		return s.sendMessage(ctx, to, from, conversationID, b)
	})
}

// take records a CPIM message one of the simulator's numbers received and
// sends the IMDNs it asks for with reply.
func (s *Sim) take(mode string, from, to uri.Number, callID string, m *cpim.Message, reply func(context.Context, []byte) error) {
	r := Received{Mode: mode, From: from.String(), To: to.String(), ContentType: m.ContentType(),
		MessageID: m.MessageID(), Size: len(m.Body), CallID: callID}
	if imdn.IsNotification(m.ContentType()) {
		n, err := imdn.Parse(m.Body)
		if err != nil {
			s.log.Info("IMDN not understood", "mode", mode, "from", from, "err", err)
			r.Notification = "unreadable"
		} else {
			r.Notification, r.About = string(n.Status), n.MessageID
		}
		s.record(r)
		return
	}
	if strings.HasPrefix(mediaType(r.ContentType), "text/") {
		r.Text = string(m.Body)
	}
	s.record(r)
	positive, _, display := m.DispositionNotification()
	id := m.MessageID()
	if id == "" || (!positive && !(display && s.cfg.Displayed)) {
		return
	}
	_, theirs := m.From()
	_, mine := m.To()
	if theirs == "" {
		theirs = s.uriOf(from)
	}
	if mine == "" {
		mine = s.uriOf(to)
	}
	var docs []*imdn.Notification
	if positive {
		docs = append(docs, imdn.NewDelivered(id, time.Now()))
	}
	if display && s.cfg.Displayed {
		docs = append(docs, imdn.NewDisplayed(id, time.Now()))
	}
	s.spawn(func() {
		for _, d := range docs {
			ctx, cancel := context.WithTimeout(s.ctx, stepTimeout)
			err := reply(ctx, d.CPIM(mine, theirs, newID()).Bytes())
			cancel()
			if err != nil {
				s.log.Warn("IMDN not sent", "mode", mode, "to", from, "about", id, "status", d.Status, "err", err)
				return
			}
			s.log.Info("IMDN sent", "mode", mode, "from", to, "to", from, "about", id, "status", d.Status)
		}
	})
}
