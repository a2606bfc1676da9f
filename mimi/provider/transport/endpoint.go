package transport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Endpoint names one of the protocol's endpoints, as its directory key and
// the second segment of its path (/v1/<endpoint>/<param>).
type Endpoint string

// The endpoints of the protocol draft's directory.
const (
	KeyMaterial     Endpoint = "keyMaterial"
	Update          Endpoint = "update"
	Notify          Endpoint = "notify"
	SubmitMessage   Endpoint = "submitMessage"
	GroupInfo       Endpoint = "groupInfo"
	RequestConsent  Endpoint = "requestConsent"
	UpdateConsent   Endpoint = "updateConsent"
	IdentifierQuery Endpoint = "identifierQuery"
	ReportAbuse     Endpoint = "reportAbuse"
	ProxyDownload   Endpoint = "proxyDownload"
)

// Endpoints lists every endpoint, in the draft's order.
var Endpoints = []Endpoint{
	KeyMaterial, Update, Notify, SubmitMessage, GroupInfo,
	RequestConsent, UpdateConsent, IdentifierQuery, ReportAbuse, ProxyDownload,
}

// templateParam is the name of each endpoint's path parameter in our
// directory.
var templateParam = map[Endpoint]string{
	KeyMaterial:     "targetUser",
	Update:          "roomId",
	Notify:          "roomId",
	SubmitMessage:   "roomId",
	GroupInfo:       "roomId",
	RequestConsent:  "targetDomain",
	UpdateConsent:   "requesterDomain",
	IdentifierQuery: "domain",
	ReportAbuse:     "roomId",
	ProxyDownload:   "downloadUrl",
}

// Valid reports whether e is one of Endpoints.
func (e Endpoint) Valid() bool {
	_, ok := templateParam[e]
	return ok
}

// Method is the HTTP method of the endpoint: GET for proxyDownload, POST
// for the rest.
func (e Endpoint) Method() string {
	if e == ProxyDownload {
		return http.MethodGet
	}
	return http.MethodPost
}

// DirectoryPath is where a provider publishes its directory.
const DirectoryPath = "/.well-known/mimi-protocol-directory"

// maxDirectory bounds a peer's directory; ten URL templates fit many
// times over.
const maxDirectory = 64 << 10

// directoryJSON is our directory: every endpoint's URL template on base.
func directoryJSON(base string) []byte {
	base = strings.TrimRight(base, "/")
	d := make(map[Endpoint]string, len(Endpoints))
	for _, e := range Endpoints {
		d[e] = base + "/v1/" + string(e) + "/{" + templateParam[e] + "}"
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return b
}

// directory is a peer's directory: a URL template per endpoint it lists.
type directory map[Endpoint]string

// parseDirectory reads a peer's directory. Keys it does not know are
// ignored (a later draft may add endpoints); a known key must hold an
// https URL template with one {parameter}.
func parseDirectory(b []byte) (directory, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("directory is not a JSON object: %w", err)
	}
	d := make(directory, len(Endpoints))
	for _, e := range Endpoints {
		v, ok := raw[string(e)]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("directory entry %s is not a string", e)
		}
		if _, err := expand(s, "x"); err != nil {
			return nil, fmt.Errorf("directory entry %s: %w", e, err)
		}
		d[e] = s
	}
	return d, nil
}

// expand puts param, escaped, in place of the template's one {parameter}
// and checks the result is an https URL. Any parameter name is accepted:
// drafts have named them differently (per domain or per user for
// consent).
func expand(template, param string) (string, error) {
	open := strings.IndexByte(template, '{')
	end := strings.IndexByte(template, '}')
	if open < 0 || end < open {
		return "", fmt.Errorf("template %q has no {parameter}", template)
	}
	if strings.ContainsAny(template[end+1:], "{}") {
		return "", fmt.Errorf("template %q has more than one {parameter}", template)
	}
	s := template[:open] + EscapeParam(param) + template[end+1:]
	if _, err := checkHTTPS(s); err != nil {
		return "", fmt.Errorf("template %q: %w", template, err)
	}
	return s, nil
}

// EscapeParam escapes a path parameter as JavaScript's encodeURIComponent
// does: every byte but letters, digits and -_.!~*'() is percent-encoded,
// so "/" and ":" in a URI are too.
func EscapeParam(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !componentSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if componentSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func componentSafe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// errNoRoute is a path that is not /v1/<endpoint>/<param>.
var errNoRoute = fmt.Errorf("no such path")

// parsePath splits an escaped request path /v1/<endpoint>/<param> and
// decodes the parameter; any valid percent-encoding is accepted. The
// endpoint is not checked against Endpoints.
func parsePath(escaped string) (Endpoint, string, error) {
	rest, ok := strings.CutPrefix(escaped, "/v1/")
	if !ok {
		return "", "", errNoRoute
	}
	ep, raw, ok := strings.Cut(rest, "/")
	if !ok || ep == "" || raw == "" {
		return "", "", errNoRoute
	}
	param, err := url.PathUnescape(raw)
	if err != nil {
		return Endpoint(ep), "", fmt.Errorf("path parameter: %w", err)
	}
	return Endpoint(ep), param, nil
}
