package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// MessageID names one version of a message: a hash algorithm octet (1 for
// SHA-256) and the first 31 octets of the hash (content-08 section 3.3).
type MessageID [32]byte

// HashSHA256 is the IANA named-information identifier of SHA-256, the first
// octet of every message ID computed today.
const HashSHA256 = 0x01

// String returns the ID in lowercase hex, as the bus headers carry it.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is unset.
func (id MessageID) IsZero() bool { return id == MessageID{} }

// ParseMessageID parses 64 hex digits.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("content: message ID %q: %d hex digits, want %d", s, len(s), 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return MessageID{}, fmt.Errorf("content: message ID %q: %w", s, err)
	}
	return id, nil
}

// MarshalText writes the ID as String does.
func (id MessageID) MarshalText() ([]byte, error) {
	b := make([]byte, 2*len(id))
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText reads the ID as ParseMessageID does.
func (id *MessageID) UnmarshalText(b []byte) error {
	v, err := ParseMessageID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ComputeID returns the content-08 message ID of a message encoded as
// encoded, sent by senderURI in roomURI:
//
//	h  = SHA-256(u16be(len(sender)) || sender || u16be(len(room)) || room || encoded || salt)
//	id = 0x01 || h[0:31]
//
// A URI longer than MaxURI has no 16-bit length, so the result is then the
// zero ID (see IsZero); Decode and Encode never let such URIs through.
func ComputeID(senderURI, roomURI string, encoded []byte, salt [16]byte) MessageID {
	if len(senderURI) > MaxURI || len(roomURI) > MaxURI {
		return MessageID{}
	}
	h := sha256.New()
	// The URIs go through a stack buffer: converting them to []byte
	// would allocate.
	var buf [64]byte
	for _, s := range [2]string{senderURI, roomURI} {
		buf[0], buf[1] = byte(len(s)>>8), byte(len(s))
		n := 2 + copy(buf[2:], s)
		h.Write(buf[:n])
		for s = s[n-2:]; s != ""; s = s[n:] {
			n = copy(buf[:], s)
			h.Write(buf[:n])
		}
	}
	h.Write(encoded)
	h.Write(salt[:])
	var sum [sha256.Size]byte
	return idFromHash(h.Sum(sum[:0]))
}

func idFromHash(sum []byte) MessageID {
	var id MessageID
	id[0] = HashSHA256
	copy(id[1:], sum)
	return id
}

// ID returns the message ID of m, with its own extensions 1 and 2 as
// sender and room. Without either, it returns ErrNoURI: the caller then
// knows them from elsewhere (the MLS credential, the group) and uses
// ComputeID.
func (m *Message) ID() (MessageID, error) {
	s, r := m.Extensions.SenderURI, m.Extensions.RoomURI
	if s == "" || r == "" {
		return MessageID{}, ErrNoURI
	}
	if err := checkURI("senderUri", s); err != nil {
		return MessageID{}, err
	}
	if err := checkURI("roomUri", r); err != nil {
		return MessageID{}, err
	}
	// One buffer holds the whole hash input, so the ID costs one
	// allocation and no hash state on the heap.
	buf := make([]byte, 0, 4+len(s)+len(r)+m.sizeHint()+len(m.Salt))
	buf = append(buf, byte(len(s)>>8), byte(len(s)))
	buf = append(buf, s...)
	buf = append(buf, byte(len(r)>>8), byte(len(r)))
	buf = append(buf, r...)
	buf, err := m.AppendBinary(buf)
	if err != nil {
		return MessageID{}, err
	}
	buf = append(buf, m.Salt[:]...)
	sum := sha256.Sum256(buf)
	return idFromHash(sum[:]), nil
}
