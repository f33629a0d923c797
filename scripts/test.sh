#!/usr/bin/env bash
# Runs every test. The integration tests start their own redis-server and
# DynamoDB Local on free loopback ports (see tests/), so nothing needs to be
# running beforehand; this script only installs what is missing. Last, the
# API is fuzzed over HTTP (scripts/fuzz.sh) and the web console is driven
# in headless Chromium (scripts/browser-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flashsale/target}"
cargo test --workspace --locked "$@"
# The gate's suites again on a three-master Redis Cluster, as deployed
# (every engine the template deploys is cluster mode): each suite that says
# "Cluster pass:" in its opening comment.
cluster_suites=$({ grep -l '^//! Cluster pass:' tests/tests/*.rs || true; } | sed 's#.*/##; s/\.rs$/ /; s/^/--test /')
[ -n "$cluster_suites" ] || { echo "test.sh: no suite asks for the cluster pass" >&2; exit 1; }
# shellcheck disable=SC2086 # one word per flag
REDIS_CLUSTER=true cargo test --workspace --locked $cluster_suites "$@"
# Every operation of openapi.yaml fuzzed over HTTP against a local server.
./scripts/fuzz.sh
# The web console driven in headless Chromium against a local server.
./scripts/browser-test.sh
