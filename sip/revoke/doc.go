// Package revoke writes RCS message revocation requests and reads their
// results (application/vnd.gsma.rcsrevoke+xml, GSMA RCC.07 Message
// Revocation): the body the gateway sends to withdraw an undelivered
// message before falling back to SMS, and the success or failure the
// network answers with later.
//
// The element names of this body were not verified against RCC.07's schema,
// so the request body is a configurable template and the result parser
// looks for a message id and an outcome whatever the exact element names,
// case or form (element text, empty marker elements, attributes).
//
// It owns the bytes only: it never sends the request, keeps no timers and
// decides nothing about fallback; it never touches SIP, sockets or the bus.
package revoke
