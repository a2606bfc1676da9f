package cpim

import (
	"fmt"
	"strings"
	"time"
)

// Namespaces of the CPIM headers RCS uses. The prefix a sender binds to
// each is its own choice, declared in an NS header.
const (
	// NamespaceCore names the headers RFC 3862 itself defines (From, To,
	// cc, DateTime, Subject, NS, Require), written without a prefix.
	NamespaceCore = "urn:ietf:params:cpim-headers:"
	// NamespaceIMDN is RFC 5438's namespace (imdn.Message-ID,
	// imdn.Disposition-Notification).
	NamespaceIMDN = "urn:ietf:params:imdn"
	// NamespaceCPM is OMA CPM's (cpm.Payload-Type).
	NamespaceCPM = "http://www.openmobilealliance.org/cpm/"
	// NamespaceMaaP is GSMA MaaP's, for chatbots (maap.Traffic-Type).
	NamespaceMaaP = "http://www.gsma.com/rcs/maap/"
)

// conventionalPrefix is what senders nearly always bind a namespace to. It
// is used only when a message carries a prefixed header but forgot the NS
// declaration for it, and never when the prefix is declared for something
// else.
var conventionalPrefix = map[string]string{
	NamespaceIMDN: "imdn",
	NamespaceCPM:  "cpm",
	NamespaceMaaP: "maap",
}

// Header returns the value of the first CPIM message header named name in
// namespace ns, or "" if there is none. ns "" (or NamespaceCore) means the
// unprefixed RFC 3862 headers; any other ns is resolved through the
// message's NS declarations, so "imdn.Message-ID" is found whatever prefix
// the sender bound to NamespaceIMDN. Names compare case-insensitively.
func (m *Message) Header(ns, name string) string {
	v, _ := m.lookup(ns, name, nil)
	return v
}

// Values returns every value of the CPIM message header named name in
// namespace ns, in order (To, cc and NS may repeat).
func (m *Message) Values(ns, name string) []string {
	var out []string
	m.lookup(ns, name, &out)
	return out
}

// lookup finds the first match, or all of them into *all when all is not
// nil.
func (m *Message) lookup(ns, name string, all *[]string) (string, bool) {
	core := ns == "" || strings.EqualFold(ns, NamespaceCore)
	declared := false
	if !core {
		for _, d := range m.Headers {
			if !strings.EqualFold(d.Name, "NS") {
				continue
			}
			prefix, uri, ok := parseNS(d.Value)
			if !ok || !strings.EqualFold(uri, ns) {
				continue
			}
			declared = true
			if v, ok := m.match(prefix, name, all); ok && all == nil {
				return v, true
			}
		}
		if !declared {
			prefix, ok := conventionalPrefix[ns]
			if !ok || m.prefixDeclared(prefix) {
				return "", false
			}
			return m.match(prefix, name, all)
		}
		return "", false
	}
	return m.match("", name, all)
}

// match looks for prefix.name (or the bare name when prefix is "").
func (m *Message) match(prefix, name string, all *[]string) (string, bool) {
	for _, h := range m.Headers {
		if !nameIs(h.Name, prefix, name) {
			continue
		}
		if all == nil {
			return h.Value, true
		}
		*all = append(*all, h.Value)
	}
	return "", false
}

func nameIs(full, prefix, name string) bool {
	if prefix == "" {
		return strings.EqualFold(full, name)
	}
	return len(full) == len(prefix)+1+len(name) &&
		full[len(prefix)] == '.' &&
		strings.EqualFold(full[:len(prefix)], prefix) &&
		strings.EqualFold(full[len(prefix)+1:], name)
}

func (m *Message) prefixDeclared(prefix string) bool {
	for _, d := range m.Headers {
		if strings.EqualFold(d.Name, "NS") {
			if p, _, ok := parseNS(d.Value); ok && strings.EqualFold(p, prefix) {
				return true
			}
		}
	}
	return false
}

// Namespaces returns the message's NS declarations as prefix -> URI; the
// default namespace, declared without a prefix, has the key "".
func (m *Message) Namespaces() map[string]string {
	out := make(map[string]string)
	for _, d := range m.Headers {
		if strings.EqualFold(d.Name, "NS") {
			if p, uri, ok := parseNS(d.Value); ok {
				out[p] = uri
			}
		}
	}
	return out
}

// parseNS splits an NS value, "prefix <uri>" or "<uri>".
func parseNS(v string) (prefix, uri string, ok bool) {
	lt := strings.IndexByte(v, '<')
	if lt < 0 || !strings.HasSuffix(v, ">") {
		return "", "", false
	}
	prefix = strings.TrimSpace(v[:lt])
	uri = strings.TrimSpace(v[lt+1 : len(v)-1])
	if uri == "" || strings.ContainsAny(uri, "<> \t") || strings.ContainsAny(prefix, " \t.<>\"") {
		return "", "", false
	}
	return prefix, uri, true
}

// ContentHeader returns the first MIME header of the content named name
// (case-insensitive), or "".
func (m *Message) ContentHeader(name string) string {
	v, _ := m.contentHeader(name)
	return v
}

func (m *Message) contentHeader(name string) (string, bool) {
	for _, h := range m.Content {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// ContentType returns the content's Content-Type as written.
func (m *Message) ContentType() string { return m.ContentHeader("Content-Type") }

// MediaType returns the content's media type in lower case without
// parameters, such as "text/plain".
func (m *Message) MediaType() string { return MediaType(m.ContentType()) }

// MediaType returns the type/subtype of a Content-Type value in lower case,
// without parameters.
func MediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}

// IsComposingType is RFC 3994's media type for typing notifications.
const IsComposingType = "application/im-iscomposing+xml"

// IsComposing reports whether a Content-Type names an isComposing
// indication, which is counted and dropped, never delivered as a message.
func IsComposing(contentType string) bool {
	return MediaType(contentType) == IsComposingType
}

// From returns the From header as written (a name-addr such as
// `Alice <sip:+15551230001@ims.example.net>`) and the URI inside it; uri is
// "" when the header is missing or holds no URI.
func (m *Message) From() (nameAddr, uri string) {
	nameAddr = m.Header("", "From")
	_, uri, _ = ParseNameAddr(nameAddr)
	return nameAddr, uri
}

// To returns the first To header as written and the URI inside it.
func (m *Message) To() (nameAddr, uri string) {
	nameAddr = m.Header("", "To")
	_, uri, _ = ParseNameAddr(nameAddr)
	return nameAddr, uri
}

// ParseNameAddr splits a CPIM address, `Formal Name <uri>`, `<uri>` or a
// bare URI, into the display name (quotes removed) and the URI.
func ParseNameAddr(v string) (name, uri string, ok bool) {
	v = strings.TrimSpace(v)
	i := 0
	if strings.HasPrefix(v, `"`) {
		// Skip a quoted display name, which may itself hold '<'.
		for i = 1; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' {
				i++
			}
		}
		if i >= len(v) {
			return "", "", false
		}
		i++
	}
	lt := strings.IndexByte(v[i:], '<')
	if lt < 0 {
		if v == "" || strings.ContainsAny(v, " \t<>\"") {
			return "", "", false
		}
		return "", v, true
	}
	lt += i
	gt := strings.IndexByte(v[lt:], '>')
	if gt < 0 {
		return "", "", false
	}
	uri = strings.TrimSpace(v[lt+1 : lt+gt])
	if uri == "" {
		return "", "", false
	}
	name = strings.TrimSpace(v[:lt])
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = name[1 : len(name)-1]
	}
	return name, uri, true
}

// MessageID returns imdn.Message-ID, or "".
func (m *Message) MessageID() string { return m.Header(NamespaceIMDN, "Message-ID") }

// DateTime returns the DateTime header (RFC 3339).
func (m *Message) DateTime() (time.Time, error) {
	v := m.Header("", "DateTime")
	if v == "" {
		return time.Time{}, fmt.Errorf("cpim: %w: DateTime", ErrMissingHeader)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("cpim: bad DateTime %q: %w", excerpt(v), err)
	}
	return t, nil
}

// Notify is a set of IMDN dispositions a sender asks for.
type Notify uint8

// The dispositions of imdn.Disposition-Notification that RCS uses.
const (
	NotifyPositiveDelivery Notify = 1 << iota
	NotifyNegativeDelivery
	NotifyDisplay
	NotifyProcessing
)

// String renders n as the imdn.Disposition-Notification value.
func (n Notify) String() string {
	var parts []string
	for _, d := range dispositions {
		if n&d.bit != 0 {
			parts = append(parts, d.name)
		}
	}
	return strings.Join(parts, ", ")
}

var dispositions = []struct {
	name string
	bit  Notify
}{
	{"positive-delivery", NotifyPositiveDelivery},
	{"negative-delivery", NotifyNegativeDelivery},
	{"display", NotifyDisplay},
	{"processing", NotifyProcessing},
}

// ParseNotify reads an imdn.Disposition-Notification value; unknown
// dispositions are ignored.
func ParseNotify(v string) Notify {
	var n Notify
	for v != "" {
		item := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		item = strings.TrimSpace(item)
		for _, d := range dispositions {
			if strings.EqualFold(item, d.name) {
				n |= d.bit
			}
		}
	}
	return n
}

// Notify returns the dispositions the sender asked for.
func (m *Message) Notify() Notify {
	return ParseNotify(m.Header(NamespaceIMDN, "Disposition-Notification"))
}

// DispositionNotification reports which IMDNs the sender asked for.
func (m *Message) DispositionNotification() (positiveDelivery, negativeDelivery, display bool) {
	n := m.Notify()
	return n&NotifyPositiveDelivery != 0, n&NotifyNegativeDelivery != 0, n&NotifyDisplay != 0
}
