package smpp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/receipt"
)

// Config is the SMS edge's configuration (the `sms:` section).
type Config struct {
	// SMSCs the gateway binds to. Outbound traffic goes to the
	// lowest-priority-number SMSC that has a bind up; every SMSC's
	// receivers take MO messages and receipts.
	SMSCs []SMSCConfig `yaml:"smscs"`
	// DefaultRegion is the ISO 3166 country whose national numbers appear
	// in source addresses with TON national (or unknown TON and no country
	// code), e.g. "US".
	DefaultRegion string `yaml:"default_region"`
	// Protection against SMS pumping, applied to every outbound message.
	Protection ProtectionConfig `yaml:"protection"`
	// MOConcurrency bounds the deliver_sm (MO messages and receipts)
	// handed to the receiver at once per bind; more wait their turn in the
	// bind's queue (see SMSCConfig.DeliverWindow), never refused for it,
	// and the reader never waits for them. Default 64.
	MOConcurrency int `yaml:"mo_concurrency"`
	// MOTimeout bounds the time from a deliver_sm's arrival to its answer,
	// its wait in the queue included; past it the SMSC gets ESME_RX_T_APPN
	// and delivers again. Keep it below the SMSC's own response timeout.
	// Default 25s.
	MOTimeout time.Duration `yaml:"mo_timeout"`
}

// SMSCConfig is one SMSC and how to bind to it.
type SMSCConfig struct {
	// Name identifies the SMSC in logs, metrics and receipts (the Source
	// of the message ids it issues). Required, unique.
	Name string `yaml:"name"`
	// Address is host:port.
	Address string    `yaml:"address"`
	TLS     TLSConfig `yaml:"tls"`
	// SystemID is the bind's system_id.
	SystemID string `yaml:"system_id"`
	// The password comes from one of: PasswordFile (first line), the
	// environment variable PasswordEnv, or Password (for development only).
	// It is read at every bind, so a rotated file takes effect on the next
	// reconnect. It is never logged.
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	SystemType   string `yaml:"system_type"`
	// BindMode is "transceiver" (default) or "transmitter_receiver" (a
	// transmitter and a receiver for each of Binds).
	BindMode string `yaml:"bind_mode"`
	// Binds is the number of binds (pairs in transmitter_receiver mode).
	// Default 1.
	Binds int `yaml:"binds"`
	// Window is how many submit_sm may await their response per bind.
	// Default 10.
	Window int `yaml:"window"`
	// DeliverWindow is the SMSC's window toward the gateway: the most
	// deliver_sm it sends on one bind before it waits for answers. Each
	// bind queues that many, plus a quarter (at least 16) for SMSCs that
	// count loosely, and answers each once the receiver has taken it; one
	// beyond that gets ESME_RX_T_APPN. Default 1000.
	DeliverWindow int `yaml:"deliver_window"`
	// Rate caps submit_sm per second per bind; 0 leaves it to the window
	// (until the SMSC throttles: see ThrottleBackoff). Only submit_sm wait
	// for it, never our responses to the SMSC.
	Rate float64 `yaml:"rate"`
	// EnquireLink is how long a bind may be silent before we send an
	// enquire_link. Default 30s.
	EnquireLink time.Duration `yaml:"enquire_link"`
	// ResponseTimeout bounds the wait for any response; an enquire_link
	// unanswered within it means the link is dead. Default 10s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// ReconnectMin and ReconnectMax bound the jittered exponential backoff
	// between bind attempts. Defaults 1s and 60s.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// ThrottleBackoff is the first pause of a bind's submit_sm after
	// ESME_RTHROTTLED or ESME_RMSGQFUL (every submit_sm not yet sent
	// waits, the refused one is sent again after it); it doubles while
	// the SMSC keeps refusing, up to 32 times its value. Each such pause
	// also halves the bind's rate (Rate, or with none the rate it was
	// sending at); after 25 times ThrottleBackoff without a refusal the
	// rate rises by a quarter, and so on back to Rate (or to no limit).
	// Default 200ms.
	ThrottleBackoff time.Duration `yaml:"throttle_backoff"`
	// Priority orders SMSCs for outbound traffic: lower first. Equal
	// priorities share traffic.
	Priority int `yaml:"priority"`
	// Coding says how texts are written for this SMSC: default_alphabet
	// (what data_coding 0 means: gsm7, ia5, latin1), packed, use_latin1,
	// concat (udh8, udh16, sar, payload), max_segments.
	Coding coding.Options `yaml:"coding"`
	// SubmitIDForm and ReceiptIDForm say how this SMSC writes message ids
	// in submit_sm_resp and in receipts ({base: as_is|hex|decimal,
	// fold_case, trim_zeros}); both normalise to one Ref, so that the ids
	// match whatever case, leading zeros or base each side uses.
	SubmitIDForm  receipt.IDForm `yaml:"submit_id_form"`
	ReceiptIDForm receipt.IDForm `yaml:"receipt_id_form"`
	// SourceTON and SourceNPI override the type of number and numbering
	// plan of numeric senders (default: international/E.164 for "+..."
	// senders).
	SourceTON *uint8 `yaml:"source_ton"`
	SourceNPI *uint8 `yaml:"source_npi"`
	// AlphanumericSenders says whether this SMSC takes alphanumeric sender
	// ids (TON 5). Default true; a message with one avoids SMSCs that do
	// not.
	AlphanumericSenders *bool `yaml:"alphanumeric_senders"`
}

// TLSConfig enables TLS toward the SMSC.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// ServerName overrides the name checked in the SMSC's certificate
	// (default: the host of Address).
	ServerName string `yaml:"server_name"`
	// CAFile holds PEM certificates to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, if the SMSC wants one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify turns certificate checks off (test SMSCs only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// ProtectionConfig guards against SMS pumping.
type ProtectionConfig struct {
	// MaxSegments caps the SMS segments of one message. Default 10.
	MaxSegments int `yaml:"max_segments"`
	// SenderRate limits messages per sender (the presented From).
	SenderRate RateConfig `yaml:"sender_rate"`
	// DestinationRate limits messages per destination number.
	DestinationRate RateConfig `yaml:"destination_rate"`
	// AllowedDestinations lists the destinations allowed: country calling
	// codes ("+44") or ISO 3166 regions ("GB"). Empty allows all.
	AllowedDestinations []string `yaml:"allowed_destinations"`
}

// RateConfig is Count messages per Per, with bursts up to Count. A zero
// Count means no limit.
type RateConfig struct {
	Count int           `yaml:"count"`
	Per   time.Duration `yaml:"per"`
}

// Secret is a credential. It prints, logs and marshals as "[redacted]".
type Secret string

const redacted = "[redacted]"

func (Secret) String() string            { return redacted }
func (Secret) GoString() string          { return redacted }
func (Secret) LogValue() slog.Value      { return slog.StringValue(redacted) }
func (Secret) MarshalYAML() (any, error) { return redacted, nil }
func (Secret) MarshalText() ([]byte, error) {
	return []byte(redacted), nil
}

// Bind modes.
const (
	BindTransceiver         = "transceiver"
	BindTransmitterReceiver = "transmitter_receiver"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withDefaults returns c with every unset value at its default.
func (c Config) withDefaults() Config {
	if c.MOConcurrency == 0 {
		c.MOConcurrency = 64
	}
	if c.MOTimeout == 0 {
		c.MOTimeout = 25 * time.Second
	}
	if c.Protection.MaxSegments == 0 {
		c.Protection.MaxSegments = 10
	}
	smscs := make([]SMSCConfig, len(c.SMSCs))
	for i, s := range c.SMSCs {
		smscs[i] = s.withDefaults()
	}
	c.SMSCs = smscs
	return c
}

func (s SMSCConfig) withDefaults() SMSCConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if s.BindMode == "" {
		s.BindMode = BindTransceiver
	}
	if s.Binds == 0 {
		s.Binds = 1
	}
	if s.Window == 0 {
		s.Window = 10
	}
	if s.DeliverWindow == 0 {
		s.DeliverWindow = 1000
	}
	def(&s.EnquireLink, 30*time.Second)
	def(&s.ResponseTimeout, 10*time.Second)
	def(&s.ReconnectMin, time.Second)
	def(&s.ReconnectMax, time.Minute)
	def(&s.ThrottleBackoff, 200*time.Millisecond)
	return s
}

// Validate checks the configuration (before defaults are applied, zero
// values mean "default") and names the first offending key.
func (c Config) Validate() error {
	if len(c.SMSCs) == 0 {
		return errors.New("smpp.smscs: at least one SMSC is needed")
	}
	names := map[string]bool{}
	for i, s := range c.SMSCs {
		key := fmt.Sprintf("smpp.smscs[%d]", i)
		if s.Name != "" {
			key = fmt.Sprintf("smpp.smscs[%s]", s.Name)
		}
		if err := s.validate(key); err != nil {
			return err
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, s.Name)
		}
		names[s.Name] = true
	}
	if c.DefaultRegion != "" && !validRegion(c.DefaultRegion) {
		return fmt.Errorf("smpp.default_region: %q is not an ISO 3166 region known to the numbering plan", c.DefaultRegion)
	}
	if c.MOConcurrency < 0 {
		return fmt.Errorf("smpp.mo_concurrency: %d is negative", c.MOConcurrency)
	}
	if c.MOTimeout < 0 {
		return fmt.Errorf("smpp.mo_timeout: %s is negative", c.MOTimeout)
	}
	return c.Protection.validate()
}

// validate checks the pumping guards; errors name the key.
func (p ProtectionConfig) validate() error {
	if p.MaxSegments < 0 || p.MaxSegments > 255 {
		return fmt.Errorf("smpp.protection.max_segments: %d is outside 0..255", p.MaxSegments)
	}
	for _, r := range []struct {
		key string
		r   RateConfig
	}{{"sender_rate", p.SenderRate}, {"destination_rate", p.DestinationRate}} {
		if r.r.Count < 0 || (r.r.Count > 0 && r.r.Per <= 0) {
			return fmt.Errorf("smpp.protection.%s: count %d per %s is not a rate", r.key, r.r.Count, r.r.Per)
		}
	}
	for i, d := range p.AllowedDestinations {
		if _, err := parseDestination(d); err != nil {
			return fmt.Errorf("smpp.protection.allowed_destinations[%d]: %w", i, err)
		}
	}
	return nil
}

func (s SMSCConfig) validate(key string) error {
	if s.Name == "" {
		return fmt.Errorf("%s.name: required", key)
	}
	if strings.ContainsAny(s.Name, " \t\n") {
		return fmt.Errorf("%s.name: %q has white space", key, s.Name)
	}
	if _, _, err := net.SplitHostPort(s.Address); err != nil {
		return fmt.Errorf("%s.address: %q is not host:port: %v", key, s.Address, err)
	}
	if s.SystemID == "" || len(s.SystemID) > 15 {
		return fmt.Errorf("%s.system_id: must be 1 to 15 characters", key)
	}
	if len(s.SystemType) > 12 {
		return fmt.Errorf("%s.system_type: longer than 12 characters", key)
	}
	sources := 0
	for _, set := range []bool{s.Password != "", s.PasswordFile != "", s.PasswordEnv != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return fmt.Errorf("%s.password: set only one of password, password_file and password_env", key)
	}
	if len(s.Password) > 8 {
		return fmt.Errorf("%s.password: longer than 8 characters", key)
	}
	if s.PasswordEnv != "" && !envName.MatchString(s.PasswordEnv) {
		return fmt.Errorf("%s.password_env: %q is not a variable name", key, s.PasswordEnv)
	}
	switch s.BindMode {
	case "", BindTransceiver, BindTransmitterReceiver:
	default:
		return fmt.Errorf("%s.bind_mode: %q is neither %s nor %s", key, s.BindMode, BindTransceiver, BindTransmitterReceiver)
	}
	for _, n := range []struct {
		name string
		v    int
		max  int
	}{{"binds", s.Binds, 64}, {"window", s.Window, 10000}, {"deliver_window", s.DeliverWindow, 100000}} {
		if n.v < 0 || n.v > n.max {
			return fmt.Errorf("%s.%s: %d is outside 0..%d", key, n.name, n.v, n.max)
		}
	}
	if s.Rate < 0 {
		return fmt.Errorf("%s.rate: %g is negative", key, s.Rate)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"enquire_link", s.EnquireLink}, {"response_timeout", s.ResponseTimeout},
		{"reconnect_min", s.ReconnectMin}, {"reconnect_max", s.ReconnectMax},
		{"throttle_backoff", s.ThrottleBackoff},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s.%s: %s is negative", key, d.name, d.v)
		}
	}
	if s.ReconnectMin > 0 && s.ReconnectMax > 0 && s.ReconnectMax < s.ReconnectMin {
		return fmt.Errorf("%s.reconnect_max: %s is below reconnect_min %s", key, s.ReconnectMax, s.ReconnectMin)
	}
	if err := s.SubmitIDForm.Validate(); err != nil {
		return fmt.Errorf("%s.submit_id_form: %w", key, err)
	}
	if err := s.ReceiptIDForm.Validate(); err != nil {
		return fmt.Errorf("%s.receipt_id_form: %w", key, err)
	}
	if err := s.Coding.Validate(); err != nil {
		return fmt.Errorf("%s.coding: %w", key, err)
	}
	t := s.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s.tls.cert_file: cert_file and key_file go together", key)
	}
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		return fmt.Errorf("%s.tls.enabled: TLS settings are given but TLS is not enabled", key)
	}
	return nil
}

// password reads the bind password from where the configuration says.
func (s SMSCConfig) password() (string, error) {
	switch {
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("smpp: smsc %s: password_file: %w", s.Name, err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(pw, "\r"), nil
	case s.PasswordEnv != "":
		pw, ok := os.LookupEnv(s.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("smpp: smsc %s: password_env: %s is not set", s.Name, s.PasswordEnv)
		}
		return pw, nil
	}
	return string(s.Password), nil
}

func (s SMSCConfig) allowsAlphanumeric() bool {
	return s.AlphanumericSenders == nil || *s.AlphanumericSenders
}

func validRegion(r string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(r)) != 0
}
