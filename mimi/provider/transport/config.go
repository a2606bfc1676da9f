package transport

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is one provider's side of the transport: who we are, where we
// listen, our certificate, and the peers we talk to and accept. The same
// value configures the Server and the Client. Call WithDefaults, then
// Validate.
type Config struct {
	// Domain is our provider domain. It comes from the gateway's top-level
	// domain, so it has no key of its own.
	Domain string `yaml:"-"`
	// Listen is the host:port the Server binds (port 0 picks one). Only the
	// Server needs it.
	Listen string `yaml:"listen"`
	// PublicURL is the base URL peers reach us at; our directory's URLs are
	// built on it. Default: https://<Listen>, with Domain as the host when
	// Listen names no host or an unspecified address, and the bound port
	// when Listen's port is 0.
	PublicURL string `yaml:"public_url"`
	// CertFile and KeyFile hold our certificate and key (PEM). The
	// certificate must name Domain; it serves both as the Server's
	// certificate and as the Client's.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile holds the CA certificates (PEM) that issue the certificates
	// of peers without a ca_file of their own.
	CAFile string `yaml:"ca_file"`
	// Peers are the providers we accept requests from and send requests
	// to. A provider not listed here is refused.
	Peers []Peer `yaml:"peers"`
	// MaxBody bounds a request body the Server reads and a response body
	// the Client reads.
	MaxBody int64 `yaml:"max_body"`
	// RequestTimeout bounds one attempt of the Client (dial, TLS, request,
	// answer) and the Server's reading of one request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Attempts bounds the Client's attempts at one request.
	Attempts int `yaml:"attempts"`
	// MaxBackoff caps the wait between attempts, a Retry-After included.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Peer is another MIMI provider.
type Peer struct {
	// Domain is the peer's provider domain: the name its certificate must
	// carry as a DNS SAN, and the one in its From header.
	Domain string `yaml:"domain"`
	// URL is the peer's base URL; its directory is
	// <URL>/.well-known/mimi-protocol-directory.
	URL string `yaml:"url"`
	// CAFile holds the CA certificates (PEM) that issue this peer's
	// certificates. Empty: the top-level ca_file.
	CAFile string `yaml:"ca_file"`
}

// Defaults used where a key is left out.
const (
	DefaultMaxBody        = 1 << 20
	DefaultRequestTimeout = 10 * time.Second
	DefaultAttempts       = 5
	DefaultMaxBackoff     = 30 * time.Second

	// maxAttempts and maxMaxBody keep a typo from turning into a request
	// that never ends or a buffer that never fits.
	maxAttempts = 100
	maxMaxBody  = 1 << 30
)

// WithDefaults returns c with every unset key at its default.
func (c Config) WithDefaults() Config {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.PublicURL == "" && c.Listen != "" {
		c.PublicURL = defaultPublicURL(c.Listen, c.Domain, "")
	}
	return c
}

// defaultPublicURL is https://<listen>, with the domain for a host that
// peers cannot dial and port, when given, for the port listen names.
func defaultPublicURL(listen, domain, port string) string {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = domain
	}
	if port != "" {
		p = port
	}
	return "https://" + net.JoinHostPort(host, p)
}

// Validate names the first key that is wrong, as provider.<key>. Call it
// on WithDefaults(). It checks the shape of the values only; the files
// (cert_file, key_file, the CAs) may be filled in later, as a dev setup
// does, and NewServer and NewClient read them and say which is missing
// or wrong.
func (c Config) Validate() error {
	if c.Domain == "" {
		return bad("domain", "missing (the gateway's domain)")
	}
	if err := checkDomain(c.Domain); err != nil {
		return bad("domain", "%q: %v", c.Domain, err)
	}
	if c.Listen != "" {
		if err := checkListen(c.Listen); err != nil {
			return bad("listen", "%q: %v", c.Listen, err)
		}
	}
	if c.PublicURL != "" {
		u, err := checkHTTPS(c.PublicURL)
		if err != nil {
			return bad("public_url", "%q: %v", c.PublicURL, err)
		}
		// The Server answers at the root, so a path could only point
		// peers somewhere it does not serve.
		if u.Path != "" && u.Path != "/" {
			return bad("public_url", "%q: has a path; the server answers at the root", c.PublicURL)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("cert_file", "cert_file and key_file go together")
	}
	seen := make(map[string]int, len(c.Peers))
	for i, p := range c.Peers {
		key := fmt.Sprintf("peers[%d]", i)
		if p.Domain == "" {
			return bad(key+".domain", "missing")
		}
		if err := checkDomain(p.Domain); err != nil {
			return bad(key+".domain", "%q: %v", p.Domain, err)
		}
		d := strings.ToLower(p.Domain)
		if j, dup := seen[d]; dup {
			return bad(key+".domain", "%q is also peers[%d]", p.Domain, j)
		}
		seen[d] = i
		if p.URL == "" {
			return bad(key+".url", "missing (the peer's base URL)")
		}
		if _, err := checkHTTPS(p.URL); err != nil {
			return bad(key+".url", "%q: %v", p.URL, err)
		}
	}
	if c.MaxBody < 1 || c.MaxBody > maxMaxBody {
		return bad("max_body", "%d is outside 1..%d", c.MaxBody, maxMaxBody)
	}
	if c.RequestTimeout <= 0 {
		return bad("request_timeout", "must be positive, got %s", c.RequestTimeout)
	}
	if c.Attempts < 1 || c.Attempts > maxAttempts {
		return bad("attempts", "%d is outside 1..%d", c.Attempts, maxAttempts)
	}
	if c.MaxBackoff <= 0 {
		return bad("max_backoff", "must be positive, got %s", c.MaxBackoff)
	}
	return nil
}

func bad(key, format string, args ...any) error {
	return fmt.Errorf("provider.%s: %s", key, fmt.Sprintf(format, args...))
}

// checkDomain accepts a DNS name of letters, digits and hyphens in labels
// of 1 to 63 characters, without a trailing dot. It also names files
// (IssueCert), so nothing else gets through.
func checkDomain(d string) error {
	if len(d) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("label %q is empty or longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for i := 0; i < len(label); i++ {
			switch ch := label[i]; {
			case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-':
			default:
				return fmt.Errorf("%q is not allowed in a domain", ch)
			}
		}
	}
	return nil
}

func checkListen(s string) error {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return nil
}

// checkHTTPS accepts an https URL with a host and no query or fragment.
func checkHTTPS(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("no host")
	}
	if u.User != nil {
		return nil, fmt.Errorf("has user information")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("has a query or fragment")
	}
	return u, nil
}
