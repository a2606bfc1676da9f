// Package sip is mimigw's RCS edge: it terminates SIP (UDP, TCP, TLS)
// toward the operator's IMS core and RCS clients. It takes pager-mode
// MESSAGEs (CPIM text, FT-HTTP files, IMDNs, isComposing, one-to-many lists,
// revocation results, chatbot bodies) and hands them to a gateway.Receiver,
// answering only after the receiver made them durable; it answers OPTIONS
// for the numbers the gateway serves; and it implements gateway.RCSSender:
// MESSAGEs, IMDNs, revocations and capability queries sent through the
// outbound proxy.
//
// With sip.listen.msrp set it also takes the sessions phones open toward
// MIMI (session.go), one-to-one only: an INVITE over TCP or TLS from a
// trusted peer (the trust rules of MESSAGE; an untrusted one gets 403)
// whose SDP offers MSRP over TCP is answered 200 with sip/sdp's answer (our
// a=path msrp://<listen.msrp>/<new session-id>;tcp, passive unless the
// phone offered passive, CPIM carrying text, IMDNs and FT-HTTP), an offer
// without usable MSRP 488. Chat (cpm.session) and large message mode
// (cpm.largemsg, sendonly) are handled alike. sipgo's dialog layer gives
// the 487 to an INVITE cancelled before its 200, matches ACK and BYE (200,
// the MSRP session closed). sip/msrp runs the sessions on the listener; each
// whole MSRP message with message/cpim goes through the same function as a
// MESSAGE's CPIM body, with the INVITE's sender, called number and
// Conversation-ID, and the last chunk's 200 goes only after the gateway
// returned (408 when it should be tried again, 403 or 415 for a refusal).
// The edge sends BYE when the phone has not bound the MSRP side within 30 s,
// when the MSRP connection is lost, when the 200 got no ACK, and on
// shutdown. Session-Expires is accepted and never refreshed (the 200 has
// none; "Require: timer", like any Require, gets 420); a bodiless UPDATE
// gets 200, a re-INVITE 488. Without
// listen.msrp, and over UDP, INVITE gets 405.
//
// Not done for sessions: sessions toward phones (MIMI to a phone's chat),
// large message mode outbound, group chat and deferred delivery (Referred-By
// as the author), msrps (TCP/TLS/MSRP offers get 488), session refresh as
// refresher, MSRP relays and their AUTH, a cap on the number of sessions,
// and session metrics.
//
// Requests over UDP are handled statelessly, below sipgo's transaction
// layer, with a bounded cache of answers (sip/answers) so that
// retransmissions get the first answer while nothing is kept per
// transaction for Timer J. Over TCP and TLS sipgo's transactions end with
// the answer.
//
// It owns SIP signalling and the mapping of SIP/CPIM to the gateway's edge
// contract. It never touches the bus, MIMI content or SMS: those are the
// gateway's. Body formats live in their own packages (sip/cpim, sip/imdn,
// sip/fthttp, sip/reslist, sip/revoke); SDP and MSRP in sip/sdp and
// sip/msrp.
package sip
