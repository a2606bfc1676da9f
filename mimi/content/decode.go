package content

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// minPartSize is the smallest encoded NestedPart (a NullPart: array head,
// disposition, empty language, cardinality); it bounds what a declared
// part count may allocate.
const minPartSize = 4

// decoder reads a message. Byte fields are slices of own and text fields
// substrings of str, so a message costs two copies of the input rather
// than one allocation per field, and never aliases the caller's buffer.
type decoder struct {
	reader
	own   []byte
	str   string
	parts int
}

// Decode parses one MIMI content message and validates it strictly: exactly
// seven items, a 16-byte salt, 32-byte message IDs, valid UTF-8, NestedParts
// at most MaxPartDepth deep, extension values at most MaxExtensionDepth deep,
// core deterministic encoding (definite lengths, shortest heads and floats,
// map keys unique and sorted), and nothing after the message. The error is a
// *DecodeError naming the field, its offset and what is wrong.
func Decode(b []byte) (*Message, error) {
	d := decoder{reader: reader{b: b}}
	if err := d.prescan(); err != nil {
		return nil, err
	}
	d.own = bytes.Clone(b)
	d.str = string(b)
	m := new(Message)
	if err := d.message(m); err != nil {
		return nil, err
	}
	return m, nil
}

// prescan rejects what is not a seven-item array before anything is
// copied, so junk costs no allocation.
func (d *decoder) prescan() error {
	s := reader{b: d.b}
	h, err := s.readHead("message")
	if err != nil {
		return err
	}
	if h.major != majorArray {
		return s.fail("message", 0, ErrSchema, "%s, want array of 7 items", h.describe())
	}
	if h.arg != 7 {
		return s.fail("message", 0, ErrSchema, "%s, want 7", h.describe())
	}
	return nil
}

func (d *decoder) bytesField(field string) ([]byte, error) {
	s, e, err := d.bytes(field)
	if err != nil || s == e {
		return nil, err
	}
	return d.own[s:e:e], nil
}

func (d *decoder) textField(field string) (string, error) {
	s, e, err := d.text(field)
	if err != nil {
		return "", err
	}
	return d.str[s:e], nil
}

func (d *decoder) message(m *Message) error {
	if _, err := d.array("message", 7, 1); err != nil {
		return err
	}
	if err := d.fixedBytes("salt", m.Salt[:]); err != nil {
		return err
	}
	// Both IDs share one allocation.
	var ids *[2]MessageID
	if !d.null() {
		ids = new([2]MessageID)
		if err := d.fixedBytes("replaces", ids[0][:]); err != nil {
			return err
		}
		m.Replaces = &ids[0]
	}
	start := d.off
	topic, err := d.bytesField("topicId")
	if err != nil {
		return err
	}
	if len(topic) > MaxTopicID {
		return d.fail("topicId", start, ErrLimit, "%d bytes, limit %d", len(topic), MaxTopicID)
	}
	m.TopicID = topic
	if !d.null() {
		if _, err := d.array("expires", 2, 1); err != nil {
			return err
		}
		rel, err := d.bool("expires.relative")
		if err != nil {
			return err
		}
		t, err := d.uint("expires.time", 1<<32-1)
		if err != nil {
			return err
		}
		m.Expires = &Expires{Relative: rel, Time: uint32(t)}
	}
	if !d.null() {
		if ids == nil {
			ids = new([2]MessageID)
		}
		if err := d.fixedBytes("inReplyTo", ids[1][:]); err != nil {
			return err
		}
		m.InReplyTo = &ids[1]
	}
	if err := d.extensions(&m.Extensions); err != nil {
		return within(err, "mimiExtensions")
	}
	if err := d.part(&m.Body, 1); err != nil {
		return within(err, "nestedPart")
	}
	return d.end()
}

func (d *decoder) extensions(e *Extensions) error {
	h, err := d.expect("", majorMap)
	if err != nil {
		return err
	}
	if h.arg > uint64(d.remaining()/2) {
		return d.fail("", h.start, ErrTruncated, "%s declared, %d bytes left", h.describe(), d.remaining())
	}
	var prev []byte
	for range int(h.arg) {
		ks := d.off
		kh, err := d.readHead("")
		if err != nil {
			return err
		}
		var key ExtensionKey
		switch kh.major {
		case majorUint, majorNegint:
			if kh.arg > maxSafeInt-uint64(kh.major) {
				return d.fail("", ks, ErrSchema, "key %s beyond +-(2^53-1)", intString(kh))
			}
			key.Int = int64(kh.arg)
			if kh.major == majorNegint {
				key.Int = -1 - key.Int
			}
		case majorText:
			p, err := d.payload("", kh)
			if err != nil {
				return err
			}
			if len(p) == 0 || len(p) > MaxExtensionName {
				return d.fail("", ks, ErrSchema, "text key of %d bytes, want 1 to %d", len(p), MaxExtensionName)
			}
			if !utf8.Valid(p) {
				return d.fail("", ks, ErrInvalidUTF8, "text key of %d bytes", len(p))
			}
			key.Text = d.str[d.off-len(p) : d.off]
		default:
			return d.fail("", ks, ErrSchema, "key is %s, want integer or text", kh.describe())
		}
		kb := d.b[ks:d.off]
		if err := d.checkOrder("", ks, prev, kb, h.start); err != nil {
			return err
		}
		prev = kb
		switch key {
		case KeySenderURI:
			e.SenderURI, err = d.uri()
		case KeyRoomURI:
			e.RoomURI, err = d.uri()
		default:
			vs := d.off
			if err = d.skipValue("", 1, MaxExtensionDepth); err != nil {
				break
			}
			if e.Other == nil {
				e.Other = make([]Extension, 0, h.arg)
			}
			e.Other = append(e.Other, Extension{Key: key, Value: d.own[vs:d.off:d.off]})
		}
		if err != nil {
			return within(err, "["+key.String()+"]")
		}
	}
	return nil
}

// uri reads the value of extension 1 or 2: non-empty text that fits the
// 16-bit length of the message ID input.
func (d *decoder) uri() (string, error) {
	start := d.off
	s, err := d.textField("")
	if err != nil {
		return "", err
	}
	if s == "" || len(s) > MaxURI {
		return "", d.fail("", start, ErrSchema, "URI of %d bytes, want 1 to %d", len(s), MaxURI)
	}
	return s, nil
}

func (d *decoder) part(p *NestedPart, depth int) error {
	start := d.off
	if depth > MaxPartDepth {
		return d.fail("", start, ErrTooDeep, "part at level %d, limit %d", depth, MaxPartDepth)
	}
	if d.parts++; d.parts > MaxParts {
		return d.fail("", start, ErrLimit, "more than %d parts", MaxParts)
	}
	h, err := d.expect("", majorArray)
	if err != nil {
		return err
	}
	if h.arg < 3 {
		return d.fail("", start, ErrSchema, "%s, want at least 3", h.describe())
	}
	disp, err := d.uint("disposition", 255)
	if err != nil {
		return err
	}
	p.Disposition = Disposition(disp)
	if p.Language, err = d.textField("language"); err != nil {
		return err
	}
	cs := d.off
	card, err := d.uint("cardinality", 255)
	if err != nil {
		return err
	}
	if card >= uint64(len(itemCount)) {
		return d.fail("cardinality", cs, ErrSchema, "unknown cardinality %d", card)
	}
	p.Cardinality = Cardinality(card)
	if want := itemCount[card]; h.arg != uint64(want) {
		return d.fail("", start, ErrSchema, "%s part with %d items, want %d", p.Cardinality, h.arg, want)
	}
	switch p.Cardinality {
	case Single:
		if p.ContentType, err = d.textField("contentType"); err != nil {
			return err
		}
		p.Content, err = d.bytesField("content")
		return err
	case External:
		p.External = new(ExternalPart)
		return d.external(p.External)
	case Multi:
		ss := d.off
		sem, err := d.uint("partSemantics", 255)
		if err != nil {
			return err
		}
		if sem > uint64(ProcessAll) {
			return d.fail("partSemantics", ss, ErrSchema, "unknown partSemantics %d", sem)
		}
		p.Semantics = PartSemantics(sem)
		ps := d.off
		n, err := d.array("parts", -1, minPartSize)
		if err != nil {
			return err
		}
		if n < 2 {
			return d.fail("parts", ps, ErrSchema, "%d parts, a MultiPart needs at least 2", n)
		}
		if n > MaxParts {
			return d.fail("parts", ps, ErrLimit, "%d parts, limit %d", n, MaxParts)
		}
		p.Parts = make([]NestedPart, n)
		for i := range p.Parts {
			if err := d.part(&p.Parts[i], depth+1); err != nil {
				return within(err, fmt.Sprintf("parts[%d]", i))
			}
		}
	}
	return nil
}

func (d *decoder) external(x *ExternalPart) error {
	var err error
	if x.ContentType, err = d.textField("contentType"); err != nil {
		return err
	}
	if x.URL, err = d.textField("url"); err != nil {
		return err
	}
	v, err := d.uint("expires", 1<<32-1)
	if err != nil {
		return err
	}
	x.Expires = uint32(v)
	if x.Size, err = d.uint("size", 1<<64-1); err != nil {
		return err
	}
	if v, err = d.uint("encAlg", 1<<16-1); err != nil {
		return err
	}
	x.EncAlg = uint16(v)
	if x.Key, err = d.bytesField("key"); err != nil {
		return err
	}
	if x.Nonce, err = d.bytesField("nonce"); err != nil {
		return err
	}
	if x.AAD, err = d.bytesField("aad"); err != nil {
		return err
	}
	if v, err = d.uint("hashAlg", 1<<8-1); err != nil {
		return err
	}
	x.HashAlg = uint8(v)
	if x.ContentHash, err = d.bytesField("contentHash"); err != nil {
		return err
	}
	if x.Description, err = d.textField("description"); err != nil {
		return err
	}
	x.Filename, err = d.textField("filename")
	return err
}

// UnmarshalBinary decodes b into m (see Decode).
func (m *Message) UnmarshalBinary(b []byte) error {
	d, err := Decode(b)
	if err != nil {
		return err
	}
	*m = *d
	return nil
}
