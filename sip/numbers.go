package sip

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/mimi/uri"
)

// uriNumber reads the number a SIP URI names.
func uriNumber(u *sip.Uri, region string) (uri.Number, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URI", uri.ErrBadNumber)
	}
	switch strings.ToLower(u.Scheme) {
	case "tel":
		return uri.ParseNumber("tel:"+u.Raw(), region)
	case "sip", "sips":
		user := u.User
		if user == "" {
			return "", fmt.Errorf("%w: %q has no user part", uri.ErrBadNumber, u.String())
		}
		phone := false
		if v, ok := u.UriParams.Get("user"); ok && strings.EqualFold(v, "phone") {
			phone = true
		}
		if !phone && !strings.HasPrefix(user, "+") {
			return "", fmt.Errorf("%w: %q is not a phone number URI", uri.ErrBadNumber, u.String())
		}
		return uri.ParseNumber(user, region)
	}
	return "", fmt.Errorf("%w: scheme %q", uri.ErrBadNumber, u.Scheme)
}

// numberURI writes n as our configured URI form.
func (e *Edge) numberURI(n uri.Number) sip.Uri {
	if e.cfg.URIForm == "tel" {
		var u sip.Uri
		// A tel URI is kept raw by sipgo; parsing our own E.164 cannot fail.
		_ = sip.ParseUri(n.TelURI(), &u)
		return u
	}
	return sip.Uri{
		Scheme:    "sip",
		User:      n.String(),
		Host:      e.cfg.Domain,
		UriParams: sip.HeaderParams{{K: "user", V: "phone"}},
	}
}
