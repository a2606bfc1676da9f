package smpp

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/receipt"
)

const sampleYAML = `
default_region: US
mo_concurrency: 32
smscs:
  - name: operator-a
    address: smsc-a.example:2775
    system_id: mimigw
    password_env: SMPP_PASSWORD_A
    system_type: MIMI
    bind_mode: transmitter_receiver
    binds: 2
    window: 50
    rate: 100
    enquire_link: 15s
    response_timeout: 5s
    priority: 1
    submit_id_form: {base: hex}
    receipt_id_form: {base: decimal}
    source_ton: 1
    alphanumeric_senders: false
    coding:
      default_alphabet: latin1
      use_latin1: true
      concat: udh16
      max_segments: 6
    tls:
      enabled: true
      server_name: smsc.operator.example
  - name: operator-b
    address: 127.0.0.1:2776
    system_id: mimigw
    password_file: /run/secrets/smpp-b
    priority: 2
protection:
  max_segments: 8
  sender_rate: {count: 30, per: 1m}
  destination_rate: {count: 5, per: 1h}
  allowed_destinations: ["+44", "US"]
`

func TestConfigYAML(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte(sampleYAML), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := c.SMSCs[0]
	if a.BindMode != BindTransmitterReceiver || a.Binds != 2 || a.Window != 50 || a.Rate != 100 ||
		a.EnquireLink != 15*time.Second || a.SubmitIDForm.Base != receipt.Hex || a.ReceiptIDForm.Base != receipt.Decimal || a.SourceTON == nil || *a.SourceTON != 1 ||
		a.allowsAlphanumeric() || !a.TLS.Enabled || a.PasswordEnv != "SMPP_PASSWORD_A" {
		t.Fatalf("smsc a: %+v", a)
	}
	if a.Coding.DefaultAlphabet != coding.Latin1 || !a.Coding.UseLatin1 || a.Coding.Concat != coding.ConcatUDH16 || a.Coding.MaxSegments != 6 {
		t.Fatalf("coding: %+v", a.Coding)
	}
	if c.Protection.SenderRate != (RateConfig{30, time.Minute}) {
		t.Fatalf("protection: %+v", c.Protection)
	}
	d := c.withDefaults()
	b := d.SMSCs[1]
	if b.BindMode != BindTransceiver || b.Binds != 1 || b.Window != 10 || b.DeliverWindow != 1000 || b.ResponseTimeout != 10*time.Second ||
		b.SubmitIDForm != (receipt.IDForm{}) || !b.allowsAlphanumeric() {
		t.Fatalf("defaults: %+v", b)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{SMSCs: []SMSCConfig{{Name: "a", Address: "127.0.0.1:2775", SystemID: "gw"}}}
	}
	if err := base().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key string
		mod func(*Config)
	}{
		{"smpp.smscs", func(c *Config) { c.SMSCs = nil }},
		{"smpp.smscs[0].name", func(c *Config) { c.SMSCs[0].Name = "" }},
		{"smpp.smscs[a].address", func(c *Config) { c.SMSCs[0].Address = "nohost" }},
		{"smpp.smscs[a].system_id", func(c *Config) { c.SMSCs[0].SystemID = strings.Repeat("x", 16) }},
		{"smpp.smscs[a].password", func(c *Config) { c.SMSCs[0].Password, c.SMSCs[0].PasswordEnv = "x", "Y" }},
		{"smpp.smscs[a].password", func(c *Config) { c.SMSCs[0].Password = "123456789" }},
		{"smpp.smscs[a].password_env", func(c *Config) { c.SMSCs[0].PasswordEnv = "1BAD NAME" }},
		{"smpp.smscs[a].bind_mode", func(c *Config) { c.SMSCs[0].BindMode = "receiver" }},
		{"smpp.smscs[a].window", func(c *Config) { c.SMSCs[0].Window = -1 }},
		{"smpp.smscs[a].deliver_window", func(c *Config) { c.SMSCs[0].DeliverWindow = 100001 }},
		{"smpp.smscs[a].rate", func(c *Config) { c.SMSCs[0].Rate = -1 }},
		{"smpp.smscs[a].enquire_link", func(c *Config) { c.SMSCs[0].EnquireLink = -time.Second }},
		{"smpp.smscs[a].reconnect_max", func(c *Config) { c.SMSCs[0].ReconnectMin, c.SMSCs[0].ReconnectMax = time.Minute, time.Second }},
		{"smpp.smscs[a].receipt_id_form", func(c *Config) { c.SMSCs[0].ReceiptIDForm = receipt.IDForm{Base: receipt.Hex, FoldCase: true} }},
		{"smpp.smscs[a].coding", func(c *Config) { c.SMSCs[0].Coding.MaxSegments = 300 }},
		{"smpp.smscs[a].tls.cert_file", func(c *Config) { c.SMSCs[0].TLS = TLSConfig{Enabled: true, CertFile: "x"} }},
		{"smpp.smscs[a].tls.enabled", func(c *Config) { c.SMSCs[0].TLS = TLSConfig{CAFile: "x"} }},
		{"smpp.smscs[a].name", func(c *Config) { c.SMSCs = append(c.SMSCs, c.SMSCs[0]) }},
		{"smpp.default_region", func(c *Config) { c.DefaultRegion = "XX" }},
		{"smpp.mo_concurrency", func(c *Config) { c.MOConcurrency = -1 }},
		{"smpp.mo_timeout", func(c *Config) { c.MOTimeout = -1 }},
		{"smpp.protection.max_segments", func(c *Config) { c.Protection.MaxSegments = 256 }},
		{"smpp.protection.sender_rate", func(c *Config) { c.Protection.SenderRate = RateConfig{Count: 3} }},
		{"smpp.protection.allowed_destinations[1]", func(c *Config) { c.Protection.AllowedDestinations = []string{"+44", "+999"} }},
		{"smpp.protection.allowed_destinations[0]", func(c *Config) { c.Protection.AllowedDestinations = []string{"Narnia"} }},
	} {
		cfg := base()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.key) {
			t.Errorf("want an error naming %s, got %v", c.key, err)
		}
	}
}

func TestSecretNeverShows(t *testing.T) {
	s := SMSCConfig{Name: "a", Password: "hunter2"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "smsc", s, "pw", s.Password)
	out, _ := yaml.Marshal(s)
	for _, text := range []string{fmt.Sprintf("%v|%+v|%#v|%s", s, s, s, s.Password), b.String(), string(out)} {
		if strings.Contains(text, "hunter2") {
			t.Fatalf("password shown: %s", text)
		}
	}
	if pw, err := s.password(); err != nil || pw != "hunter2" {
		t.Fatalf("password() = %q, %v", pw, err)
	}
}
