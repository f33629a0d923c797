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
# (ElastiCache Serverless is cluster mode).
REDIS_CLUSTER=true cargo test --workspace --locked \
  --test flash_sale --test grab_concurrency --test red_packets --test races --test outages \
  --test limits --test boards "$@"
# Every operation of openapi.yaml fuzzed over HTTP against a local server.
./scripts/fuzz.sh
# The web console driven in headless Chromium against a local server.
./scripts/browser-test.sh
