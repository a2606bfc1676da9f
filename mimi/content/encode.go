package content

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Encode returns the message in RFC 8949 section 4.2.1 core deterministic
// encoding, the bytes its message ID is computed over. It refuses a message
// Decode would reject (see ErrInvalid).
func (m *Message) Encode() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.sizeHint()))
}

// MarshalBinary is Encode.
func (m *Message) MarshalBinary() ([]byte, error) { return m.Encode() }

// AppendBinary appends the encoded message to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, majorArray<<5|7)
	b = appendBytes(b, m.Salt[:])
	b = appendID(b, m.Replaces)
	if len(m.TopicID) > MaxTopicID {
		return nil, invalid("topicId", "%d bytes, limit %d", len(m.TopicID), MaxTopicID)
	}
	b = appendBytes(b, m.TopicID)
	if m.Expires == nil {
		b = append(b, cborNull)
	} else {
		b = append(b, majorArray<<5|2, cborFalse)
		if m.Expires.Relative {
			b[len(b)-1] = cborTrue
		}
		b = appendHead(b, majorUint, uint64(m.Expires.Time))
	}
	b = appendID(b, m.InReplyTo)
	b, err := m.Extensions.append(b)
	if err != nil {
		return nil, err
	}
	parts := 0
	if b, err = m.Body.append(b, 1, &parts); err != nil {
		return nil, under(err, "nestedPart")
	}
	return b, nil
}

func appendID(b []byte, id *MessageID) []byte {
	if id == nil {
		return append(b, cborNull)
	}
	return appendBytes(b, id[:])
}

func checkURI(field, s string) error {
	if len(s) > MaxURI {
		return invalid(field, "URI of %d bytes, limit %d", len(s), MaxURI)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "URI is not valid UTF-8")
	}
	return nil
}

type encodedExtension struct {
	key   []byte
	value []byte
}

func (e *Extensions) append(b []byte) ([]byte, error) {
	if err := checkURI("senderUri", e.SenderURI); err != nil {
		return nil, err
	}
	if err := checkURI("roomUri", e.RoomURI); err != nil {
		return nil, err
	}
	n := len(e.Other)
	if e.SenderURI != "" {
		n++
	}
	if e.RoomURI != "" {
		n++
	}
	b = appendHead(b, majorMap, uint64(n))
	if len(e.Other) == 0 {
		// Keys 1 and 2 only: already in order, nothing to sort.
		if e.SenderURI != "" {
			b = appendText(append(b, 1), e.SenderURI)
		}
		if e.RoomURI != "" {
			b = appendText(append(b, 2), e.RoomURI)
		}
		return b, nil
	}
	entries := make([]encodedExtension, 0, n)
	var keys []byte
	if e.SenderURI != "" {
		entries = append(entries, encodedExtension{key: []byte{1}, value: appendText(nil, e.SenderURI)})
	}
	if e.RoomURI != "" {
		entries = append(entries, encodedExtension{key: []byte{2}, value: appendText(nil, e.RoomURI)})
	}
	for _, x := range e.Other {
		field := "mimiExtensions[" + x.Key.String() + "]"
		if err := x.check(); err != nil {
			return nil, invalid(field, "%v", err)
		}
		if x.Key == KeySenderURI || x.Key == KeyRoomURI {
			return nil, invalid(field, "set SenderURI or RoomURI instead")
		}
		ks := len(keys)
		keys = x.Key.append(keys)
		entries = append(entries, encodedExtension{key: keys[ks:len(keys):len(keys)], value: x.Value})
	}
	slices.SortFunc(entries, func(a, b encodedExtension) int { return bytes.Compare(a.key, b.key) })
	for i, x := range entries {
		if i > 0 && bytes.Equal(entries[i-1].key, x.key) {
			return nil, invalid("mimiExtensions", "key %s twice", keyString(x.key))
		}
		b = append(append(b, x.key...), x.value...)
	}
	return b, nil
}

// check validates an extension the way Decode would.
func (x *Extension) check() error {
	if x.Key.Text != "" {
		if len(x.Key.Text) > MaxExtensionName || !utf8.ValidString(x.Key.Text) {
			return fmt.Errorf("text key must be 1 to %d bytes of UTF-8", MaxExtensionName)
		}
		if x.Key.Int != 0 {
			return fmt.Errorf("key has both Text and Int set")
		}
	} else if x.Key.Int > maxSafeInt || x.Key.Int < -maxSafeInt {
		return fmt.Errorf("integer key beyond +-(2^53-1)")
	}
	return checkValue(x.Value)
}

// checkValue accepts exactly one core-deterministic data item fit for the
// extensions map.
func checkValue(v []byte) error {
	r := reader{b: v}
	if err := r.skipValue("value", 1, MaxExtensionDepth); err != nil {
		return err
	}
	return r.end()
}

func (p *NestedPart) append(b []byte, depth int, parts *int) ([]byte, error) {
	if depth > MaxPartDepth {
		return nil, invalid("part", "nested %d levels deep, limit %d", depth, MaxPartDepth)
	}
	if *parts++; *parts > MaxParts {
		return nil, invalid("part", "more than %d parts", MaxParts)
	}
	if p.Cardinality > Multi {
		return nil, invalid("cardinality", "unknown cardinality %d", p.Cardinality)
	}
	if !utf8.ValidString(p.Language) {
		return nil, invalid("language", "not valid UTF-8")
	}
	if err := p.checkShape(); err != nil {
		return nil, err
	}
	b = appendHead(b, majorArray, uint64(itemCount[p.Cardinality]))
	b = appendHead(b, majorUint, uint64(p.Disposition))
	b = appendText(b, p.Language)
	b = append(b, byte(p.Cardinality))
	switch p.Cardinality {
	case Single:
		if !utf8.ValidString(p.ContentType) {
			return nil, invalid("contentType", "not valid UTF-8")
		}
		b = appendText(b, p.ContentType)
		b = appendBytes(b, p.Content)
	case External:
		return p.External.append(b)
	case Multi:
		b = append(b, byte(p.Semantics))
		b = appendHead(b, majorArray, uint64(len(p.Parts)))
		for i := range p.Parts {
			var err error
			if b, err = p.Parts[i].append(b, depth+1, parts); err != nil {
				return nil, under(err, fmt.Sprintf("parts[%d]", i))
			}
		}
	}
	return b, nil
}

// checkShape refuses fields that the part's cardinality leaves unused, so
// that nothing set in code is silently dropped from the wire.
func (p *NestedPart) checkShape() error {
	c := p.Cardinality
	switch {
	case c != Single && (p.ContentType != "" || len(p.Content) > 0):
		return invalid("part", "%s part has ContentType or Content set", c)
	case c == External && p.External == nil:
		return invalid("part", "external part without External")
	case c != External && p.External != nil:
		return invalid("part", "%s part has External set", c)
	case c != Multi && (p.Semantics != 0 || len(p.Parts) > 0):
		return invalid("part", "%s part has Semantics or Parts set", c)
	case c == Multi && p.Semantics > ProcessAll:
		return invalid("partSemantics", "unknown partSemantics %d", p.Semantics)
	case c == Multi && len(p.Parts) < 2:
		return invalid("parts", "%d parts, a MultiPart needs at least 2", len(p.Parts))
	}
	return nil
}

func (x *ExternalPart) append(b []byte) ([]byte, error) {
	for _, f := range [...]struct{ name, s string }{
		{"contentType", x.ContentType}, {"url", x.URL}, {"description", x.Description}, {"filename", x.Filename},
	} {
		if !utf8.ValidString(f.s) {
			return nil, invalid(f.name, "not valid UTF-8")
		}
	}
	b = appendText(b, x.ContentType)
	b = appendText(b, x.URL)
	b = appendHead(b, majorUint, uint64(x.Expires))
	b = appendHead(b, majorUint, x.Size)
	b = appendHead(b, majorUint, uint64(x.EncAlg))
	b = appendBytes(b, x.Key)
	b = appendBytes(b, x.Nonce)
	b = appendBytes(b, x.AAD)
	b = appendHead(b, majorUint, uint64(x.HashAlg))
	b = appendBytes(b, x.ContentHash)
	b = appendText(b, x.Description)
	b = appendText(b, x.Filename)
	return b, nil
}

// sizeHint returns an upper bound of the encoded size, so that Encode and
// ID allocate once.
func (m *Message) sizeHint() int {
	n := 1 + 17 + 2*34 + 9 + len(m.TopicID) + 8 // array, salt, IDs, topic, expires
	n += 9 + 2*9 + len(m.Extensions.SenderURI) + len(m.Extensions.RoomURI)
	for _, x := range m.Extensions.Other {
		n += 9 + len(x.Key.Text) + len(x.Value)
	}
	return n + m.Body.sizeHint(1)
}

func (p *NestedPart) sizeHint(depth int) int {
	if depth > MaxPartDepth {
		return 0
	}
	n := 1 + 2 + 9 + len(p.Language) + 1
	switch {
	case p.External != nil:
		x := p.External
		n += 9*12 + len(x.ContentType) + len(x.URL) + len(x.Key) + len(x.Nonce) + len(x.AAD) +
			len(x.ContentHash) + len(x.Description) + len(x.Filename)
	default:
		n += 2*9 + len(p.ContentType) + len(p.Content) + 1
		for i := range p.Parts {
			n += p.Parts[i].sizeHint(depth + 1)
		}
	}
	return n
}
