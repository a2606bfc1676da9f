package revoke

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/xmldoc"
)

// Media type, namespace and feature tag of message revocation.
const (
	ContentType = "application/vnd.gsma.rcsrevoke+xml"
	Namespace   = "urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"
	// FeatureTag in a peer's Contact says it supports revocation.
	FeatureTag = "+g.gsma.rcs.msgrevoke"
)

// MaxSize bounds the result documents ParseResult accepts.
const MaxSize = 16 << 10

// maxDepth bounds element nesting in a result; real ones have two levels.
const maxDepth = 32

// DefaultRequest is the request body used when none is configured.
const DefaultRequest = `<?xml version="1.0" encoding="UTF-8"?>
<rcsrevoke xmlns="` + Namespace + `"><Message-ID>{{.MessageID}}</Message-ID></rcsrevoke>
`

// DefaultResult is a result body of the shape ParseResult reads, for
// simulators and tests that play the network.
const DefaultResult = `<?xml version="1.0" encoding="UTF-8"?>
<rcsrevoke xmlns="` + Namespace + `"><Message-ID>{{.MessageID}}</Message-ID><result>{{.Result}}</result></rcsrevoke>
`

// Errors.
var (
	ErrTemplate = errors.New("bad revocation template")
	// ErrNoResult: the document names no outcome ParseResult recognises.
	ErrNoResult = errors.New("no revocation result")
	// ErrAmbiguous: the document says both success and failure.
	ErrAmbiguous = errors.New("ambiguous revocation result")
)

// IsRevoke reports whether a Content-Type names a revocation body.
func IsRevoke(contentType string) bool {
	return cpim.MediaType(contentType) == ContentType
}

// Data is what a template may use. Every field is XML-escaped before it
// reaches the template, so templates write {{.MessageID}} as is.
type Data struct {
	MessageID      string // imdn.Message-ID of the message to revoke
	Recipient      string // URI of the original recipient
	ConversationID string
	ContributionID string
	Result         string // "success" or "failure", for result templates
}

// Template renders revocation bodies from a text/template.
type Template struct {
	t *template.Template
}

// ParseTemplate compiles a body template and checks it: it must render
// well-formed XML without a DOCTYPE that contains the message id.
func ParseTemplate(text string) (*Template, error) {
	t, err := template.New("revoke").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w: %v", ErrTemplate, err)
	}
	tpl := &Template{t: t}
	const probe = "probe-7Qx2"
	out, err := tpl.Execute(Data{MessageID: probe, Recipient: "tel:+15551230002", ConversationID: "c", ContributionID: "c", Result: "success"})
	if err != nil {
		return nil, fmt.Errorf("revoke: %w: %v", ErrTemplate, err)
	}
	if !bytes.Contains(out, []byte(probe)) {
		return nil, fmt.Errorf("revoke: %w: the body does not contain {{.MessageID}}", ErrTemplate)
	}
	if err := wellFormed(out); err != nil {
		return nil, fmt.Errorf("revoke: %w: %v", ErrTemplate, err)
	}
	return tpl, nil
}

// DefaultRequestTemplate returns DefaultRequest compiled.
func DefaultRequestTemplate() *Template { return mustParse(DefaultRequest) }

// DefaultResultTemplate returns DefaultResult compiled.
func DefaultResultTemplate() *Template { return mustParse(DefaultResult) }

func mustParse(text string) *Template {
	t, err := ParseTemplate(text)
	if err != nil {
		panic(err) // the defaults are constants checked by the tests
	}
	return t
}

// Execute renders the body for d.
func (t *Template) Execute(d Data) ([]byte, error) {
	esc := Data{
		MessageID:      escape(d.MessageID),
		Recipient:      escape(d.Recipient),
		ConversationID: escape(d.ConversationID),
		ContributionID: escape(d.ContributionID),
		Result:         escape(d.Result),
	}
	var buf bytes.Buffer
	if err := t.t.Execute(&buf, esc); err != nil {
		return nil, fmt.Errorf("revoke: render body for %q: %w", d.MessageID, err)
	}
	return buf.Bytes(), nil
}

func escape(s string) string { return string(xmldoc.AppendEscaped(nil, s)) }

func wellFormed(b []byte) error {
	d, err := xmldoc.NewDecoder(b, MaxSize)
	if err != nil {
		return err
	}
	if _, err := xmldoc.Root(d); err != nil {
		return err
	}
	if err := xmldoc.Skip(d); err != nil {
		return err
	}
	return xmldoc.End(d)
}

// Result is the outcome the network reported.
type Result struct {
	// MessageID is the revoked message's id if the body names one; ""
	// otherwise (then the CPIM imdn.Message-ID identifies it).
	MessageID string
	// Success is true when the message was revoked (send the SMS), false
	// when it was not (typically already delivered: send nothing more).
	Success bool
	// Evidence is the word the outcome was read from, for logs.
	Evidence string
}

// Names are compared in lower case with '-', '_' and '.' removed, so
// Message-ID, messageId and message_id are one name.
var (
	idNames     = set("messageid", "msgid", "imdnmessageid", "revokedmessageid", "originalmessageid")
	resultNames = set("result", "results", "status", "outcome", "response", "resultcode", "statuscode", "responsecode", "code",
		"revokeresult", "revocationresult", "revokestatus", "revocationstatus", "revokeresponse")
	successWords = set("success", "successful", "succeeded", "succeed", "ok", "revoked", "true",
		"revokesuccess", "revocationsuccess", "revokesucceeded", "revokeok")
	failureWords = set("failure", "failed", "fail", "error", "delivered", "alreadydelivered", "notrevoked",
		"false", "rejected", "revokefailed", "revokefailure", "revocationfailure", "revocationfailed", "notfound")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func norm(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// classify reads an outcome word or a SIP-like status code.
func classify(v string) (success, failure bool) {
	w := norm(v)
	if successWords[w] {
		return true, false
	}
	if failureWords[w] {
		return false, true
	}
	if code, err := strconv.Atoi(w); err == nil {
		switch {
		case code >= 200 && code < 300:
			return true, false
		case code >= 400 && code < 700:
			return false, true
		}
	}
	return false, false
}

// ParseResult reads a revocation result leniently: in any namespace, any
// element or attribute named like a message id gives the id, and the
// outcome is read from element text or attributes named like a result
// (result, status, outcome, ...; "success", "failed", "200", "404", ...)
// or from empty marker elements (<success/>, <failure/>, <revoked/>,
// <delivered/>). A document that says both is an error, as is one that
// says neither; a DOCTYPE is refused before parsing.
func ParseResult(b []byte) (*Result, error) {
	r, err := parseResult(b)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	return r, nil
}

func parseResult(b []byte) (*Result, error) {
	d, err := xmldoc.NewDecoder(b, MaxSize)
	if err != nil {
		return nil, err
	}
	start, err := xmldoc.Root(d)
	if err != nil {
		return nil, err
	}
	w := walker{}
	w.open(start)
	for len(w.stack) > 0 {
		tok, err := xmldoc.Token(d)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(w.stack) == maxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrMalformed, maxDepth)
			}
			w.open(t)
		case xml.CharData:
			top := &w.stack[len(w.stack)-1]
			if len(top.text)+len(t) <= MaxSize {
				top.text = append(top.text, t...)
			}
		case xml.EndElement:
			w.close()
		}
	}
	if err := xmldoc.End(d); err != nil {
		return nil, err
	}
	r := &Result{MessageID: w.id}
	switch {
	case w.success != "" && w.failure != "":
		return nil, fmt.Errorf("%w: says %q and %q", ErrAmbiguous, w.success, w.failure)
	case w.success != "":
		r.Success, r.Evidence = true, w.success
	case w.failure != "":
		r.Evidence = w.failure
	default:
		return nil, ErrNoResult
	}
	return r, nil
}

// walker gathers the evidence of a result document element by element.
type walker struct {
	stack            []element
	id               string
	success, failure string // first evidence of each outcome
}

type element struct {
	name string // normalised local name
	text []byte
}

func (w *walker) open(t xml.StartElement) {
	name := norm(t.Name.Local)
	w.stack = append(w.stack, element{name: name})
	// The element's own name may be the outcome (<revoked/>).
	if !resultNames[name] && !idNames[name] {
		w.note(t.Name.Local)
	}
	for _, a := range t.Attr {
		an := norm(a.Name.Local)
		switch {
		case idNames[an] && w.id == "":
			w.id = strings.TrimSpace(a.Value)
		case resultNames[an]:
			w.note(a.Value)
		}
	}
}

func (w *walker) close() {
	e := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	text := strings.TrimSpace(string(e.text))
	switch {
	case idNames[e.name] && w.id == "":
		w.id = text
	case resultNames[e.name]:
		w.note(text)
	}
}

func (w *walker) note(v string) {
	s, f := classify(v)
	v = strings.TrimSpace(v) // short: classify recognises only short words
	if s && w.success == "" {
		w.success = v
	}
	if f && w.failure == "" {
		w.failure = v
	}
}
