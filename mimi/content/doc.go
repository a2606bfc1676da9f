// Package content is the MIMI content format (draft-ietf-mimi-content-08)
// and the MIMI message status report (draft-mahy-mimi-message-status-01):
// the bytes of every message on the bus, their message IDs, and the reports
// that say a message was delivered or read.
//
// It owns the wire format only. It never touches the bus, NATS, MLS, SIP or
// SMPP, and it holds no policy: who may edit what, whether receipts are
// allowed in a room, and what to do with an expired message are decided by
// the callers.
//
// # Decoding is strict
//
// The message ID is a hash over the exact encoded bytes, so a receiver that
// accepted a non-canonical encoding and re-encoded it would compute an ID
// the sender never saw, and replies, edits and status reports would point
// nowhere. Decode therefore accepts only RFC 8949 section 4.2.1 core
// deterministic encoding and rejects everything else with a *DecodeError:
// non-shortest integers and lengths, indefinite lengths, map keys out of
// bytewise order (unsorted keys are rejected, not re-encoded), duplicate
// keys, floats not in their shortest form, NaNs other than 0xf97e00, and
// bytes after the message. It also enforces the schema: exactly seven
// items, a 16-byte salt, 32-byte IDs, valid UTF-8, NestedParts at most
// MaxPartDepth deep and extension values at most MaxExtensionDepth deep, at
// most MaxParts parts and a topicId of at most MaxTopicID bytes (content-08
// section 9.1 calls larger ones malicious), and non-empty sender and room
// URIs. So anything Decode returns encodes back to the very same bytes.
//
// No length prefix is trusted: a declared length or count larger than the
// bytes left fails before anything is allocated. Decoded messages copy the
// input and never alias it.
//
// Unknown dispositions (9-255), unknown content types, language tags and
// extension keys are accepted and kept, as the draft asks; unknown
// cardinalities and part semantics are errors.
//
// # Encoding
//
// Encode writes the same deterministic form and refuses a Message that
// Decode would reject (wrapping ErrInvalid), so nothing set in code is
// silently dropped or reordered. Extension values are raw CBOR items;
// NewExtension and Extension.Unmarshal convert Go values with
// github.com/fxamacker/cbor/v2 in its core deterministic mode.
//
// # Message ID
//
// ComputeID and Message.ID follow content-08: SHA-256 over the sender and
// room URIs, each after its length as a big-endian 16-bit integer, then the
// encoded message and the salt; the ID is 0x01 followed by the first 31
// bytes of the hash. Draft -07 hashed the URIs without the lengths and
// gives other IDs.
//
// Parts are numbered depth first from 0 (Message.Parts, PartCID), the N of
// cid:N@local.invalid URIs.
package content
