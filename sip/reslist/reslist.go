package reslist

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/mimigw/mimigw/sip/xmldoc"
)

// Media type, disposition, namespaces and option tags.
const (
	ContentType          = "application/resource-lists+xml"
	Disposition          = "recipient-list"
	Namespace            = "urn:ietf:params:xml:ns:resource-lists"
	NamespaceCopyControl = "urn:ietf:params:xml:ns:copycontrol"
	// RequireMessage is the SIP Require option tag of a one-to-many
	// MESSAGE, RequireInvite that of a group chat INVITE.
	RequireMessage = "recipient-list-message"
	RequireInvite  = "recipient-list-invite"
)

// Bounds on what Parse accepts.
const (
	MaxSize    = 256 << 10
	MaxEntries = 1000
	// MaxDepth bounds nested lists.
	MaxDepth = 16
)

// Errors about the list's content.
var (
	ErrWrongNamespace = errors.New("not a resource-lists document")
	ErrBadEntry       = errors.New("bad entry")
	ErrTooManyEntries = errors.New("too many entries")
)

// CopyControl says how a recipient is addressed (RFC 5366).
type CopyControl string

// Copy control values; an entry without the attribute is a "to" recipient.
const (
	To  CopyControl = "to"
	CC  CopyControl = "cc"
	BCC CopyControl = "bcc"
)

// Entry is one recipient. CopyControl is "" when the attribute is absent,
// which means To.
type Entry struct {
	URI         string
	DisplayName string
	CopyControl CopyControl
	Anonymize   bool
}

// Parse reads a resource-lists document into its entries, in document
// order, with nested lists flattened. External lists and entry references
// (which would need fetching) are skipped, as are unknown elements.
// Duplicate URIs are kept.
func Parse(b []byte) ([]Entry, error) {
	entries, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("reslist: %w", err)
	}
	return entries, nil
}

func parse(b []byte) ([]Entry, error) {
	d, _, err := xmldoc.Open(b, MaxSize, Namespace, "resource-lists", ErrWrongNamespace)
	if err != nil {
		return nil, err
	}
	p := &lists{}
	err = xmldoc.Children(d, func(t xml.StartElement) error {
		if t.Name.Space == Namespace && t.Name.Local == "list" {
			return p.list(d, 1)
		}
		return xmldoc.Skip(d)
	})
	if err != nil {
		return nil, err
	}
	if err := xmldoc.End(d); err != nil {
		return nil, err
	}
	return p.entries, nil
}

// lists gathers the entries of every list, nested ones included.
type lists struct {
	entries []Entry
}

// list reads the children of a <list> whose start tag was just read.
// Recursion is bounded by MaxDepth.
func (p *lists) list(d *xml.Decoder, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: lists nested deeper than %d", ErrBadEntry, MaxDepth)
	}
	return xmldoc.Children(d, func(t xml.StartElement) error {
		inNS := t.Name.Space == Namespace
		switch {
		case inNS && t.Name.Local == "list":
			return p.list(d, depth+1)
		case inNS && t.Name.Local == "entry":
			e, err := entry(d, t)
			if err != nil {
				return err
			}
			if len(p.entries) == MaxEntries {
				return fmt.Errorf("%w: limit %d", ErrTooManyEntries, MaxEntries)
			}
			p.entries = append(p.entries, e)
			return nil
		}
		return xmldoc.Skip(d)
	})
}

func entry(d *xml.Decoder, t xml.StartElement) (Entry, error) {
	var e Entry
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "uri":
			e.URI = strings.TrimSpace(a.Value)
		case a.Name.Space == NamespaceCopyControl && a.Name.Local == "copyControl":
			switch v := CopyControl(strings.ToLower(strings.TrimSpace(a.Value))); v {
			case To, CC, BCC:
				e.CopyControl = v
			default:
				return Entry{}, fmt.Errorf("%w: copyControl %q", ErrBadEntry, excerpt(a.Value))
			}
		case a.Name.Space == NamespaceCopyControl && a.Name.Local == "anonymize":
			switch strings.TrimSpace(a.Value) {
			case "true", "1":
				e.Anonymize = true
			case "false", "0":
			default:
				return Entry{}, fmt.Errorf("%w: anonymize %q", ErrBadEntry, excerpt(a.Value))
			}
		}
	}
	if e.URI == "" {
		return Entry{}, fmt.Errorf("%w: entry without uri", ErrBadEntry)
	}
	if strings.ContainsAny(e.URI, " \t\r\n<>\"") {
		return Entry{}, fmt.Errorf("%w: uri %q", ErrBadEntry, excerpt(e.URI))
	}
	err := xmldoc.Children(d, func(t xml.StartElement) (err error) {
		if t.Name.Space == Namespace && t.Name.Local == "display-name" {
			e.DisplayName, err = xmldoc.Text(d)
			return err
		}
		return xmldoc.Skip(d)
	})
	if err != nil {
		return Entry{}, err
	}
	return e, nil
}

func excerpt(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Bytes writes entries as a resource-lists document (RFC 4826) with one
// list, in the form RCS group chat INVITEs carry.
func Bytes(entries []Entry) []byte {
	out := make([]byte, 0, 160+80*len(entries))
	out = append(out, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<resource-lists xmlns="`+Namespace+`" xmlns:cp="`+NamespaceCopyControl+`">`+"\n<list>\n"...)
	for _, e := range entries {
		out = xmldoc.AppendEscaped(append(out, ` <entry uri="`...), e.URI)
		out = append(out, '"')
		if e.CopyControl != "" {
			out = xmldoc.AppendEscaped(append(out, ` cp:copyControl="`...), string(e.CopyControl))
			out = append(out, '"')
		}
		if e.Anonymize {
			out = append(out, ` cp:anonymize="true"`...)
		}
		if e.DisplayName == "" {
			out = append(out, "/>\n"...)
			continue
		}
		out = xmldoc.AppendEscaped(append(out, "><display-name>"...), e.DisplayName)
		out = append(out, "</display-name></entry>\n"...)
	}
	return append(out, "</list>\n</resource-lists>\n"...)
}
