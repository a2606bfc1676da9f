package mls

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mimiuri "github.com/mimigw/mimigw/mimi/uri"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/credentials"
	"github.com/thomas-vilte/mls-go/treesync"
)

// ContentInspector reads the sender and room URIs out of MIMI content bytes
// (content extensions 1 and 2). Decrypted messages are delivered only when
// both match the MLS context.
type ContentInspector func(content []byte) (sender, room string, err error)

// Provider holds the MLS clients of every phone user the gateway serves and
// the state they share on the bus. It is safe for concurrent use; work on
// one group is serialised, different groups proceed in parallel.
type Provider struct {
	cfg      Config
	cs       ciphersuite.CipherSuite
	store    *kvStore
	issuer   *issuer
	m        *metrics
	log      *slog.Logger
	inspect  ContentInspector
	instance string
	now      func() time.Time

	mu      sync.Mutex
	clients map[string]*Client
	groups  map[string]*groupEntry

	refill chan string // users whose pool shrank, for Run

	openBucket func(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Option adjusts a Provider.
type Option func(*Provider)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// WithRegistry registers the provider's metrics on reg.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(p *Provider) { p.m = newMetrics(reg) }
}

// WithContentInspector replaces the MIMI content reader used to check
// decrypted and outgoing messages.
func WithContentInspector(f ContentInspector) Option {
	return func(p *Provider) { p.inspect = f }
}

// WithBucketOpener creates (or updates) the state bucket with open instead
// of the JetStream call itself, such as the bus's, which waits out a
// cluster still forming.
func WithBucketOpener(open func(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error)) Option {
	return func(p *Provider) { p.openBucket = open }
}

// withClock lets tests move time (KeyPackage expiry, leases).
func withClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// Open checks the configuration, reads the at-rest key and creates the state
// bucket if it does not exist. It starts nothing; Run refills KeyPackages.
func Open(ctx context.Context, cfg Config, js jetstream.JetStream, opts ...Option) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := cfg.State.StateKey()
	if err != nil {
		return nil, err
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	is, err := newIssuer(cfg.Credential)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:     cfg,
		cs:      ciphersuite.CipherSuite(cfg.CipherSuite),
		issuer:  is,
		log:     slog.Default(),
		now:     time.Now,
		clients: make(map[string]*Client),
		groups:  make(map[string]*groupEntry),
		refill:  make(chan string, 1024),
	}
	for _, o := range opts {
		o(p)
	}
	if p.m == nil {
		p.m = newMetrics(nil)
	}
	if p.inspect == nil {
		p.inspect = inspectMIMIContent
	}
	p.instance = cfg.State.Instance
	if p.instance == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = rand.Read(r[:])
		p.instance = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), r)
	}
	if p.openBucket == nil {
		p.openBucket = js.CreateOrUpdateKeyValue
	}
	kv, err := openKV(ctx, p.openBucket, cfg.State)
	if err != nil {
		return nil, err
	}
	p.store = &kvStore{kv: kv, bucket: cfg.State.Bucket, seal: seal, m: p.m,
		js: js, subjects: "$KV." + kv.Bucket() + "."}
	return p, nil
}

// Instance is the name this provider writes into group leases.
func (p *Provider) Instance() string { return p.instance }

// userRecord is a phone user's MLS identity: the signature key every
// KeyPackage and leaf of theirs carries, and the credential that binds it
// to their MIMI URI.
type userRecord struct {
	URI        string `json:"uri"`
	Suite      uint16 `json:"suite"`
	Seed       []byte `json:"seed"`       // Ed25519 private key seed
	Credential []byte `json:"credential"` // RFC 9420 Credential
	Created    int64  `json:"created"`
}

// maxCachedClients bounds the identities kept in memory.
const maxCachedClients = 1 << 16

// Client is one phone user's MLS client. Every group the user is in is a
// separate MLS member, keyed by (user, group ID).
type Client struct {
	p      *Provider
	uri    string
	cred   *credentials.Credential
	cwk    *credentials.CredentialWithKey
	sig    *ciphersuite.SignaturePrivateKey
	sigPub []byte
}

// URI is the MIMI URI the client's credential names.
func (c *Client) URI() string { return c.uri }

// SignatureKey is the client's public signature key.
func (c *Client) SignatureKey() []byte { return append([]byte(nil), c.sigPub...) }

// Client returns the MLS client of the phone user with MIMI URI uri,
// creating the user's identity (signature key, credential, last-resort
// KeyPackage) on first use. The identity is the same on every gateway
// instance: it lives in the state bucket.
func (p *Provider) Client(ctx context.Context, uri string) (*Client, error) {
	if err := checkURI(uri, mimiuri.User); err != nil {
		return nil, fmt.Errorf("mls: client: %w", err)
	}
	p.mu.Lock()
	c, ok := p.clients[uri]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	rec, err := p.loadOrCreateUser(ctx, uri)
	if err != nil {
		return nil, err
	}
	c, err = p.clientFromRecord(rec)
	if err != nil {
		return nil, err
	}
	if err := c.ensureLastResort(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if prev, ok := p.clients[uri]; ok {
		c = prev
	} else {
		if len(p.clients) >= maxCachedClients {
			// Clients are cheap to rebuild from the bucket.
			clear(p.clients)
		}
		p.clients[uri] = c
	}
	p.mu.Unlock()
	return c, nil
}

// checkURI accepts a canonical MIMI URI of the given kind: identities and
// rooms are compared as strings, so one name must have one spelling.
func checkURI(s string, kind mimiuri.Kind) error {
	u, err := mimiuri.ParseMIMI(s)
	if err != nil {
		return err
	}
	if u.Kind != kind || u.String() != s {
		return fmt.Errorf("%q is not a canonical %s URI", s, kind)
	}
	return nil
}

func (p *Provider) loadOrCreateUser(ctx context.Context, uri string) (*userRecord, error) {
	var rec userRecord
	_, err := p.store.get(ctx, userKey(uri), &rec)
	if err == nil {
		if rec.URI != uri {
			return nil, fmt.Errorf("mls: user record for %s names %s", uri, rec.URI)
		}
		return &rec, nil
	}
	if !errors.Is(err, errNotFound) {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mls: signature key for %s: %w", uri, err)
	}
	now := p.now()
	cred, err := p.issuer.credentialFor(uri, pub, now)
	if err != nil {
		return nil, err
	}
	rec = userRecord{URI: uri, Suite: uint16(p.cs), Seed: priv.Seed(), Credential: cred.Marshal(), Created: now.Unix()}
	if _, err := p.store.write(ctx, userKey(uri), &rec, 0); err != nil {
		if errors.Is(err, errConflict) {
			// Another instance created the user first; use theirs.
			var theirs userRecord
			if _, err := p.store.get(ctx, userKey(uri), &theirs); err != nil {
				return nil, err
			}
			return &theirs, nil
		}
		return nil, err
	}
	p.m.identityCreated.Inc()
	p.log.Info("mls client created", "user", uri, "credential", p.cfg.Credential.Type)
	return &rec, nil
}

func (p *Provider) clientFromRecord(rec *userRecord) (*Client, error) {
	if ciphersuite.CipherSuite(rec.Suite) != p.cs {
		return nil, fmt.Errorf("mls: user %s has cipher suite %d, configured %d", rec.URI, rec.Suite, p.cs)
	}
	if len(rec.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("mls: user %s: signature key seed is %d bytes", rec.URI, len(rec.Seed))
	}
	priv := ed25519.NewKeyFromSeed(rec.Seed)
	pub := priv.Public().(ed25519.PublicKey)
	cred, err := credentials.UnmarshalCredential(rec.Credential)
	if err != nil {
		return nil, fmt.Errorf("mls: user %s: credential: %w", rec.URI, err)
	}
	return &Client{
		p:    p,
		uri:  rec.URI,
		cred: cred,
		cwk: &credentials.CredentialWithKey{
			Credential:        cred,
			Ed25519PrivateKey: priv,
			SignatureKeyBytes: []byte(pub),
		},
		sig:    ciphersuite.NewEd25519SignaturePrivateKey(priv),
		sigPub: []byte(pub),
	}, nil
}

// Credential is the client's RFC 9420 Credential, encoded, as requests
// that name their signer carry it (a MIMI KeyMaterialRequest).
func (c *Client) Credential() []byte { return c.cred.Marshal() }

// Sign signs an RFC 9420 SignContent (label and content already
// assembled, as MIMI structures with a signature of their own build it)
// with the client's signature key.
func (c *Client) Sign(signContent []byte) ([]byte, error) {
	s, err := c.sig.Sign(signContent)
	if err != nil {
		return nil, fmt.Errorf("mls: sign: %w", err)
	}
	return s.AsSlice(), nil
}

// VerifySignature checks an Ed25519 (cipher suite 1) signature over an
// RFC 9420 SignContent made by the holder of pub.
func VerifySignature(pub, signContent, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signature key of %d bytes", ErrMalformed, len(pub))
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), signContent, sig) {
		return fmt.Errorf("%w: signature does not verify", ErrAuthentication)
	}
	return nil
}

// CredentialIdentity returns the identity a basic credential names, or the
// MIMI URI an X.509 credential's certificate carries when it chains to the
// configured operator CA (the same check members' credentials get).
func (p *Provider) CredentialIdentity(cred, sigKey []byte) (string, error) {
	c, err := credentials.UnmarshalCredential(cred)
	if err != nil {
		return "", fmt.Errorf("%w: credential: %v", ErrMalformed, err)
	}
	return p.issuer.identity(c, sigKey, p.now())
}

// KeyPackageIdentity checks a KeyPackage (bare or as an MLSMessage) as a
// commit adding it would, and returns the identity its credential vouches
// for, as CredentialIdentity does for a member.
func (p *Provider) KeyPackageIdentity(b []byte) (string, error) {
	now := p.now()
	kp, err := parseKeyPackage(p.cs, b, now)
	if err != nil {
		return "", err
	}
	leaf, err := treesync.UnmarshalLeafNodeData(kp.LeafNode.Marshal())
	if err != nil {
		return "", fmt.Errorf("%w: key package leaf: %v", ErrMalformed, err)
	}
	return p.issuer.identity(leaf.Credential, leaf.SigKeyBytes(), now)
}

// CipherSuite is the MLS cipher suite of every client and group.
func (p *Provider) CipherSuite() uint16 { return uint16(p.cs) }
