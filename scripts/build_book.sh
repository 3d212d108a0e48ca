#!/usr/bin/env bash
# Install everything and build the book into _build/html. Runs every chapter (cached in
# _build/.jupyter_cache) and fails on any warning or failing cell.
#   bash scripts/build_book.sh                 the website, _build/html
#   bash scripts/build_book.sh --pdf           and first the whole book as one PDF,
#                                              _build/pdf/rnn-book.pdf, linked from the website
#   bash scripts/build_book.sh --install-only  the Python environment only
# The environment: the active virtual or conda environment, or else .venv (scripts/_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
pdf="" install_only=""
for arg in "$@"; do
  case $arg in
    --pdf) pdf="--pdf" ;;
    --install-only) install_only=1 ;;
    *) echo "usage: bash scripts/build_book.sh [--pdf] [--install-only]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/_env.sh
source scripts/_env.sh
book_python build_book
book_install build_book
if [ -n "$install_only" ]; then exit 0; fi

if [ -n "$pdf" ]; then
  # The PDF is printed by Debian's Chromium (never a downloaded browser), no TeX.
  book_system_tool build_book /usr/bin/chromium chromium
fi
python scripts/book.py build . $pdf
