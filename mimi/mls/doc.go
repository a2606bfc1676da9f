// Package mls runs the MLS (RFC 9420) clients of the phone users the
// gateway serves, so that they can be members of MIMI rooms.
//
// End-to-end encryption ends at the gateway. A phone user's messages are
// carried by SMS or RCS, which MIMI's encryption does not reach: the gateway
// holds each phone user's MLS private keys and decrypts and encrypts their
// messages itself. Anyone who controls the gateway, or its state bucket
// together with the at-rest key, can read and send those users' messages.
// Rooms with phone users are end-to-end encrypted between the other
// participants' devices and this gateway, not to the phone.
//
// What it owns:
//   - one client per phone user, identified by the user's MIMI URI
//     (mimi://<domain>/u/+E164), with a basic credential or an X.509
//     certificate issued by the operator CA, cipher suite 1;
//   - a pool of one-time KeyPackages per user, refilled in the background
//     (Provider.Run), each handed out once and never close to expiry, plus
//     a last-resort package; a Welcome finds its client by KeyPackageRef;
//   - groups: joining from a Welcome whose ratchet tree is inside it or
//     delivered beside it, applying proposals (from members and from the
//     external senders the group lists, such as the MIMI hub) and commits
//     sent as PublicMessage, creating groups with external_senders, adding
//     and removing members by commit;
//   - application messages: MIMI content encrypted as PrivateMessage, and
//     decrypted messages delivered only when the content's sender URI is the
//     MLS sender's credential identity and its room URI the group's room;
//   - durable state in a JetStream key-value bucket, sealed with
//     XChaCha20-Poly1305 under a configured key (bucket and key name as
//     associated data). The secret tree is stored before a ciphertext
//     leaves and before a plaintext is delivered, so a restart never reuses
//     a key and nonce and never accepts a message twice. One instance at a
//     time writes a group: a lease taken by compare-and-set on the lease
//     record's revision, with expiry, and every state write names the
//     revision it replaces, so two instances cannot fork a group.
//
// A group's messages must reach the instance holding its lease. Another
// instance gets ErrLeaseHeld and should hand the message back to the bus
// for redelivery (a delayed nak) rather than drop it; the lease moves when
// its holder releases the group (Client.Release) or stops using it for
// state.lease_ttl. Instances' clocks must agree to well within that TTL;
// if they do not, the revision checks still keep the group from forking
// and the late writer gets an error.
//
// It works on serialised MLS messages only: bytes in, bytes out. Carrying
// them between providers (the MIMI HTTPS protocol) and mapping rooms to
// phone conversations belong elsewhere; it must never import gateway, sip or
// smpp.
//
// It is built on github.com/thomas-vilte/mls-go v1.6.0 and works around
// these defects of that version (each has a test here):
//   - JoinFromWelcome cannot use a ratchet tree delivered beside the
//     Welcome: without the ratchet_tree extension it silently builds a
//     placeholder one-leaf group. Welcomes are opened and verified here.
//   - Its replay protection and out-of-order key cache live only in memory:
//     after a restart the last message of every sender decrypts again.
//     Accepted generations are stored per sender here.
//   - It derives keys for whatever generation a message claims, one HKDF
//     step at a time: a member could make it ratchet four billion times.
//     The distance ahead is bounded here (max_forward_distance).
//   - Proposals are not checked against the current epoch, and commits
//     whose sender is an external sender are applied after checking only
//     the external sender's signature. Both are refused here.
//   - Messages from earlier epochs are attributed to whoever holds the
//     sender's leaf now, and earlier epochs are not serialised. Past epochs
//     are stored here and their own roster names the sender.
//   - Processing a commit advances the epoch in memory before the
//     confirmation tag is checked, and decrypting ratchets before the
//     signature is checked: a failed message can leave the in-memory group
//     changed. Here every failure after mls-go touched a group drops that
//     copy; the stored state, written only after success, is reloaded.
//   - Generate cannot set KeyPackage capabilities or extensions
//     (last_resort); packages are re-signed here after setting them.
//   - State serialisation turns the binary IDs of cached PSKs into
//     U+FFFD-mangled JSON keys; PSKs are stored beside the state here.
//   - Its extensions package reads external senders' keys as ECDSA P-256
//     only; the external_senders extension (Ed25519 keys) is encoded here.
//   - GetGroupInfo copies the GroupContext extensions into the GroupInfo's
//     own extensions; the GroupInfo returned with a commit is built here.
//     The GroupInfo inside a Welcome still has them: it is sealed under
//     secrets mls-go does not expose (ts-mls accepts it).
//
// npm ts-mls 1.6.4, the interop peer, reads external_senders as a single
// ExternalSender instead of RFC 9420's vector: it cannot verify proposals
// from external senders of a group encoded per the RFC. The interop tests
// therefore have ts-mls sign hub proposals but not verify them.
//
// Not handled yet: handshakes sent as PrivateMessage or SemiPrivateMessage
// (MIMI uses PublicMessage), PSKs and re-initialisation, AppDataUpdate and
// other proposal types mls-go does not parse, renewing an expiring user
// certificate inside existing groups.
package mls
