package mls

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	mimiuri "github.com/mimigw/mimigw/mimi/uri"
	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/credentials"
	mlsext "github.com/thomas-vilte/mls-go/extensions"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/keypackages"
)

// ExternalSender is a party outside the group allowed to send it proposals:
// in MIMI, the hub (and followers with members in the room).
type ExternalSender struct {
	SignatureKey []byte // Ed25519 public key for suite 1
	Identity     string // basic credential identity, e.g. mimi://hub.example
}

// GroupOptions shape a group a client creates.
type GroupOptions struct {
	// GroupID is the MLS group ID; nil draws 16 random bytes.
	GroupID []byte
	// ExternalSenders fills the external_senders extension. MIMI requires
	// the hub in it.
	ExternalSenders []ExternalSender
	// Extensions are further GroupContext extensions, such as MIMI's
	// app_data_dictionary with the room's participant list.
	Extensions []Extension
}

// Extension is an MLS extension (RFC 9420 section 7.2): its type and its
// extension_data.
type Extension struct {
	Type uint16
	Data []byte
}

// contextExtensions lists a group's GroupContext extensions.
func contextExtensions(g *group.Group) []Extension {
	exts := g.GroupContext().Extensions
	out := make([]Extension, 0, len(exts))
	for _, e := range exts {
		out = append(out, Extension{Type: uint16(e.Type), Data: slices.Clone(e.Data)})
	}
	return out
}

// externalSendersExtension encodes RFC 9420 section 12.1.8.1's
// ExternalSender external_senders<V>. mls-go's extensions package cannot
// be used for it: it parses every external sender key as ECDSA P-256 and
// rejects the Ed25519 keys of suite 1.
func externalSendersExtension(senders []ExternalSender) (group.Extension, error) {
	var list []byte
	for i, s := range senders {
		if len(s.SignatureKey) != ed25519.PublicKeySize || s.Identity == "" {
			return group.Extension{}, fmt.Errorf("mls: external sender %d: an Ed25519 signature key and an identity are required", i)
		}
		list = appendVector(list, s.SignatureKey)
		list = append(list, credentials.NewBasicCredential([]byte(s.Identity)).Marshal()...)
	}
	return group.Extension{Type: mlsext.ExtensionTypeExternalSenders, Data: appendVector(nil, list)}, nil
}

// CreateGroup starts a group with this client as its only member, for room
// (a direct-message room the gateway opens, for instance). Add members with
// Commit.
func (c *Client) CreateGroup(ctx context.Context, room string, opt GroupOptions) ([]byte, error) {
	if err := checkURI(room, mimiuri.Room); err != nil {
		return nil, fmt.Errorf("mls: create group: %w", err)
	}
	gid := opt.GroupID
	if gid == nil {
		gid = make([]byte, 16)
		if _, err := rand.Read(gid); err != nil {
			return nil, fmt.Errorf("mls: create group: %w", err)
		}
	}
	var exts []group.Extension
	if len(opt.ExternalSenders) > 0 {
		ext, err := externalSendersExtension(opt.ExternalSenders)
		if err != nil {
			return nil, err
		}
		exts = append(exts, ext)
	}
	for _, e := range opt.Extensions {
		exts = append(exts, group.Extension{Type: mlsext.ExtensionType(e.Type), Data: slices.Clone(e.Data)})
	}
	kp, priv, err := c.newKeyPackage(c.p.now(), false)
	if err != nil {
		return nil, err
	}
	g, err := group.NewGroup(group.NewGroupID(slices.Clone(gid)), c.p.cs, kp, priv, group.WithExtensions(exts))
	if err != nil {
		return nil, fmt.Errorf("mls: create group: %w", err)
	}
	e := c.p.lock(c.uri, gid)
	defer e.mu.Unlock()
	if err := c.p.holdLease(ctx, e); err != nil {
		return nil, err
	}
	if err := c.p.createHead(ctx, e, c.uri, room, g); err != nil {
		return nil, err
	}
	c.p.log.Info("mls group created", "user", c.uri, "room", room, "group", fmt.Sprintf("%x", gid))
	return slices.Clone(gid), nil
}

// Joined is a group one of the gateway's clients joined from a Welcome.
type Joined struct {
	User       string
	GroupID    []byte
	Epoch      uint64
	Members    []Member
	Extensions []Extension // the GroupContext's
}

// JoinWelcome joins every client of this gateway a Welcome admits,
// finding each by the KeyPackageRef it names. ratchetTree is the group's
// ratchet tree when it travels beside the Welcome (the extension_data of a
// ratchet_tree extension); nil when it is inside. room is the MIMI room the
// group belongs to. A one-time KeyPackage is spent by the join.
func (p *Provider) JoinWelcome(ctx context.Context, welcome, ratchetTree []byte, room string) ([]Joined, error) {
	out, err := p.joinWelcome(ctx, welcome, ratchetTree, room)
	if err != nil {
		p.reject(err)
	}
	return out, err
}

func (p *Provider) joinWelcome(ctx context.Context, welcome, ratchetTree []byte, room string) ([]Joined, error) {
	if err := checkURI(room, mimiuri.Room); err != nil {
		return nil, fmt.Errorf("mls: join: %w", err)
	}
	w, err := parseWelcome(welcome)
	if err != nil {
		return nil, err
	}
	if w.CipherSuite != p.cs {
		return nil, fmt.Errorf("%w: welcome cipher suite %d", ErrUnsupported, w.CipherSuite)
	}
	var joined []Joined
	var firstErr error
	seen := map[string]bool{}
	for _, s := range w.Secrets {
		if seen[string(s.NewMember)] || len(s.NewMember) != p.cs.HashLength() {
			continue
		}
		seen[string(s.NewMember)] = true
		var rec kpRecord
		rev, err := p.store.get(ctx, kpKey(s.NewMember), &rec)
		if errors.Is(err, errNotFound) {
			continue // another provider's member
		}
		if err != nil {
			return joined, err
		}
		j, err := p.joinOne(ctx, w, s.NewMember, &rec, rev, ratchetTree, room)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		joined = append(joined, *j)
	}
	if len(joined) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%w: none of %d", ErrUnknownKeyPackage, len(w.Secrets))
	}
	return joined, firstErr
}

func (p *Provider) joinOne(ctx context.Context, w *group.Welcome, ref []byte, rec *kpRecord, rev uint64,
	tree []byte, room string) (*Joined, error) {
	if rec.Used {
		return nil, fmt.Errorf("%w: %x", ErrKeyPackageUsed, ref)
	}
	c, err := p.Client(ctx, rec.User)
	if err != nil {
		return nil, err
	}
	kp, err := keypackages.UnmarshalKeyPackage(rec.KeyPackage)
	if err != nil {
		return nil, fmt.Errorf("mls: stored key package %x: %w", ref, err)
	}
	initKey, encKey, err := rec.privateKeys(p.cs)
	if err != nil {
		return nil, err
	}
	g, err := joinFromWelcome(w, kp, initKey, encKey, tree, nil, p.extensions())
	if err != nil {
		return nil, err
	}
	// Spend the package before the group exists: two Welcomes racing for
	// one package (on two instances) cannot both get past this write.
	if !rec.LastResort {
		spent := kpRecord{User: rec.User, KeyPackage: rec.KeyPackage, NotAfter: rec.NotAfter, Used: true}
		if _, err := p.store.write(ctx, kpKey(ref), &spent, rev); err != nil {
			if errors.Is(err, errConflict) {
				return nil, fmt.Errorf("%w: %x", ErrKeyPackageUsed, ref)
			}
			return nil, err
		}
	}
	gid := g.ID().AsSlice()
	e := p.lock(c.uri, gid)
	defer e.mu.Unlock()
	if err := p.holdLease(ctx, e); err != nil {
		return nil, err
	}
	if err := p.createHead(ctx, e, c.uri, room, g); err != nil {
		return nil, err
	}
	p.m.joins.Inc()
	p.log.Info("mls group joined", "user", c.uri, "room", room, "group", fmt.Sprintf("%x", gid), "epoch", g.Epoch().AsUint64())
	return &Joined{User: c.uri, GroupID: slices.Clone(gid), Epoch: g.Epoch().AsUint64(), Members: rosterList(p.roster(g)),
		Extensions: contextExtensions(g)}, nil
}

func rosterList(r map[uint32]string) []Member {
	out := make([]Member, 0, len(r))
	for leaf, id := range r {
		out = append(out, Member{Leaf: leaf, URI: id})
	}
	sortMembers(out)
	return out
}

// Changes is what a commit does besides applying pending proposals.
type Changes struct {
	// Add holds KeyPackages (MLSMessage or bare) of clients to add.
	Add [][]byte
	// Remove names members (MIMI URIs) to remove, every leaf of each.
	Remove []string
	// TreeInWelcome puts the ratchet tree inside the Welcome's GroupInfo
	// instead of only returning it beside (MIMI omits it).
	TreeInWelcome bool
}

// Commit is what a client's commit produced, for the transport to deliver.
type Commit struct {
	Commit      []byte // MLSMessage with the PublicMessage commit
	Welcome     []byte // MLSMessage Welcome for added members; nil if none
	RatchetTree []byte // the new epoch's ratchet tree (ratchet_tree extension_data)
	GroupInfo   []byte // MLSMessage with the signed GroupInfo, without the tree
	Epoch       uint64
}

// Commit adds and removes members and applies every pending proposal
// (those of external senders too) in one commit, sent as a PublicMessage.
// The client moves to the new epoch and stores it before the commit is
// returned; when the commit comes back from the hub it is reported as an
// echo.
func (c *Client) Commit(ctx context.Context, groupID []byte, ch Changes) (*Commit, error) {
	var adds []*keypackages.KeyPackage
	for i, b := range ch.Add {
		kp, err := parseKeyPackage(c.p.cs, b, c.p.now())
		if err != nil {
			return nil, fmt.Errorf("mls: commit: key package %d: %w", i, err)
		}
		adds = append(adds, kp)
	}
	var out *Commit
	err := c.withGroup(ctx, groupID, "commit", func(e *groupEntry) error {
		g := e.g
		roster := c.p.roster(g)
		var removes []group.LeafNodeIndex
		for _, uri := range ch.Remove {
			n := 0
			for leaf, id := range roster {
				if id == uri && leaf != uint32(g.OwnLeafIndex()) {
					removes = append(removes, group.LeafNodeIndex(leaf))
					n++
				}
			}
			if n == 0 {
				return fmt.Errorf("mls: commit: %s is not a member", uri)
			}
		}
		slices.Sort(removes)
		e.dirty = true
		for _, kp := range adds {
			if _, err := g.AddMember(kp); err != nil {
				return fmt.Errorf("%w: add: %v", ErrRejected, err)
			}
		}
		for _, leaf := range removes {
			if _, err := g.RemoveMember(leaf); err != nil {
				return fmt.Errorf("%w: remove leaf %d: %v", ErrRejected, leaf, err)
			}
		}
		staged, err := g.Commit(c.sig, c.sig.PublicKey(), nil)
		if err != nil {
			return classify(err)
		}
		var joiners []*keypackages.KeyPackage
		for _, pr := range staged.Proposals() {
			if pr.Type == group.ProposalTypeAdd && pr.Add != nil {
				joiners = append(joiners, pr.Add.KeyPackage)
			}
		}
		joinerSecret := staged.JoinerSecret()
		if err := g.MergeCommit(staged); err != nil {
			return classify(err)
		}
		commit := framing.NewMLSMessagePublic(&framing.PublicMessage{
			Content:       staged.AuthenticatedContent().Content,
			Auth:          staged.AuthenticatedContent().Auth,
			MembershipTag: staged.MembershipTag(),
		}).Marshal()
		res := &Commit{Commit: commit, RatchetTree: g.MarshalRatchetTreeRFC(), Epoch: g.Epoch().AsUint64()}
		if len(joiners) > 0 {
			w, err := g.CreateWelcomeWithOpts(joiners, c.sig,
				group.WithJoinerSecret(joinerSecret),
				group.WithPSKIDs(staged.PskIDs()),
				group.WithPSKSecret(staged.RawPskSecret()),
				group.WithStagedCommit(staged),
				group.WithGroupInfoOptions(group.WithRatchetTree(ch.TreeInWelcome), group.WithExternalPub(false)))
			if err != nil {
				return fmt.Errorf("mls: welcome: %w", err)
			}
			res.Welcome = (&framing.MLSMessage{Welcome: w.Marshal()}).Marshal()
		}
		gi, err := signedGroupInfo(g, c.sig)
		if err != nil {
			return err
		}
		res.GroupInfo = (&framing.MLSMessage{GroupInfo: gi.Marshal()}).Marshal()
		digest := sha256.Sum256(commit)
		if err := c.p.saveEpoch(ctx, e, digest[:]); err != nil {
			return err
		}
		out = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.p.m.commitsSent.Inc()
	return out, nil
}

// signedGroupInfo builds the group's GroupInfo with the external_pub
// extension and no tree. mls-go's GetGroupInfo also copies every
// GroupContext extension into the GroupInfo's own extensions, where RFC
// 9420 does not put them (they are already in its group_context).
func signedGroupInfo(g *group.Group, sig *ciphersuite.SignaturePrivateKey) (*group.Info, error) {
	cs := g.CipherSuite()
	ext, err := ciphersuite.DeriveKeyPair(cs, g.EpochSecrets().ExternalSecret.AsSlice())
	if err != nil {
		return nil, fmt.Errorf("mls: group info: external key: %w", err)
	}
	info := &group.Info{
		GroupContext:    g.GroupContext(),
		Extensions:      []group.Extension{{Type: mlsext.ExtensionTypeExternalPub, Data: appendVector(nil, ext.PublicKey().Bytes())}},
		ConfirmationTag: g.ConfirmationTag(),
		Signer:          g.OwnLeafIndex(),
	}
	s, err := ciphersuite.SignWithLabel(sig, "GroupInfoTBS", info.MarshalTBS())
	if err != nil {
		return nil, fmt.Errorf("mls: group info: sign: %w", err)
	}
	info.Signature = s.AsSlice()
	return info, nil
}

// GroupState describes the client's view of a group.
type GroupState struct {
	GroupID     []byte
	Room        string
	Epoch       uint64
	OwnLeaf     uint32
	Members     []Member
	Pending     int         // proposals waiting for a commit
	RatchetTree []byte      // ratchet_tree extension_data, for out-of-band delivery
	Extensions  []Extension // the GroupContext's
}

// Group reports the client's view of a group.
func (c *Client) Group(ctx context.Context, groupID []byte) (*GroupState, error) {
	var out *GroupState
	err := c.withGroup(ctx, groupID, "inspect", func(e *groupEntry) error {
		out = &GroupState{
			GroupID:     slices.Clone(e.head.GroupID),
			Room:        e.head.Room,
			Epoch:       e.head.Epoch,
			OwnLeaf:     uint32(e.g.OwnLeafIndex()),
			Members:     rosterList(c.p.roster(e.g)),
			Pending:     len(e.g.StoredProposals()),
			RatchetTree: e.g.MarshalRatchetTreeRFC(),
			Extensions:  contextExtensions(e.g),
		}
		return nil
	})
	return out, err
}

// Leave drops the client's state for a group (after a Remove the hub
// accepted, or when the room is gone). It sends nothing.
func (c *Client) Leave(ctx context.Context, groupID []byte) error {
	return c.withGroup(ctx, groupID, "leave", func(e *groupEntry) error {
		return c.p.deleteGroup(ctx, e)
	})
}

// hubRecord is the signature key a MIMI hub lists in the external_senders
// of the groups it hosts, the same on every gateway instance.
type hubRecord struct {
	Identity string `json:"identity"`
	Seed     []byte `json:"seed"` // Ed25519 private key seed
}

// HubSender returns the external sender a hub named identity (its provider
// URI, mimi://<domain>) lists in the groups of the rooms it hosts, creating
// its signature key on first use; the key is kept, sealed, in the state
// bucket.
func (p *Provider) HubSender(ctx context.Context, identity string) (ExternalSender, error) {
	key := "hub." + nameHash(identity)
	var rec hubRecord
	_, err := p.store.get(ctx, key, &rec)
	if errors.Is(err, errNotFound) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return ExternalSender{}, fmt.Errorf("mls: hub key: %w", gerr)
		}
		rec = hubRecord{Identity: identity, Seed: priv.Seed()}
		if _, err = p.store.write(ctx, key, &rec, 0); errors.Is(err, errConflict) {
			_, err = p.store.get(ctx, key, &rec) // another instance made it first
		}
	}
	if err != nil {
		return ExternalSender{}, err
	}
	if rec.Identity != identity || len(rec.Seed) != ed25519.SeedSize {
		return ExternalSender{}, fmt.Errorf("mls: hub record for %s is not usable", identity)
	}
	pub := ed25519.NewKeyFromSeed(rec.Seed).Public().(ed25519.PublicKey)
	return ExternalSender{SignatureKey: pub, Identity: identity}, nil
}
