package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
)

// creatingFor bounds how long a room may stay half made by an instance
// before another instance starts it again.
const creatingFor = time.Minute

// createRoom opens room, hosted here, for a phone user writing first to a
// MIMI user of another provider: the phone user's client creates the
// group, the target's provider hands out key material, the target is
// added, and the Welcome goes to that provider by notify.
func (p *Provider) createRoom(ctx context.Context, room, local, target, peer string) (*roomRecord, error) {
	// Claim the room, so that two instances carrying two messages of the
	// same new conversation do not create two groups.
	rec, rev, err := p.rooms.get(ctx, room)
	switch {
	case errors.Is(err, errNoRoom):
		rec = &roomRecord{Room: room, Hub: p.domain, Creating: p.mls.Instance(), Since: p.now()}
		if rev, err = p.rooms.put(ctx, rec, 0); err != nil {
			if bus.IsConflict(err) {
				return nil, fmt.Errorf("%w: room %s is being created", bus.ErrUnavailable, room)
			}
			return nil, err
		}
	case err != nil:
		return nil, err
	case rec.Creating == "":
		return rec, nil
	case p.now().Sub(rec.Since) < creatingFor:
		return nil, fmt.Errorf("%w: room %s is being created by %s", bus.ErrUnavailable, room, rec.Creating)
	default:
		p.log.Warn("taking over a room left half made", "room", room, "by", rec.Creating)
		rec.Creating, rec.Since = p.mls.Instance(), p.now()
		if rev, err = p.rooms.put(ctx, rec, rev); err != nil {
			return nil, err
		}
	}

	gid, err := p.startRoom(ctx, room, local, target, peer)
	if err != nil {
		if !transient(err) {
			// Nothing to wait for: the next message starts afresh.
			if derr := p.rooms.drop(ctx, room, rev); derr != nil {
				p.log.Warn("room left half made", "room", room, "err", derr)
			}
		}
		return nil, err
	}
	rec.GroupID, rec.Local, rec.Followers, rec.Creating = gid, []string{local}, []string{peer}, ""
	rec.Participants = roomParticipants(local, target)
	if _, err := p.rooms.put(ctx, rec, rev); err != nil {
		return nil, err
	}
	p.m.rooms.WithLabelValues("created").Inc()
	p.log.Info("room created", "room", room, "user", local, "with", target, "peer", peer)
	return rec, nil
}

// roomParticipants is the participant list of a DM room the gateway
// opens.
func roomParticipants(local, target string) wire.ParticipantList {
	return wire.ParticipantList{{User: local}, {User: target}}
}

// participants reads the participant list from a group's GroupContext
// extensions: nil without an app_data_dictionary or without a
// participant_list in it.
func participants(exts []mls.Extension) (wire.ParticipantList, error) {
	for _, e := range exts {
		if e.Type == mls.ExtensionAppDataDictionary {
			l, _, err := wire.Participants(e.Data)
			return l, err
		}
	}
	return nil, nil
}

// startRoom creates the group as local, adds every client of target that
// peer has key material for, and sends peer the Welcome. It returns the
// group ID.
func (p *Provider) startRoom(ctx context.Context, room, local, target, peer string) ([]byte, error) {
	c, err := p.mls.Client(ctx, local)
	if err != nil {
		return nil, err
	}
	kps, err := p.fetchKeyMaterial(ctx, c, peer, target, room)
	if err != nil {
		return nil, err
	}
	// The hub lists itself as the group's external sender, as MIMI
	// requires of every room.
	hub, err := p.mls.HubSender(ctx, "mimi://"+p.domain)
	if err != nil {
		return nil, err
	}
	// The room's participant list: the two users of the DM, with the
	// base role (index 0; the gateway's rooms carry no roles list).
	appData, err := wire.AppDataWithParticipants(roomParticipants(local, target))
	if err != nil {
		return nil, err
	}
	gid, err := c.CreateGroup(ctx, room, mls.GroupOptions{
		ExternalSenders: []mls.ExternalSender{hub},
		Extensions:      []mls.Extension{{Type: mls.ExtensionAppDataDictionary, Data: appData}},
	})
	if err != nil {
		return nil, err
	}
	commit, err := c.Commit(ctx, gid, mls.Changes{Add: kps})
	if err != nil {
		return nil, err
	}
	welcome := &wire.FanoutMessage{
		Timestamp:   uint64(p.now().UnixMilli()),
		Message:     commit.Welcome,
		RatchetTree: wire.RatchetTreeOption{Kind: wire.TreeFull, Tree: commit.RatchetTree},
	}
	if err := p.notifyPeer(ctx, peer, room, welcome); err != nil {
		return nil, err
	}
	return gid, nil
}

// fetchKeyMaterial asks peer for KeyPackages of target's clients, signed
// as c, and returns one for each client the answer has one for. Each must
// be a sound KeyPackage whose credential names target: a peer may hand out
// only its own user's clients, under the name asked for.
func (p *Provider) fetchKeyMaterial(ctx context.Context, c *mls.Client, peer, target, room string) ([][]byte, error) {
	req := &wire.KeyMaterialRequest{
		Protocol:               wire.MLS10,
		RequestingUser:         c.URI(),
		TargetUser:             target,
		RoomID:                 room,
		AcceptableCipherSuites: []uint16{p.mls.CipherSuite()},
		RequesterSignatureKey:  c.SignatureKey(),
		RequesterCredential:    c.Credential(),
	}
	tbs, err := req.TBS()
	if err != nil {
		return nil, err
	}
	if req.Signature, err = c.Sign(tbs); err != nil {
		return nil, err
	}
	body, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	rb, err := p.call(ctx, peer, transport.KeyMaterial, target, body, http.StatusOK)
	if err != nil {
		return nil, err
	}
	resp, err := wire.UnmarshalKeyMaterialResponse(rb)
	if err != nil {
		return nil, fmt.Errorf("provider: keyMaterial from %s: %w", peer, err)
	}
	if resp.UserStatus != wire.Success && resp.UserStatus != wire.PartialSuccess {
		return nil, fmt.Errorf("%w: keyMaterial for %s from %s: %s", errRefused, target, peer, resp.UserStatus)
	}
	if resp.UserURI != target {
		return nil, fmt.Errorf("%w: keyMaterial for %s from %s answers for %q", errRefused, target, peer, resp.UserURI)
	}
	var kps [][]byte
	for _, ck := range resp.Clients {
		if ck.Status != wire.ClientSuccess {
			continue
		}
		who, err := p.mls.KeyPackageIdentity(ck.KeyPackage)
		if err != nil {
			return nil, fmt.Errorf("%w: keyMaterial for %s from %s: client %s: %w", errRefused, target, peer, ck.ClientURI, err)
		}
		if who != target {
			return nil, fmt.Errorf("%w: keyMaterial for %s from %s: client %s's KeyPackage names %q", errRefused, target, peer, ck.ClientURI, who)
		}
		kps = append(kps, ck.KeyPackage)
	}
	if len(kps) == 0 {
		return nil, fmt.Errorf("%w: keyMaterial for %s from %s: %s without a KeyPackage", errRefused, target, peer, resp.UserStatus)
	}
	return kps, nil
}

// errRefused: a peer answered, and the answer means the message cannot
// reach its room (no key material, not allowed).
var errRefused = errors.New("provider: refused by peer")

// call sends a request to peer and returns the body of an answer with the
// wanted status. Network trouble and 5xx are transient; other statuses are
// refusals.
func (p *Provider) call(ctx context.Context, peer string, ep transport.Endpoint, param string, body []byte, want int) ([]byte, error) {
	status, rb, err := p.client.Do(ctx, peer, ep, param, body)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s at %s: %w", errPeerUnavailable, ep, peer, err)
	case status == want:
		return rb, nil
	case status >= 500 || status == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: %s at %s: status %d", errPeerUnavailable, ep, peer, status)
	}
	return nil, fmt.Errorf("%w: %s at %s: status %d: %.200s", errRefused, ep, peer, status, rb)
}

// notifyPeer delivers FanoutMessages to a follower.
func (p *Provider) notifyPeer(ctx context.Context, peer, room string, msgs ...*wire.FanoutMessage) error {
	body, err := wire.MarshalNotify(msgs...)
	if err != nil {
		return err
	}
	_, err = p.call(ctx, peer, transport.Notify, room, body, http.StatusCreated)
	return err
}

// fanout sends an MLS message of a room hosted here to its followers but
// skip.
func (p *Provider) fanout(ctx context.Context, rec *roomRecord, skip string, fm *wire.FanoutMessage) error {
	var errs []error
	for _, f := range rec.Followers {
		if f == skip {
			continue
		}
		if err := p.notifyPeer(ctx, f, rec.Room, fm); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hosted returns the record of a room hosted here whose follower peer is.
func (p *Provider) hosted(ctx context.Context, room, peer string) (*roomRecord, error) {
	rec, _, err := p.rooms.get(ctx, room)
	if err != nil {
		return nil, err
	}
	if rec.Hub != p.domain || rec.Creating != "" {
		return nil, fmt.Errorf("%w: %s is not hosted here", errNoRoom, room)
	}
	if !slices.Contains(rec.Followers, strings.ToLower(peer)) {
		return nil, fmt.Errorf("%w: %s has no member in %s", errForbidden, peer, room)
	}
	return rec, nil
}

// submitMessage takes an application message a follower's member sends to
// a room hosted here: the hub decrypts it for its own phone users, stores
// it for them, and fans it out to the other followers before accepting.
func (p *Provider) submitMessage(ctx context.Context, r *transport.Request) transport.Response {
	return exchange(r.Body, wire.UnmarshalSubmitMessageRequest, func(req *wire.SubmitMessageRequest) (*wire.SubmitMessageResponse, error) {
		return p.submitted(ctx, r.Peer, r.Param, req)
	})
}

func (p *Provider) submitted(ctx context.Context, peer, room string, req *wire.SubmitMessageRequest) (*wire.SubmitMessageResponse, error) {
	rec, err := p.hosted(ctx, room, peer)
	if err != nil {
		return nil, err
	}
	notAllowed := &wire.SubmitMessageResponse{Protocol: wire.MLS10, Status: wire.SubmitNotAllowed}
	if domainOf(req.SendingURI) != strings.ToLower(peer) {
		p.m.fanin.WithLabelValues("application", "rejected").Inc()
		return notAllowed, nil
	}
	info, err := wire.InspectMLSMessage(req.AppMessage)
	if err != nil {
		return nil, err
	}
	if info.WireFormat != wire.PrivateMessage || info.ContentType != wire.Application {
		return nil, fmt.Errorf("%w: appMessage is not an application PrivateMessage", wire.ErrMalformed)
	}
	rcv, err := p.decrypt(ctx, rec, req.AppMessage, info)
	accepted := &wire.SubmitMessageResponse{Protocol: wire.MLS10, Status: wire.Accepted, AcceptedTimestamp: uint64(p.now().UnixMilli())}
	switch {
	case errors.Is(err, mls.ErrReplay):
		p.m.fanin.WithLabelValues("application", "duplicate").Inc()
		return accepted, nil // taken before; its answer was lost
	case errors.Is(err, mls.ErrWrongEpoch):
		st, serr := p.groupState(ctx, rec)
		if serr != nil {
			return nil, serr
		}
		p.m.fanin.WithLabelValues("application", "rejected").Inc()
		return &wire.SubmitMessageResponse{Protocol: wire.MLS10, Status: wire.EpochTooOld, CurrentEpoch: st.Epoch}, nil
	case transient(err):
		return nil, err
	case err != nil:
		p.log.Info("submitMessage refused", "peer", peer, "room", room, "err", err)
		p.m.fanin.WithLabelValues("application", "rejected").Inc()
		return notAllowed, nil
	}
	if rcv.Sender != req.SendingURI {
		p.m.fanin.WithLabelValues("application", "rejected").Inc()
		return notAllowed, nil
	}
	if err := p.toPhones(ctx, rec, rcv); err != nil {
		return nil, err
	}
	fm := &wire.FanoutMessage{Timestamp: accepted.AcceptedTimestamp, Message: req.AppMessage}
	if err := p.fanout(ctx, rec, strings.ToLower(peer), fm); err != nil {
		return nil, err
	}
	p.m.fanin.WithLabelValues("application", "delivered").Inc()
	return accepted, nil
}

func (p *Provider) groupState(ctx context.Context, rec *roomRecord) (*mls.GroupState, error) {
	c, err := p.mls.Client(ctx, rec.Local[0])
	if err != nil {
		return nil, err
	}
	return c.Group(ctx, rec.GroupID)
}

// update takes a commit or proposal a follower's member sends to a room
// hosted here: it is applied to the hub's own members and fanned out to
// the other followers, with the Welcome it carries for new members.
func (p *Provider) update(ctx context.Context, r *transport.Request) transport.Response {
	return exchange(r.Body, wire.UnmarshalHandshakeBundle, func(b *wire.HandshakeBundle) (*wire.UpdateRoomResponse, error) {
		return p.updated(ctx, r.Peer, r.Param, b)
	})
}

// followerMay is the hub's policy for a follower's handshakes: peer may
// propose and commit only as one of its own users, and a commit of its may
// add and remove only its own users' clients. The other providers' users,
// the gateway's phone users included, are added and removed by their own
// providers (and the hub) alone.
func followerMay(peer string) func(*mls.Handshake) error {
	peer = strings.ToLower(peer)
	return func(h *mls.Handshake) error {
		if domainOf(h.Sender) != peer {
			return fmt.Errorf("%s sent a handshake of %q", peer, h.Sender)
		}
		if h.SelfRemoved {
			return fmt.Errorf("%s's commit removes a phone user of this gateway", peer)
		}
		for _, m := range slices.Concat(h.Added, h.Removed) {
			if domainOf(m.URI) != peer {
				return fmt.Errorf("%s's commit adds or removes %q (leaf %d)", peer, m.URI, m.Leaf)
			}
		}
		return nil
	}
}

func (p *Provider) updated(ctx context.Context, peer, room string, b *wire.HandshakeBundle) (*wire.UpdateRoomResponse, error) {
	rec, err := p.hosted(ctx, room, peer)
	if err != nil {
		return nil, err
	}
	info, err := wire.InspectMLSMessage(b.ProposalOrCommit)
	if err != nil {
		return nil, err
	}
	if info.WireFormat != wire.PublicMessage || info.ContentType == wire.Application {
		return nil, fmt.Errorf("%w: proposalOrCommit is not a PublicMessage handshake", wire.ErrMalformed)
	}
	_, err = p.applyHandshake(ctx, room, b.ProposalOrCommit, info, followerMay(peer))
	switch {
	case errors.Is(err, mls.ErrWrongEpoch):
		st, serr := p.groupState(ctx, rec)
		if serr != nil {
			return nil, serr
		}
		return &wire.UpdateRoomResponse{Code: wire.WrongEpoch, CurrentEpoch: st.Epoch}, nil
	case transient(err):
		return nil, err
	case err != nil:
		return &wire.UpdateRoomResponse{Code: wire.NotAllowed, ErrorDescription: err.Error()}, nil
	}
	// Applied here, the handshake is the room's: a follower that does not
	// take it (after the transport's retries) is logged, and the sender
	// still gets success, which it would never get by sending it again.
	ts := uint64(p.now().UnixMilli())
	fm := &wire.FanoutMessage{Timestamp: ts, Message: b.ProposalOrCommit}
	if info.ContentType == wire.Proposal {
		fm.MoreProposals = b.MoreProposals
	}
	if err := p.fanout(ctx, rec, strings.ToLower(peer), fm); err != nil {
		p.log.Warn("handshake not taken by every follower", "room", room, "from", peer, "err", err)
	}
	if b.Welcome != nil {
		// followerMay let the commit add the sender's own users only, so
		// its Welcome is for the sender's provider alone.
		w := &wire.FanoutMessage{Timestamp: ts, Message: wire.WrapMLSMessage(wire.Welcome, b.Welcome), RatchetTree: b.RatchetTree}
		if err := p.notifyPeer(ctx, strings.ToLower(peer), room, w); err != nil {
			p.log.Warn("Welcome not taken by its follower", "room", room, "from", peer, "err", err)
		}
	}
	return &wire.UpdateRoomResponse{Code: wire.UpdateSuccess, AcceptedTimestamp: ts}, nil
}
