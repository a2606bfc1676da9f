package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/sip/rcssim"
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
	// RCSSimulator runs the built-in RCS phone simulator (for trials and
	// tests only) when sip.outbound_proxy points at its listen address.
	RCSSimulator *RCSSimulatorConfig `yaml:"rcs_simulator"`
	// MLS runs the MLS clients of the phone users (their KeyPackages and
	// group state on the bus); absent, the gateway joins no MLS group.
	MLS *mls.Config `yaml:"mls"`
	// Provider makes the gateway a MIMI provider for its phone users
	// (HTTPS with mutual TLS to configured peers); it needs MLS.
	Provider *provider.Config `yaml:"provider"`

	// reload loads this configuration again from where it came (the file
	// or the dev defaults, and the environment), for SIGHUP; nil when it
	// was not loaded by loadConfig.
	reload func() (*Config, error)
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

// RCSSimulatorConfig places the built-in RCS phone simulator; an empty
// gateway is the gateway's own sip.listen.tcp.
type RCSSimulatorConfig struct {
	HTTP          string `yaml:"http"` // its send and log hook; empty: none
	rcssim.Config `yaml:",inline"`
}

// Dev settings: everything on loopback, an SMSC simulator, a small number
// pool for lending.
const (
	devDomain   = "mimigw.localhost"
	devSMSC     = "127.0.0.1:2775"
	devSystemID = "mimigw"
	devProvider = "127.0.0.1:8443"
	// The phones the RCS simulator plays in dev, where the outbound proxy
	// is the simulator: every other number is not RCS and goes by SMS.
	devRCSNumbers = "+15551230100-+15551230199"
	devRCSSim     = "127.0.0.1:5070"
)

func devConfig() Config {
	c := Config{Domain: devDomain, DefaultRegion: "US", DataDir: "data", Gateway: GatewayConfig{Config: gateway.DefaultConfig()}}
	c.Gateway.Pools = []string{"+15559990000-+15559990999"}
	s := sip.DevConfig()
	// The IMS core of dev is the RCS phone simulator. Pager mode goes over
	// UDP, so that what is over 1300 bytes is too large for it (RFC 3428)
	// and goes by large message mode to the phones that have it.
	s.OutboundProxy = "sip:" + devRCSSim + ";transport=udp"
	s.LargeOverTCP = new(bool)
	s.Listen.MSRP = "127.0.0.1:2855"
	c.SIP = &s
	// No address: it binds to wherever the simulator listens (complete),
	// so that smsc_simulator.listen is the one setting of its port.
	c.SMPP = &smpp.Config{SMSCs: []smpp.SMSCConfig{{
		Name: "simulator", SystemID: devSystemID, Password: "dev", Window: 100,
	}}}
	c.Simulator = &SimulatorConfig{Listen: devSMSC, HTTP: "127.0.0.1:8081", Config: smsc.Config{
		Name:     "simulator",
		Accounts: []smsc.Account{{SystemID: devSystemID, Password: "dev"}},
	}}
	// The RCS phone simulator, the IMS core of dev (its gateway is
	// sip.listen.tcp).
	c.RCSSimulator = &RCSSimulatorConfig{HTTP: "127.0.0.1:8082", Config: rcssim.Config{
		Numbers: []string{devRCSNumbers}, Listen: devRCSSim, MSRP: "127.0.0.1:2856",
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
		if err := decodeYAML(b, &c); err != nil {
			return nil, redactErr(fmt.Errorf("config %s: %w", file, err))
		}
	}
	if err := applyEnv("MIMIGW", &c, environ); err != nil {
		return nil, redactErr(err)
	}
	if dev {
		c.devSecrets()
	}
	if err := c.complete(); err != nil {
		return nil, redactErr(err)
	}
	c.reload = func() (*Config, error) { return loadConfig(file, dev, os.Environ()) }
	return &c, nil
}

// decodeYAML decodes a configuration file into v (a pointer to a struct
// with yaml tags) over what v holds. Before decoding it walks the document
// against v's type and collects every key that names no setting and every
// value that does not fit its setting, each with its key path
// ("http.listne: unknown key", "smpp.smscs[0].coding.concat: ..."), so
// that one run shows all of them.
func decodeYAML(b []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 { // empty file
		return nil
	}
	var yc yamlChecker
	yc.walk(&doc, reflect.TypeOf(v).Elem(), "")
	switch len(yc.problems) {
	case 0:
	case 1:
		return errors.New(yc.problems[0])
	default:
		return fmt.Errorf("%d problems:\n  %s", len(yc.problems), strings.Join(yc.problems, "\n  "))
	}
	return doc.Decode(v)
}

// yamlChecker walks a YAML document against a Go type.
type yamlChecker struct{ problems []string }

var yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (yc *yamlChecker) add(path string, n *yaml.Node, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	yc.problems = append(yc.problems, fmt.Sprintf("%s: %s (line %d)", path, fmt.Sprintf(format, args...), n.Line))
}

func (yc *yamlChecker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			yc.walk(n.Content[0], t, path)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the setting as it is
	}
	custom := reflect.PointerTo(t).Implements(yamlUnmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
	switch {
	case custom || t.Kind() == reflect.Interface:
		yc.decodeLeaf(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			yc.add(path, n, "want a section of keys (%s), got %s", strings.Join(yamlKeys(t), ", "), describeNode(n))
			return
		}
		fields := yamlFields(t)
		yc.mapping(n, func(k, v *yaml.Node) {
			ft, ok := fields[k.Value]
			if !ok {
				msg := "unknown key"
				if near := closestKey(k.Value, yamlKeys(t)); near != "" {
					msg += "; did you mean " + near + "?"
				}
				yc.add(joinPath(path, k.Value), k, "%s", msg)
				return
			}
			yc.walk(v, ft, joinPath(path, k.Value))
		}, t, path)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			yc.decodeLeaf(n, t, path)
			return
		}
		for i, item := range n.Content {
			yc.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			yc.decodeLeaf(n, t, path)
			return
		}
		yc.mapping(n, func(k, v *yaml.Node) {
			p := joinPath(path, k.Value)
			yc.decodeLeaf(k, t.Key(), p+" (the key)")
			yc.walk(v, t.Elem(), p)
		}, t, path)
	default:
		yc.decodeLeaf(n, t, path)
	}
}

// mapping calls f for each key and value of a mapping, following merge
// keys ("<<: *defaults") into the mappings they merge.
func (yc *yamlChecker) mapping(n *yaml.Node, f func(k, v *yaml.Node), t reflect.Type, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					yc.walk(m, t, path)
				}
			} else {
				yc.walk(v, t, path)
			}
			continue
		}
		f(k, v)
	}
}

// decodeLeaf decodes n alone into a value of type t, to name the key of a
// value that does not fit.
func (yc *yamlChecker) decodeLeaf(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			yc.add(path, n, "%s", yamlTypeProblem(e))
		}
		return
	}
	yc.add(path, n, "%v", err)
}

var yamlTypeErrRE = regexp.MustCompile("^(?:line \\d+: )?cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")

// yamlTypeProblem turns yaml's "line 3: cannot unmarshal !!str `x` into
// int" into "want int, got x".
func yamlTypeProblem(e string) string {
	m := yamlTypeErrRE.FindStringSubmatch(e)
	if m == nil {
		return e
	}
	got := map[string]string{"!!seq": "a list", "!!map": "a section of keys", "!!str": "text", "!!int": "a number",
		"!!float": "a number", "!!bool": "true or false"}[m[1]]
	if got == "" {
		got = m[1]
	}
	if m[2] != "" {
		got = "`" + m[2] + "`"
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["):
		want = "a section of keys"
	case want == "string":
		want = "text"
	case want == "time.Duration":
		want = "a duration such as 30s or 2m"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint") || strings.HasPrefix(want, "float"):
		want = "a number"
	}
	return "want " + want + ", got " + got
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "`" + n.Value + "`"
	}
	return "something else"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	if strings.ContainsAny(key, ".[] ") || key == "" {
		return path + "[" + strconv.Quote(key) + "]"
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of struct type t to their field types,
// inline fields included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		key, inline := yamlKey(f)
		switch {
		case key == "-":
		case inline:
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
		case f.IsExported():
			out[key] = f.Type
		}
	}
	return out
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for k := range yamlFields(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closestKey returns the known key nearest to key, if it is near enough to
// be a typo of it.
func closestKey(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD && d <= len(k)/2 {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
	if c.SMPP != nil && c.Simulator != nil && c.Simulator.Listen != "" {
		// An SMSC without an address is the built-in simulator.
		for i := range c.SMPP.SMSCs {
			if c.SMPP.SMSCs[i].Address == "" {
				c.SMPP.SMSCs[i].Address = c.Simulator.Listen
			}
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

// busError names the key of a bus error as the configuration has it:
// bus.url when no server answers there or it is not a mimigw bus,
// bus.embedded.listen when the embedded server's port is taken.
func busError(err error) error {
	var ce *bus.ConfigError
	if errors.As(err, &ce) {
		k := *ce
		k.Key = "bus." + ce.Key
		return &k
	}
	return err
}

// urlCredentials matches the credentials written into a URL.
var urlCredentials = regexp.MustCompile("([A-Za-z][A-Za-z0-9+.-]*://)[^/@\\s\"'`]*@")

// redactErr hides credentials written into URLs anywhere in err's text
// (a bus.url with a password, in a configuration error): no error shows a
// secret. It still unwraps to err.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return redactedError{err}
}

type redactedError struct{ err error }

func (e redactedError) Error() string {
	return urlCredentials.ReplaceAllString(e.err.Error(), "${1}[redacted]@")
}

func (e redactedError) Unwrap() error { return e.err }

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

// newLogger builds a logger from the log section (see newLevelLogger).
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	log, _ := newLevelLogger(c, w)
	return log
}

// newLevelLogger builds the process logger from the log section: durations
// written as text ("1.5s", in JSON too), a flood of one warning cut to a
// line a second and a count (repeatLimiter), and the level held in the
// returned LevelVar so that it can change while running (SIGHUP).
func newLevelLogger(c LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(newRepeatLimiter(h, time.Second)), level
}

func parseLevel(s string) slog.Level {
	var level slog.Level // info when s is empty or unknown (complete refuses those)
	_ = level.UnmarshalText([]byte(s))
	return level
}

// durationsAsText writes durations as Go writes them ("250ms", "2m0s")
// rather than as nanoseconds, which is what JSON logs would show.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// repeatLimiter passes on the first WARN record with a given message in
// each window and holds back the rest; when the window ends, one line
// says how many were held back ("... (repeated N times in 1s)"). A flood
// of one warning (a peer misbehaving in a loop) thus costs two lines a
// second, not thousands. Other levels pass unchanged.
type repeatLimiter struct {
	h  slog.Handler
	st *repeatState // shared by the handlers derived with WithAttrs, WithGroup
}

type repeatState struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*repeated
}

type repeated struct {
	n int          // records held back
	h slog.Handler // the handler of the first, for the summary
}

func newRepeatLimiter(h slog.Handler, window time.Duration) *repeatLimiter {
	return &repeatLimiter{h: h, st: &repeatState{window: window, seen: map[string]*repeated{}}}
}

func (l *repeatLimiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level != slog.LevelWarn {
		return l.h.Handle(ctx, r)
	}
	st := l.st
	st.mu.Lock()
	if e := st.seen[r.Message]; e != nil {
		e.n++
		st.mu.Unlock()
		return nil
	}
	st.seen[r.Message] = &repeated{h: l.h}
	st.mu.Unlock()
	msg := r.Message
	time.AfterFunc(st.window, func() { st.summarize(msg) })
	return l.h.Handle(ctx, r)
}

// summarize ends msg's window, with a line for what it held back.
func (st *repeatState) summarize(msg string) {
	st.mu.Lock()
	e := st.seen[msg]
	delete(st.seen, msg)
	st.mu.Unlock()
	if e == nil || e.n == 0 {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, fmt.Sprintf("%s (repeated %d times in %s)", msg, e.n, st.window), 0)
	r.AddAttrs(slog.Int("repeated", e.n))
	_ = e.h.Handle(context.Background(), r)
}

func (l *repeatLimiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &repeatLimiter{h: l.h.WithAttrs(attrs), st: l.st}
}

func (l *repeatLimiter) WithGroup(name string) slog.Handler {
	return &repeatLimiter{h: l.h.WithGroup(name), st: l.st}
}

// reloadLogLevelOnHUP sets the log level anew from the configuration (file,
// or the dev defaults, and the environment) on every SIGHUP, until stop is
// called. Nothing else changes while running, and the log says so.
func reloadLogLevelOnHUP(file string, dev bool, level *slog.LevelVar, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		reloadLogLevel(hup, done, func() (*Config, error) { return loadConfig(file, dev, os.Environ()) }, level, log)
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

func reloadLogLevel(hup <-chan os.Signal, done <-chan struct{}, load func() (*Config, error), level *slog.LevelVar, log *slog.Logger) {
	for {
		select {
		case <-done:
			return
		case <-hup:
		}
		cfg, err := load()
		if err != nil {
			log.Warn("SIGHUP: configuration not reloaded; log level unchanged", "log.level", level.Level().String(), "err", err)
			continue
		}
		old := level.Level()
		level.Set(parseLevel(cfg.Log.Level))
		// At the new level or above, so that the line shows.
		log.Log(context.Background(), max(slog.LevelInfo, level.Level()),
			"SIGHUP: log level reloaded; other changes to the configuration need a restart, but for the number pools, trusted providers, SMS pumping limits and the provider's peers",
			"log.level", level.Level().String(), "was", old.String())
	}
}

// onHUP runs reload on every SIGHUP until stop is called, and logs what it
// did (what names what reload changes).
func onHUP(reload func() error, what string, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if err := reload(); err != nil {
				log.Warn("SIGHUP: not reloaded: "+what, "err", err)
				continue
			}
			log.Info("SIGHUP: reloaded: " + what)
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// reloadProvider applies to the running provider what the configuration
// now says of its peers, certificates and served numbers.
func reloadProvider(load func() (*Config, error), dev bool, mp *provider.Provider) error {
	c, err := load()
	if err != nil {
		return err
	}
	if c.Provider == nil {
		return errors.New("provider: section removed; that needs a restart")
	}
	if dev {
		if err := c.makeDevSecrets(); err != nil {
			return err
		}
	}
	return mp.Reload(*c.Provider)
}
