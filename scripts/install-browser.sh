#!/usr/bin/env bash
# Debian's Chromium for the website's browser tests (Playwright drives it; no browser download).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
else
  echo "error: the browser tests need Debian's chromium at /usr/bin/chromium; run: sudo apt-get install chromium" >&2
  exit 1
fi
