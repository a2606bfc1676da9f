// Package sdp reads and writes session descriptions (RFC 8866, formerly
// RFC 4566) and does the offer/answer exchange (RFC 3264) for the one kind
// of media the gateway terminates: MSRP sessions (RFC 4975 section 8),
// with the connection setup of RFC 4145 and RFC 6135, fingerprints of RFC
// 8122 and relays of RFC 4976, as RCS clients use them for large message
// mode, chat, group chat and deferred delivery.
//
// Parse and Session.Bytes are inverse: every line is kept (fields for v=,
// o=, s=, c=, t= and m=, a= lines in order, the rest as written), and what
// Bytes writes is canonical (CRLF, RFC 8866 line order). Session.MSRP
// reads an m=message section as an MSRPMedia, with a=path as msrp.URIs;
// MSRPMedia.Media writes one. Answer answers an incoming offer, Offer
// makes an outgoing one, and Negotiate says what an exchange decided (who
// connects, both paths) in the shape msrp.SessionConfig takes.
//
// It owns the SDP bytes and the offer/answer rules. It never touches SIP
// transactions, sockets, MSRP frames or the bus: the sip edge carries the
// bodies and maps ErrNotAcceptable to 488, and sip/msrp runs the session
// Negotiate describes.
//
// Where the RFCs or clients leave room, this package chooses:
//
//   - Parsing is strict about each line's grammar and tolerant of what
//     clients do: CRLF, LF or both; no line end after the last line;
//     trailing blank lines; lines of a section out of RFC 8866 order; runs
//     of spaces between fields, and white space after the last field of v=,
//     o=, c=, t= and m=, after a flag attribute ("a=sendrecv ") or around a
//     setup, connection, max-size, path or accept-types value; attribute,
//     setup, direction and protocol names in any case. A missing s= reads as
//     "s=-" and a missing t= as "t=0 0"; a missing c= is no error (MSRP
//     addresses by a=path). A missing v= or o=, an unknown type letter, a
//     session-level line after m=, or a second o=, s= or c= is refused,
//     naming the line.
//   - "a=name:" (an empty value, which RFC 8866 does not allow) reads as
//     "a=name", and a=max-size:0 as no a=max-size.
//   - An offer without a=setup is active (RFC 4145's default, and RFC
//     4975's "the offerer connects"), so the gateway answers passive and
//     listens; actpass is answered passive unless AnswerOptions.Setup says
//     active. An active side writes m= port 9 (RFC 4145); a passive one
//     writes its own URI's port.
//   - a=connection is answered "new" whenever the offer has one: it is a
//     valid answer to both values, and sip/msrp shares connections per
//     RFC 4975 whatever the attribute claims.
//   - The gateway accepts the first m=message stream it can take and
//     answers every other m= line with port 0.
//   - accept-types in the answer are the intersection of the offer's and
//     ours (the narrower of two overlapping entries, in our order);
//     accept-wrapped-types likewise when message/cpim is kept, counting
//     the offer's bare types as accepted wrapped too (RFC 4975 section
//     8.6). An offer with message/cpim and no accept-wrapped-types gets
//     ours: clients that leave it out do send text inside CPIM. An offer
//     is refused when nothing is common, or when only message/cpim is and
//     the types inside have nothing in common.
//   - text/plain is accepted bare by default, for plain RFC 4975 clients;
//     the identities are the SIP dialog's either way.
//   - TCP/TLS/MSRP needs the peer's a=fingerprint: an msrps peer is checked
//     against it, not against a CA chain, so an offer without one (or with
//     only fingerprints of hash functions sip/msrp cannot check, such as
//     md5) is refused.
//   - A path's transport follows its last URI, the writer's own: msrps
//     means TCP/TLS/MSRP; a mismatch is refused.
//   - The answer's o= is drawn at random unless given (RFC 8866 suggests
//     an NTP time; any unique number does), and its t= is the offer's.
package sdp
