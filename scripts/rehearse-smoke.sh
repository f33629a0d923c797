#!/usr/bin/env bash
# A short rehearsal (a few thousand taps) against a fresh local server,
# with the jobs on fast timers: fails if any audit check fails or the
# report is not a self-contained page with its charts. Then a sale and a
# rain behind waiting rooms, whose audit holds each room to its promises too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-server-lib.sh
start_local_server TIMEOUT_SWEEP_SECONDS=2 PAYOUT_SWEEP_SECONDS=2
report=$(mktemp -d)
cargo run --quiet -p rehearse -- --api "http://127.0.0.1:$port" \
  --units 100 --packets 200 --total 20000 --shoppers 100 --taps 3000 --concurrency 32 \
  --pay-timeout-seconds 5 --settle-seconds 20 --jobs-within-seconds 4 --max-seconds 60 --report "$report"

# The report: its three charts inline, and nothing fetched from elsewhere.
[ "$(grep -c '<svg' "$report/report.html")" -eq 3 ] || { echo "rehearse: the report lacks its charts" >&2; exit 1; }
if grep -qE '(src|href)=' "$report/report.html"; then echo "rehearse: the report loads something" >&2; exit 1; fi
jq -e '.endpoints | length > 0' "$report/report.json" >/dev/null
jq -e '.requests <= 3000' "$report/report.json" >/dev/null || { echo "rehearse: more requests than --taps" >&2; exit 1; }
echo "rehearse: report ok"

cargo run --quiet -p rehearse -- --api "http://127.0.0.1:$port" \
  --units 50 --shoppers 100 --concurrency 32 --waiting-room-rate 40 --opens-in-seconds 5 \
  --pay-timeout-seconds 5 --settle-seconds 12 --jobs-within-seconds 4 --max-seconds 60
echo "rehearse: the waiting room held"
