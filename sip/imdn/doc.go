// Package imdn reads and writes Instant Message Disposition Notification
// bodies (RFC 5438, message/imdn+xml): the delivery, display and processing
// reports RCS clients exchange, which the gateway turns into MIMI status
// reports and writes back when a phone user asked for them.
//
// It owns the XML bytes only (and wrapping them in a CPIM envelope). It
// never touches SIP transactions, sockets or the bus, and it decides
// nothing about when a notification is due.
package imdn
