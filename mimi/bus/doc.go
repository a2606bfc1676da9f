// Package bus is mimigw's side of the NATS JetStream bus: the bus contract
// of docs/architecture.md in code. It owns
//
//   - the connection (an external server or cluster with credentials and
//     TLS, or a NATS server embedded in the process, see StartServer),
//     reconnecting forever with backoff;
//   - the streams MIMI_TO_PHONE (work queue) and MIMI_FROM_PHONE (limits),
//     the KV buckets mimigw-identity, mimigw-capabilities and
//     mimigw-deliveries (in shards: mimigw-deliveries, mimigw-deliveries-1
//     and on, see deliveries.go), and the durable consumer mimigw, all
//     created or updated idempotently by Open and never deleted;
//   - subjects (mimi.to.tel.<digits>, mimi.from.tel.<digits>) and the
//     envelope carried in NATS headers (Nats-Msg-Id, Mimi-Id, Mimi-Sender,
//     Mimi-Recipient, Mimi-Room, Mimi-Channel, Mimi-Accepted);
//   - publishing that returns only once JetStream has stored the message
//     (de-duplicated by message ID, per recipient on to-phone subjects),
//     and ErrUnavailable when it cannot;
//     publishes do not wait on each other (each waits for its own ack), and
//     PublishWithRecord stores a delivery record, then its message,
//     de-duplicated for as long as the record lives;
//   - consuming with explicit acks, bounded redelivery and backoff, shared
//     by every gateway instance, and shutdown that finishes work in hand;
//   - durable timers (below).
//
// It never looks inside a message body (that is mimi/content), never
// decides where a message goes (that is gateway), and never deletes a
// stream, bucket or consumer.
//
// # Timers
//
// Besides the two phone streams the bus holds a work-queue stream,
// MIMIGW_TIMERS by default, on subjects mimigw.timer.<key>, read by the
// durable consumer <consumer>-timers. Schedule(ctx, key, at, data)
// stores a timer; ConsumeTimers hands each one to a handler once it is
// due, on whichever instance is running, and removes it when the handler
// returns nil. The due time travels in the header Mimigw-Timer-At (RFC 3339
// with nanoseconds). A timer not yet due is NAKed with the time remaining,
// so the server holds it and nothing polls; timers have no delivery limit
// and no limit on how many are held. Keys de-duplicate: while a timer is
// pending, scheduling the same key again does nothing (the publish expects
// the subject to be empty). Timers survive restarts of instances and of
// the server, and may fire more than once, so their handlers must be
// idempotent.
//
// # Delivery rules
//
// Handlers get each message with its Attempt number. Attempts are bounded
// by MaxDeliver; the attempt numbered MaxDeliver (and any later one) has
// LastAttempt set, and a handler that cannot deliver it must answer the
// sender with an error report and settle it. The server allows one
// delivery beyond MaxDeliver, so that a last attempt whose instance died
// before settling is still seen once more rather than lingering; a message
// that exhausts even that is counted (mimigw_bus_exhausted_total) and
// logged. Between attempts the consumer waits the configured backoff, after
// a NAK and after an instance's death alike (then AckWait is added).
//
// Each consumer holds at most as many fetched messages as it has workers
// beyond those being handled, and their ack wait runs while they wait for
// a worker; a handler that may take more than about half of AckWait should
// call Delivery.InProgress.
//
// A message whose headers break the contract is still delivered, with
// Delivery.EnvelopeErr set, so that it can be reported; nothing is dropped
// silently.
//
// # Durability
//
// Publish answers only after the stream has stored the message. With a
// single embedded server, stored means written to the file store and
// synced on the server's schedule (it survives the process, not a power
// cut); with a cluster and replicas 3, it means a quorum holds it. The
// Bus's own connection to an embedded server is in-process (other clients
// use ClientURL). The connection keeps no reconnect buffer: a publish while
// disconnected fails at once with ErrUnavailable, and is never sent later
// behind its caller's back.
package bus
