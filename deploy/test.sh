#!/usr/bin/env bash
# Runs every test of mimigw on a fresh Debian machine: installs the peers the
# interop tests talk to (SIPp from Debian's sip-tester, Kamailio's MSRP relay, systemd-analyze, the
# npm smpp, ts-mls and cborg packages), checks formatting and vet, then runs
# the whole suite with the race detector. Interop tests fail, rather than skip, when a peer is
# missing (MIMIGW_INTEROP=1).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Debian packages the tests run: SIPp (sip-tester), Kamailio (its msrp
# module as an RFC 4976 relay; the package's own service is not used) and
# systemd-analyze (systemd, to verify the units under deploy/systemd).
missing=""
command -v sipp >/dev/null 2>&1 || missing="$missing sip-tester"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -x /usr/sbin/kamailio ] || command -v kamailio >/dev/null 2>&1 || missing="$missing kamailio"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium" # headless browser of the status page test
if [ -n "$missing" ]; then
  echo "== installing$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

if [ -f deploy/interop/package.json ]; then
  echo "== installing npm test peers"
  (cd deploy/interop && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== gofmt, go vet"
unformatted=$(gofmt -l cmd gateway sip smpp mimi deploy)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "== go test -race"
export MIMIGW_INTEROP=1
go test -race -count=1 -timeout 20m ./...
