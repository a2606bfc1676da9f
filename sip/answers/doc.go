// Package answers holds the edge's memory of final answers to requests it
// handled statelessly: a bounded cache keyed by transaction (top Via branch,
// sent-by and method) so that a retransmitted request gets the answer the
// first copy got, without a transaction object per request.
//
// It stores status codes and reason phrases only; it never holds requests,
// bodies or sockets, and it knows nothing of SIP parsing (callers build the
// Key).
package answers
