# shellcheck shell=bash
# Sourced by scripts/build_book.sh and scripts/run_tests.sh (never run on its own): the one
# place that chooses the Python the book runs on and installs requirements.txt into it.
#
# - An active environment is used as it is: $VIRTUAL_ENV (a venv) or $CONDA_PREFIX (conda).
# - Otherwise the scripts use .venv in the repository, created the first time with the
#   system's `python3 -m venv` (or python3.9 and newer, when python3 is older). A system
#   Python is never installed into: Debian's and Ubuntu's refuse `pip install` (PEP 668).
#   When Debian's ensurepip is missing, the message names the package to install.
# Afterwards that environment's bin folder leads PATH, so `python`, `jupyter-book` and the
# notebook kernels are its own, and $BOOK_PYTHON is its interpreter.

# requirements.txt has two sets of pins: one for Python 3.11 and newer (CI's), and one for 3.9
# and 3.10, the oldest Pythons with wheels of everything (Debian 11, RHEL 9, Ubuntu 22.04).
BOOK_MIN_PYTHON="3.9"
# A pyproject.toml-only package installs editable (-e .) with pip 21.3 or newer (PEP 660);
# Debian 11's venv comes with pip 20.3.
BOOK_MIN_PIP="21.3"

# _book_new_enough PYTHON: whether PYTHON is at least BOOK_MIN_PYTHON.
_book_new_enough() {
  "$1" -c "import sys; sys.exit(sys.version_info < (${BOOK_MIN_PYTHON/./, }))" 2>/dev/null
}

# book_python NAME: choose (or create) the environment and print one line about it.
book_python() {
  local name=$1 where version
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    BOOK_PYTHON=$VIRTUAL_ENV/bin/python
    where="the active virtual environment $VIRTUAL_ENV (already active)"
  elif [ -n "${CONDA_PREFIX:-}" ]; then
    BOOK_PYTHON=$CONDA_PREFIX/bin/python
    where="the active conda environment $CONDA_PREFIX (already active)"
  else
    _book_venv "$name" || return 1
    BOOK_PYTHON=$PWD/.venv/bin/python
    where=".venv; activate it in your shell with: source .venv/bin/activate"
  fi
  if [ ! -x "$BOOK_PYTHON" ]; then
    echo "$name: $BOOK_PYTHON is missing; activate an environment with Python >= $BOOK_MIN_PYTHON," \
         "or deactivate it to use .venv" >&2
    return 1
  fi
  version=$("$BOOK_PYTHON" -c 'import platform; print(platform.python_version())')
  if ! _book_new_enough "$BOOK_PYTHON"; then
    echo "$name: the book's pinned requirements need Python >= $BOOK_MIN_PYTHON;" \
         "$BOOK_PYTHON (from $where) is $version" >&2
    return 1
  fi
  PATH="$(dirname "$BOOK_PYTHON"):$PATH"
  export PATH
  if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then export VIRTUAL_ENV=$PWD/.venv; fi
  echo "$name: using Python $version ($BOOK_PYTHON) from $where"
}

# _book_venv NAME: make sure .venv works, creating it with the system's Python.
_book_venv() {
  local name=$1 base="" candidate minor log
  if [ -x .venv/bin/python ] && _book_new_enough .venv/bin/python && .venv/bin/python -c 'import pip' 2>/dev/null; then
    return 0
  fi
  for candidate in python3 python3.14 python3.13 python3.12 python3.11 python3.10 python3.9 python; do
    if command -v "$candidate" >/dev/null 2>&1 && _book_new_enough "$(command -v "$candidate")"; then
      base=$(command -v "$candidate")
      break
    fi
  done
  if [ -z "$base" ]; then
    if command -v python3 >/dev/null 2>&1; then
      echo "$name: the book's pinned requirements need Python >= $BOOK_MIN_PYTHON; $(command -v python3)" \
           "is $(python3 -c 'import platform; print(platform.python_version())'). Install a newer one (Debian/Ubuntu: apt-get install" \
           "python$BOOK_MIN_PYTHON python$BOOK_MIN_PYTHON-venv), or activate an environment that has it." >&2
    else
      echo "$name: no python3 on PATH; install Python >= $BOOK_MIN_PYTHON" \
           "(Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
    fi
    return 1
  fi
  echo "$name: creating .venv with $base ($("$base" -V 2>&1))"
  rm -rf .venv
  log=$(mktemp)
  if ! "$base" -m venv .venv >"$log" 2>&1; then
    rm -rf .venv
    if ! "$base" -c 'import ensurepip' 2>/dev/null; then
      minor=$("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
      echo "$name: \`$base -m venv\` failed: this Python has no ensurepip, which Debian and Ubuntu" \
           "ship in a package of its own. Install it (sudo apt-get install python$minor-venv, or" \
           "python3-venv), or activate a virtual or conda environment of yours; then run this again." >&2
    else
      echo "$name: \`$base -m venv .venv\` failed:" >&2
      cat "$log" >&2
    fi
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# book_install NAME: install requirements.txt (which installs book_utils, editable) into it.
# In .venv, a stamp of requirements.txt and pyproject.toml skips an install that is up to date.
book_install() {
  local name=$1 stamp="" want=""
  if [ "${VIRTUAL_ENV:-}" = "$PWD/.venv" ] && [ -z "${CONDA_PREFIX:-}" ]; then
    stamp=.venv/.book-requirements
    want=$(cat requirements.txt pyproject.toml | "$BOOK_PYTHON" -c \
      'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      return 0
    fi
  fi
  if ! "$BOOK_PYTHON" -c "import sys, pip; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (${BOOK_MIN_PIP/./, }))" 2>/dev/null; then
    echo "$name: upgrading pip (pip install \"pip>=$BOOK_MIN_PIP\"; this one cannot install -e . from pyproject.toml)"
    "$BOOK_PYTHON" -m pip install -q "pip>=$BOOK_MIN_PIP" || return 1
  fi
  echo "$name: installing requirements.txt (pip install -r requirements.txt)"
  "$BOOK_PYTHON" -m pip install -q -r requirements.txt || return 1
  if [ -n "$stamp" ]; then echo "$want" >"$stamp"; fi
}

# book_system_tool NAME COMMAND PACKAGE: apt-get install PACKAGE when COMMAND is missing
# (as root, or through sudo); without apt-get, say what will be skipped.
book_system_tool() {
  local name=$1 command=$2 package=$3 sudo=""
  if command -v "$command" >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: no $command and no apt-get; install $package yourself (its tests skip, or fail under CI)" >&2
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "$name: installing $package with apt-get ($command is missing)"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
