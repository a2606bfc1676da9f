package reslist

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"

	"github.com/mimigw/mimigw/sip/cpim"
)

// Bounds on the multipart/mixed bodies SplitRecipientList accepts. A
// one-to-many body has two parts; a little room is left for senders that
// add another.
const (
	MaxBodySize = 1 << 20
	MaxParts    = 8
	MaxPartSize = 512 << 10
)

// Errors about a one-to-many body.
var (
	ErrNotMultipart     = errors.New("not a multipart/mixed body")
	ErrNoRecipientList  = errors.New("no recipient-list part")
	ErrNoMessage        = errors.New("no message/cpim part")
	ErrBadMultipart     = errors.New("bad multipart body")
	ErrNoRecipients     = errors.New("empty recipient list")
	errTooManyParts     = fmt.Errorf("%w: more than %d parts", ErrBadMultipart, MaxParts)
	errDuplicateList    = fmt.Errorf("%w: two recipient lists", ErrBadMultipart)
	errDuplicateMessage = fmt.Errorf("%w: two message/cpim parts", ErrBadMultipart)
)

// SplitRecipientList takes apart the body of a one-to-many MESSAGE (RFC
// 5365): a multipart/mixed with an application/resource-lists+xml part
// (Content-Disposition: recipient-list) and a message/cpim part. It returns
// the recipients, with exact duplicate URIs removed so that nobody gets the
// message twice, and the CPIM bytes to deliver to each. Other parts are
// ignored.
func SplitRecipientList(contentType string, body []byte) (recipients []Entry, cpimMsg []byte, err error) {
	recipients, cpimMsg, err = split(contentType, body)
	if err != nil {
		return nil, nil, fmt.Errorf("reslist: %w", err)
	}
	return recipients, cpimMsg, nil
}

func split(contentType string, body []byte) ([]Entry, []byte, error) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || media != "multipart/mixed" {
		return nil, nil, fmt.Errorf("%w: Content-Type %q", ErrNotMultipart, excerpt(contentType))
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, nil, fmt.Errorf("%w: no boundary", ErrNotMultipart)
	}
	if len(body) > MaxBodySize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMultipart, len(body), MaxBodySize)
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var (
		entries  []Entry
		haveList bool
		msg      []byte
	)
	for n := 0; ; n++ {
		part, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadMultipart, err)
		}
		if n == MaxParts {
			return nil, nil, errTooManyParts
		}
		content, err := readPart(part)
		if err != nil {
			return nil, nil, err
		}
		media := cpim.MediaType(part.Header.Get("Content-Type"))
		disposition, _, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		switch {
		case media == ContentType || disposition == Disposition:
			if haveList {
				return nil, nil, errDuplicateList
			}
			haveList = true
			if entries, err = Parse(content); err != nil {
				return nil, nil, fmt.Errorf("recipient-list part: %w", err)
			}
		case media == cpim.ContentType:
			if msg != nil {
				return nil, nil, errDuplicateMessage
			}
			msg = content
		}
	}
	switch {
	case !haveList:
		return nil, nil, ErrNoRecipientList
	case msg == nil:
		return nil, nil, ErrNoMessage
	}
	entries = dedupe(entries)
	if len(entries) == 0 {
		return nil, nil, ErrNoRecipients
	}
	return entries, msg, nil
}

// readPart reads a part's content, bounded, undoing a base64 or
// quoted-printable transfer encoding.
func readPart(part *multipart.Part) ([]byte, error) {
	content, err := io.ReadAll(io.LimitReader(part, MaxPartSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMultipart, err)
	}
	if len(content) > MaxPartSize {
		return nil, fmt.Errorf("%w: part over %d bytes", ErrBadMultipart, MaxPartSize)
	}
	switch strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding"))) {
	case "base64":
		out := make([]byte, base64.StdEncoding.DecodedLen(len(content)))
		n, err := base64.StdEncoding.Decode(out, bytes.TrimSpace(content))
		if err != nil {
			return nil, fmt.Errorf("%w: base64 part: %v", ErrBadMultipart, err)
		}
		return out[:n], nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(content)))
		if err != nil {
			return nil, fmt.Errorf("%w: quoted-printable part: %v", ErrBadMultipart, err)
		}
		return out, nil
	}
	return content, nil
}

func dedupe(entries []Entry) []Entry {
	out := entries[:0]
	seen := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		if _, dup := seen[e.URI]; dup {
			continue
		}
		seen[e.URI] = struct{}{}
		out = append(out, e)
	}
	return out
}

// JoinRecipientList builds a one-to-many body: the Content-Type to send it
// with and the multipart/mixed bytes holding the recipient list and the
// CPIM message.
func JoinRecipientList(recipients []Entry, cpimMsg []byte) (contentType string, body []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	// Writes to a bytes.Buffer do not fail, and the boundary is the
	// writer's own, so the errors below cannot happen.
	list, _ := w.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {ContentType},
		"Content-Disposition": {Disposition},
	})
	_, _ = list.Write(Bytes(recipients))
	msg, _ := w.CreatePart(textproto.MIMEHeader{"Content-Type": {cpim.ContentType}})
	_, _ = msg.Write(cpimMsg)
	_ = w.Close()
	return "multipart/mixed;boundary=" + w.Boundary(), buf.Bytes()
}
