package receipt

import "strings"

// Outcome is what a receipt says about a message.
type Outcome uint8

const (
	Pending   Outcome = iota // not final yet: en route, accepted, unknown
	Delivered                // reached the handset
	Expired                  // validity period ran out before delivery
	Failed                   // undeliverable, rejected or deleted
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Expired:
		return "expired"
	case Failed:
		return "failed"
	}
	return "outcome(?)"
}

// message_state values (SMPP 3.4 §5.2.28; SCHEDULED and SKIPPED from SMPP
// 5.0).
const (
	StateScheduled     uint8 = 0
	StateEnroute       uint8 = 1
	StateDelivered     uint8 = 2
	StateExpired       uint8 = 3
	StateDeleted       uint8 = 4
	StateUndeliverable uint8 = 5
	StateAccepted      uint8 = 6
	StateUnknown       uint8 = 7
	StateRejected      uint8 = 8
	StateSkipped       uint8 = 9
)

// Classify maps a receipt's stat value, in any case, to its outcome.
// DELIVRD is delivered; EXPIRED expired; UNDELIV, REJECTD and DELETED (and
// SKIPPED, and the long spellings some SMSCs write) failed. ENROUTE,
// ACCEPTD and UNKNOWN are not final: ACCEPTD says only that the SMSC took
// the message, and UNKNOWN that the SMSC does not know its state yet (SMPP
// 3.4 calls it "invalid state"); reporting either as final would tell the
// sender something the network has not said. A later receipt or the
// gateway's own delivery timeout settles them. A value not listed here is
// also treated as not final.
func Classify(stat string) (final bool, outcome Outcome) {
	switch strings.ToUpper(strings.TrimSpace(stat)) {
	case "DELIVRD", "DELIVERED":
		return true, Delivered
	case "EXPIRED":
		return true, Expired
	case "UNDELIV", "UNDELIVERABLE", "REJECTD", "REJECTED", "DELETED", "SKIPPED", "FAILED":
		return true, Failed
	}
	return false, Pending
}

// ClassifyState maps a message_state TLV value to its outcome, with the
// same choices as Classify.
func ClassifyState(state uint8) (final bool, outcome Outcome) {
	switch state {
	case StateDelivered:
		return true, Delivered
	case StateExpired:
		return true, Expired
	case StateDeleted, StateUndeliverable, StateRejected, StateSkipped:
		return true, Failed
	}
	return false, Pending
}

var stats = [...]string{
	StateScheduled: "SCHEDULED", StateEnroute: "ENROUTE", StateDelivered: "DELIVRD",
	StateExpired: "EXPIRED", StateDeleted: "DELETED", StateUndeliverable: "UNDELIV",
	StateAccepted: "ACCEPTD", StateUnknown: "UNKNOWN", StateRejected: "REJECTD",
	StateSkipped: "SKIPPED",
}

// Stat returns the receipt text's stat value for a message_state, and
// false for a value SMPP does not define.
func Stat(state uint8) (string, bool) {
	if int(state) < len(stats) {
		return stats[state], true
	}
	return "", false
}

// State returns the message_state for a stat value (in any case), and
// false for a value this package does not know.
func State(stat string) (uint8, bool) {
	s := strings.ToUpper(strings.TrimSpace(stat))
	for i, v := range stats {
		if v == s {
			return uint8(i), true
		}
	}
	return 0, false
}
