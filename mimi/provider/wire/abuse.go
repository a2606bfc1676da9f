package wire

// AbuseType is an AbuseReport's reasonCode. The draft reserves the field
// and assigns no values yet, so every value is carried as it is.
type AbuseType uint8

// AbusiveMessage is one allegedly abusive message, with the frank that
// lets the hub check it.
type AbusiveMessage struct {
	Content           []byte // message_content, e.g. a MIMI content message
	Frank             Frank  // a bare Frank: the draft writes no optional here
	AcceptedTimestamp uint64
}

// AbuseReport reports a user to a room's hub (draft-ietf-mimi-protocol-06
// section 5.9). No response body answers it.
type AbuseReport struct {
	ReportingUser    string // may be empty
	AllegedAbuserURI string
	Reason           AbuseType
	Note             string // UTF-8, may be empty
	Messages         []AbusiveMessage
	Extensions       AppDataDictionary // abuse_extensions
}

// Marshal encodes a.
func (a *AbuseReport) Marshal() ([]byte, error) {
	w := newWriter("abuseReport")
	w.str("reportingUser", a.ReportingUser)
	w.str("allegedAbuserUri", a.AllegedAbuserURI)
	w.u8(uint8(a.Reason))
	w.str("note", a.Note)
	w.list("messages", len(a.Messages), func(i int) { a.Messages[i].encode(w) })
	a.Extensions.encode(w, "abuse_extensions")
	return w.result()
}

// UnmarshalAbuseReport decodes one whole AbuseReport.
func UnmarshalAbuseReport(b []byte) (*AbuseReport, error) {
	r := newReader(b, "abuseReport")
	a := new(AbuseReport)
	a.ReportingUser = r.str("reportingUser")
	a.AllegedAbuserURI = r.str("allegedAbuserUri")
	a.Reason = AbuseType(r.u8("reasonCode"))
	a.Note = r.str("note")
	r.list("messages", func(int) {
		var m AbusiveMessage
		m.decode(r)
		a.Messages = append(a.Messages, m)
	})
	a.Extensions.decode(r, "abuse_extensions")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return a, nil
}

func (m *AbusiveMessage) decode(r *reader) {
	m.Content = r.opaque("message_content")
	m.Frank.decode(r, "frank")
	m.AcceptedTimestamp = r.u64("accepted_timestamp")
}

func (m *AbusiveMessage) encode(w *writer) {
	w.opaque("message_content", m.Content)
	m.Frank.encode(w, "frank")
	w.u64(m.AcceptedTimestamp)
}
