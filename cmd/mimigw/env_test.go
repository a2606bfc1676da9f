package main

import (
	"strings"
	"testing"
	"time"
)

type envSample struct {
	Domain string `yaml:"domain"`
	HTTP   struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
	Timeout time.Duration `yaml:"timeout"`
	Pools   []string      `yaml:"pools"`
	Workers int           `yaml:"workers"`
	Verbose bool          `yaml:"verbose"`
	SMSCs   []struct {
		Name     string `yaml:"name"`
		Password string `yaml:"password"`
	} `yaml:"smscs"`
	Ptr *struct {
		Rate float64 `yaml:"rate"`
	} `yaml:"ptr"`
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	var c envSample
	c.SMSCs = append(c.SMSCs, struct {
		Name     string `yaml:"name"`
		Password string `yaml:"password"`
	}{Name: "a"})
	env := []string{
		"PATH=/bin",
		"MIMIGW_DOMAIN=gw.example.net",
		"MIMIGW_HTTP_LISTEN=0.0.0.0:8080",
		"MIMIGW_TIMEOUT=90s",
		"MIMIGW_POOLS=+15559990000-+15559990099, +15559991000",
		"MIMIGW_WORKERS=16",
		"MIMIGW_VERBOSE=true",
		"MIMIGW_SMSCS_0_PASSWORD=secret0",
		"MIMIGW_SMSCS_1_NAME=b",
		"MIMIGW_PTR_RATE=2.5",
		"MIMIGW_INTEROP=1",
	}
	if err := applyEnv("MIMIGW", &c, env); err != nil {
		t.Fatal(err)
	}
	if c.Domain != "gw.example.net" || c.HTTP.Listen != "0.0.0.0:8080" || c.Timeout != 90*time.Second ||
		len(c.Pools) != 2 || c.Pools[1] != "+15559991000" || c.Workers != 16 || !c.Verbose {
		t.Errorf("scalars not applied: %+v", c)
	}
	if len(c.SMSCs) != 2 || c.SMSCs[0].Name != "a" || c.SMSCs[0].Password != "secret0" || c.SMSCs[1].Name != "b" {
		t.Errorf("list of structs not applied: %+v", c.SMSCs)
	}
	if c.Ptr == nil || c.Ptr.Rate != 2.5 {
		t.Errorf("pointer not applied: %+v", c.Ptr)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, want string }{
		{"MIMIGW_TIMEOUT=soon", "MIMIGW_TIMEOUT"},
		{"MIMIGW_WORKERS=many", "MIMIGW_WORKERS"},
		{"MIMIGW_DOMIAN=x", "MIMIGW_DOMIAN names no configuration key"},
		{"MIMIGW_SMSCS_3_NAME=x", "MIMIGW_SMSCS_3_NAME names no configuration key"},
	} {
		var c envSample
		err := applyEnv("MIMIGW", &c, []string{tt.env})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to name %q", tt.env, err, tt.want)
		}
	}
}

// A map of scalars is set from comma-separated KEY=VALUE pairs, as the
// README says: gateway.alphanumeric_senders from
// MIMIGW_GATEWAY_ALPHANUMERIC_SENDERS.
func TestApplyEnvMap(t *testing.T) {
	t.Parallel()
	var c struct {
		Senders map[string]string `yaml:"senders"`
		Limits  map[string]int    `yaml:"limits"`
	}
	c.Senders = map[string]string{"mimi://old.example/u/x": "OLD"}
	env := []string{"MIMIGW_SENDERS=mimi://a.example/u/bank=BANK, mimi://a.example/u/q?x=1=SHOP", "MIMIGW_LIMITS=a=1,b=2"}
	if err := applyEnv("MIMIGW", &c, env); err != nil {
		t.Fatal(err)
	}
	if len(c.Senders) != 2 || c.Senders["mimi://a.example/u/bank"] != "BANK" || c.Senders["mimi://a.example/u/q?x=1"] != "SHOP" {
		t.Errorf("senders %v", c.Senders)
	}
	if len(c.Limits) != 2 || c.Limits["b"] != 2 {
		t.Errorf("limits %v", c.Limits)
	}
	for _, bad := range []string{"MIMIGW_SENDERS=BANK", "MIMIGW_LIMITS=a=many"} {
		if err := applyEnv("MIMIGW", &c, []string{bad}); err == nil || !strings.Contains(err.Error(), strings.Split(bad, "=")[0]) {
			t.Errorf("%s: %v", bad, err)
		}
	}

	cfg, err := loadConfig("", true, []string{"MIMIGW_GATEWAY_ALPHANUMERIC_SENDERS=mimi://mimigw.localhost/u/bank=BANK"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.AlphanumericSenders["mimi://mimigw.localhost/u/bank"] != "BANK" {
		t.Errorf("alphanumeric senders %v", cfg.Gateway.AlphanumericSenders)
	}
}
