// Package provider makes the gateway a MIMI provider for the phone users it
// serves (draft-ietf-mimi-protocol-06): other providers reach those users
// over HTTPS with mutual TLS, and every message on a provider link is MLS
// (RFC 9420) ciphertext. Inside the operator the bus carries plaintext MIMI
// content as before; this package is the only place where it crosses to
// and from ciphertext.
//
// What it owns:
//   - the protocol's endpoints for configured peers (transport handles TLS,
//     peer authentication and the directory; wire the bytes):
//     identifierQuery (phone(4) queries for numbers the gateway serves),
//     keyMaterial (a phone user's one-time KeyPackage, from mimi/mls's
//     pools, for the hub of a room), notify (what a hub fans out),
//     submitMessage and update (what followers send to rooms hosted here);
//   - following rooms hosted elsewhere: a Welcome joins the phone user's
//     MLS client, commits and proposals are applied, and application
//     messages are decrypted once (as one of the room's phone users) and
//     stored on mimi.to.tel.<digits> of each of the room's phone users but
//     the sender, with the usual envelope, so RCS, SMS, fallback and
//     receipts work unchanged, for each phone user on their own;
//   - hosting rooms: a phone user who writes first to a user of another
//     provider (a number a peer serves, found by identifierQuery, or a
//     peer's user behind a lent or virtual number) gets a room named as
//     the gateway names direct-message rooms, whose group lists the hub's
//     key in external_senders, with that user added by key material and a
//     Welcome; the gateway then orders, timestamps and fans out the room's
//     messages;
//   - the outbox: a durable consumer on the from-phone stream takes every
//     message and status report a phone user sends into such a room,
//     encrypts it as the phone user's MLS client and sends it to the hub
//     (submitMessage) or the followers (notify); it is acknowledged on the
//     bus only once they took it, and tried again with the bus's backoff
//     until they do or provider.outbox_attempts run out (hours), and a
//     message that cannot get there is answered to its phone user with an
//     error report; it is stored as well for the room's other phone users
//     of this gateway; messages of the operator's own conversations are
//     let through without a read;
//   - the room records, in their own bucket (mimigw-provider by default):
//     room.<room URI in unpadded base64url> -> hub domain, MLS group ID,
//     the gateway's phone users in the room and, for rooms hosted here, the
//     follower providers.
//
// Rules it keeps:
//   - Accepted means durable: notify answers 201 only after what it carried
//     is applied to the MLS state (stored) and every decrypted message is
//     stored on the bus; submitMessage answers accepted only after the
//     message is stored for the hub's own phone users and fanned out.
//   - Only a room's hub (the provider named by the room URI) may notify
//     about it; only a follower with members in a room hosted here may
//     submit to it, and only as a user of its own domain. A follower's
//     commit may add and remove only clients of its own users, and the
//     hub adds a user of another provider only with KeyPackages whose
//     credentials name that user. In any room, a message whose sender's
//     credential names a user of the gateway's domain is taken only from
//     that phone user's own client (its signature key): a hub cannot
//     speak for a phone user by putting a client in that name in its tree. Key material goes
//     only to the hub of the room it is asked for, and only from peers the
//     phone users accept rooms from (provider.accept_rooms_from, by default
//     every configured peer). A KeyMaterialRequest must be signed by the
//     key of the credential that names its requesting user.
//   - Idempotence: a body sent again is processed once. A Welcome whose
//     KeyPackage was already used, a commit of an epoch already left and an
//     application message whose generation was already accepted are
//     recognised by the MLS state and skipped; a message published again
//     on the bus keeps its MIMI message ID and is de-duplicated there, for
//     each phone user it goes to.
//   - Bad input (a body that does not decode, a commit that does not apply,
//     a message that does not decrypt) gets a 4xx and changes no stored
//     state; trouble on the bus or a group held by another instance gets a
//     503 with Retry-After.
//
// Several instances: a room's MLS state is written by one instance at a
// time (mimi/mls's lease, state.lease_ttl). A notify or submitMessage that
// reaches another instance while the lease is held gets a 503 with
// Retry-After, and an outbox message is handed back to the bus with its
// backoff; both land once the lease moves or on the holding instance. A
// load balancer that sends a room's requests (the path names the room) to
// the same instance avoids the retries.
//
// Consent: a requestConsent for a phone user is answered for them, who
// cannot be asked, by the rule for rooms (provider.accept_rooms_from): a
// grant with a one-time KeyPackage goes back by updateConsent; any other
// request is answered 201 and nothing more, so that a peer learns nothing
// of which numbers are served. The gateway as hub never asks consent: a
// peer whose keyMaterial answers noConsent does not get the room.
//
// Not handled yet: SemiPrivateMessage, GroupInfo and external joins,
// updateConsent, franking (no Frank is produced or checked),
// AppDataUpdate proposals (mls-go cannot read a commit carrying one, so it
// is refused; a participant list changed by GroupContextExtensions is
// followed), abuse reports and proxied downloads. The participant list is
// kept, not enforced: a room's members are those of its MLS group.
package provider
