// Package admin serves the gateway's HTTP surface for operators: /healthz,
// /readyz (per edge, as JSON; ?require=bus,smpp names the edges that must
// be up), /metrics (Prometheus), the admin API under /api/v1 (behind a
// bearer token) and a status page at / that refreshes itself: readiness,
// rates over the last minute (sampled from the process's own registry),
// each SMSC's binds, the SIP listeners and peers, the bus connection and
// its consumers' lag, and a search that shows a message's trace from the
// delivery records (/?q=KEY). It reads state through the functions and
// stores it is given and never shows a credential.
package admin
