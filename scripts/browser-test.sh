#!/usr/bin/env bash
# The web console in headless Chromium (Debian's package, driven by
# Playwright for Python) against a fresh local server: see
# tests/browser/console.py. Installs what is missing. Screenshots of every
# page go to $SCREENSHOTS (default: a directory beside the build), or with
# --docs to docs/console/, where docs/console.md shows them.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${FLASHSALE_CACHE:-$HOME/.cache/flashsale}"
venv="$cache/fuzz-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import playwright' 2>/dev/null || "$venv/bin/pip" install --quiet playwright
# Chinese and emoji fonts, so the screenshots show 秒杀, 福 and 🧧 rather than boxes.
fonts=$(fc-list : family 2>/dev/null || true)
if ! command -v chromium >/dev/null || ! grep -qi wenquanyi <<<"$fonts" || ! grep -qi emoji <<<"$fonts"; then
  echo "installing chromium and fonts (apt)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-wqy-zenhei fonts-noto-color-emoji >/dev/null
fi
shots="${SCREENSHOTS:-$cache/console-screenshots}"
[ "${1:-}" = "--docs" ] && shots=docs/console

source scripts/local-server-lib.sh
# Payouts every second, so the shopper's balance shows her packet quickly.
start_local_server PAYOUT_SWEEP_SECONDS=1
[ -n "$edge" ] || { echo "browser-test: the local server started no edge (nginx)" >&2; exit 1; }
"$venv/bin/python" tests/browser/console.py "http://127.0.0.1:$port" "$shots" "$edge"
