package sip

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/answers"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/fthttp"
	"github.com/mimigw/mimigw/sip/reslist"
)

// fileTransfer reads an FT-HTTP descriptor into the file it offers.
func fileTransfer(body []byte) (*gateway.File, error) {
	d, err := fthttp.Parse(body)
	if err != nil {
		return nil, err
	}
	f := fileOf(&d.File)
	if d.Thumbnail != nil {
		f.Thumbnail = fileOf(d.Thumbnail)
	}
	return f, nil
}

func fileOf(in *fthttp.Info) *gateway.File {
	f := &gateway.File{URL: in.URL, Name: in.Name, ContentType: in.ContentType, Until: in.Until}
	if in.Size > 0 {
		f.Size = uint64(in.Size)
	}
	return f
}

// fileTransferBody writes the FT-HTTP descriptor of a file.
func fileTransferBody(f *gateway.File) ([]byte, error) {
	if f.URL == "" || f.ContentType == "" {
		return nil, fmt.Errorf("file without URL or content type")
	}
	d := fthttp.Descriptor{File: infoOf(f)}
	d.File.Disposition = "render"
	if f.Thumbnail != nil {
		t := infoOf(f.Thumbnail)
		t.Name = ""
		d.Thumbnail = &t
	}
	return d.Bytes(), nil
}

func infoOf(f *gateway.File) fthttp.Info {
	return fthttp.Info{Size: int64(f.Size), Name: f.Name, ContentType: f.ContentType, URL: f.URL, Until: f.Until}
}

// oneToMany takes a one-to-many MESSAGE (RFC 5365: a recipient list and a
// CPIM message in multipart/mixed) and hands the message to the gateway
// once per recipient, each with the same Ref. The answer is 503 if any
// copy could not be made durable (the sender resends; the copies already
// taken are recognised by their Ref), else 202 if any was taken, else the
// first refusal.
func (e *Edge) oneToMany(ctx context.Context, req *sip.Request, in inbound, contentType string, body []byte) answers.Answer {
	entries, msg, err := reslist.SplitRecipientList(contentType, body)
	if err != nil {
		return e.badRequest("recipient_list", 400, err)
	}
	if len(entries) > e.cfg.MaxRecipients {
		e.m.badBodies.WithLabelValues("recipient_list").Inc()
		return answers.Answer{Status: 403, Reason: fmt.Sprintf("Forbidden: %d recipients, limit %d", len(entries), e.cfg.MaxRecipients)}
	}
	m, err := cpim.Parse(msg)
	if err != nil {
		return e.badRequest("cpim", 400, err)
	}
	var refusal *answers.Answer
	accepted, unavailable := 0, 0
	for _, entry := range entries {
		to, err := uri.ParseNumber(entry.URI, e.cfg.DefaultRegion)
		if err != nil {
			if refusal == nil {
				a := e.badRequest("recipient_list", 400, fmt.Errorf("recipient: %w", err))
				refusal = &a
			}
			continue
		}
		one := in
		one.to = to
		a := e.cpimMessage(ctx, one, m)
		switch {
		case a.Status >= 200 && a.Status < 300:
			accepted++
		case a.Status == 503:
			unavailable++
		case refusal == nil:
			refusal = &a
		}
	}
	switch {
	case unavailable > 0:
		return e.tryLater()
	case accepted > 0:
		return answers.Answer{Status: 202}
	case refusal != nil:
		return *refusal
	}
	return e.badRequest("recipient_list", 400, reslist.ErrNoRecipients)
}
