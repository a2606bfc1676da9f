package sdp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// A chat INVITE may carry the chat's first message beside its offer (OMA
// CPM and GSMA RCC.07: multipart/mixed with application/sdp and
// message/cpim parts), instead of sending it over MSRP once the session is
// up.

// BodyPart is one part of a multipart INVITE body other than the offer.
type BodyPart struct {
	ContentType string // as written, parameters included
	Body        []byte
}

// Bounds on a multipart INVITE body.
const (
	maxBodyParts    = 8
	maxBodyPartSize = 256 << 10
)

// ErrNoOffer: an INVITE body with no SDP offer in it.
var ErrNoOffer = errors.New("no SDP offer")

// SplitInviteBody takes the SDP offer out of an INVITE's body: the body
// itself when contentType is application/sdp, or the first
// application/sdp part of a multipart/mixed body, whose other parts come
// back in order. A body without an offer, a multipart body that does not
// parse, more than 8 parts or a part over 256 KiB is an error (the caller
// answers 488 or 400). The offer is not parsed here.
func SplitInviteBody(contentType string, body []byte) (offer []byte, others []BodyPart, err error) {
	mt, params, perr := mime.ParseMediaType(contentType)
	switch {
	case perr != nil || len(body) == 0:
		return nil, nil, ErrNoOffer
	case mt == ContentType:
		return body, nil, nil
	case mt != "multipart/mixed":
		return nil, nil, fmt.Errorf("%w: the body is %s", ErrNoOffer, mt)
	case params["boundary"] == "":
		return nil, nil, errors.New("sdp: multipart body without a boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i := 0; ; i++ {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sdp: multipart body: %w", err)
		}
		if i == maxBodyParts {
			return nil, nil, fmt.Errorf("sdp: multipart body of more than %d parts", maxBodyParts)
		}
		b, err := io.ReadAll(io.LimitReader(part, maxBodyPartSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("sdp: multipart body: %w", err)
		}
		if len(b) > maxBodyPartSize {
			return nil, nil, fmt.Errorf("sdp: multipart part %d over %d bytes", i+1, maxBodyPartSize)
		}
		ct := part.Header.Get("Content-Type")
		if pt, _, _ := mime.ParseMediaType(ct); strings.EqualFold(pt, ContentType) && offer == nil {
			offer = b
			continue
		}
		others = append(others, BodyPart{ContentType: ct, Body: b})
	}
	if offer == nil {
		return nil, nil, fmt.Errorf("%w among the multipart body's parts", ErrNoOffer)
	}
	return offer, others, nil
}
