package sip

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if c := DevConfig(); c.Validate() != nil {
		t.Fatalf("DevConfig: %v", c.Validate())
	}
	for _, tc := range []struct {
		key    string
		mutate func(*Config)
	}{
		{"sip.listen", func(c *Config) { c.Listen = Listen{} }},
		{"sip.listen.udp", func(c *Config) { c.Listen.UDP = "nonsense" }},
		{"sip.advertise", func(c *Config) { c.Listen.UDP = "0.0.0.0:5060" }},
		{"sip.domain", func(c *Config) { c.Domain = "" }},
		{"sip.default_region", func(c *Config) { c.DefaultRegion = "XX" }},
		{"sip.uri_form", func(c *Config) { c.URIForm = "mailto" }},
		{"sip.tls", func(c *Config) { c.Listen.TLS = "127.0.0.1:5061" }},
		{"sip.listen.msrps", func(c *Config) { c.Listen.MSRPS = "nonsense" }},
		{"sip.listen.msrps", func(c *Config) { // no certificate
			c.Listen.MSRP, c.Listen.MSRPS = "127.0.0.1:2855", "127.0.0.1:2856"
		}},
		{"sip.listen.msrps", func(c *Config) { // no listen.msrp
			c.Listen.MSRPS, c.TLS = "127.0.0.1:2856", TLSFiles{CertFile: "c.pem", KeyFile: "k.pem"}
		}},
		{"sip.tls.ca_file", func(c *Config) { c.Trusted.TLSIdentities = []string{"ims.example.net"} }},
		{"sip.trusted.cidrs[0]", func(c *Config) { c.Trusted.CIDRs = []string{"10.0.0.0/33"} }},
		{"sip.digest.users", func(c *Config) { c.Digest.Enabled = true }},
		{"sip.digest.users[0]", func(c *Config) {
			c.Digest = Digest{Enabled: true, Users: []DigestUser{{Username: "a", Number: "+15551230001"}}}
		}},
		{"sip.digest.users[0].number", func(c *Config) {
			c.Digest = Digest{Enabled: true, Users: []DigestUser{{Username: "a", Number: "abc", PasswordEnv: "X"}}}
		}},
		{"sip.outbound_proxy", func(c *Config) { c.OutboundProxy = "" }},
		{"sip.outbound_proxy", func(c *Config) { c.OutboundProxy = "sip:10.0.0.1;transport=sctp" }},
		{"sip.max_body", func(c *Config) { c.MaxBody = 100 }},
		{"sip.max_in_flight", func(c *Config) { c.MaxInFlight = -1 }},
		{"sip.retry_after", func(c *Config) { c.RetryAfter = time.Millisecond }},
		{"sip.answer_cache.ttl", func(c *Config) { c.AnswerCache.TTL = time.Millisecond }},
		{"sip.answer_cache.max_entries", func(c *Config) { c.AnswerCache.MaxEntries = 10 }},
		{"sip.sessions.outbound", func(c *Config) { c.Sessions.Outbound = "session" }},
		{"sip.sessions.outbound", func(c *Config) { c.Sessions.Outbound = OutboundChat }}, // without listen.msrp
		{"sip.sessions.idle_timeout", func(c *Config) { c.Sessions.IdleTimeout = time.Millisecond }},
		{"sip.sessions.setup_timeout", func(c *Config) { c.Sessions.SetupTimeout = time.Hour }},
		{"sip.sessions.send_timeout", func(c *Config) { c.Sessions.SendTimeout = -1 }},
		{"sip.sessions.expires", func(c *Config) { c.Sessions.Expires = 30 * time.Second }},
		{"sip.sessions.max_outbound", func(c *Config) { c.Sessions.MaxOutbound = -1 }},
		{"sip.sessions.max_inbound", func(c *Config) { c.Sessions.MaxInbound = -1 }},
		{"sip.sessions.queue_length", func(c *Config) { c.Sessions.QueueLength = -1 }},
		{"sip.sessions.msrps", func(c *Config) { c.Sessions.MSRPS = true }}, // without listen.msrps
		{"sip.sessions.max_message_size", func(c *Config) { c.Sessions.MaxMessageSize = 100 }},
		{"sip.sessions.max_message_size", func(c *Config) { c.Sessions.MaxMessageSize = 32 << 20 }},
		{"sip.sessions.relay", func(c *Config) { c.Sessions.Relay = "http://relay.example.net" }},
		{"sip.sessions.relay", func(c *Config) { c.Sessions.Relay = "msrps://relay.example.net:2856;tcp" }},
		{"sip.sessions.relay", func(c *Config) { c.Sessions.Relay = "msrp://relay.example.net:2855;tcp"; c.Listen.MSRP = "" }},
	} {
		c := DevConfig()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tc.key, err, tc.key)
		}
	}
}

// sessions.max_message_size is 900 KiB when unset, under the bus's
// default max payload of 1 MB, and a size within bounds is kept.
func TestConfigMaxMessageSize(t *testing.T) {
	c := DevConfig()
	if c.Sessions.MaxMessageSize != 900<<10 {
		t.Errorf("default sessions.max_message_size %d, want %d", c.Sessions.MaxMessageSize, 900<<10)
	}
	c.Sessions.MaxMessageSize = 4 << 20
	c.Defaults()
	if err := c.Validate(); err != nil || c.Sessions.MaxMessageSize != 4<<20 {
		t.Errorf("sessions.max_message_size 4 MiB: %v, kept as %d", err, c.Sessions.MaxMessageSize)
	}
}

func TestParseProxy(t *testing.T) {
	for in, want := range map[string]proxy{
		"sip:10.0.0.1":                           {host: "10.0.0.1", port: 5060, transport: "udp"},
		"sip:ims.example.net:5070;transport=tcp": {host: "ims.example.net", port: 5070, transport: "tcp"},
		"sips:[::1]":                             {host: "::1", port: 5061, transport: "tls"},
		"SIP:10.0.0.1:5080;lr;transport=tls":     {host: "10.0.0.1", port: 5080, transport: "tls"},
	} {
		got, err := parseProxy(in)
		if err != nil || got != want {
			t.Errorf("parseProxy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
