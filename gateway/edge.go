package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mimigw/mimigw/mimi/uri"
)

// This file is the contract between the gateway and its edges. An edge (sip,
// smpp) hands what phone users send to a Receiver, and implements SMSSender
// or RCSSender for what the gateway sends them. Edges never import each other.

// Channel names how a message crosses the phone network.
type Channel string

const (
	ChannelAuto Channel = "auto" // RCS where the number can take it, else SMS
	ChannelRCS  Channel = "rcs"
	ChannelSMS  Channel = "sms"
)

// Errors that edges and the gateway branch on. Edges wrap them with %w and
// the detail of what failed.
var (
	// ErrUnavailable: the message could not be made durable or sent now; the
	// peer should retry (SIP 503 with Retry-After, SMPP ESME_RX_T_APPN, a
	// redelivery from the bus).
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrRejected: the message can never be taken as it is (bad input,
	// policy, unknown destination); retrying will not help.
	ErrRejected = errors.New("rejected")
	// ErrNotRCS: the number is not reachable by RCS (SIP 404, 410, 604, or
	// no RCS capability); the gateway falls back to SMS.
	ErrNotRCS = errors.New("not reachable by RCS")
	// ErrOffline: the number is an RCS user who cannot be reached right now
	// (SIP 408, 480); what was known of its capabilities still stands.
	ErrOffline = errors.New("offline")
	// ErrTooLarge: the message is too large for RCS pager mode here; it
	// goes by SMS, and the number stays RCS-capable.
	ErrTooLarge = errors.New("too large for RCS pager mode")
	// ErrOversize: a message from a phone is larger than the bus can
	// store. It wraps ErrRejected, since sending it again will not help:
	// SIP and MSRP answer 413, SMPP ESME_RINVMSGLEN.
	ErrOversize = fmt.Errorf("larger than the bus can store: %w", ErrRejected)
)

// Status is what a phone network reports about a message it carried.
type Status uint8

const (
	StatusDelivered Status = iota + 1 // IMDN delivered, SMS DLR DELIVRD
	StatusRead                        // IMDN displayed
	StatusExpired                     // SMS DLR EXPIRED
	StatusFailed                      // IMDN failed/forbidden/error, DLR UNDELIV/REJECTD/DELETED
)

func (s Status) String() string {
	switch s {
	case StatusDelivered:
		return "delivered"
	case StatusRead:
		return "read"
	case StatusExpired:
		return "expired"
	case StatusFailed:
		return "failed"
	}
	return "unknown"
}

// Part is one piece of a message as the phone networks carry it: text, a
// file reachable by a link (RCS file transfer via HTTP), or a body of
// another media type passed through unchanged (chatbot messages).
// Exactly one of Text, File and Data is set.
type Part struct {
	Text string
	File *File
	// ContentType names Data's media type (for Text it is text/plain).
	ContentType string
	Data        []byte
}

// File is a file the recipient downloads from a link.
type File struct {
	URL         string
	Name        string
	ContentType string
	Size        uint64
	Until       time.Time // link expiry; zero if unknown
	Thumbnail   *File     // a preview, if the sender offered one
}

// Notifications are the reports a phone user asked to get about a message
// they sent (RCS imdn.Disposition-Notification).
type Notifications struct {
	Delivery bool // positive-delivery (negative-delivery is always honoured)
	Display  bool
}

// Inbound is a message a phone user sent, as an edge received it.
type Inbound struct {
	Channel Channel
	From    uri.Number // the phone user who sent it
	To      uri.Number // the number they wrote to: a phone user, or a lent or virtual number
	// Ref is the message's identity on its network (the CPIM
	// imdn.Message-ID). A message that arrives again with the same From and
	// Ref is the same message and makes no second MIMI message. Empty when
	// the network gives none (SMS).
	Ref   string
	Parts []Part
	// Incomplete marks a concatenated SMS delivered with parts missing
	// after the reassembly timeout.
	Incomplete bool
	// Sent is when the sender says it sent the message (CPIM DateTime);
	// zero if not given.
	Sent time.Time
	// Notify is what the sender asked to be told (RCS only).
	Notify Notifications
	// ConversationID is the RCS Conversation-ID, kept so replies stay in
	// the same conversation on the phone.
	ConversationID string
}

// Segment is one part of a concatenated SMS (UDH or SAR), as it arrived.
// The gateway keeps segments on the bus until their message is whole, so
// that an edge can answer each part as soon as Receiver.ReceiveSegment
// returns, and parts that reach different gateway instances still meet.
type Segment struct {
	From uri.Number
	To   uri.Number
	// Ref, Wide and Total name the message: its concatenation reference,
	// whether that reference is 16 bits (UDH IEI 0x08, SAR), and how many
	// segments it has.
	Ref   uint16
	Wide  bool
	Total uint8
	Seq   uint8 // 1..Total
	Text  string
	// HeadLow and TailHigh carry halves of a UTF-16 surrogate pair that
	// the sender split between this segment and its neighbours: a low
	// half before Text, a high half after it; 0 when there is none.
	HeadLow, TailHigh uint16
}

// Receipt is a report from the phone network about a message the gateway
// sent there: an IMDN, or an SMS delivery receipt.
type Receipt struct {
	Channel Channel
	From    uri.Number // who reports: the recipient of the original message
	// Ref names the original message on its network: the imdn.Message-ID
	// the gateway sent, or the message id an SMSC gave one segment,
	// normalised by the edge.
	Ref string
	// Source scopes Ref: the name of the SMSC that issued the message id.
	// Empty for RCS.
	Source string
	Status Status
	At     time.Time
}

// RevocationResult is the network's answer to a Revoke, which arrives later
// as its own SIP MESSAGE.
type RevocationResult struct {
	From    uri.Number // the recipient of the revoked message
	Ref     string     // imdn.Message-ID of the revoked message
	Revoked bool       // false: it was delivered before it could be revoked
}

// Receiver takes what phone users send. Each method returns only once what
// it was given is durable on the bus, so an edge answers its peer after it
// returns: success if it returned nil, a failure the peer retries on for
// ErrUnavailable, a permanent failure for ErrRejected. *Gateway implements it.
type Receiver interface {
	Receive(ctx context.Context, m Inbound) error
	// ReceiveSegment stores one segment of a concatenated SMS; the message
	// goes on the bus when its last segment is in, or with what arrived
	// (marked incomplete) after the reassembly timeout.
	ReceiveSegment(ctx context.Context, s Segment) error
	Receipt(ctx context.Context, r Receipt) error
	RevocationResult(ctx context.Context, r RevocationResult) error
	// Serves reports whether number belongs to a MIMI user the gateway
	// represents toward contact (a lent number bound for that contact, or
	// a virtual number), so that the SIP edge answers OPTIONS for it.
	Serves(ctx context.Context, contact, number uri.Number) (bool, error)
}

// OutboundSMS is a text for a phone, to go out as SMS.
type OutboundSMS struct {
	ID   string     // the MIMI message ID (hex), for logs and correlation
	From string     // presented sender: E.164 ("+...") or an alphanumeric sender id
	To   uri.Number // recipient
	Text string
	// Receipt asks the SMSC for a delivery receipt.
	Receipt bool
}

// SMSSent says where an SMS went and under which message ids, one per
// segment, normalised as the SMSC's receipts will name them.
type SMSSent struct {
	Source string // the SMSC's configured name
	Refs   []string
}

// SMSSender is the SMS edge, as the gateway uses it.
type SMSSender interface {
	// SendSMS submits every segment of m and returns once the SMSC accepted
	// all of them. It fails with ErrRejected (wrapped) when the message can
	// never go (pumping protection, a segment cap, a permanent SMSC error),
	// otherwise with an error the gateway retries on.
	SendSMS(ctx context.Context, m OutboundSMS) (SMSSent, error)
	// Segments is how many short messages text costs as the edge would
	// encode it now (alphabet and concatenation of its first SMSC), for
	// the daily segment budgets; at least 1.
	Segments(text string) int
}

// Capabilities is what a number can do over RCS, from a SIP OPTIONS answer.
type Capabilities struct {
	Chat         bool // pager mode or chat (cpm.msg, cpm.session): reachable by RCS
	FileTransfer bool // FT via HTTP
	Revoke       bool // +g.gsma.rcs.msgrevoke
	LargeMessage bool // large message mode (cpm.largemsg): MSRP for what pager mode cannot carry
	ChatSession  bool // 1-to-1 chat sessions (cpm.session): INVITE and MSRP
}

// OutboundRCS is a message for a phone, to go out as an RCS pager-mode
// MESSAGE.
type OutboundRCS struct {
	ID   string     // the MIMI message ID (hex), for logs
	From uri.Number // presented sender
	To   uri.Number
	// Ref is the imdn.Message-ID to send it under; receipts name it.
	Ref string
	// ConversationID and ContributionID are stable per conversation.
	ConversationID string
	ContributionID string
	Parts          []Part
	Notify         Notifications
	Sent           time.Time
	// LargeMessage: the number advertised large message mode, so an edge
	// that has sessions may send by it what pager mode cannot carry
	// rather than fail with ErrTooLarge.
	LargeMessage bool
	// ChatSession: the number advertised chat sessions (cpm.session), so
	// an edge configured for them may send in an MSRP chat session
	// rather than by pager mode.
	ChatSession bool
}

// Notification is an IMDN the gateway sends to an RCS user about a message
// that user sent.
type Notification struct {
	From           uri.Number // the presented number of the MIMI user reporting
	To             uri.Number // the RCS user who sent the original
	Ref            string     // imdn.Message-ID of the original
	ConversationID string
	Status         Status // delivered, read or failed
	At             time.Time
}

// Revocation asks the network to revoke an RCS message that was accepted but
// not delivered, so that it can go by SMS instead.
type Revocation struct {
	From           uri.Number
	To             uri.Number
	Ref            string // imdn.Message-ID of the message to revoke
	ConversationID string
	ContributionID string
}

// RCSSender is the RCS edge, as the gateway uses it. Every method returns
// once the network answered the SIP request (a 2xx is acceptance, not
// delivery) or failed with ErrNotRCS, ErrOffline, ErrTooLarge, ErrRejected
// or another (temporary) error.
type RCSSender interface {
	// Capabilities queries the number by SIP OPTIONS. A number that is not
	// an RCS user gives Capabilities{} and no error.
	Capabilities(ctx context.Context, n uri.Number) (Capabilities, error)
	SendRCS(ctx context.Context, m OutboundRCS) error
	Notify(ctx context.Context, n Notification) error
	Revoke(ctx context.Context, r Revocation) error
}
