// Package rcssim is an RCS phone simulator for testers, for `mimigw sim
// rcs` and `serve --dev`: one or more phone numbers behind a SIP address
// (UDP and TCP) that the gateway's outbound proxy points at, with an MSRP
// listener for their sessions.
//
// Its phones answer OPTIONS 200 with the RCS feature tags (pager mode,
// chat, large message mode, file transfer via HTTP) and any other number
// 404; take pager-mode MESSAGEs carrying CPIM (200) and send the IMDNs
// they ask for (delivered; displayed too when Config.Displayed) back by
// MESSAGE; take session INVITEs, large message mode (cpm.largemsg) and
// chat (cpm.session; its first message may ride beside the SDP offer in a
// multipart/mixed body), answering the SDP offer with sip/sdp
// (a=setup:actpass answered as Config.Setup says; through an MSRP relay,
// Config.MSRPRelay, always active, the relay's Use-Path first in a=path),
// connecting or waiting for the peer's
// binding SEND as the answer decided, reassembling the CPIM messages sent
// in them (sip/msrp) and sending their IMDNs inside the session for a chat
// and by MESSAGE for a large message; and end sessions on BYE. They
// originate pager messages, large messages and chat messages (Send, or
// POST /send on the HTTP hook) toward the gateway (Config.Gateway), which
// stands in for the IMS core; their sessions offer a=setup:actpass, or
// passive with Config.Setup passive (the gateway must then connect). Everything they receive is logged (bodies
// at debug level only) and kept, bounded, for GET /messages.
//
// It is not a phone: nothing sent to its numbers reaches anyone, and it
// says so in its logs. It owns its listeners and sessions only; it never
// touches the gateway's code, the bus or MIMI content.
//
// Not done: msrps (TLS), MSRP relays, SIP over TLS, re-INVITE and
// session refresh (UPDATE without a body is answered 200), file transfer,
// group chat, revocation.
package rcssim
