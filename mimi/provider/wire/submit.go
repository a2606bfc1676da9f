package wire

import "strconv"

// SubmitMessageRequest hands an application message to the hub
// (draft-ietf-mimi-protocol-06 section 5.4).
type SubmitMessageRequest struct {
	Protocol Protocol
	// AppMessage is an MLSMessage: a PrivateMessage of content_type
	// application.
	AppMessage []byte
	// SendingURI is the sender's user URI, an active participant.
	SendingURI string
}

// Marshal encodes m.
func (m *SubmitMessageRequest) Marshal() ([]byte, error) {
	w := newWriter("submitMessageRequest")
	w.protocol("protocol", m.Protocol)
	if info := w.mls("appMessage", kindMessage, m.AppMessage); w.err == nil && !isPrivateApplication(info) {
		w.fail("appMessage", errNotAllowed, "not a PrivateMessage of content_type application")
	}
	w.str("sendingUri", m.SendingURI)
	return w.result()
}

// UnmarshalSubmitMessageRequest decodes one whole SubmitMessageRequest.
func UnmarshalSubmitMessageRequest(b []byte) (*SubmitMessageRequest, error) {
	r := newReader(b, "submitMessageRequest")
	m := new(SubmitMessageRequest)
	m.Protocol = r.protocol("protocol")
	start := r.off
	msg, info := r.embedded("appMessage", kindMessage)
	if r.err == nil && !isPrivateApplication(info) {
		r.failAt(start, "appMessage", errNotAllowed, "not a PrivateMessage of content_type application")
	}
	m.AppMessage = clone(msg)
	m.SendingURI = r.str("sendingUri")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

func isPrivateApplication(info mlsInfo) bool {
	return info.WireFormat == PrivateMessage && info.ContentType == Application
}

// SubmitStatus is a SubmitMessageResponse's statusCode.
type SubmitStatus uint8

const (
	Accepted         SubmitStatus = 0
	SubmitNotAllowed SubmitStatus = 1
	EpochTooOld      SubmitStatus = 2
)

func (s SubmitStatus) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case SubmitNotAllowed:
		return "notAllowed"
	case EpochTooOld:
		return "epochTooOld"
	}
	return "SubmitStatus(" + strconv.Itoa(int(s)) + ")"
}

// SubmitMessageResponse is the hub's answer to a SubmitMessageRequest.
// Only the fields of its Status are carried.
type SubmitMessageResponse struct {
	Protocol          Protocol
	Status            SubmitStatus
	AcceptedTimestamp uint64 // accepted: milliseconds since the UNIX epoch
	Frank             *Frank // accepted, optional
	CurrentEpoch      uint64 // epochTooOld
}

// Marshal encodes m.
func (m *SubmitMessageResponse) Marshal() ([]byte, error) {
	w := newWriter("submitMessageResponse")
	w.protocol("protocol", m.Protocol)
	w.enum("statusCode", uint8(m.Status), 0, 2)
	w.empty("accepted_timestamp", m.Status != Accepted && m.AcceptedTimestamp != 0)
	w.empty("frank", m.Status != Accepted && m.Frank != nil)
	w.empty("currentEpoch", m.Status != EpochTooOld && m.CurrentEpoch != 0)
	switch m.Status {
	case Accepted:
		w.u64(m.AcceptedTimestamp)
		w.optFrank("frank", m.Frank)
	case EpochTooOld:
		w.u64(m.CurrentEpoch)
	}
	return w.result()
}

// UnmarshalSubmitMessageResponse decodes one whole SubmitMessageResponse.
func UnmarshalSubmitMessageResponse(b []byte) (*SubmitMessageResponse, error) {
	r := newReader(b, "submitMessageResponse")
	m := new(SubmitMessageResponse)
	m.Protocol = r.protocol("protocol")
	m.Status = SubmitStatus(r.enum("statusCode", 0, 2))
	switch m.Status {
	case Accepted:
		m.AcceptedTimestamp = r.u64("accepted_timestamp")
		m.Frank = r.optFrank("frank")
	case EpochTooOld:
		m.CurrentEpoch = r.u64("currentEpoch")
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}
