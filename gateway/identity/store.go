package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Errors callers branch on.
var (
	// ErrPoolExhausted: every number of the pool is already lent to another
	// MIMI user for this contact.
	ErrPoolExhausted = errors.New("lent number pool exhausted for this contact")
	// ErrUnknownNumber: a phone user wrote to a lent number that is bound to
	// nobody for them.
	ErrUnknownNumber = errors.New("number bound to no MIMI user for this contact")
	// ErrNumberInUse: the number is already a virtual number, or lies in the
	// lent pool.
	ErrNumberInUse = errors.New("number in use")
	// ErrNotFound: no such binding.
	ErrNotFound = errors.New("no such binding")
)

// SenderKind says why a phone user sees a MIMI sender under a number.
type SenderKind string

const (
	SenderTrusted      SenderKind = "trusted"      // the sender's own number, its provider trusted
	SenderVirtual      SenderKind = "virtual"      // the sender's permanent virtual number
	SenderLent         SenderKind = "lent"         // a number lent for this contact
	SenderAlphanumeric SenderKind = "alphanumeric" // one-way sender id
)

// Sender is how a MIMI sender is presented to one phone user.
type Sender struct {
	Kind         SenderKind
	Number       uri.Number // for every kind but alphanumeric
	Alphanumeric string
}

// Address is what goes in the phone network's sender field.
func (s Sender) Address() string {
	if s.Kind == SenderAlphanumeric {
		return s.Alphanumeric
	}
	return string(s.Number)
}

// BindingKind tells lent and virtual bindings apart.
type BindingKind string

const (
	BindingLent    BindingKind = "lent"
	BindingVirtual BindingKind = "virtual"
)

// Binding is one number bound to a MIMI user.
type Binding struct {
	Kind    BindingKind `json:"kind"`
	Number  uri.Number  `json:"number"`
	Contact uri.Number  `json:"contact,omitempty"` // lent bindings only
	User    string      `json:"user"`
}

// getter reads one key, from the bucket or a cache of it.
type getter func(ctx context.Context, key string) (jetstream.KeyValueEntry, error)

// Store keeps the number bindings in a KV bucket.
type Store struct {
	kv jetstream.KeyValue
	// read serves the lookups made for every message; writes and the
	// reads of compare-and-set go to kv.
	read   getter
	domain string
	plan   atomic.Pointer[plan] // swapped by Reload
}

// plan is the number plan from the configuration: what Reload changes.
type plan struct {
	pools   []Range
	trusted map[string]bool
	alnum   map[string]string
}

func newPlan(cfg Config) *plan {
	p := &plan{trusted: map[string]bool{}, alnum: map[string]string{}}
	for _, r := range cfg.Pools {
		rg, _ := ParseRange(r)
		p.pools = append(p.pools, rg)
	}
	for _, d := range cfg.TrustedProviders {
		p.trusted[strings.ToLower(d)] = true
	}
	for u, a := range cfg.AlphanumericSenders {
		p.alnum[canonicalURI(u)] = a
	}
	return p
}

// New returns a Store over the identity bucket. cfg must have passed
// Validate.
func New(kv jetstream.KeyValue, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s := &Store{kv: kv, read: kv.Get, domain: strings.ToLower(cfg.Domain)}
	s.plan.Store(newPlan(cfg))
	return s, nil
}

// Reload takes the pools, trusted providers and alphanumeric senders anew
// from cfg. Bindings already made stay, also to numbers no longer in a
// pool; the domain may not change.
func (s *Store) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if strings.ToLower(cfg.Domain) != s.domain {
		return errors.New("identity: domain: cannot change while running")
	}
	s.plan.Store(newPlan(cfg))
	return nil
}

// UseCache serves the lookups made for every message from c, a cache of
// the same bucket kept current by its owner.
func (s *Store) UseCache(c *bus.ReadCache) { s.read = c.Get }

// Domain is the gateway's MIMI provider domain.
func (s *Store) Domain() string { return s.domain }

// UserURI is the MIMI URI of the phone user with number n.
func (s *Store) UserURI(n uri.Number) string { return uri.UserURI(s.domain, n) }

// InPool reports whether n is one of the numbers the operator lends.
func (s *Store) InPool(n uri.Number) bool {
	return slices.ContainsFunc(s.plan.Load().pools, func(r Range) bool { return r.Contains(n) })
}

// Sender decides which number (or alphanumeric id) the phone user contact
// sees for the MIMI sender senderURI: a configured alphanumeric id, the
// sender's own number if its provider is trusted, its virtual number, or a
// number lent for this contact. It fails with ErrPoolExhausted when no
// number is left to lend.
func (s *Store) Sender(ctx context.Context, senderURI string, contact uri.Number) (Sender, error) {
	user := canonicalURI(senderURI)
	pl := s.plan.Load()
	if a, ok := pl.alnum[user]; ok {
		return Sender{Kind: SenderAlphanumeric, Alphanumeric: a}, nil
	}
	if n, provider, ok := s.telIdentity(senderURI); ok && pl.trusted[provider] {
		return Sender{Kind: SenderTrusted, Number: n}, nil
	}
	v, err := s.VirtualOf(ctx, user)
	switch {
	case err == nil:
		return Sender{Kind: SenderVirtual, Number: v}, nil
	case !errors.Is(err, ErrNotFound):
		return Sender{}, err
	}
	n, err := s.Lend(ctx, user, contact)
	if err != nil {
		return Sender{}, err
	}
	return Sender{Kind: SenderLent, Number: n}, nil
}

// telIdentity returns the phone number a sender URI carries and the
// provider vouching for it: tel:+N (the gateway's own provider) or
// mimi://provider/u/+N.
func (s *Store) telIdentity(senderURI string) (uri.Number, string, bool) {
	if strings.HasPrefix(strings.ToLower(senderURI), "tel:") {
		n, err := uri.ParseNumber(senderURI, "")
		return n, s.domain, err == nil
	}
	u, err := uri.ParseMIMI(senderURI)
	if err != nil {
		return "", "", false
	}
	n, ok := u.Number()
	return n, u.Domain, ok
}

// Recipient says whom the phone user from reaches by writing to number to:
// the MIMI user holding it as a virtual number or lent to from. ok is false
// when to is neither in the pool nor a virtual number (an ordinary phone
// number). A pool number bound to nobody for from is ErrUnknownNumber.
func (s *Store) Recipient(ctx context.Context, to, from uri.Number) (user string, kind BindingKind, ok bool, err error) {
	e, err := s.read(ctx, "virtual."+to.Digits())
	switch {
	case err == nil:
		return string(e.Value()), BindingVirtual, true, nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return "", "", false, fmt.Errorf("identity: virtual %s: %w", to, err)
	}
	if !s.InPool(to) {
		return "", "", false, nil
	}
	e, err = s.read(ctx, lentKey(to, from))
	switch {
	case err == nil:
		return string(e.Value()), BindingLent, true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", "", false, fmt.Errorf("identity: %s for %s: %w", to, from, ErrUnknownNumber)
	default:
		return "", "", false, fmt.Errorf("identity: lent %s for %s: %w", to, from, err)
	}
}

// Lend returns the number lent to user for contact, lending one if there is
// none yet. The binding (lent number, contact) -> user is created with
// compare-and-set, so two instances lending at once never bind one number
// to two users for the same contact; the reverse key keeps one number per
// (user, contact) when they race for the same pair.
func (s *Store) Lend(ctx context.Context, user string, contact uri.Number) (uri.Number, error) {
	user = canonicalURI(user)
	byKey := lentByKey(user, contact)
	if n, ok, err := s.lentTo(ctx, s.read, byKey, user, contact); err != nil || ok {
		return n, err
	}
	pl := s.plan.Load() // one plan for the whole search, whatever Reload does
	total := pl.poolSize()
	if total == 0 {
		return "", fmt.Errorf("identity: lend to %s for %s: no pool configured: %w", user, contact, ErrPoolExhausted)
	}
	// Start where the pair hashes to: lenders for one pair try the same
	// number first and meet on it, lenders for different pairs rarely do.
	h := sha256.Sum256([]byte(user + "\x00" + string(contact)))
	start := binary.BigEndian.Uint64(h[:8]) % total
	for attempt := 0; ; attempt++ {
		used, err := s.usedFor(ctx, contact, user)
		if err != nil {
			return "", err
		}
		var candidate uri.Number
		for i := uint64(0); i < total; i++ {
			n := pl.poolNumber((start + i) % total)
			if !used[n] {
				candidate = n
				break
			}
		}
		if candidate == "" {
			// Numbers held for a moment by lenders that lost a race are
			// given back at once: look again before calling the pool
			// exhausted.
			if attempt >= exhaustedChecks {
				return "", fmt.Errorf("identity: lend to %s for %s: %w", user, contact, ErrPoolExhausted)
			}
			if err := sleep(ctx, time.Duration(attempt+1)*10*time.Millisecond); err != nil {
				return "", err
			}
			if n, ok, err := s.lentTo(ctx, s.kv.Get, byKey, user, contact); err != nil || ok {
				return n, err
			}
			continue
		}
		rev, err := s.kv.Create(ctx, lentKey(candidate, contact), []byte(user))
		mine := err == nil
		if bus.IsConflict(err) {
			// Taken since we listed; by a lender for this same pair it
			// is ours to share, by anyone else it is gone.
			e, gerr := s.kv.Get(ctx, lentKey(candidate, contact))
			if gerr != nil || string(e.Value()) != user {
				continue
			}
		} else if err != nil {
			return "", fmt.Errorf("identity: lend %s for %s: %w", candidate, contact, err)
		}
		_, err = s.kv.Create(ctx, byKey, []byte(candidate.Digits()))
		if err == nil {
			return candidate, nil
		}
		if !bus.IsConflict(err) {
			return "", fmt.Errorf("identity: lend to %s for %s: %w", user, contact, err)
		}
		n, ok, lerr := s.lentTo(ctx, s.kv.Get, byKey, user, contact)
		if lerr != nil {
			return "", lerr
		}
		if ok && n == candidate {
			return n, nil
		}
		// Another lender gave this pair a different number: keep theirs
		// and give back ours.
		if mine {
			if derr := s.kv.Delete(ctx, lentKey(candidate, contact), jetstream.LastRevision(rev)); derr != nil && !bus.IsConflict(derr) {
				return "", fmt.Errorf("identity: release %s for %s: %w", candidate, contact, derr)
			}
		}
		if ok {
			return n, nil
		}
	}
}

// exhaustedChecks is how many times Lend looks again at a pool that seems
// exhausted before it says so.
const exhaustedChecks = 5

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lentTo reads the reverse key and checks that its binding still stands.
func (s *Store) lentTo(ctx context.Context, read getter, byKey, user string, contact uri.Number) (uri.Number, bool, error) {
	e, err := read(ctx, byKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("identity: lent to %s for %s: %w", user, contact, err)
	}
	n, err := uri.NumberFromDigits(string(e.Value()))
	if err != nil {
		return "", false, fmt.Errorf("identity: corrupt key %s: %w", byKey, err)
	}
	b, err := read(ctx, lentKey(n, contact))
	switch {
	case err == nil && string(b.Value()) == user:
		return n, true, nil
	case err == nil || errors.Is(err, jetstream.ErrKeyNotFound):
		// A release removed the binding but not (yet) its reverse key:
		// the reverse key no longer holds.
		if derr := s.kv.Delete(ctx, byKey, jetstream.LastRevision(e.Revision())); derr != nil && !bus.IsConflict(derr) {
			return "", false, fmt.Errorf("identity: drop stale %s: %w", byKey, derr)
		}
		return "", false, nil
	default:
		return "", false, fmt.Errorf("identity: lent %s for %s: %w", n, contact, err)
	}
}

// usedFor lists the pool numbers bound for contact to users other than
// user (a number bound to user itself is a claim of a concurrent lender for
// the same pair, which Lend may share).
func (s *Store) usedFor(ctx context.Context, contact uri.Number, user string) (map[uri.Number]bool, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, "lent.*."+contact.Digits())
	if err != nil {
		return nil, fmt.Errorf("identity: list lent for %s: %w", contact, err)
	}
	used := map[uri.Number]bool{}
	for k := range keys.Keys() {
		parts := strings.Split(k, ".")
		n, err := uri.NumberFromDigits(parts[1])
		if err != nil {
			continue
		}
		if e, err := s.kv.Get(ctx, k); err == nil && string(e.Value()) == user {
			continue
		}
		used[n] = true
	}
	return used, nil
}

func (p *plan) poolSize() uint64 {
	var t uint64
	for _, r := range p.pools {
		t += r.Size()
	}
	return t
}

func (p *plan) poolNumber(i uint64) uri.Number {
	for _, r := range p.pools {
		if i < r.Size() {
			return r.Number(i)
		}
		i -= r.Size()
	}
	panic("identity: pool index out of range") // callers index below poolSize
}

// ReleaseLent removes the binding of a lent number for one contact.
func (s *Store) ReleaseLent(ctx context.Context, lent, contact uri.Number) error {
	e, err := s.kv.Get(ctx, lentKey(lent, contact))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("identity: %s for %s: %w", lent, contact, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("identity: release %s for %s: %w", lent, contact, err)
	}
	if err := s.kv.Delete(ctx, lentKey(lent, contact), jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("identity: release %s for %s: %w", lent, contact, err)
	}
	byKey := lentByKey(string(e.Value()), contact)
	if b, err := s.kv.Get(ctx, byKey); err == nil && string(b.Value()) == lent.Digits() {
		if err := s.kv.Delete(ctx, byKey, jetstream.LastRevision(b.Revision())); err != nil && !bus.IsConflict(err) {
			return fmt.Errorf("identity: release %s for %s: %w", lent, contact, err)
		}
	}
	return nil
}

// AssignVirtual gives user the permanent virtual number n. A number in the
// lent pool, or held by someone else, is ErrNumberInUse; a user holds at
// most one virtual number.
func (s *Store) AssignVirtual(ctx context.Context, n uri.Number, user string) error {
	user = canonicalURI(user)
	if _, err := uri.ParseMIMI(user); err != nil {
		return fmt.Errorf("identity: assign %s: %w", n, err)
	}
	if s.InPool(n) {
		return fmt.Errorf("identity: assign %s: in the lent pool: %w", n, ErrNumberInUse)
	}
	if v, err := s.virtualOf(ctx, s.kv.Get, user); err == nil && v != n {
		return fmt.Errorf("identity: assign %s: %s already holds %s: %w", n, user, v, ErrNumberInUse)
	}
	rev, err := s.kv.Create(ctx, "virtual."+n.Digits(), []byte(user))
	if bus.IsConflict(err) {
		e, gerr := s.kv.Get(ctx, "virtual."+n.Digits())
		if gerr == nil && string(e.Value()) == user {
			rev = e.Revision() // already assigned to this user: make sure of the reverse key
		} else {
			return fmt.Errorf("identity: assign %s: %w", n, ErrNumberInUse)
		}
	} else if err != nil {
		return fmt.Errorf("identity: assign %s: %w", n, err)
	}
	if _, err := s.kv.Create(ctx, virtualByKey(user), []byte(n.Digits())); err != nil && !bus.IsConflict(err) {
		return fmt.Errorf("identity: assign %s: %w", n, err)
	} else if bus.IsConflict(err) {
		if v, verr := s.virtualOf(ctx, s.kv.Get, user); verr != nil || v != n {
			// Lost a race to another number for the same user.
			_ = s.kv.Delete(ctx, "virtual."+n.Digits(), jetstream.LastRevision(rev))
			return fmt.Errorf("identity: assign %s: %s already holds another number: %w", n, user, ErrNumberInUse)
		}
	}
	return nil
}

// ReleaseVirtual takes a virtual number back.
func (s *Store) ReleaseVirtual(ctx context.Context, n uri.Number) error {
	e, err := s.kv.Get(ctx, "virtual."+n.Digits())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("identity: virtual %s: %w", n, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("identity: release virtual %s: %w", n, err)
	}
	if err := s.kv.Delete(ctx, virtualByKey(string(e.Value()))); err != nil {
		return fmt.Errorf("identity: release virtual %s: %w", n, err)
	}
	if err := s.kv.Delete(ctx, "virtual."+n.Digits(), jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("identity: release virtual %s: %w", n, err)
	}
	return nil
}

// VirtualOf returns user's virtual number, or ErrNotFound.
func (s *Store) VirtualOf(ctx context.Context, user string) (uri.Number, error) {
	return s.virtualOf(ctx, s.read, user)
}

func (s *Store) virtualOf(ctx context.Context, read getter, user string) (uri.Number, error) {
	e, err := read(ctx, virtualByKey(canonicalURI(user)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("identity: virtual of %s: %w", user, err)
	}
	return uri.NumberFromDigits(string(e.Value()))
}

// List returns every lent and virtual binding.
func (s *Store) List(ctx context.Context) ([]Binding, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, "lent.>", "virtual.>")
	if err != nil {
		return nil, fmt.Errorf("identity: list: %w", err)
	}
	var out []Binding
	for k := range keys.Keys() {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("identity: list %s: %w", k, err)
		}
		parts := strings.Split(k, ".")
		n, err := uri.NumberFromDigits(parts[1])
		if err != nil {
			continue
		}
		b := Binding{Number: n, User: string(e.Value())}
		if parts[0] == "lent" && len(parts) == 3 {
			b.Kind = BindingLent
			b.Contact, _ = uri.NumberFromDigits(parts[2])
		} else {
			b.Kind = BindingVirtual
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return strings.Compare(string(a.Kind)+string(a.Number)+string(a.Contact), string(b.Kind)+string(b.Number)+string(b.Contact))
	})
	return out, nil
}

// Room returns the room of the conversation between a MIMI user and a phone
// user: the one the MIMI side last named, else the direct-message room of
// the two.
func (s *Store) Room(ctx context.Context, user string, contact uri.Number) (string, error) {
	user = canonicalURI(user)
	e, err := s.read(ctx, roomKey(user, contact))
	switch {
	case err == nil:
		return string(e.Value()), nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return DMRoom(s.domain, user, s.UserURI(contact)), nil
	default:
		return "", fmt.Errorf("identity: room of %s and %s: %w", user, contact, err)
	}
}

// SetRoom records the room the MIMI side used for its conversation with a
// phone user, so replies go there.
func (s *Store) SetRoom(ctx context.Context, user string, contact uri.Number, room string) error {
	user = canonicalURI(user)
	key := roomKey(user, contact)
	if e, err := s.read(ctx, key); err == nil && string(e.Value()) == room {
		return nil
	}
	if room == DMRoom(s.domain, user, s.UserURI(contact)) {
		return nil // what Room derives anyway
	}
	if _, err := s.kv.Put(ctx, key, []byte(room)); err != nil {
		return fmt.Errorf("identity: room of %s and %s: %w", user, contact, err)
	}
	return nil
}

// Conversation returns the RCS Conversation-ID the phone user last used
// with user, or "" when there is none.
func (s *Store) Conversation(ctx context.Context, user string, contact uri.Number) (string, error) {
	e, err := s.read(ctx, convKey(canonicalURI(user), contact))
	switch {
	case err == nil:
		return string(e.Value()), nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", nil
	default:
		return "", fmt.Errorf("identity: conversation of %s and %s: %w", user, contact, err)
	}
}

// SetConversation records the RCS Conversation-ID the phone user used, so
// that what the MIMI user sends back stays in that conversation. It writes
// only when the value changes.
func (s *Store) SetConversation(ctx context.Context, user string, contact uri.Number, conv string) error {
	if cur, err := s.Conversation(ctx, user, contact); err == nil && cur == conv {
		return nil
	}
	if _, err := s.kv.Put(ctx, convKey(canonicalURI(user), contact), []byte(conv)); err != nil {
		return fmt.Errorf("identity: conversation of %s and %s: %w", user, contact, err)
	}
	return nil
}

// DMRoom derives the direct-message room of two participants, the same
// whichever is named first: mimi://<domain>/r/dm-<32 hex digits>.
func DMRoom(domain, a, b string) string {
	a, b = canonicalURI(a), canonicalURI(b)
	if b < a {
		a, b = b, a
	}
	// Hashed and written in a buffer on the stack: one allocation, the
	// room's URI.
	var buf [256]byte
	in := append(buf[:0], "mimigw dm\x00"...)
	in = append(append(append(in, a...), 0), b...)
	h := sha256.Sum256(in)
	out := append(buf[:0], "mimi://"...)
	out = append(out, strings.ToLower(domain)...)
	out = append(out, '/', byte(uri.Room), '/', 'd', 'm', '-')
	out = hex.AppendEncode(out, h[:16])
	return string(out)
}

// canonicalURI writes MIMI URIs one way (scheme and domain lower case) so
// that keys and room derivations do not depend on how a peer spelled them.
// A URI already written that way comes back as it is.
func canonicalURI(s string) string {
	switch {
	case len(s) >= 7 && strings.EqualFold(s[:7], "mimi://"):
		if u, err := uri.ParseMIMI(s); err == nil {
			if rest, ok := strings.CutPrefix(s, "mimi://"); ok && strings.HasPrefix(rest, u.Domain) &&
				(len(rest) == len(u.Domain) || rest[len(u.Domain)] == '/') {
				return s
			}
			return u.String()
		}
	case len(s) >= 4 && strings.EqualFold(s[:4], "tel:"):
		if n, err := uri.ParseNumber(s, ""); err == nil {
			if len(s) == len("tel:")+len(n) && s[:4] == "tel:" && s[4:] == string(n) {
				return s
			}
			return n.TelURI()
		}
	}
	return s
}

func lentKey(lent, contact uri.Number) string {
	return "lent." + lent.Digits() + "." + contact.Digits()
}

func lentByKey(user string, contact uri.Number) string {
	return userKey("lentby.", user, contact)
}

func virtualByKey(user string) string { return "virtualby." + encodeURI(user) }

func convKey(user string, contact uri.Number) string {
	return userKey("conv.", user, contact)
}

func roomKey(user string, contact uri.Number) string {
	return userKey("room.", user, contact)
}

func encodeURI(u string) string { return base64.RawURLEncoding.EncodeToString([]byte(u)) }

// userKey is prefix, the user's URI encoded, a dot and contact's digits,
// written in one allocation.
func userKey(prefix, user string, contact uri.Number) string {
	digits := contact.Digits()
	b := make([]byte, 0, len(prefix)+base64.RawURLEncoding.EncodedLen(len(user))+1+len(digits))
	b = append(b, prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, []byte(user))
	b = append(b, '.')
	b = append(b, digits...)
	return string(b)
}
