package wire

import "strconv"

// HandshakeBundle is the body of an update request for mls10
// (draft-ietf-mimi-protocol-06 section 5.3): a proposal or commit and what
// goes with it. Only the fields of its content type are carried.
type HandshakeBundle struct {
	// ProposalOrCommit is an MLSMessage (PublicMessage or PrivateMessage)
	// of content_type proposal or commit.
	ProposalOrCommit []byte
	// Welcome (commit, optional) is a bare RFC 9420 Welcome, not an
	// MLSMessage; nil when absent.
	Welcome []byte
	// GroupInfo and RatchetTree (commit) are required with a commit.
	GroupInfo   GroupInfoOption
	RatchetTree RatchetTreeOption
	// MoreProposals (proposal) are MLSMessages of content_type proposal.
	MoreProposals [][]byte
}

// Marshal encodes h.
func (h *HandshakeBundle) Marshal() ([]byte, error) {
	w := newWriter("handshakeBundle")
	info := w.mls("proposalOrCommit", kindMessage, h.ProposalOrCommit)
	if w.err != nil {
		return nil, w.err
	}
	isCommit := info.ContentType == Commit
	w.empty("welcome", !isCommit && len(h.Welcome) > 0)
	w.empty("groupInfoOption", !isCommit && (h.GroupInfo.Kind != 0 || len(h.GroupInfo.GroupInfo) > 0))
	w.empty("ratchetTreeOption", !isCommit && h.RatchetTree.Kind != 0)
	w.empty("moreProposals", isCommit && len(h.MoreProposals) > 0)
	switch {
	case !hasContentType(info):
		w.fail("proposalOrCommit", errNotAllowed, info.WireFormat.String())
	case info.ContentType == Commit:
		w.flag(len(h.Welcome) > 0)
		if len(h.Welcome) > 0 {
			w.mls("welcome", kindWelcome, h.Welcome)
		}
		h.GroupInfo.encode(w, "groupInfoOption")
		h.RatchetTree.encode(w, "ratchetTreeOption")
	case info.ContentType == Proposal:
		w.proposals("moreProposals", h.MoreProposals)
	default:
		w.fail("proposalOrCommit", errNotAllowed, "content_type "+info.ContentType.String())
	}
	return w.result()
}

// UnmarshalHandshakeBundle decodes one whole HandshakeBundle.
func UnmarshalHandshakeBundle(b []byte) (*HandshakeBundle, error) {
	r := newReader(b, "handshakeBundle")
	h := new(HandshakeBundle)
	msg, info := r.embedded("proposalOrCommit", kindMessage)
	h.ProposalOrCommit = clone(msg)
	switch {
	case r.err != nil:
	case !hasContentType(info):
		r.failAt(0, "proposalOrCommit", errNotAllowed, info.WireFormat.String())
	case info.ContentType == Commit:
		if r.flag("welcome") {
			wel, _ := r.embedded("welcome", kindWelcome)
			h.Welcome = clone(wel)
		}
		h.GroupInfo.decode(r, "groupInfoOption")
		h.RatchetTree.decode(r, "ratchetTreeOption")
	case info.ContentType == Proposal:
		h.MoreProposals = r.proposals("moreProposals")
	default:
		r.failAt(0, "proposalOrCommit", errNotAllowed, "content_type "+info.ContentType.String())
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return h, nil
}

// hasContentType: the wire formats that carry a content_type in the clear.
func hasContentType(info mlsInfo) bool {
	return info.WireFormat == PublicMessage || info.WireFormat == PrivateMessage
}

// UpdateCode is an UpdateRoomResponse's responseCode.
type UpdateCode uint8

const (
	UpdateSuccess   UpdateCode = 0
	WrongEpoch      UpdateCode = 1
	NotAllowed      UpdateCode = 2
	InvalidProposal UpdateCode = 3
)

func (c UpdateCode) String() string {
	switch c {
	case UpdateSuccess:
		return "success"
	case WrongEpoch:
		return "wrongEpoch"
	case NotAllowed:
		return "notAllowed"
	case InvalidProposal:
		return "invalidProposal"
	}
	return "UpdateCode(" + strconv.Itoa(int(c)) + ")"
}

// UpdateRoomResponse is the hub's answer to an update request. Only the
// fields of its Code are carried.
type UpdateRoomResponse struct {
	Code              UpdateCode
	ErrorDescription  string
	AcceptedTimestamp uint64   // success: milliseconds since the UNIX epoch
	CurrentEpoch      uint64   // wrongEpoch
	InvalidProposals  [][]byte // invalidProposal: ProposalRefs
}

// Marshal encodes m.
func (m *UpdateRoomResponse) Marshal() ([]byte, error) {
	w := newWriter("updateRoomResponse")
	w.enum("responseCode", uint8(m.Code), 0, 3)
	w.str("errorDescription", m.ErrorDescription)
	w.empty("accepted_timestamp", m.Code != UpdateSuccess && m.AcceptedTimestamp != 0)
	w.empty("currentEpoch", m.Code != WrongEpoch && m.CurrentEpoch != 0)
	w.empty("invalidProposals", m.Code != InvalidProposal && len(m.InvalidProposals) > 0)
	switch m.Code {
	case UpdateSuccess:
		w.u64(m.AcceptedTimestamp)
	case WrongEpoch:
		w.u64(m.CurrentEpoch)
	case InvalidProposal:
		w.list("invalidProposals", len(m.InvalidProposals), func(i int) {
			w.opaque("", m.InvalidProposals[i])
		})
	}
	return w.result()
}

// UnmarshalUpdateRoomResponse decodes one whole UpdateRoomResponse.
func UnmarshalUpdateRoomResponse(b []byte) (*UpdateRoomResponse, error) {
	r := newReader(b, "updateRoomResponse")
	m := new(UpdateRoomResponse)
	m.Code = UpdateCode(r.enum("responseCode", 0, 3))
	m.ErrorDescription = r.str("errorDescription")
	switch m.Code {
	case UpdateSuccess:
		m.AcceptedTimestamp = r.u64("accepted_timestamp")
	case WrongEpoch:
		m.CurrentEpoch = r.u64("currentEpoch")
	case InvalidProposal:
		r.list("invalidProposals", func(int) {
			m.InvalidProposals = append(m.InvalidProposals, clone(r.vector("")))
		})
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}
