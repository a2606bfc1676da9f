// Package smsc is an SMSC simulator: an SMPP v3.4 server for testers, for
// `mimigw sim smsc` and for `serve --dev`. It authenticates binds, answers
// submit_sm with message ids, sends delivery receipts after a configurable
// delay and outcome (also per destination), or holds them to send all at
// once, redelivering those left unanswered (and, unless told never to
// resend, those refused for now), injects MO messages (from Go or over a
// small HTTP hook), injects throttling (also above a rate), errors and
// dropped connections, acts out a restart that issues its message ids
// again, and keeps a bounded log of what it received and counts of what
// became of its receipts.
//
// It is not an SMSC: nothing it takes reaches a phone, and it says so in
// its logs. It owns its listener's connections only; it never touches the
// gateway, the bus, or the ESME side of package smpp.
package smsc
