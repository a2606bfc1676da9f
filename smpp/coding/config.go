package coding

import (
	"fmt"
)

// Alphabet is a character set a short message is written in.
type Alphabet uint8

const (
	GSM7     Alphabet = iota // GSM 03.38 default alphabet with the extension table
	IA5                      // IA5 / ASCII, one octet per character
	Latin1                   // ISO-8859-1, one octet per character
	UCS2                     // UTF-16BE, surrogate pairs allowed
	Binary                   // 8-bit data, not text
	Cyrillic                 // ISO-8859-5 (data_coding 0x06), inbound only
	Hebrew                   // ISO-8859-8 (data_coding 0x07), inbound only
)

var alphabetNames = [...]string{
	GSM7: "gsm7", IA5: "ia5", Latin1: "latin1", UCS2: "ucs2", Binary: "binary",
	Cyrillic: "cyrillic", Hebrew: "hebrew",
}

func (a Alphabet) String() string {
	if int(a) < len(alphabetNames) {
		return alphabetNames[a]
	}
	return fmt.Sprintf("alphabet(%d)", uint8(a))
}

// MarshalText writes the alphabet's configuration name.
func (a Alphabet) MarshalText() ([]byte, error) {
	if int(a) >= len(alphabetNames) {
		return nil, fmt.Errorf("coding: unknown alphabet %d", uint8(a))
	}
	return []byte(alphabetNames[a]), nil
}

// UnmarshalText reads an alphabet by its configuration name ("gsm7",
// "ia5", "latin1", "ucs2", ...).
func (a *Alphabet) UnmarshalText(b []byte) error {
	for i, n := range alphabetNames {
		if string(b) == n {
			*a = Alphabet(i)
			return nil
		}
	}
	return fmt.Errorf("coding: unknown alphabet %q (want gsm7, ia5, latin1 or ucs2)", b)
}

// Concat is how a text longer than one short message travels.
type Concat uint8

const (
	ConcatUDH8    Concat = iota // user data header IEI 0x00, 8-bit reference (6 octets)
	ConcatUDH16                 // user data header IEI 0x08, 16-bit reference (7 octets)
	ConcatSAR                   // sar_msg_ref_num, sar_total_segments, sar_segment_seqnum TLVs
	ConcatPayload               // whole text in one message_payload TLV; the SMSC splits it
)

var concatNames = [...]string{ConcatUDH8: "udh8", ConcatUDH16: "udh16", ConcatSAR: "sar", ConcatPayload: "payload"}

func (c Concat) String() string {
	if int(c) < len(concatNames) {
		return concatNames[c]
	}
	return fmt.Sprintf("concat(%d)", uint8(c))
}

// MarshalText writes the method's configuration name.
func (c Concat) MarshalText() ([]byte, error) {
	if int(c) >= len(concatNames) {
		return nil, fmt.Errorf("coding: unknown concat method %d", uint8(c))
	}
	return []byte(concatNames[c]), nil
}

// UnmarshalText reads "udh8", "udh16", "sar" or "payload".
func (c *Concat) UnmarshalText(b []byte) error {
	for i, n := range concatNames {
		if string(b) == n {
			*c = Concat(i)
			return nil
		}
	}
	return fmt.Errorf("coding: unknown concat method %q (want udh8, udh16, sar or payload)", b)
}

// MaxParts is the most segments any concatenation method can number.
const MaxParts = 255

// Options is the per-SMSC configuration of alphabets and long messages.
// The zero value is the common convention: data_coding 0x00 is unpacked GSM
// 7-bit, no Latin-1, 8-bit UDH, no segment cap beyond MaxParts.
type Options struct {
	// DefaultAlphabet is what data_coding 0x00 means on this SMSC: GSM7
	// (default), IA5 or Latin1.
	DefaultAlphabet Alphabet `yaml:"default_alphabet"`
	// Packed: GSM 7-bit travels packed (8 septets in 7 octets) instead of
	// one septet per octet.
	Packed bool `yaml:"packed"`
	// UseLatin1 allows data_coding 0x03 for outbound text.
	UseLatin1 bool `yaml:"use_latin1"`
	// Concat is how long text is split: udh8 (default), udh16, sar, payload.
	Concat Concat `yaml:"concat"`
	// MaxSegments caps the short messages one text may cost (0 = MaxParts).
	// With payload it caps the messages the SMSC will split the text into.
	MaxSegments int `yaml:"max_segments"`
}

// Validate names the first offending key.
func (o Options) Validate() error {
	switch o.DefaultAlphabet {
	case GSM7, IA5, Latin1:
	default:
		return fmt.Errorf("coding: default_alphabet: %v cannot be the meaning of data_coding 0x00 (want gsm7, ia5 or latin1)", o.DefaultAlphabet)
	}
	if o.Concat > ConcatPayload {
		return fmt.Errorf("coding: concat: unknown method %v", o.Concat)
	}
	if o.MaxSegments < 0 || o.MaxSegments > MaxParts {
		return fmt.Errorf("coding: max_segments: %d out of range 0..%d", o.MaxSegments, MaxParts)
	}
	return nil
}

func (o Options) maxSegments() int {
	if o.MaxSegments <= 0 || o.MaxSegments > MaxParts {
		return MaxParts
	}
	return o.MaxSegments
}
