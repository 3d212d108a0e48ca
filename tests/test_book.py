"""The book itself: configuration, stripped notebooks, a build that fails on a failing cell, and
the build from stored outputs that scripts/run_tests.sh makes once nbmake has run the chapters."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import CHAPTERS, ROOT, script_module


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/*.ipynb found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    listed = toc_files()
    assert sorted(f"chapters/{p.stem}" for p in CHAPTERS) == sorted(listed)
    assert listed == sorted(listed), "chapters must be listed in order"


def test_config_pins_the_behaviour_we_rely_on():
    cfg = config()
    assert cfg["only_build_toc_files"] is True
    # The scripts' .venv and test run's copy of the book sit in the repository: never pages.
    assert {".venv", "_build", "test-artifacts"} <= set(cfg["exclude_patterns"])
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert cfg["execute"]["timeout"] > 0
    assert cfg["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert cfg["repository"]["url"].startswith("https://github.com/")
    assert "colab" in cfg["launch_buttons"]["colab_url"]
    requirements = (ROOT / "requirements.txt").read_text().split()
    assert "jupyter-book==1.0.4.post1" in requirements and "torch==2.13.0" in requirements
    assert '"torch>=2.1"' in (ROOT / "pyproject.toml").read_text()


def _throwaway_book(tmp_path: Path, cell_source: str) -> Path:
    book = tmp_path / "book"
    book.mkdir()
    cfg = config()
    cfg["title"] = "throwaway"
    cfg["exclude_patterns"] = ["_build"]
    cfg["execute"]["timeout"] = 60
    (book / "_config.yml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(ROOT / "_ext", book / "_ext")  # the local Sphinx extension the config loads
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro",
                                                   "chapters": [{"file": "chapter"}]}))
    (book / "intro.md").write_text("# Throwaway\n\nA book with one chapter.\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter"),
                                         nbformat.v4.new_code_cell(cell_source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "chapter.ipynb")
    return book


def _build(book: Path) -> subprocess.CompletedProcess:
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    return subprocess.run([jb, "build", str(book), "-W", "--keep-going"], capture_output=True, text=True,
                          timeout=600)


def test_build_fails_when_a_cell_fails(tmp_path):
    book = _throwaway_book(tmp_path, "raise RuntimeError('this cell is broken')")
    result = _build(book)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "this cell is broken" in result.stdout + result.stderr


def test_the_same_book_builds_when_the_cell_works(tmp_path):
    book = _throwaway_book(tmp_path, "print(6 * 7)")
    result = _build(book)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    html = (book / "_build" / "html" / "chapter.html").read_text()
    assert "42" in html


# ---------------------------------------------------------------- the book built from stored outputs
# scripts/run_tests.sh executes the chapters once, under nbmake --overwrite in a copy made by
# scripts/book.py copy, and builds the website and the PDF from the outputs stored there.

BOOK = script_module("book")


def _execute(path: Path) -> None:
    """What nbmake --overwrite does: run the notebook and store its outputs in it."""
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(path.parent))
    finally:
        nbformat.write(nb, path)  # a failed run is stored too


def test_copy_has_every_document_and_renders_stored_outputs(tmp_path):
    copy = BOOK.copy_book(tmp_path / "copy")
    assert yaml.safe_load((copy / "_config.yml").read_text())["execute"]["execute_notebooks"] == "off"
    for path in CHAPTERS:
        assert (copy / "chapters" / path.name).read_bytes() == path.read_bytes()
    for name in ("intro.md", "_toc.yml", "_ext/site_fixes.py", "_static/answers.css"):
        assert (copy / name).exists(), f"the copy lacks {name}"
    assert BOOK.check_executed(copy) and all("did not run" in p for p in BOOK.check_executed(copy))


def test_check_executed_finds_cells_that_did_not_run_or_failed(tmp_path):
    book = _throwaway_book(tmp_path, "raise RuntimeError('this cell is broken')")
    assert BOOK.chapter_notebooks(book) == [book / "chapter.ipynb"]
    assert BOOK.check_executed(book) == ["chapter.ipynb: cells [1] did not run"]
    try:
        _execute(book / "chapter.ipynb")
    except CellExecutionError:
        pass  # stored, as nbmake --overwrite stores a failed run
    assert BOOK.check_executed(book) == ["chapter.ipynb: cells [1] raised an error"]
    assert BOOK.main(["check-executed", str(book)]) == 1


def test_a_book_builds_from_stored_outputs_with_its_glue(tmp_path):
    book = _throwaway_book(tmp_path, "from myst_nb import glue\nglue('answer', 6 * 7, display=False)\n"
                                     "print('stored output')")
    nb = nbformat.read(book / "chapter.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("The answer is {glue:text}`answer:.1f`."))
    nbformat.write(nb, book / "chapter.ipynb")
    _execute(book / "chapter.ipynb")
    assert BOOK.check_executed(book) == []
    cfg = yaml.safe_load((book / "_config.yml").read_text())
    cfg["execute"]["execute_notebooks"] = "off"
    (book / "_config.yml").write_text(yaml.safe_dump(cfg))
    # Had the build run the cell again, it would fail: it renders what is stored.
    nb = nbformat.read(book / "chapter.ipynb", as_version=4)
    nb.cells[1].source = "raise RuntimeError('this cell must not run again')"
    nbformat.write(nb, book / "chapter.ipynb")
    BOOK.jupyter_book(book, "html")
    html = (book / "_build" / "html" / "chapter.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert "The answer is 42.0." in text and "stored output" in text
    assert "must not run again" in html  # the source is shown, never executed
    glued = json.loads((book / "_build" / "jupyter_execute" / "chapter.glue.json").read_text())
    assert glued["answer"]["data"]["text/plain"] == "42"
