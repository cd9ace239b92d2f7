#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 refuses 3.11+), or
# explains what to install and exits non-zero.
set -euo pipefail

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.10)
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for dir in "$pyenv_root"/versions/3.10*/bin; do
  [ -x "$dir/python3.10" ] && candidates+=("$dir/python3.10")
done
if command -v pyenv >/dev/null 2>&1; then
  found=$(pyenv which python3.10 2>/dev/null || true)
  [ -n "$found" ] && candidates+=("$found")
fi
candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10)

for candidate in "${candidates[@]}"; do
  if path=$(command -v "$candidate" 2>/dev/null) &&
     "$path" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
    echo "$path"
    exit 0
  fi
done

cat >&2 <<'MSG'
Python 3.10 was not found, and Rasa 3.6 needs exactly 3.10 (it refuses 3.11+).
Install it, then run make again:
  pyenv install 3.10.13          (with pyenv; looked in $PYENV_ROOT/versions/3.10*)
  apt-get install python3.10 python3.10-venv   (Debian/Ubuntu with 3.10 packages)
Or point PYTHON at an interpreter: make run PYTHON=/path/to/python3.10
MSG
exit 1
