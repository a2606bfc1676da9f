// Package sip is mimigw's RCS edge: it terminates SIP (UDP, TCP, TLS)
// toward the operator's IMS core and RCS clients. It takes pager-mode
// MESSAGEs (CPIM text, FT-HTTP files, IMDNs, isComposing, one-to-many lists,
// revocation results, chatbot bodies) and hands them to a gateway.Receiver,
// answering only after the receiver made them durable; it answers OPTIONS
// for the numbers the gateway serves; and it implements gateway.RCSSender:
// MESSAGEs, IMDNs, revocations and capability queries sent through the
// outbound proxy.
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
// sip/fthttp, sip/reslist, sip/revoke).
package sip
