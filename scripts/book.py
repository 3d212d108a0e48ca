"""The book's build steps, shared by the README's commands, CI and the tests.

    python scripts/book.py build [BOOK] [--pdf]   the website, BOOK/_build/html (-W); with --pdf,
                                                  first the PDF, BOOK/_build/pdf/rnn-book.pdf,
                                                  then the website with it in its download menu
    python scripts/book.py copy DEST              a copy of the book's sources for nbmake
                                                  --overwrite to execute, built from its outputs
    python scripts/book.py check-executed BOOK    every code cell of BOOK's chapters ran, none failed

BOOK defaults to the repository. Its ``_config.yml`` says whether a build executes the chapters
(the repository's: ``cache``) or renders the outputs stored in them (a copy's: ``off``).

The PDF is the book on one page (Sphinx's ``singlehtml`` builder) printed by Debian's Chromium
(``/usr/bin/chromium``, through Playwright; never a downloaded browser, no TeX). Before printing,
the page waits for MathJax, drops the exercise solutions and written answers (as the student
edition does), folds away code the website folds, and gains a title page and a table of contents
with page numbers (read back from a first print with pypdf, then printed again).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
PDF_NAME = "rnn-book.pdf"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
MARGIN_MM = {"top": 16, "bottom": 16, "left": 15, "right": 15}
# A4 less its side margins, in CSS pixels: the page is laid out as it will print, so that
# print_book.js can measure what is too wide for it.
PRINTED_WIDTH = {"width": round((210 - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96),
                 "height": round(297 / 25.4 * 96)}
# The book's own sources: what `copy` takes (the chapters come from _toc.yml).
BOOK_FILES = ["_config.yml", "_toc.yml", "_ext", "_static"]


class BookError(RuntimeError):
    """A build step failed; the message says which and why."""


# ---------------------------------------------------------------- the table of contents


def toc_documents(book: Path) -> list[str]:
    """Every document of ``_toc.yml`` in reading order, without suffix ("intro", "chapters/01_x")."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    documents = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                documents.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [toc]):
        walk(part.get("chapters", []))
    return [str(Path(d).with_suffix("")) if Path(d).suffix in (".md", ".ipynb") else d for d in documents]


def source_of(book: Path, document: str) -> Path:
    """The file behind a document of the table of contents."""
    found = [book / f"{document}{s}" for s in (".ipynb", ".md") if (book / f"{document}{s}").exists()]
    if not found:
        raise BookError(f"_toc.yml lists {document!r}, but {book} has no {document}.ipynb or .md")
    return found[0]


def chapter_notebooks(book: Path) -> list[Path]:
    return [p for p in (source_of(book, d) for d in toc_documents(book)) if p.suffix == ".ipynb"]


# ---------------------------------------------------------------- copy and check an executed book


def copy_book(dest: Path) -> Path:
    """Copy the book's sources to ``dest`` with a config that renders stored outputs.

    nbmake ``--overwrite`` then executes the copy's chapters in place, and ``build`` turns
    them into the website and the PDF without running a cell again.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in BOOK_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    for document in toc_documents(ROOT):
        source = source_of(ROOT, document)
        (dest / source.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / source.relative_to(ROOT))
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (dest / "_config.yml").write_text(
        "# Written by scripts/book.py copy: the chapters here are executed by nbmake --overwrite,\n"
        "# and the book is built from their stored outputs.\n" + yaml.safe_dump(config, sort_keys=False))
    return dest


def check_executed(book: Path) -> list[str]:
    """Problems that stop a book from being built from stored outputs: cells not run, or failed."""
    problems = []
    for path in chapter_notebooks(book):
        nb = nbformat.read(path, as_version=4)
        code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        not_run = [i for i, c in code if c.get("execution_count") is None]
        failed = [i for i, c in code if any(o.output_type == "error" for o in c.outputs)]
        if not_run:
            problems.append(f"{path.name}: cells {not_run} did not run")
        if failed:
            problems.append(f"{path.name}: cells {failed} raised an error")
    return problems


# ---------------------------------------------------------------- builds


def jupyter_book(book: Path, builder: str, env: dict | None = None) -> None:
    """``jupyter-book build BOOK --builder BUILDER -W --keep-going``; fails on any warning.

    Its output goes on to the terminal as it comes (executing the chapters takes minutes) and
    into ``BOOK/_build/BUILDER.log``, which tests/test_browser.py reads.
    """
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(book),
           "--builder", builder, "-W", "--keep-going"]
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print(f"book: jupyter-book build {book} --builder {builder} -W --keep-going", flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=book, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    sys.stdout.flush()
    log = re.sub(r"\x1b\[[0-9;]*m", "", "".join(lines))
    (book / "_build").mkdir(exist_ok=True)
    (book / "_build" / f"{builder}.log").write_text(log)
    if proc.returncode != 0:
        flagged = [line for line in log.splitlines() if re.search(r"(WARNING|ERROR|CRITICAL):|Error\b", line)]
        raise BookError(f"the {builder} build of {book} failed (a warning or a failing cell); "
                        f"log in {book / '_build' / f'{builder}.log'}:\n"
                        + "\n".join(flagged[:30] or log.splitlines()[-40:]))


def build(book: Path, pdf: bool) -> None:
    """The website, and with ``pdf`` first the PDF, which the website then links and serves."""
    env = dict(os.environ)
    env.pop("RNN_BOOK_PDF_LINK", None)
    if pdf:
        jupyter_book(book, "singlehtml")
        out = book / "_build" / "pdf" / PDF_NAME
        print_pdf(book / "_build" / "singlehtml", out, book)
        env["RNN_BOOK_PDF_LINK"] = PDF_NAME  # _ext/site_fixes.py adds it to the download menu
    jupyter_book(book, "html", env)
    if pdf:
        shutil.copy2(out, book / "_build" / "html" / PDF_NAME)
        print(f"book: PDF {out} ({out.stat().st_size / 1e6:.1f} MB), also served as _build/html/{PDF_NAME}")
    print(f"book: website {book / '_build' / 'html' / 'index.html'}")


# ---------------------------------------------------------------- the PDF


@functools.cache
def _script(step: str) -> str:
    """A function of scripts/print_book.js, as Playwright evaluates it: ``(arg) => ...``."""
    return f"(arg) => ({Path(__file__).with_name('print_book.js').read_text()}).{step}(arg)"


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _title_page(book: Path) -> dict:
    config = yaml.safe_load((book / "_config.yml").read_text())
    version = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    return {"title": config.get("title", ""), "author": config.get("author", ""),
            "version": version.group(1) if version else "",
            "date": datetime.date.today().isoformat(),
            "url": config.get("repository", {}).get("url", "")}


def _page_numbers(pdf: Path) -> dict[str, int]:
    """The page (1-based) of every named destination that the print made for a #pdf-... id."""
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    pages = {}
    for name, destination in reader.named_destinations.items():
        if name.lstrip("/").startswith("pdf-"):
            pages[name.lstrip("/")] = reader.get_destination_page_number(destination) + 1
    return pages


def print_pdf(singlehtml: Path, out: Path, book: Path) -> dict:
    """Print the single-page book to ``out``; returns what the page reported (chapters, removals)."""
    if not CHROMIUM.exists():
        raise BookError(f"Chromium not found at {CHROMIUM}: install Debian's (apt-get install chromium); "
                        "the PDF is never made with a downloaded browser")
    from playwright.sync_api import sync_playwright

    index = next((p for p in ("intro.html", "index.html") if (singlehtml / p).exists()), None)
    if index is None:
        raise BookError(f"no single-page build in {singlehtml}")
    out.parent.mkdir(parents=True, exist_ok=True)
    server, base = _serve(singlehtml)
    offsite: list[str] = []
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True,
                color_scheme="light", viewport=PRINTED_WIDTH)

            def only_local(route) -> None:
                if urlparse(route.request.url).netloc == urlparse(base).netloc:
                    route.continue_()
                else:
                    offsite.append(route.request.url)
                    route.abort()

            context.route("**/*", only_local)
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(base + index, wait_until="load")
            page.emulate_media(media="print", color_scheme="light")
            report = page.evaluate(_script("prepare"), _title_page(book))
            problems = report["problems"] + [f"request to another host: {u}" for u in offsite]
            if problems:
                raise BookError("the page to print is not ready:\n  " + "\n  ".join(problems[:30]))
            options = dict(format="A4", print_background=True, outline=True, tagged=True,
                           display_header_footer=True, header_template="<div></div>",
                           footer_template='<div style="font-size:8px;width:100%;text-align:center;'
                                           'color:#555"><span class="pageNumber"></span></div>',
                           margin={side: f"{mm}mm" for side, mm in MARGIN_MM.items()})
            page.pdf(path=str(out), **options)
            # The table of contents gets its page numbers from a first print; the numbers
            # take no extra lines, so a second print keeps every page where it was.
            numbers = _page_numbers(out)
            page.evaluate(_script("number"), numbers)
            page.pdf(path=str(out), **options)
            if _page_numbers(out) != numbers:
                raise BookError("the page numbers in the table of contents moved pages in the second print")
            context.close()
    finally:
        server.shutdown()
        server.server_close()
    report["pages_numbered"] = len(numbers)
    (out.parent / "print-report.json").write_text(json.dumps(report, indent=1))
    print(f"book: {out}: {len(report['chapters'])} chapters, {report['removed']['solutions']} solutions "
          f"and {report['removed']['answers']} written answers left out")
    return report


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="the website (and with --pdf the PDF) into BOOK/_build")
    p_build.add_argument("book", nargs="?", type=Path, default=ROOT)
    p_build.add_argument("--pdf", action="store_true", help=f"also _build/pdf/{PDF_NAME}")
    p_copy = sub.add_parser("copy", help="a copy of the book whose chapters nbmake --overwrite executes")
    p_copy.add_argument("dest", type=Path)
    p_check = sub.add_parser("check-executed", help="every code cell ran and none failed")
    p_check.add_argument("book", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.book.resolve(), args.pdf)
        elif args.command == "copy":
            print(f"book: sources copied to {copy_book(args.dest.resolve())}")
        else:
            problems = check_executed(args.book.resolve())
            if problems:
                raise BookError("the executed chapters cannot be built:\n  " + "\n  ".join(problems))
    except BookError as error:
        print(f"book: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
