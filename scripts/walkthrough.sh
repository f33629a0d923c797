#!/usr/bin/env bash
# Runs the walkthrough (docs/walkthrough.md) exactly as printed against a
# fresh local server, failing if any step does not answer as it says.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-server-lib.sh
start_local_server

# The ```sh blocks of a markdown file (of one `## ` section of it, if
# named), with the port swapped in.
code_of() {
  awk -v section="$2" 'BEGIN{on = (section == "")} /^## /{on = (section == "" || $0 == "## " section); next} on' "$1" |
    awk '/^```sh/{code=1; next} /^```/{code=0} code' |
    sed "s#http://127.0.0.1:3000#http://127.0.0.1:$port#"
}

# The README's taste, then the walkthrough, each in a shell of its own.
output=""
for page in "README.md|A taste" "docs/walkthrough.md|"; do
  script=$(code_of "${page%%|*}" "${page#*|}")
  [ -n "$script" ] || { echo "walkthrough: no sh blocks in ${page%%|*}" >&2; exit 1; }
  if ! part=$(bash -euo pipefail -c "$script" 2>&1); then
    printf '%s\n%s\n' "$output" "$part"
    echo "walkthrough: a step of ${page%%|*} failed" >&2
    exit 1
  fi
  output+="$part"$'\n'
done
echo "$output"

# What the walkthrough promises a reader will see.
for expected in '"remaining": 3' '"state": "active"' '"status": "PENDING_PAYMENT"' \
  '"code": "ALREADY_PURCHASED"' '"status": "PAID"' '"status": "SHIPPED"' \
  '"status": "COMPLETED"' '"remaining": 2' '"code": "ALREADY_CLAIMED"' \
  '"claimed": 1' '"credited": 1' '"name": "Acme Phone 5"' '"receiver_address": "Guangdong Shenzhen 1 Keyuan Road"' \
  '"state": "active"' '"activity_id"' '"price": 99900' '"why": "marked"' 'grabs{code="CREATED"}' \
  '"name": "Launch rain"' '"sold": 3' '"pay_method": "alipay"' '"pay_method": "wechat"' \
  '"pay_method": "stripe"' '"pay_type": "cash_on_delivery"' '"consign_status": "received"' '"status": "RETURN_REQUESTED"' \
  '"order_status": "returned"' '"refund_status": "REFUNDED"'; do
  grep -qF "$expected" <<<"$output" || { echo "walkthrough: missing $expected" >&2; exit 1; }
done
echo "walkthrough: ok"
