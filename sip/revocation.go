package sip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/answers"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/revoke"
)

type revokeTemplate = revoke.Template

// loadRevokeTemplate reads the configured revocation body template, or
// returns the built-in one.
func loadRevokeTemplate(file string) (*revoke.Template, error) {
	if file == "" {
		return revoke.DefaultRequestTemplate(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return revoke.ParseTemplate(string(b))
}

// Revoke asks the network to revoke a message it accepted but has not
// delivered: a pager-mode MESSAGE to the original recipient carrying CPIM
// with the revocation body (the configured template, naming r.Ref) and the
// original Conversation-ID and Contribution-ID. It returns once the
// network answered the MESSAGE (200); the outcome arrives later as a
// MESSAGE of its own, handed to Receiver.RevocationResult. Errors as for
// SendRCS.
func (e *Edge) Revoke(ctx context.Context, r gateway.Revocation) error {
	from, to := e.numberURI(r.From), e.numberURI(r.To)
	body, err := e.revokeBody.Execute(revoke.Data{
		MessageID:      r.Ref,
		Recipient:      to.String(),
		ConversationID: r.ConversationID,
		ContributionID: r.ContributionID,
	})
	if err != nil {
		return fmt.Errorf("sip: revoke %s to %s: %w: %w", r.Ref, r.To, err, gateway.ErrRejected)
	}
	c := cpim.New(from.String(), to.String(), newMessageID(), time.Now(), 0, revoke.ContentType, body)
	if err := e.sendMessage(ctx, r.From, r.To, r.ConversationID, r.ContributionID, c.Bytes(), typeCPIM); err != nil {
		return fmt.Errorf("sip: revoke %s to %s: %w", r.Ref, r.To, err)
	}
	return nil
}

// revocationResult hands the network's answer to a revocation to the
// gateway. ref is the CPIM imdn.Message-ID of the result, which names the
// revoked message when the body does not.
func (e *Edge) revocationResult(ctx context.Context, in inbound, ref string, body []byte) answers.Answer {
	res, err := revoke.ParseResult(body)
	if err != nil {
		return e.badRequest("revocation", 400, err)
	}
	id := res.MessageID
	if id == "" {
		id = ref
	}
	if id == "" {
		return e.badRequest("revocation", 400, errors.New("revocation result names no message"))
	}
	rr := gateway.RevocationResult{From: in.from, Ref: id, Revoked: res.Success}
	e.m.delivered.WithLabelValues("revocation").Inc()
	return e.outcome(e.call(ctx, func(ctx context.Context) error { return e.recv.RevocationResult(ctx, rr) }), 200, "revocation", in.from)
}
