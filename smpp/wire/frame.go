package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// HeaderLen is the length of every PDU header: command_length, command_id,
// command_status, sequence_number.
const HeaderLen = 16

// DefaultMaxLen bounds a PDU when the caller sets no bound. It leaves room
// for a message_payload of a long text (64 KiB is the TLV limit, but no SMSC
// sends that much in one PDU) while keeping a hostile length from costing
// memory.
const DefaultMaxLen = 16 << 10

// Header is a decoded PDU header.
type Header struct {
	Length uint32
	ID     pdu.ID
	Status pdu.Status
	Seq    uint32
}

// IsResponse reports whether the PDU answers a request (bit 31 of
// command_id).
func (h Header) IsResponse() bool { return h.ID&0x80000000 != 0 }

// FrameError is a PDU whose header cannot be taken as it stands. The peer
// gets a generic_nack with Status.
type FrameError struct {
	Header Header
	Status pdu.Status
	Reason string
	// Fatal means the stream can no longer be cut into PDUs (a length below
	// the header size), so the link must be closed after the nack.
	Fatal bool
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("smpp frame: %s (command_id %#x, seq %d)", e.Reason, uint32(e.Header.ID), e.Header.Seq)
}

// Reader cuts a byte stream into PDUs.
type Reader struct {
	r   *bufio.Reader
	max uint32
	hdr [HeaderLen]byte
}

// NewReader reads PDUs from r, refusing any longer than max bytes
// (DefaultMaxLen if max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxLen
	}
	return &Reader{r: bufio.NewReaderSize(r, 16<<10), max: uint32(max)}
}

// Next returns the next PDU's header and body. The body is freshly
// allocated; callers may keep it. A *FrameError reports a PDU to nack; after
// a non-fatal one the reader has skipped that PDU and can go on. Any other
// error is the stream's.
func (r *Reader) Next() (Header, []byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Header{}, nil, err
	}
	h := Header{
		Length: binary.BigEndian.Uint32(r.hdr[0:4]),
		ID:     pdu.ID(binary.BigEndian.Uint32(r.hdr[4:8])),
		Status: pdu.Status(binary.BigEndian.Uint32(r.hdr[8:12])),
		Seq:    binary.BigEndian.Uint32(r.hdr[12:16]),
	}
	switch {
	case h.Length < HeaderLen:
		return h, nil, &FrameError{Header: h, Status: StatusInvCmdLen, Fatal: true,
			Reason: fmt.Sprintf("command_length %d is below the header size", h.Length)}
	case h.Length > r.max:
		// Skip the body so the stream stays in step; a peer that lies about
		// the length this much is closed by the session after the nack.
		if _, err := io.CopyN(io.Discard, r.r, int64(h.Length-HeaderLen)); err != nil {
			return h, nil, err
		}
		return h, nil, &FrameError{Header: h, Status: StatusInvCmdLen,
			Reason: fmt.Sprintf("command_length %d exceeds the limit of %d", h.Length, r.max)}
	}
	body := make([]byte, h.Length-HeaderLen)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, body, nil
}

// AppendHeader appends a body-less PDU (enquire_link, unbind, their
// responses, generic_nack, and any response with an error status).
func AppendHeader(dst []byte, id pdu.ID, status pdu.Status, seq uint32) []byte {
	return appendHeader(dst, HeaderLen, id, status, seq)
}

func appendHeader(dst []byte, length uint32, id pdu.ID, status pdu.Status, seq uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, length)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	dst = binary.BigEndian.AppendUint32(dst, uint32(status))
	return binary.BigEndian.AppendUint32(dst, seq)
}
