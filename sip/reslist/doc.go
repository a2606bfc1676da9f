// Package reslist reads and writes resource lists (RFC 4826) with the copy
// control attributes of RFC 5366, the recipient lists of RCS one-to-many
// messages and group chat invitations, and splits and joins the
// multipart/mixed bodies (RFC 5365) that carry such a list beside the
// message/cpim to fan out.
//
// It owns the bytes only. It never sends anything to the recipients it
// finds, and never touches SIP transactions, sockets or the bus; whether a
// sender may address a list is the gateway's decision.
package reslist
