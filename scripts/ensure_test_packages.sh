#!/usr/bin/env bash
# Installs the Debian packages the tests drive when they are missing:
# Chromium for the browser tests (test tools cannot download their own
# browser here; Playwright drives this one) and libfaketime for the
# clock-skew tests (one server's clock set off by a minute).
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
FAKETIME_LIBRARY=${FAKETIME_LIBRARY:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ -f "$FAKETIME_LIBRARY" ] || missing+=(faketime)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need Debian's ${missing[*]} (apt-get install ${missing[*]});" >&2
  echo "or set CHROMIUM to a Chromium binary and FAKETIME_LIBRARY to libfaketime.so.1." >&2
  exit 1
fi
echo "Installing ${missing[*]} (apt-get install) for the tests..."
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
[ -x "$CHROMIUM" ] && [ -f "$FAKETIME_LIBRARY" ]
