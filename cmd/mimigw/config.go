package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/smpp"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// Config is the whole configuration of `mimigw serve`: the YAML file, with
// every key overridable by a MIMIGW_... environment variable.
type Config struct {
	// Domain is the gateway's MIMI provider domain; phone users are
	// mimi://<domain>/u/+<digits>.
	Domain string `yaml:"domain"`
	// DefaultRegion reads national numbers (ISO 3166 code, such as US).
	DefaultRegion string `yaml:"default_region"`
	// DataDir holds the embedded NATS store and generated secrets.
	DataDir string        `yaml:"data_dir"`
	Log     LogConfig     `yaml:"log"`
	HTTP    HTTPConfig    `yaml:"http"`
	Bus     bus.Config    `yaml:"bus"`
	Gateway GatewayConfig `yaml:"gateway"`
	// SIP configures the RCS edge; absent, the gateway has no RCS.
	SIP *sip.Config `yaml:"sip"`
	// SMPP configures the SMS edge; absent, the gateway has no SMS.
	SMPP *smpp.Config `yaml:"smpp"`
	// Simulator runs the built-in SMSC simulator (for trials and tests
	// only; it delivers nothing to phones).
	Simulator *SimulatorConfig `yaml:"smsc_simulator"`
	// MLS runs the MLS clients of the phone users (their KeyPackages and
	// group state on the bus); absent, the gateway joins no MLS group.
	MLS *mls.Config `yaml:"mls"`
	// Provider makes the gateway a MIMI provider for its phone users
	// (HTTPS with mutual TLS to configured peers); it needs MLS.
	Provider *provider.Config `yaml:"provider"`
}

// GatewayConfig is the core's routing settings and number plan.
type GatewayConfig struct {
	gateway.Config `yaml:",inline"`
	Pools          []string `yaml:"pools"`
	// TrustedProviders may show their users' own numbers to phones.
	TrustedProviders    []string          `yaml:"trusted_providers"`
	AlphanumericSenders map[string]string `yaml:"alphanumeric_senders"`
}

// Identity returns the identity configuration for the domain.
func (g GatewayConfig) Identity(domain string) identity.Config {
	return identity.Config{Domain: domain, Pools: g.Pools, TrustedProviders: g.TrustedProviders, AlphanumericSenders: g.AlphanumericSenders}
}

// LogConfig sets the log output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// HTTPConfig is the admin and status server.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// AdminTokenFile holds the bearer token of the admin API;
	// MIMIGW_HTTP_ADMIN_TOKEN may carry it instead.
	AdminTokenFile string `yaml:"admin_token_file"`
	AdminToken     string `yaml:"admin_token"`
	// Profiling serves Go's runtime profiles under /debug/pprof/.
	Profiling bool `yaml:"profiling"`
}

// SimulatorConfig places the built-in SMSC simulator.
type SimulatorConfig struct {
	Listen      string `yaml:"listen"`
	HTTP        string `yaml:"http"` // its MO and log hook; empty: none
	smsc.Config `yaml:",inline"`
}

// Dev settings: everything on loopback, an SMSC simulator, a small number
// pool for lending.
const (
	devDomain   = "mimigw.localhost"
	devSMSC     = "127.0.0.1:2775"
	devSystemID = "mimigw"
	devProvider = "127.0.0.1:8443"
)

func devConfig() Config {
	c := Config{Domain: devDomain, DefaultRegion: "US", DataDir: "data", Gateway: GatewayConfig{Config: gateway.DefaultConfig()}}
	c.Gateway.Pools = []string{"+15559990000-+15559990999"}
	s := sip.DevConfig()
	// TCP toward the IMS core: with nothing listening there in a trial,
	// a refused connection sends the message on by SMS at once.
	s.OutboundProxy = "sip:127.0.0.1:5070;transport=tcp"
	c.SIP = &s
	c.SMPP = &smpp.Config{SMSCs: []smpp.SMSCConfig{{
		Name: "simulator", Address: devSMSC, SystemID: devSystemID, Password: "dev", Window: 100,
	}}}
	c.Simulator = &SimulatorConfig{Listen: devSMSC, HTTP: "127.0.0.1:8081", Config: smsc.Config{
		Name:     "simulator",
		Accounts: []smsc.Account{{SystemID: devSystemID, Password: "dev"}},
	}}
	// The phone users' MLS clients and the provider listener, with a
	// state key and certificates generated under the data directory
	// (devSecrets); every number counts as served, as the simulators do.
	c.MLS = &mls.Config{}
	c.Provider = &provider.Config{Config: transport.Config{Listen: devProvider}, Served: []string{"+"}}
	return c
}

// loadConfig builds the configuration: the dev defaults or the file (or
// both, the file over the defaults), then the environment, then defaults
// and checks. Errors name the key at fault.
func loadConfig(file string, dev bool, environ []string) (*Config, error) {
	c := Config{Gateway: GatewayConfig{Config: gateway.DefaultConfig()}}
	if dev {
		c = devConfig()
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	if err := applyEnv("MIMIGW", &c, environ); err != nil {
		return nil, err
	}
	if dev {
		c.devSecrets()
	}
	if err := c.complete(); err != nil {
		return nil, err
	}
	return &c, nil
}

// complete fills defaults, hands the shared keys down to the sections and
// validates everything.
func (c *Config) complete() error {
	if c.Domain == "" {
		return errors.New("domain: missing (the gateway's MIMI provider domain)")
	}
	if c.DefaultRegion != "" {
		if _, err := uri.ParseNumber("2025550100", c.DefaultRegion); err != nil && strings.Contains(err.Error(), "invalid country") {
			return fmt.Errorf("default_region: %q is not a region code", c.DefaultRegion)
		}
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Bus.Embedded.DataDir == "" {
		c.Bus.Embedded.DataDir = filepath.Join(c.DataDir, "nats")
	}
	c.Bus.ApplyDefaults()
	if err := c.Bus.Validate(); err != nil {
		return fmt.Errorf("bus.%w", err)
	}
	if err := c.Gateway.Validate(); err != nil {
		return fmt.Errorf("gateway.%w", err)
	}
	ic := c.Gateway.Identity(c.Domain)
	if err := ic.Validate(); err != nil {
		return fmt.Errorf("gateway.%w", err)
	}
	if c.SIP != nil {
		if c.SIP.Domain == "" {
			c.SIP.Domain = c.Domain
		}
		if c.SIP.DefaultRegion == "" {
			c.SIP.DefaultRegion = c.DefaultRegion
		}
		c.SIP.Defaults()
		if err := c.SIP.Validate(); err != nil {
			return err
		}
	}
	if c.SMPP != nil {
		if c.SMPP.DefaultRegion == "" {
			c.SMPP.DefaultRegion = c.DefaultRegion
		}
		if err := c.SMPP.Validate(); err != nil {
			return err
		}
	}
	if c.Simulator != nil {
		if c.Simulator.Listen == "" {
			return errors.New("smsc_simulator.listen: missing")
		}
		if err := c.Simulator.Config.Validate(); err != nil {
			return fmt.Errorf("smsc_simulator: %w", err)
		}
	}
	if c.MLS != nil {
		m := c.MLS.WithDefaults()
		if err := m.Validate(); err != nil {
			return err
		}
	}
	if c.Provider != nil {
		if c.MLS == nil {
			return errors.New("provider: needs the mls section (the phone users' MLS clients)")
		}
		c.Provider.Domain = c.Domain
		if err := c.Provider.WithDefaults().Validate(); err != nil {
			return err
		}
	}
	if c.SIP == nil && c.SMPP == nil {
		return errors.New("sip, smpp: configure at least one edge, or the gateway cannot reach a phone")
	}
	return nil
}

// adminToken reads the admin API token: from the environment or the
// configured file; in dev, a token generated into the data directory.
func (c *Config) adminToken(dev bool) (token, source string, err error) {
	if c.HTTP.AdminToken != "" {
		return c.HTTP.AdminToken, "http.admin_token", nil
	}
	file := c.HTTP.AdminTokenFile
	if file == "" && dev {
		file = filepath.Join(c.DataDir, "admin-token")
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return "", "", fmt.Errorf("http.admin_token_file: %w", err)
			}
			if err := os.WriteFile(file, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
				return "", "", fmt.Errorf("http.admin_token_file: %w", err)
			}
		}
	}
	if file == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("http.admin_token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", "", fmt.Errorf("http.admin_token_file: %s holds a token shorter than 16 characters", file)
	}
	return t, file, nil
}

// devSecrets places what dev mode keeps under the data directory, where
// the configuration does not say otherwise: the key sealing MLS state at
// rest, and a certificate for the gateway's domain from a dev CA for the
// provider listener (peers' certificates come from the same CA: mimigw
// provider cert). makeDevSecrets creates them.
func (c *Config) devSecrets() {
	if c.MLS != nil && c.MLS.State.KeyFile == "" && c.MLS.State.KeyEnv == "" {
		c.MLS.State.KeyFile = filepath.Join(c.DataDir, "mls-state.key")
	}
	if p := c.Provider; p != nil && p.CertFile == "" && p.KeyFile == "" {
		dir := filepath.Join(c.DataDir, devCADir)
		// Where transport.IssueCert writes them.
		p.CertFile, p.KeyFile = filepath.Join(dir, c.Domain+".pem"), filepath.Join(dir, c.Domain+"-key.pem")
		if p.CAFile == "" {
			p.CAFile = filepath.Join(dir, "ca.pem")
		}
	}
}

// makeDevSecrets creates, once, the files devSecrets placed.
func (c *Config) makeDevSecrets() error {
	if c.MLS != nil && c.MLS.State.KeyFile == filepath.Join(c.DataDir, "mls-state.key") {
		file := c.MLS.State.KeyFile
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return fmt.Errorf("mls.state.key_file: %w", err)
			}
			if err := os.WriteFile(file, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
				return fmt.Errorf("mls.state.key_file: %w", err)
			}
		}
	}
	dir := filepath.Join(c.DataDir, devCADir)
	if p := c.Provider; p != nil && filepath.Dir(p.CertFile) == dir {
		if err := transport.EnsureDevCA(dir); err != nil {
			return fmt.Errorf("provider: dev CA: %w", err)
		}
		if _, err := os.Stat(p.CertFile); errors.Is(err, os.ErrNotExist) {
			if _, _, err := transport.IssueCert(dir, c.Domain, dir); err != nil {
				return fmt.Errorf("provider: dev certificate: %w", err)
			}
		}
	}
	return nil
}
