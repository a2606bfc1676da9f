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
// Incoming deliver_sm are queued per bind (inbox.go) as the reader reads
// them, up to the SMSC's window (deliver_window) and a margin, and handed
// to the receiver by up to mo_concurrency handlers: a burst of receipts
// waits its turn and is never refused for want of a handler. The SMSC
// gets ESME_RX_T_APPN only when the receiver says the bus cannot take a
// message (gateway.ErrUnavailable, or mo_timeout from its arrival), or for
// deliver_sm beyond its own window. An MO sender's messages reach the
// receiver in the order they came. What is queued when a link drops is
// left unanswered, for the SMSC to deliver again after the rebind.
//
// Every submit_sm leaves through the bind's writer, which paces them
// (pace.go): ESME_RTHROTTLED or ESME_RMSGQFUL pauses every submit_sm of
// the bind not yet sent, queued or waiting for a window slot, with an
// exponential pause (throttle_backoff, capped), halves the bind's rate,
// and raises it again slowly after quiet periods; the refused submit_sm
// is sent again, not failed. A submit_sm's response time runs from when it
// is sent.
//
// Receipts are passed on with the (SMSC name, normalised id) of the
// message they report on; matching them to the submission, including an
// id the SMSC issues again after a restart, is the gateway's.
//
// PDU bytes are smpp/wire's (on go-smpp's field codec), text and segments
// smpp/coding's, receipt text smpp/receipt's. The session loop is this
// package's own: go-smpp's client matches responses by sequence number
// alone, rate-limits its own answers and runs handlers on its read loop.
//
// It never touches the bus, identities or routing (the gateway's), nor the
// SIP edge.
package smpp
