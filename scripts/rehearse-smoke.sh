#!/usr/bin/env bash
# A short rehearsal (a few thousand taps) against a fresh local server,
# with the jobs on fast timers: fails if any audit check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-server-lib.sh
start_local_server TIMEOUT_SWEEP_SECONDS=2 PAYOUT_SWEEP_SECONDS=2
cargo run --quiet -p rehearse -- --api "http://127.0.0.1:$port" \
  --units 100 --packets 200 --total 20000 --shoppers 100 --taps 3000 --concurrency 32 \
  --pay-timeout-seconds 5 --settle-seconds 20 --max-seconds 60
