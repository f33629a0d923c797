#!/usr/bin/env bash
# Runs the README's walkthrough exactly as printed against a fresh local
# server, failing if any step does not answer as the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-server-lib.sh
start_local_server

# The ```sh blocks of the "## Walkthrough" section, with the port swapped in.
script=$(awk '/^## Walkthrough/{on=1; next} /^## /{on=0} on' README.md |
  awk '/^```sh/{code=1; next} /^```/{code=0} code' |
  sed "s#http://127.0.0.1:3000#http://127.0.0.1:$port#")
output=$(bash -euo pipefail -c "$script" 2>&1)
echo "$output"

# What the README promises a reader will see.
for expected in '"remaining": 3' '"state": "active"' '"status": "PENDING_PAYMENT"' \
  '"code": "ALREADY_PURCHASED"' '"status": "PAID"' '"status": "SHIPPED"' \
  '"status": "COMPLETED"' '"remaining": 2' '"code": "ALREADY_CLAIMED"' \
  '"claimed": 1' '"credited": 1' '"name": "Acme Phone 5"' '"receiver_address": "Guangdong Shenzhen 1 Keyuan Road"' \
  '"state": "active"' '"activity_id"' '"why": "marked"' 'grabs{code="CREATED"}' \
  '"name": "Launch rain"' '"sold": 1'; do
  grep -qF "$expected" <<<"$output" || { echo "walkthrough: missing $expected" >&2; exit 1; }
done
echo "walkthrough: ok"
