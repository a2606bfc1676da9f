package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestVectorLengths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
		n    int   // the vector's length when valid
		want error // the reason when not
	}{
		{"1-byte 0", []byte{0x00}, 0, nil},
		{"1-byte 63", append([]byte{0x3f}, make([]byte, 63)...), 63, nil},
		{"2-byte 64", append([]byte{0x40, 0x40}, make([]byte, 64)...), 64, nil},
		{"2-byte 16383", append([]byte{0x7f, 0xff}, make([]byte, 16383)...), 16383, nil},
		{"4-byte 16384", append([]byte{0x80, 0x00, 0x40, 0x00}, make([]byte, 16384)...), 16384, nil},
		{"4-byte MaxVector", append([]byte{0x80, 0x10, 0x00, 0x00}, make([]byte, MaxVector)...), MaxVector, nil},
		{"2-byte non-minimal 1", []byte{0x40, 0x01, 0xaa}, 0, errNonMinimal},
		{"2-byte non-minimal 63", append([]byte{0x40, 0x3f}, make([]byte, 63)...), 0, errNonMinimal},
		{"4-byte non-minimal 1", []byte{0x80, 0x00, 0x00, 0x01, 0xaa}, 0, errNonMinimal},
		{"4-byte non-minimal 16383", append([]byte{0x80, 0x00, 0x3f, 0xff}, make([]byte, 16383)...), 0, errNonMinimal},
		{"8-byte form", []byte{0xc0, 0, 0, 0, 0, 0, 0, 1, 0xaa}, 0, errLongVarint},
		{"oversize", append([]byte{0x80, 0x10, 0x00, 0x01}, make([]byte, MaxVector+1)...), 0, errOversize},
		{"oversize, bytes absent", []byte{0xbf, 0xff, 0xff, 0xff}, 0, errOversize},
		{"no length", nil, 0, errTruncated},
		{"2-byte length cut", []byte{0x40}, 0, errTruncated},
		{"4-byte length cut", []byte{0x80, 0x00, 0x40}, 0, errTruncated},
		{"body cut", []byte{0x03, 0xaa, 0xbb}, 0, errTruncated},
	} {
		r := newReader(tc.in, "test")
		v := r.vector("v")
		err := r.finish()
		if tc.want == nil {
			if err != nil || len(v) != tc.n {
				t.Errorf("%s: %d bytes, %v", tc.name, len(v), err)
			}
			if out := (&writer{}); true {
				out.opaque("v", v)
				if !bytes.Equal(out.b, tc.in) {
					t.Errorf("%s: re-encoded %x", tc.name, out.b[:min(8, len(out.b))])
				}
			}
			continue
		}
		if !isKind(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestNestedVectorPrefix checks that a composite vector whose content
// crosses a length-form boundary gets the shortest prefix.
func TestNestedVectorPrefix(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 62, 63, 64, 16382, 16383, 16384, 70000} {
		w := newWriter("test")
		w.u8(0xee)
		w.vector("outer", func() { w.b = append(w.b, bytes.Repeat([]byte{0x5a}, n)...) })
		w.u8(0xff)
		out, err := w.result()
		if err != nil {
			t.Fatal(err)
		}
		want := cat([]byte{0xee}, appendVarint(nil, n), bytes.Repeat([]byte{0x5a}, n), []byte{0xff})
		if !bytes.Equal(out, want) {
			t.Fatalf("content of %d bytes: prefix %x", n, out[1:5])
		}
	}
	w := newWriter("test")
	w.vector("outer", func() { w.b = append(w.b, make([]byte, MaxVector+1)...) })
	if _, err := w.result(); !errors.Is(err, ErrInvalid) || !errors.Is(err, errOversize) {
		t.Fatalf("oversize composite vector: %v", err)
	}
}

func TestOptionalFlag(t *testing.T) {
	t.Parallel()
	for _, flag := range []byte{2, 0x80, 0xff} {
		b := hx(t, "01 00 "+goldenTimestamp)
		b = append(b, flag)
		if _, err := UnmarshalSubmitMessageResponse(b); !isKind(err, errOptional) {
			t.Errorf("flag %#x: %v", flag, err)
		}
	}
}

func TestFieldErrorNamesThePath(t *testing.T) {
	t.Parallel()
	good := hx(t, "01 01 1d"+hexBob+"14 01 12"+hexCli)
	if _, err := UnmarshalKeyMaterialResponse(good); err != nil {
		t.Fatal(err)
	}
	_, err := UnmarshalKeyMaterialResponse(good[:len(good)-3])
	// The clients vector declares 20 bytes and 17 are left: the vector is
	// truncated before any client is read.
	if err == nil || err.Error() != "wire: keyMaterialResponse.clients: truncated (20 bytes declared, 17 left)" {
		t.Fatalf("got %v", err)
	}
	cut := hx(t, "01 01 1d"+hexBob+"11 01 12"+hexCli[:30])
	_, err = UnmarshalKeyMaterialResponse(cut)
	if err == nil || !strings.HasPrefix(err.Error(), "wire: keyMaterialResponse.clients[0].clientUri: truncated") {
		t.Fatalf("got %v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "keyMaterialResponse.clients[0].clientUri" || fe.Offset != 34 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %#v", fe)
	}
	_, err = (&KeyMaterialResponse{Protocol: MLS10, UserStatus: PartialSuccess, Clients: []ClientKeyMaterial{{Status: KeyMaterialExhausted}, {Status: KeyMaterialExhausted, ClientURI: "\xff"}}}).Marshal()
	if err == nil || err.Error() != "wire: keyMaterialResponse.clients[1].clientUri: invalid UTF-8" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}
