package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
)

// identifierQuery answers a peer asking who a phone number is: the phone
// user's MIMI URI when the gateway serves the number. Only phone(4) queries
// are answered; any other field is unsupportedField.
func (p *Provider) identifierQuery(ctx context.Context, r *transport.Request) transport.Response {
	if !strings.EqualFold(r.Param, p.domain) {
		return transport.Response{Status: http.StatusNotFound, Body: []byte("provider: identifierQuery for domain " + r.Param)}
	}
	return exchange(r.Body, wire.UnmarshalIdentifierRequest, func(req *wire.IdentifierRequest) (*wire.IdentifierResponse, error) {
		resp := p.identify(req)
		p.m.answered.WithLabelValues("identifierQuery", resp.Code.String()).Inc()
		return resp, nil
	})
}

func (p *Provider) identify(req *wire.IdentifierRequest) *wire.IdentifierResponse {
	if len(req.QueryElements) == 0 {
		return &wire.IdentifierResponse{Code: wire.IDNotFound}
	}
	var user string
	for _, q := range req.QueryElements {
		if q.Type != wire.SearchPhone {
			return &wire.IdentifierResponse{Code: wire.IDUnsupportedField}
		}
		// The query holds an exact "+E.164" number.
		n, err := uri.ParseNumber(q.Value, "")
		if err != nil || string(n) != q.Value || !p.conf().serves(n) {
			return &wire.IdentifierResponse{Code: wire.IDNotFound}
		}
		u := uri.UserURI(p.domain, n)
		if user != "" && user != u {
			return &wire.IdentifierResponse{Code: wire.IDNotFound} // every element must match the same user
		}
		user = u
	}
	return &wire.IdentifierResponse{Code: wire.IDSuccess, URIs: []string{user}}
}

// lookupNumber asks the configured peers, in order, which of them serves
// n, and remembers the answer for LookupTTL. It returns the user's MIMI
// URI and the peer's domain, or "" when none does.
func (p *Provider) lookupNumber(ctx context.Context, n uri.Number) (user, peer string, err error) {
	now := p.now()
	if v, ok := p.lookups.Load(n); ok {
		if l := v.(lookup); now.Before(l.until) {
			p.m.lookups.WithLabelValues("cached").Inc()
			return l.user, l.peer, nil
		}
	}
	req := &wire.IdentifierRequest{QueryElements: []wire.QueryElement{{Type: wire.SearchPhone, Value: string(n)}}}
	body, err := req.Marshal()
	if err != nil {
		return "", "", err
	}
	var failed error
	for _, d := range p.client.Peers() {
		status, rb, err := p.client.Do(ctx, d, transport.IdentifierQuery, d, body)
		if err != nil || status != http.StatusOK {
			failed = fmt.Errorf("%w: identifierQuery at %s: status %d: %v", errPeerUnavailable, d, status, err)
			p.log.Warn("identifierQuery failed", "peer", d, "number", n, "status", status, "err", err)
			continue
		}
		resp, err := wire.UnmarshalIdentifierResponse(rb)
		if err != nil {
			failed = fmt.Errorf("identifierQuery at %s: %w", d, err)
			p.log.Warn("identifierQuery answer unreadable", "peer", d, "err", err)
			continue
		}
		if resp.Code != wire.IDSuccess || len(resp.URIs) != 1 {
			continue
		}
		// A peer vouches only for its own users.
		if domainOf(resp.URIs[0]) != strings.ToLower(d) {
			p.log.Warn("identifierQuery answer names another provider's user", "peer", d, "uri", resp.URIs[0])
			continue
		}
		user, peer = resp.URIs[0], d
		break
	}
	if user == "" && failed != nil {
		// Not knowing is not "nobody": ask again next time.
		p.m.lookups.WithLabelValues("error").Inc()
		return "", "", failed
	}
	outcome := "found"
	if user == "" {
		outcome = "not_found"
	}
	p.m.lookups.WithLabelValues(outcome).Inc()
	p.lookups.Store(n, lookup{user: user, peer: peer, until: now.Add(p.conf().LookupTTL)})
	return user, peer, nil
}
