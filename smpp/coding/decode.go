package coding

import (
	"errors"
	"fmt"

	"github.com/mimigw/mimigw/smpp/gsm7"
)

var (
	// ErrUndecodable reports a data_coding that names no text alphabet
	// (binary, compressed, reserved, or a character set this package does
	// not carry) or bytes that are not valid in the alphabet it names.
	ErrUndecodable = errors.New("coding: undecodable short message")

	// ErrBadUDH reports a malformed user data header: a header length past
	// the end of the message, an information element past the header, or a
	// concatenation element with a wrong length, total 0, part 0 or a part
	// above the total.
	ErrBadUDH = errors.New("coding: malformed user data header")

	// ErrBadSAR reports SAR TLV values that are missing, of the wrong
	// length, or out of range, or that contradict the user data header.
	ErrBadSAR = errors.New("coding: bad SAR TLVs")
)

// SMPP TLV tags this package reads or writes the values of.
const (
	TagSARMsgRefNum     = 0x020C // 2 octets
	TagSARTotalSegments = 0x020E // 1 octet
	TagSARSegmentSeqnum = 0x020F // 1 octet
	TagMessagePayload   = 0x0424
)

// ConcatInfo says which part of a concatenated message a short message is.
type ConcatInfo struct {
	Ref   uint16
	Total uint8
	Seq   uint8 // 1..Total
	Wide  bool  // 16-bit reference (IEI 0x08 or SAR); false for IEI 0x00
}

func (c ConcatInfo) validate() error {
	switch {
	case c.Total == 0:
		return fmt.Errorf("total of 0 parts")
	case c.Seq == 0:
		return fmt.Errorf("part number 0 (of %d)", c.Total)
	case c.Seq > c.Total:
		return fmt.Errorf("part %d above the total of %d", c.Seq, c.Total)
	}
	return nil
}

// Part is one decoded short message.
type Part struct {
	Text     string
	Concat   *ConcatInfo // nil for a message that is not concatenated
	Alphabet Alphabet    // the alphabet the bytes were in
	// HeadLow and TailHigh hold a UTF-16 surrogate half that a sender cut
	// off at the start or end of a UCS-2 segment (zero when none); whoever
	// joins the segments pairs them (gateway.Segment). Text never contains
	// them.
	HeadLow, TailHigh uint16
}

// Information element identifiers of the concatenation headers.
const (
	ieiConcat8  = 0x00
	ieiConcat16 = 0x08
)

// ParseUDH splits a short message whose esm_class has UDHI set into its
// user data header (UDHL octet included) and body, and returns the
// concatenation element if there is one. Elements other than 0x00 and 0x08
// are skipped; a repeated concatenation element counts by its last
// occurrence (TS 23.040 §9.2.3.24).
func ParseUDH(sm []byte) (udh, body []byte, concat *ConcatInfo, err error) {
	if len(sm) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: UDHI set on an empty message", ErrBadUDH)
	}
	udhl := int(sm[0])
	if 1+udhl > len(sm) {
		return nil, nil, nil, fmt.Errorf("%w: header length %d past the end of a %d-octet message", ErrBadUDH, udhl, len(sm))
	}
	udh, body = sm[:1+udhl], sm[1+udhl:]
	var found ConcatInfo
	have := false
	for i := 1; i < len(udh); {
		if i+2 > len(udh) {
			return nil, nil, nil, fmt.Errorf("%w: element header at offset %d past the header end", ErrBadUDH, i)
		}
		iei, iedl := udh[i], int(udh[i+1])
		data := i + 2
		if data+iedl > len(udh) {
			return nil, nil, nil, fmt.Errorf("%w: element 0x%02X of length %d at offset %d past the header end", ErrBadUDH, iei, iedl, i)
		}
		v := udh[data : data+iedl]
		switch iei {
		case ieiConcat8:
			if iedl != 3 {
				return nil, nil, nil, fmt.Errorf("%w: concatenation element 0x00 of length %d, want 3", ErrBadUDH, iedl)
			}
			found, have = ConcatInfo{Ref: uint16(v[0]), Total: v[1], Seq: v[2]}, true
		case ieiConcat16:
			if iedl != 4 {
				return nil, nil, nil, fmt.Errorf("%w: concatenation element 0x08 of length %d, want 4", ErrBadUDH, iedl)
			}
			found, have = ConcatInfo{Ref: uint16(v[0])<<8 | uint16(v[1]), Total: v[2], Seq: v[3], Wide: true}, true
		}
		i = data + iedl
	}
	if !have {
		return udh, body, nil, nil
	}
	if err := found.validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBadUDH, err)
	}
	return udh, body, &found, nil
}

// alphabetOf maps a data_coding to the alphabet of its text, per SMPP 3.4
// §5.2.19 for 0x00..0x0F (with 0x00 as configured) and TS 23.038 §4 coding
// groups above.
func alphabetOf(dc byte, o Options) (Alphabet, error) {
	undecodable := func(what string) (Alphabet, error) {
		return Binary, fmt.Errorf("%w: data_coding 0x%02X (%s)", ErrUndecodable, dc, what)
	}
	switch {
	case dc == 0x00:
		return o.DefaultAlphabet, nil
	case dc == 0x01:
		return IA5, nil
	case dc == 0x02 || dc == 0x04:
		return undecodable("8-bit binary")
	case dc == 0x03:
		return Latin1, nil
	case dc == 0x05:
		return undecodable("JIS X 0208")
	case dc == 0x06:
		return Cyrillic, nil
	case dc == 0x07:
		return Hebrew, nil
	case dc == 0x08:
		return UCS2, nil
	case dc == 0x09:
		return undecodable("pictogram encoding")
	case dc == 0x0A:
		return undecodable("ISO-2022-JP")
	case dc == 0x0D:
		return undecodable("extended Kanji JIS X 0212")
	case dc == 0x0E:
		return undecodable("KS C 5601")
	case dc < 0x10:
		return undecodable("reserved")
	case dc < 0x80: // general data coding groups 00xx and 01xx
		if dc&0x20 != 0 {
			return undecodable("compressed")
		}
		switch dc & 0x0C {
		case 0x00:
			return GSM7, nil
		case 0x04:
			return undecodable("8-bit data")
		case 0x08:
			return UCS2, nil
		}
		return undecodable("reserved alphabet")
	case dc < 0xC0:
		return undecodable("reserved coding group")
	case dc < 0xE0: // message waiting indication, GSM 7-bit
		return GSM7, nil
	case dc < 0xF0: // message waiting indication, UCS2
		return UCS2, nil
	default: // data coding/message class
		if dc&0x04 != 0 {
			return undecodable("8-bit data")
		}
		return GSM7, nil
	}
}

// Decode decodes one short message (or the value of a message_payload TLV,
// which follows the same rules) with its data_coding and the esm_class UDHI
// bit.
//
// GSM 7-bit text is read one septet per octet, or packed when o.Packed is
// set; packed text after a header starts after the fill bits that align it,
// and a final CR in the seven spare bits of the last octet is padding (TS
// 23.038 §6.1.2.3.1), not text. Errors wrap ErrBadUDH or ErrUndecodable.
func Decode(dataCoding byte, udhi bool, sm []byte, o Options) (Part, error) {
	return decode(dataCoding, udhi, sm, o, nil)
}

func decode(dataCoding byte, udhi bool, sm []byte, o Options, sar *ConcatInfo) (Part, error) {
	var p Part
	body, udhLen := sm, 0
	if udhi {
		udh, b, c, err := ParseUDH(sm)
		if err != nil {
			return Part{}, err
		}
		body, udhLen, p.Concat = b, len(udh), c
	}
	if sar != nil {
		if p.Concat != nil && (p.Concat.Total != sar.Total || p.Concat.Seq != sar.Seq) {
			return Part{}, fmt.Errorf("%w: SAR part %d/%d but header says %d/%d", ErrBadSAR, sar.Seq, sar.Total, p.Concat.Seq, p.Concat.Total)
		}
		p.Concat = sar
	}
	a, err := alphabetOf(dataCoding, o)
	if err != nil {
		return Part{}, err
	}
	p.Alphabet = a
	switch a {
	case GSM7:
		p.Text, err = decodeGSM7(body, udhLen, o.Packed)
	case IA5:
		p.Text, err = decodeIA5(body)
	case Latin1:
		p.Text = decodeLatin1(body)
	case Cyrillic:
		p.Text = decodeCyrillic(body)
	case Hebrew:
		p.Text, err = decodeHebrew(body)
	case UCS2:
		p.Text, p.HeadLow, p.TailHigh, err = decodeUCS2(body, p.Concat != nil)
	}
	if err != nil {
		return Part{}, fmt.Errorf("data_coding 0x%02X: %w", dataCoding, err)
	}
	return p, nil
}

func decodeGSM7(body []byte, udhLen int, packed bool) (string, error) {
	septets := body
	if packed {
		fill := 0
		if udhLen > 0 {
			fill = gsm7.FillBits(udhLen)
		}
		n := gsm7.Count(len(body), fill)
		var err error
		septets, err = gsm7.Unpack(body, n, fill)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrUndecodable, err)
		}
		if n > 0 && (8*len(body)-fill)%7 == 0 && septets[n-1] == '\r' {
			septets = septets[:n-1]
		}
	}
	s, err := gsm7.Decode(septets)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return s, nil
}

// ParseSAR reads the values of the three SAR TLVs (sar_msg_ref_num: 2
// octets, sar_total_segments and sar_segment_seqnum: 1 octet each). A nil
// or wrong-length value, a total of 0, a part 0 or a part above the total
// is an error wrapping ErrBadSAR.
func ParseSAR(ref, total, seq []byte) (ConcatInfo, error) {
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return ConcatInfo{}, fmt.Errorf("%w: value lengths ref %d, total %d, seq %d (want 2, 1, 1)", ErrBadSAR, len(ref), len(total), len(seq))
	}
	c := ConcatInfo{Ref: uint16(ref[0])<<8 | uint16(ref[1]), Total: total[0], Seq: seq[0], Wide: true}
	if err := c.validate(); err != nil {
		return ConcatInfo{}, fmt.Errorf("%w: %v", ErrBadSAR, err)
	}
	return c, nil
}

// DecodeSAR decodes a short message that came with SAR TLVs (see ParseSAR):
// the part carries sar as its concatenation. If the message also has a
// concatenation header, the two must agree in total and part number;
// otherwise the error wraps ErrBadSAR.
func DecodeSAR(dataCoding byte, udhi bool, sm []byte, sar ConcatInfo, o Options) (Part, error) {
	if err := sar.validate(); err != nil {
		return Part{}, fmt.Errorf("%w: %v", ErrBadSAR, err)
	}
	sar.Wide = true
	return decode(dataCoding, udhi, sm, o, &sar)
}
