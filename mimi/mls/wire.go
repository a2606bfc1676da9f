package mls

// The few TLS presentation-language pieces this package writes itself
// (RFC 9420 section 2.1): mls-go keeps its encoder internal.

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

// vectorSuffixLen is the length of opaque data<V> holding v, for stripping
// a trailing signature off an encoding.
func vectorSuffixLen(v []byte) int {
	return len(appendVarint(nil, len(v))) + len(v)
}
