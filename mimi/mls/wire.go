package mls

import (
	"encoding/binary"
	"errors"
)

// The few TLS presentation-language pieces this package writes itself
// (RFC 9420 section 2.1): mls-go keeps its encoder internal.

var errShort = errors.New("short vector")

// appendVarint appends an RFC 9420 variable-length integer (at most 2^30-1).
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

// appendVector appends opaque data<V>.
func appendVector(b, v []byte) []byte {
	return append(appendVarint(b, len(v)), v...)
}

// readVector reads opaque data<V> from the front of b and returns it and
// the rest. Non-minimal length encodings are rejected, as RFC 9420 requires.
func readVector(b []byte) (v, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, errShort
	}
	var n, hdr int
	switch b[0] >> 6 {
	case 0:
		n, hdr = int(b[0]&0x3f), 1
	case 1:
		if len(b) < 2 {
			return nil, nil, errShort
		}
		n, hdr = int(binary.BigEndian.Uint16(b)&0x3fff), 2
		if n < 1<<6 {
			return nil, nil, errors.New("non-minimal vector length")
		}
	case 2:
		if len(b) < 4 {
			return nil, nil, errShort
		}
		n, hdr = int(binary.BigEndian.Uint32(b)&0x3fffffff), 4
		if n < 1<<14 {
			return nil, nil, errors.New("non-minimal vector length")
		}
	default:
		return nil, nil, errors.New("invalid vector length prefix")
	}
	if len(b)-hdr < n {
		return nil, nil, errShort
	}
	return b[hdr : hdr+n], b[hdr+n:], nil
}

// vectorSuffixLen is the length of opaque data<V> holding v, for stripping
// a trailing signature off an encoding.
func vectorSuffixLen(v []byte) int {
	return len(appendVarint(nil, len(v))) + len(v)
}
