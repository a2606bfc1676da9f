package wire

import (
	"strconv"
	"strings"
)

// Protocol is the end-to-end protocol a request is for
// (draft-ietf-mimi-protocol-06 section 5). Only mls10 is defined, and only
// mls10 is read or written.
type Protocol uint8

const MLS10 Protocol = 1

func (p Protocol) String() string {
	if p == MLS10 {
		return "mls10"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

func (r *reader) protocol(field string) Protocol {
	if v := r.u8(field); r.err == nil && v != uint8(MLS10) {
		r.badEnum(field, 1, uint64(v))
	}
	return MLS10
}

func (w *writer) protocol(field string, p Protocol) {
	if p != MLS10 {
		w.fail(field, errEnum, strconv.Itoa(int(p)))
		return
	}
	w.u8(uint8(p))
}

// enum reads a one-byte enum whose defined values are lo..hi.
func (r *reader) enum(field string, lo, hi uint8) uint8 {
	v := r.u8(field)
	if r.err == nil && (v < lo || v > hi) {
		r.badEnum(field, 1, uint64(v))
	}
	return v
}

// enum writes a one-byte enum whose defined values are lo..hi.
func (w *writer) enum(field string, v, lo, hi uint8) {
	if v < lo || v > hi {
		w.fail(field, errEnum, strconv.Itoa(int(v)))
		return
	}
	w.u8(v)
}

// empty reports a field set in code that its select case does not carry:
// writing it would drop it silently.
func (w *writer) empty(field string, set bool) {
	if set {
		w.fail(field, errNotAllowed, "set, but not carried in this case")
	}
}

// RequiredCapabilities is RFC 9420's required_capabilities extension
// content (section 11.1): types a requester needs every client to support.
type RequiredCapabilities struct {
	Extensions, Proposals, Credentials []uint16
}

func (c *RequiredCapabilities) decode(r *reader, field string) {
	r.push(field)
	c.Extensions = r.u16s("extension_types")
	c.Proposals = r.u16s("proposal_types")
	c.Credentials = r.u16s("credential_types")
	r.pop()
}

func (c *RequiredCapabilities) encode(w *writer, field string) {
	w.push(field)
	w.u16s("extension_types", c.Extensions)
	w.u16s("proposal_types", c.Proposals)
	w.u16s("credential_types", c.Credentials)
	w.pop()
}

// Capabilities is an MLS client's Capabilities (RFC 9420 section 7.2).
type Capabilities struct {
	Versions, CipherSuites, Extensions, Proposals, Credentials []uint16
}

func (c *Capabilities) decode(r *reader, field string) {
	r.push(field)
	c.Versions = r.u16s("versions")
	c.CipherSuites = r.u16s("cipher_suites")
	c.Extensions = r.u16s("extensions")
	c.Proposals = r.u16s("proposals")
	c.Credentials = r.u16s("credentials")
	r.pop()
}

func (c *Capabilities) encode(w *writer, field string) {
	w.push(field)
	w.u16s("versions", c.Versions)
	w.u16s("cipher_suites", c.CipherSuites)
	w.u16s("extensions", c.Extensions)
	w.u16s("proposals", c.Proposals)
	w.u16s("credentials", c.Credentials)
	w.pop()
}

// Extension is an MLS Extension (RFC 9420 section 7.2).
type Extension struct {
	Type uint16
	Data []byte
}

// ComponentData is one entry of an AppDataDictionary.
type ComponentData struct {
	ID   uint16
	Data []byte
}

// AppDataDictionary is draft-ietf-mls-extensions-09's AppDataDictionary,
// the extension point several MIMI structures end with: at most one entry
// per component, sorted by component ID. Empty reads as nil.
type AppDataDictionary []ComponentData

func (d *AppDataDictionary) decode(r *reader, field string) {
	var out AppDataDictionary
	r.push(field)
	r.list("component_data", func(int) {
		start := r.off
		id := r.u16("component_id")
		if r.err == nil && len(out) > 0 && id <= out[len(out)-1].ID {
			r.failAt(start, "component_id", errOrder, strconv.Itoa(int(id))+" after "+strconv.Itoa(int(out[len(out)-1].ID)))
		}
		out = append(out, ComponentData{ID: id, Data: r.opaque("data")})
	})
	r.pop()
	*d = out
}

func (d AppDataDictionary) encode(w *writer, field string) {
	w.push(field)
	w.list("component_data", len(d), func(i int) {
		if i > 0 && d[i].ID <= d[i-1].ID {
			w.fail("component_id", errOrder, strconv.Itoa(int(d[i].ID))+" after "+strconv.Itoa(int(d[i-1].ID)))
		}
		w.u16(d[i].ID)
		w.opaque("data", d[i].Data)
	})
	w.pop()
}

// Frank is the hub's franking of an application message
// (draft-ietf-mimi-protocol-06 section 5.4).
type Frank struct {
	ServerFrank [32]byte
	CipherSuite uint16 // franking_signature_ciphersuite
	Signature   []byte // franking_integrity_signature
}

func (f *Frank) decode(r *reader, field string) {
	r.push(field)
	copy(f.ServerFrank[:], r.fixed("server_frank", 32))
	f.CipherSuite = r.u16("franking_signature_ciphersuite")
	f.Signature = r.opaque("franking_integrity_signature")
	r.pop()
}

func (f *Frank) encode(w *writer, field string) {
	w.push(field)
	w.b = append(w.b, f.ServerFrank[:]...)
	w.u16(f.CipherSuite)
	w.opaque("franking_integrity_signature", f.Signature)
	w.pop()
}

// optFrank reads optional<Frank>.
func (r *reader) optFrank(field string) *Frank {
	if !r.flag(field) {
		return nil
	}
	f := new(Frank)
	f.decode(r, field)
	return f
}

func (w *writer) optFrank(field string, f *Frank) {
	w.flag(f != nil)
	if f != nil {
		f.encode(w, field)
	}
}

// TreeKind is a RatchetTreeOption's representation.
type TreeKind uint8

const (
	TreeFull                TreeKind = 1
	TreeHTTPSURI            TreeKind = 2
	TreeOutOfBand           TreeKind = 3
	TreeDistributionService TreeKind = 4
)

func (k TreeKind) String() string {
	switch k {
	case TreeFull:
		return "full"
	case TreeHTTPSURI:
		return "httpsUri"
	case TreeOutOfBand:
		return "outOfBand"
	case TreeDistributionService:
		return "distributionService"
	}
	return "TreeKind(" + strconv.Itoa(int(k)) + ")"
}

// RatchetTreeOption says where a joiner finds the ratchet tree
// (draft-mahy-mls-ratchet-tree-options section 3). Only the fields of its
// Kind are carried; the zero value is not a valid option.
type RatchetTreeOption struct {
	Kind TreeKind
	// Tree (full): optional<Node> ratchet_tree<V>, its length prefix
	// included: the bytes of a ratchet_tree extension's extension_data.
	Tree []byte
	// URL (httpsUri): an https URL.
	URL string
	// Signature (httpsUri, outOfBand): tree_signature.
	Signature []byte
}

func (o *RatchetTreeOption) decode(r *reader, field string) {
	r.push(field)
	defer r.pop()
	o.Kind = TreeKind(r.enum("representation", 1, 4))
	switch o.Kind {
	case TreeFull:
		tree, _ := r.embedded("ratchet_tree", kindRatchetTree)
		o.Tree = clone(tree)
	case TreeHTTPSURI:
		start := r.off
		o.URL = r.str("ratchet_tree_url")
		if r.err == nil && !isHTTPS(o.URL) {
			r.failAt(start, "ratchet_tree_url", errNotAllowed, "not an https URL")
		}
		o.Signature = r.opaque("tree_signature")
	case TreeOutOfBand:
		o.Signature = r.opaque("tree_signature")
	}
}

func (o *RatchetTreeOption) encode(w *writer, field string) {
	w.push(field)
	defer w.pop()
	w.enum("representation", uint8(o.Kind), 1, 4)
	w.empty("ratchet_tree", o.Kind != TreeFull && len(o.Tree) > 0)
	w.empty("ratchet_tree_url", o.Kind != TreeHTTPSURI && o.URL != "")
	w.empty("tree_signature", o.Kind != TreeHTTPSURI && o.Kind != TreeOutOfBand && len(o.Signature) > 0)
	switch o.Kind {
	case TreeFull:
		w.mls("ratchet_tree", kindRatchetTree, o.Tree)
	case TreeHTTPSURI:
		if !isHTTPS(o.URL) {
			w.fail("ratchet_tree_url", errNotAllowed, "not an https URL")
		}
		w.str("ratchet_tree_url", o.URL)
		w.opaque("tree_signature", o.Signature)
	case TreeOutOfBand:
		w.opaque("tree_signature", o.Signature)
	}
}

func isHTTPS(u string) bool {
	return len(u) > len("https://") && strings.EqualFold(u[:len("https://")], "https://")
}

// GroupInfoKind is a GroupInfoOption's representation.
type GroupInfoKind uint8

const (
	GroupInfoFull    GroupInfoKind = 1
	GroupInfoPartial GroupInfoKind = 2
)

func (k GroupInfoKind) String() string {
	switch k {
	case GroupInfoFull:
		return "full"
	case GroupInfoPartial:
		return "partial"
	}
	return "GroupInfoKind(" + strconv.Itoa(int(k)) + ")"
}

// GroupInfoOption carries the GroupInfo of the epoch a commit starts
// (draft-ietf-mimi-protocol-06 section 5.3).
type GroupInfoOption struct {
	Kind GroupInfoKind
	// GroupInfo is a bare RFC 9420 GroupInfo (full) without a ratchet_tree
	// extension, or an encoded PartialGroupInfo (partial).
	GroupInfo []byte
}

func (o *GroupInfoOption) decode(r *reader, field string) {
	r.push(field)
	defer r.pop()
	o.Kind = GroupInfoKind(r.enum("representation", 1, 2))
	switch o.Kind {
	case GroupInfoFull:
		start := r.off
		gi, info := r.embedded("groupInfo", kindGroupInfo)
		if info.treeInExt {
			r.failAt(start, "groupInfo", errNotAllowed, "carries a ratchet_tree extension")
		}
		o.GroupInfo = clone(gi)
	case GroupInfoPartial:
		start := r.off
		var p PartialGroupInfo
		p.decode(r, "partialGroupInfo")
		if r.err == nil {
			o.GroupInfo = clone(r.b[start:r.off])
		}
	}
}

func (o *GroupInfoOption) encode(w *writer, field string) {
	w.push(field)
	defer w.pop()
	w.enum("representation", uint8(o.Kind), 1, 2)
	switch o.Kind {
	case GroupInfoFull:
		if info := w.mls("groupInfo", kindGroupInfo, o.GroupInfo); info.treeInExt {
			w.fail("groupInfo", errNotAllowed, "carries a ratchet_tree extension")
		}
	case GroupInfoPartial:
		if w.err != nil {
			return
		}
		r := &reader{b: o.GroupInfo, end: len(o.GroupInfo), path: append([]elem(nil), w.path...)}
		var p PartialGroupInfo
		p.decode(r, "partialGroupInfo")
		if r.err == nil && r.off != len(o.GroupInfo) {
			r.fail("partialGroupInfo", errTrailing, strconv.Itoa(len(o.GroupInfo)-r.off)+" bytes")
		}
		if r.err != nil {
			r.err.class = ErrInvalid
			w.err = r.err
			return
		}
		w.b = append(w.b, o.GroupInfo...)
	}
}

// RatchetTreePresence says how a PartialGroupInfo's epoch and the one
// before it carry the ratchet_tree extension.
type RatchetTreePresence uint8

const (
	NoRatchetTree      RatchetTreePresence = 0
	RatchetTreePresent RatchetTreePresence = 1
	RatchetTreeRemoved RatchetTreePresence = 2
	RatchetTreeAdded   RatchetTreePresence = 3
)

func (p RatchetTreePresence) String() string {
	switch p {
	case NoRatchetTree:
		return "no_ratchet_tree"
	case RatchetTreePresent:
		return "present"
	case RatchetTreeRemoved:
		return "removed"
	case RatchetTreeAdded:
		return "added"
	}
	return "RatchetTreePresence(" + strconv.Itoa(int(p)) + ")"
}

// PartialGroupInfo is what a hub that follows the handshakes cannot build
// of a GroupInfo itself (draft-mahy-mls-ratchet-tree-options section 4).
type PartialGroupInfo struct {
	Presence RatchetTreePresence
	// Extensions are the GroupInfo's extensions without ratchet_tree.
	Extensions []Extension
	Signature  []byte
}

// Marshal encodes p.
func (p *PartialGroupInfo) Marshal() ([]byte, error) {
	w := newWriter("partialGroupInfo")
	p.encode(w)
	return w.result()
}

// UnmarshalPartialGroupInfo decodes one whole PartialGroupInfo.
func UnmarshalPartialGroupInfo(b []byte) (*PartialGroupInfo, error) {
	r := newReader(b, "partialGroupInfo")
	p := new(PartialGroupInfo)
	p.decode(r, "")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PartialGroupInfo) decode(r *reader, field string) {
	if field != "" {
		r.push(field)
		defer r.pop()
	}
	p.Presence = RatchetTreePresence(r.enum("ratchet_tree_presence", 0, 3))
	var exts []Extension
	r.list("group_info_extensions", func(int) {
		start := r.off
		t := r.u16("extension_type")
		if r.err == nil && t == extRatchetTree {
			r.failAt(start, "extension_type", errNotAllowed, "ratchet_tree")
		}
		exts = append(exts, Extension{Type: t, Data: r.opaque("extension_data")})
	})
	p.Extensions = exts
	p.Signature = r.opaque("signature")
}

func (p *PartialGroupInfo) encode(w *writer) {
	w.enum("ratchet_tree_presence", uint8(p.Presence), 0, 3)
	w.list("group_info_extensions", len(p.Extensions), func(i int) {
		if p.Extensions[i].Type == extRatchetTree {
			w.fail("extension_type", errNotAllowed, "ratchet_tree")
		}
		w.u16(p.Extensions[i].Type)
		w.opaque("extension_data", p.Extensions[i].Data)
	})
	w.opaque("signature", p.Signature)
}

// ExternalSender is RFC 9420's ExternalSender (section 12.1.8.1): a
// signature key and an encoded Credential.
type ExternalSender struct {
	SignatureKey []byte
	Credential   []byte
}

func (s *ExternalSender) decode(r *reader, field string) {
	r.push(field)
	s.SignatureKey = r.opaque("signature_key")
	c, _ := r.embedded("credential", kindCredential)
	s.Credential = clone(c)
	r.pop()
}

func (s *ExternalSender) encode(w *writer, field string) {
	w.push(field)
	w.opaque("signature_key", s.SignatureKey)
	w.mls("credential", kindCredential, s.Credential)
	w.pop()
}

// HPKECiphertext is RFC 9420's HPKECiphertext (section 7.6).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

func (c *HPKECiphertext) decode(r *reader, field string) {
	r.push(field)
	c.KEMOutput = r.opaque("kem_output")
	c.Ciphertext = r.opaque("ciphertext")
	r.pop()
}

func (c *HPKECiphertext) encode(w *writer, field string) {
	w.push(field)
	w.opaque("kem_output", c.KEMOutput)
	w.opaque("ciphertext", c.Ciphertext)
	w.pop()
}

// clone copies b; empty becomes nil, so decoded values never alias the
// input.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// messages reads MLSMessage field<V>: complete MLSMessages back to back,
// each a proposal.
func (r *reader) proposals(field string) [][]byte {
	var out [][]byte
	r.list(field, func(int) {
		start := r.off
		m, info := r.embedded("", kindMessage)
		if r.err == nil && !isProposal(info) {
			r.failAt(start, "", errNotAllowed, "not a proposal")
		}
		out = append(out, clone(m))
	})
	return out
}

func (w *writer) proposals(field string, ms [][]byte) {
	w.list(field, len(ms), func(i int) {
		if info := w.mls("", kindMessage, ms[i]); w.err == nil && !isProposal(info) {
			w.fail("", errNotAllowed, "not a proposal")
		}
	})
}

// isProposal: a PublicMessage or PrivateMessage of content_type proposal.
func isProposal(info mlsInfo) bool {
	return (info.WireFormat == PublicMessage || info.WireFormat == PrivateMessage) && info.ContentType == Proposal
}
