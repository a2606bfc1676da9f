package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mimigw.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDev(t *testing.T) {
	t.Parallel()
	c, err := loadConfig("", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != devDomain || c.HTTP.Listen != "127.0.0.1:8080" || c.Bus.Embedded.Listen != "127.0.0.1:4222" ||
		c.SIP.Listen.UDP != "127.0.0.1:5060" || c.SIP.Listen.TCP != "127.0.0.1:5060" || c.Simulator == nil || c.SMPP.SMSCs[0].Address != devSMSC {
		t.Errorf("dev config %+v", c)
	}
	if c.Bus.Embedded.DataDir != filepath.Join("data", "nats") {
		t.Errorf("bus data dir %q", c.Bus.Embedded.DataDir)
	}
}

func TestLoadConfigFileAndEnvironment(t *testing.T) {
	t.Parallel()
	f := writeFile(t, `
domain: gw.example.net
default_region: GB
data_dir: /var/lib/mimigw
gateway:
  channel: sms
  delivery_timeout: 45s
  read_receipts: false
  pools: ["+447700900000-+447700900999"]
smpp:
  smscs:
    - name: main
      address: smsc.example.net:2775
      system_id: gw
      password_env: SMSC_PASSWORD
`)
	c, err := loadConfig(f, false, []string{"MIMIGW_GATEWAY_WORKERS=64", "MIMIGW_HTTP_LISTEN=0.0.0.0:9090", "MIMIGW_SMPP_SMSCS_0_WINDOW=50"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "gw.example.net" || c.Gateway.Channel != "sms" || c.Gateway.DeliveryTimeout != 45*time.Second || c.Gateway.ReadReceipts {
		t.Errorf("file not applied: %+v", c.Gateway)
	}
	if c.Gateway.Workers != 64 || c.HTTP.Listen != "0.0.0.0:9090" || c.SMPP.SMSCs[0].Window != 50 {
		t.Errorf("environment not applied: workers %d http %s window %d", c.Gateway.Workers, c.HTTP.Listen, c.SMPP.SMSCs[0].Window)
	}
	if c.Gateway.CapabilityTTL == 0 || c.Bus.Consumer != "mimigw" {
		t.Errorf("defaults not applied")
	}
	if c.SIP != nil || c.Simulator != nil {
		t.Errorf("sections appeared that the file does not have")
	}
	if c.SMPP.DefaultRegion != "GB" {
		t.Errorf("default region not handed down: %q", c.SMPP.DefaultRegion)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	base := "domain: gw.example.net\nsmpp:\n  smscs: [{name: a, address: 127.0.0.1:2775, system_id: x}]\n"
	for _, tt := range []struct {
		file, env, want string
	}{
		{base + "gateway:\n  chanel: sms\n", "", "chanel"},
		{base + "gateway:\n  channel: fax\n", "", "gateway.channel"},
		{base + "gateway:\n  pools: [\"+1555\"]\n", "", "gateway.pools[0]"},
		{base + "log:\n  level: loud\n", "", "log.level"},
		{base + "bus:\n  duplicate_window: 1s\n", "", "bus.duplicate_window"},
		{"smpp:\n  smscs: [{name: a, address: x:1, system_id: x}]\n", "", "domain"},
		{"domain: gw.example.net\n", "", "configure at least one edge"},
		{base, "MIMIGW_GATEWAY_DELIVERY_TIMEOUT=soon", "MIMIGW_GATEWAY_DELIVERY_TIMEOUT"},
		{base, "MIMIGW_GATWAY_WORKERS=3", "MIMIGW_GATWAY_WORKERS names no configuration key"},
		{base + "domain: [x\n", "", "mimigw.yaml"},
	} {
		var env []string
		if tt.env != "" {
			env = []string{tt.env}
		}
		_, err := loadConfig(writeFile(t, tt.file), false, env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %q env %q: error %v, want it to name %q", tt.file, tt.env, err, tt.want)
		}
	}
}

func TestDeployExampleLoads(t *testing.T) {
	t.Parallel()
	// The example names files of a production host: stand-ins here.
	dir := t.TempDir()
	env := []string{"MIMIGW_HTTP_ADMIN_TOKEN=0123456789abcdef"}
	for _, key := range []string{"BUS_CREDS_FILE", "BUS_TLS_CA_FILE", "SIP_TLS_CERT_FILE", "SIP_TLS_KEY_FILE", "SIP_TLS_CA_FILE",
		"SMPP_SMSCS_0_TLS_CA_FILE", "SMPP_SMSCS_0_PASSWORD_FILE", "HTTP_ADMIN_TOKEN_FILE", "MLS_STATE_KEY_FILE"} {
		p := filepath.Join(dir, key)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "MIMIGW_"+key+"="+p)
	}
	c, err := loadConfig("../../deploy/mimigw.yaml", false, env)
	if err != nil {
		t.Fatalf("deploy/mimigw.yaml: %v", err)
	}
	if c.SIP == nil || c.SMPP == nil || c.MLS == nil || c.Simulator != nil {
		t.Errorf("the production example should configure SIP, SMPP and MLS and no simulator")
	}
}

func TestSectionErrorsNamedOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ file, want string }{
		{"domain: gw.example.net\nsip:\n  listen: {udp: \"nohost\"}\n", "sip.listen.udp"},
		{"domain: gw.example.net\nsmpp:\n  smscs: [{name: a, address: nohost, system_id: x}]\n", "smpp.smscs[a].address"},
	} {
		_, err := loadConfig(writeFile(t, tt.file), false, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "sip.sip") || strings.Contains(err.Error(), "smpp: smpp") {
			t.Errorf("%q: %v, want it to name %s once", tt.file, err, tt.want)
		}
	}
}

// YAML mistakes are named by their key path, all of them at once.
func TestLoadConfigYAMLErrorsNameKeyPaths(t *testing.T) {
	t.Parallel()
	f := writeFile(t, `domain: gw.example.net
http:
  listne: 127.0.0.1:8080
gateway:
  workers: many
  delivery_timeout: soon
  alphanumeric_senders:
    "mimi://gw.example.net/u/bank": [BANK]
smpp:
  smscs:
    - name: a
      address: 127.0.0.1:2775
      system_id: x
      coding:
        concat: bogus
        pakced: true
bogus_section: {}
`)
	_, err := loadConfig(f, false, nil)
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{
		"http.listne: unknown key; did you mean listen? (line 3)",
		"gateway.workers: want a number, got `many` (line 5)",
		"gateway.delivery_timeout: want a duration such as 30s or 2m, got `soon`",
		`gateway.alphanumeric_senders["mimi://gw.example.net/u/bank"]: want text, got a list`,
		"smpp.smscs[0].coding.concat: coding: unknown concat method",
		"smpp.smscs[0].coding.pakced: unknown key; did you mean packed?",
		"bogus_section: unknown key",
		"7 problems",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	// A list where a section goes, and a section where a list goes.
	_, err = loadConfig(writeFile(t, "domain: x.example\nhttp: [a]\ngateway: {pools: {a: b}}\n"), false, nil)
	if err == nil || !strings.Contains(err.Error(), "http: want a section of keys") || !strings.Contains(err.Error(), "gateway.pools: want a list, got a section of keys") {
		t.Errorf("wrong shapes: %v", err)
	}
	// Anchors and merge keys are followed.
	c, err := loadConfig(writeFile(t, `domain: gw.example.net
x-smsc: &smsc {address: 127.0.0.1:2775, system_id: x}
smpp:
  smscs:
    - <<: *smsc
      name: a
`), false, nil)
	if err == nil || !strings.Contains(err.Error(), "x-smsc: unknown key") || strings.Contains(err.Error(), "smscs[0]") {
		t.Errorf("merge keys: %v %+v", err, c)
	}
}

// A configuration error never shows a password written into bus.url.
func TestConfigErrorHidesBusURLSecret(t *testing.T) {
	t.Parallel()
	base := "domain: gw.example.net\nsmpp:\n  smscs: [{name: a, address: 127.0.0.1:2775, system_id: x}]\n"
	for _, tt := range []struct{ file, env string }{
		{base + "bus:\n  url: http://gw:secret@nats.example:4222\n", ""},
		{base + "bus:\n  url: nats://gw:secret@nats.example:port\n", ""},
		{base + "bus:\n  url: nats://gw:secret@nats.example:4222\n  replicas: 9\n", ""},
		{base, "MIMIGW_BUS_URL=http://gw:secret@nats.example:4222"},
		{base + "bus:\n  url: [nats://gw:secret@nats.example:4222]\n", ""},
	} {
		var env []string
		if tt.env != "" {
			env = []string{tt.env}
		}
		_, err := loadConfig(writeFile(t, tt.file), false, env)
		if err == nil || !strings.Contains(err.Error(), "bus.") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q %q: %v, want an error on bus without the password", tt.file, tt.env, err)
		}
	}
}

// In dev the simulator's address is one setting: the SMS edge binds to
// wherever smsc_simulator.listen says, unless its address is set too.
func TestLoadConfigDevSimulatorOnePort(t *testing.T) {
	t.Parallel()
	c, err := loadConfig("", true, []string{"MIMIGW_SMSC_SIMULATOR_LISTEN=127.0.0.1:2800"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Simulator.Listen != "127.0.0.1:2800" || c.SMPP.SMSCs[0].Address != "127.0.0.1:2800" {
		t.Errorf("simulator on %s, SMS edge binds to %s", c.Simulator.Listen, c.SMPP.SMSCs[0].Address)
	}
	c, err = loadConfig("", true, []string{"MIMIGW_SMSC_SIMULATOR_LISTEN=127.0.0.1:2800", "MIMIGW_SMPP_SMSCS_0_ADDRESS=127.0.0.1:2900"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SMPP.SMSCs[0].Address != "127.0.0.1:2900" {
		t.Errorf("explicit address lost: %s", c.SMPP.SMSCs[0].Address)
	}
}
