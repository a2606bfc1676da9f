package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// peerTrust is what the configuration says about one peer once its files
// are read.
type peerTrust struct {
	domain string // lower case
	url    string
	roots  *x509.CertPool
}

// trust holds our certificate and the peers, read from the configuration.
// The Server and the Client build it the same way.
type trust struct {
	domain string // ours, lower case
	cert   tls.Certificate
	peers  map[string]*peerTrust // by lower-case domain
}

func loadTrust(cfg Config) (*trust, error) {
	if cfg.CertFile == "" {
		return nil, bad("cert_file", "missing (our certificate, naming %s)", cfg.Domain)
	}
	if cfg.KeyFile == "" {
		return nil, bad("key_file", "missing (the key of cert_file)")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, bad("cert_file", "%v", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, bad("cert_file", "%v", err)
		}
		cert.Leaf = leaf
	}
	domain := strings.ToLower(cfg.Domain)
	if !hasDNSName(leaf, domain) {
		return nil, bad("cert_file", "%s does not name %s (DNS names %v)", cfg.CertFile, domain, leaf.DNSNames)
	}
	t := &trust{domain: domain, cert: cert, peers: make(map[string]*peerTrust, len(cfg.Peers))}
	pools := map[string]*x509.CertPool{} // by file, for peers sharing one
	for i, p := range cfg.Peers {
		file, key := p.CAFile, fmt.Sprintf("peers[%d].ca_file", i)
		if file == "" {
			file, key = cfg.CAFile, "ca_file"
		}
		if file == "" {
			return nil, bad(fmt.Sprintf("peers[%d].ca_file", i), "missing, and there is no top-level ca_file to fall back on")
		}
		pool, ok := pools[file]
		if !ok {
			if pool, err = loadPool(file); err != nil {
				return nil, bad(key, "%v", err)
			}
			pools[file] = pool
		}
		d := strings.ToLower(p.Domain)
		t.peers[d] = &peerTrust{domain: d, url: p.URL, roots: pool}
	}
	return t, nil
}

// reloadTrust loads the trust of cfg to replace cur: the same domain,
// the rest (peers, CAs, our certificate) as cfg now says.
func reloadTrust(cfg Config, cur *trust) (*trust, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := loadTrust(cfg)
	if err != nil {
		return nil, err
	}
	if t.domain != cur.domain {
		return nil, bad("domain", "cannot change while running")
	}
	return t, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// hasDNSName reports whether domain (lower case) is one of the
// certificate's DNS SANs, exactly: a wildcard does not stand for a peer.
func hasDNSName(c *x509.Certificate, domain string) bool {
	for _, n := range c.DNSNames {
		if strings.EqualFold(n, domain) {
			return true
		}
	}
	return false
}

// authenticate finds the configured peers a client's certificate chain
// speaks for: those whose domain is a DNS SAN of the leaf and whose CA
// verifies the chain for client authentication. Usually one; a
// certificate naming several configured peers is accepted for each whose
// CA issued it, and the From header then picks among them.
func (t *trust) authenticate(chain []*x509.Certificate) ([]string, error) {
	if len(chain) == 0 {
		return nil, errors.New("no client certificate")
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	var domains []string
	var lastErr error
	for _, name := range leaf.DNSNames {
		p, ok := t.peers[strings.ToLower(name)]
		if !ok {
			continue
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         p.roots,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			lastErr = fmt.Errorf("certificate for %s does not verify against its CA: %w", p.domain, err)
			continue
		}
		domains = append(domains, p.domain)
	}
	if len(domains) == 0 {
		if lastErr != nil {
			return nil, lastErr
		}
		return nil, fmt.Errorf("certificate names no configured peer (DNS names %v)", leaf.DNSNames)
	}
	return domains, nil
}
