package wire

import (
	"bytes"
	"strconv"
)

// MIMI structures embed RFC 9420 structures without a length of their own
// (an MLSMessage, a bare KeyPackage, Welcome or GroupInfo, a Credential),
// so finding where one ends means reading it. The walker below reads them
// field by field as RFC 9420 (sections 5.3, 6, 7, 10, 12) and
// draft-ietf-mls-extensions define them, checks every length, enum and
// presence flag, and verifies nothing cryptographic: signatures, tags and
// ciphertexts are opaque bytes here and mimi/mls judges them.
//
// Proposal types read: add, update, remove, psk, reinit, external_init,
// group_context_extensions (RFC 9420), app_data_update (0x0008) and
// self_remove (0x000a) (draft-ietf-mls-extensions-09, suggested values).
// Any other proposal type, credential type or wire format is an error:
// without its definition its end cannot be found.

// WireFormat is an MLSMessage's wire_format (RFC 9420 section 6).
type WireFormat uint16

const (
	PublicMessage  WireFormat = 1
	PrivateMessage WireFormat = 2
	Welcome        WireFormat = 3
	GroupInfo      WireFormat = 4
	KeyPackage     WireFormat = 5
)

func (f WireFormat) String() string {
	switch f {
	case PublicMessage:
		return "mls_public_message"
	case PrivateMessage:
		return "mls_private_message"
	case Welcome:
		return "mls_welcome"
	case GroupInfo:
		return "mls_group_info"
	case KeyPackage:
		return "mls_key_package"
	}
	return "WireFormat(" + strconv.Itoa(int(f)) + ")"
}

// ContentType is a framed message's content_type (RFC 9420 section 6).
type ContentType uint8

const (
	Application ContentType = 1
	Proposal    ContentType = 2
	Commit      ContentType = 3
)

func (c ContentType) String() string {
	switch c {
	case Application:
		return "application"
	case Proposal:
		return "proposal"
	case Commit:
		return "commit"
	}
	return "ContentType(" + strconv.Itoa(int(c)) + ")"
}

// Sender types of a PublicMessage (RFC 9420 section 6).
const (
	SenderMember            uint8 = 1
	SenderExternal          uint8 = 2
	SenderNewMemberProposal uint8 = 3
	SenderNewMemberCommit   uint8 = 4
)

// RFC 9420 and draft-ietf-mls-extensions numbers the walker needs.
const (
	mls10 = 1

	credentialBasic = 1
	credentialX509  = 2

	leafSourceKeyPackage = 1
	leafSourceUpdate     = 2
	leafSourceCommit     = 3

	extRatchetTree = 0x0002

	proposalAdd           = 0x0001
	proposalUpdate        = 0x0002
	proposalRemove        = 0x0003
	proposalPSK           = 0x0004
	proposalReInit        = 0x0005
	proposalExternalInit  = 0x0006
	proposalGCE           = 0x0007
	proposalAppDataUpdate = 0x0008
	proposalSelfRemove    = 0x000a

	appDataOpUpdate = 1
	appDataOpRemove = 2
)

// MLSInfo is what the clear framing of an MLSMessage says.
//
//   - PublicMessage: all fields; SenderIndex is the leaf_index (member) or
//     sender_index (external), 0 for new members.
//   - PrivateMessage: GroupID, Epoch, ContentType (the sender is encrypted).
//   - GroupInfo: GroupID and Epoch of its group_context.
//   - Welcome, KeyPackage: WireFormat only.
type MLSInfo struct {
	WireFormat  WireFormat
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
	SenderType  uint8
	SenderIndex uint32
}

// mlsInfo is MLSInfo as the walker fills it (GroupID aliases the input),
// plus what the MIMI structures check.
type mlsInfo struct {
	MLSInfo
	hasPath      bool // a commit with an UpdatePath
	treeInExt    bool // a GroupInfo carrying a ratchet_tree extension
	proposalType uint16
}

// InspectMLSMessage reads one whole MLSMessage (version mls10) and returns
// its framing. Nothing may follow it.
func InspectMLSMessage(b []byte) (MLSInfo, error) {
	r := newReader(b, "mlsMessage")
	info := r.mlsMessage("")
	if err := r.finish(); err != nil {
		return MLSInfo{}, err
	}
	out := info.MLSInfo
	out.GroupID = bytes.Clone(out.GroupID)
	return out, nil
}

// WrapMLSMessage puts a bare structure (a Welcome, GroupInfo or KeyPackage
// as MIMI carries them) into an MLSMessage of version mls10. It does not
// check body; UnwrapMLSMessage does.
func WrapMLSMessage(wf WireFormat, body []byte) []byte {
	out := make([]byte, 0, 4+len(body))
	out = append(out, 0, mls10, byte(wf>>8), byte(wf))
	return append(out, body...)
}

// UnwrapMLSMessage checks that b is one whole MLSMessage and returns its
// wire format and body (the bytes after version and wire_format, aliasing
// b).
func UnwrapMLSMessage(b []byte) (WireFormat, []byte, error) {
	info, err := InspectMLSMessage(b)
	if err != nil {
		return 0, nil, err
	}
	return info.WireFormat, b[4:], nil
}

// mlsKind names the RFC 9420 structures MIMI embeds.
type mlsKind uint8

const (
	kindMessage     mlsKind = iota + 1 // MLSMessage
	kindKeyPackage                     // bare KeyPackage
	kindWelcome                        // bare Welcome
	kindGroupInfo                      // bare GroupInfo
	kindCredential                     // Credential
	kindRatchetTree                    // optional<Node> ratchet_tree<V>, its length included
)

// embedded reads one structure of kind as field and returns its bytes
// (aliasing the input) and framing.
func (r *reader) embedded(field string, kind mlsKind) ([]byte, mlsInfo) {
	start := r.off
	var info mlsInfo
	switch kind {
	case kindMessage:
		info = r.mlsMessage(field)
	case kindKeyPackage:
		r.keyPackage(field)
	case kindWelcome:
		r.welcome(field)
	case kindGroupInfo:
		info = r.groupInfo(field)
	case kindCredential:
		r.credential(field)
	case kindRatchetTree:
		r.ratchetTree(field)
	}
	if r.err != nil {
		return nil, info
	}
	return r.b[start:r.off], info
}

// checkEmbedded reads v as one whole structure of kind, for an encoder
// about to write it; errors name field under path.
func checkEmbedded(path []elem, field string, kind mlsKind, v []byte) (mlsInfo, *FieldError) {
	r := &reader{b: v, end: len(v), path: append(make([]elem, 0, len(path)+12), path...)}
	if len(v) == 0 {
		r.fail(field, errEmpty, "")
		return mlsInfo{}, r.err
	}
	_, info := r.embedded(field, kind)
	if r.err == nil && r.off != len(v) {
		r.fail(field, errTrailing, strconv.Itoa(len(v)-r.off)+" bytes")
	}
	return info, r.err
}

// mls writes an embedded structure after checking it is exactly one
// structure of kind.
func (w *writer) mls(field string, kind mlsKind, v []byte) mlsInfo {
	if w.err != nil {
		return mlsInfo{}
	}
	info, err := checkEmbedded(w.path, field, kind, v)
	if err != nil {
		err.class = ErrInvalid
		w.err = err
		return info
	}
	w.b = append(w.b, v...)
	return info
}

func (r *reader) mlsMessage(field string) mlsInfo {
	var info mlsInfo
	if field != "" {
		r.push(field)
		defer r.pop()
	}
	if v := r.u16("version"); r.err == nil && v != mls10 {
		r.badEnum("version", 2, uint64(v))
	}
	wf := WireFormat(r.u16("wire_format"))
	if r.err != nil {
		return info
	}
	info.WireFormat = wf
	switch wf {
	case PublicMessage:
		r.publicMessage(&info)
	case PrivateMessage:
		r.privateMessage(&info)
	case Welcome:
		r.welcome("welcome")
	case GroupInfo:
		gi := r.groupInfo("group_info")
		info.GroupID, info.Epoch, info.treeInExt = gi.GroupID, gi.Epoch, gi.treeInExt
	case KeyPackage:
		r.keyPackage("key_package")
	default:
		r.badEnum("wire_format", 2, uint64(wf))
	}
	return info
}

func (r *reader) publicMessage(info *mlsInfo) {
	r.push("public_message")
	defer r.pop()
	r.push("content")
	info.GroupID = r.vector("group_id")
	info.Epoch = r.u64("epoch")
	r.push("sender")
	info.SenderType = r.u8("sender_type")
	switch info.SenderType {
	case SenderMember:
		info.SenderIndex = r.u32("leaf_index")
	case SenderExternal:
		info.SenderIndex = r.u32("sender_index")
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		r.badEnum("sender_type", 1, uint64(info.SenderType))
	}
	r.pop()
	r.vector("authenticated_data")
	info.ContentType = ContentType(r.u8("content_type"))
	switch info.ContentType {
	case Application:
		r.vector("application_data")
	case Proposal:
		info.proposalType = r.proposal("proposal")
	case Commit:
		info.hasPath = r.commit("commit")
	default:
		r.badEnum("content_type", 1, uint64(info.ContentType))
	}
	r.pop()
	r.push("auth")
	r.vector("signature")
	if info.ContentType == Commit {
		r.vector("confirmation_tag")
	}
	r.pop()
	if info.SenderType == SenderMember {
		r.vector("membership_tag")
	}
}

func (r *reader) privateMessage(info *mlsInfo) {
	r.push("private_message")
	defer r.pop()
	info.GroupID = r.vector("group_id")
	info.Epoch = r.u64("epoch")
	info.ContentType = ContentType(r.u8("content_type"))
	if r.err == nil && (info.ContentType < Application || info.ContentType > Commit) {
		r.badEnum("content_type", 1, uint64(info.ContentType))
	}
	r.vector("authenticated_data")
	r.vector("encrypted_sender_data")
	r.vector("ciphertext")
}

// proposal reads a Proposal and returns its type.
func (r *reader) proposal(field string) uint16 {
	r.push(field)
	defer r.pop()
	t := r.u16("proposal_type")
	if r.err != nil {
		return 0
	}
	switch t {
	case proposalAdd:
		r.keyPackage("key_package")
	case proposalUpdate:
		r.leafNode("leaf_node", leafSourceUpdate)
	case proposalRemove:
		r.u32("removed")
	case proposalPSK:
		r.preSharedKeyID("psk")
	case proposalReInit:
		r.push("reinit")
		r.vector("group_id")
		if v := r.u16("version"); r.err == nil && v != mls10 {
			r.badEnum("version", 2, uint64(v))
		}
		r.u16("cipher_suite")
		r.extensions("extensions")
		r.pop()
	case proposalExternalInit:
		r.vector("kem_output")
	case proposalGCE:
		r.extensions("extensions")
	case proposalAppDataUpdate:
		r.push("app_data_update")
		r.u16("component_id")
		switch op := r.u8("op"); {
		case r.err != nil:
		case op == appDataOpUpdate:
			r.vector("update")
		case op == appDataOpRemove:
		default:
			r.badEnum("op", 1, uint64(op))
		}
		r.pop()
	case proposalSelfRemove:
	default:
		r.badEnum("proposal_type", 2, uint64(t))
	}
	return t
}

func (r *reader) preSharedKeyID(field string) {
	r.push(field)
	defer r.pop()
	switch t := r.u8("psktype"); {
	case r.err != nil:
		return
	case t == 1: // external
		r.vector("psk_id")
	case t == 2: // resumption
		if u := r.u8("usage"); r.err == nil && (u < 1 || u > 3) {
			r.badEnum("usage", 1, uint64(u))
		}
		r.vector("psk_group_id")
		r.u64("psk_epoch")
	default:
		r.badEnum("psktype", 1, uint64(t))
	}
	r.vector("psk_nonce")
}

// commit reads a Commit and reports whether it carries an UpdatePath.
func (r *reader) commit(field string) bool {
	r.push(field)
	defer r.pop()
	r.list("proposals", func(int) {
		switch t := r.u8("type"); {
		case r.err != nil:
		case t == 1:
			r.proposal("proposal")
		case t == 2:
			r.vector("reference")
		default:
			r.badEnum("type", 1, uint64(t))
		}
	})
	if !r.flag("path") {
		return false
	}
	r.push("path")
	r.leafNode("leaf_node", leafSourceCommit)
	r.list("nodes", func(int) {
		r.vector("encryption_key")
		r.list("encrypted_path_secret", func(int) { r.hpkeCiphertext("") })
	})
	r.pop()
	return r.err == nil
}

func (r *reader) hpkeCiphertext(field string) {
	if field != "" {
		r.push(field)
		defer r.pop()
	}
	r.vector("kem_output")
	r.vector("ciphertext")
}

func (r *reader) credential(field string) {
	r.push(field)
	defer r.pop()
	switch t := r.u16("credential_type"); {
	case r.err != nil:
	case t == credentialBasic:
		r.vector("identity")
	case t == credentialX509:
		r.list("certificates", func(int) { r.vector("cert_data") })
	default:
		r.badEnum("credential_type", 2, uint64(t))
	}
}

func (r *reader) capabilities(field string) {
	r.push(field)
	r.skipU16s("versions")
	r.skipU16s("cipher_suites")
	r.skipU16s("extensions")
	r.skipU16s("proposals")
	r.skipU16s("credentials")
	r.pop()
}

// extensions reads Extension field<V> and reports whether one of them is
// a ratchet_tree.
func (r *reader) extensions(field string) bool {
	tree := false
	r.list(field, func(int) {
		if r.u16("extension_type") == extRatchetTree {
			tree = true
		}
		r.vector("extension_data")
	})
	return tree
}

// leafNode reads a LeafNode; source, when not 0, is the leaf_node_source
// its context demands (RFC 9420 sections 10, 12.1.2, 12.4.1).
func (r *reader) leafNode(field string, source uint8) {
	r.push(field)
	defer r.pop()
	r.vector("encryption_key")
	r.vector("signature_key")
	r.credential("credential")
	r.capabilities("capabilities")
	start := r.off
	s := r.u8("leaf_node_source")
	switch {
	case r.err != nil:
		return
	case s == leafSourceKeyPackage:
		r.push("lifetime")
		r.u64("not_before")
		r.u64("not_after")
		r.pop()
	case s == leafSourceUpdate:
	case s == leafSourceCommit:
		r.vector("parent_hash")
	default:
		r.badEnum("leaf_node_source", 1, uint64(s))
		return
	}
	if source != 0 && s != source {
		r.failAt(start, "leaf_node_source", errNotAllowed, strconv.Itoa(int(s)))
		return
	}
	r.extensions("extensions")
	r.vector("signature")
}

func (r *reader) keyPackage(field string) {
	r.push(field)
	defer r.pop()
	if v := r.u16("version"); r.err == nil && v != mls10 {
		r.badEnum("version", 2, uint64(v))
	}
	r.u16("cipher_suite")
	r.vector("init_key")
	r.leafNode("leaf_node", leafSourceKeyPackage)
	r.extensions("extensions")
	r.vector("signature")
}

func (r *reader) welcome(field string) {
	r.push(field)
	defer r.pop()
	r.u16("cipher_suite")
	r.list("secrets", func(int) {
		r.vector("new_member")
		r.hpkeCiphertext("encrypted_group_secrets")
	})
	r.vector("encrypted_group_info")
}

func (r *reader) groupInfo(field string) mlsInfo {
	var info mlsInfo
	info.WireFormat = GroupInfo
	r.push(field)
	defer r.pop()
	r.push("group_context")
	if v := r.u16("version"); r.err == nil && v != mls10 {
		r.badEnum("version", 2, uint64(v))
	}
	r.u16("cipher_suite")
	info.GroupID = r.vector("group_id")
	info.Epoch = r.u64("epoch")
	r.vector("tree_hash")
	r.vector("confirmed_transcript_hash")
	r.extensions("extensions")
	r.pop()
	info.treeInExt = r.extensions("extensions")
	r.vector("confirmation_tag")
	r.u32("signer")
	r.vector("signature")
	return info
}

// ratchetTree reads optional<Node> ratchet_tree<V> (RFC 9420 section
// 12.4.3.3): leaves at even positions, parents at odd ones, an odd number
// of entries, the last one not blank.
func (r *reader) ratchetTree(field string) {
	count, lastBlank := 0, false
	start := r.off
	r.list(field, func(i int) {
		count++
		lastBlank = !r.flag("present")
		if lastBlank {
			return
		}
		t := r.u8("node_type")
		switch {
		case r.err != nil:
		case t == 1 && i%2 == 0:
			r.leafNode("leaf_node", 0)
		case t == 2 && i%2 == 1:
			r.push("parent_node")
			r.vector("encryption_key")
			r.vector("parent_hash")
			at := r.off
			if v := r.vector("unmerged_leaves"); len(v)%4 != 0 {
				r.failAt(at, "unmerged_leaves", errElementLength, strconv.Itoa(len(v))+" bytes")
			}
			r.pop()
		case t == 1 || t == 2:
			r.badEnum("node_type", 1, uint64(t))
			r.err.Detail += " at position " + strconv.Itoa(i)
		default:
			r.badEnum("node_type", 1, uint64(t))
		}
	})
	switch {
	case r.err != nil:
	case count == 0:
		r.failAt(start, field, errBadTree, "no nodes")
	case count%2 == 0:
		r.failAt(start, field, errBadTree, "even number of nodes")
	case lastBlank:
		r.failAt(start, field, errBadTree, "last node blank")
	}
}
