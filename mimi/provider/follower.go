package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
)

// keyMaterial hands a room's hub a one-time KeyPackage of a phone user, so
// that the hub can add them to its room.
func (p *Provider) keyMaterial(ctx context.Context, r *transport.Request) transport.Response {
	return exchange(r.Body, wire.UnmarshalKeyMaterialRequest, func(req *wire.KeyMaterialRequest) (*wire.KeyMaterialResponse, error) {
		resp, err := p.keyMaterialFor(ctx, r.Peer, r.Param, req)
		if err == nil {
			p.m.answered.WithLabelValues("keyMaterial", resp.UserStatus.String()).Inc()
		}
		return resp, err
	})
}

func (p *Provider) keyMaterialFor(ctx context.Context, peer, target string, req *wire.KeyMaterialRequest) (*wire.KeyMaterialResponse, error) {
	if req.TargetUser != target {
		return nil, fmt.Errorf("%w: targetUser %q is not the path's %q", wire.ErrMalformed, req.TargetUser, target)
	}
	// The request must be signed by the requesting user's own key.
	tbs, err := req.TBS()
	if err != nil {
		return nil, err
	}
	if err := mls.VerifySignature(req.RequesterSignatureKey, tbs, req.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", errForbidden, err)
	}
	who, err := p.mls.CredentialIdentity(req.RequesterCredential, req.RequesterSignatureKey)
	if err != nil || who != req.RequestingUser {
		return nil, fmt.Errorf("%w: requester credential names %q, not requestingUser %q (%v)", errForbidden, who, req.RequestingUser, err)
	}
	resp := &wire.KeyMaterialResponse{Protocol: wire.MLS10, UserURI: target}
	n, ok := p.userNumber(target)
	switch {
	case !ok:
		resp.UserStatus = wire.UserUnknown
		return resp, nil
	case domainOf(req.RoomID) != strings.ToLower(peer) || !p.conf().acceptsRoomsFrom(peer):
		// Key material goes only to the room's own hub, for peers the
		// phone users accept rooms from.
		resp.UserStatus = wire.NoConsentForThisRoom
		return resp, nil
	case !slices.Contains(req.AcceptableCipherSuites, p.mls.CipherSuite()):
		resp.UserStatus = wire.NoCompatibleMaterial
		return resp, nil
	}
	kp, lastResort, err := p.oneTimeKeyPackage(ctx, target)
	if errors.Is(err, mls.ErrNoKeyPackage) {
		resp.UserStatus = wire.NoCompatibleMaterial
		resp.Clients = []wire.ClientKeyMaterial{{Status: wire.KeyMaterialExhausted, ClientURI: target}}
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	resp.UserStatus = wire.Success
	resp.Clients = []wire.ClientKeyMaterial{{Status: wire.ClientSuccess, ClientURI: target, KeyPackage: kp}}
	p.log.Info("key material handed out", "peer", peer, "user", target, "number", n, "room", req.RoomID, "last_resort", lastResort)
	return resp, nil
}

// notify takes what a room's hub fans out: Welcomes that add phone users,
// commits and proposals, and application messages for them. Each message
// is applied in order; an application message is decrypted and stored on
// mimi.to.tel.<digits> for every phone user in the room before the 201.
// What was already applied (a body sent again) is skipped, so the same
// body twice is processed once.
func (p *Provider) notify(ctx context.Context, r *transport.Request) transport.Response {
	room := r.Param
	if u, err := uri.ParseMIMI(room); err != nil || u.Kind != uri.Room || u.String() != room {
		return transport.Response{Status: http.StatusNotFound, Body: []byte(fmt.Sprintf("provider: %q is not a room URI", room))}
	}
	if domainOf(room) != strings.ToLower(r.Peer) {
		return answer(0, nil, fmt.Errorf("%w: %s is not the hub of %s", errForbidden, r.Peer, room))
	}
	msgs, err := wire.UnmarshalNotify(r.Body)
	if err != nil {
		return answer(0, nil, err)
	}
	for i, fm := range msgs {
		if err := p.fanin(ctx, r.Peer, room, fm); err != nil {
			p.log.Info("notify refused", "peer", r.Peer, "room", room, "message", i, "err", err)
			return answer(0, nil, fmt.Errorf("message %d: %w", i, err))
		}
	}
	return transport.Response{Status: http.StatusCreated}
}

// fanin applies one FanoutMessage of room's hub.
func (p *Provider) fanin(ctx context.Context, hub, room string, fm *wire.FanoutMessage) error {
	info, err := wire.InspectMLSMessage(fm.Message)
	if err != nil {
		return err
	}
	kind, outcome := "application", "delivered"
	switch {
	case info.WireFormat == wire.Welcome:
		kind = "welcome"
		outcome, err = p.join(ctx, hub, room, fm)
	case info.ContentType == wire.Application:
		outcome, err = p.deliver(ctx, room, fm.Message, info)
	default:
		kind = "commit"
		if info.ContentType == wire.Proposal {
			kind = "proposal"
		}
		outcome, err = p.applyHandshake(ctx, room, fm.Message, info, nil) // the hub decides what its room takes
	}
	switch {
	case err == nil:
	case transient(err):
		outcome = "retry"
	default:
		outcome = "rejected"
	}
	p.m.fanin.WithLabelValues(kind, outcome).Inc()
	return err
}

// join adds the phone users a Welcome admits to the room.
func (p *Provider) join(ctx context.Context, hub, room string, fm *wire.FanoutMessage) (string, error) {
	if !p.conf().acceptsRoomsFrom(hub) {
		return "", fmt.Errorf("%w: phone users do not join rooms of %s", errForbidden, hub)
	}
	if fm.RatchetTree.Kind != wire.TreeFull {
		return "", fmt.Errorf("%w: welcome with ratchet tree option %d; only full(1) is supported", wire.ErrMalformed, fm.RatchetTree.Kind)
	}
	joined, err := p.mls.JoinWelcome(ctx, fm.Message, fm.RatchetTree.Tree, room)
	switch {
	case errors.Is(err, mls.ErrKeyPackageUsed):
		return "duplicate", nil // joined before: the same Welcome again
	case errors.Is(err, mls.ErrUnknownKeyPackage):
		return "not_ours", nil // a Welcome for another provider's clients
	case err != nil:
		return "", err
	}
	list, lerr := participants(joined[0].Extensions)
	if lerr != nil {
		// The group is sound MLS; only its MIMI room state is not: the
		// room goes on without a participant list.
		p.log.Warn("room's participant list unreadable", "room", room, "err", lerr)
	}
	_, err = p.rooms.update(ctx, room, func() *roomRecord {
		return &roomRecord{Room: room, Hub: strings.ToLower(hub), Since: p.now()}
	}, func(rec *roomRecord) error {
		for _, j := range joined {
			if !slices.Equal(rec.GroupID, j.GroupID) {
				// A room's group started anew: its old members are gone.
				rec.GroupID, rec.Local = j.GroupID, nil
			}
			rec.Local = addUnique(rec.Local, j.User)
		}
		rec.Participants = list
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, j := range joined {
		p.m.rooms.WithLabelValues("joined").Inc()
		p.log.Info("phone user joined room", "user", j.User, "room", room, "epoch", j.Epoch, "members", len(j.Members))
	}
	return "applied", nil
}

// applyHandshake applies a commit or proposal to every local member;
// allow, when not nil, may refuse it first (mls.Client.ProcessHandshakeIf).
func (p *Provider) applyHandshake(ctx context.Context, room string, msg []byte, info wire.MLSInfo, allow func(*mls.Handshake) error) (string, error) {
	rec, _, err := p.rooms.get(ctx, room)
	if err != nil {
		return "", err
	}
	if !slices.Equal(info.GroupID, rec.GroupID) {
		return "", fmt.Errorf("%w: handshake for group %x, the room's is %x", wire.ErrMalformed, info.GroupID, rec.GroupID)
	}
	outcome := "duplicate"
	var removed []string
	var list wire.ParticipantList
	listRead := false
	for _, user := range rec.Local {
		c, err := p.mls.Client(ctx, user)
		if err != nil {
			return "", err
		}
		h, err := c.ProcessHandshakeIf(ctx, rec.GroupID, msg, allow)
		if errors.Is(err, mls.ErrWrongEpoch) {
			st, serr := c.Group(ctx, rec.GroupID)
			if serr == nil && info.Epoch < st.Epoch {
				continue // applied before
			}
		}
		if err != nil {
			return "", err
		}
		outcome = "applied"
		if h.SelfRemoved {
			removed = append(removed, user)
			continue
		}
		if !listRead && info.ContentType == wire.Commit {
			// A commit may change the GroupContext, participant list
			// included (a GroupContextExtensions proposal).
			if st, err := c.Group(ctx, rec.GroupID); err == nil {
				var lerr error
				if list, lerr = participants(st.Extensions); lerr != nil {
					p.log.Warn("room's participant list unreadable", "room", room, "epoch", st.Epoch, "err", lerr)
				}
				listRead = lerr == nil
			}
		}
	}
	changed := listRead && !slices.Equal(list, rec.Participants)
	if len(removed) > 0 || changed {
		if _, err := p.rooms.update(ctx, room, func() *roomRecord { return rec }, func(r *roomRecord) error {
			r.Local = slices.DeleteFunc(r.Local, func(u string) bool { return slices.Contains(removed, u) })
			if changed {
				r.Participants = list
			}
			return nil
		}); err != nil {
			return "", err
		}
		p.m.rooms.WithLabelValues("left").Add(float64(len(removed)))
	}
	return outcome, nil
}

// deliver decrypts an application message of room and stores it for each
// of the room's phone users on mimi.to.tel.<digits>. It returns the
// sender's URI as well.
func (p *Provider) deliver(ctx context.Context, room string, msg []byte, info wire.MLSInfo) (string, error) {
	rec, _, err := p.rooms.get(ctx, room)
	if err != nil {
		return "", err
	}
	rcv, err := p.decrypt(ctx, rec, msg, info)
	switch {
	case errors.Is(err, mls.ErrReplay), errors.Is(err, mls.ErrOwnMessage):
		return "duplicate", nil
	case err != nil:
		return "", err
	}
	if err := p.ownSender(ctx, rcv); err != nil {
		return "", err
	}
	if err := p.toPhones(ctx, rec, rcv); err != nil {
		return "", err
	}
	return "delivered", nil
}

// ownSender refuses a message whose sender's credential names a user of
// the gateway's domain from a leaf that is not that phone user's own
// client: only the gateway speaks for its phone users, whatever leaves a
// hub put in the tree (a basic credential names whom its provider says).
func (p *Provider) ownSender(ctx context.Context, rcv *mls.Received) error {
	if domainOf(rcv.Sender) != p.domain {
		return nil
	}
	if _, ok := p.userNumber(rcv.Sender); ok {
		c, err := p.mls.Client(ctx, rcv.Sender)
		if err != nil {
			return err
		}
		if bytes.Equal(c.SignatureKey(), rcv.SenderKey) {
			return nil
		}
	}
	return fmt.Errorf("%w: a message as %s from leaf %d, which is not that phone user's client", errForbidden, rcv.Sender, rcv.SenderLeaf)
}

// decrypt opens an application message of the room rec as one of its local
// members.
func (p *Provider) decrypt(ctx context.Context, rec *roomRecord, msg []byte, info wire.MLSInfo) (*mls.Received, error) {
	if len(rec.Local) == 0 || rec.Creating != "" {
		return nil, fmt.Errorf("%w: no phone user of this gateway is in %s", errNoRoom, rec.Room)
	}
	if !slices.Equal(info.GroupID, rec.GroupID) {
		return nil, fmt.Errorf("%w: message for group %x, the room's is %x", wire.ErrMalformed, info.GroupID, rec.GroupID)
	}
	c, err := p.mls.Client(ctx, rec.Local[0])
	if err != nil {
		return nil, err
	}
	return c.Decrypt(ctx, rec.GroupID, msg)
}

// toPhones stores decrypted MIMI content for every phone user of the room
// but its sender, where the gateway delivers it by RCS or SMS as any MIMI
// message for a phone.
func (p *Provider) toPhones(ctx context.Context, rec *roomRecord, rcv *mls.Received) error {
	m, err := content.Decode(rcv.Content)
	if err != nil {
		return fmt.Errorf("%w: content from %s: %v", mls.ErrMalformed, rcv.Sender, err)
	}
	id, err := m.ID()
	if err != nil {
		return fmt.Errorf("%w: content from %s: %v", mls.ErrMalformed, rcv.Sender, err)
	}
	return p.toLocal(ctx, rec, rcv.Sender, id.String(), rcv.Content)
}

// toLocal publishes message id (MIMI content) of sender for every phone
// user of the room rec but the sender, each on its own subject: the bus
// keeps one copy per recipient, so publishing again is harmless.
func (p *Provider) toLocal(ctx context.Context, rec *roomRecord, sender, id string, data []byte) error {
	for _, user := range rec.Local {
		if user == sender {
			continue
		}
		n, ok := p.userNumber(user)
		if !ok {
			continue
		}
		env := bus.Envelope{ID: id, Sender: sender, Recipient: n.TelURI(), Room: rec.Room, Accepted: p.now()}
		if _, err := p.bus.Publish(ctx, bus.SubjectToPhone(n), env, data); err != nil {
			return err
		}
	}
	return nil
}
