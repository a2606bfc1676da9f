package mls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/treesync"
)

// Member is one leaf of a group.
type Member struct {
	Leaf uint32
	URI  string // "" when the credential yields no trusted MIMI identity
}

// HandshakeKind says what a handshake message was.
type HandshakeKind int

// Handshake kinds.
const (
	KindProposal HandshakeKind = iota + 1
	KindCommit
)

func (k HandshakeKind) String() string {
	switch k {
	case KindProposal:
		return "proposal"
	case KindCommit:
		return "commit"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Handshake is what applying a proposal or commit did.
type Handshake struct {
	Kind  HandshakeKind
	Epoch uint64 // the client's epoch afterwards
	// Sender is the MIMI URI of a member sender, "external:<index>" for an
	// external sender (the hub), or "new-member" for a joiner.
	Sender  string
	Added   []Member
	Removed []Member
	// Echo: this client's own commit came back; nothing was applied.
	Echo bool
	// SelfRemoved: the commit removed this client; its state is deleted.
	SelfRemoved bool
	// Pending is how many proposals wait for a commit after a proposal.
	Pending int
}

// parsePublic reads a PublicMessage handshake (proposal or commit) for
// groupID.
func parsePublic(groupID, msg []byte) (*framing.PublicMessage, error) {
	m, err := framing.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.PrivateMessage != nil {
		return nil, fmt.Errorf("%w: handshake messages as PrivateMessage (MIMI sends them as PublicMessage)", ErrUnsupported)
	}
	pub, ok := m.AsPublic()
	if !ok {
		return nil, fmt.Errorf("%w: wire format %d is not a public message", ErrMalformed, m.WireFormat())
	}
	if !bytes.Equal(pub.Marshal(), msg[2:]) {
		return nil, fmt.Errorf("%w: trailing bytes after public message", ErrMalformed)
	}
	switch pub.Content.ContentType() {
	case framing.ContentTypeProposal, framing.ContentTypeCommit:
	default:
		return nil, fmt.Errorf("%w: public message with content type %d", ErrMalformed, pub.Content.ContentType())
	}
	if !bytes.Equal(pub.Content.GroupID, groupID) {
		return nil, fmt.Errorf("%w: message is for group %x", ErrMalformed, pub.Content.GroupID)
	}
	return pub, nil
}

// ProcessHandshake applies a proposal or commit that arrived as an MLS
// PublicMessage: from a member, from an external sender the group's
// external_senders extension lists (the hub), or from a new member. A
// proposal is stored until a commit covers it; a commit moves the group to
// its next epoch, which is stored before this returns. This client's own
// commit coming back is reported as an echo.
func (c *Client) ProcessHandshake(ctx context.Context, groupID, msg []byte) (*Handshake, error) {
	return c.ProcessHandshakeIf(ctx, groupID, msg, nil)
}

// ProcessHandshakeIf is ProcessHandshake with a policy: allow sees what the
// message does (its sender, the members a commit adds and removes) before
// anything is stored, and an error from it leaves the stored state as it
// was and is returned wrapped in ErrRejected. An echo of this client's own
// commit is not shown to it.
func (c *Client) ProcessHandshakeIf(ctx context.Context, groupID, msg []byte, allow func(*Handshake) error) (*Handshake, error) {
	pub, err := parsePublic(groupID, msg)
	if err != nil {
		c.p.reject(err)
		return nil, err
	}
	digest := sha256.Sum256(msg)
	var out *Handshake
	err = c.withGroup(ctx, groupID, "handshake", func(e *groupEntry) error {
		h, err := c.applyHandshake(e.g, pub, e.head.LastCommit, digest[:], func() { e.dirty = true })
		if err != nil {
			return err
		}
		if allow != nil && !h.Echo {
			if err := allow(h); err != nil {
				e.dirty = true // mls-go may have applied it in memory
				return fmt.Errorf("%w: %w", ErrRejected, err)
			}
		}
		switch {
		case h.Echo:
		case h.SelfRemoved:
			if err := c.p.deleteGroup(ctx, e); err != nil {
				return err
			}
		case h.Kind == KindCommit:
			if err := c.p.saveEpoch(ctx, e, nil); err != nil {
				return err
			}
		default:
			if err := c.p.saveBase(ctx, e); err != nil {
				return err
			}
		}
		out = h
		return nil
	})
	if err != nil {
		c.p.reject(err)
		return nil, err
	}
	if !out.Echo {
		c.p.m.handshakes.WithLabelValues(out.Kind.String()).Inc()
	}
	if out.SelfRemoved {
		c.p.log.Info("mls client removed from group", "user", c.uri, "group", fmt.Sprintf("%x", groupID))
	}
	return out, nil
}

// applyHandshake checks and applies pub to g. mls-go leaves several checks
// to its caller, done here: a proposal's epoch (it verifies only commits'),
// a replayed proposal (it would store it twice), commits from external
// senders (RFC 9420 section 12.1.8.1 allows them proposals only; mls-go
// verifies their signature and then applies the commit), and commits that
// remove this client (it cannot process them and errors out).
//
// touched is called before mls-go may change g: a failure after that
// point can leave g half-updated (mls-go advances the epoch before it
// checks a commit's confirmation tag), so the caller must drop it.
func (c *Client) applyHandshake(g *group.Group, pub *framing.PublicMessage, lastCommit, digest []byte, touched func()) (*Handshake, error) {
	fc := pub.Content
	epoch := g.Epoch().AsUint64()
	kind := KindProposal
	if fc.ContentType() == framing.ContentTypeCommit {
		kind = KindCommit
	}
	own := uint32(g.OwnLeafIndex())
	if fc.Epoch != epoch {
		if kind == KindCommit && fc.Epoch+1 == epoch && fc.Sender.Type == framing.SenderTypeMember &&
			fc.Sender.LeafIndex == own && len(lastCommit) > 0 && bytes.Equal(lastCommit, digest) {
			return &Handshake{Kind: kind, Epoch: epoch, Sender: c.uri, Echo: true}, nil
		}
		return nil, fmt.Errorf("%w: %s for epoch %d, group at %d", ErrWrongEpoch, kind, fc.Epoch, epoch)
	}
	switch fc.Sender.Type {
	case framing.SenderTypeMember:
		if fc.Sender.LeafIndex == own {
			return nil, fmt.Errorf("%w: %s claims this client's own leaf", ErrAuthentication, kind)
		}
	case framing.SenderTypeExternal:
		if kind == KindCommit {
			return nil, fmt.Errorf("%w: external senders may only propose", ErrAuthentication)
		}
	case framing.SenderTypeNewMemberProposal:
		if kind == KindCommit {
			return nil, fmt.Errorf("%w: new_member_proposal sender on a commit", ErrMalformed)
		}
	case framing.SenderTypeNewMemberCommit:
		if kind == KindProposal {
			return nil, fmt.Errorf("%w: new_member_commit sender on a proposal", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: sender type %d", ErrMalformed, fc.Sender.Type)
	}
	// Authenticate before anything else looks at the content.
	if err := g.VerifyPublicMessage(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	sender, err := c.p.senderName(g, fc.Sender)
	if err != nil {
		return nil, err
	}
	before := c.p.roster(g)

	if kind == KindProposal {
		ac := &framing.AuthenticatedContent{WireFormat: framing.WireFormatPublicMessage, Content: pub.Content, Auth: pub.Auth}
		ref := group.ComputeProposalRef(ac.Marshal(), g.CipherSuite())
		for _, sp := range g.StoredProposals() {
			if bytes.Equal(sp.Ref, ref) {
				return nil, fmt.Errorf("%w: proposal %x", ErrReplay, ref)
			}
		}
		touched()
		if err := g.ProcessPublicMessage(pub); err != nil {
			return nil, classify(err)
		}
		return &Handshake{Kind: kind, Epoch: epoch, Sender: sender, Pending: len(g.StoredProposals())}, nil
	}

	removesMe, err := commitRemoves(g, pub, own)
	if err != nil {
		return nil, err
	}
	if removesMe {
		return &Handshake{Kind: kind, Epoch: epoch + 1, Sender: sender, SelfRemoved: true}, nil
	}
	touched()
	if err := g.ProcessPublicMessage(pub); err != nil {
		return nil, classify(err)
	}
	after := c.p.roster(g)
	h := &Handshake{Kind: kind, Epoch: g.Epoch().AsUint64(), Sender: sender}
	h.Added, h.Removed = diffRoster(before, after)
	return h, nil
}

// commitRemoves reports whether a commit carries a Remove of leaf, inline
// or by reference to a stored proposal.
func commitRemoves(g *group.Group, pub *framing.PublicMessage, leaf uint32) (bool, error) {
	body, ok := pub.Content.Body.(framing.CommitBody)
	if !ok {
		return false, fmt.Errorf("%w: commit without a commit body", ErrMalformed)
	}
	commit, err := group.UnmarshalCommit(body.Data)
	if err != nil {
		return false, fmt.Errorf("%w: commit: %v", ErrMalformed, err)
	}
	stored := g.StoredProposals()
	for _, por := range commit.Proposals {
		p := por.Proposal
		if p == nil {
			i := slices.IndexFunc(stored, func(sp group.StoredProposal) bool { return bytes.Equal(sp.Ref, por.ProposalRef) })
			if i < 0 {
				return false, fmt.Errorf("%w: commit references unknown proposal %x", ErrRejected, por.ProposalRef)
			}
			p = stored[i].Proposal
		}
		if p.Type == group.ProposalTypeRemove && p.Remove != nil && uint32(p.Remove.Removed) == leaf {
			return true, nil
		}
	}
	return false, nil
}

func (p *Provider) senderName(g *group.Group, s framing.Sender) (string, error) {
	switch s.Type {
	case framing.SenderTypeMember:
		return p.memberIdentity(g, s.LeafIndex)
	case framing.SenderTypeExternal:
		return fmt.Sprintf("external:%d", s.SenderIndex), nil
	default:
		return "new-member", nil
	}
}

// roster lists the group's members by leaf with their identities, read
// from the ratchet tree (mls-go's member map keeps removed members).
func (p *Provider) roster(g *group.Group) map[uint32]string {
	out := map[uint32]string{}
	for i := uint32(0); ; i++ {
		n := g.GetTreeLeaf(group.LeafNodeIndex(i))
		if n == nil {
			return out
		}
		if n.State != treesync.NodeStatePresent || n.LeafData == nil {
			continue
		}
		id, err := p.issuer.identity(n.LeafData.Credential, n.LeafData.SigKeyBytes(), p.now())
		if err != nil {
			id = ""
		}
		out[i] = id
	}
}

func diffRoster(before, after map[uint32]string) (added, removed []Member) {
	for leaf, id := range after {
		if old, ok := before[leaf]; !ok || old != id {
			added = append(added, Member{Leaf: leaf, URI: id})
		}
	}
	for leaf, id := range before {
		if now, ok := after[leaf]; !ok || now != id {
			removed = append(removed, Member{Leaf: leaf, URI: id})
		}
	}
	sortMembers(added)
	sortMembers(removed)
	return added, removed
}

func sortMembers(m []Member) {
	slices.SortFunc(m, func(a, b Member) int { return int(a.Leaf) - int(b.Leaf) })
}
