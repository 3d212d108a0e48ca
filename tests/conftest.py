"""Shared pytest setup: the chapters the notebook checks run over, and the built book."""

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# The models under test are tiny: one thread is fastest, and steady on a busy machine.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@functools.cache
def script_module(name: str):
    """scripts/NAME.py, imported as a module (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request) -> Path:
    """Each chapter notebook in turn."""
    return request.param


@pytest.fixture(scope="session")
def built_book() -> Path:
    """A built book: BOOK/_build/html (with the PDF in its download menu), BOOK/_build/pdf/,
    the notebooks the build saved in BOOK/_build/jupyter_execute/, and the builds' logs.

    scripts/run_tests.sh builds it once, from the chapters nbmake has just executed, and names
    it in RNN_BOOK_BUILT. Without that variable the repository is built in place, as
    ``python scripts/book.py build . --pdf`` (executing what _build/.jupyter_cache lacks).
    """
    if os.environ.get("RNN_BOOK_BUILT"):
        book = Path(os.environ["RNN_BOOK_BUILT"]).resolve()
        if not (book / "_build" / "html" / "intro.html").exists():
            pytest.fail(f"RNN_BOOK_BUILT={book} holds no built book (_build/html/intro.html)")
        return book
    # Without Chromium there is no PDF (its tests skip, as the browser's do).
    pdf = ["--pdf"] if script_module("book").CHROMIUM.exists() else []
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "book.py"), "build", str(ROOT), *pdf],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"scripts/book.py build . {' '.join(pdf)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return ROOT
