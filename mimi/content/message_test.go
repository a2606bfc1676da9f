package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func idOf(b byte) *MessageID {
	var id MessageID
	id[0] = HashSHA256
	for i := 1; i < len(id); i++ {
		id[i] = b
	}
	return &id
}

func mustExtension(t *testing.T, k ExtensionKey, v any) Extension {
	t.Helper()
	x, err := NewExtension(k, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestRoundTripConstructed(t *testing.T) {
	var salt [16]byte
	copy(salt[:], "0123456789abcdef")
	ext := ExternalPart{
		ContentType: "image/jpeg", URL: "https://example.com/f/1.jpg", Expires: 1<<32 - 1, Size: 1<<64 - 1,
		EncAlg: 1, Key: bytes.Repeat([]byte{1}, 16), Nonce: bytes.Repeat([]byte{2}, 12), AAD: []byte("aad"),
		HashAlg: 1, ContentHash: bytes.Repeat([]byte{3}, 32), Description: "a photo", Filename: "1.jpg",
	}
	cases := map[string]*Message{
		"text": NewText(sender, room, "hello, wörld", salt),
		"null": {Salt: salt, Replaces: idOf(7), Extensions: Extensions{SenderURI: sender, RoomURI: room}, Body: NewNullPart(Render)},
		"external": {Salt: salt, Extensions: Extensions{SenderURI: sender, RoomURI: room},
			Body: NewExternalPart(Attachment, ext)},
		"external empty": {Salt: salt, Extensions: Extensions{SenderURI: sender, RoomURI: room},
			Body: NewExternalPart(Session, ExternalPart{URL: "https://example.com/join"})},
		"multi": {Salt: salt, TopicID: []byte("topic"), Expires: &Expires{Relative: true, Time: 600}, InReplyTo: idOf(9),
			Extensions: Extensions{SenderURI: sender, RoomURI: room},
			Body: NewMultiPart(Render, ChooseOne,
				NewSinglePart(Render, TypeMarkdown, []byte("**hi**")),
				NewMultiPart(Render, SingleUnit,
					NewSinglePart(Render, "text/html", []byte(`<img src="cid:4@local.invalid">`)),
					NewMultiPart(Inline, ProcessAll,
						NewExternalPart(Inline, ext),
						NewNullPart(Unspecified),
					),
				),
			)},
		"reaction": {Salt: salt, InReplyTo: idOf(1), Extensions: Extensions{SenderURI: sender, RoomURI: room},
			Body: NewSinglePart(Reaction, TypePlain, []byte("👍"))},
		"no URIs": {Salt: salt, Body: NewSinglePart(Disposition(200), "application/octet-stream", []byte{0, 1, 2})},
		"extensions": {Salt: salt, Extensions: Extensions{SenderURI: sender, RoomURI: room, Other: []Extension{
			mustExtension(t, ExtensionKey{Text: "x-vendor"}, map[string]any{"b": []any{1, "two", []byte{3}}, "a": 1.5}),
			mustExtension(t, ExtensionKey{Int: -7}, true),
			mustExtension(t, ExtensionKey{Int: 300}, uint64(1)<<63),
			mustExtension(t, ExtensionKey{Int: 3}, []any{[]any{"deep"}}),
		}}, Body: NewNullPart(Unspecified)},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := *m
			if len(want.Extensions.Other) > 0 {
				// Decode returns extensions in wire (sorted) order.
				enc, _ := Decode(b)
				want.Extensions.Other = enc.Extensions.Other
				if len(want.Extensions.Other) != len(m.Extensions.Other) {
					t.Fatalf("%d extensions back, %d sent", len(want.Extensions.Other), len(m.Extensions.Other))
				}
				for _, x := range m.Extensions.Other {
					v, ok := got.Extensions.Get(x.Key)
					if !ok || !bytes.Equal(v, x.Value) {
						t.Fatalf("extension %s = %x, %v; want %x", x.Key, v, ok, x.Value)
					}
				}
			}
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("round trip changed the message\n got %+v\nwant %+v", got, &want)
			}
			again, err := got.Encode()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("second encoding differs: %v", err)
			}
			if m.Extensions.SenderURI != "" {
				id, err := m.ID()
				if err != nil {
					t.Fatal(err)
				}
				if c := ComputeID(sender, room, b, salt); c != id {
					t.Fatalf("ID %s, ComputeID %s", id, c)
				}
			}
		})
	}
}

func TestExtensionValues(t *testing.T) {
	type vendor struct {
		Name string `cbor:"name"`
		N    int    `cbor:"n"`
	}
	x := mustExtension(t, ExtensionKey{Text: "v"}, vendor{Name: "a", N: -3})
	m := &Message{Extensions: Extensions{Other: []Extension{x}}, Body: NewNullPart(Unspecified)}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var v vendor
	if err := back.Extensions.Other[0].Unmarshal(&v); err != nil || v != (vendor{"a", -3}) {
		t.Fatalf("Unmarshal = %+v, %v", v, err)
	}

	// MIMI limits beyond what the library knows.
	if _, err := NewExtension(ExtensionKey{Int: 3}, [][][][]int{{{{1}}}}); !errors.Is(err, ErrTooDeep) {
		t.Errorf("4 levels inside a value: %v, want ErrTooDeep", err)
	}
	if _, err := NewExtension(ExtensionKey{Int: 3}, map[float64]int{1.5: 1}); !errors.Is(err, ErrSchema) {
		t.Errorf("float map key: %v, want ErrSchema", err)
	}
	if _, err := NewExtension(ExtensionKey{Int: 3}, math.NaN()); err != nil {
		t.Errorf("NaN (written as 0xf97e00): %v", err)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	ok := func() *Message { return NewText(sender, room, "x", [16]byte{}) }
	deep := NewSinglePart(Render, TypePlain, nil)
	for range MaxPartDepth {
		deep = NewMultiPart(Render, ChooseOne, deep, NewNullPart(0))
	}
	many := make([]NestedPart, MaxParts)
	cases := map[string]func(m *Message){
		"topic too long":   func(m *Message) { m.TopicID = make([]byte, MaxTopicID+1) },
		"sender not UTF-8": func(m *Message) { m.Extensions.SenderURI = "\xff" },
		"room too long":    func(m *Message) { m.Extensions.RoomURI = strings.Repeat("r", MaxURI+1) },
		"key 1 in Other":   func(m *Message) { m.Extensions.Set(KeySenderURI, textItem("x")) },
		"duplicate key": func(m *Message) {
			m.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 5}, Value: []byte{0}}, {Key: ExtensionKey{Int: 5}, Value: []byte{1}}}
		},
		"value not one item":  func(m *Message) { m.Extensions.Set(ExtensionKey{Int: 5}, []byte{0, 0}) },
		"value empty":         func(m *Message) { m.Extensions.Set(ExtensionKey{Int: 5}, nil) },
		"value non-shortest":  func(m *Message) { m.Extensions.Set(ExtensionKey{Int: 5}, []byte{0x18, 0x01}) },
		"key beyond 2^53":     func(m *Message) { m.Extensions.Set(ExtensionKey{Int: 1 << 53}, []byte{0}) },
		"text key too long":   func(m *Message) { m.Extensions.Set(ExtensionKey{Text: strings.Repeat("k", 256)}, []byte{0}) },
		"text and int key":    func(m *Message) { m.Extensions.Set(ExtensionKey{Text: "k", Int: 4}, []byte{0}) },
		"parts 5 deep":        func(m *Message) { m.Body = deep },
		"too many parts":      func(m *Message) { m.Body = NewMultiPart(Render, ProcessAll, many...) },
		"multi of one":        func(m *Message) { m.Body = NewMultiPart(Render, ProcessAll, NewNullPart(0)) },
		"semantics 3":         func(m *Message) { m.Body = NewMultiPart(Render, 3, NewNullPart(0), NewNullPart(0)) },
		"cardinality 4":       func(m *Message) { m.Body.Cardinality = 4 },
		"external without":    func(m *Message) { m.Body = NestedPart{Cardinality: External} },
		"null with content":   func(m *Message) { m.Body = NestedPart{Cardinality: Null, Content: []byte("x")} },
		"single with parts":   func(m *Message) { m.Body.Parts = []NestedPart{{}, {}} },
		"single with ext":     func(m *Message) { m.Body.External = &ExternalPart{} },
		"language not UTF-8":  func(m *Message) { m.Body.Language = "\xc3" },
		"filename not UTF-8":  func(m *Message) { m.Body = NewExternalPart(Attachment, ExternalPart{Filename: "\xff"}) },
		"inner part invalid":  func(m *Message) { m.Body = NewMultiPart(Render, ChooseOne, NewNullPart(0), NestedPart{Cardinality: 9}) },
		"content type binary": func(m *Message) { m.Body.ContentType = "text/\xff" },
	}
	for name, mutate := range cases {
		m := ok()
		mutate(m)
		b, err := m.Encode()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode = %x, %v; want ErrInvalid", name, b, err)
			continue
		}
		if _, err := m.ID(); err == nil {
			t.Errorf("%s: ID computed for a message that cannot be encoded", name)
		}
	}
	_, err := ok().Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := ok()
	m.Body = NewMultiPart(Render, ChooseOne, NewNullPart(0), NestedPart{Cardinality: 9})
	_, err = m.Encode()
	if err == nil || !strings.Contains(err.Error(), "nestedPart.parts[1].cardinality") {
		t.Errorf("error %v does not name the part", err)
	}
}

func TestMessageID(t *testing.T) {
	const want = "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4"
	orig := loadVector(t, "mimi-content", "original")
	if len(orig.cbor) != 193 {
		t.Fatalf("original.cbor is %d bytes, the spec says 193", len(orig.cbor))
	}
	salt := [16]byte(orig.cbor[2:18])
	id := ComputeID("mimi://example.com/u/alice-smith", "mimi://example.com/r/engineering_team", orig.cbor, salt)
	if id.String() != want {
		t.Fatalf("ComputeID = %s, want %s", id, want)
	}

	p, err := ParseMessageID(want)
	if err != nil || p != id {
		t.Fatalf("ParseMessageID = %s, %v", p, err)
	}
	if p, err := ParseMessageID(strings.ToUpper(want)); err != nil || p != id {
		t.Fatalf("ParseMessageID(upper) = %s, %v", p, err)
	}
	for _, bad := range []string{"", want[:62], want + "00", "zz" + want[2:]} {
		if _, err := ParseMessageID(bad); err == nil {
			t.Errorf("ParseMessageID(%q) succeeded", bad)
		}
	}
	if id.IsZero() || !(MessageID{}).IsZero() {
		t.Fatal("IsZero wrong")
	}
	txt, _ := id.MarshalText()
	var back MessageID
	if err := back.UnmarshalText(txt); err != nil || back != id {
		t.Fatalf("text round trip: %s, %v", back, err)
	}

	// Long URIs against the formula written out plainly.
	for _, n := range []int{0, 1, 61, 62, 63, 64, 126, 127, 128, 300, MaxURI} {
		s, r := strings.Repeat("s", n), strings.Repeat("r", n/2+1)
		in := cat([]byte{byte(n >> 8), byte(n)}, []byte(s), []byte{byte(len(r) >> 8), byte(len(r))}, []byte(r), orig.cbor, salt[:])
		sum := sha256.Sum256(in)
		if got, want := ComputeID(s, r, orig.cbor, salt), idFromHash(sum[:]); got != want {
			t.Fatalf("URIs of %d and %d bytes: ComputeID %s, formula %s", len(s), len(r), got, want)
		}
	}
	if got := ComputeID(strings.Repeat("s", MaxURI+1), room, orig.cbor, salt); !got.IsZero() {
		t.Fatalf("ComputeID with a URI over 65535 bytes = %s, want zero", got)
	}
	m := NewText("", room, "x", salt)
	if _, err := m.ID(); !errors.Is(err, ErrNoURI) {
		t.Fatalf("ID without sender: %v", err)
	}
}

func TestNewSalt(t *testing.T) {
	a, b := NewSalt(), NewSalt()
	if a == b || a == [16]byte{} {
		t.Fatalf("salts %x and %x", a, b)
	}
}

func TestText(t *testing.T) {
	cases := []struct {
		name string
		body NestedPart
		want string
		ok   bool
	}{
		{"plain", NewSinglePart(Render, TypePlain, []byte("hi")), "hi", true},
		{"markdown", NewSinglePart(Render, TypeMarkdown, []byte("*hi*")), "*hi*", true},
		{"no charset", NewSinglePart(Render, "Text/Plain", []byte("hi")), "hi", true},
		{"latin1", NewSinglePart(Render, "text/plain; charset=ISO-8859-1", []byte("hi")), "", false},
		{"html only", NewSinglePart(Render, "text/html", []byte("<p>hi")), "", false},
		{"bad UTF-8", NewSinglePart(Render, TypePlain, []byte("a\xffb")), "a\uFFFDb", true},
		{"null", NewNullPart(Render), "", false},
		{"nested", NewMultiPart(Render, ChooseOne,
			NewSinglePart(Render, "application/x-vendor", []byte{1}),
			NewMultiPart(Render, ProcessAll, NewSinglePart(Render, "text/html", nil), NewSinglePart(Render, TypeMarkdown, []byte("deep"))),
		), "deep", true},
	}
	for _, c := range cases {
		m := &Message{Body: c.body}
		got, ok := m.Text()
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Text() = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestPartNumbering(t *testing.T) {
	m, err := Decode(loadVector(t, "mimi-content", "multipart-3").cbor)
	if err != nil {
		t.Fatal(err)
	}
	// The draft's summary of multipart-3 (appendix B.3).
	want := []string{"multi", "multi", "multi", "text/html;charset=utf-8 en", "text/html;charset=utf-8 fr", "image/gif",
		"multi", "multi", "text/html;charset=utf-8 en", "text/html;charset=utf-8 fr", "image/png"}
	var got []string
	for i, p := range m.Parts() {
		if i != len(got) {
			t.Fatalf("index %d after %d parts", i, len(got))
		}
		s := p.Cardinality.String()
		if p.Cardinality == Single {
			s = p.ContentType + " " + p.Language
			if p.Language == "" {
				s = p.ContentType
			}
		}
		got = append(got, s)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parts %q\nwant  %q", got, want)
	}
	// The HTML parts name their image by cid:, and the index resolves to it.
	for _, c := range []struct{ html, img int }{{3, 5}, {4, 5}, {8, 10}, {9, 10}} {
		h, _ := m.Part(c.html)
		cid := PartCID(c.img)
		if !bytes.Contains(h.Content, []byte(cid)) {
			t.Fatalf("part %d does not mention %s", c.html, cid)
		}
		n, ok := ParsePartCID(cid)
		img, found := m.Part(n)
		if !ok || !found || !strings.HasPrefix(img.ContentType, "image/") {
			t.Fatalf("%s resolves to %v", cid, img)
		}
	}
	if _, ok := m.Part(11); ok {
		t.Fatal("part 11 of 11 found")
	}
	for _, bad := range []string{"cid:x@local.invalid", "cid:@local.invalid", "cid:01@local.invalid", "cid:1@example.com", "mid:1@local.invalid", "cid:99999@local.invalid", "cid:-1@local.invalid"} {
		if n, ok := ParsePartCID(bad); ok {
			t.Errorf("ParsePartCID(%q) = %d", bad, n)
		}
	}
}

func TestStatusReports(t *testing.T) {
	entries := []StatusEntry{{*idOf(1), Unread}, {*idOf(2), Delivered}, {*idOf(3), Read}, {*idOf(4), Expired},
		{*idOf(5), Deleted}, {*idOf(6), Hidden}, {*idOf(7), Error}, {*idOf(8), Status(7)}, {*idOf(9), Status(255)}}
	b, err := EncodeStatusReport(entries)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeStatusReport(b)
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if got[7].Status.Known() || got[7].Status.String() != "unknown(7)" || !got[6].Status.Known() || got[6].Status.String() != "error" {
		t.Fatalf("unknown statuses: %v %v", got[7].Status, got[6].Status)
	}
	if empty, err := DecodeStatusReport([]byte{0x80}); err != nil || len(empty) != 0 {
		t.Fatalf("empty report: %v, %v", empty, err)
	}

	entry := func(id []byte, status []byte) []byte { return arrayItem(bytesItem(id), status) }
	id32 := bytes.Repeat([]byte{1}, 32)
	bad := []struct {
		name  string
		in    []byte
		want  error
		field string
	}{
		{"status 256", arrayItem(entry(id32, uintItem(256))), ErrSchema, "report[0].status"},
		{"status negative", arrayItem(entry(id32, intItem(-1))), ErrSchema, "report[0].status"},
		{"31-byte ID", arrayItem(entry(id32[:31], uintItem(1))), ErrSchema, "report[0].messageId"},
		{"3 items", arrayItem(arrayItem(bytesItem(id32), uintItem(1), uintItem(1))), ErrSchema, "report[0]"},
		{"not an array", mapItem(), ErrSchema, "report"},
		{"indefinite", cat([]byte{0x9f}, entry(id32, uintItem(1)), []byte{0xff}), ErrIndefinite, "report"},
		{"long status", arrayItem(entry(id32, []byte{0x18, 0x02})), ErrNotDeterministic, "report[0].status"},
		{"trailing", append(arrayItem(entry(id32, uintItem(1))), 0), ErrTrailingData, "1 bytes"},
		{"truncated", arrayItem(entry(id32, uintItem(1)))[:20], ErrTruncated, "report[0].messageId"},
		{"huge count", []byte{0x9b, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrTruncated, "bytes left"},
		{"empty", nil, ErrTruncated, "report"},
	}
	for _, c := range bad {
		_, err := DecodeStatusReport(c.in)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.want, c.field)
		}
	}

	var salt [16]byte
	m := NewStatusReport(sender, room, entries[:2], salt)
	if m.Body.ContentType != StatusReportType || m.Body.Disposition != Unspecified {
		t.Fatalf("report body %+v", m.Body)
	}
	if es, ok, err := m.StatusReport(); !ok || err != nil || !reflect.DeepEqual(es, entries[:2]) {
		t.Fatalf("StatusReport() = %v, %v, %v", es, ok, err)
	}
	if _, ok, _ := NewText(sender, room, "x", salt).StatusReport(); ok {
		t.Fatal("a text message is a status report")
	}
	m.Body.Content = []byte{0x81}
	if _, ok, err := m.StatusReport(); !ok || err == nil {
		t.Fatalf("broken report: ok %v err %v", ok, err)
	}
}

func TestDerivedValuesRoundTrip(t *testing.T) {
	v := &DerivedValues{MessageID: *idOf(4), HubAccepted: 1644387225019, MLSGroupID: []byte{1, 2}, SenderLeafIndex: 1<<32 - 1,
		SenderClientURL: "mimi://a.example/d/c1", SenderUserURL: "mimi://a.example/u/alice", RoomURL: "mimi://a.example/r/x"}
	b, err := v.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDerivedValues(b)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip %+v, %v", got, err)
	}
	ext := arrayItem(bytesItem(v.MessageID[:]), cat([]byte{0xd9, 0x03, 0xe9}, mapItem()), bytesItem(nil), uintItem(0), textItem(""), textItem(""), textItem(""))
	if _, err := DecodeDerivedValues(ext); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "tag 1001") {
		t.Fatalf("extended time: %v", err)
	}
	if _, err := DecodeDerivedValues(messageWith(nil)); !errors.Is(err, ErrSchema) {
		t.Fatalf("a message decoded as derived values: %v", err)
	}
}

// The float checks agree with fxamacker/cbor's shortest-float encoder.
func TestShortestFloatAgreesWithLibrary(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	values := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 65504, 65505, 65536, 1e-5, 5.960464477539063e-08, 2.9802322387695312e-08,
		6.103515625e-05, 6.097555160522461e-05, 3.4028234663852886e+38, 1e39, 1.1, math.Inf(1), math.Inf(-1), 1.401298464324817e-45,
		0.333251953125, 100000, 1.0000001, 3.0517578125e-05, 5.9604644775390625e-08 * 3}
	for i := range 2000 {
		values = append(values, math.Ldexp(float64(i%37+1), i/37-40), float64(float32(math.Ldexp(1.0/3, i/20-60))))
	}
	for _, f := range values {
		b, err := em.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkValue(b); err != nil {
			t.Fatalf("%v encoded by the library as %x rejected: %v", f, b, err)
		}
		// The same value written one size larger must be refused.
		var wider []byte
		switch b[0] {
		case 0xf9:
			f32 := math.Float32bits(float32(f))
			wider = []byte{0xfa, byte(f32 >> 24), byte(f32 >> 16), byte(f32 >> 8), byte(f32)}
		case 0xfa:
			wider = append([]byte{0xfb}, make([]byte, 8)...)
			bits := math.Float64bits(f)
			for i := range 8 {
				wider[1+i] = byte(bits >> (56 - 8*i))
			}
		default:
			continue
		}
		if err := checkValue(wider); !errors.Is(err, ErrNotDeterministic) {
			t.Fatalf("%v written as %x accepted (%v); the library writes %x", f, wider, err, b)
		}
	}
}
