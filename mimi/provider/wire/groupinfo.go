package wire

import "strconv"

// GroupInfoRequest asks the hub for what an external joiner needs
// (draft-ietf-mimi-protocol-06 section 5.6), signed by the requester.
type GroupInfoRequest struct {
	Protocol Protocol
	// CipherSuite only names the algorithms of the request's and the
	// response's signatures.
	CipherSuite            uint16
	RequestingSignatureKey []byte
	// RequestingCredential is an encoded RFC 9420 Credential.
	RequestingCredential []byte
	// GroupInfoPublicKey is the HPKE key the answer is encrypted to.
	GroupInfoPublicKey []byte
	// JoiningCode is opaque joiningCode<V>, empty when there is none.
	JoiningCode []byte
	Signature   []byte
}

// Marshal encodes g.
func (g *GroupInfoRequest) Marshal() ([]byte, error) {
	w := newWriter("groupInfoRequest")
	g.encodeTBS(w)
	w.opaque("signature", g.Signature)
	return w.result()
}

// TBS returns the bytes the requester signs: SignContent with the label
// "MLS 1.0 GroupInfoRequestTBS" over the request without its signature.
// joiningCode is opaque<V> there as in the request.
func (g *GroupInfoRequest) TBS() ([]byte, error) {
	w := newWriter("groupInfoRequest")
	g.encodeTBS(w)
	b, err := w.result()
	if err != nil {
		return nil, err
	}
	return SignContent("GroupInfoRequestTBS", b), nil
}

func (g *GroupInfoRequest) encodeTBS(w *writer) {
	w.protocol("protocol", g.Protocol)
	w.u16(g.CipherSuite)
	w.opaque("requestingSignatureKey", g.RequestingSignatureKey)
	w.mls("requestingCredential", kindCredential, g.RequestingCredential)
	w.opaque("groupInfoPublicKey", g.GroupInfoPublicKey)
	w.opaque("joiningCode", g.JoiningCode)
}

// UnmarshalGroupInfoRequest decodes one whole GroupInfoRequest.
func UnmarshalGroupInfoRequest(b []byte) (*GroupInfoRequest, error) {
	r := newReader(b, "groupInfoRequest")
	g := new(GroupInfoRequest)
	g.Protocol = r.protocol("protocol")
	g.CipherSuite = r.u16("cipher_suite")
	g.RequestingSignatureKey = r.opaque("requestingSignatureKey")
	cred, _ := r.embedded("requestingCredential", kindCredential)
	g.RequestingCredential = clone(cred)
	g.GroupInfoPublicKey = r.opaque("groupInfoPublicKey")
	g.JoiningCode = r.opaque("joiningCode")
	g.Signature = r.opaque("signature")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return g, nil
}

// GroupInfoCode is a GroupInfoResponse's status.
type GroupInfoCode uint8

const (
	GroupInfoSuccess       GroupInfoCode = 1
	GroupInfoNotAuthorized GroupInfoCode = 2
	GroupInfoNoSuchRoom    GroupInfoCode = 3
)

func (c GroupInfoCode) String() string {
	switch c {
	case GroupInfoSuccess:
		return "success"
	case GroupInfoNotAuthorized:
		return "notAuthorized"
	case GroupInfoNoSuchRoom:
		return "noSuchRoom"
	}
	return "GroupInfoCode(" + strconv.Itoa(int(c)) + ")"
}

// GroupInfoResponse is the hub's answer to a GroupInfoRequest. Only a
// success carries the fields after Status.
type GroupInfoResponse struct {
	// Protocol is the field the draft calls version.
	Protocol    Protocol
	RoomID      string
	Status      GroupInfoCode
	CipherSuite uint16
	HubSender   ExternalSender
	// Encrypted is encrypted_groupinfo_and_tree: a GroupInfoRatchetTreeTBE
	// encrypted with EncryptWithLabel(groupInfoPublicKey, "GroupInfo and
	// ratchet_tree encryption", room_id, ...).
	Encrypted HPKECiphertext
	Signature []byte
}

// Marshal encodes g.
func (g *GroupInfoResponse) Marshal() ([]byte, error) {
	w := newWriter("groupInfoResponse")
	g.encodeTBS(w)
	if g.Status == GroupInfoSuccess {
		w.opaque("signature", g.Signature)
	}
	return w.result()
}

// TBS returns the bytes the hub signs in a success: SignContent with the
// label "MLS 1.0 GroupInfoResponseTBS" over the response without its
// signature.
func (g *GroupInfoResponse) TBS() ([]byte, error) {
	w := newWriter("groupInfoResponse")
	if g.Status != GroupInfoSuccess {
		w.fail("status", errNotAllowed, "only a success is signed")
	}
	g.encodeTBS(w)
	b, err := w.result()
	if err != nil {
		return nil, err
	}
	return SignContent("GroupInfoResponseTBS", b), nil
}

func (g *GroupInfoResponse) encodeTBS(w *writer) {
	w.protocol("version", g.Protocol)
	w.str("room_id", g.RoomID)
	w.enum("status", uint8(g.Status), 1, 3)
	if g.Status != GroupInfoSuccess {
		w.empty("cipher_suite", g.CipherSuite != 0)
		w.empty("hub_sender", len(g.HubSender.SignatureKey) > 0 || len(g.HubSender.Credential) > 0)
		w.empty("encrypted_groupinfo_and_tree", len(g.Encrypted.KEMOutput) > 0 || len(g.Encrypted.Ciphertext) > 0)
		w.empty("signature", len(g.Signature) > 0)
		return
	}
	w.u16(g.CipherSuite)
	g.HubSender.encode(w, "hub_sender")
	g.Encrypted.encode(w, "encrypted_groupinfo_and_tree")
}

// UnmarshalGroupInfoResponse decodes one whole GroupInfoResponse.
func UnmarshalGroupInfoResponse(b []byte) (*GroupInfoResponse, error) {
	r := newReader(b, "groupInfoResponse")
	g := new(GroupInfoResponse)
	g.Protocol = r.protocol("version")
	g.RoomID = r.str("room_id")
	g.Status = GroupInfoCode(r.enum("status", 1, 3))
	if g.Status == GroupInfoSuccess {
		g.CipherSuite = r.u16("cipher_suite")
		g.HubSender.decode(r, "hub_sender")
		g.Encrypted.decode(r, "encrypted_groupinfo_and_tree")
		g.Signature = r.opaque("signature")
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return g, nil
}

// PendingProposal is a proposal the hub accepted in the current epoch.
type PendingProposal struct {
	Proposal        []byte // an MLSMessage of content_type proposal
	HubAcceptedTime uint64 // milliseconds since the UNIX epoch
}

func (p *PendingProposal) encode(w *writer) {
	if info := w.mls("proposal", kindMessage, p.Proposal); w.err == nil && !isProposal(info) {
		w.fail("proposal", errNotAllowed, "not a proposal")
	}
	w.u64(p.HubAcceptedTime)
}

func (p *PendingProposal) decode(r *reader) {
	start := r.off
	m, info := r.embedded("proposal", kindMessage)
	if r.err == nil && !isProposal(info) {
		r.failAt(start, "proposal", errNotAllowed, "not a proposal")
	}
	p.Proposal = clone(m)
	p.HubAcceptedTime = r.u64("hub_accepted_time")
}

// GroupInfoRatchetTreeTBE is the plaintext of a GroupInfoResponse's
// encrypted_groupinfo_and_tree.
type GroupInfoRatchetTreeTBE struct {
	// GroupInfo is a bare RFC 9420 GroupInfo without a ratchet_tree
	// extension.
	GroupInfo        []byte
	RatchetTree      RatchetTreeOption
	PendingProposals []PendingProposal
}

// Marshal encodes t.
func (t *GroupInfoRatchetTreeTBE) Marshal() ([]byte, error) {
	w := newWriter("groupInfoRatchetTreeTBE")
	if info := w.mls("groupInfo", kindGroupInfo, t.GroupInfo); info.treeInExt {
		w.fail("groupInfo", errNotAllowed, "carries a ratchet_tree extension")
	}
	t.RatchetTree.encode(w, "ratchetTreeOption")
	w.list("pending_proposals", len(t.PendingProposals), func(i int) { t.PendingProposals[i].encode(w) })
	return w.result()
}

// UnmarshalGroupInfoRatchetTreeTBE decodes one whole
// GroupInfoRatchetTreeTBE.
func UnmarshalGroupInfoRatchetTreeTBE(b []byte) (*GroupInfoRatchetTreeTBE, error) {
	r := newReader(b, "groupInfoRatchetTreeTBE")
	t := new(GroupInfoRatchetTreeTBE)
	gi, info := r.embedded("groupInfo", kindGroupInfo)
	if info.treeInExt {
		r.failAt(0, "groupInfo", errNotAllowed, "carries a ratchet_tree extension")
	}
	t.GroupInfo = clone(gi)
	t.RatchetTree.decode(r, "ratchetTreeOption")
	r.list("pending_proposals", func(int) {
		var p PendingProposal
		p.decode(r)
		t.PendingProposals = append(t.PendingProposals, p)
	})
	if err := r.finish(); err != nil {
		return nil, err
	}
	return t, nil
}
