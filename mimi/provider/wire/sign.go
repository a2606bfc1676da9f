package wire

// SignContent is RFC 9420's SignContent (section 5.1.2), the bytes
// SignWithLabel signs: opaque label<V> = "MLS 1.0 " + label, then opaque
// content<V>. content must be shorter than 2^30 bytes, the most a length
// prefix can say (every structure of this package is), and label shorter
// than 2^29.
func SignContent(label string, content []byte) []byte {
	if len(content) >= 1<<30 || len(label) >= 1<<29 {
		panic("wire: SignContent: label or content too long for a length prefix")
	}
	const prefix = "MLS 1.0 "
	out := make([]byte, 0, 4+len(prefix)+len(label)+4+len(content))
	out = appendVarint(out, len(prefix)+len(label))
	out = append(out, prefix...)
	out = append(out, label...)
	out = appendVarint(out, len(content))
	return append(out, content...)
}
