package sip

import (
	"net/url"
	"strings"

	"github.com/mimigw/mimigw/gateway"
)

// Service identifiers (GSMA RCC.07, 3GPP TS 24.229). Inside feature-tag
// parameters they are percent-encoded; in P-Preferred-Service they are not.
const (
	icsiMsg        = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.msg"
	icsiLargeMsg   = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.largemsg"
	icsiSession    = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.session"
	icsiFT         = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.filetransfer"
	iariFTHTTP     = "urn:urn-7:3gpp-application.ims.iari.rcs.fthttp"
	iariRCSeIM     = "urn:urn-7:3gpp-application.ims.iari.rcse.im" // pre-UP chat
	tagICSI        = "+g.3gpp.icsi-ref"
	tagIARI        = "+g.3gpp.iari-ref"
	tagRevoke      = "+g.gsma.rcs.msgrevoke"
	acceptContactM = `*;` + tagICSI + `="` + "urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg" + `"`
)

// encodeURN percent-encodes a URN for a feature-tag value (RFC 3840: the
// colons of a URN are escaped inside the quoted string).
func encodeURN(s string) string { return strings.ReplaceAll(s, ":", "%3A") }

// ourTags are the feature tags of our Contact: pager mode and file
// transfer via HTTP. No msgrevoke: the gateway does not take revocation
// requests addressed to the numbers it serves.
var ourTags = ";" + tagICSI + `="` + encodeURN(icsiMsg) + `";` + tagIARI + `="` + encodeURN(iariFTHTTP) + `"`

// optionsAcceptContact asks the network to route our OPTIONS to the UP
// client of the number (the tags we are interested in).
var optionsAcceptContact = "*;" + tagICSI + `="` + encodeURN(icsiMsg) + `"`

// capabilities reads what the Contact header values of an OPTIONS answer
// advertise. Unknown tags are ignored; older RCS-e forms are accepted.
func capabilities(contacts []string) gateway.Capabilities {
	var c gateway.Capabilities
	for _, contact := range contacts {
		for _, p := range contactParams(contact) {
			switch strings.ToLower(p.name) {
			case tagICSI:
				for _, s := range p.values() {
					switch s {
					case icsiMsg:
						c.Chat = true
					case icsiSession:
						c.Chat, c.ChatSession = true, true
					case icsiLargeMsg:
						c.Chat, c.LargeMessage = true, true
					}
				}
			case tagIARI:
				for _, s := range p.values() {
					switch s {
					case iariFTHTTP:
						c.FileTransfer = true
					case iariRCSeIM:
						c.Chat = true
					}
				}
			case tagRevoke:
				c.Revoke = true
			}
		}
	}
	return c
}

type param struct{ name, value string }

// values splits a feature-tag value list ("a,b") and percent-decodes each.
func (p param) values() []string {
	var out []string
	for _, v := range strings.Split(p.value, ",") {
		v = strings.TrimSpace(v)
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		if v != "" {
			out = append(out, strings.ToLower(v))
		}
	}
	return out
}

// contactParams returns the header parameters of one or more Contact
// values: what follows the URI (after its closing angle bracket), split at
// semicolons outside quoted strings, with quotes removed. Parameters of
// several comma-separated contacts are returned together.
func contactParams(s string) []param {
	var out []param
	// Without angle brackets a contact is a bare URI and everything after
	// its first semicolon is a header parameter (RFC 3261 20.10).
	inAngle, inQuote, afterURI, sawAngle := false, false, false, false
	start := -1
	flush := func(end int) {
		if start < 0 {
			return
		}
		item := strings.TrimSpace(s[start:end])
		start = -1
		if item == "" {
			return
		}
		name, value, _ := strings.Cut(item, "=")
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		out = append(out, param{name: strings.TrimSpace(name), value: value})
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote:
			if ch == '\\' && i+1 < len(s) {
				i++
			} else if ch == '"' {
				inQuote = false
			}
		case ch == '"':
			inQuote = true
		case inAngle:
			if ch == '>' {
				inAngle, afterURI = false, true
			}
		case ch == '<':
			flush(i)
			inAngle, sawAngle = true, true
		case ch == ';':
			flush(i)
			if !sawAngle {
				afterURI = true
			}
			if afterURI {
				start = i + 1
			}
		case ch == ',':
			flush(i)
			afterURI, sawAngle = false, false
		}
	}
	flush(len(s))
	return out
}
