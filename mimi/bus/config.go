package bus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config says where the bus is and how its streams, buckets and consumers
// are shaped. The zero value is not usable: start from DefaultConfig, or
// call ApplyDefaults on a decoded value, then Validate.
type Config struct {
	// URL lists external NATS server URLs, comma-separated. Empty runs an
	// embedded server (see Embedded).
	URL string `yaml:"url"`
	// Name is the connection name the NATS server shows for this client.
	Name     string         `yaml:"name"`
	Embedded EmbeddedConfig `yaml:"embedded"`

	// Credentials. At most one of CredsFile, NKeyFile, User/Password and
	// Token; a password or token may be read from a file instead.
	CredsFile    string    `yaml:"creds_file"`
	NKeyFile     string    `yaml:"nkey_file"`
	User         string    `yaml:"user"`
	Password     string    `yaml:"password"`
	PasswordFile string    `yaml:"password_file"`
	Token        string    `yaml:"token"`
	TokenFile    string    `yaml:"token_file"`
	TLS          TLSConfig `yaml:"tls"`

	// Replicas of every stream and bucket: 1 for a single server, 3 for a
	// cluster.
	Replicas int `yaml:"replicas"`

	ToPhoneStream      string `yaml:"to_phone_stream"`
	FromPhoneStream    string `yaml:"from_phone_stream"`
	TimerStream        string `yaml:"timer_stream"`
	IdentityBucket     string `yaml:"identity_bucket"`
	CapabilitiesBucket string `yaml:"capabilities_bucket"`
	DeliveriesBucket   string `yaml:"deliveries_bucket"`
	// Consumer is the durable consumer on the to-phone stream that all
	// gateway instances share; the timer consumer is named after it.
	Consumer string `yaml:"consumer"`

	// ToPhoneMaxBytes bounds the work queue; when it is full, publishing
	// fails (and the publisher retries) rather than dropping old work.
	ToPhoneMaxBytes   int64         `yaml:"to_phone_max_bytes"`
	FromPhoneMaxAge   time.Duration `yaml:"from_phone_max_age"`
	FromPhoneMaxBytes int64         `yaml:"from_phone_max_bytes"`
	// DuplicateWindow is how long a message ID is remembered for
	// de-duplication on the to-phone and from-phone streams.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	DeliveriesTTL   time.Duration `yaml:"deliveries_ttl"`
	// DeliveriesMaxRecords bounds the records of the deliveries bucket
	// (about one to three per message); past it the oldest go first. Each
	// live record costs the NATS server about 165 bytes of memory, so this
	// bound, not the TTL, is what keeps the server's memory flat under
	// sustained load: size it to the message rate times the time receipts
	// and read reports may take to come back.
	DeliveriesMaxRecords int64 `yaml:"deliveries_max_records"`
	// DeliveriesShards splits the deliveries bucket into this many
	// buckets (deliveries_bucket, then deliveries_bucket-1 and on), which
	// share deliveries_max_records. The NATS server briefly stalls a
	// bucket's writes while it saves that bucket's key index, for a time
	// that grows with the keys it holds; shards keep each stall short. All
	// instances must use the same value, and it cannot change once records
	// are written (Open refuses a different one).
	DeliveriesShards int           `yaml:"deliveries_shards"`
	CapabilitiesTTL  time.Duration `yaml:"capabilities_ttl"`

	// AckWait is how long a handler may hold a message before the server
	// assumes its instance died and hands the message to another.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliver bounds the attempts at a to-phone message; the attempt
	// numbered MaxDeliver is marked LastAttempt.
	MaxDeliver int `yaml:"max_deliver"`
	// Backoff[i] is the wait after failed attempt i+1 before the next one;
	// the last step repeats. At most MaxDeliver steps.
	Backoff []time.Duration `yaml:"backoff"`
	// MaxAckPending bounds the to-phone messages handed out and not yet
	// settled, across all instances.
	MaxAckPending int `yaml:"max_ack_pending"`
	// PublishTimeout bounds every publish, sendings again while a stream
	// has no leader included (a shorter caller deadline wins).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// PublishAckTimeout is how long one sending of a publish waits for its
	// ack before it is sent again (the ack of a node that died never
	// comes); one longer than PublishTimeout counts as PublishTimeout.
	// Default 2 s.
	PublishAckTimeout time.Duration `yaml:"publish_ack_timeout"`
}

// EmbeddedConfig configures the NATS server run inside the process when no
// URL is given.
type EmbeddedConfig struct {
	// Listen is host:port for clients; port -1 picks a free port (tests).
	// Ignored, like DataDir, when URL is set.
	Listen string `yaml:"listen"`
	// DataDir holds the JetStream file store.
	DataDir string `yaml:"data_dir"`
}

// TLSConfig configures TLS towards an external server.
type TLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// Defaults of the bus contract (docs/architecture.md, bus contract) and of
// this package.
const (
	DefaultListen             = "127.0.0.1:4222"
	DefaultDataDir            = "data/nats"
	DefaultToPhoneStream      = "MIMI_TO_PHONE"
	DefaultFromPhoneStream    = "MIMI_FROM_PHONE"
	DefaultTimerStream        = "MIMIGW_TIMERS"
	DefaultIdentityBucket     = "mimigw-identity"
	DefaultCapabilitiesBucket = "mimigw-capabilities"
	DefaultDeliveriesBucket   = "mimigw-deliveries"
	DefaultConsumer           = "mimigw"

	// MinDuplicateWindow is the shortest de-duplication window the bus
	// contract allows (docs/architecture.md, bus contract).
	MinDuplicateWindow = 2 * time.Minute

	// MaxDeliveriesShards bounds deliveries_shards.
	MaxDeliveriesShards = 64
)

// DefaultConfig returns a configuration for an embedded server on
// 127.0.0.1:4222 with data under data/nats.
func DefaultConfig() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset field with its default.
func (c *Config) ApplyDefaults() {
	setDefault(&c.Name, "mimigw")
	setDefault(&c.Embedded.Listen, DefaultListen)
	setDefault(&c.Embedded.DataDir, DefaultDataDir)
	setDefault(&c.ToPhoneStream, DefaultToPhoneStream)
	setDefault(&c.FromPhoneStream, DefaultFromPhoneStream)
	setDefault(&c.TimerStream, DefaultTimerStream)
	setDefault(&c.IdentityBucket, DefaultIdentityBucket)
	setDefault(&c.CapabilitiesBucket, DefaultCapabilitiesBucket)
	setDefault(&c.DeliveriesBucket, DefaultDeliveriesBucket)
	setDefault(&c.Consumer, DefaultConsumer)
	setDefault(&c.Replicas, 1)
	setDefault(&c.ToPhoneMaxBytes, 1<<30)
	setDefault(&c.FromPhoneMaxAge, 72*time.Hour)
	setDefault(&c.FromPhoneMaxBytes, 1<<30)
	setDefault(&c.DuplicateWindow, MinDuplicateWindow)
	setDefault(&c.DeliveriesTTL, 7*24*time.Hour)
	setDefault(&c.DeliveriesMaxRecords, 1_000_000)
	setDefault(&c.DeliveriesShards, 16)
	setDefault(&c.CapabilitiesTTL, 24*time.Hour)
	setDefault(&c.AckWait, 30*time.Second)
	setDefault(&c.MaxDeliver, 5)
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	setDefault(&c.MaxAckPending, 1000)
	setDefault(&c.PublishTimeout, 5*time.Second)
	setDefault(&c.PublishAckTimeout, 2*time.Second)
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// ConfigError names the configuration key that is wrong, or that the
// operator has to look at (url when no server answers there,
// embedded.listen when its port is taken). Keys are those of the yaml
// tags, relative to wherever the bus section sits. Problem never holds a
// secret: URLs in it are redacted.
type ConfigError struct {
	Key     string
	Problem string
	// Err is the cause callers may branch on (ErrUnavailable), if any.
	Err error
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

func (e *ConfigError) Unwrap() error { return e.Err }

func bad(key, format string, args ...any) error {
	return &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// Validate reports the first bad key. Call it after ApplyDefaults.
func (c *Config) Validate() error {
	if c.URL != "" {
		for _, u := range strings.Split(c.URL, ",") {
			if err := checkServerURL(strings.TrimSpace(u)); err != nil {
				return bad("url", "%q: %v", RedactURL(u), err)
			}
		}
	} else {
		if err := c.validateEmbedded(); err != nil {
			return err
		}
	}
	if err := c.validateCredentials(); err != nil {
		return err
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return bad("replicas", "must be 1 to 5, got %d", c.Replicas)
	}
	if c.URL == "" && c.Replicas != 1 {
		return bad("replicas", "must be 1 with the embedded server, got %d", c.Replicas)
	}
	names := []struct{ key, val string }{
		{"to_phone_stream", c.ToPhoneStream},
		{"from_phone_stream", c.FromPhoneStream},
		{"timer_stream", c.TimerStream},
		{"consumer", c.Consumer},
	}
	for _, n := range names {
		if !validName(n.val) {
			return bad(n.key, "%q: want letters, digits, '-' and '_' only", n.val)
		}
	}
	if c.ToPhoneStream == c.FromPhoneStream || c.ToPhoneStream == c.TimerStream || c.FromPhoneStream == c.TimerStream {
		return bad("to_phone_stream", "streams must have distinct names")
	}
	buckets := []struct{ key, val string }{
		{"identity_bucket", c.IdentityBucket},
		{"capabilities_bucket", c.CapabilitiesBucket},
		{"deliveries_bucket", c.DeliveriesBucket},
	}
	for _, n := range buckets {
		if !validName(n.val) {
			return bad(n.key, "%q: want letters, digits, '-' and '_' only", n.val)
		}
	}
	if c.DeliveriesShards < 1 || c.DeliveriesShards > MaxDeliveriesShards {
		return bad("deliveries_shards", "must be 1 to %d, got %d", MaxDeliveriesShards, c.DeliveriesShards)
	}
	if c.IdentityBucket == c.CapabilitiesBucket {
		return bad("identity_bucket", "buckets must have distinct names")
	}
	for i := range c.DeliveriesShards {
		if n := deliveryBucketName(c.DeliveriesBucket, i); n == c.IdentityBucket || n == c.CapabilitiesBucket {
			return bad("deliveries_bucket", "%q (shard %d) is also the name of another bucket", n, i)
		}
	}
	if c.ToPhoneMaxBytes < -1 || c.ToPhoneMaxBytes == 0 {
		return bad("to_phone_max_bytes", "must be positive or -1 (unlimited), got %d", c.ToPhoneMaxBytes)
	}
	if c.FromPhoneMaxAge <= 0 {
		return bad("from_phone_max_age", "must be positive (the stream is bounded by age), got %s", c.FromPhoneMaxAge)
	}
	if c.FromPhoneMaxBytes <= 0 {
		return bad("from_phone_max_bytes", "must be positive (the stream is bounded by size), got %d", c.FromPhoneMaxBytes)
	}
	if c.DuplicateWindow < MinDuplicateWindow {
		return bad("duplicate_window", "must be at least %s, got %s", MinDuplicateWindow, c.DuplicateWindow)
	}
	if c.DuplicateWindow > c.FromPhoneMaxAge {
		return bad("duplicate_window", "%s is longer than from_phone_max_age %s", c.DuplicateWindow, c.FromPhoneMaxAge)
	}
	if c.DeliveriesMaxRecords < 1000 {
		return bad("deliveries_max_records", "must be at least 1000, got %d", c.DeliveriesMaxRecords)
	}
	if c.DeliveriesTTL < time.Second {
		return bad("deliveries_ttl", "must be at least 1s, got %s", c.DeliveriesTTL)
	}
	if c.CapabilitiesTTL < time.Second {
		return bad("capabilities_ttl", "must be at least 1s, got %s", c.CapabilitiesTTL)
	}
	if c.AckWait < time.Second {
		return bad("ack_wait", "must be at least 1s, got %s", c.AckWait)
	}
	if c.MaxDeliver < 1 {
		return bad("max_deliver", "must be at least 1, got %d", c.MaxDeliver)
	}
	if len(c.Backoff) == 0 {
		return bad("backoff", "needs at least one step")
	}
	// The server refuses a consumer with more backoff steps than deliveries.
	if len(c.Backoff) > c.MaxDeliver {
		return bad("backoff", "%d steps but max_deliver is %d; steps beyond the last attempt are never used", len(c.Backoff), c.MaxDeliver)
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			return bad("backoff", "step %d is %s; every step must be positive", i+1, d)
		}
		if i > 0 && d < c.Backoff[i-1] {
			return bad("backoff", "step %d (%s) is shorter than step %d (%s)", i+1, d, i, c.Backoff[i-1])
		}
	}
	if c.MaxAckPending < 1 {
		return bad("max_ack_pending", "must be at least 1, got %d", c.MaxAckPending)
	}
	if c.PublishTimeout <= 0 {
		return bad("publish_timeout", "must be positive, got %s", c.PublishTimeout)
	}
	if c.PublishAckTimeout <= 0 {
		return bad("publish_ack_timeout", "must be positive, got %s", c.PublishAckTimeout)
	}
	return nil
}

func (c *Config) validateEmbedded() error {
	host, _, err := splitListen(c.Embedded.Listen)
	if err != nil {
		return bad("embedded.listen", "%q: %v", c.Embedded.Listen, err)
	}
	if c.Embedded.DataDir == "" {
		return bad("embedded.data_dir", "is empty; the embedded server needs a directory for its file store")
	}
	if c.CredsFile != "" {
		return bad("creds_file", "applies to an external server only (set url)")
	}
	if c.NKeyFile != "" {
		return bad("nkey_file", "applies to an external server only (set url)")
	}
	if c.TLS.enabled() {
		return bad("tls", "applies to an external server only (set url)")
	}
	// Loopback by default (docs/architecture.md, security): off loopback the
	// embedded server must not be open, so it needs a password or token.
	if !isLoopback(host) && !c.hasSecret() {
		return bad("embedded.listen", "%q is not a loopback address; set user and password, or token, so the server is not open", c.Embedded.Listen)
	}
	return nil
}

func (c *Config) hasSecret() bool {
	return c.Password != "" || c.PasswordFile != "" || c.Token != "" || c.TokenFile != ""
}

func (c *Config) validateCredentials() error {
	kinds := 0
	if c.CredsFile != "" {
		kinds++
	}
	if c.NKeyFile != "" {
		kinds++
	}
	if c.User != "" || c.Password != "" || c.PasswordFile != "" {
		kinds++
	}
	if c.Token != "" || c.TokenFile != "" {
		kinds++
	}
	if kinds > 1 {
		return bad("creds_file", "set only one of creds_file, nkey_file, user/password and token")
	}
	if c.Password != "" && c.PasswordFile != "" {
		return bad("password_file", "set together with password; use one")
	}
	if c.Token != "" && c.TokenFile != "" {
		return bad("token_file", "set together with token; use one")
	}
	if (c.Password != "" || c.PasswordFile != "") && c.User == "" {
		return bad("user", "is empty but a password is set")
	}
	if c.User != "" && c.Password == "" && c.PasswordFile == "" {
		return bad("password", "is empty but user is set")
	}
	files := []struct{ key, path string }{
		{"creds_file", c.CredsFile}, {"nkey_file", c.NKeyFile},
		{"password_file", c.PasswordFile}, {"token_file", c.TokenFile},
		{"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.key, "%v", err)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls.cert_file", "cert_file and key_file go together")
	}
	return nil
}

// secrets reads the password and token, from files where configured.
func (c *Config) secrets() (password, token string, err error) {
	password, token = c.Password, c.Token
	if c.PasswordFile != "" {
		if password, err = readSecret(c.PasswordFile); err != nil {
			return "", "", &ConfigError{Key: "password_file", Problem: err.Error()}
		}
	}
	if c.TokenFile != "" {
		if token, err = readSecret(c.TokenFile); err != nil {
			return "", "", &ConfigError{Key: "token_file", Problem: err.Error()}
		}
	}
	return password, token, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", errors.New("file is empty")
	}
	return s, nil
}

func checkServerURL(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		// Not the *url.Error itself: it quotes the URL, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return errors.New("not a URL")
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme %q is not nats, tls, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// splitListen parses host:port, where port may be -1 (any free port).
func splitListen(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from -1 to 65535", p)
	}
	if host == "" {
		return "", 0, errors.New("no host; name the address to listen on, such as 127.0.0.1")
	}
	return host, port, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validName reports whether s is a stream, consumer or bucket name: JetStream
// names travel as subject tokens, so no dots, wildcards or spaces.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
