package sip

import (
	"context"
	"errors"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/answers"
)

// Not wired yet: these wait for sip/fthttp, sip/reslist and sip/revoke.

var errNotYet = errors.New("not supported yet")

func (e *Edge) revocationResult(ctx context.Context, in inbound, ref string, body []byte) answers.Answer {
	return answers.Answer{Status: 415, Reason: "Unsupported Media Type: revocation results not supported yet"}
}

type revokeTemplate struct{}

func loadRevokeTemplate(file string) (*revokeTemplate, error) { return &revokeTemplate{}, nil }

func (e *Edge) Revoke(ctx context.Context, r gateway.Revocation) error { return errNotYet }
