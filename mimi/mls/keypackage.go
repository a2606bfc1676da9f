package mls

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/credentials"
	mlsext "github.com/thomas-vilte/mls-go/extensions"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/keypackages"
	"github.com/thomas-vilte/mls-go/treesync"
)

// KeyPackage is one KeyPackage handed out for a phone user.
type KeyPackage struct {
	// Ref is the KeyPackageRef a Welcome will name (RFC 9420 section 5.2).
	Ref []byte
	// Message is the KeyPackage as an MLSMessage, ready to send.
	Message []byte
	// NotAfter is the end of its lifetime.
	NotAfter time.Time
	// LastResort says it is the user's reusable last-resort package,
	// handed out only because no one-time package was left.
	LastResort bool
}

// kpRecord keeps a KeyPackage's private keys until a Welcome uses it. A
// used one-time package keeps its record, without keys, so a second Welcome
// naming it is told apart from an unknown one.
type kpRecord struct {
	User       string `json:"user"`
	KeyPackage []byte `json:"key_package"` // TLS KeyPackage
	InitPriv   []byte `json:"init_priv,omitempty"`
	EncPriv    []byte `json:"enc_priv,omitempty"`
	NotAfter   int64  `json:"not_after"`
	LastResort bool   `json:"last_resort,omitempty"`
	Used       bool   `json:"used,omitempty"`
}

// poolRecord lists a user's KeyPackages: ready ones not yet handed out,
// handed-out ones whose records are purged once they expire, and the
// last-resort package.
type poolRecord struct {
	User       string      `json:"user"`
	Ready      []poolEntry `json:"ready,omitempty"`
	Issued     []poolEntry `json:"issued,omitempty"`
	LastResort *poolEntry  `json:"last_resort,omitempty"`
}

type poolEntry struct {
	Ref      []byte `json:"ref"`
	NotAfter int64  `json:"not_after"`
}

// ExtensionAppDataDictionary is the app_data_dictionary GroupContext
// extension (draft-ietf-mls-extensions-09, the type it suggests), where a
// MIMI room keeps its state: the gateway's clients support it always, so
// that they can join the rooms MIMI hubs create.
const ExtensionAppDataDictionary uint16 = 0x0006

// capabilities lists what the gateway's clients support: cipher suite 1,
// basic and X.509 credentials, the last_resort and app_data_dictionary
// extensions, and whatever extra extension and proposal types the
// configuration names.
func (p *Provider) capabilities() *keypackages.Capabilities {
	exts := p.extensions()
	return &keypackages.Capabilities{
		ProtocolVersions: []keypackages.ProtocolVersion{keypackages.MLS10},
		CipherSuites:     []keypackages.CipherSuite{p.cs},
		Extensions:       exts,
		Proposals:        slices.Clone(p.cfg.KeyPackages.Proposals),
		Credentials:      []uint16{uint16(credentials.BasicCredential), uint16(credentials.X509Credential)},
	}
}

// extensions are the extension types the gateway's clients support
// beyond those mls-go implements.
func (p *Provider) extensions() []uint16 {
	exts := []uint16{uint16(mlsext.ExtensionTypeLastResort), ExtensionAppDataDictionary}
	for _, t := range p.cfg.KeyPackages.Extensions {
		if !slices.Contains(exts, t) {
			exts = append(exts, t)
		}
	}
	return exts
}

// newKeyPackage builds and signs a KeyPackage. mls-go's Generate fixes the
// capabilities (with a random GREASE value and no way to list the
// extensions a MIMI room requires) and cannot add KeyPackage extensions
// such as last_resort, so the leaf node and package are re-signed here after
// setting both.
func (c *Client) newKeyPackage(now time.Time, lastResort bool) (*keypackages.KeyPackage, *keypackages.KeyPackagePrivateKeys, error) {
	p := c.p
	notBefore := now.Add(-time.Hour)
	notAfter := now.Add(p.cfg.KeyPackages.Lifetime)
	kp, priv, err := keypackages.Generate(c.cwk, p.cs,
		keypackages.WithLifetime(uint64(notBefore.Unix()), uint64(notAfter.Unix())))
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package for %s: %w", c.uri, err)
	}
	kp.LeafNode.Capabilities = p.capabilities()
	kp.LeafNode.Extensions = []keypackages.Extension{}
	kp.Extensions = []keypackages.Extension{}
	if lastResort {
		kp.Extensions = append(kp.Extensions, keypackages.Extension{Type: mlsext.ExtensionTypeLastResort, Data: []byte{}})
	}
	full := kp.LeafNode.Marshal()
	tbs := full[:len(full)-vectorSuffixLen(kp.LeafNode.Signature)]
	lsig, err := ciphersuite.SignWithLabel(c.sig, "LeafNodeTBS", tbs)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package for %s: sign leaf: %w", c.uri, err)
	}
	kp.LeafNode.Signature = lsig.AsSlice()
	ksig, err := ciphersuite.SignWithLabel(c.sig, "KeyPackageTBS", kp.MarshalTBS())
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package for %s: sign: %w", c.uri, err)
	}
	kp.Signature = ksig.AsSlice()
	// Parse what a peer will parse and check what a peer will check, so a
	// mistake in re-signing fails here rather than at every adder.
	back, err := parseKeyPackage(p.cs, kp.Marshal(), now)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: key package for %s: self-check: %w", c.uri, err)
	}
	p.m.kpGenerated.Inc()
	return back, priv, nil
}

// parseKeyPackage reads a KeyPackage (bare or as an MLSMessage) and checks
// its signatures, suite, leaf node and that its lifetime covers now.
func parseKeyPackage(cs ciphersuite.CipherSuite, b []byte, now time.Time) (*keypackages.KeyPackage, error) {
	raw := b
	if len(b) >= 4 && b[0] == 0 && b[1] == 1 && b[2] == 0 && b[3] == byte(framing.WireFormatKeyPackage) {
		raw = b[4:]
	}
	kp, err := keypackages.UnmarshalKeyPackage(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: key package: %v", ErrMalformed, err)
	}
	if !bytes.Equal(kp.Marshal(), raw) {
		return nil, fmt.Errorf("%w: key package has trailing or non-canonical bytes", ErrMalformed)
	}
	if kp.CipherSuite != cs {
		return nil, fmt.Errorf("%w: key package cipher suite %d", ErrUnsupported, kp.CipherSuite)
	}
	if err := kp.Validate(); err != nil {
		return nil, fmt.Errorf("%w: key package: %v", ErrRejected, err)
	}
	if err := kp.Verify(cs); err != nil {
		return nil, fmt.Errorf("%w: key package: %v", ErrAuthentication, err)
	}
	leaf, err := treesync.UnmarshalLeafNodeData(kp.LeafNode.Marshal())
	if err != nil {
		return nil, fmt.Errorf("%w: key package leaf: %v", ErrMalformed, err)
	}
	if err := treesync.ValidateLeafNodeStructureWithContext(leaf, cs, nil, 0); err != nil {
		return nil, fmt.Errorf("%w: key package leaf: %v", ErrAuthentication, err)
	}
	if err := treesync.ValidateLeafNodeCapabilities(leaf.Capabilities); err != nil {
		return nil, fmt.Errorf("%w: key package capabilities: %v", ErrRejected, err)
	}
	if err := treesync.ValidateLeafNodeLifetimeAt(leaf.Lifetime, now); err != nil {
		return nil, fmt.Errorf("%w: key package: %v", ErrRejected, err)
	}
	return kp, nil
}

func keyPackageRef(cs ciphersuite.CipherSuite, kp *keypackages.KeyPackage) []byte {
	raw := kp.Raw
	if len(raw) == 0 {
		raw = kp.Marshal()
	}
	return ciphersuite.MakeKeyPackageRef(raw, cs.HashFunction()).AsSlice()
}

func keyPackageMessage(kp *keypackages.KeyPackage) []byte {
	return (&framing.MLSMessage{KeyPackage: kp.Marshal()}).Marshal()
}

// storeKeyPackage generates a KeyPackage and writes its record; the caller
// then lists it in the pool.
func (c *Client) storeKeyPackage(ctx context.Context, now time.Time, lastResort bool) (poolEntry, error) {
	kp, priv, err := c.newKeyPackage(now, lastResort)
	if err != nil {
		return poolEntry{}, err
	}
	ref := keyPackageRef(c.p.cs, kp)
	na := int64(kp.LeafNode.Lifetime.NotAfter)
	rec := kpRecord{
		User: c.uri, KeyPackage: kp.Marshal(),
		InitPriv: priv.InitKey.Bytes(), EncPriv: priv.EncryptionKey.Bytes(),
		NotAfter: na, LastResort: lastResort,
	}
	if _, err := c.p.store.write(ctx, kpKey(ref), &rec, 0); err != nil {
		return poolEntry{}, err
	}
	return poolEntry{Ref: ref, NotAfter: na}, nil
}

// maxCAS bounds retries of a compare-and-set against concurrent writers.
const maxCAS = 16

// KeyPackage hands out one KeyPackage for the user: a one-time package
// never handed out before and not near expiry, or, when the pool is empty,
// the last-resort package. Handing out a package signals Run to refill.
func (c *Client) KeyPackage(ctx context.Context) (*KeyPackage, error) {
	p := c.p
	for range maxCAS {
		var pool poolRecord
		rev, err := p.store.get(ctx, poolKey(c.uri), &pool)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		cutoff := p.now().Add(p.cfg.KeyPackages.MinRemaining).Unix()
		i := slices.IndexFunc(pool.Ready, func(e poolEntry) bool { return e.NotAfter > cutoff })
		if i < 0 {
			break
		}
		e := pool.Ready[i]
		// Packages before i are too close to expiry: retire them with it.
		pool.Issued = append(pool.Issued, pool.Ready[:i+1]...)
		pool.Ready = slices.Clone(pool.Ready[i+1:])
		pool.User = c.uri
		if _, err := p.store.write(ctx, poolKey(c.uri), &pool, rev); err != nil {
			if errors.Is(err, errConflict) {
				continue
			}
			return nil, err
		}
		p.wantRefill(c.uri)
		out, err := c.issued(ctx, e.Ref)
		if err != nil {
			return nil, err
		}
		p.m.kpIssued.WithLabelValues("one_time").Inc()
		return out, nil
	}
	p.wantRefill(c.uri)
	if err := c.ensureLastResort(ctx); err != nil {
		return nil, err
	}
	var pool poolRecord
	if _, err := p.store.get(ctx, poolKey(c.uri), &pool); err != nil {
		return nil, err
	}
	if pool.LastResort == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoKeyPackage, c.uri)
	}
	out, err := c.issued(ctx, pool.LastResort.Ref)
	if err != nil {
		return nil, err
	}
	p.m.kpIssued.WithLabelValues("last_resort").Inc()
	return out, nil
}

func (c *Client) issued(ctx context.Context, ref []byte) (*KeyPackage, error) {
	var rec kpRecord
	if _, err := c.p.store.get(ctx, kpKey(ref), &rec); err != nil {
		return nil, err
	}
	kp, err := keypackages.UnmarshalKeyPackage(rec.KeyPackage)
	if err != nil {
		return nil, fmt.Errorf("mls: stored key package %x: %w", ref, err)
	}
	return &KeyPackage{
		Ref:        ref,
		Message:    keyPackageMessage(kp),
		NotAfter:   time.Unix(rec.NotAfter, 0),
		LastResort: rec.LastResort,
	}, nil
}

// ensureLastResort gives the user a last-resort package if they have none
// or theirs is close to expiry. The old one stays usable until it expires.
func (c *Client) ensureLastResort(ctx context.Context) error {
	p := c.p
	var fresh *poolEntry
	for range maxCAS {
		var pool poolRecord
		rev, err := p.store.get(ctx, poolKey(c.uri), &pool)
		if err != nil && !errors.Is(err, errNotFound) {
			return err
		}
		cutoff := p.now().Add(p.cfg.KeyPackages.MinRemaining).Unix()
		if pool.LastResort != nil && pool.LastResort.NotAfter > cutoff {
			return nil
		}
		if fresh == nil {
			e, err := c.storeKeyPackage(ctx, p.now(), true)
			if err != nil {
				return err
			}
			fresh = &e
		}
		if pool.LastResort != nil {
			pool.Issued = append(pool.Issued, *pool.LastResort)
		}
		pool.LastResort = fresh
		pool.User = c.uri
		if _, err := p.store.write(ctx, poolKey(c.uri), &pool, rev); err != nil {
			if errors.Is(err, errConflict) {
				continue
			}
			return err
		}
		return nil
	}
	return fmt.Errorf("mls: last-resort key package for %s: %w", c.uri, errConflict)
}

// refillUser tops the user's pool up to the configured size and purges
// packages that expired: ready ones too close to expiry and handed-out ones
// past it (their private keys go with them).
func (p *Provider) refillUser(ctx context.Context, uri string) (int, error) {
	c, err := p.Client(ctx, uri)
	if err != nil {
		return 0, err
	}
	if err := c.ensureLastResort(ctx); err != nil {
		return 0, err
	}
	var fresh []poolEntry
	for range maxCAS {
		var pool poolRecord
		rev, err := p.store.get(ctx, poolKey(uri), &pool)
		if err != nil {
			return 0, err
		}
		now := p.now()
		cutoff := now.Add(p.cfg.KeyPackages.MinRemaining).Unix()
		var purge []poolEntry
		ready := pool.Ready[:0:0]
		for _, e := range pool.Ready {
			if e.NotAfter > cutoff {
				ready = append(ready, e)
			} else {
				purge = append(purge, e)
			}
		}
		issued := pool.Issued[:0:0]
		for _, e := range pool.Issued {
			if e.NotAfter > now.Unix() {
				issued = append(issued, e)
			} else {
				purge = append(purge, e)
			}
		}
		for len(ready)+len(fresh) < p.cfg.KeyPackages.PoolSize {
			e, err := c.storeKeyPackage(ctx, now, false)
			if err != nil {
				return 0, err
			}
			fresh = append(fresh, e)
		}
		if len(purge) == 0 && len(fresh) == 0 {
			return len(ready), nil
		}
		pool.Ready = append(ready, fresh...)
		pool.Issued = issued
		pool.User = uri
		if _, err := p.store.write(ctx, poolKey(uri), &pool, rev); err != nil {
			if errors.Is(err, errConflict) {
				continue
			}
			return 0, err
		}
		for _, e := range purge {
			if err := p.store.del(ctx, kpKey(e.Ref)); err != nil {
				p.log.Warn("mls key package purge failed", "user", uri, "error", err)
			}
		}
		if len(fresh) > 0 {
			p.log.Debug("mls key packages refilled", "user", uri, "added", len(fresh), "purged", len(purge))
		}
		return len(pool.Ready), nil
	}
	return 0, fmt.Errorf("mls: refill %s: %w", uri, errConflict)
}

// FillPool tops the user's pool of one-time KeyPackages up now rather than
// on Run's next pass (for a user asked for key material the first time)
// and reports how many are ready.
func (c *Client) FillPool(ctx context.Context) (int, error) { return c.p.refillUser(ctx, c.uri) }

func (p *Provider) wantRefill(uri string) {
	select {
	case p.refill <- uri:
	default: // Run's periodic pass catches up.
	}
}

// Refill tops up every user's pool once and reports how many one-time
// KeyPackages are ready in total.
func (p *Provider) Refill(ctx context.Context) (int, error) {
	keys, err := p.store.keys(ctx, "pool.*")
	if err != nil {
		return 0, err
	}
	total := 0
	var firstErr error
	for _, k := range keys {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		var pool poolRecord
		if _, err := p.store.get(ctx, k, &pool); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n, err := p.refillUser(ctx, pool.User)
		if err != nil {
			p.m.refillFailures.Inc()
			p.log.Warn("mls key package refill failed", "user", pool.User, "error", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		total += n
	}
	p.m.kpAvailable.Set(float64(total))
	return total, firstErr
}

// Run keeps every user's KeyPackage pool full until ctx ends: a full pass
// every refill interval, and the pool of a user right after one of theirs
// was handed out. It returns nil when ctx is cancelled.
func (p *Provider) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.KeyPackages.RefillInterval)
	defer t.Stop()
	if _, err := p.Refill(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("mls key package refill pass failed", "error", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case uri := <-p.refill:
			if _, err := p.refillUser(ctx, uri); err != nil && ctx.Err() == nil {
				p.m.refillFailures.Inc()
				p.log.Warn("mls key package refill failed", "user", uri, "error", err)
			}
		case <-t.C:
			if _, err := p.Refill(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("mls key package refill pass failed", "error", err)
			}
		}
	}
}

// privateKeys rebuilds a stored package's HPKE private keys.
func (rec *kpRecord) privateKeys(cs ciphersuite.CipherSuite) (initKey, encKey *ecdh.PrivateKey, err error) {
	curve := cs.Curve()
	if curve == nil {
		return nil, nil, fmt.Errorf("mls: cipher suite %d has no curve", cs)
	}
	initKey, err = curve.NewPrivateKey(rec.InitPriv)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: stored init key: %w", err)
	}
	encKey, err = curve.NewPrivateKey(rec.EncPriv)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: stored encryption key: %w", err)
	}
	return initKey, encKey, nil
}
