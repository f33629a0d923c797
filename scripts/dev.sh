#!/usr/bin/env bash
# Runs the whole system on http://127.0.0.1:${PORT:-3000} until Ctrl-C:
# installs what is missing, starts redis-server and DynamoDB Local on free
# loopback ports, creates the tables, seeds the operator `admin` and a demo
# flash sale, mounts every function's handler on its route and runs the
# scheduled functions on timers. Ctrl-C stops everything it started.
# REDIS_CLUSTER=true runs the gate on a local Redis Cluster of three
# masters instead of one redis-server, as in the cloud. Settings: .env
# (see .env.example) or the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
# Settings of a local run (see .env.example), if the clone has them: each
# one not already set in the environment, and not left empty.
if [ -f .env ]; then
  while IFS='=' read -r name value; do
    case "$name" in '' | \#*) continue ;; esac
    value="${value%%#*}"
    value="${value%"${value##*[![:space:]]}"}"
    value="${value/#\~/$HOME}"
    if [ -n "$value" ] && [ -z "${!name:-}" ]; then export "$name=$value"; fi
  done <.env
fi
./scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flashsale/target}"
exec cargo run --quiet -p local-server -- "$@"
