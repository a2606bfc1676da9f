package content

import (
	"crypto/rand"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the format. Decode rejects input beyond them and Encode refuses
// to write it.
const (
	// MaxPartDepth is how deep NestedParts may nest; the body is level 1
	// (content-08 section 6.3).
	MaxPartDepth = 4
	// MaxExtensionDepth bounds arrays, maps and tags in the extensions
	// map; the map itself is level 1 (content-08 section 6.3).
	MaxExtensionDepth = 4
	// MaxParts bounds the NestedParts of one message, counting MultiParts
	// themselves; more "most likely represent malicious messages"
	// (content-08 section 9.1).
	MaxParts = 1024
	// MaxTopicID bounds the topicId, for the same reason.
	MaxTopicID = 4096
	// MaxURI bounds the sender and room URIs: the message ID prefixes
	// each with its length as a 16-bit integer.
	MaxURI = 1<<16 - 1
	// MaxExtensionName bounds text keys of the extensions map.
	MaxExtensionName = 255
)

// Media types a MIMI receiver must accept (content-08 section 7.1).
const (
	TypePlain       = "text/plain;charset=utf-8"
	TypeMarkdown    = "text/markdown;variant=GFM-MIMI"
	TypeMIMIContent = "application/mimi-content"
)

// Message is one MIMI content message: the seven items of content-08, in
// order.
type Message struct {
	Salt       [16]byte   // cryptographically random, per message
	Replaces   *MessageID // edit, delete or unlike of this message; nil if none
	TopicID    []byte     // empty: no topic
	Expires    *Expires   // nil: does not expire
	InReplyTo  *MessageID // nil: not a reply
	Extensions Extensions
	Body       NestedPart
}

// Expires says when a message should be deleted.
type Expires struct {
	Relative bool   // Time is seconds after it is read, not a Unix time
	Time     uint32 // seconds
}

// Extensions is the mimiExtensions map. Keys 1 and 2 have fields of their
// own; every other entry is kept as it was received.
type Extensions struct {
	SenderURI string // key 1; "" when absent
	RoomURI   string // key 2; "" when absent
	// Other entries in any order; Encode sorts them. Decode returns them
	// in wire order, which is sorted.
	Other []Extension
}

// Extension is one entry of the extensions map other than keys 1 and 2.
type Extension struct {
	Key ExtensionKey
	// Value is exactly one CBOR data item in core deterministic encoding,
	// holding arrays, maps and tags at most MaxExtensionDepth-1 levels
	// deep. NewExtension builds one from a Go value.
	Value []byte
}

// ExtensionKey is a key of the extensions map: an integer (positive keys
// are registered with IANA, negative ones are private) or, when Text is
// not empty, a private text key of 1 to 255 bytes.
type ExtensionKey struct {
	Int  int64
	Text string
}

// Well-known extension keys.
var (
	KeySenderURI = ExtensionKey{Int: 1}
	KeyRoomURI   = ExtensionKey{Int: 2}
)

func (k ExtensionKey) String() string {
	if k.Text != "" {
		return strconv.Quote(k.Text)
	}
	return strconv.FormatInt(k.Int, 10)
}

func (k ExtensionKey) append(b []byte) []byte {
	if k.Text != "" {
		return appendText(b, k.Text)
	}
	return appendInt(b, k.Int)
}

// Get returns the raw value of the extension with key k.
func (e *Extensions) Get(k ExtensionKey) ([]byte, bool) {
	for _, x := range e.Other {
		if x.Key == k {
			return x.Value, true
		}
	}
	return nil, false
}

// Set adds or replaces the extension with key k. Keys 1 and 2 belong in
// SenderURI and RoomURI; the value is checked when the message is encoded.
func (e *Extensions) Set(k ExtensionKey, value []byte) {
	for i := range e.Other {
		if e.Other[i].Key == k {
			e.Other[i].Value = value
			return
		}
	}
	e.Other = append(e.Other, Extension{Key: k, Value: value})
}

// Disposition is the intended use of a part (content-08 section 4.4).
type Disposition uint8

const (
	Unspecified Disposition = 0
	Render      Disposition = 1
	Reaction    Disposition = 2
	Profile     Disposition = 3
	Inline      Disposition = 4
	Icon        Disposition = 5
	Attachment  Disposition = 6
	Session     Disposition = 7
	Preview     Disposition = 8
)

var dispositionNames = [...]string{"unspecified", "render", "reaction", "profile", "inline", "icon", "attachment", "session", "preview"}

// String names the disposition; values 9-255 are unknown, and receivers
// treat them as render.
func (d Disposition) String() string {
	if int(d) < len(dispositionNames) {
		return dispositionNames[d]
	}
	return fmt.Sprintf("unknown(%d)", uint8(d))
}

// Cardinality says which of the four shapes a NestedPart has.
type Cardinality uint8

const (
	Null     Cardinality = 0 // no content: delete, unlike
	Single   Cardinality = 1 // inline content
	External Cardinality = 2 // content behind a URL
	Multi    Cardinality = 3 // two or more nested parts
)

var cardinalityNames = [...]string{"null", "single", "external", "multi"}

// itemCount is the NestedPart array length for each cardinality.
var itemCount = [...]int{3, 5, 15, 5}

func (c Cardinality) String() string {
	if int(c) < len(cardinalityNames) {
		return cardinalityNames[c]
	}
	return fmt.Sprintf("cardinality(%d)", uint8(c))
}

// PartSemantics says how the parts of a MultiPart relate.
type PartSemantics uint8

const (
	ChooseOne  PartSemantics = 0 // alternatives: process exactly one
	SingleUnit PartSemantics = 1 // one entity: process all or none
	ProcessAll PartSemantics = 2 // process each one that is understood
)

var semanticsNames = [...]string{"chooseOne", "singleUnit", "processAll"}

func (s PartSemantics) String() string {
	if int(s) < len(semanticsNames) {
		return semanticsNames[s]
	}
	return fmt.Sprintf("partSemantics(%d)", uint8(s))
}

// NestedPart is a message body or one of its parts. Cardinality selects
// which fields carry meaning; the others stay zero:
//
//	Null:     none
//	Single:   ContentType, Content
//	External: External (all twelve fields of an ExternalPart)
//	Multi:    Semantics, Parts (at least two)
type NestedPart struct {
	Disposition Disposition
	Language    string // "" or comma-separated BCP 47 tags
	Cardinality Cardinality
	ContentType string
	Content     []byte
	External    *ExternalPart
	Semantics   PartSemantics
	Parts       []NestedPart
}

// ExternalPart is content kept outside the message, usually encrypted
// (content-08 section 4.5).
type ExternalPart struct {
	ContentType string
	URL         string
	Expires     uint32 // Unix seconds after which the URL is invalid; 0: never
	Size        uint64 // bytes; 0: unknown
	EncAlg      uint16 // IANA AEAD algorithm; 0: not encrypted
	Key         []byte
	Nonce       []byte
	AAD         []byte
	HashAlg     uint8 // IANA named-information hash algorithm; 0: none
	ContentHash []byte
	Description string
	Filename    string
}

// NewNullPart returns a part without content (the body of a delete or an
// unlike).
func NewNullPart(d Disposition) NestedPart {
	return NestedPart{Disposition: d, Cardinality: Null}
}

// NewSinglePart returns a part holding content inline.
func NewSinglePart(d Disposition, contentType string, content []byte) NestedPart {
	return NestedPart{Disposition: d, Cardinality: Single, ContentType: contentType, Content: content}
}

// NewExternalPart returns a part referring to content at ext.URL.
func NewExternalPart(d Disposition, ext ExternalPart) NestedPart {
	return NestedPart{Disposition: d, Cardinality: External, External: &ext}
}

// NewMultiPart returns a part grouping two or more parts.
func NewMultiPart(d Disposition, s PartSemantics, parts ...NestedPart) NestedPart {
	return NestedPart{Disposition: d, Cardinality: Multi, Semantics: s, Parts: parts}
}

// MediaType returns the content type of a SinglePart or ExternalPart.
func (p *NestedPart) MediaType() string {
	switch {
	case p.Cardinality == Single:
		return p.ContentType
	case p.Cardinality == External && p.External != nil:
		return p.External.ContentType
	}
	return ""
}

// All yields p and every part inside it depth first, each with its part
// index (p itself is 0 relative to p). Parts deeper than MaxPartDepth are
// not visited; Decode never returns any.
func (p *NestedPart) All() iter.Seq2[int, *NestedPart] {
	return func(yield func(int, *NestedPart) bool) {
		i := 0
		p.walk(&i, 1, yield)
	}
}

func (p *NestedPart) walk(i *int, depth int, yield func(int, *NestedPart) bool) bool {
	if depth > MaxPartDepth {
		return true
	}
	if !yield(*i, p) {
		return false
	}
	*i++
	for k := range p.Parts {
		if !p.Parts[k].walk(i, depth+1, yield) {
			return false
		}
	}
	return true
}

// Parts yields every part of the body depth first with its part index,
// the N of "cid:N@local.invalid" (content-08 section 4.4).
func (m *Message) Parts() iter.Seq2[int, *NestedPart] { return m.Body.All() }

// Part returns the part with the given index.
func (m *Message) Part(index int) (*NestedPart, bool) {
	for i, p := range m.Parts() {
		if i == index {
			return p, true
		}
	}
	return nil, false
}

const cidSuffix = "@local.invalid"

// PartCID returns the content ID URI that names part index in a message.
func PartCID(index int) string {
	return "cid:" + strconv.Itoa(index) + cidSuffix
}

// ParsePartCID returns the part index in a "cid:N@local.invalid" URI.
func ParsePartCID(uri string) (int, bool) {
	if len(uri) < 4 || !strings.EqualFold(uri[:4], "cid:") {
		return 0, false
	}
	num, ok := strings.CutSuffix(uri[4:], cidSuffix)
	if !ok || num == "" || len(num) > 4 || (len(num) > 1 && num[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n >= MaxParts {
		return 0, false
	}
	return n, true
}

// NewSalt returns a fresh salt from crypto/rand, as every message needs
// (content-08 section 3.3: per message and cryptographically random).
func NewSalt() [16]byte {
	var s [16]byte
	rand.Read(s[:]) // never fails (crypto/rand, Go 1.24 and later)
	return s
}

// NewText returns a message holding text as text/plain;charset=utf-8 with
// disposition render, from sender in room.
func NewText(sender, room, text string, salt [16]byte) *Message {
	return &Message{
		Salt:       salt,
		Extensions: Extensions{SenderURI: sender, RoomURI: room},
		Body:       NewSinglePart(Render, TypePlain, []byte(text)),
	}
}

// Text returns the first text/plain or text/markdown part of the body,
// depth first, with any invalid UTF-8 replaced by U+FFFD. Markdown is
// returned as written.
func (m *Message) Text() (string, bool) {
	for _, p := range m.Parts() {
		if p.Cardinality == Single && isText(p.ContentType) {
			if utf8.Valid(p.Content) {
				return string(p.Content), true
			}
			return strings.ToValidUTF8(string(p.Content), "\uFFFD"), true
		}
	}
	return "", false
}

// isText reports whether a media type is text/plain or text/markdown in
// UTF-8 (or US-ASCII, its subset). No charset parameter means UTF-8 here:
// MIMI carries no other.
func isText(mediaType string) bool {
	base, params, _ := strings.Cut(mediaType, ";")
	base = strings.TrimSpace(base)
	if !strings.EqualFold(base, "text/plain") && !strings.EqualFold(base, "text/markdown") {
		return false
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "charset") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if !strings.EqualFold(value, "utf-8") && !strings.EqualFold(value, "us-ascii") {
			return false
		}
	}
	return true
}

// sameMediaType compares media types ignoring case and parameters.
func sameMediaType(a, b string) bool {
	a, _, _ = strings.Cut(a, ";")
	b, _, _ = strings.Cut(b, ";")
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
