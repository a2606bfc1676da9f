package wire

import "strconv"

// ConsentOperation is a ConsentEntry's consentOperation.
type ConsentOperation uint8

const (
	ConsentCancel  ConsentOperation = 0
	ConsentRequest ConsentOperation = 1
	ConsentGrant   ConsentOperation = 2
	ConsentRevoke  ConsentOperation = 3
)

func (o ConsentOperation) String() string {
	switch o {
	case ConsentCancel:
		return "cancel"
	case ConsentRequest:
		return "request"
	case ConsentGrant:
		return "grant"
	case ConsentRevoke:
		return "revoke"
	}
	return "ConsentOperation(" + strconv.Itoa(int(o)) + ")"
}

// ConsentEntry asks for, cancels, grants or revokes a user's consent
// (draft-ietf-mimi-protocol-06 section 5.7). Its scope is RequesterURI,
// TargetURI and RoomID.
type ConsentEntry struct {
	Operation    ConsentOperation
	RequesterURI string
	TargetURI    string
	// RoomID is optional<RoomId>: "" when absent. A present but empty room
	// ID is refused.
	RoomID string
	// KeyPackages (grant only, may be empty) are bare RFC 9420 KeyPackages.
	KeyPackages [][]byte
	Extensions  AppDataDictionary // consent_extensions
}

// Marshal encodes c.
func (c *ConsentEntry) Marshal() ([]byte, error) {
	w := newWriter("consentEntry")
	w.enum("consentOperation", uint8(c.Operation), 0, 3)
	w.str("requesterUri", c.RequesterURI)
	w.str("targetUri", c.TargetURI)
	w.flag(c.RoomID != "")
	if c.RoomID != "" {
		w.str("roomId", c.RoomID)
	}
	w.empty("clientKeyPackages", c.Operation != ConsentGrant && len(c.KeyPackages) > 0)
	if c.Operation == ConsentGrant {
		w.list("clientKeyPackages", len(c.KeyPackages), func(i int) {
			w.mls("", kindKeyPackage, c.KeyPackages[i])
		})
	}
	c.Extensions.encode(w, "consent_extensions")
	return w.result()
}

// UnmarshalConsentEntry decodes one whole ConsentEntry.
func UnmarshalConsentEntry(b []byte) (*ConsentEntry, error) {
	r := newReader(b, "consentEntry")
	c := new(ConsentEntry)
	c.Operation = ConsentOperation(r.enum("consentOperation", 0, 3))
	c.RequesterURI = r.str("requesterUri")
	c.TargetURI = r.str("targetUri")
	if r.flag("roomId") {
		start := r.off
		c.RoomID = r.str("roomId")
		if r.err == nil && c.RoomID == "" {
			r.failAt(start, "roomId", errEmpty, "present but empty")
		}
	}
	if c.Operation == ConsentGrant {
		r.list("clientKeyPackages", func(int) {
			kp, _ := r.embedded("", kindKeyPackage)
			c.KeyPackages = append(c.KeyPackages, clone(kp))
		})
	}
	c.Extensions.decode(r, "consent_extensions")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return c, nil
}
