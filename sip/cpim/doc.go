// Package cpim reads and writes Message/CPIM bodies (RFC 3862), the envelope
// every RCS pager-mode message, chat message and IMDN travels in: the CPIM
// message headers (From, To, cc, DateTime, Subject, NS declarations and
// namespaced headers such as imdn.Message-ID), the encapsulated MIME headers
// and the content, decoded from base64 or quoted-printable when the sender
// encoded it.
//
// It owns the bytes only. It never touches SIP transactions, MSRP sessions,
// sockets or the bus, and it does not interpret the content it carries (IMDN,
// FT-HTTP and the other bodies have packages of their own under sip/).
package cpim
