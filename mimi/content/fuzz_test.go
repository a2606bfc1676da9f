package content

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

func seedAll(f *testing.F) {
	for _, sub := range []string{"mimi-content", "mimi-status"} {
		for _, v := range loadVectors(f, sub) {
			f.Add(v.cbor)
		}
	}
	f.Add(messageWith(map[int][]byte{6: nested(4)}))
	f.Add(messageWith(map[int][]byte{6: externalItem(stdExternalFields()...)}))
	f.Add(messageWith(map[int][]byte{3: arrayItem([]byte{cborTrue}, uintItem(60))}))
	f.Add(messageWith(extWith(uintItem(3), arrayItem(arrayItem(cat([]byte{0xd8, 0x20}, textItem("http://x")))),
		textItem("k"), mapItem(uintItem(1), []byte{0xf9, 0x7e, 0x00}, bytesItem([]byte{1}), cat([]byte{0xc2}, nBytes(9))))))
}

// libStrict is fxamacker/cbor set to refuse what MIMI refuses; whatever
// Decode accepts it must accept too.
var libStrict = sync.OnceValue(func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		MaxNestedLevels:  64,
		MapKeyByteString: cbor.MapKeyByteStringAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
})

func FuzzDecode(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs\n  in %x\n out %x", b, out)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("decode-encode-decode changed the message\n%+v\n%+v", m, again)
		}
		if err := libStrict().Wellformed(b); err != nil {
			t.Fatalf("accepted, but fxamacker/cbor finds it not well-formed: %v", err)
		}
		var v any
		err = libStrict().Unmarshal(b, &v)
		var dup *cbor.DupMapKeyError
		if errors.As(err, &dup) || (err != nil && strings.Contains(err.Error(), "UTF-8")) {
			t.Fatalf("accepted, but fxamacker/cbor rejects it: %v", err)
		}
		if m.Extensions.SenderURI != "" && m.Extensions.RoomURI != "" {
			id, err := m.ID()
			if err != nil || id != ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, b, m.Salt) {
				t.Fatalf("ID %s, %v", id, err)
			}
		}
		for range m.Parts() {
		}
		m.Text()
		m.StatusReport()
	})
}

func FuzzDecodeStatusReport(f *testing.F) {
	seedAll(f)
	f.Add([]byte{0x80})
	f.Add(arrayItem(arrayItem(nBytes(32), uintItem(200))))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := DecodeStatusReport(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		out, err := EncodeStatusReport(entries)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs (%v)\n  in %x\n out %x", err, b, out)
		}
		again, err := DecodeStatusReport(out)
		if err != nil || !reflect.DeepEqual(entries, again) {
			t.Fatalf("decode-encode-decode changed the report: %v", err)
		}
	})
}

func FuzzDecodeDerivedValues(f *testing.F) {
	seedAll(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeDerivedValues(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		out, err := v.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs (%v)\n  in %x\n out %x", err, b, out)
		}
	})
}

// FuzzEncode builds messages from arbitrary field values: Encode either
// refuses them with ErrInvalid or writes bytes that Decode returns as the
// same message.
func FuzzEncode(f *testing.F) {
	f.Add(sender, room, "hello", "en", TypePlain, []byte("topic"), uint8(1), uint8(0), uint32(0), true)
	f.Add("", "", "", "", "", []byte(nil), uint8(255), uint8(2), uint32(1<<32-1), false)
	f.Add("tel:+15551230002", room, "\xff", "fr,\x00", "text/\xc3", []byte{}, uint8(9), uint8(3), uint32(5), true)
	f.Fuzz(func(t *testing.T, snd, rm, text, lang, ctype string, topic []byte, disp, sem uint8, exp uint32, rel bool) {
		var salt [16]byte
		copy(salt[:], topic)
		m := NewText(snd, rm, text, salt)
		if len(topic) > 0 {
			m.TopicID = topic
			m.Expires = &Expires{Relative: rel, Time: exp}
			m.InReplyTo = idOf(disp)
		}
		m.Body = NewMultiPart(Disposition(disp), PartSemantics(sem),
			NestedPart{Disposition: Disposition(disp), Language: lang, Cardinality: Single, ContentType: ctype, Content: []byte(text)},
			NewExternalPart(Attachment, ExternalPart{ContentType: ctype, URL: text, Description: lang, Size: uint64(exp)}),
			NewNullPart(Unspecified))
		b, err := m.Encode()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode error %v does not wrap ErrInvalid", err)
			}
			valid := utf8.ValidString(snd) && utf8.ValidString(rm) && utf8.ValidString(text) &&
				utf8.ValidString(lang) && utf8.ValidString(ctype) && sem <= 2 && len(topic) <= MaxTopicID
			if valid {
				t.Fatalf("valid message refused: %v", err)
			}
			return
		}
		got, err := Decode(b)
		if err != nil {
			// Decode refuses empty URIs that Encode writes as absent: never
			// the case here, since "" is not written at all.
			t.Fatalf("encoded message does not decode: %v\n%x", err, b)
		}
		if got.Extensions.SenderURI != snd || got.Extensions.RoomURI != rm || string(got.Body.Parts[0].Content) != text ||
			got.Body.Parts[1].External.URL != text || !bytes.Equal(got.TopicID, m.TopicID) {
			t.Fatalf("round trip changed the message: %+v", got)
		}
	})
}
