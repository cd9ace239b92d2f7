#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing.
# (Test tools cannot download their own browser here; Playwright drives this one.)
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is needed for the browser tests: install Debian's 'chromium' package" >&2
  echo "(apt-get install chromium) or set CHROMIUM to a Chromium binary." >&2
  exit 1
fi
echo "Installing Chromium (apt-get install chromium) for the browser tests..."
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
[ -x "$CHROMIUM" ]
