#!/usr/bin/env bash
# Install everything and run the whole test suite: unit tests, every chapter
# under nbmake, and the checks on the built book.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt

# tests/test_browser.py opens the built website in Debian's Chromium (never a downloaded one).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "run_tests: no /usr/bin/chromium and no apt-get; the browser test will skip (or fail under CI)" >&2
  fi
fi

status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
