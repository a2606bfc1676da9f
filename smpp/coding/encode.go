package coding

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mimigw/mimigw/smpp/gsm7"
)

var (
	// ErrTooManySegments reports a text that would need more short
	// messages than Options.MaxSegments (or MaxParts) allows.
	ErrTooManySegments = errors.New("coding: too many segments")

	// ErrInvalidText reports outbound text that is not valid UTF-8.
	ErrInvalidText = errors.New("coding: text is not valid UTF-8")

	// ErrUnencodable reports a character the requested alphabet cannot
	// carry (EncodeAs; Encode always chooses an alphabet that can).
	ErrUnencodable = errors.New("coding: character not in the alphabet")
)

// SAR holds the values of the three SAR TLVs for one segment.
type SAR struct {
	Ref   uint16 // sar_msg_ref_num
	Total uint8  // sar_total_segments
	Seq   uint8  // sar_segment_seqnum, 1..Total
}

// Segment is one submit_sm worth of text.
type Segment struct {
	// ShortMessage is the short_message value, user data header included
	// when ESMClassUDHI is set; when Payload is set it is the value of the
	// message_payload TLV and short_message stays empty.
	ShortMessage []byte
	// ESMClassUDHI: set esm_class bit 0x40.
	ESMClassUDHI bool
	// SAR, when not nil, goes in the three SAR TLVs.
	SAR *SAR
	// Payload: send ShortMessage as message_payload (TLV 0x0424).
	Payload bool
}

// Encoded is a text ready for submit_sm.
type Encoded struct {
	DataCoding byte
	Alphabet   Alphabet
	Segments   []Segment
	// Count is the number of short messages the text costs on the air:
	// len(Segments), or for message_payload the number the SMSC will split
	// it into (counted as with an 8-bit header).
	Count int
}

// limits returns the capacity of a lone short message and of one segment
// of a concatenated text, in the alphabet's units: septets, octets or
// UTF-16 code units.
func limits(a Alphabet, c Concat) (single, per int) {
	switch a {
	case GSM7:
		single = 160
	case UCS2:
		single = 70
	default:
		single = 140
	}
	switch c {
	case ConcatSAR:
		return single, single
	case ConcatUDH16:
		switch a {
		case GSM7:
			return single, 152
		case UCS2:
			return single, 66
		}
		return single, 133
	default: // 8-bit header; also how the SMSC splits a payload
		switch a {
		case GSM7:
			return single, 153
		case UCS2:
			return single, 67
		}
		return single, 134
	}
}

// runeCost is the number of units r takes in a; 0 when a cannot carry r.
func runeCost(a Alphabet, r rune) int {
	switch a {
	case GSM7:
		return gsm7.RuneSeptets(r)
	case IA5:
		if r < 0x80 {
			return 1
		}
	case Latin1:
		if r < 0x100 {
			return 1
		}
	case UCS2:
		if r >= 0x10000 {
			return 2
		}
		return 1
	}
	return 0
}

// chunk is one segment's slice of the text: it ends at byte offset end and
// costs cost units.
type chunk struct{ end, cost int }

// split cuts text into segments on character boundaries only, so that an
// escape sequence or a surrogate pair never straddles two segments and each
// segment decodes on its own. With packed GSM 7-bit a segment that would
// fill its octets exactly and end in CR is cut before that CR: TS 23.038
// §6.1.2.3.1 then wants a second CR, which would not fit. It returns false
// when a cannot carry some character of text.
func split(text string, a Alphabet, c Concat, packed bool, dst []chunk) ([]chunk, bool) {
	single, per := limits(a, c)
	total := 0
	for _, r := range text {
		k := runeCost(a, r)
		if k == 0 {
			return dst, false
		}
		total += k
	}
	crFull := func(cost, limit int, end int) bool {
		return packed && a == GSM7 && cost == limit && end > 0 && text[end-1] == '\r'
	}
	if total <= single && !crFull(total, single, len(text)) {
		return append(dst, chunk{end: len(text), cost: total}), true
	}
	cost := 0
	for i, r := range text {
		k := runeCost(a, r)
		if cost+k > per {
			if crFull(cost, per, i) {
				dst = append(dst, chunk{end: i - 1, cost: cost - 1})
				cost = 1
			} else {
				dst = append(dst, chunk{end: i, cost: cost})
				cost = 0
			}
		}
		cost += k
	}
	if crFull(cost, per, len(text)) {
		dst = append(dst, chunk{end: len(text) - 1, cost: cost - 1})
		cost = 1
	}
	return append(dst, chunk{end: len(text), cost: cost}), true
}

// candidates lists the alphabets Options allow for outbound text, most
// widely supported first.
func candidates(o Options) (list [3]Alphabet, n int) {
	switch o.DefaultAlphabet {
	case GSM7:
		list[n] = GSM7
		n++
	case IA5:
		list[n] = IA5
		n++
	}
	if o.UseLatin1 || o.DefaultAlphabet == Latin1 {
		list[n] = Latin1
		n++
	}
	list[n] = UCS2
	return list, n + 1
}

// Choose returns the alphabet that carries text exactly in the fewest short
// messages, preferring GSM 7-bit, then IA5, then Latin-1 (when o allows
// it), then UCS-2, which carries everything. GSM 7-bit and IA5 are only
// reachable as the meaning of data_coding 0x00 (o.DefaultAlphabet).
func Choose(text string, o Options) Alphabet {
	var bufA, bufB [16]chunk
	a, _ := choose(text, o, bufA[:0], bufB[:0])
	return a
}

// choose is Choose that also returns the winner's segments. bufA and bufB
// are scratch storage for the candidates' splits.
func choose(text string, o Options, bufA, bufB []chunk) (Alphabet, []chunk) {
	list, n := candidates(o)
	best, bestChunks := UCS2, []chunk(nil)
	scratch := bufA
	for _, a := range list[:n] {
		chunks, ok := split(text, a, o.Concat, o.Packed, scratch[:0])
		if !ok || (bestChunks != nil && len(chunks) >= len(bestChunks)) {
			continue
		}
		// chunks may own scratch's storage now: split into other storage.
		if bestChunks == nil {
			scratch = bufB
		} else {
			scratch = bestChunks
		}
		best, bestChunks = a, chunks
		if len(chunks) == 1 {
			break // nothing is cheaper than one message
		}
	}
	return best, bestChunks
}

// Encode is EncodeRef with reference 0. Use it only where the reference
// does not matter (a text known to fit one message, tests); the session
// allocates a reference per long message and calls EncodeRef.
func Encode(text string, o Options) (Encoded, error) {
	return EncodeRef(text, 0, o)
}

// EncodeRef encodes text for submit_sm in the alphabet Choose picks,
// split into segments numbered with the concatenation reference ref (only
// its low 8 bits with an 8-bit header). A text that fits one short message
// is one segment without header or TLVs in every mode.
func EncodeRef(text string, ref uint16, o Options) (Encoded, error) {
	if !utf8.ValidString(text) {
		return Encoded{}, invalidText(text)
	}
	var bufA, bufB [16]chunk
	a, chunks := choose(text, o, bufA[:0], bufB[:0])
	return encodeChunks(text, a, chunks, ref, o)
}

// EncodeAs is EncodeRef in a given alphabet (GSM7, IA5, Latin1 or UCS2),
// for an SMSC or a test that needs one. A character a cannot carry is an
// error wrapping ErrUnencodable.
func EncodeAs(text string, a Alphabet, ref uint16, o Options) (Encoded, error) {
	if !utf8.ValidString(text) {
		return Encoded{}, invalidText(text)
	}
	switch a {
	case IA5, Latin1, UCS2:
	case GSM7:
		if o.DefaultAlphabet != GSM7 {
			// No other data_coding names plain GSM 7-bit text (0xF0..0xF3
			// add a message class), so 0x00 must mean it on this SMSC.
			return Encoded{}, fmt.Errorf("%w: GSM 7-bit needs default_alphabet gsm7 on this SMSC", ErrUnencodable)
		}
	default:
		return Encoded{}, fmt.Errorf("%w: cannot encode text as %v", ErrUnencodable, a)
	}
	for i, r := range text {
		if runeCost(a, r) == 0 {
			return Encoded{}, fmt.Errorf("%w: %q (U+%04X) at byte %d not in %v", ErrUnencodable, r, r, i, a)
		}
	}
	var buf [16]chunk
	chunks, _ := split(text, a, o.Concat, o.Packed, buf[:0])
	return encodeChunks(text, a, chunks, ref, o)
}

func invalidText(text string) error {
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w: byte 0x%02X at offset %d", ErrInvalidText, text[i], i)
		}
		i += size
	}
	return ErrInvalidText
}

func dataCoding(a Alphabet, o Options) byte {
	switch {
	case a == o.DefaultAlphabet:
		return 0x00
	case a == IA5:
		return 0x01
	case a == Latin1:
		return 0x03
	case a == UCS2:
		return 0x08
	}
	return 0x00 // GSM7 is only chosen as the meaning of 0x00
}

// packedLen returns the octets n septets take after fill bits, with the
// CR padding of TS 23.038 §6.1.2.3.1 (see appendBody).
func packedLen(n, fill int) int {
	switch {
	case (fill+7*n)%8 == 1: // seven spare bits: a CR fills them
		n++
	case n > 0 && (fill+7*n)%8 == 0: // may need a second CR if it ends in CR
		n++
	}
	return (fill + 7*n + 7) / 8
}

// bodyLen returns the octets a chunk of cost units takes.
func bodyLen(a Alphabet, cost int, packed bool, fill int) int {
	switch {
	case a == UCS2:
		return 2 * cost
	case a == GSM7 && packed:
		return packedLen(cost, fill)
	}
	return cost
}

// appendBody appends text's bytes in a.
func appendBody(dst []byte, text string, a Alphabet, packed bool, fill int) ([]byte, error) {
	switch a {
	case GSM7:
		if !packed {
			return gsm7.AppendEncode(dst, text)
		}
		septets, err := gsm7.Encode(text)
		if err != nil {
			return dst, err
		}
		n := len(septets)
		switch {
		case (fill+7*n)%8 == 1:
			// Seven zero bits would read as a trailing '@'.
			septets = append(septets, '\r')
		case n > 0 && (fill+7*n)%8 == 0 && septets[n-1] == '\r':
			// A wanted final CR on an octet boundary would read as the
			// padding CR: add another, as the spec says.
			septets = append(septets, '\r')
		}
		return append(dst, gsm7.Pack(septets, fill)...), nil
	case IA5:
		return appendOctets(dst, text, 0x7F)
	case Latin1:
		return appendOctets(dst, text, 0xFF)
	default:
		return appendUCS2(dst, text), nil
	}
}

func encodeChunks(text string, a Alphabet, chunks []chunk, ref uint16, o Options) (Encoded, error) {
	e := Encoded{DataCoding: dataCoding(a, o), Alphabet: a, Count: len(chunks)}
	if limit := o.maxSegments(); len(chunks) > limit {
		return Encoded{}, fmt.Errorf("%w: %d short messages, limit %d", ErrTooManySegments, len(chunks), limit)
	}

	if len(chunks) == 1 || o.Concat == ConcatPayload {
		total := 0
		for _, c := range chunks {
			total += c.cost
		}
		body, err := appendBody(make([]byte, 0, bodyLen(a, total, o.Packed, 0)), text, a, o.Packed, 0)
		if err != nil {
			return Encoded{}, err
		}
		e.Segments = []Segment{{ShortMessage: body, Payload: len(chunks) > 1}}
		return e, nil
	}

	udhLen := 0
	switch o.Concat {
	case ConcatUDH8:
		udhLen = 6
	case ConcatUDH16:
		udhLen = 7
	}
	fill := 0
	if udhLen > 0 {
		fill = gsm7.FillBits(udhLen)
	}
	size := 0
	for _, c := range chunks {
		size += udhLen + bodyLen(a, c.cost, o.Packed, fill)
	}
	// One backing array for every segment's bytes.
	backing := make([]byte, 0, size)
	e.Segments = make([]Segment, len(chunks))
	var sars []SAR
	if o.Concat == ConcatSAR {
		sars = make([]SAR, len(chunks))
	}
	total := uint8(len(chunks))
	start := 0
	for i, c := range chunks {
		seq := uint8(i + 1)
		from := len(backing)
		seg := &e.Segments[i]
		switch o.Concat {
		case ConcatUDH8:
			backing = append(backing, 5, ieiConcat8, 3, byte(ref), total, seq)
			seg.ESMClassUDHI = true
		case ConcatUDH16:
			backing = append(backing, 6, ieiConcat16, 4, byte(ref>>8), byte(ref), total, seq)
			seg.ESMClassUDHI = true
		case ConcatSAR:
			sars[i] = SAR{Ref: ref, Total: total, Seq: seq}
			seg.SAR = &sars[i]
		}
		var err error
		backing, err = appendBody(backing, text[start:c.end], a, o.Packed, fill)
		if err != nil {
			return Encoded{}, err
		}
		seg.ShortMessage = backing[from:len(backing):len(backing)]
		start = c.end
	}
	return e, nil
}
