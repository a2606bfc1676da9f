// Package transport carries MIMI provider-to-provider requests: HTTPS
// with mutual TLS, as the MIMI protocol draft (draft-ietf-mimi-protocol-06,
// sections 4.1, 5 and 7.1) asks. It owns
//
//   - the Server, which authenticates the calling provider and hands each
//     request to the Handler registered for its endpoint;
//   - the Client, which finds a peer's endpoints through the peer's
//     directory and sends requests with retries;
//   - our own directory at /.well-known/mimi-protocol-directory;
//   - a development CA (EnsureDevCA, IssueCert) for trials and tests.
//
// Bodies are bytes in, bytes out: the package never decodes a protocol
// structure (that is mimi/provider/wire) and never decides what a request
// means (that is mimi/provider). It holds no state beyond connections and
// cached directories.
//
// # Readings of the draft
//
// The draft leaves the HTTP details open; this package and the peers it
// is tested with read them the same way:
//
//   - Paths are /v1/<endpoint>/<param>, the endpoint being the
//     directory's key (keyMaterial, update, notify, submitMessage,
//     groupInfo, requestConsent, updateConsent, identifierQuery,
//     reportAbuse, proxyDownload). Every endpoint is POST but
//     proxyDownload, which is GET.
//   - The path parameter (a room or user URI, a domain, a download URL)
//     is escaped as JavaScript's encodeURIComponent escapes (so "/" and
//     ":" are percent-encoded); the Server accepts any valid
//     percent-encoding and hands the handler the decoded value.
//   - The directory is a JSON object from each endpoint name to a URL
//     template with one {parameter}, such as
//     https://mimi.example/v1/notify/{roomId}. Ours is built on
//     Config.PublicURL. From a peer's directory the Client takes any
//     parameter name and ignores keys it does not know.
//   - Requests carry From: mimi@<source domain>, Host: <target domain>
//     (a port is ignored) and Content-Type: application/octet-stream; the
//     Server accepts any Content-Type. Handler answers with a body go out
//     as application/octet-stream. The Server's own refusals (403, 404,
//     405, 413, ...) carry a one-line text/plain reason.
//
// # Server
//
// TLS 1.2 or later; a client certificate is required. Any certificate
// passes the handshake so that a refusal can be a 403 with a reason
// rather than a broken connection. Then, once per connection, the peer is
// found: a configured peer whose domain is a DNS SAN of the leaf (exactly;
// a wildcard stands for no peer), whose CA (the peer's ca_file, else the
// top-level ca_file) verifies the chain for client authentication. Per
// request, From must be exactly mimi@<that domain> (the domain compared
// without regard to case) and Host must be our Domain. Anything else is
// 403 and no handler runs. The directory is open to any peer that passes
// the certificate check, without the From and Host checks: it is the same
// for everyone.
//
// Routing: an unknown endpoint, a missing parameter or an endpoint without
// a handler is 404; the wrong method 405 (with Allow); a body over
// MaxBody 413 (the body is read through a limit, never buffered beyond
// it); a parameter that is not valid percent-encoding 400. A handler's
// panic is logged with its stack and answered 500; the server carries on.
// Response.Status 0 means 200; Response.RetryAfter sets Retry-After in
// whole seconds, rounded up, at least 1.
//
// Serve runs until its context ends, then shuts down gracefully: no new
// connections, and requests in hand get up to RequestTimeout to finish.
//
// # Client
//
// For each configured peer the Client keeps one http.Transport (kept-alive
// connections, HTTP/2 where the peer offers it, no proxy from the
// environment) that dials whatever host and port the peer's URLs name but
// verifies the server certificate against that peer's CA for the peer's
// domain, and presents our certificate. The peer's directory is read from
// <url>/.well-known/mimi-protocol-directory and kept for an hour. A 404 on
// a URL from a directory read earlier sends for the directory again, and
// if the URL has changed the request goes to the new one at once.
//
// Do retries network errors, 429 and 5xx, up to Attempts attempts, each
// bounded by RequestTimeout. Between attempts it waits the peer's
// Retry-After (delay-seconds or an HTTP date) when given, else 500ms
// doubled per attempt with up to half taken off at random; either way
// capped at MaxBackoff. It never waits past its context's deadline: when
// the next attempt would come after it, Do returns at once. Any other
// status is returned to the caller as it is, with a nil error: what a 404
// or a 409 means is the caller's business. An attempt that timed out may
// have been processed all the same, so a request can arrive twice; the
// protocol's receivers are built for that (a notify is recognised by its
// body). Redirects are not followed.
// Answers are read up to MaxBody. Errors wrap ErrUnknownPeer, ErrNoRoute
// (no directory, or no entry for the endpoint), ErrGaveUp, or the
// context's error.
//
// # Configuration
//
// Config is the provider section of the gateway's configuration (keys
// under provider:, Domain coming from the gateway's domain). Validate
// checks the values' shape and names the key at fault
// ("provider.peers[1].url: ..."); NewServer and NewClient read the
// certificate, key and CA files and name the key of a file that is
// missing or wrong, and refuse a certificate that does not name Domain.
//
// # Metrics
//
// On the registry given with WithRegistry (a Server and a Client may
// share one):
//
//   - mimigw_provider_requests_total{endpoint, code}: requests answered by
//     the Server; endpoint is an endpoint name, "directory" or "unknown".
//   - mimigw_provider_request_seconds{endpoint}: histogram, from a
//     request's headers to its answer.
//   - mimigw_provider_outbound_requests_total{peer, endpoint, outcome}:
//     calls of Client.Do; outcome is ok (2xx), refused (another status, or
//     an answer over MaxBody), gave_up, canceled, no_route or bad_input.
//   - mimigw_provider_outbound_attempts_total{peer, endpoint, code}: each
//     attempt, by status code or "error" when no answer came.
//   - mimigw_provider_outbound_attempt_seconds{peer, endpoint}: histogram
//     of one attempt's time.
//   - mimigw_provider_directory_fetches_total{peer, outcome}: directory
//     reads, ok or error.
//
// Peers are labelled by their configured domain only, so the label sets
// stay bounded.
//
// # Development CA
//
// EnsureDevCA makes a self-signed ECDSA P-256 CA (ca.pem, and ca-key.pem
// with mode 0600) in a directory the first time and reuses it after.
// IssueCert issues from it a certificate whose one DNS SAN is the domain,
// good for TLS server and client authentication. `mimigw provider cert`
// wraps both for testers. This CA is for trials: in service, use
// certificates your peers' CAs trust.
package transport
