package mls

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/secrettree"
)

// A group's state is split in two records so that the record rewritten for
// every message stays small:
//
//   - head: the epoch's state as mls-go serialises it, minus the secret tree
//     (the ratchet tree, epoch secrets, private path keys, pending
//     proposals). Rewritten when the epoch changes or a proposal arrives.
//   - ratchet.<epoch>: the secret tree (per-sender ratchet positions and
//     this client's own send counter) and the generations already accepted
//     from each sender. Rewritten after every message, before a ciphertext
//     is returned or a plaintext delivered.
//
// Superseded epochs keep a past.<epoch> copy of their head for a few epochs
// so messages in flight across a commit still decrypt, after a restart too.

type headRecord struct {
	User       string          `json:"user"`
	GroupID    []byte          `json:"group_id"`
	Room       string          `json:"room"`
	Epoch      uint64          `json:"epoch"`
	EpochID    []byte          `json:"epoch_id"` // epoch authenticator: tells epochs of equal number apart
	Base       json.RawMessage `json:"base"`
	PSKs       []pskEntry      `json:"psks,omitempty"`
	Past       []uint64        `json:"past,omitempty"`
	LastCommit []byte          `json:"last_commit,omitempty"` // SHA-256 of this client's last commit
}

type pastRecord struct {
	EpochID []byte          `json:"epoch_id"`
	Base    json.RawMessage `json:"base"`
	PSKs    []pskEntry      `json:"psks,omitempty"`
}

// pskEntry is one entry of mls-go's PSK cache. mls-go keys that cache by
// binary strings (group ID and epoch for resumption PSKs) and serialises it
// as a JSON object, which replaces every byte sequence that is not UTF-8
// with U+FFFD: after a restore the PSKs are unreachable. They are kept
// here as byte strings and loaded back after a restore.
type pskEntry struct {
	ID    []byte `json:"id"`
	Value []byte `json:"value"`
}

// keptResumptionPSKs bounds how many epochs' resumption PSKs stay cached;
// mls-go adds one per epoch and never drops any.
const keptResumptionPSKs = 4

func cachedPSKs(g *group.Group) []pskEntry {
	gid := g.ID().AsSlice()
	epoch := g.Epoch().AsUint64()
	var out []pskEntry
	for id, v := range g.CachedPsks() {
		b := []byte(id)
		if len(b) == len(gid)+8 && bytes.Equal(b[:len(gid)], gid) {
			if ep := binary.BigEndian.Uint64(b[len(gid):]); ep+keptResumptionPSKs <= epoch {
				continue
			}
		}
		out = append(out, pskEntry{ID: b, Value: v})
	}
	slices.SortFunc(out, func(a, b pskEntry) int { return bytes.Compare(a.ID, b.ID) })
	return out
}

type ratchetRecord struct {
	EpochID []byte                `json:"epoch_id"`
	Tree    *secrettree.TreeState `json:"tree,omitempty"`
	Seen    map[uint32]*window    `json:"seen,omitempty"`
}

type leaseRecord struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expires"` // Unix milliseconds
}

// groupEntry is one (user, group) in memory. mu serialises every operation
// on it; the cached group is dropped whenever an operation that touched it
// fails, so a half-applied failure is never reused.
type groupEntry struct {
	mu   sync.Mutex
	gk   string
	user string

	loaded  bool
	head    headRecord
	headRev uint64
	g       *group.Group
	rat     ratchetRecord
	ratRev  uint64
	dirty   bool // set before mls-go may mutate g

	leaseRev     uint64
	leaseExpires time.Time

	evicted bool // dropped from the provider's map; look the group up again
}

func (e *groupEntry) forget() {
	e.loaded = false
	e.g = nil
	e.rat = ratchetRecord{}
	e.ratRev = 0
	e.headRev = 0
	e.head = headRecord{}
}

func (p *Provider) entry(user string, groupID []byte) *groupEntry {
	gk := groupKeyOf(user, groupID)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.groups[gk]
	if !ok {
		if len(p.groups) >= p.cfg.CacheGroups {
			p.evictGroups()
		}
		e = &groupEntry{gk: gk, user: user}
		p.groups[gk] = e
	}
	return e
}

// evictGroups drops about a quarter of the cached groups that nobody is
// using right now. Their state is on the bus; their lease stays recorded
// there and is taken again on next use. Called with p.mu held.
func (p *Provider) evictGroups() {
	quota := max(1, p.cfg.CacheGroups/4)
	for k, e := range p.groups {
		if quota == 0 {
			return
		}
		if !e.mu.TryLock() {
			continue
		}
		e.evicted = true
		e.forget()
		delete(p.groups, k)
		e.mu.Unlock()
		quota--
	}
}

// lock returns the group's entry locked, never one that was evicted while
// the caller waited for it.
func (p *Provider) lock(user string, groupID []byte) *groupEntry {
	for {
		e := p.entry(user, groupID)
		e.mu.Lock()
		if !e.evicted {
			return e
		}
		e.mu.Unlock()
	}
}

// holdLease makes this instance the group's only writer for LeaseTTL. The
// lease is renewed once half its time is used. When the lease record is not
// the one this instance last wrote, someone else may have written the group
// meanwhile, so cached state is dropped and read again.
func (p *Provider) holdLease(ctx context.Context, e *groupEntry) error {
	now := p.now()
	ttl := p.cfg.State.LeaseTTL
	if e.leaseRev != 0 && now.Before(e.leaseExpires.Add(-ttl/2)) {
		return nil
	}
	var rec leaseRecord
	rev, err := p.store.get(ctx, leaseKey(e.gk), &rec)
	switch {
	case errors.Is(err, errNotFound):
		rev = 0
	case err != nil:
		return err
	case rec.Holder != p.instance && now.UnixMilli() < rec.Expires:
		p.m.leaseConflicts.Inc()
		return fmt.Errorf("%w: %s until %s", ErrLeaseHeld, rec.Holder, time.UnixMilli(rec.Expires).UTC().Format(time.RFC3339))
	}
	if rev != e.leaseRev || rec.Holder != p.instance {
		e.forget()
	}
	exp := now.Add(ttl)
	nrev, err := p.store.write(ctx, leaseKey(e.gk), &leaseRecord{Holder: p.instance, Expires: exp.UnixMilli()}, rev)
	if err != nil {
		if errors.Is(err, errConflict) {
			p.m.leaseConflicts.Inc()
			e.forget()
			e.leaseRev = 0
			return fmt.Errorf("%w: lease taken concurrently", ErrLeaseHeld)
		}
		return err
	}
	e.leaseRev, e.leaseExpires = nrev, exp
	return nil
}

// releaseLease gives the group up so another instance can take it at once.
func (p *Provider) releaseLease(ctx context.Context, e *groupEntry) {
	if e.leaseRev == 0 {
		return
	}
	_, err := p.store.write(ctx, leaseKey(e.gk), &leaseRecord{Holder: p.instance, Expires: 0}, e.leaseRev)
	if err != nil {
		p.log.Debug("mls lease release failed", "error", err)
	}
	e.leaseRev = 0
	e.forget()
}

// load reads the head and the current epoch's ratchet and rebuilds the group.
func (p *Provider) load(ctx context.Context, e *groupEntry) error {
	var h headRecord
	rev, err := p.store.get(ctx, headKey(e.gk), &h)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return ErrGroupNotFound
		}
		return err
	}
	rat, ratRev, err := p.loadRatchet(ctx, e.gk, h.Epoch, h.EpochID)
	if err != nil {
		return err
	}
	g, err := rebuild(h.Base, rat.Tree, h.PSKs)
	if err != nil {
		return fmt.Errorf("mls: group state %s: %w", e.gk, err)
	}
	g.SetPaddingSize(p.cfg.PaddingBlock)
	e.head, e.headRev, e.g, e.rat, e.ratRev, e.loaded = h, rev, g, rat, ratRev, true
	return nil
}

// loadRatchet reads an epoch's ratchet record. A missing record, or one left
// from another epoch of the same number, means nothing was sent or received
// in this epoch yet: the secret tree starts fresh from the epoch secrets.
func (p *Provider) loadRatchet(ctx context.Context, gk string, epoch uint64, epochID []byte) (ratchetRecord, uint64, error) {
	var r ratchetRecord
	rev, err := p.store.get(ctx, ratchetKey(gk, epoch), &r)
	switch {
	case errors.Is(err, errNotFound):
		return ratchetRecord{EpochID: epochID}, 0, nil
	case err != nil:
		return ratchetRecord{}, 0, err
	case !bytes.Equal(r.EpochID, epochID):
		return ratchetRecord{EpochID: epochID}, rev, nil
	}
	return r, rev, nil
}

// rebuild turns a stored base, secret tree and PSKs back into a group.
func rebuild(base json.RawMessage, tree *secrettree.TreeState, psks []pskEntry) (*group.Group, error) {
	var sd group.StateData
	if err := json.Unmarshal(base, &sd); err != nil {
		return nil, err
	}
	sd.SecretTree = tree
	sd.CachedPsks = nil
	b, err := json.Marshal(&sd)
	if err != nil {
		return nil, err
	}
	g, err := group.UnmarshalGroupState(b)
	if err != nil {
		return nil, err
	}
	for _, p := range psks {
		g.LoadPsk(p.ID, p.Value)
	}
	return g, nil
}

// split serialises a group into its base (no secret tree, no PSKs), its
// secret tree and its PSKs.
func split(g *group.Group) (json.RawMessage, *secrettree.TreeState, []pskEntry, error) {
	b, err := g.MarshalState()
	if err != nil {
		return nil, nil, nil, err
	}
	var sd group.StateData
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, nil, nil, err
	}
	tree := sd.SecretTree
	sd.SecretTree = nil
	sd.CachedPsks = nil
	base, err := json.Marshal(&sd)
	if err != nil {
		return nil, nil, nil, err
	}
	return base, tree, cachedPSKs(g), nil
}

// saveRatchet writes the current epoch's ratchet record. It is the write
// that must land before a ciphertext leaves or a plaintext is delivered.
func (p *Provider) saveRatchet(ctx context.Context, e *groupEntry) error {
	e.rat.Tree = e.g.SecretTree().MarshalFull()
	rev, err := p.store.write(ctx, ratchetKey(e.gk, e.head.Epoch), &e.rat, e.ratRev)
	if err != nil {
		return err
	}
	e.ratRev = rev
	return nil
}

// saveBase rewrites the head at the same epoch (a proposal was stored).
func (p *Provider) saveBase(ctx context.Context, e *groupEntry) error {
	base, _, psks, err := split(e.g)
	if err != nil {
		return fmt.Errorf("mls: serialise group: %w", err)
	}
	h := e.head
	h.Base, h.PSKs = base, psks
	rev, err := p.store.write(ctx, headKey(e.gk), &h, e.headRev)
	if err != nil {
		return err
	}
	e.head, e.headRev = h, rev
	return nil
}

// saveEpoch records that the group moved to a new epoch: the old head is
// kept as a past epoch, the new head replaces it (compare-and-set), and a
// fresh ratchet record is written for the new epoch. Epochs falling out of
// the retention window are deleted last.
func (p *Provider) saveEpoch(ctx context.Context, e *groupEntry, lastCommit []byte) error {
	base, tree, psks, err := split(e.g)
	if err != nil {
		return fmt.Errorf("mls: serialise group: %w", err)
	}
	old := e.head
	h := old
	h.Epoch = e.g.Epoch().AsUint64()
	h.EpochID = e.g.EpochAuthenticator()
	h.Base, h.PSKs = base, psks
	h.LastCommit = lastCommit
	var drop []uint64
	if p.cfg.PastEpochs > 0 && len(old.Base) > 0 {
		if _, err := p.store.put(ctx, pastKey(e.gk, old.Epoch), &pastRecord{EpochID: old.EpochID, Base: old.Base, PSKs: old.PSKs}); err != nil {
			return err
		}
		h.Past = append(slices.Clone(old.Past), old.Epoch)
	}
	for len(h.Past) > p.cfg.PastEpochs {
		drop = append(drop, h.Past[0])
		h.Past = h.Past[1:]
	}
	rev, err := p.store.write(ctx, headKey(e.gk), &h, e.headRev)
	if err != nil {
		return err
	}
	e.head, e.headRev = h, rev
	e.rat = ratchetRecord{EpochID: h.EpochID, Tree: tree}
	rrev, err := p.store.put(ctx, ratchetKey(e.gk, h.Epoch), &e.rat)
	if err != nil {
		return err
	}
	e.ratRev = rrev
	if p.cfg.PastEpochs == 0 && len(old.Base) > 0 {
		drop = append(drop, old.Epoch)
	}
	for _, ep := range drop {
		if err := p.store.del(ctx, pastKey(e.gk, ep)); err != nil {
			p.log.Warn("mls past epoch cleanup failed", "error", err)
		}
		if err := p.store.del(ctx, ratchetKey(e.gk, ep)); err != nil {
			p.log.Warn("mls past epoch cleanup failed", "error", err)
		}
	}
	return nil
}

// createHead writes the first head of a group this client just created or
// joined. It fails if the client already has state for the group.
func (p *Provider) createHead(ctx context.Context, e *groupEntry, user, room string, g *group.Group) error {
	base, tree, psks, err := split(g)
	if err != nil {
		return fmt.Errorf("mls: serialise group: %w", err)
	}
	h := headRecord{
		User: user, GroupID: g.ID().AsSlice(), Room: room,
		Epoch: g.Epoch().AsUint64(), EpochID: g.EpochAuthenticator(), Base: base, PSKs: psks,
	}
	rev, err := p.store.write(ctx, headKey(e.gk), &h, 0)
	if err != nil {
		if errors.Is(err, errConflict) {
			return fmt.Errorf("%w: %s is already in group %x", ErrRejected, user, h.GroupID)
		}
		return err
	}
	rat := ratchetRecord{EpochID: h.EpochID, Tree: tree}
	rrev, err := p.store.put(ctx, ratchetKey(e.gk, h.Epoch), &rat)
	if err != nil {
		return err
	}
	g.SetPaddingSize(p.cfg.PaddingBlock)
	e.head, e.headRev, e.g, e.rat, e.ratRev, e.loaded = h, rev, g, rat, rrev, true
	return nil
}

// deleteGroup removes every record of the client's view of the group.
func (p *Provider) deleteGroup(ctx context.Context, e *groupEntry) error {
	h := e.head
	keys := []string{headKey(e.gk), ratchetKey(e.gk, h.Epoch)}
	for _, ep := range h.Past {
		keys = append(keys, pastKey(e.gk, ep), ratchetKey(e.gk, ep))
	}
	var firstErr error
	for _, k := range keys {
		if err := p.store.del(ctx, k); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	e.forget()
	return firstErr
}

// withGroup runs fn on the client's view of the group while holding the
// group's lease and lock. When fn fails after mls-go may have changed the
// in-memory group, that copy is dropped: the stored state is the truth.
func (c *Client) withGroup(ctx context.Context, groupID []byte, op string, fn func(e *groupEntry) error) error {
	if len(groupID) == 0 {
		return fmt.Errorf("%w: empty group ID", ErrMalformed)
	}
	start := time.Now()
	e := c.p.lock(c.uri, groupID)
	defer e.mu.Unlock()
	if err := c.p.holdLease(ctx, e); err != nil {
		return err
	}
	if !e.loaded {
		if err := c.p.load(ctx, e); err != nil {
			if errors.Is(err, ErrGroupNotFound) {
				// No lease record for groups that do not exist: input
				// naming random groups must not leave records behind.
				if derr := c.p.store.del(ctx, leaseKey(e.gk)); derr == nil {
					e.leaseRev, e.leaseExpires = 0, time.Time{}
				}
			}
			return err
		}
	}
	e.dirty = false
	err := fn(e)
	if err != nil && e.dirty {
		e.forget()
	}
	if errors.Is(err, errConflict) {
		// Someone else wrote the group: whatever this instance thinks of
		// its lease, read the lease record again before the next write.
		e.forget()
		e.leaseRev, e.leaseExpires = 0, time.Time{}
		err = fmt.Errorf("%w: %w", ErrLeaseHeld, err)
	}
	e.dirty = false
	c.p.m.opSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return err
}

// Release gives up this instance's lease on the client's view of a group,
// so another instance may take it over without waiting for the lease to
// expire (graceful shutdown, rebalancing).
func (c *Client) Release(ctx context.Context, groupID []byte) {
	e := c.p.lock(c.uri, groupID)
	defer e.mu.Unlock()
	c.p.releaseLease(ctx, e)
}
