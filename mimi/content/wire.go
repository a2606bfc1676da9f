package content

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// The reader below is a small strict CBOR reader rather than
// fxamacker/cbor's decoder. cbor/v2 (read at v2.10.0) rejects indefinite
// lengths, duplicate keys and bad UTF-8 when asked, but it has no option to
// reject non-shortest heads (0x18 0x01 for 1), unsorted map keys or
// non-shortest floats, all of which a MIMI receiver must refuse because the
// message ID hashes the exact bytes. Its nesting limit counts every array,
// map and tag from the top (minimum 4), while MIMI limits NestedPart depth
// and extension-value depth separately, and the four NestedPart shapes
// would need a RawMessage second pass. Walking the bytes once by position
// is shorter than those workarounds, lets every error name the field, and
// costs no allocation per item. cbor/v2 still encodes and decodes
// extension values for callers (extension.go) and checks this reader in the
// tests.

// CBOR major types.
const (
	majorUint   = 0
	majorNegint = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

const (
	cborFalse = 0xf4
	cborTrue  = 0xf5
	cborNull  = 0xf6
)

// maxSafeInt is 2^53-1: map keys must survive a round trip through a
// double (content-08 section 6.2).
const maxSafeInt = 1<<53 - 1

var majorNames = [8]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "simple value or float"}

type head struct {
	major byte
	ai    byte   // additional information (low 5 bits)
	arg   uint64 // argument: value, length, count, tag number or float bits
	start int    // offset of the initial byte
}

func (h head) describe() string {
	switch h.major {
	case majorBytes, majorText:
		return fmt.Sprintf("%s of %d bytes", majorNames[h.major], h.arg)
	case majorArray:
		return fmt.Sprintf("array of %d items", h.arg)
	case majorMap:
		return fmt.Sprintf("map of %d pairs", h.arg)
	case majorSimple:
		switch h.ai {
		case cborFalse & 0x1f, cborTrue & 0x1f:
			return "boolean"
		case cborNull & 0x1f:
			return "null"
		case 25, 26, 27:
			return "float"
		}
	}
	return majorNames[h.major]
}

// reader reads one buffer and accepts only RFC 8949 section 4.2.1 core
// deterministic encoding: definite lengths, shortest heads, shortest floats,
// map keys in bytewise order.
type reader struct {
	b   []byte
	off int
}

func (r *reader) fail(field string, at int, err error, format string, args ...any) error {
	return &DecodeError{Field: field, Offset: at, Err: err, Detail: fmt.Sprintf(format, args...)}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

// readHead reads an initial byte and its argument.
func (r *reader) readHead(field string) (head, error) {
	start := r.off
	if r.off >= len(r.b) {
		return head{}, r.fail(field, start, ErrTruncated, "input ends where an item should start")
	}
	ib := r.b[r.off]
	h := head{major: ib >> 5, ai: ib & 0x1f, start: start}
	r.off++
	switch {
	case h.ai < 24:
		h.arg = uint64(h.ai)
	case h.ai <= 27:
		n := 1 << (h.ai - 24)
		if r.remaining() < n {
			return head{}, r.fail(field, start, ErrTruncated, "%d-byte argument of %s cut short", n, majorNames[h.major])
		}
		p := r.b[r.off : r.off+n]
		r.off += n
		switch n {
		case 1:
			h.arg = uint64(p[0])
		case 2:
			h.arg = uint64(binary.BigEndian.Uint16(p))
		case 4:
			h.arg = uint64(binary.BigEndian.Uint32(p))
		default:
			h.arg = binary.BigEndian.Uint64(p)
		}
		if h.major == majorSimple {
			if n == 1 && h.arg < 32 {
				return head{}, r.fail(field, start, ErrMalformed, "simple value %d in two bytes", h.arg)
			}
			break // floats are checked by checkFloat
		}
		if (n == 1 && h.arg < 24) || (n == 2 && h.arg <= math.MaxUint8) ||
			(n == 4 && h.arg <= math.MaxUint16) || (n == 8 && h.arg <= math.MaxUint32) {
			return head{}, r.fail(field, start, ErrNotDeterministic, "%s argument %d written in %d bytes, longer than needed", majorNames[h.major], h.arg, n)
		}
	case h.ai == 31:
		switch h.major {
		case majorBytes, majorText, majorArray, majorMap:
			return head{}, r.fail(field, start, ErrIndefinite, "indefinite-length %s", majorNames[h.major])
		case majorSimple:
			return head{}, r.fail(field, start, ErrMalformed, "break code outside an indefinite-length item")
		}
		return head{}, r.fail(field, start, ErrMalformed, "indefinite length on %s", majorNames[h.major])
	default:
		return head{}, r.fail(field, start, ErrMalformed, "reserved additional information %d", h.ai)
	}
	return h, nil
}

// expect reads a head of the given major type.
func (r *reader) expect(field string, major byte) (head, error) {
	h, err := r.readHead(field)
	if err != nil {
		return h, err
	}
	if h.major != major {
		return h, r.fail(field, h.start, ErrSchema, "%s, want %s", h.describe(), majorNames[major])
	}
	return h, nil
}

// payload returns the n bytes after a string head, refusing lengths the
// input cannot hold before anything is sliced or allocated.
func (r *reader) payload(field string, h head) ([]byte, error) {
	if h.arg > uint64(r.remaining()) {
		return nil, r.fail(field, h.start, ErrTruncated, "%s declared, %d bytes left", h.describe(), r.remaining())
	}
	p := r.b[r.off : r.off+int(h.arg)]
	r.off += int(h.arg)
	return p, nil
}

// uint reads an unsigned integer no larger than max.
func (r *reader) uint(field string, max uint64) (uint64, error) {
	h, err := r.expect(field, majorUint)
	if err != nil {
		return 0, err
	}
	if h.arg > max {
		return 0, r.fail(field, h.start, ErrSchema, "%d is larger than %d", h.arg, max)
	}
	return h.arg, nil
}

// bytes reads a byte string and returns its offsets in r.b.
func (r *reader) bytes(field string) (start, end int, err error) {
	h, err := r.expect(field, majorBytes)
	if err != nil {
		return 0, 0, err
	}
	if _, err := r.payload(field, h); err != nil {
		return 0, 0, err
	}
	return r.off - int(h.arg), r.off, nil
}

// fixedBytes reads a byte string of exactly n bytes.
func (r *reader) fixedBytes(field string, dst []byte) error {
	h, err := r.expect(field, majorBytes)
	if err != nil {
		return err
	}
	if h.arg != uint64(len(dst)) {
		return r.fail(field, h.start, ErrSchema, "%s, want %d", h.describe(), len(dst))
	}
	p, err := r.payload(field, h)
	if err != nil {
		return err
	}
	copy(dst, p)
	return nil
}

// text reads a UTF-8 text string and returns its offsets in r.b.
func (r *reader) text(field string) (start, end int, err error) {
	h, err := r.expect(field, majorText)
	if err != nil {
		return 0, 0, err
	}
	p, err := r.payload(field, h)
	if err != nil {
		return 0, 0, err
	}
	if !utf8.Valid(p) {
		return 0, 0, r.fail(field, h.start, ErrInvalidUTF8, "%s", h.describe())
	}
	return r.off - len(p), r.off, nil
}

// array reads an array head with exactly want items (want < 0: any count,
// bounded by the bytes left, each item taking at least minItem bytes).
func (r *reader) array(field string, want, minItem int) (int, error) {
	h, err := r.expect(field, majorArray)
	if err != nil {
		return 0, err
	}
	if want >= 0 && h.arg != uint64(want) {
		return 0, r.fail(field, h.start, ErrSchema, "%s, want %d", h.describe(), want)
	}
	if h.arg > uint64(r.remaining()/minItem) {
		return 0, r.fail(field, h.start, ErrTruncated, "%s declared, %d bytes left", h.describe(), r.remaining())
	}
	return int(h.arg), nil
}

// null consumes a null if one is next.
func (r *reader) null() bool {
	if r.off < len(r.b) && r.b[r.off] == cborNull {
		r.off++
		return true
	}
	return false
}

func (r *reader) bool(field string) (bool, error) {
	if r.off < len(r.b) {
		switch r.b[r.off] {
		case cborFalse:
			r.off++
			return false, nil
		case cborTrue:
			r.off++
			return true, nil
		}
	}
	h, err := r.readHead(field)
	if err != nil {
		return false, err
	}
	return false, r.fail(field, h.start, ErrSchema, "%s, want boolean", h.describe())
}

// end rejects anything after the top-level item.
func (r *reader) end() error {
	if r.off != len(r.b) {
		return r.fail("", r.off, ErrTrailingData, "%d bytes after the top-level item", len(r.b)-r.off)
	}
	return nil
}

// skipValue checks one arbitrary data item at nesting level depth (the
// level of the container holding it) and moves past it. Arrays, maps and
// tags each add a level, and nothing may sit deeper than maxDepth
// (content-08 section 6.3). Map keys must be integers within +-(2^53-1),
// text or byte strings (section 6.2), unique and in bytewise order.
func (r *reader) skipValue(field string, depth, maxDepth int) error {
	h, err := r.readHead(field)
	if err != nil {
		return err
	}
	switch h.major {
	case majorUint, majorNegint:
		return nil
	case majorBytes:
		_, err := r.payload(field, h)
		return err
	case majorText:
		p, err := r.payload(field, h)
		if err == nil && !utf8.Valid(p) {
			err = r.fail(field, h.start, ErrInvalidUTF8, "%s", h.describe())
		}
		return err
	case majorArray:
		if depth+1 > maxDepth {
			return r.fail(field, h.start, ErrTooDeep, "array at level %d, limit %d", depth+1, maxDepth)
		}
		if h.arg > uint64(r.remaining()) {
			return r.fail(field, h.start, ErrTruncated, "%s declared, %d bytes left", h.describe(), r.remaining())
		}
		for i := range int(h.arg) {
			if err := r.skipValue("", depth+1, maxDepth); err != nil {
				return within(err, fmt.Sprintf("%s[%d]", field, i))
			}
		}
		return nil
	case majorMap:
		if depth+1 > maxDepth {
			return r.fail(field, h.start, ErrTooDeep, "map at level %d, limit %d", depth+1, maxDepth)
		}
		return r.skipMap(field, h, depth+1, maxDepth)
	case majorTag:
		if depth+1 > maxDepth {
			return r.fail(field, h.start, ErrTooDeep, "tag at level %d, limit %d", depth+1, maxDepth)
		}
		if h.arg == 2 || h.arg == 3 {
			return r.checkBignum(field, h)
		}
		return r.skipValue(field, depth+1, maxDepth)
	default:
		return r.checkSimple(field, h)
	}
}

// skipMap checks the pairs of a map whose head h was read; level is the
// map's own nesting level.
func (r *reader) skipMap(field string, h head, level, maxDepth int) error {
	if h.arg > uint64(r.remaining()/2) {
		return r.fail(field, h.start, ErrTruncated, "%s declared, %d bytes left", h.describe(), r.remaining())
	}
	var prev []byte
	for range int(h.arg) {
		ks := r.off
		kh, err := r.readHead(field)
		if err != nil {
			return err
		}
		switch kh.major {
		case majorUint, majorNegint:
			if kh.arg > maxSafeInt-uint64(kh.major) {
				return r.fail(field, ks, ErrSchema, "map key %s beyond +-(2^53-1)", intString(kh))
			}
		case majorBytes, majorText:
			p, err := r.payload(field, kh)
			if err != nil {
				return err
			}
			if kh.major == majorText && !utf8.Valid(p) {
				return r.fail(field, ks, ErrInvalidUTF8, "map key %s", kh.describe())
			}
		default:
			return r.fail(field, ks, ErrSchema, "map key is %s, want integer, text or byte string", kh.describe())
		}
		key := r.b[ks:r.off]
		if err := r.checkOrder(field, ks, prev, key, h.start); err != nil {
			return err
		}
		prev = key
		if err := r.skipValue("", level, maxDepth); err != nil {
			return within(err, fmt.Sprintf("%s[%s]", field, keyString(key)))
		}
	}
	return nil
}

// checkOrder enforces unique keys in bytewise lexicographic order of their
// encodings (RFC 8949 section 4.2.1; not the RFC 7049 length-first order).
func (r *reader) checkOrder(field string, at int, prev, key []byte, mapStart int) error {
	if prev == nil {
		return nil
	}
	switch c := bytes.Compare(prev, key); {
	case c < 0:
		return nil
	case c == 0:
		return r.fail(field, at, ErrDuplicateKey, "key %s repeated", keyString(key))
	}
	if r.seenBefore(mapStart, at, key) {
		return r.fail(field, at, ErrDuplicateKey, "key %s repeated", keyString(key))
	}
	return r.fail(field, at, ErrNotDeterministic, "map key %s after %s: keys not in bytewise order", keyString(key), keyString(prev))
}

// seenBefore rescans the keys of the map starting at mapStart up to offset
// stop for one equal to key. It runs only on the error path, to report a
// duplicate rather than an ordering fault when both apply.
func (r *reader) seenBefore(mapStart, stop int, key []byte) bool {
	s := reader{b: r.b[:stop], off: mapStart}
	h, err := s.readHead("")
	if err != nil {
		return false
	}
	for range int(h.arg) {
		ks := s.off
		if s.off >= stop || s.skipValue("", 0, math.MaxInt) != nil {
			return false
		}
		if bytes.Equal(s.b[ks:s.off], key) {
			return true
		}
		if s.off >= stop || s.skipValue("", 0, math.MaxInt) != nil {
			return false
		}
	}
	return false
}

// checkBignum rejects tag 2/3 bignums that are not in preferred form: a
// leading zero byte, or a value that fits a plain integer.
func (r *reader) checkBignum(field string, tag head) error {
	h, err := r.expect(field, majorBytes)
	if err != nil {
		return within(err, fmt.Sprintf("tag %d", tag.arg))
	}
	p, err := r.payload(field, h)
	if err != nil {
		return err
	}
	if len(p) <= 8 || p[0] == 0 {
		return r.fail(field, tag.start, ErrNotDeterministic, "bignum (tag %d) of %d bytes fits a plain integer or has a leading zero", tag.arg, len(p))
	}
	return nil
}

// checkSimple checks a major type 7 item: simple values pass, floats must be
// in their shortest exact form, and the only NaN is 0xf97e00 (content-08
// section 6.2).
func (r *reader) checkSimple(field string, h head) error {
	switch h.ai {
	case 25:
		if h.arg&0x7c00 == 0x7c00 && h.arg&0x03ff != 0 && h.arg != 0x7e00 {
			return r.fail(field, h.start, ErrNotDeterministic, "NaN 0x%04x, only 0xf97e00 is allowed", h.arg)
		}
	case 26:
		f := math.Float32frombits(uint32(h.arg))
		if f != f {
			return r.fail(field, h.start, ErrNotDeterministic, "NaN in single precision, only 0xf97e00 is allowed")
		}
		if float32FitsHalf(uint32(h.arg)) {
			return r.fail(field, h.start, ErrNotDeterministic, "single-precision float %v fits half precision", f)
		}
	case 27:
		f := math.Float64frombits(h.arg)
		if f != f {
			return r.fail(field, h.start, ErrNotDeterministic, "NaN in double precision, only 0xf97e00 is allowed")
		}
		if float64(float32(f)) == f {
			return r.fail(field, h.start, ErrNotDeterministic, "double-precision float %v fits a shorter form", f)
		}
	}
	return nil
}

// float32FitsHalf reports whether a non-NaN float32 is exactly
// representable in IEEE 754 half precision.
func float32FitsHalf(bits uint32) bool {
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff: // infinity
		return true
	case exp == 0 && mant == 0: // zero
		return true
	case exp == 0: // float32 subnormal, far below half's range
		return false
	}
	e := exp - 127
	switch {
	case e > 15:
		return false
	case e >= -14: // half normal: 10 fraction bits
		return mant&0x1fff == 0
	case e < -24:
		return false
	}
	// Half subnormal: the value must be a multiple of 2^-24.
	sig := mant | 1<<23
	drop := uint(-(e + 1))
	return sig&(1<<drop-1) == 0
}

func intString(h head) string {
	if h.major == majorNegint {
		return fmt.Sprintf("-1-%d", h.arg)
	}
	return fmt.Sprintf("%d", h.arg)
}

// keyString renders an encoded map key for error messages.
func keyString(key []byte) string {
	s := reader{b: key}
	h, err := s.readHead("")
	if err != nil {
		return fmt.Sprintf("h'%x'", key)
	}
	switch h.major {
	case majorUint:
		return fmt.Sprintf("%d", h.arg)
	case majorNegint:
		if h.arg < math.MaxInt64 {
			return fmt.Sprintf("%d", -1-int64(h.arg))
		}
		return intString(h)
	case majorText:
		if s.remaining() >= int(h.arg) && h.arg <= 64 {
			return fmt.Sprintf("%q", s.b[s.off:s.off+int(h.arg)])
		}
	}
	return fmt.Sprintf("h'%x'", key)
}

// Writing.

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendBytes(b []byte, p []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(p))), p...)
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		return appendHead(b, majorNegint, uint64(-1-n))
	}
	return appendHead(b, majorUint, uint64(n))
}
