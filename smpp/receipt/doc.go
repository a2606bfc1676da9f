// Package receipt reads and writes SMS delivery receipts: the text form of
// SMPP 3.4 Appendix B ("id:... sub:... dlvrd:... submit date:... done
// date:... stat:... err:... text:..."), the meaning of its stat values and
// of the message_state TLV, and the normalisation of message ids whose form
// differs between submit_sm_resp and the receipt (hexadecimal or decimal,
// case, leading zeros).
//
// It owns bytes and text only. It never touches sockets, SMPP sessions,
// delivery state or the message bus: the session matches receipts to
// submitted messages with the ids this package normalises.
package receipt
