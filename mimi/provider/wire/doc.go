// Package wire is the binary format of the MIMI provider protocol
// (draft-ietf-mimi-protocol-06 section 5): every request and response body
// providers exchange over HTTPS, in the TLS presentation language, with an
// encoder and a strict decoder for each. It also reads, without any
// cryptography, the RFC 9420 structures those bodies embed (mls.go), since
// an embedded MLSMessage, KeyPackage, Welcome or GroupInfo has no length of
// its own and its end is found only by reading it.
//
// It owns bytes only. It never touches HTTP, the bus or MLS state, and it
// decides no policy: whether a sender may post in a room, whether a
// signature's key belongs to its credential, whether a KeyPackage expired.
// Those belong to mimi/provider and mimi/mls. The one cryptographic helper
// is KeyMaterialRequest's Ed25519 Sign and Verify; every signed structure
// has a TBS method returning the RFC 9420 SignContent bytes to sign, and
// FrankingContext and FrankingTBS encode what a hub's franking (section
// 5.4.1) hashes and signs.
//
// # Decoding is strict
//
// A decoder takes exactly one structure and refuses, with an error wrapping
// ErrMalformed (a *FieldError naming the field's path, e.g.
// "wire: keyMaterialResponse.clients[0].clientUri: truncated"): truncation;
// trailing bytes; a vector length in the 8-byte form or not in its shortest
// form; a vector longer than MaxVector (1 MiB); an optional<T> flag other
// than 0 or 1; an enum value the drafts do not define; invalid UTF-8 in a
// URI or string; a field its select case does not allow; an unknown RFC
// 9420 wire format, proposal type or credential type. Nothing panics on
// any input, no declared length is trusted before the bytes are there, and
// decoded values copy the input rather than alias it (UnwrapMLSMessage
// excepted). So whatever decodes encodes back to the very same bytes.
//
// Each Marshal checks the same rules and returns an error wrapping
// ErrInvalid rather than write what a decoder would refuse; a field set in
// code that the value's case does not carry (a Frank on a commit's
// FanoutMessage, say) is refused too, never silently dropped. Empty
// vectors decode as nil.
//
// # Readings of the drafts
//
// Draft -06 leaves gaps and contradicts itself in places. The gateway's
// parts, and the desktop peer it is tested against, follow these readings;
// each has a test named TestReading... in readings_test.go.
//
//   - Encoding (RFC 9420 section 2.1, draft section 5): <V> is a QUIC-style
//     length of 1, 2 or 4 bytes, shortest form only; optional<T> is a 0 or 1
//     byte then T; enums are one byte, CipherSuite two, timestamps uint64
//     milliseconds since the UNIX epoch. IdentifierUri, RoomId and string,
//     which the draft uses without defining the last two, are all opaque<V>
//     holding UTF-8. Protocol is reserved(0) or mls10(1) and only mls10 is
//     read or written.
//   - RatchetTreeOption, used but not defined by -06, is the one of
//     draft-mahy-mls-ratchet-tree-options section 3: full(1) carries
//     optional<Node> ratchet_tree<V> (the same bytes as a ratchet_tree
//     extension's extension_data, length included), httpsUri(2) a URL and
//     tree_signature, outOfBand(3) a tree_signature, distributionService(4)
//     nothing. PartialGroupInfo is that draft's section 4.
//   - FanoutMessage (section 5.5) selects on "protocol" and on content types
//     under the wire format, and has no protocol field. Here it is timestamp
//     then MLSMessage, followed by optional<Frank> for an application
//     message (PrivateMessage or PublicMessage), RatchetTreeOption for a
//     Welcome, moreProposals for a proposal and externalProposals for a
//     commit, each a vector of whole MLSMessages back to back. A GroupInfo
//     or KeyPackage message is an error. A notify body is one or more
//     FanoutMessages concatenated; an empty body is an error.
//   - "optional Frank" (sections 5.4 and 5.5) is optional<Frank>.
//     SubmitMessageResponse's select names a case success where its enum
//     says accepted: the status codes are accepted(0), notAllowed(1),
//     epochTooOld(2). AbusiveMessage (section 5.9) writes a bare Frank and
//     keeps it.
//   - HandshakeBundle (section 5.3), whose select is not closed: after the
//     proposal or commit, a commit carries optional<Welcome> (the bare
//     Welcome struct, not an MLSMessage), a GroupInfoOption (full(1): a bare
//     GroupInfo; partial(2): a PartialGroupInfo) and a RatchetTreeOption; a
//     proposal carries moreProposals; an application message is an error.
//   - KeyMaterialRequest (section 5.2) is signed with Ed25519 over
//     SignContent{label "MLS 1.0 KeyMaterialRequestTBS", content: the
//     request encoded without its signature}. A mls10 ClientKeyMaterial is
//     clientStatus, clientUri, then a bare KeyPackage (success), an
//     optional<Capabilities> (nothingCompatible) or nothing
//     (keyMaterialExhausted). A KeyMaterialResponse lists clients only for
//     success, partialSuccess and noCompatibleMaterial; for any other
//     status the vector must be empty.
//   - IdentifierRequest and IdentifierResponse are as in section 5.8; a
//     phone number is looked up with the query element searchType phone(4)
//     and searchValue "+" and its E.164 digits (PhoneQuery), and the
//     answer's uri vector holds the user's URI.
//   - GroupInfoRequest (section 5.6) has opaque joiningCode<V>, empty when
//     there is none, in the request and in its TBS alike (the TBS's
//     "optional" is not followed). GroupInfoResponse's first field, which
//     the draft calls version, is the Protocol.
//
// This package adds its own, where the drafts say a thing in prose or in a
// comment but not in the syntax (each refusal has a case in the tables of
// badinput_test.go and marshal_test.go, each acceptance a sample in
// roundtrip_test.go):
//
//   - moreProposals, externalProposals and PendingProposal hold proposals
//     only (PublicMessage or PrivateMessage of content_type proposal);
//   - SubmitMessageRequest.appMessage is a PrivateMessage of content_type
//     application (section 5.4);
//   - KeyMaterialRequest.acceptableCiphersuites is not empty (section 5.2);
//   - the GroupInfo in a GroupInfoOption or in a GroupInfoRatchetTreeTBE,
//     and a PartialGroupInfo's extensions, carry no ratchet_tree extension
//     ("Both the Welcome and GroupInfo omit the ratchet_tree");
//   - an httpsUri ratchet tree URL starts with https://;
//   - ConsentEntry's optional<RoomId>, when present, is not empty;
//   - an AppDataDictionary's components are in increasing ID order, at most
//     one each (draft-ietf-mls-extensions-09 section 4.6);
//   - a participant list names each user once, and a ParticipantListUpdate
//     touches each participant once (changed or removed) with indices
//     into the list as it was before the update ("one change per user per
//     commit"); re-adding a user the same update removed is allowed;
//   - AbuseType values are all carried as they are: the draft reserves the
//     field and defines no reason yet;
//   - handshakes sent as PrivateMessage pass this package (their content
//     type is in the clear); whether a hub accepts them is its decision.
//
// # MLS
//
// The RFC 9420 reader checks every length, enum and presence flag of
// MLSMessage (version mls10 only), PublicMessage (FramedContent, Sender,
// the signature, the confirmation_tag of commits, the membership_tag of
// members' messages), PrivateMessage, Welcome, GroupInfo and GroupContext,
// KeyPackage, LeafNode (with the leaf_node_source its place demands),
// Credential (basic and x509 only), Capabilities, Extension lists, ratchet
// trees (leaves at even positions, parents at odd ones, the last node not
// blank), Commit (proposals by value or reference, optional UpdatePath)
// and every RFC 9420 proposal type, plus AppDataUpdate (0x0008) and
// SelfRemove (0x000a) from draft-ietf-mls-extensions-09, whose suggested
// values it takes. Anything else, SemiPrivateMessage included, is an error.
// It checks no signature, tag or ciphertext.
package wire
