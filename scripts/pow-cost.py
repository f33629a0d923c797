#!/usr/bin/env python3
"""What a sale's proof-of-work challenge costs a client, per difficulty.

The browser: headless Chromium (the Debian package, driven by Playwright)
running the JavaScript solver of docs/api.md (WebCrypto SHA-256, one digest per
nonce). A script: Python's hashlib, as docs/api.md's shell line calls it.
Each solves the same random challenges; the median and the 90th percentile
of the time per ticket are printed. Run by `scripts/pow-cost.sh`.
"""
import hashlib
import secrets
import statistics
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

DIFFICULTIES = [int(d) for d in sys.argv[1:]] or [8, 12, 16, 18, 20]
CHALLENGES = 12

SOLVER = """async ([challenge, difficulty]) => {
  const started = performance.now();
  const encoder = new TextEncoder();
  for (let nonce = 0; ; nonce++) {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(challenge + nonce)));
    let bits = 0;
    for (const byte of digest) { bits += byte ? Math.clz32(byte) - 24 : 8; if (byte) break; }
    if (bits >= difficulty) return performance.now() - started;
  }
}"""


def zero_bits(digest):
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def python_solve(challenge, difficulty):
    started = time.perf_counter()
    nonce = 0
    while zero_bits(hashlib.sha256(f"{challenge}{nonce}".encode()).digest()) < difficulty:
        nonce += 1
    return (time.perf_counter() - started) * 1000


def summary(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page()
    # WebCrypto needs a secure context, which a local file is.
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as blank:
        blank.write("<title>pow</title>")
    page.goto(f"file://{blank.name}")
    print(f"{CHALLENGES} challenges per difficulty; ms per ticket, median / p90")
    print(f"{'difficulty':>10} {'hashes':>9}  {'Chromium (WebCrypto)':>22}  {'script (Python hashlib)':>24}")
    for difficulty in DIFFICULTIES:
        challenges = [secrets.token_urlsafe(150) for _ in range(CHALLENGES)]
        browser_ms = [page.evaluate(SOLVER, [c, difficulty]) for c in challenges]
        script_ms = [python_solve(c, difficulty) for c in challenges]
        b, s = summary(browser_ms), summary(script_ms)
        print(f"{difficulty:>10} {2 ** difficulty:>9,}  {b[0]:>10.0f} / {b[1]:>9.0f}  {s[0]:>11.0f} / {s[1]:>10.0f}")
    browser.close()
