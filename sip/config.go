package sip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/nyaruka/phonenumbers"
)

// Config is the SIP edge's configuration (the sip: section of the YAML
// file).
type Config struct {
	Listen Listen `yaml:"listen"`
	// Advertise is the host (and optionally port) written into our Via and
	// Contact headers; empty means the host of the listen addresses, which
	// must then not be an unspecified address.
	Advertise string `yaml:"advertise"`
	// Domain is the host part of the sip: URIs the edge writes
	// (sip:+15551230002@Domain;user=phone).
	Domain string `yaml:"domain"`
	// DefaultRegion reads national numbers (ISO 3166 code, e.g. "US").
	DefaultRegion string `yaml:"default_region"`
	// URIForm is how numbers are written in what we send: "sip"
	// (sip:+...@domain;user=phone) or "tel" (tel:+...).
	URIForm string `yaml:"uri_form"`

	TLS     TLSFiles `yaml:"tls"`
	Trusted Trusted  `yaml:"trusted"`
	Digest  Digest   `yaml:"digest"`

	// OutboundProxy is the IMS core everything we send goes to, as a SIP
	// URI: "sip:10.0.0.1:5060;transport=udp" (transport udp, tcp or tls).
	OutboundProxy string `yaml:"outbound_proxy"`
	// LargeOverTCP sends a request that would exceed 1300 bytes over TCP to
	// the outbound proxy when its transport is UDP (RFC 3261 18.1.1). When
	// false such a message fails with gateway.ErrTooLarge, and the gateway
	// sends it by SMS.
	LargeOverTCP *bool `yaml:"large_over_tcp"`
	// MaxBody is the largest MESSAGE body accepted or sent over TCP/TLS. A
	// larger one gets 413 and is skipped; the connection stays up.
	MaxBody int `yaml:"max_body"`
	// MaxRecipients caps a one-to-many message's recipient list.
	MaxRecipients int `yaml:"max_recipients"`
	// MaxInFlight caps requests being handled at once (waiting for the
	// gateway included); beyond it the edge answers 503 at once instead of
	// queueing.
	MaxInFlight int `yaml:"max_in_flight"`
	// UDPBuffer sizes the UDP socket's kernel receive and send buffers
	// (bytes; the kernel caps it at net.core.rmem_max/wmem_max). A
	// burst, or a pause of the reading goroutine, must fit in it, or
	// datagrams are dropped and the peer retransmits.
	UDPBuffer int `yaml:"udp_buffer"`
	// ReceiveConcurrency caps calls into the gateway at once; further
	// requests wait (within queue_timeout). Each call waits for JetStream
	// (the message and its delivery record), so the rate a connection
	// carries is about this many calls per JetStream round trip: on two
	// cores 256 carried twice what 64 did over one TCP connection; bare
	// synchronous publishes degrade from several hundred callers.
	ReceiveConcurrency int `yaml:"receive_concurrency"`
	// QueueTimeout bounds how long a request waits for its turn at the
	// gateway; past it the answer is 503 with Retry-After. Kept under
	// T1 (500 ms) so that overload is shed at once instead of growing a
	// queue that UDP peers retransmit into.
	QueueTimeout time.Duration `yaml:"queue_timeout"`

	Timeouts Timeouts `yaml:"timeouts"`
	// RetryAfter is the Retry-After of a 503 when the bus cannot take a
	// message.
	RetryAfter time.Duration `yaml:"retry_after"`
	// RevokeTemplateFile holds the revocation body template (see
	// sip/revoke); empty means the built-in one.
	RevokeTemplateFile string `yaml:"revoke_template_file"`

	AnswerCache AnswerCache `yaml:"answer_cache"`

	Sessions Sessions `yaml:"sessions"`
}

// Sessions configures the chat sessions the edge opens toward phones
// (chat.go), and bounds the ones phones open toward it (session.go). They
// need listen.msrp.
type Sessions struct {
	// Outbound is how a message goes to a phone whose OPTIONS answer
	// advertised chat sessions (cpm.session): "pager" (the default) sends
	// every message as a pager-mode MESSAGE, which every Universal Profile
	// client takes; "chat" sends it in an MSRP chat session with the phone,
	// opened once per conversation and reused, falling back to pager mode
	// when the session cannot be set up or the message cannot be sent in
	// it. Pager mode stays the default: it holds nothing open per
	// conversation, and a chat session brings no delivery guarantee pager
	// mode lacks (both end at the network's acceptance).
	Outbound string `yaml:"outbound"`
	// IdleTimeout closes (BYE) a session nothing was sent or received in
	// for this long: a chat session the edge opened, and any session a
	// phone opened (chat, large message mode), whose Session-Expires the
	// edge does not enforce.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// SetupTimeout bounds the opening of a chat session: the INVITE's final
	// answer and the MSRP connection. Past it the message goes by pager mode.
	SetupTimeout time.Duration `yaml:"setup_timeout"`
	// SendTimeout bounds the sending of one message in a session, until
	// the 200 of its last chunk.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// Expires is the Session-Expires (RFC 4028) asked for in the INVITE;
	// when the phone's 200 makes us the refresher we send UPDATE at half of
	// the interval it granted. 30m by default, as RCS clients ask; a
	// negative value leaves session timers out.
	Expires time.Duration `yaml:"expires"`
	// MaxOutbound caps the chat sessions open toward phones at once; past
	// it a message for a phone without a session goes by pager mode.
	MaxOutbound int `yaml:"max_outbound"`
	// MaxInbound caps the sessions phones have open toward the edge at
	// once (from their 200 to their end); past it an INVITE gets 503 with
	// Retry-After, as when the edge is overloaded, so that the IMS core
	// may try another instance and the phone falls back to pager mode.
	MaxInbound int `yaml:"max_inbound"`
	// QueueLength caps the messages waiting for one session; past it a
	// message goes by pager mode at once.
	QueueLength int `yaml:"queue_length"`
	// MSRPS has the sessions the edge opens toward phones (chat, large
	// message mode) offer MSRP over TLS (TCP/TLS/MSRP) on listen.msrps,
	// with the fingerprint of tls.cert_file, instead of MSRP over TCP. The
	// phone's answer must carry a=fingerprint and its MSRP connection the
	// certificate it names; otherwise the session is not set up and the
	// message goes by pager mode (then SMS). Needs listen.msrps.
	MSRPS bool `yaml:"msrps"`
	// MaxMessageSize is the largest message, in bytes, the edge takes in
	// an MSRP session, opened by the phone or by the edge: it is the
	// a=max-size of the edge's SDP offers and answers, and a SEND whose
	// Byte-Range total or received bytes go over it is answered 413 (the
	// connection and the session carry on). 900 KiB by default, under
	// the bus's 1 MB max payload (NATS max_payload) with room for the
	// MIMI encoding and the headers; raise it only with max_payload. A
	// message the bus still cannot store is answered 413 as well.
	MaxMessageSize int64 `yaml:"max_message_size"`
	// Relay is the edge's own MSRP relay (RFC 4976), an msrp:// URI: the
	// edge AUTHs to it at start, and every MSRP-over-TCP session, either
	// side opening it, goes through it: the relay's Use-Path comes first
	// in the edge's a=path, and the edge sends over the connection it
	// AUTHed on (and connects, answering an offer of actpass active).
	// msrps sessions stay direct. Empty: no relay.
	Relay string `yaml:"relay"`
}

// DefaultMaxMessageSize is sessions.max_message_size when unset.
const DefaultMaxMessageSize = 900 << 10

// maxSessionMessage bounds sessions.max_message_size: the MSRP pool's own
// limit (msrp.Limits.MaxMessage by default), which a session cannot raise.
const maxSessionMessage = 16 << 20

// Outbound session modes.
const (
	OutboundPager = "pager"
	OutboundChat  = "chat"
)

// Listen holds one address per transport; empty disables the transport.
type Listen struct {
	UDP string `yaml:"udp"`
	TCP string `yaml:"tcp"`
	TLS string `yaml:"tls"`
	// MSRP is the TCP address phones connect to for the MSRP side of the
	// sessions they open with INVITE (RCS chat, large message mode).
	// Empty: no sessions, INVITE is answered 405.
	MSRP string `yaml:"msrp"`
	// MSRPS is the TCP address phones connect to with TLS for sessions
	// whose offer is TCP/TLS/MSRP (msrps, RFC 4975 section 14). It presents
	// the tls.cert_file certificate, whose fingerprint our SDP answer
	// carries, and takes a phone's connection only with the certificate of
	// the phone's a=fingerprint (RFC 4572). Needs listen.msrp. Empty: such
	// offers get 488.
	MSRPS string `yaml:"msrps"`
}

// TLSFiles are PEM files. CAFile verifies the certificates of peers that
// present one (clients over our TLS listener, the outbound proxy).
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// Trusted names the peers whose requests are taken without
// authentication and whose P-Asserted-Identity is believed: the IMS core.
type Trusted struct {
	CIDRs []string `yaml:"cidrs"`
	// TLSIdentities are DNS names (or subject common names) of
	// certificates, verified against tls.ca_file, presented on our TLS
	// listener.
	TLSIdentities []string `yaml:"tls_identities"`
}

// Digest enables digest authentication (RFC 3261 22) for clients that are
// not trusted peers. An authenticated user may send only as their number.
type Digest struct {
	Enabled  bool          `yaml:"enabled"`
	Realm    string        `yaml:"realm"`
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	Users    []DigestUser  `yaml:"users"`
}

// DigestUser is a client allowed to authenticate. Its password comes from
// a file or an environment variable, never from the YAML file itself.
type DigestUser struct {
	Username     string `yaml:"username"`
	Number       string `yaml:"number"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// Timeouts bound the edge's waits.
type Timeouts struct {
	// Request bounds an outbound request until its final answer; past it
	// the request counts as unanswered.
	Request time.Duration `yaml:"request"`
	// Receive bounds a call into the gateway for one inbound request;
	// past it the request is answered 503.
	Receive time.Duration `yaml:"receive"`
}

// AnswerCache sizes the memory of answers to UDP requests handled
// statelessly, which lets retransmissions get the same answer.
type AnswerCache struct {
	TTL        time.Duration `yaml:"ttl"`
	MaxEntries int           `yaml:"max_entries"`
}

// Defaults fills what was left empty.
func (c *Config) Defaults() {
	if c.URIForm == "" {
		c.URIForm = "sip"
	}
	if c.LargeOverTCP == nil {
		t := true
		c.LargeOverTCP = &t
	}
	if c.MaxBody == 0 {
		c.MaxBody = 64 << 10
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = 100
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4096
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = 400 * time.Millisecond
	}
	if c.UDPBuffer == 0 {
		c.UDPBuffer = 4 << 20
	}
	if c.ReceiveConcurrency == 0 {
		c.ReceiveConcurrency = min(256, c.MaxInFlight)
	}
	if c.Timeouts.Request == 0 {
		c.Timeouts.Request = 10 * time.Second
	}
	if c.Timeouts.Receive == 0 {
		c.Timeouts.Receive = 10 * time.Second
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.AnswerCache.TTL == 0 {
		c.AnswerCache.TTL = 32 * time.Second // Timer J: 64*T1
	}
	if c.AnswerCache.MaxEntries == 0 {
		c.AnswerCache.MaxEntries = 1 << 20
	}
	if c.Digest.Realm == "" {
		c.Digest.Realm = c.Domain
	}
	if c.Digest.NonceTTL == 0 {
		c.Digest.NonceTTL = 5 * time.Minute
	}
	s := &c.Sessions
	if s.Outbound == "" {
		s.Outbound = OutboundPager
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 5 * time.Minute
	}
	if s.SetupTimeout == 0 {
		s.SetupTimeout = 15 * time.Second
	}
	if s.SendTimeout == 0 {
		s.SendTimeout = 15 * time.Second
	}
	if s.Expires == 0 {
		s.Expires = 30 * time.Minute
	}
	if s.MaxOutbound == 0 {
		s.MaxOutbound = 10000
	}
	if s.MaxInbound == 0 {
		s.MaxInbound = 20000
	}
	if s.QueueLength == 0 {
		s.QueueLength = 64
	}
	if s.MaxMessageSize == 0 {
		s.MaxMessageSize = DefaultMaxMessageSize
	}
}

// DevConfig is what `mimigw serve --dev` runs: UDP and TCP on
// 127.0.0.1:5060, loopback trusted, an outbound proxy on 127.0.0.1:5070.
func DevConfig() Config {
	c := Config{
		Listen:        Listen{UDP: "127.0.0.1:5060", TCP: "127.0.0.1:5060"},
		Domain:        "mimigw.test",
		DefaultRegion: "US",
		Trusted:       Trusted{CIDRs: []string{"127.0.0.0/8", "::1/128"}},
		OutboundProxy: "sip:127.0.0.1:5070;transport=udp",
	}
	c.Defaults()
	return c
}

// Validate checks the configuration, naming the key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("sip.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Listen.UDP == "" && c.Listen.TCP == "" && c.Listen.TLS == "" {
		bad("listen", "no transport enabled: set udp, tcp or tls")
	}
	var hosts []string
	for key, addr := range map[string]string{"listen.udp": c.Listen.UDP, "listen.tcp": c.Listen.TCP, "listen.tls": c.Listen.TLS} {
		if addr == "" {
			continue
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			bad(key, "%q is not host:port: %v", addr, err)
			continue
		}
		hosts = append(hosts, host)
	}
	if c.Listen.MSRP != "" {
		if _, _, err := net.SplitHostPort(c.Listen.MSRP); err != nil {
			bad("listen.msrp", "%q is not host:port: %v", c.Listen.MSRP, err)
		}
	}
	if c.Listen.MSRPS != "" {
		if _, _, err := net.SplitHostPort(c.Listen.MSRPS); err != nil {
			bad("listen.msrps", "%q is not host:port: %v", c.Listen.MSRPS, err)
		}
		if c.Listen.MSRP == "" {
			bad("listen.msrps", "needs listen.msrp (sessions are taken only with it)")
		}
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			bad("listen.msrps", "needs tls.cert_file and tls.key_file (the certificate it presents)")
		}
	}
	if c.Advertise != "" {
		if _, err := parseHostPort(c.Advertise); err != nil {
			bad("advertise", "%v", err)
		}
	} else {
		for _, h := range hosts {
			if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
				bad("advertise", "must be set when listening on an unspecified address (%q)", h)
				break
			}
		}
	}
	if c.Domain == "" {
		bad("domain", "must be set (host part of our sip: URIs)")
	}
	if c.DefaultRegion != "" && phonenumbers.GetCountryCodeForRegion(strings.ToUpper(c.DefaultRegion)) == 0 {
		bad("default_region", "%q is not a known region code", c.DefaultRegion)
	}
	if c.URIForm != "sip" && c.URIForm != "tel" {
		bad("uri_form", "%q: want sip or tel", c.URIForm)
	}
	if c.Listen.TLS != "" && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file are needed for listen.tls")
	}
	if len(c.Trusted.TLSIdentities) > 0 && c.TLS.CAFile == "" {
		bad("tls.ca_file", "needed to verify trusted.tls_identities")
	}
	for i, s := range c.Trusted.CIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("trusted.cidrs[%d]", i), "%v", err)
		}
	}
	if c.Digest.Enabled {
		if len(c.Digest.Users) == 0 {
			bad("digest.users", "digest is enabled but no user is configured")
		}
		for i, u := range c.Digest.Users {
			key := fmt.Sprintf("digest.users[%d]", i)
			if u.Username == "" {
				bad(key+".username", "empty")
			}
			if (u.PasswordFile == "") == (u.PasswordEnv == "") {
				bad(key, "set exactly one of password_file and password_env")
			}
			if _, err := uri.ParseNumber(u.Number, c.DefaultRegion); err != nil {
				bad(key+".number", "%v", err)
			}
		}
	}
	if _, err := parseProxy(c.OutboundProxy); err != nil {
		bad("outbound_proxy", "%v", err)
	}
	if c.MaxBody < 1300 || c.MaxBody > 16<<20 {
		bad("max_body", "%d: want 1300 to 16 MiB", c.MaxBody)
	}
	if c.MaxRecipients < 1 {
		bad("max_recipients", "%d: want at least 1", c.MaxRecipients)
	}
	if c.MaxInFlight < 1 {
		bad("max_in_flight", "%d: want at least 1", c.MaxInFlight)
	}
	if c.QueueTimeout <= 0 {
		bad("queue_timeout", "must be positive")
	}
	if c.UDPBuffer < 64<<10 || c.UDPBuffer > 256<<20 {
		bad("udp_buffer", "%d: want 64 KiB to 256 MiB", c.UDPBuffer)
	}
	if c.ReceiveConcurrency < 1 || c.ReceiveConcurrency > c.MaxInFlight {
		bad("receive_concurrency", "%d: want 1 to max_in_flight (%d)", c.ReceiveConcurrency, c.MaxInFlight)
	}
	if c.Timeouts.Request <= 0 {
		bad("timeouts.request", "must be positive")
	}
	if c.Timeouts.Receive <= 0 {
		bad("timeouts.receive", "must be positive")
	}
	if c.RetryAfter < time.Second || c.RetryAfter > time.Hour {
		bad("retry_after", "%s: want 1s to 1h", c.RetryAfter)
	}
	if c.AnswerCache.TTL < time.Second {
		bad("answer_cache.ttl", "%s: want at least 1s (32s matches Timer J)", c.AnswerCache.TTL)
	}
	if c.AnswerCache.MaxEntries < 1000 {
		bad("answer_cache.max_entries", "%d: want at least 1000", c.AnswerCache.MaxEntries)
	}
	s := c.Sessions
	switch s.Outbound {
	case OutboundPager:
	case OutboundChat:
		if c.Listen.MSRP == "" {
			bad("sessions.outbound", "chat needs listen.msrp")
		}
	default:
		bad("sessions.outbound", "%q: want pager or chat", s.Outbound)
	}
	if s.MSRPS && c.Listen.MSRPS == "" {
		bad("sessions.msrps", "needs listen.msrps")
	}
	if s.IdleTimeout < time.Second {
		bad("sessions.idle_timeout", "%s: want at least 1s", s.IdleTimeout)
	}
	if s.SetupTimeout < 100*time.Millisecond || s.SetupTimeout > 5*time.Minute {
		bad("sessions.setup_timeout", "%s: want 100ms to 5m", s.SetupTimeout)
	}
	if s.SendTimeout < 100*time.Millisecond || s.SendTimeout > 5*time.Minute {
		bad("sessions.send_timeout", "%s: want 100ms to 5m", s.SendTimeout)
	}
	if s.Expires >= 0 && s.Expires < 90*time.Second {
		// RFC 4028 section 4: Min-SE is at least 90 seconds.
		bad("sessions.expires", "%s: want at least 90s, or negative for none", s.Expires)
	}
	if s.MaxOutbound < 1 {
		bad("sessions.max_outbound", "%d: want at least 1", s.MaxOutbound)
	}
	if s.MaxInbound < 1 {
		bad("sessions.max_inbound", "%d: want at least 1", s.MaxInbound)
	}
	if s.QueueLength < 1 {
		bad("sessions.queue_length", "%d: want at least 1", s.QueueLength)
	}
	if s.MaxMessageSize < 1<<10 || s.MaxMessageSize > maxSessionMessage {
		bad("sessions.max_message_size", "%d: want 1 KiB to 16 MiB", s.MaxMessageSize)
	}
	if s.Relay != "" {
		switch u, err := msrp.ParseURI(s.Relay); {
		case err != nil:
			bad("sessions.relay", "%q: %v", s.Relay, err)
		case u.Secure:
			bad("sessions.relay", "%q: msrps relays are not supported; give an msrp:// (TCP) one", s.Relay)
		case c.Listen.MSRP == "":
			bad("sessions.relay", "needs listen.msrp")
		}
	}
	return errors.Join(errs...)
}

// proxy is the parsed outbound proxy.
type proxy struct {
	host      string
	port      int
	transport string // "udp", "tcp" or "tls"
}

func parseProxy(s string) (proxy, error) {
	if s == "" {
		return proxy{}, errors.New("must be set (the IMS core we send to)")
	}
	rest, ok := strings.CutPrefix(strings.ToLower(s), "sip:")
	if !ok {
		if rest, ok = strings.CutPrefix(strings.ToLower(s), "sips:"); !ok {
			return proxy{}, fmt.Errorf("%q: want sip:host:port;transport=udp|tcp|tls", s)
		}
		rest += ";transport=tls"
	}
	p := proxy{transport: "udp"}
	hostport, params, _ := strings.Cut(rest, ";")
	for _, kv := range strings.Split(params, ";") {
		if v, ok := strings.CutPrefix(kv, "transport="); ok {
			p.transport = v
		}
	}
	switch p.transport {
	case "udp", "tcp", "tls":
	default:
		return proxy{}, fmt.Errorf("%q: transport %q: want udp, tcp or tls", s, p.transport)
	}
	hp, err := parseHostPort(hostport)
	if err != nil {
		return proxy{}, fmt.Errorf("%q: %w", s, err)
	}
	p.host, p.port = hp.host, hp.port
	if p.port == 0 {
		p.port = 5060
		if p.transport == "tls" {
			p.port = 5061
		}
	}
	return p, nil
}

type hostPort struct {
	host string
	port int // 0 if absent
}

func parseHostPort(s string) (hostPort, error) {
	if s == "" {
		return hostPort{}, errors.New("empty host")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port given.
		h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if strings.ContainsAny(h, " /@;") {
			return hostPort{}, fmt.Errorf("%q is not a host", s)
		}
		return hostPort{host: h}, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return hostPort{}, fmt.Errorf("%q: bad port", s)
	}
	if host == "" {
		return hostPort{}, fmt.Errorf("%q: empty host", s)
	}
	return hostPort{host: host, port: n}, nil
}

// readSecret reads a password from a file (trailing newline dropped) or
// an environment variable.
func readSecret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return "", fmt.Errorf("environment variable %s is not set", env)
	}
	return v, nil
}
