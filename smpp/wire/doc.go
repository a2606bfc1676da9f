// Package wire holds SMPP v3.4 PDUs as plain Go values: the frame reader that
// cuts a TCP stream into PDUs, decoding of the bodies the gateway and its SMSC
// simulator exchange, and their encoding. Field and TLV coding is go-smpp's
// (pdu, pdufield, pdutlv); this package adds what that codec leaves open:
// bounded frames, truncation and trailing-garbage checks, and the SMPP status
// a peer must get for each kind of bad input.
//
// It owns bytes only. It never touches sessions, sockets' lifetimes, text
// alphabets (smpp/coding) or receipts (smpp/receipt).
package wire
