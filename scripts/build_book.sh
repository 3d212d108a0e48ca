#!/usr/bin/env bash
# Install everything and build the book into _build/html. Runs every chapter
# (cached in _build/.jupyter_cache) and fails on any warning or failing cell.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
jupyter-book build . -W --keep-going
echo "Book built: $(pwd)/_build/html/index.html"
