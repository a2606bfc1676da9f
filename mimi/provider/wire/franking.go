package wire

// The encodings a hub franks with (draft-ietf-mimi-protocol-06 section
// 5.4.1): server_frank = HMAC-SHA256(hub_key, franking_tag ||
// ServerFrankingContext), and the franking_integrity_signature is
// SignWithLabel(franking key, "FrankingIntegrityTBS", FrankingIntegrityTBS).

// FrankingContext encodes ServerFrankingContext {IdentifierUri sender_uri;
// IdentifierUri room_uri; uint64 accepted_timestamp}.
func FrankingContext(senderURI, roomURI string, acceptedTimestamp uint64) ([]byte, error) {
	w := newWriter("serverFrankingContext")
	encodeFrankingContext(w, senderURI, roomURI, acceptedTimestamp)
	return w.result()
}

func encodeFrankingContext(w *writer, senderURI, roomURI string, acceptedTimestamp uint64) {
	w.str("sender_uri", senderURI)
	w.str("room_uri", roomURI)
	w.u64(acceptedTimestamp)
}

// FrankingTBS returns the bytes the hub signs for f: SignContent with the
// label "MLS 1.0 FrankingIntegrityTBS" over FrankingIntegrityTBS
// {server_frank[32]; CipherSuite franking_signature_ciphersuite;
// ServerFrankingContext context}. f.Signature is not part of it.
func FrankingTBS(f *Frank, senderURI, roomURI string, acceptedTimestamp uint64) ([]byte, error) {
	w := newWriter("frankingIntegrityTBS")
	w.b = append(w.b, f.ServerFrank[:]...)
	w.u16(f.CipherSuite)
	w.push("context")
	encodeFrankingContext(w, senderURI, roomURI, acceptedTimestamp)
	w.pop()
	b, err := w.result()
	if err != nil {
		return nil, err
	}
	return SignContent("FrankingIntegrityTBS", b), nil
}
