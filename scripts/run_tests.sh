#!/usr/bin/env bash
# Install everything and run the whole test suite: unit tests, every chapter
# under nbmake, and the checks on the built book.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt

status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
