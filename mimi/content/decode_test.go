package content

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// Builders for hand-made CBOR.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func uintItem(n uint64) []byte   { return appendHead(nil, majorUint, n) }
func intItem(n int64) []byte     { return appendInt(nil, n) }
func textItem(s string) []byte   { return appendText(nil, s) }
func bytesItem(p []byte) []byte  { return appendBytes(nil, p) }
func nBytes(n int) []byte        { return bytesItem(bytes.Repeat([]byte{0xaa}, n)) }
func arrayItem(items ...[]byte) []byte {
	return cat(appendHead(nil, majorArray, uint64(len(items))), cat(items...))
}
func mapItem(pairs ...[]byte) []byte {
	return cat(appendHead(nil, majorMap, uint64(len(pairs)/2)), cat(pairs...))
}

var (
	nullItem  = []byte{cborNull}
	testSalt  = [16]byte{0x5e, 0xed, 0x94, 0x06, 0xc2, 0x54, 0x55, 0x47, 0xab, 0x6f, 0x09, 0xf2, 0x0a, 0x18, 0xb0, 0x03}
	sender    = "mimi://example.com/u/alice-smith"
	room      = "mimi://example.com/r/engineering_team"
	stdExt    = mapItem(uintItem(1), textItem(sender), uintItem(2), textItem(room))
	textPart  = singleItem("text/plain;charset=utf-8", []byte("hi"))
	emptyPart = arrayItem(uintItem(0), textItem(""), uintItem(0))
)

func singleItem(ct string, content []byte) []byte {
	return arrayItem(uintItem(1), textItem(""), uintItem(1), textItem(ct), bytesItem(content))
}

func multiItem(sem uint64, parts ...[]byte) []byte {
	return arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(sem), arrayItem(parts...))
}

// nested returns a body whose innermost part is at level depth.
func nested(depth int) []byte {
	p := textPart
	for range depth - 1 {
		p = multiItem(0, p, textPart)
	}
	return p
}

func externalItem(fields ...[]byte) []byte {
	return arrayItem(append([][]byte{uintItem(6), textItem(""), uintItem(2)}, fields...)...)
}

func stdExternalFields() [][]byte {
	return [][]byte{textItem("video/mp4"), textItem("https://example.com/x.mp4"), uintItem(0), uintItem(1000),
		uintItem(1), nBytes(16), nBytes(12), bytesItem(nil), uintItem(1), nBytes(32), textItem("a video"), textItem("x.mp4")}
}

// messageWith returns a valid message with item i replaced by each given
// override (index -> encoded item).
func messageWith(over map[int][]byte) []byte {
	items := [][]byte{bytesItem(testSalt[:]), nullItem, bytesItem(nil), nullItem, nullItem, stdExt, textPart}
	for i, v := range over {
		items[i] = v
	}
	return arrayItem(items...)
}

func extWith(pairs ...[]byte) map[int][]byte {
	return map[int][]byte{5: mapItem(append([][]byte{uintItem(1), textItem(sender), uintItem(2), textItem(room)}, pairs...)...)}
}

func TestDecodeBuilderBaseline(t *testing.T) {
	// The builders make valid messages; every bad case below differs from
	// one of these in one place.
	for name, b := range map[string][]byte{
		"plain":          messageWith(nil),
		"depth 4":        messageWith(map[int][]byte{6: nested(4)}),
		"external":       messageWith(map[int][]byte{6: externalItem(stdExternalFields()...)}),
		"ext depth 4":    messageWith(extWith(uintItem(3), arrayItem(arrayItem(arrayItem(uintItem(1)))))),
		"ext tag 4":      messageWith(extWith(uintItem(3), arrayItem(arrayItem(cat([]byte{0xd8, 0x20}, textItem("http://x")))))),
		"ext sorted mix": messageWith(extWith(uintItem(24), uintItem(0), intItem(-1), uintItem(0), textItem("a"), uintItem(0))),
		"ext floats":     messageWith(extWith(uintItem(3), arrayItem([]byte{0xf9, 0x7e, 0x00}, []byte{0xf9, 0x3c, 0x00}, []byte{0xfa, 0x47, 0x7f, 0xe1, 0x00}, []byte{0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}))),
		"ext bignum":     messageWith(extWith(uintItem(3), cat([]byte{0xc2}, bytesItem([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})))),
		"ext map value":  messageWith(extWith(uintItem(3), mapItem(uintItem(1), nullItem, bytesItem([]byte{1}), []byte{cborTrue}, textItem("k"), []byte{0xe0}))),
		"relative":       messageWith(map[int][]byte{3: arrayItem([]byte{cborTrue}, uintItem(1<<32-1))}),
		"topic 4096":     messageWith(map[int][]byte{2: nBytes(MaxTopicID)}),
		"1024 parts":     messageWith(map[int][]byte{6: manyParts(MaxParts - 1)}),
		"unknown disp":   messageWith(map[int][]byte{6: arrayItem(uintItem(255), textItem("en,fr"), uintItem(0))}),
	} {
		m, err := Decode(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got, err := m.Encode(); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoded %x, %v; want %x", name, got, err, b)
		}
	}
}

func TestDecodeBadInput(t *testing.T) {
	u64max := []byte{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	cases := []struct {
		name  string
		in    []byte
		want  error
		field string // expected in the message
	}{
		// shape of the message
		{"empty", nil, ErrTruncated, "message"},
		{"6 items", arrayItem(bytesItem(testSalt[:]), nullItem, bytesItem(nil), nullItem, nullItem, stdExt), ErrSchema, "want 7"},
		{"8 items", arrayItem(bytesItem(testSalt[:]), nullItem, bytesItem(nil), nullItem, nullItem, stdExt, textPart, nullItem), ErrSchema, "want 7"},
		{"not an array", stdExt, ErrSchema, "want array"},
		{"trailing byte", append(messageWith(nil), 0x00), ErrTrailingData, "1 bytes"},
		{"second message", append(messageWith(nil), messageWith(nil)...), ErrTrailingData, "after the top-level item"},

		// indefinite lengths
		{"indefinite message", cat([]byte{0x9f}, bytesItem(testSalt[:]), nullItem, bytesItem(nil), nullItem, nullItem, stdExt, textPart, []byte{0xff}), ErrIndefinite, "indefinite-length array"},
		{"indefinite salt", messageWith(map[int][]byte{0: cat([]byte{0x5f}, nBytes(16), []byte{0xff})}), ErrIndefinite, "salt"},
		{"indefinite map", messageWith(map[int][]byte{5: cat([]byte{0xbf}, uintItem(1), textItem(sender), []byte{0xff})}), ErrIndefinite, "mimiExtensions"},
		{"indefinite text", messageWith(map[int][]byte{6: arrayItem(uintItem(1), cat([]byte{0x7f}, textItem("en"), []byte{0xff}), uintItem(0))}), ErrIndefinite, "nestedPart.language"},
		{"indefinite parts", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(0), cat([]byte{0x9f}, textPart, textPart, []byte{0xff}))}), ErrIndefinite, "nestedPart.parts"},
		{"indefinite ext value", messageWith(extWith(uintItem(3), cat([]byte{0x9f}, []byte{0xff}))), ErrIndefinite, "mimiExtensions[3]"},

		// UTF-8
		{"bad UTF-8 language", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem("\xff"), uintItem(0))}), ErrInvalidUTF8, "nestedPart.language"},
		{"bad UTF-8 content type", messageWith(map[int][]byte{6: singleItem("text/plain\xc3", nil)}), ErrInvalidUTF8, "nestedPart.contentType"},
		{"bad UTF-8 sender", messageWith(map[int][]byte{5: mapItem(uintItem(1), textItem("mimi://\xed\xa0\x80"))}), ErrInvalidUTF8, "mimiExtensions[1]"},
		{"bad UTF-8 ext key", messageWith(extWith(textItem("k\xfe"), uintItem(0))), ErrInvalidUTF8, "mimiExtensions"},
		{"bad UTF-8 ext value", messageWith(extWith(uintItem(3), arrayItem(textItem("\x80")))), ErrInvalidUTF8, "mimiExtensions[3][0]"},
		{"bad UTF-8 filename", messageWith(map[int][]byte{6: externalItem(append(stdExternalFields()[:11], textItem("a\xffb"))...)}), ErrInvalidUTF8, "nestedPart.filename"},

		// depth
		{"parts 5 deep", messageWith(map[int][]byte{6: nested(5)}), ErrTooDeep, "level 5, limit 4"},
		{"ext value 5 deep", messageWith(extWith(uintItem(3), arrayItem(arrayItem(arrayItem(arrayItem(uintItem(1))))))), ErrTooDeep, "level 5"},
		{"ext tag 5 deep", messageWith(extWith(uintItem(3), arrayItem(arrayItem(arrayItem(cat([]byte{0xc1}, uintItem(1))))))), ErrTooDeep, "tag at level 5"},
		{"ext map 5 deep", messageWith(extWith(uintItem(3), mapItem(uintItem(1), mapItem(uintItem(1), mapItem(uintItem(1), mapItem()))))), ErrTooDeep, "map at level 5"},

		// sizes
		{"15-byte salt", messageWith(map[int][]byte{0: nBytes(15)}), ErrSchema, "salt"},
		{"17-byte salt", messageWith(map[int][]byte{0: nBytes(17)}), ErrSchema, "17 bytes, want 16"},
		{"31-byte replaces", messageWith(map[int][]byte{1: nBytes(31)}), ErrSchema, "replaces"},
		{"33-byte inReplyTo", messageWith(map[int][]byte{4: nBytes(33)}), ErrSchema, "inReplyTo"},
		{"topic too long", messageWith(map[int][]byte{2: nBytes(MaxTopicID + 1)}), ErrLimit, "topicId"},
		{"multipart of one", messageWith(map[int][]byte{6: multiItem(0, textPart)}), ErrSchema, "at least 2"},
		{"too many parts", messageWith(map[int][]byte{6: manyParts(MaxParts)}), ErrLimit, "parts"},
		{"empty sender", messageWith(map[int][]byte{5: mapItem(uintItem(1), textItem(""))}), ErrSchema, "mimiExtensions[1]"},
		{"empty text key", messageWith(extWith(textItem(""), uintItem(0))), ErrSchema, "want 1 to 255"},
		{"long text key", messageWith(extWith(textItem(strings.Repeat("k", 256)), uintItem(0))), ErrSchema, "256 bytes"},

		// map keys
		{"unsorted keys", messageWith(map[int][]byte{5: mapItem(uintItem(2), textItem(room), uintItem(1), textItem(sender))}), ErrNotDeterministic, "bytewise order"},
		{"RFC 7049 key order", messageWith(extWith(intItem(-1), uintItem(0), uintItem(24), uintItem(0))), ErrNotDeterministic, "bytewise order"},
		{"duplicate keys", messageWith(map[int][]byte{5: mapItem(uintItem(1), textItem(sender), uintItem(1), textItem(sender))}), ErrDuplicateKey, "key 1 repeated"},
		{"duplicate keys apart", messageWith(extWith(uintItem(3), uintItem(0), uintItem(1), uintItem(0))), ErrDuplicateKey, "key 1 repeated"},
		{"duplicate keys in value", messageWith(extWith(uintItem(3), mapItem(textItem("a"), uintItem(0), textItem("a"), uintItem(1)))), ErrDuplicateKey, `"a" repeated`},
		{"unsorted keys in value", messageWith(extWith(uintItem(3), mapItem(textItem("b"), uintItem(0), textItem("a"), uintItem(1)))), ErrNotDeterministic, "bytewise order"},
		{"float key", messageWith(extWith([]byte{0xf9, 0x3c, 0x00}, uintItem(0))), ErrSchema, "want integer or text"},
		{"bytes key", messageWith(extWith(bytesItem([]byte("k")), uintItem(0))), ErrSchema, "want integer or text"},
		{"key beyond 2^53", messageWith(extWith(uintItem(1<<53), uintItem(0))), ErrSchema, "2^53"},
		{"negative key beyond 2^53", messageWith(extWith(intItem(-(1 << 53)), uintItem(0))), ErrSchema, "2^53"},
		{"array key in value", messageWith(extWith(uintItem(3), mapItem(arrayItem(), uintItem(0)))), ErrSchema, "map key is array"},

		// shortest forms
		{"long disposition", messageWith(map[int][]byte{6: arrayItem([]byte{0x18, 0x01}, textItem(""), uintItem(0))}), ErrNotDeterministic, "nestedPart.disposition"},
		{"long salt length", messageWith(map[int][]byte{0: cat([]byte{0x58, 0x10}, bytes.Repeat([]byte{1}, 16))}), ErrNotDeterministic, "salt"},
		{"long array count", cat([]byte{0x98, 0x07}, bytesItem(testSalt[:]), nullItem, bytesItem(nil), nullItem, nullItem, stdExt, textPart), ErrNotDeterministic, "message"},
		{"long expiry", messageWith(map[int][]byte{3: arrayItem([]byte{cborFalse}, []byte{0x1a, 0, 0, 0xff, 0xff})}), ErrNotDeterministic, "expires.time"},
		{"float32 fits half", messageWith(extWith(uintItem(3), []byte{0xfa, 0x3f, 0x80, 0, 0})), ErrNotDeterministic, "fits half"},
		{"float64 fits float32", messageWith(extWith(uintItem(3), []byte{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})), ErrNotDeterministic, "shorter form"},
		{"NaN payload", messageWith(extWith(uintItem(3), []byte{0xf9, 0x7e, 0x01})), ErrNotDeterministic, "NaN"},
		{"NaN float64", messageWith(extWith(uintItem(3), []byte{0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})), ErrNotDeterministic, "NaN"},
		{"small bignum", messageWith(extWith(uintItem(3), cat([]byte{0xc2}, bytesItem([]byte{1, 2})))), ErrNotDeterministic, "bignum"},
		{"bignum leading zero", messageWith(extWith(uintItem(3), cat([]byte{0xc3}, bytesItem([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8})))), ErrNotDeterministic, "bignum"},

		// malformed
		{"reserved info", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), []byte{0x1c})}), ErrMalformed, "reserved"},
		{"two-byte simple", messageWith(extWith(uintItem(3), []byte{0xf8, 0x10})), ErrMalformed, "simple value 16"},
		{"stray break", messageWith(extWith(uintItem(3), []byte{0xff})), ErrMalformed, "break"},
		{"indefinite integer", messageWith(map[int][]byte{6: arrayItem([]byte{0x1f}, textItem(""), uintItem(0))}), ErrMalformed, "indefinite length on unsigned integer"},

		// wrong types, one position at a time
		{"salt as text", messageWith(map[int][]byte{0: textItem(strings.Repeat("s", 16))}), ErrSchema, "salt"},
		{"salt tagged", messageWith(map[int][]byte{0: cat([]byte{0xd8, 0x40}, bytesItem(testSalt[:]))}), ErrSchema, "salt"},
		{"replaces as text", messageWith(map[int][]byte{1: textItem("id")}), ErrSchema, "replaces"},
		{"replaces false", messageWith(map[int][]byte{1: []byte{cborFalse}}), ErrSchema, "replaces"},
		{"topic null", messageWith(map[int][]byte{2: nullItem}), ErrSchema, "topicId"},
		{"topic as text", messageWith(map[int][]byte{2: textItem("t")}), ErrSchema, "topicId"},
		{"expires as int", messageWith(map[int][]byte{3: uintItem(5)}), ErrSchema, "expires"},
		{"expires 1 item", messageWith(map[int][]byte{3: arrayItem([]byte{cborTrue})}), ErrSchema, "expires"},
		{"expires relative int", messageWith(map[int][]byte{3: arrayItem(uintItem(1), uintItem(5))}), ErrSchema, "expires.relative"},
		{"expires time 2^32", messageWith(map[int][]byte{3: arrayItem([]byte{cborTrue}, uintItem(1<<32))}), ErrSchema, "expires.time"},
		{"expires negative", messageWith(map[int][]byte{3: arrayItem([]byte{cborTrue}, intItem(-5))}), ErrSchema, "expires.time"},
		{"inReplyTo as int", messageWith(map[int][]byte{4: uintItem(1)}), ErrSchema, "inReplyTo"},
		{"extensions as array", messageWith(map[int][]byte{5: arrayItem()}), ErrSchema, "mimiExtensions"},
		{"extensions null", messageWith(map[int][]byte{5: nullItem}), ErrSchema, "mimiExtensions"},
		{"sender as int", messageWith(map[int][]byte{5: mapItem(uintItem(1), uintItem(7))}), ErrSchema, "mimiExtensions[1]"},
		{"room as bytes", messageWith(map[int][]byte{5: mapItem(uintItem(2), bytesItem([]byte(room)))}), ErrSchema, "mimiExtensions[2]"},
		{"body as map", messageWith(map[int][]byte{6: mapItem()}), ErrSchema, "nestedPart"},
		{"body null", messageWith(map[int][]byte{6: nullItem}), ErrSchema, "nestedPart"},
		{"part of 2 items", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""))}), ErrSchema, "at least 3"},
		{"disposition 256", messageWith(map[int][]byte{6: arrayItem(uintItem(256), textItem(""), uintItem(0))}), ErrSchema, "nestedPart.disposition"},
		{"disposition text", messageWith(map[int][]byte{6: arrayItem(textItem("render"), textItem(""), uintItem(0))}), ErrSchema, "nestedPart.disposition"},
		{"language int", messageWith(map[int][]byte{6: arrayItem(uintItem(1), uintItem(0), uintItem(0))}), ErrSchema, "nestedPart.language"},
		{"cardinality 4", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(4))}), ErrSchema, "unknown cardinality 4"},
		{"cardinality text", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), textItem("single"))}), ErrSchema, "nestedPart.cardinality"},
		{"null part with content", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(0), textItem("x"))}), ErrSchema, "null part with 4 items, want 3"},
		{"single of 4 items", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(1), textItem("text/plain"))}), ErrSchema, "single part with 4 items, want 5"},
		{"content as text", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(1), textItem("text/plain"), textItem("hi"))}), ErrSchema, "nestedPart.content"},
		{"content type as bytes", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(1), bytesItem([]byte("text/plain")), bytesItem(nil))}), ErrSchema, "nestedPart.contentType"},
		{"external of 14 items", messageWith(map[int][]byte{6: externalItem(stdExternalFields()[:11]...)}), ErrSchema, "external part with 14 items, want 15"},
		{"external expires 2^32", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 2, uintItem(1<<32))...)}), ErrSchema, "nestedPart.expires"},
		{"external size negative", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 3, intItem(-1))...)}), ErrSchema, "nestedPart.size"},
		{"encAlg 65536", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 4, uintItem(1<<16))...)}), ErrSchema, "nestedPart.encAlg"},
		{"key as text", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 5, textItem("k"))...)}), ErrSchema, "nestedPart.key"},
		{"nonce null", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 6, nullItem)...)}), ErrSchema, "nestedPart.nonce"},
		{"aad as int", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 7, uintItem(0))...)}), ErrSchema, "nestedPart.aad"},
		{"hashAlg 256", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 8, uintItem(256))...)}), ErrSchema, "nestedPart.hashAlg"},
		{"contentHash as text", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 9, textItem("h"))...)}), ErrSchema, "nestedPart.contentHash"},
		{"url as bytes", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 1, bytesItem([]byte("u")))...)}), ErrSchema, "nestedPart.url"},
		{"description as int", messageWith(map[int][]byte{6: externalItem(replaceAt(stdExternalFields(), 10, uintItem(3))...)}), ErrSchema, "nestedPart.description"},
		{"partSemantics 3", messageWith(map[int][]byte{6: multiItem(3, textPart, textPart)}), ErrSchema, "unknown partSemantics 3"},
		{"parts as map", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(0), mapItem())}), ErrSchema, "nestedPart.parts"},
		{"bad inner part", messageWith(map[int][]byte{6: multiItem(0, textPart, multiItem(1, textPart, singleItem("x", nil)[:5]))}), ErrTruncated, "nestedPart.parts[1].parts[1]"},

		// declared lengths far beyond the input
		{"huge salt length", messageWith(map[int][]byte{0: cat([]byte{0x5b}, u64max[1:])}), ErrSchema, "salt"},
		{"huge topic length", messageWith(map[int][]byte{2: cat([]byte{0x5b}, u64max[1:])}), ErrTruncated, "bytes left"},
		{"huge ext text", messageWith(extWith(uintItem(3), cat([]byte{0x7a}, u64max[1:5]))), ErrTruncated, "bytes left"},
		{"huge text length", messageWith(map[int][]byte{6: arrayItem(uintItem(1), cat([]byte{0x7b}, u64max[1:]), uintItem(0))}), ErrTruncated, "bytes left"},
		{"huge parts count", messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(0), []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})}), ErrTruncated, "bytes left"},
		{"huge map count", messageWith(map[int][]byte{5: []byte{0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}), ErrTruncated, "bytes left"},
		{"huge value array", messageWith(extWith(uintItem(3), []byte{0x9a, 0xff, 0xff, 0xff, 0xff})), ErrTruncated, "bytes left"},
		{"huge message count", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrSchema, "want 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.in)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", m)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q, want %v", err, c.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not mention %q", err, c.field)
			}
			if de.Offset < 0 || de.Offset > len(c.in) {
				t.Fatalf("offset %d outside the %d-byte input", de.Offset, len(c.in))
			}
		})
	}
}

func replaceAt(items [][]byte, i int, v []byte) [][]byte {
	items[i] = v
	return items
}

// manyParts returns a body of n+1 parts in all: a MultiPart of n.
func manyParts(n int) []byte {
	parts := make([][]byte, n)
	for i := range parts {
		parts[i] = emptyPart
	}
	return arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(2), arrayItem(parts...))
}

func TestDecodeTruncated(t *testing.T) {
	for _, v := range loadVectors(t, "mimi-content") {
		if v.name == "implied-original" {
			continue
		}
		for n := range len(v.cbor) {
			_, err := Decode(v.cbor[:n])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut to %d of %d bytes: %v, want %v", v.name, n, len(v.cbor), err, ErrTruncated)
			}
		}
	}
}

func TestDecodeHugeLengthsAllocateLittle(t *testing.T) {
	inputs := [][]byte{
		messageWith(map[int][]byte{0: []byte{0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}),
		messageWith(map[int][]byte{6: arrayItem(uintItem(1), textItem(""), uintItem(3), uintItem(0), []byte{0x9a, 0xff, 0xff, 0xff, 0xff})}),
		messageWith(map[int][]byte{5: []byte{0xba, 0xff, 0xff, 0xff, 0xff}}),
		{0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		for _, in := range inputs {
			if _, err := Decode(in); err == nil {
				t.Fatal("decoded")
			}
			if _, err := DecodeStatusReport(in); err == nil {
				t.Fatal("decoded as a report")
			}
		}
	}
	runtime.ReadMemStats(&after)
	// 800 failed decodes of inputs under 200 bytes: copies of the input and
	// error values only, never anything sized by a declared length.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("failed decodes allocated %d bytes", grew)
	}
}

func TestDecodeErrorText(t *testing.T) {
	_, err := Decode(messageWith(map[int][]byte{0: nBytes(15)}))
	want := "content: salt at byte 1: does not match the MIMI schema: byte string of 15 bytes, want 16"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q\nwant  %q", err, want)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := messageWith(map[int][]byte{2: bytesItem([]byte("topic"))})
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(m.TopicID) != "topic" || m.Extensions.SenderURI != sender || string(m.Body.Content) != "hi" {
		t.Fatalf("decoded message changed with its input: %+v", m)
	}
}
