package sdp

import (
	"fmt"
	"strings"
)

// Media types the gateway's MSRP sessions carry.
const (
	TypeCPIM          = "message/cpim"
	TypeText          = "text/plain"
	TypeIMDN          = "message/imdn+xml"
	TypeIsComposing   = "application/im-iscomposing+xml"
	TypeFTHTTP        = "application/vnd.gsma.rcs-ft-http+xml"
	TypeMultipart     = "multipart/mixed"
	TypeBotMessage    = "application/vnd.gsma.botmessage.v1.0+json"
	TypeBotSuggestion = "application/vnd.gsma.botsuggestion.v1.0+json"
	TypeBotResponse   = "application/vnd.gsma.botsuggestion.response.v1.0+json"
)

// DefaultAcceptTypes is what the gateway takes at the top level of an MSRP
// SEND when nothing else is configured: CPIM (what RCS clients send),
// isComposing (sent unwrapped by RCS clients) and bare text/plain (what
// plain RFC 4975 clients send; the identities are the SIP dialog's
// anyway, as they are for RCS chat).
func DefaultAcceptTypes() []string {
	return []string{TypeCPIM, TypeText, TypeIsComposing}
}

// DefaultAcceptWrappedTypes is what the gateway takes inside CPIM when
// nothing else is configured: text, IMDNs, FT-HTTP descriptors,
// isComposing, multipart/mixed (chatbot bodies travel in it) and the
// chatbot types themselves.
func DefaultAcceptWrappedTypes() []string {
	return []string{TypeText, TypeIMDN, TypeFTHTTP, TypeIsComposing, TypeMultipart,
		TypeBotMessage, TypeBotSuggestion, TypeBotResponse}
}

// parseTypeList reads an accept-types or accept-wrapped-types value: media
// types separated by spaces, each "*", "type/*" or "type/subtype",
// optionally with ";parameters" (kept, and ignored when matching).
func parseTypeList(v string) ([]string, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	for _, t := range f {
		if !validType(t) {
			return nil, fmt.Errorf("bad media type %q", clip(t))
		}
	}
	return f, nil
}

func validType(t string) bool {
	base, _, _ := strings.Cut(t, ";")
	if base == "*" {
		return true
	}
	typ, sub, ok := strings.Cut(base, "/")
	return ok && mimeToken(typ) && typ != "*" && (sub == "*" || mimeToken(sub))
}

// mimeToken: RFC 2045 token (visible ASCII but tspecials).
func mimeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?=", c) >= 0 {
			return false
		}
	}
	return true
}

// typeParts splits a list entry into lower-case type and subtype ("*" for
// a wildcard), dropping parameters.
func typeParts(t string) (typ, sub string) {
	base, _, _ := strings.Cut(t, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	if base == "*" {
		return "*", "*"
	}
	typ, sub, _ = strings.Cut(base, "/")
	return typ, sub
}

// wildcards counts the wildcard parts of an entry: 0 for "a/b", 1 for
// "a/*", 2 for "*".
func wildcards(t string) int {
	typ, sub := typeParts(t)
	n := 0
	if typ == "*" {
		n++
	}
	if sub == "*" {
		n++
	}
	return n
}

// matchType reports whether two list entries overlap, and returns the
// narrower of the two (b when they are equally narrow).
func matchType(a, b string) (string, bool) {
	at, as := typeParts(a)
	bt, bs := typeParts(b)
	if at != "*" && bt != "*" && at != bt {
		return "", false
	}
	if as != "*" && bs != "*" && as != bs {
		return "", false
	}
	if wildcards(a) < wildcards(b) {
		return a, true
	}
	return b, true
}

// Intersect returns the media types both lists accept, in the order of
// ours: for each entry of ours that overlaps an entry of theirs, the
// narrower of the two ("text/*" and "text/plain" give "text/plain"; "*"
// and ours give ours). Duplicates are dropped.
func Intersect(theirs, ours []string) []string {
	var out []string
	for _, o := range ours {
		for _, t := range theirs {
			m, ok := matchType(t, o)
			if !ok || containsType(out, m) {
				continue
			}
			out = append(out, m)
		}
	}
	return out
}

// Accepts reports whether the list accepts media type t.
func Accepts(list []string, t string) bool {
	for _, e := range list {
		if _, ok := matchType(e, t); ok {
			return true
		}
	}
	return false
}

func containsType(list []string, t string) bool {
	tt, ts := typeParts(t)
	for _, e := range list {
		et, es := typeParts(e)
		if et == tt && es == ts {
			return true
		}
	}
	return false
}

// isWrapper reports whether t is a wrapper type: one whose use needs
// accept-wrapped-types to say what goes inside. Only message/cpim is,
// here; multipart/mixed in RCS travels inside CPIM.
func isWrapper(t string) bool {
	typ, sub := typeParts(t)
	return typ == "message" && sub == "cpim"
}
