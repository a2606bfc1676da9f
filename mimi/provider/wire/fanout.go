package wire

// FanoutMessage is one message a hub distributes to a follower
// (draft-ietf-mimi-protocol-06 section 5.5). What follows the message
// depends on the message, and only the fields for it are carried:
//
//   - application (PrivateMessage or PublicMessage): Frank, optional;
//   - Welcome: RatchetTree;
//   - proposal: MoreProposals, as in the originating HandshakeBundle;
//   - commit: ExternalProposals the hub staples to an external commit.
type FanoutMessage struct {
	Timestamp         uint64 // the hub's acceptance, milliseconds since the UNIX epoch
	Message           []byte // an MLSMessage: PublicMessage, PrivateMessage or Welcome
	Frank             *Frank
	RatchetTree       RatchetTreeOption
	MoreProposals     [][]byte
	ExternalProposals [][]byte
}

// Marshal encodes m.
func (m *FanoutMessage) Marshal() ([]byte, error) {
	w := newWriter("fanoutMessage")
	m.encode(w)
	return w.result()
}

// UnmarshalFanoutMessage decodes one whole FanoutMessage.
func UnmarshalFanoutMessage(b []byte) (*FanoutMessage, error) {
	r := newReader(b, "fanoutMessage")
	m := new(FanoutMessage)
	m.decode(r)
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// MarshalNotify encodes the body of a notify request: one or more
// FanoutMessages back to back.
func MarshalNotify(msgs ...*FanoutMessage) ([]byte, error) {
	w := newWriter("notify")
	if len(msgs) == 0 {
		w.fail("", errEmpty, "")
	}
	top := len(w.path) - 1
	for i := 0; i < len(msgs) && w.err == nil; i++ {
		w.path[top].idx = i
		if msgs[i] == nil {
			w.fail("", errEmpty, "nil message")
			break
		}
		msgs[i].encode(w)
	}
	return w.result()
}

// UnmarshalNotify decodes the body of a notify request. An empty body is
// an error.
func UnmarshalNotify(b []byte) ([]*FanoutMessage, error) {
	r := newReader(b, "notify")
	if len(b) == 0 {
		r.fail("", errEmpty, "")
	}
	var out []*FanoutMessage
	for i := 0; r.err == nil && r.off < len(b); i++ {
		r.path[0].idx = i
		m := new(FanoutMessage)
		m.decode(r)
		out = append(out, m)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// fanoutCase is what follows a FanoutMessage's message.
type fanoutCase uint8

const (
	fanoutBad fanoutCase = iota
	fanoutApplication
	fanoutWelcome
	fanoutProposal
	fanoutCommit
)

func fanoutCaseOf(info mlsInfo) fanoutCase {
	switch {
	case info.WireFormat == Welcome:
		return fanoutWelcome
	case !hasContentType(info):
		return fanoutBad
	case info.ContentType == Application:
		return fanoutApplication
	case info.ContentType == Proposal:
		return fanoutProposal
	case info.ContentType == Commit:
		return fanoutCommit
	}
	return fanoutBad
}

func (m *FanoutMessage) encode(w *writer) {
	w.u64(m.Timestamp)
	info := w.mls("message", kindMessage, m.Message)
	if w.err != nil {
		return
	}
	c := fanoutCaseOf(info)
	w.empty("frank", c != fanoutApplication && m.Frank != nil)
	w.empty("ratchetTreeOption", c != fanoutWelcome && m.RatchetTree.Kind != 0)
	w.empty("moreProposals", c != fanoutProposal && len(m.MoreProposals) > 0)
	w.empty("externalProposals", c != fanoutCommit && len(m.ExternalProposals) > 0)
	switch c {
	case fanoutApplication:
		w.optFrank("frank", m.Frank)
	case fanoutWelcome:
		m.RatchetTree.encode(w, "ratchetTreeOption")
	case fanoutProposal:
		w.proposals("moreProposals", m.MoreProposals)
	case fanoutCommit:
		w.proposals("externalProposals", m.ExternalProposals)
	default:
		w.fail("message", errNotAllowed, info.WireFormat.String())
	}
}

func (m *FanoutMessage) decode(r *reader) {
	m.Timestamp = r.u64("timestamp")
	start := r.off
	msg, info := r.embedded("message", kindMessage)
	m.Message = clone(msg)
	if r.err != nil {
		return
	}
	switch fanoutCaseOf(info) {
	case fanoutApplication:
		m.Frank = r.optFrank("frank")
	case fanoutWelcome:
		m.RatchetTree.decode(r, "ratchetTreeOption")
	case fanoutProposal:
		m.MoreProposals = r.proposals("moreProposals")
	case fanoutCommit:
		m.ExternalProposals = r.proposals("externalProposals")
	default:
		r.failAt(start, "message", errNotAllowed, info.WireFormat.String())
	}
}
