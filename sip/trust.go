package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/answers"
)

// peer is who sent a request, as the transport saw it.
type peer struct {
	addr      netip.AddrPort
	transport string               // "UDP", "TCP" or "TLS"
	tls       *tls.ConnectionState // TLS only
}

// sender is what we believe about who sent a request.
type sender struct {
	trusted bool       // a trusted peer: its P-Asserted-Identity is believed
	user    uri.Number // the number of a digest-authenticated client
}

// trust decides whether a request may go any further. A request from a
// trusted peer (CIDR or verified TLS identity) passes; otherwise, with
// digest enabled, a client must authenticate (401 challenge) and may then
// send only as its own number; otherwise the answer is 403.
func (e *Edge) trust(req *sip.Request, p peer) (sender, *answers.Answer) {
	if e.trustedPeer(p) {
		return sender{trusted: true}, nil
	}
	if !e.cfg.Digest.Enabled {
		e.m.refused.WithLabelValues("untrusted").Inc()
		return sender{}, &answers.Answer{Status: 403, Reason: "Forbidden: untrusted source"}
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		e.m.refused.WithLabelValues("unauthenticated").Inc()
		return sender{}, &answers.Answer{Status: 401}
	}
	user, stale, err := e.verifyDigest(req, h.Value())
	if err != nil {
		if errors.Is(err, errReplayed) {
			e.m.refused.WithLabelValues("replayed").Inc()
			e.log.Warn("sip: digest response replayed", "peer", p.addr.String(), "err", err)
			return sender{}, &answers.Answer{Status: 401, Reason: reasonStale}
		}
		e.m.refused.WithLabelValues("unauthenticated").Inc()
		if stale {
			return sender{}, &answers.Answer{Status: 401, Reason: reasonStale}
		}
		if errors.Is(err, errTooManyResponses) {
			e.log.Warn("sip: digest responses of one nonce lifetime exceed what is remembered; refusing", "max", maxUsedResponses)
			ans := e.tryLater()
			return sender{}, &ans
		}
		e.log.Info("sip: digest authentication failed", "peer", p.addr.String(), "err", err)
		return sender{}, &answers.Answer{Status: 403, Reason: "Forbidden: authentication failed"}
	}
	from, err := uriNumber(addrOf(req.From()), e.cfg.DefaultRegion)
	if err != nil || from != user.number {
		e.m.refused.WithLabelValues("identity").Inc()
		return sender{}, &answers.Answer{Status: 403, Reason: "Forbidden: From is not the authenticated user's number"}
	}
	return sender{user: user.number}, nil
}

func addrOf(h *sip.FromHeader) *sip.Uri {
	if h == nil {
		return nil
	}
	return &h.Address
}

func (e *Edge) trustedPeer(p peer) bool {
	ip := p.addr.Addr().Unmap()
	for _, pfx := range e.trustedNets {
		if pfx.Contains(ip) {
			return true
		}
	}
	if p.tls == nil || len(p.tls.VerifiedChains) == 0 || len(e.cfg.Trusted.TLSIdentities) == 0 {
		return false
	}
	leaf := p.tls.VerifiedChains[0][0]
	for _, id := range e.cfg.Trusted.TLSIdentities {
		for _, name := range leaf.DNSNames {
			if strings.EqualFold(name, id) {
				return true
			}
		}
		if strings.EqualFold(leaf.Subject.CommonName, id) {
			return true
		}
	}
	return false
}

// digestUser is a configured client with its password resolved.
type digestUser struct {
	password string
	number   uri.Number
}

// digestAuth issues and checks stateless nonces: a timestamp with its
// HMAC, so any retransmission or any of several requests can answer a
// challenge without the edge keeping per-client state. Nonces expire
// after NonceTTL; a nonce from another instance or before a restart is
// refused and the client is challenged again.
type digestAuth struct {
	key   [32]byte
	users map[string]digestUser
	used  usedResponses
}

func newDigestAuth(users map[string]digestUser) (*digestAuth, error) {
	d := &digestAuth{users: users, used: usedResponses{max: maxUsedResponses, seen: map[[16]byte]struct{}{}}}
	if _, err := rand.Read(d.key[:]); err != nil {
		return nil, fmt.Errorf("sip: digest key: %w", err)
	}
	return d, nil
}

func (d *digestAuth) nonce(now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	mac := hmac.New(sha256.New, d.key[:])
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return hex.EncodeToString(b[:])
}

// checkNonce reports whether the nonce is ours, and whether it expired.
func (d *digestAuth) checkNonce(nonce string, now time.Time, ttl time.Duration) (ok, stale bool) {
	b, err := hex.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	mac := hmac.New(sha256.New, d.key[:])
	mac.Write(b[:8])
	if !hmac.Equal(mac.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	if now.Sub(issued) > ttl || issued.After(now.Add(time.Minute)) {
		return true, true
	}
	return true, false
}

// maxUsedResponses bounds the digest responses remembered at once (about
// 40 bytes each): the accepted requests of one nonce lifetime.
const maxUsedResponses = 1 << 20

// usedResponses remembers the digest responses accepted, by nonce, cnonce
// and nonce count, until their nonce has expired. Digest does not cover
// the body, so a captured request sent again (under a new branch, past
// the answer cache) could otherwise carry any text as its user: each
// response is good for one request. Nonces are this instance's own, so
// what this instance remembers is all there is to check.
type usedResponses struct {
	mu    sync.Mutex
	max   int
	seen  map[[16]byte]struct{}
	order []usedResponse // oldest first
	head  int
}

type usedResponse struct {
	key  [16]byte
	when time.Time
}

var errReplayed = errors.New("digest response used before")
var errTooManyResponses = errors.New("too many digest responses to remember")

// use records a response accepted at now, and fails if it was used before
// or if there is no room to remember it; what is older than ttl is let go.
func (u *usedResponses) use(nonce, cnonce string, nc int, now time.Time, ttl time.Duration) error {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d", nonce, cnonce, nc)
	var key [16]byte
	copy(key[:], h.Sum(nil))
	u.mu.Lock()
	defer u.mu.Unlock()
	for u.head < len(u.order) && now.Sub(u.order[u.head].when) > ttl {
		delete(u.seen, u.order[u.head].key)
		u.head++
	}
	if u.head > len(u.order)/2 { // reuse the space of what was let go
		u.order = append(u.order[:0], u.order[u.head:]...)
		u.head = 0
	}
	if _, ok := u.seen[key]; ok {
		return errReplayed
	}
	if len(u.seen) >= u.max {
		return errTooManyResponses
	}
	u.seen[key] = struct{}{}
	u.order = append(u.order, usedResponse{key: key, when: now})
	return nil
}

// challenge is the WWW-Authenticate value of a 401.
func (e *Edge) challenge(stale bool) string {
	c := digest.Challenge{
		Realm:     e.cfg.Digest.Realm,
		Nonce:     e.digest.nonce(time.Now()),
		Algorithm: "MD5",
		QOP:       []string{"auth"},
		Stale:     stale,
	}
	return c.String()
}

func (e *Edge) verifyDigest(req *sip.Request, header string) (digestUser, bool, error) {
	cred, err := digest.ParseCredentials(header)
	if err != nil {
		return digestUser{}, false, fmt.Errorf("parse Authorization: %w", err)
	}
	u, ok := e.digest.users[cred.Username]
	if !ok {
		return digestUser{}, false, fmt.Errorf("unknown user %q", cred.Username)
	}
	if cred.Realm != e.cfg.Digest.Realm {
		return digestUser{}, false, fmt.Errorf("realm %q", cred.Realm)
	}
	known, stale := e.digest.checkNonce(cred.Nonce, time.Now(), e.cfg.Digest.NonceTTL)
	if !known {
		return digestUser{}, true, fmt.Errorf("nonce not issued here")
	}
	if stale {
		return digestUser{}, true, fmt.Errorf("nonce expired")
	}
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		if cred.QOP != "auth" {
			return digestUser{}, false, fmt.Errorf("qop %q", cred.QOP)
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      cred.URI,
		Username: cred.Username,
		Password: u.password,
		Cnonce:   cred.Cnonce,
		Count:    cred.Nc,
	})
	if err != nil {
		return digestUser{}, false, err
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		return digestUser{}, false, fmt.Errorf("wrong response for user %q", cred.Username)
	}
	if err := e.digest.used.use(cred.Nonce, cred.Cnonce, cred.Nc, time.Now(), e.cfg.Digest.NonceTTL); err != nil {
		// A client that counts right never sees this; challenged again,
		// it goes on with a fresh nonce.
		return digestUser{}, false, fmt.Errorf("user %q: %w", cred.Username, err)
	}
	return u, false, nil
}
