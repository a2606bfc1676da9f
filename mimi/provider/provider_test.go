package provider

import (
	"strings"
	"testing"

	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	base := func() Config {
		return Config{Config: transport.Config{Domain: "gw.test", Listen: "127.0.0.1:8443", CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem",
			Peers: []transport.Peer{{Domain: "desktop.test", URL: "https://desktop.test"}}}, Served: []string{"+1555"}}
	}
	if err := base().WithDefaults().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		change     func(*Config)
	}{
		{"served without plus", "provider.served[0]", func(c *Config) { c.Served = []string{"1555"} }},
		{"served with letters", "provider.served[1]", func(c *Config) { c.Served = []string{"+", "+15a"} }},
		{"rooms from a stranger", "provider.accept_rooms_from[0]", func(c *Config) { c.AcceptRoomsFrom = []string{"other.test"} }},
		{"negative workers", "provider.workers", func(c *Config) { c.Workers = -1 }},
		{"negative lookup ttl", "provider.lookup_ttl", func(c *Config) { c.LookupTTL = -1 }},
	} {
		c := base()
		tc.change(&c)
		err := c.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

func TestServesAndAcceptsRooms(t *testing.T) {
	t.Parallel()
	c := Config{Config: transport.Config{Peers: []transport.Peer{{Domain: "A.test"}, {Domain: "b.test"}}}, Served: []string{"+1555123", "+44"}}
	for n, want := range map[uri.Number]bool{"+15551230002": true, "+15551240002": false, "+447700900123": true, "+33123456789": false} {
		if got := c.serves(n); got != want {
			t.Errorf("serves(%s) = %v", n, got)
		}
	}
	if !c.acceptsRoomsFrom("a.test") || !c.acceptsRoomsFrom("b.test") || c.acceptsRoomsFrom("c.test") {
		t.Error("by default rooms come from every peer and no one else")
	}
	c.AcceptRoomsFrom = []string{"b.test"}
	if c.acceptsRoomsFrom("a.test") || !c.acceptsRoomsFrom("B.test") {
		t.Error("accept_rooms_from limits the peers")
	}
	if (Config{Served: []string{"+"}}).serves("+15551230002") != true {
		t.Error(`"+" serves every number`)
	}
}

// identifierQuery answers phone(4) queries for served numbers only, in
// exact E.164, and unsupportedField for any other search.
func TestIdentify(t *testing.T) {
	t.Parallel()
	p := &Provider{domain: "gw.test"}
	p.live.Store(&Config{Served: []string{"+1555123"}})
	phone := func(v string) wire.QueryElement { return wire.QueryElement{Type: wire.SearchPhone, Value: v} }
	for _, tc := range []struct {
		name string
		q    []wire.QueryElement
		code wire.IDCode
		uri  string
	}{
		{"served", []wire.QueryElement{phone("+15551230002")}, wire.IDSuccess, "mimi://gw.test/u/+15551230002"},
		{"the same twice", []wire.QueryElement{phone("+15551230002"), phone("+15551230002")}, wire.IDSuccess, "mimi://gw.test/u/+15551230002"},
		{"two numbers", []wire.QueryElement{phone("+15551230002"), phone("+15551230003")}, wire.IDNotFound, ""},
		{"not served", []wire.QueryElement{phone("+15551240002")}, wire.IDNotFound, ""},
		{"not E.164", []wire.QueryElement{phone("(555) 123-0002")}, wire.IDNotFound, ""},
		{"separators", []wire.QueryElement{phone("+1 555 123 0002")}, wire.IDNotFound, ""},
		{"email", []wire.QueryElement{{Type: wire.SearchEmail, Value: "a@b.c"}}, wire.IDUnsupportedField, ""},
		{"nothing", nil, wire.IDNotFound, ""},
	} {
		resp := p.identify(&wire.IdentifierRequest{QueryElements: tc.q})
		got := ""
		if len(resp.URIs) == 1 {
			got = resp.URIs[0]
		}
		if resp.Code != tc.code || got != tc.uri || len(resp.URIs) > 1 {
			t.Errorf("%s: %v %v, want %v %q", tc.name, resp.Code, resp.URIs, tc.code, tc.uri)
		}
	}
}

// Only a peer's user or a number outside provider.served may be another
// provider's: the rest is the operator's own traffic.
func TestMayBeRemote(t *testing.T) {
	t.Parallel()
	p := &Provider{domain: "gw.test"}
	p.live.Store(&Config{Config: transport.Config{Peers: []transport.Peer{{Domain: "peer.test"}}}, Served: []string{"+1555123"}})
	for recipient, want := range map[string]bool{
		"mimi://peer.test/u/alice":      true,
		"mimi://stranger.test/u/alice":  false,
		"mimi://gw.test/u/+15551230002": false,
		"mimi://peer.test/r/room":       false,
		"tel:+15557770002":              true,
		"tel:+15551230002":              false,
		"not a recipient":               false,
	} {
		if got := p.mayBeRemote(recipient); got != want {
			t.Errorf("mayBeRemote(%q) = %v, want %v", recipient, got, want)
		}
	}
}
