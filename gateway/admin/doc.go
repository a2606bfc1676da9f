// Package admin serves the gateway's HTTP surface for operators: /healthz,
// /readyz, /metrics (Prometheus), the admin API under /api/v1 (behind a
// bearer token) and a status page at /. It reads state through the
// functions and stores it is given and never shows a credential.
package admin
