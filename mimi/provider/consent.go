package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
)

// Phone users cannot be asked, so the gateway answers a consent request on
// their behalf by the rule that decides whose rooms they join
// (provider.accept_rooms_from): a request from such a peer is granted, by
// an updateConsent sent back to the requester's provider; any other, and
// one for a number the gateway does not serve, is answered 201 and
// nothing more, so that a peer cannot tell the two apart.

// grantQueue bounds the grants waiting to be sent; a request that finds it
// full is answered like a refused one, and its requester may ask again.
const grantQueue = 256

// requestConsent takes a ConsentEntry asking one of the phone users for
// consent (or cancelling such a request).
func (p *Provider) requestConsent(_ context.Context, r *transport.Request) transport.Response {
	c, err := wire.UnmarshalConsentEntry(r.Body)
	if err == nil {
		err = p.checkConsentRequest(r.Peer, r.Param, c)
	}
	if err != nil {
		p.m.answered.WithLabelValues("requestConsent", "refused").Inc()
		return answer(0, nil, err)
	}
	outcome := "ignored"
	if c.Operation == wire.ConsentRequest {
		outcome = p.consider(r.Peer, c)
	}
	p.m.answered.WithLabelValues("requestConsent", outcome).Inc()
	p.log.Info("consent request", "peer", r.Peer, "operation", c.Operation, "requester", c.RequesterURI, "target", c.TargetURI, "room", c.RoomID, "outcome", outcome)
	return transport.Response{Status: http.StatusCreated}
}

// checkConsentRequest refuses what no peer may send here: a request for
// another domain's users, on behalf of a user of another provider than the
// one sending it, or an answer (grant, revoke) that belongs on
// updateConsent.
func (p *Provider) checkConsentRequest(peer, targetDomain string, c *wire.ConsentEntry) error {
	switch {
	case !strings.EqualFold(targetDomain, p.domain) || domainOf(c.TargetURI) != p.domain:
		return fmt.Errorf("%w: consent asked of %s (target %q) at %s", wire.ErrMalformed, targetDomain, c.TargetURI, p.domain)
	case domainOf(c.RequesterURI) != strings.ToLower(peer):
		return fmt.Errorf("%w: %s asks consent for requester %q", errForbidden, peer, c.RequesterURI)
	case c.RoomID != "" && domainOf(c.RoomID) == "":
		return fmt.Errorf("%w: roomId %q is not a MIMI URI", wire.ErrMalformed, c.RoomID)
	case c.Operation != wire.ConsentRequest && c.Operation != wire.ConsentCancel:
		return fmt.Errorf("%w: consent operation %s belongs on updateConsent", wire.ErrMalformed, c.Operation)
	}
	return nil
}

// consider queues a grant for a request the rule accepts and says what
// became of the request.
func (p *Provider) consider(peer string, c *wire.ConsentEntry) string {
	if _, ok := p.userNumber(c.TargetURI); !ok || !p.conf().acceptsRoomsFrom(peer) {
		return "not_granted"
	}
	select {
	case p.grants <- grant{peer: strings.ToLower(peer), entry: c}:
		return "granted"
	default:
		return "queue_full"
	}
}

// grant is a consent to send to a requester's provider.
type grant struct {
	peer  string
	entry *wire.ConsentEntry
}

// sendGrants sends the queued grants until ctx ends.
func (p *Provider) sendGrants(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-p.grants:
			if err := p.sendGrant(ctx, g); err != nil {
				p.log.Warn("consent grant not delivered", "peer", g.peer, "requester", g.entry.RequesterURI, "target", g.entry.TargetURI, "err", err)
			}
		}
	}
}

// sendGrant answers one request with a grant. It carries a KeyPackage of
// the phone user when the requester's provider may have one, as for
// keyMaterial: for a room it hosts, or for no room in particular.
func (p *Provider) sendGrant(ctx context.Context, g grant) error {
	ce := &wire.ConsentEntry{
		Operation:    wire.ConsentGrant,
		RequesterURI: g.entry.RequesterURI,
		TargetURI:    g.entry.TargetURI,
		RoomID:       g.entry.RoomID,
	}
	if g.entry.RoomID == "" || domainOf(g.entry.RoomID) == g.peer {
		kp, _, err := p.oneTimeKeyPackage(ctx, g.entry.TargetURI)
		switch {
		case errors.Is(err, mls.ErrNoKeyPackage):
			// A grant without key material: the hub asks keyMaterial later.
		case err != nil:
			return err
		default:
			ce.KeyPackages = [][]byte{kp}
		}
	}
	body, err := ce.Marshal()
	if err != nil {
		return err
	}
	_, err = p.call(ctx, g.peer, transport.UpdateConsent, domainOf(g.entry.RequesterURI), body, http.StatusCreated)
	return err
}

// oneTimeKeyPackage takes a KeyPackage of the phone user user from its
// pool, filling the pool first when only the last-resort package is left
// (as on a user's first request), and returns it as a bare KeyPackage;
// lastResort says that the pool could not be filled.
func (p *Provider) oneTimeKeyPackage(ctx context.Context, user string) (kp []byte, lastResort bool, err error) {
	c, err := p.mls.Client(ctx, user)
	if err != nil {
		return nil, false, err
	}
	pkg, err := c.KeyPackage(ctx)
	if err == nil && pkg.LastResort {
		if _, ferr := c.FillPool(ctx); ferr == nil {
			pkg, err = c.KeyPackage(ctx)
		}
	}
	if err != nil {
		return nil, false, err
	}
	_, kp, err = wire.UnwrapMLSMessage(pkg.Message)
	return kp, pkg.LastResort, err
}
