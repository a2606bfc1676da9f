package transport

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Domain:   "gw.test",
		Listen:   "127.0.0.1:8443",
		CertFile: "gw.pem",
		KeyFile:  "gw-key.pem",
		CAFile:   "ca.pem",
		Peers: []Peer{
			{Domain: "desktop.test", URL: "https://desktop.test:8443"},
			{Domain: "other.test", URL: "https://mimi.other.test/base/", CAFile: "other-ca.pem"},
		},
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := validConfig().WithDefaults()
	if c.MaxBody != 1<<20 || c.RequestTimeout != 10*time.Second || c.Attempts != 5 || c.MaxBackoff != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if c.PublicURL != "https://127.0.0.1:8443" {
		t.Errorf("public_url default %q", c.PublicURL)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for listen, want := range map[string]string{
		":8443":        "https://gw.test:8443",
		"0.0.0.0:443":  "https://gw.test:443",
		"[::]:443":     "https://gw.test:443",
		"[::1]:8443":   "https://[::1]:8443",
		"10.0.0.1:443": "https://10.0.0.1:443",
	} {
		c := validConfig()
		c.Listen = listen
		if got := c.WithDefaults().PublicURL; got != want {
			t.Errorf("listen %q: public_url %q, want %q", listen, got, want)
		}
	}
	c = validConfig()
	c.PublicURL = "https://mimi.gw.test"
	if got := c.WithDefaults().PublicURL; got != "https://mimi.gw.test" {
		t.Errorf("a set public_url became %q", got)
	}
	// Without listen (a client only) there is no public URL to make.
	c = validConfig()
	c.Listen = ""
	if got := c.WithDefaults(); got.PublicURL != "" || got.Validate() != nil {
		t.Errorf("client-only config: %q, %v", got.PublicURL, got.Validate())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Domain = "" }, "provider.domain: missing"},
		{func(c *Config) { c.Domain = "gw_test" }, "provider.domain:"},
		{func(c *Config) { c.Domain = "gw.test." }, "provider.domain:"},
		{func(c *Config) { c.Listen = "8443" }, "provider.listen:"},
		{func(c *Config) { c.Listen = "127.0.0.1:99999" }, "provider.listen:"},
		{func(c *Config) { c.PublicURL = "http://gw.test" }, "provider.public_url:"},
		{func(c *Config) { c.PublicURL = "https://gw.test/mimi" }, "provider.public_url:"},
		{func(c *Config) { c.PublicURL = "https://gw.test/?a" }, "provider.public_url:"},
		{func(c *Config) { c.KeyFile = "" }, "provider.cert_file: cert_file and key_file go together"},
		{func(c *Config) { c.Peers[1].URL = "" }, "provider.peers[1].url: missing"},
		{func(c *Config) { c.Peers[1].URL = "http://other.test" }, "provider.peers[1].url:"},
		{func(c *Config) { c.Peers[1].URL = "https://" }, "provider.peers[1].url:"},
		{func(c *Config) { c.Peers[0].Domain = "" }, "provider.peers[0].domain: missing"},
		{func(c *Config) { c.Peers[0].Domain = "a/b" }, "provider.peers[0].domain:"},
		{func(c *Config) { c.Peers[1].Domain = "Desktop.test" }, "provider.peers[1].domain:"},
		{func(c *Config) { c.MaxBody = -1 }, "provider.max_body:"},
		{func(c *Config) { c.RequestTimeout = -time.Second }, "provider.request_timeout:"},
		{func(c *Config) { c.Attempts = -1 }, "provider.attempts:"},
		{func(c *Config) { c.Attempts = 1000 }, "provider.attempts:"},
		{func(c *Config) { c.MaxBackoff = -1 }, "provider.max_backoff:"},
	}
	for _, tc := range cases {
		c := validConfig()
		c.Peers = append([]Peer(nil), c.Peers...)
		tc.change(&c)
		err := c.WithDefaults().Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want %q...", err, tc.want)
		}
	}
}

func TestNewServerChecks(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cfg := serverConfig(p)
	cfg.Listen = ""
	if _, err := NewServer(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "provider.listen:") {
		t.Errorf("no listen: %v", err)
	}
	cfg = serverConfig(p)
	if _, err := NewServer(cfg, map[Endpoint]Handler{"nonsense": nil}); err == nil {
		t.Error("a handler for an unknown endpoint was accepted")
	}
	// A certificate that does not name the domain.
	cfg.CertFile, cfg.KeyFile = p.issue(desktopDomain)
	if _, err := NewServer(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "provider.cert_file:") {
		t.Errorf("certificate for another domain: %v", err)
	}
	cfg = serverConfig(p)
	cfg.Peers[1].CAFile = cfg.CertFile + ".missing"
	if _, err := NewClient(cfg); err == nil || !strings.HasPrefix(err.Error(), "provider.peers[1].ca_file:") {
		t.Errorf("missing CA file: %v", err)
	}
	// Validate leaves the files to the constructors, which name them.
	cfg = serverConfig(p)
	cfg.CAFile = ""
	if _, err := NewClient(cfg); err == nil || !strings.HasPrefix(err.Error(), "provider.peers[0].ca_file: missing") {
		t.Errorf("no CA for a peer: %v", err)
	}
	cfg = serverConfig(p)
	cfg.CertFile, cfg.KeyFile = "", ""
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Errorf("Validate without certificate: %v", err)
	}
	if _, err := NewServer(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "provider.cert_file: missing") {
		t.Errorf("no certificate: %v", err)
	}
}
