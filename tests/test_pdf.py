"""The book as one PDF (``bash scripts/build_book.sh --pdf``), read back with poppler.

The PDF comes from the ``built_book`` fixture (tests/conftest.py): the same build as the website
that tests/test_browser.py checks. pdfinfo, pdftotext and pdfimages (Debian's poppler-utils,
which scripts/run_tests.sh installs) show what a reader gets: a title page and a table of
contents with correct page numbers, every chapter of ``_toc.yml`` numbered, chapter 1's glued
numbers as the same build computed them, typeset math (no TeX source), figures that no page
cuts in two, and no exercise solution or written answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from myst_nb.core.variables import format_plain_text

from conftest import script_module

book = script_module("book")  # scripts/book.py: the table of contents, the PDF's name

PAGES_PER_CHAPTER = (8, 35)  # today 12 to 24; a chapter outside this range is a broken print
FRONT_PAGES = 3  # title page and contents
# TeX that may never reach a reader: MathJax's delimiters, display math, environments, glue roles.
RAW = ["{glue", "\\(", "\\)", "\\[", "\\]", "$$", "\\frac", "\\begin{", "\\end{"]
TEX_COMMAND = re.compile(r"\\[A-Za-z]+")
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$|```\{math\}(.+?)```", re.S)
GLUE = re.compile(r"\{glue(?::text)?\}`([^`]+)`")


def poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        reason = f"{tool} is missing; install poppler-utils (apt-get install poppler-utils)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set; scripts/run_tests.sh installs it)")
        pytest.skip(reason)
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True, timeout=300).stdout


def flat(text: str) -> str:
    """Text with every run of whitespace made one space, and soft hyphens gone."""
    return re.sub(r"\s+", " ", text.replace("\u00ad", "")).strip()


@pytest.fixture(scope="module")
def pdf(built_book: Path) -> Path:
    path = built_book / "_build" / "pdf" / book.PDF_NAME
    if not path.exists():
        pytest.skip(f"no {path}: the book was built without its PDF (no Chromium?)")
    return path


@pytest.fixture(scope="module")
def text(pdf: Path) -> str:
    return flat(poppler("pdftotext", str(pdf), "-"))


@pytest.fixture(scope="module")
def pages(pdf: Path) -> list[str]:
    """The text of each page (pdftotext ends every page with a form feed)."""
    return [flat(p) for p in poppler("pdftotext", str(pdf), "-").split("\f")[:-1]]


def chapters(built_book: Path) -> list[tuple[str, Path]]:
    """(numbered title, notebook) of every chapter, in the order of _toc.yml."""
    found = []
    for number, path in enumerate(book.chapter_notebooks(built_book), start=1):
        cells = nbformat.read(path, as_version=4).cells
        title = next(line[2:].strip() for c in cells if c.cell_type == "markdown"
                     for line in c.source.splitlines() if line.startswith("# "))
        found.append((f"{number}. {title}", path))
    return found


def prose(path: Path) -> list[str]:
    """The markdown cells the PDF prints: every one but the written answers."""
    cells = nbformat.read(path, as_version=4).cells
    return [c.source for c in cells if c.cell_type == "markdown" and "answer" not in c.metadata.get("tags", [])
            and not c.source.lstrip().startswith('<details class="answer">')]


def test_page_count_is_in_the_expected_range(pdf: Path, built_book: Path) -> None:
    info = poppler("pdfinfo", str(pdf))
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    n = len(chapters(built_book))
    low, high = FRONT_PAGES + PAGES_PER_CHAPTER[0] * n, FRONT_PAGES + PAGES_PER_CHAPTER[1] * n
    assert low <= count <= high, f"{count} pages for {n} chapters; expected {low} to {high}"
    assert re.search(r"^Page size:.*\(A4\)", info, re.M), info


def test_title_page_and_contents_with_page_numbers(pages: list[str], built_book: Path) -> None:
    config = yaml.safe_load((built_book / "_config.yml").read_text())
    assert flat(config["title"]) in pages[0], f"the title page shows {pages[0][:200]!r}"
    contents = " ".join(p for p in pages[1:FRONT_PAGES + 1] if "Contents" in p or re.search(r"\d+\.\d+\. ", p))
    assert contents.startswith("Contents"), f"page 2 is not the table of contents: {pages[1][:200]!r}"
    for title, _ in chapters(built_book):
        entry = re.search(re.escape(title) + r" (\d+)\b", contents)
        assert entry, f"the table of contents lacks {title!r} with a page number"
        page = int(entry.group(1))
        assert pages[page - 1].startswith(title) or f" {title} " in pages[page - 1], (
            f"the contents send {title!r} to page {page}, which begins {pages[page - 1][:120]!r}")


def test_every_chapter_title_is_in_the_text(text: str, built_book: Path) -> None:
    missing = [title for title, _ in chapters(built_book) if text.count(title) < 2]  # contents + chapter
    assert not missing, f"chapter titles missing from the PDF (or from its contents): {missing}"


def test_chapter_1s_glued_numbers_are_the_builds(text: str, built_book: Path) -> None:
    _, first = chapters(built_book)[0]
    glue_file = built_book / "_build" / "jupyter_execute" / first.relative_to(built_book).with_suffix(".glue.json")
    glued = json.loads(glue_file.read_text())
    roles = [m.group(1) for source in prose(first) for m in GLUE.finditer(source)]
    assert roles, f"{first.name} glues no number into its prose"
    missing = []
    for role in roles:
        key, _, spec = role.partition(":")
        shown = format_plain_text(glued[key]["data"]["text/plain"], spec)
        if shown not in text:
            missing.append(f"{key} = {shown}")
    assert not missing, f"numbers of {first.name} (from {glue_file.name}) missing from the PDF: {missing}"


def code_text(built_book: Path) -> str:
    """Everything the PDF prints as code: the code cells and their text outputs, as the build saved them."""
    code = ""
    for _, path in chapters(built_book):
        saved = built_book / "_build" / "jupyter_execute" / path.relative_to(built_book)
        for cell in nbformat.read(saved, as_version=4).cells:
            if cell.cell_type == "code":
                code += cell.source
                for output in cell.outputs:
                    code += output.get("text", "") + "".join(
                        v for k, v in output.get("data", {}).items() if k.startswith("text/") and isinstance(v, str))
    return code


def test_no_raw_math_source_is_left(text: str, built_book: Path) -> None:
    code = code_text(built_book)
    # Every TeX command the prose's math uses that no code cell spells (matplotlib labels do).
    commands = {c for _, path in chapters(built_book) for source in prose(path)
                for m in MATH.finditer(source) for c in TEX_COMMAND.findall("".join(filter(None, m.groups())))}
    commands = sorted(c for c in commands if c not in code)
    assert len(commands) > 10, f"found too few TeX commands to check: {commands}"
    left = [token for token in RAW + commands if token in text]
    assert not left, f"raw math source in the PDF's text: {left}"
    assert text.count("$") <= code.count("$"), "more $ signs in the PDF than in all the code and output it prints"


def test_the_pdf_holds_the_figures_and_no_page_cuts_one(pdf: Path, built_book: Path) -> None:
    rows = [line.split() for line in poppler("pdfimages", "-list", str(pdf)).splitlines()[2:]]
    images = [(int(r[0]), r[10]) for r in rows if r[2] == "image"]  # (page, object number)
    figures = sum(1 for _, path in chapters(built_book) for c in nbformat.read(path, as_version=4).cells
                  if "figure" in c.metadata.get("mystnb", {}) and "hide-input" not in c.metadata.get("tags", []))
    assert len({obj for _, obj in images}) >= figures > 0, (
        f"{len(images)} images in the PDF for {figures} figures of the chapters")
    pages_of: dict[str, set[int]] = {}
    for page, obj in images:
        pages_of.setdefault(obj, set()).add(page)
    cut = {obj: sorted(p) for obj, p in pages_of.items() if len(p) > 1}
    assert not cut, f"images drawn on more than one page (a figure cut by a page break): {cut}"


def test_solutions_and_written_answers_are_left_out(text: str, built_book: Path) -> None:
    report = json.loads((built_book / "_build" / "pdf" / "print-report.json").read_text())
    statements, answers = 0, []
    for _, path in chapters(built_book):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            statements += len(re.findall(r"^\*\*Exercise \d+", cell.source, re.M))
            if cell.source.lstrip().startswith('<details class="answer">'):
                answers.append(cell.source)
    assert report["removed"]["answers"] == len(answers) > 0, report["removed"]
    assert report["removed"]["solutions"] >= len(answers), report["removed"]
    assert len(re.findall(r"\bExercise \d+\b", text)) >= statements, "exercise statements are missing"
    shown = []
    for answer in answers:
        # The answer's longest stretch of plain words: no markup, math or glue in it.
        plain = re.sub(r"<[^>]+>|\$[^$]*\$|\{glue[^`]*`[^`]*`|`[^`]*`|[*_]", "|", answer)
        words = max((flat(s) for s in re.split(r"[|\n]", plain)), key=len)
        if len(words) > 30 and words in text:
            shown.append(words[:60])
    assert not shown, f"written answers printed in the PDF: {shown}"
