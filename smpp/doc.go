// Package smpp is the SMS edge: the gateway as an ESME bound to the
// operator's SMSCs. It keeps transceiver (or transmitter and receiver)
// binds up with enquire_link, reconnects with jittered backoff, submits
// what the gateway sends through a window of outstanding submit_sm per
// bind (gateway.SMSSender), and hands MO messages (each part of a
// concatenated one as a gateway.Segment, which the gateway reassembles on
// the bus) and delivery receipts to a gateway.Receiver, answering each
// deliver_sm only once the receiver has made it durable. It guards
// the SMS side against pumping (rate limits per sender and destination, a
// destination allow-list, a segment cap).
//
// PDU bytes are smpp/wire's (on go-smpp's field codec), text and segments
// smpp/coding's, receipt text smpp/receipt's. The session loop is this
// package's own: go-smpp's client matches responses by sequence number
// alone, rate-limits its own answers and runs handlers on its read loop.
//
// It never touches the bus, identities or routing (the gateway's), nor the
// SIP edge.
package smpp
