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
// without usable MSRP 488. The chat's first message may ride in the
// INVITE beside the offer (multipart/mixed with a message/cpim part,
// RCC.07): it is handed to the gateway before the 200, and its refusal,
// or 503 when the bus cannot take it, answers the INVITE. When the phone
// offered passive, the edge connects to its a=path once the 200 was ACKed
// and binds the session with its first SEND (a connection refused, or no
// binding within 30 s, ends the session with our BYE). With
// sip.listen.msrps set too, an offer of MSRP over TLS (TCP/TLS/MSRP,
// msrps) with the phone's a=fingerprint (RFC 4572) is answered
// msrps://<listen.msrps>/<new session-id>;tcp with the a=fingerprint of
// tls.cert_file, which that listener presents; the
// session binds only to a TLS connection whose certificate hashes to the
// phone's a=fingerprint (another gets 403 to its binding SEND, and the
// session ends at once, unbound, with our BYE). Without listen.msrps, or
// without the phone's a=fingerprint, TCP/TLS/MSRP gets 488 saying why.
// Chat (cpm.session) and large message mode (cpm.largemsg, sendonly) are
// handled alike. sipgo's dialog layer gives
// the 487 to an INVITE cancelled before its 200, matches ACK and BYE (200,
// the MSRP session closed). sip/msrp runs the sessions on the listener; each
// whole MSRP message with message/cpim goes through the same function as a
// MESSAGE's CPIM body, with the INVITE's sender, called number and
// Conversation-ID, and the last chunk's 200 goes only after the gateway
// returned (408 when it should be tried again, 403 or 415 for a refusal,
// 413 for a message larger than the bus can store). The edge's SDP
// answers and offers carry a=max-size of sessions.max_message_size, and
// sip/msrp answers 413 to a SEND whose Byte-Range total or received bytes
// go over it; the connection and the session carry on.
// The edge sends BYE when the phone has not bound the MSRP side within 30 s,
// when the MSRP connection is lost, when no message went either way for
// sessions.idle_timeout, when the 200 got no ACK, and on shutdown.
// Session-Expires is accepted and never refreshed nor enforced (the 200
// has none; "Require: timer", like any Require, gets 420): the idle
// timeout is what ends the sessions of a phone gone silent behind a relay
// that keeps its connections up. A bodiless UPDATE gets 200, and a
// re-INVITE or UPDATE offering the same session again (a refresh by a
// phone that is its own refresher) gets 200 with the answer the session
// has; an offer that changes it gets 488. While sessions.max_inbound
// sessions phones opened are open, a new INVITE gets 503 with
// Retry-After. Without listen.msrp, and over UDP, INVITE gets 405.
//
// Large message mode toward phones (largemsg.go): a message for a phone
// whose CPIM is too large for a pager-mode MESSAGE (max_body, or the
// 1300-byte UDP limit with large_over_tcp off) goes, when the phone's
// OPTIONS answer advertised cpm.largemsg (gateway.Capabilities.LargeMessage)
// and listen.msrp is set, by an INVITE over TCP (TLS when the outbound
// proxy is TLS) through the outbound proxy, cpm.largemsg in Accept-Contact
// and Contact, with sip/sdp's large-message offer (sendonly, actpass, our
// a=path on listen.msrp). On the 200 the MSRP session is set up, the ACK
// sent, the session bound (we connect when the answer makes us active,
// else we wait for the phone's binding SEND), the same CPIM a MESSAGE
// would carry sent, and after the 200 of its last chunk a BYE. Each step
// is bounded by 30 s (an INVITE unanswered by then is CANCELled, and
// sipgo waits up to 64*T1 more for its end). A non-2xx answer maps as a MESSAGE's does (488 is
// ErrRejected), no answer or an MSRP failure is ErrOffline, an MSRP 4xx
// ErrRejected: the gateway falls back to SMS as after a pager failure.
// Without the capability or without listen.msrp the message stays
// gateway.ErrTooLarge (SMS). Not done there: a BYE from the phone during
// the session is answered 481 (the session still ends with our BYE or its
// MSRP failure); a phone that answers active and sends its binding SEND
// before its 200 reached us gets 481 for it (the session exists from the
// moment the 200 is read, before the ACK); no MSRP relays, and no metrics
// beyond the INVITE's outbound counters.
//
// Chat sessions toward phones (chat.go), with sessions.outbound: chat: a
// message for a phone that advertised cpm.session goes in the chat session
// the phone opened for the conversation while it lasts, else in the one
// the edge holds with it for the conversation, opened by INVITE and reused,
// and by pager mode when that session cannot be set up or used. The IMDNs
// the gateway sends the phone go in such a session when one is open, else
// by pager mode.
//
// With sessions.msrps (needs listen.msrps) the sessions the edge opens,
// chat and large message mode, offer TCP/TLS/MSRP with our a=path
// msrps://<listen.msrps>/... and the a=fingerprint of tls.cert_file. The
// phone's answer must be TCP/TLS/MSRP with its a=fingerprint, and the MSRP
// connection must show the certificate it names: the one we open to the
// phone is checked after its handshake, the one the phone opens to
// listen.msrps at its binding SEND. Otherwise the session is not set up
// (BYE) and the message goes on as after any failed session: pager mode
// for chat, then SMS.
//
// MSRP relays (RFC 4976): a phone's relays are taken as any a=path (the
// edge connects to the first hop); with sessions.relay the edge's own
// sessions go through a relay of its own, which it AUTHs to (chat.go).
//
// Not done for sessions: group chat and deferred delivery (Referred-By
// as the author), session refresh as refresher in sessions phones open,
// Digest credentials in a relay's AUTH, and session metrics (beyond the
// INVITEs refused past sessions.max_inbound).
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
