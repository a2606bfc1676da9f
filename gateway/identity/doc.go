// Package identity maps phone numbers to MIMI identities and back: the MIMI
// URIs of the phone users the gateway serves, numbers lent from the
// operator's pool to MIMI users who have none (one binding per lent number
// and contact), permanent virtual numbers, the rule that decides which
// number a phone user sees for a MIMI sender, and the room of each
// one-to-one conversation.
//
// Bindings live in the identity KV bucket on the bus and are written by
// compare-and-set, so any number of gateway instances can allocate at once
// without ever binding one lent number to two MIMI users for the same
// contact. It knows nothing of SIP, SMPP or message content.
//
// Key layout in the bucket (keys hold E.164 digits without the plus, and
// MIMI URIs in unpadded base64url):
//
//	lent.<lent>.<contact>      -> MIMI user URI (the binding)
//	lentby.<user>.<contact>    -> lent number digits (its reverse, so a user
//	                              keeps one number per contact)
//	virtual.<number>           -> MIMI user URI
//	virtualby.<user>           -> virtual number digits
//	room.<user>.<contact>      -> room URI of their conversation
//	conv.<user>.<contact>      -> its RCS Conversation-ID, as the phone user
//	                              last wrote it
package identity
