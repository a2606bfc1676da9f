package bus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	checks := map[string][2]string{
		"listen":         {c.Embedded.Listen, "127.0.0.1:4222"},
		"to stream":      {c.ToPhoneStream, "MIMI_TO_PHONE"},
		"from stream":    {c.FromPhoneStream, "MIMI_FROM_PHONE"},
		"timer stream":   {c.TimerStream, "MIMIGW_TIMERS"},
		"identity":       {c.IdentityBucket, "mimigw-identity"},
		"capabilities":   {c.CapabilitiesBucket, "mimigw-capabilities"},
		"deliveries":     {c.DeliveriesBucket, "mimigw-deliveries"},
		"consumer":       {c.Consumer, "mimigw"},
		"duplicate wind": {c.DuplicateWindow.String(), "2m0s"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if c.Replicas != 1 {
		t.Errorf("replicas %d", c.Replicas)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
url: nats://10.0.0.1:4222,nats://10.0.0.2:4222
replicas: 3
ack_wait: 45s
max_deliver: 6
backoff: [2s, 10s, 1m]
from_phone_max_age: 48h
tls:
  server_name: nats.example
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.AckWait != 45*time.Second || c.MaxDeliver != 6 || c.Replicas != 3 ||
		len(c.Backoff) != 3 || c.Backoff[2] != time.Minute || c.FromPhoneMaxAge != 48*time.Hour ||
		c.TLS.ServerName != "nats.example" {
		t.Errorf("decoded %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key string
		f   func(c *Config)
	}{
		{"url", func(c *Config) { c.URL = "http://x:4222" }},
		{"url", func(c *Config) { c.URL = "nats://a:4222,,nats://b:4222" }},
		{"embedded.listen", func(c *Config) { c.Embedded.Listen = "4222" }},
		{"embedded.listen", func(c *Config) { c.Embedded.Listen = "127.0.0.1:99999" }},
		{"embedded.listen", func(c *Config) { c.Embedded.Listen = ":4222" }},
		{"embedded.listen", func(c *Config) { c.Embedded.Listen = "0.0.0.0:4222" }},
		{"embedded.data_dir", func(c *Config) { c.Embedded.DataDir = "" }},
		{"creds_file", func(c *Config) { c.CredsFile = secret }},
		{"tls", func(c *Config) { c.TLS.ServerName = "x" }},
		{"creds_file", func(c *Config) { c.URL = "nats://x:1"; c.CredsFile = secret; c.Token = "t" }},
		{"password_file", func(c *Config) { c.User = "u"; c.Password = "p"; c.PasswordFile = secret }},
		{"user", func(c *Config) { c.Password = "p" }},
		{"password", func(c *Config) { c.User = "u" }},
		{"token_file", func(c *Config) { c.TokenFile = filepath.Join(dir, "missing") }},
		{"tls.cert_file", func(c *Config) { c.URL = "nats://x:1"; c.TLS.CertFile = secret }},
		{"replicas", func(c *Config) { c.Replicas = 3 }},
		{"replicas", func(c *Config) { c.URL = "nats://x:1"; c.Replicas = 7 }},
		{"to_phone_stream", func(c *Config) { c.ToPhoneStream = "MIMI.TO" }},
		{"to_phone_stream", func(c *Config) { c.FromPhoneStream = c.ToPhoneStream }},
		{"consumer", func(c *Config) { c.Consumer = "a b" }},
		{"deliveries_bucket", func(c *Config) { c.DeliveriesBucket = "x>" }},
		{"identity_bucket", func(c *Config) { c.CapabilitiesBucket = c.IdentityBucket }},
		{"deliveries_bucket", func(c *Config) { c.DeliveriesBucket = c.IdentityBucket }},
		{"deliveries_bucket", func(c *Config) { c.CapabilitiesBucket = c.DeliveriesBucket + "-3" }},
		{"deliveries_shards", func(c *Config) { c.DeliveriesShards = -1 }},
		{"deliveries_shards", func(c *Config) { c.DeliveriesShards = MaxDeliveriesShards + 1 }},
		{"to_phone_max_bytes", func(c *Config) { c.ToPhoneMaxBytes = -5 }},
		{"from_phone_max_age", func(c *Config) { c.FromPhoneMaxAge = -time.Hour }},
		{"from_phone_max_bytes", func(c *Config) { c.FromPhoneMaxBytes = -1 }},
		{"duplicate_window", func(c *Config) { c.DuplicateWindow = time.Minute }},
		{"duplicate_window", func(c *Config) { c.FromPhoneMaxAge = 3 * time.Minute; c.DuplicateWindow = 5 * time.Minute }},
		{"deliveries_ttl", func(c *Config) { c.DeliveriesTTL = time.Millisecond }},
		{"capabilities_ttl", func(c *Config) { c.CapabilitiesTTL = -1 }},
		{"ack_wait", func(c *Config) { c.AckWait = 10 * time.Millisecond }},
		{"max_deliver", func(c *Config) { c.MaxDeliver = -1 }},
		{"backoff", func(c *Config) { c.MaxDeliver = 2; c.Backoff = []time.Duration{1, 2, 3} }},
		{"backoff", func(c *Config) { c.Backoff = []time.Duration{time.Second, 0} }},
		{"backoff", func(c *Config) { c.Backoff = []time.Duration{time.Minute, time.Second} }},
		{"max_ack_pending", func(c *Config) { c.MaxAckPending = -1 }},
		{"publish_timeout", func(c *Config) { c.PublishTimeout = -1 }},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.f(&c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("key %s: got %v, want a ConfigError", tt.key, err)
			continue
		}
		if ce.Key != tt.key {
			t.Errorf("error %q names key %q, want %q", err, ce.Key, tt.key)
		}
		if !strings.HasPrefix(err.Error(), tt.key+": ") {
			t.Errorf("error %q does not start with the key", err)
		}
	}
}

func TestConfigValidCombinations(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(c *Config){
		"embedded on all interfaces with a token": func(c *Config) { c.Embedded.Listen = "0.0.0.0:4222"; c.TokenFile = secret },
		"embedded on ::1":                         func(c *Config) { c.Embedded.Listen = "[::1]:4222" },
		"embedded any port":                       func(c *Config) { c.Embedded.Listen = "127.0.0.1:-1" },
		"external with creds and tls":             func(c *Config) { c.URL = "tls://n1:4222"; c.CredsFile = secret; c.TLS.CAFile = secret; c.Replicas = 3 },
		"external user and password file":         func(c *Config) { c.URL = "n1:4222"; c.User = "gw"; c.PasswordFile = secret },
	} {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := DefaultConfig()
	c.User, c.PasswordFile = "gw", secret
	pw, tok, err := c.secrets()
	if err != nil || pw != "s3cret" || tok != "" {
		t.Errorf("secrets() = %q, %q, %v", pw, tok, err)
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("nats://u:pw@h1:4222,nats://h2:4222,tok@h3:1")
	if strings.Contains(got, "pw") || strings.Contains(got, "tok") || !strings.Contains(got, "h2:4222") {
		t.Errorf("RedactURL = %q", got)
	}
}

func TestNakDelay(t *testing.T) {
	b := &Bus{cfg: Config{Backoff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}}}
	tests := []struct {
		role    string
		attempt int
		want    time.Duration
		send    time.Duration
	}{
		// Default backoff: the server adds Backoff[k-1]-Backoff[0].
		{roleToPhone, 1, 0, time.Second},
		{roleToPhone, 2, 0, time.Second},
		{roleToPhone, 3, 0, time.Second},
		{roleToPhone, 9, 0, time.Second},
		// Explicit delays.
		{roleToPhone, 1, 10 * time.Second, 10 * time.Second},
		{roleToPhone, 2, 10 * time.Second, 6 * time.Second},
		{roleToPhone, 3, 10 * time.Second, time.Millisecond}, // lengthened to 29s+1ms
		// Timers have no server backoff.
		{roleTimers, 3, 0, 30 * time.Second},
		{roleTimers, 3, 7 * time.Second, 7 * time.Second},
	}
	for _, tt := range tests {
		if got := b.nakDelay(tt.role, tt.attempt, tt.want); got != tt.send {
			t.Errorf("nakDelay(%s, attempt %d, %s) = %s, want %s", tt.role, tt.attempt, tt.want, got, tt.send)
		}
	}
}

func TestTimerRetry(t *testing.T) {
	b := &Bus{cfg: Config{Backoff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}}}
	for overdue, want := range map[time.Duration]time.Duration{
		0: time.Second, 3 * time.Second: time.Second, 5 * time.Second: 5 * time.Second,
		time.Minute: 30 * time.Second, 24 * time.Hour: 30 * time.Second,
	} {
		if got := b.timerRetry(overdue); got != want {
			t.Errorf("timerRetry(%s) = %s, want %s", overdue, got, want)
		}
	}
}

// A bad URL is named in the error without its password.
func TestConfigErrorRedactsURL(t *testing.T) {
	for _, u := range []string{"http://gw:secret@n1:4222", "nats://gw:secret@n1:port", "nats://n1:4222,,nats://gw:secret@n2:4222", "nats://gw:secret@"} {
		c := DefaultConfig()
		c.URL = u
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "url: ") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want an error on url without the password", u, err)
		}
	}
}
