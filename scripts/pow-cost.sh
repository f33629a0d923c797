#!/usr/bin/env bash
# Measures what a sale's proof-of-work challenge costs a browser (headless
# Chromium, the Debian package, driven by Playwright) and a script (Python)
# at each difficulty; see scripts/pow-cost.py. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FLASHSALE_CACHE:-$HOME/.cache/flashsale}/fuzz-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import playwright' 2>/dev/null || "$venv/bin/pip" install --quiet playwright
if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
exec "$venv/bin/python" scripts/pow-cost.py "$@"
