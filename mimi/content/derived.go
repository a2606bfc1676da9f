package content

// DerivedValues is what travels beside a message rather than inside it: the
// hub's accepted time and what MLS tells the receiver about the sender
// (content-08 section 4.6, MessageDerivedValues). It is not a Message;
// Decode rejects its encoding at the salt.
type DerivedValues struct {
	MessageID       MessageID
	HubAccepted     uint64 // milliseconds since the Unix epoch
	MLSGroupID      []byte
	SenderLeafIndex uint32
	SenderClientURL string
	SenderUserURL   string
	RoomURL         string
}

// DecodeDerivedValues parses MessageDerivedValues with the strictness of
// Decode. The timestamp must be plain milliseconds: the RFC 9581 extended
// time form (tag 1001) is refused, as nothing here produces it.
func DecodeDerivedValues(b []byte) (*DerivedValues, error) {
	r := reader{b: b}
	if _, err := r.array("derivedValues", 7, 1); err != nil {
		return nil, err
	}
	v := new(DerivedValues)
	if err := r.fixedBytes("messageId", v.MessageID[:]); err != nil {
		return nil, err
	}
	start := r.off
	h, err := r.readHead("hubAcceptedTimestamp")
	if err != nil {
		return nil, err
	}
	switch {
	case h.major == majorTag && h.arg == 1001:
		return nil, r.fail("hubAcceptedTimestamp", start, ErrSchema, "extended time (tag 1001) is not supported, want milliseconds")
	case h.major != majorUint:
		return nil, r.fail("hubAcceptedTimestamp", start, ErrSchema, "%s, want unsigned integer", h.describe())
	}
	v.HubAccepted = h.arg
	s, e, err := r.bytes("mlsGroupId")
	if err != nil {
		return nil, err
	}
	if s != e {
		v.MLSGroupID = append([]byte(nil), b[s:e]...)
	}
	leaf, err := r.uint("senderLeafIndex", 1<<32-1)
	if err != nil {
		return nil, err
	}
	v.SenderLeafIndex = uint32(leaf)
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"senderClientUrl", &v.SenderClientURL}, {"senderUserUrl", &v.SenderUserURL}, {"roomUrl", &v.RoomURL}} {
		s, e, err := r.text(f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = string(b[s:e])
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// Encode returns the values in core deterministic encoding.
func (v *DerivedValues) Encode() ([]byte, error) {
	for _, f := range [...]struct{ name, s string }{
		{"senderClientUrl", v.SenderClientURL}, {"senderUserUrl", v.SenderUserURL}, {"roomUrl", v.RoomURL},
	} {
		if err := checkURI(f.name, f.s); err != nil {
			return nil, err
		}
	}
	b := make([]byte, 0, 64+len(v.MLSGroupID)+len(v.SenderClientURL)+len(v.SenderUserURL)+len(v.RoomURL))
	b = append(b, majorArray<<5|7)
	b = appendBytes(b, v.MessageID[:])
	b = appendHead(b, majorUint, v.HubAccepted)
	b = appendBytes(b, v.MLSGroupID)
	b = appendHead(b, majorUint, uint64(v.SenderLeafIndex))
	b = appendText(b, v.SenderClientURL)
	b = appendText(b, v.SenderUserURL)
	b = appendText(b, v.RoomURL)
	return b, nil
}
