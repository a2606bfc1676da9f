package wire

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// The TLS presentation language as RFC 9420 section 2.1 uses it: integers
// big-endian, opaque<V> and T<V> behind a variable-length length of 1, 2
// or 4 bytes, optional<T> as a one-byte presence flag.
//
// Both directions keep the first error and ignore everything after it
// ("sticky" errors), so the structure code below reads like the draft's
// struct definitions, field after field, with one check at the end.

// MaxVector is the longest vector, in bytes, this package reads or writes.
// A longer one is an error (an oversize vector), whatever its declared
// length could express.
const MaxVector = 1 << 20

// reader decodes from b[off:end]; end is the end of the innermost vector
// being read, so nothing inside a vector can read past it.
type reader struct {
	b    []byte
	off  int
	end  int
	path []elem
	err  *FieldError
}

func newReader(b []byte, top string) *reader {
	r := &reader{b: b, end: len(b), path: make([]elem, 1, 16)}
	r.path[0] = elem{name: top, idx: -1}
	return r
}

// finish reports the first error, or trailing bytes after the top
// structure.
func (r *reader) finish() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("", errTrailing, strconv.Itoa(len(r.b)-r.off)+" bytes")
	}
	if r.err != nil {
		return r.err
	}
	return nil
}

func (r *reader) failAt(off int, field string, kind error, detail string) {
	if r.err == nil {
		r.err = &FieldError{Field: fieldPath(r.path, field), Offset: off, Detail: detail, kind: kind, class: ErrMalformed}
	}
}

func (r *reader) fail(field string, kind error, detail string) { r.failAt(r.off, field, kind, detail) }

// badEnum reports a one- or two-byte enum value just read as unknown.
func (r *reader) badEnum(field string, size int, v uint64) {
	r.failAt(r.off-size, field, errEnum, strconv.FormatUint(v, 10))
}

func (r *reader) push(name string) { r.path = append(r.path, elem{name: name, idx: -1}) }
func (r *reader) pop()             { r.path = r.path[:len(r.path)-1] }

func (r *reader) need(field string, n int) bool {
	if r.err != nil {
		return false
	}
	if r.end-r.off < n {
		r.fail(field, errTruncated, "")
		return false
	}
	return true
}

func (r *reader) u8(field string) uint8 {
	if !r.need(field, 1) {
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) u16(field string) uint16 {
	if !r.need(field, 2) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *reader) u32(field string) uint32 {
	if !r.need(field, 4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *reader) u64(field string) uint64 {
	if !r.need(field, 8) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// fixed reads n bytes as they are (a uint8[n] array); the result aliases
// the input.
func (r *reader) fixed(field string, n int) []byte {
	if !r.need(field, n) {
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

// length reads a vector's length prefix and checks that the vector fits
// both MaxVector and the bytes left.
func (r *reader) length(field string) int {
	if !r.need(field, 1) {
		return 0
	}
	start := r.off
	b0 := r.b[r.off]
	var n int
	switch b0 >> 6 {
	case 0:
		n = int(b0)
		r.off++
	case 1:
		if !r.need(field, 2) {
			return 0
		}
		n = int(b0&0x3f)<<8 | int(r.b[r.off+1])
		r.off += 2
		if n < 1<<6 {
			r.failAt(start, field, errNonMinimal, "")
			return 0
		}
	case 2:
		if !r.need(field, 4) {
			return 0
		}
		n = int(binary.BigEndian.Uint32(r.b[r.off:]) & 0x3fffffff)
		r.off += 4
		if n < 1<<14 {
			r.failAt(start, field, errNonMinimal, "")
			return 0
		}
	default:
		r.failAt(start, field, errLongVarint, "")
		return 0
	}
	if n > MaxVector {
		r.failAt(start, field, errOversize, strconv.Itoa(n)+" bytes")
		return 0
	}
	if n > r.end-r.off {
		r.failAt(start, field, errTruncated, strconv.Itoa(n)+" bytes declared, "+strconv.Itoa(r.end-r.off)+" left")
		return 0
	}
	return n
}

// vector reads opaque field<V>; the result aliases the input.
func (r *reader) vector(field string) []byte {
	n := r.length(field)
	if r.err != nil {
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

// opaque reads opaque field<V> into a copy; empty reads as nil.
func (r *reader) opaque(field string) []byte {
	v := r.vector(field)
	if len(v) == 0 {
		return nil
	}
	return bytes.Clone(v)
}

// str reads opaque field<V> holding UTF-8.
func (r *reader) str(field string) string {
	start := r.off
	v := r.vector(field)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		r.failAt(start, field, errUTF8, "")
		return ""
	}
	return string(v)
}

// u16s reads uint16 field<V>; empty reads as nil.
func (r *reader) u16s(field string) []uint16 {
	start := r.off
	v := r.vector(field)
	if r.err != nil || len(v) == 0 {
		return nil
	}
	if len(v)%2 != 0 {
		r.failAt(start, field, errElementLength, strconv.Itoa(len(v))+" bytes")
		return nil
	}
	out := make([]uint16, len(v)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(v[2*i:])
	}
	return out
}

// skipU16s checks uint16 field<V> without keeping it.
func (r *reader) skipU16s(field string) {
	start := r.off
	if v := r.vector(field); len(v)%2 != 0 {
		r.failAt(start, field, errElementLength, strconv.Itoa(len(v))+" bytes")
	}
}

// flag reads the presence byte of optional<T>.
func (r *reader) flag(field string) bool {
	switch v := r.u8(field); {
	case r.err != nil:
		return false
	case v == 0:
		return false
	case v == 1:
		return true
	default:
		r.failAt(r.off-1, field, errOptional, strconv.Itoa(int(v)))
		return false
	}
}

// list reads T field<V>, calling each for every element until the vector
// is used up; an element that runs past the vector's end is truncated.
func (r *reader) list(field string, each func(i int)) {
	n := r.length(field)
	if r.err != nil {
		return
	}
	outer := r.end
	r.end = r.off + n
	r.push(field)
	top := len(r.path) - 1
	for i := 0; r.err == nil && r.off < r.end; i++ {
		r.path[top].idx = i
		before := r.off
		each(i)
		if r.err == nil && r.off == before {
			// Every element is at least a byte long; one that reads
			// nothing would loop forever.
			r.fail("", errEmpty, "element of no bytes")
		}
	}
	r.path = r.path[:top]
	r.end = outer
}

// writer encodes into b. Vectors are written content first; their length
// prefix is inserted when the content is complete.
type writer struct {
	b    []byte
	path []elem
	err  *FieldError
}

func newWriter(top string) *writer {
	w := &writer{b: make([]byte, 0, 256), path: make([]elem, 1, 16)}
	w.path[0] = elem{name: top, idx: -1}
	return w
}

func (w *writer) result() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

func (w *writer) fail(field string, kind error, detail string) {
	if w.err == nil {
		w.err = &FieldError{Field: fieldPath(w.path, field), Offset: len(w.b), Detail: detail, kind: kind, class: ErrInvalid}
	}
}

func (w *writer) push(name string) { w.path = append(w.path, elem{name: name, idx: -1}) }
func (w *writer) pop()             { w.path = w.path[:len(w.path)-1] }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

func (w *writer) flag(present bool) {
	if present {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

// appendVarint appends an RFC 9420 variable-length integer in its
// shortest form; n is at most MaxVector here.
func appendVarint(b []byte, n int) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x40|byte(n>>8), byte(n))
	default:
		return append(b, 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func (w *writer) opaque(field string, v []byte) {
	if len(v) > MaxVector {
		w.fail(field, errOversize, strconv.Itoa(len(v))+" bytes")
		return
	}
	w.b = appendVarint(w.b, len(v))
	w.b = append(w.b, v...)
}

func (w *writer) str(field, s string) {
	if !utf8.ValidString(s) {
		w.fail(field, errUTF8, "")
		return
	}
	if len(s) > MaxVector {
		w.fail(field, errOversize, strconv.Itoa(len(s))+" bytes")
		return
	}
	w.b = appendVarint(w.b, len(s))
	w.b = append(w.b, s...)
}

func (w *writer) u16s(field string, v []uint16) {
	if 2*len(v) > MaxVector {
		w.fail(field, errOversize, strconv.Itoa(2*len(v))+" bytes")
		return
	}
	w.b = appendVarint(w.b, 2*len(v))
	for _, x := range v {
		w.u16(x)
	}
}

// vector writes T field<V>: fill writes the content, then the length goes
// in front of it.
func (w *writer) vector(field string, fill func()) {
	start := len(w.b)
	w.push(field)
	fill()
	w.pop()
	if w.err != nil {
		return
	}
	n := len(w.b) - start
	if n > MaxVector {
		w.fail(field, errOversize, strconv.Itoa(n)+" bytes")
		return
	}
	var p [4]byte
	k := len(appendVarint(p[:0], n))
	w.b = append(w.b, p[:k]...)
	copy(w.b[start+k:], w.b[start:start+n])
	copy(w.b[start:], p[:k])
}

// list writes T field<V> of n elements.
func (w *writer) list(field string, n int, each func(i int)) {
	w.vector(field, func() {
		top := len(w.path) - 1
		for i := 0; i < n && w.err == nil; i++ {
			w.path[top].idx = i
			each(i)
		}
		w.path[top].idx = -1
	})
}
