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
