#!/usr/bin/env bash
# Install everything and run the whole test suite; what CI runs (.ci/run). Every chapter runs
# once, under nbmake, and the website and the PDF are built from the outputs of that run:
#   1. the unit tests and the chapters, on two pytest workers (pytest-xdist). nbmake executes
#      a copy of the book, test-artifacts/book (scripts/book.py copy), and --overwrite keeps
#      the outputs in it;
#   2. that copy built with execution off: the website and the PDF (-W: a warning fails);
#   3. the checks on what was built: tests/test_browser.py (the site in Chromium, the saved
#      notebooks) and tests/test_pdf.py.
# Exits non-zero on any failure, and when no test was collected.
#   bash scripts/run_tests.sh ARGS...        one plain `python -m pytest ARGS...` instead
#   bash scripts/run_tests.sh --install-only the Python environment only
# The environment: the active virtual or conda environment, or else .venv (scripts/_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/_env.sh
source scripts/_env.sh
book_python run_tests
book_install run_tests
if [ "${1:-}" = "--install-only" ]; then exit 0; fi

# The browser test and the PDF use Debian's Chromium; the PDF test reads the PDF with poppler.
book_system_tool run_tests /usr/bin/chromium chromium
book_system_tool run_tests pdftotext poppler-utils

# pytest's exit status, where 5 (no test collected) is a failure too.
run_pytest() {
  local status=0
  python -m pytest "$@" || status=$?
  if [ "$status" -eq 5 ]; then
    echo "run_tests: pytest collected no tests; that is a failure" >&2
    status=1
  fi
  return "$status"
}

if [ $# -gt 0 ]; then
  run_pytest "$@"
  exit $?
fi

# Each stage says when it starts and how long the one before took (the CI log shows the split).
stage() {
  echo "run_tests: [${SECONDS} s] $1"
}

BOOK=test-artifacts/book
python scripts/book.py copy "$BOOK"
status=0
stage "1/3 the unit tests and every chapter (nbmake executes $BOOK), two workers"
run_pytest -n 2 --dist worksteal --durations=12 --overwrite tests "$BOOK/chapters" \
  --ignore=tests/test_browser.py --ignore=tests/test_pdf.py || status=1

stage "2/3 the website and the PDF, built from the executed chapters"
if python scripts/book.py check-executed "$BOOK" && python scripts/book.py build "$BOOK" --pdf; then
  stage "3/3 the built book: every page in Chromium, the saved notebooks, the PDF"
  RNN_BOOK_BUILT="$PWD/$BOOK" run_pytest tests/test_browser.py tests/test_pdf.py || status=1
else
  status=1
fi
stage "done, exit status $status"
exit "$status"
