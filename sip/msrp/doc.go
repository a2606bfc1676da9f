// Package msrp is the MSRP layer (RFC 4975) of mimigw's RCS edge: the
// framing of requests and responses, the chunking and reassembly of
// messages, and the connections and sessions that carry the messages of
// RCS chat, large message mode and deferred delivery.
//
// # What it owns
//
//   - Frames (frame.go, parse.go, write.go): SEND, REPORT, AUTH and any
//     other method, responses, the headers of RFC 4975 and RFC 4976, other
//     headers kept in order, the body and its end-line. Reader finds each
//     frame's end by its end-line, never by a length the peer sent, and
//     buffers at most one header section and one chunk (Limits). The writer
//     is canonical and picks a transaction ID the body does not contain.
//   - URIs (uri.go): msrp: and msrps:, IPv6 hosts, compared as RFC 4975
//     section 6.1 says.
//   - Chunks and reassembly (chunk.go), and the Failure-Report and
//     Success-Report decisions (report.go), as pure functions.
//   - Relays (relay.go, RFC 4976): Pool.Auth AUTHs to this side's relay,
//     keeps its connection and renews the AUTH; a session with
//     SessionConfig.Relay (its a=path, and so its Remote, starting with
//     the Use-Path) is carried on that connection. A peer behind a relay needs nothing:
//     its a=path lists the relays, and their requests arrive with them
//     in From-Path.
//   - Connections and sessions (pool.go, conn.go, session.go): a Pool is
//     this side's MSRP endpoint; a Session is one MSRP session as the SDP
//     exchange set it up; a Conn is one TCP or TLS connection carrying the
//     sessions bound to it. msrps peers are checked against the SDP
//     a=fingerprint (fingerprint.go).
//
// It never touches SIP or SDP: the SIP edge negotiates a=path, a=setup,
// a=fingerprint and a=msrp-cema and hands the results to NewSession. It
// never touches the bus or the content it carries (CPIM is sip/cpim's):
// a Handler gets whole messages and says, by returning, whether they are
// safe elsewhere.
//
// # Choices where the RFCs leave room
//
// Which URI names the session. A request is for the session named by the
// first URI of its To-Path, the hop receiving it. On arrival at an
// endpoint that is the only URI: each relay removes itself from the front
// of the To-Path and adds itself to the front of the From-Path (RFC 4976),
// so a To-Path with more URIs asks this side to relay, which it does not
// (481, RFC 4975 section 7.3). The URI must equal the session's own (what
// its a=path ended with) as section 6.1 compares them; when both sides
// offered a=msrp-cema (RFC 6714) only the session-id is compared, since a
// middlebox anchoring the media may have rewritten host and port. The
// session-id is looked up first, so a wrong host for a known session-id is
// a 481 too.
//
// Binding. A passive session is bound to the connection its peer's first
// SEND arrives on (RFC 4975 section 5.4, RFC 6135); until then its Send
// waits, and requests for it other than that SEND get 481. An active
// session connects (or shares the pool's connection to the same
// authority), checks the certificate for msrps, and binds with a SEND
// without body, no Byte-Range and the default Failure-Report, waiting for
// its 200. A passive msrps session refuses a binding SEND whose
// connection's certificate does not match its fingerprint with 403, and
// ends (Err wraps ErrFingerprint): the SIP side learns at once that the
// session will not carry anything. A request for a session bound to
// another connection gets 506.
// Losing a connection ends the sessions on it: a new one takes a new SDP
// exchange, which is the SIP edge's to start.
//
// Responses travel one hop (RFC 4975 section 7.2, RFC 4976: relays answer
// SENDs themselves and do not forward responses): To-Path is the
// request's first From-Path URI, From-Path the To-Path URI that named this
// side. Through a relay the 200 to a SEND is therefore the relay's, and
// only a Success-Report (which travels the whole From-Path back) says the
// far end took the message. REPORTs are never
// answered; Failure-Report no silences every response, partial all but
// failures. A message's last chunk (the one that completed it) is
// answered only when the Handler returned: nil gives 200, a *StatusError
// its code, a passed deadline 408 (HandlerTimeout, under the peer's 30 s),
// anything else 403. Earlier chunks are answered as they come.
// Success-Report yes gets one REPORT for the whole message after the
// Handler returned nil. No failure REPORT is ever sent: an endpoint's
// failures go in the transaction response.
//
// Refusals: a frame whose headers do not parse, or that lacks To-Path or
// From-Path, is answered 400 (when it has a From-Path to answer to); a body over Limits.MaxChunk is read past
// (up to Limits.MaxMessage) and answered 413; in both cases the connection
// goes on. A start line that does not parse, a header section over the
// limit, or a line that starts as the end-line and its flag but goes on,
// loses the framing: the connection is closed. AUTH is answered 403 (this
// side is not a relay), other unknown methods 501.
//
// Reassembly takes chunks in any order. A chunk's bytes are those before
// its end-line, whatever its Byte-Range says, so a chunk the sender
// interrupted (RFC 4975 section 7.1) counts for what it carried. Bytes
// received twice must agree (400 otherwise), as must the totals of all
// chunks (400), and no chunk may reach past the total (400); a total (or
// the bytes received so far) over Limits.MaxMessage or the session's
// SessionConfig.MaxMessage, or more than Limits.MaxInFlight messages in progress,
// gets 413; an aborted message ('#') is dropped, its chunk answered 200; a
// message with no new chunk for Limits.IncompleteTimeout is dropped. A
// chunk flagged last ('$') that arrives while bytes are missing is not
// answered until the message completes (then with the Handler's answer)
// or is dropped (then 408): a sender whose total counts bytes it never
// sent, as RFC 4975's own examples count the line end, must not see every
// chunk acknowledged for a message nobody got.
//
// Leniency: bare LF line ends, CRLF keepalives between frames, a stream
// that ends right after an end-line's flag, and header names in any case
// are accepted; the writer always writes CRLF and RFC 4975's spelling.
// "Expires: 0" reads as no Expires, a lifetime RFC 4976 gives no meaning.
//
// Sending: Chunks cuts messages at DefaultChunkSize, just under 10 KiB,
// what RCS clients use and what Kamailio's msrp relay takes. With
// Failure-Report yes (the default) Send writes every chunk, then waits for
// all their 200s (TransactionTimeout, 30 s by default); a failure stops
// the chunks not yet written (after 413, RFC 4975 section 10.5 forbids
// them). With partial or no, Send returns once the chunks are written.
//
// Flow: each session hands messages to its Handler one at a time; once 16
// are unanswered (the one in the Handler included) the connection's
// reader waits, which slows the peer through TCP. A Handler that Sends on
// its own session while sixteen messages wait can stall until
// TransactionTimeout. An idle
// session has no goroutine: a worker starts when a message waits and ends
// when none does, and one sweep per pool drops the messages whose chunks
// stopped coming.
//
// Logs carry the peer's address, msg_id and the first characters of the
// session-id (the whole one lets a peer bind a connection to the
// session), never a body.
//
// # Not done
//
//   - Relays: no Digest answer to a relay that challenges the AUTH (401),
//     and this side never relays for others (481).
//   - URIs without a port: a relay URI that needs DNS SRV cannot be dialed.
//   - Failure REPORTs (REPORTs go to SessionConfig.Reports; Send waits
//     only for Success-Reports, when it asked for them).
//   - RFC 7701 NICKNAME, RFC 5547 file transfer semantics, RFC 7977
//     WebSocket transport, and percent-decoding of hosts before comparing
//     URIs.
//   - Metrics: none yet; the Pool counts connections (Conns) only.
//   - No cap on connections accepted: one that binds no session closes
//     after Config.IdleTimeout, but how many may wait is the listener's
//     (or the firewall's) to bound.
//   - msrps trusts fingerprints only; a CA chain is never consulted.
package msrp
