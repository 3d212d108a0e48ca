"""The website as readers meet it: built, served on localhost, and opened in headless Chromium.

The built book comes from the ``built_book`` fixture (tests/conftest.py): under
scripts/run_tests.sh, the copy whose chapters nbmake executed, built once from their stored
outputs; otherwise the repository, built in place. The module serves its ``_build/html`` on
127.0.0.1 and opens every page of the table of contents, plus the search page, in Debian's
Chromium driven by Playwright. Requests to any other host are blocked and reported, so the
pages must render with no network. A screenshot of each page goes to
``test-artifacts/screenshots/``. Every folded cell and every written answer must be closed
when a page loads and open on click, and the download menu offers the whole book as a PDF.

The notebooks the build saved (``_build/jupyter_execute``, what a reader downloads) are read
too: no code cell's output holds more than 12 lines, and no epoch-log line is stored twice.

Chromium is never downloaded: the test uses ``/usr/bin/chromium`` (``apt-get install
chromium``). Without it the browser tests are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlparse

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
COLAB = "https://colab.research.google.com"
PDF_NAME = "rnn-book.pdf"
MAX_OUTPUT_LINES = 12
EPOCH_LINE = re.compile(r"^\s*epoch\s+\d+")
SEARCH_TERM = "recurrent"

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"].rstrip("/")

STATS = {"pages": 0, "pages_with_problems": 0, "images": 0, "display_equations": 0, "inline_equations": 0,
         "solutions": 0, "answers": 0}
TIMES: dict[str, float] = {}


def toc_pages() -> list[str]:
    """Documents in reading order, as paths without suffix ("intro", "chapters/01_...")."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [toc]):
        walk(part.get("chapters", []))
    return [str(Path(p).with_suffix("")) if Path(p).suffix in (".md", ".ipynb") else p for p in pages]


PAGES = toc_pages()


def notebook(page: str) -> nbformat.NotebookNode | None:
    path = ROOT / f"{page}.ipynb"
    return nbformat.read(path, as_version=4) if path.exists() else None


def expected_colab_url(page: str) -> str:
    owner_repo = urlparse(REPOSITORY).path.strip("/")
    branch = CONFIG["repository"].get("branch", "main")
    book_path = (CONFIG["repository"].get("path_to_book") or "").strip("/")
    in_repo = f"{book_path}/{page}.ipynb" if book_path else f"{page}.ipynb"
    return f"{COLAB}/github/{owner_repo}/blob/{branch}/{in_repo}"


def no_chromium(reason: str) -> None:
    """Fail under CI, where the browser must be there; skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure; scripts/run_tests.sh installs it)")
    pytest.skip(reason)


# ---------------------------------------------------------------- build and serve


@pytest.fixture(scope="module")
def site_dir(built_book: Path) -> Path:
    """The built website's folder."""
    TIMES["start"] = time.perf_counter()
    return built_book / "_build" / "html"


@pytest.fixture(scope="module")
def site(site_dir: Path) -> str:
    """Base URL of _build/html served by a thread on 127.0.0.1."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Browser:
    """One headless Chromium page, reused for every URL; records errors and off-site requests."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.offsite: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url} ({req.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))

    def open(self, url: str) -> None:
        self.errors.clear()
        self.offsite.clear()
        self.page.goto(url, wait_until="load")


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory) -> Browser:
    if not CHROMIUM.exists():
        no_chromium(f"Chromium not found at {CHROMIUM}; install it with: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        no_chromium("the playwright package is missing; pip install -r requirements.txt")
    TIMES["browser_start"] = time.perf_counter()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        page = context.pages[0] if context.pages else context.new_page()
        browser = Browser(page)
        local = urlparse(site).netloc

        def only_local(route) -> None:
            if urlparse(route.request.url).netloc == local:
                route.continue_()
            else:
                browser.offsite.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        yield browser
        context.close()


# ---------------------------------------------------------------- what a page looks like in the browser

# Runs in the page: waits for MathJax, then describes images, math, links and solutions.
INSPECT = r"""
async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const hasMath = document.querySelector('.math') !== null;
  if (hasMath) {
    const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    for (let i = 0; i < 300 && !ready(); i++) await sleep(50);
    if (ready()) await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map((img) => img.decode().catch(() => null)));
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(skip)) continue;
    const m = node.textContent.match(/\$\$|\\\[|\\\(|\\begin\{/);
    if (m) rawTex.push(node.textContent.trim().slice(0, 120));
  }
  const article = document.querySelector('article') || document.body;
  return {
    mathjax: !!window.MathJax,
    images: [...document.images].map((img) => ({
      src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
      alt: img.getAttribute('alt') || '', output: !!img.closest('.cell_output'),
      caption: ((img.closest('figure') || {}).querySelector?.('figcaption')?.textContent || '').trim(),
    })),
    display: [...article.querySelectorAll('div.math')].map((d) => ({
      typeset: d.querySelector('mjx-container[display="true"]') !== null,
      text: d.textContent.trim().slice(0, 80),
    })),
    inline: [...article.querySelectorAll('span.math')].map((s) => s.querySelector('mjx-container') !== null),
    errors: article.querySelectorAll('mjx-merror').length,
    rawTex,
    colab: [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map((a) => a.href),
    repository: [...document.querySelectorAll('a.btn-source-repository-button')].map((a) => a.href),
    next: [...document.querySelectorAll('a.right-next')].map((a) => a.href),
    title: (article.querySelector('h1') || {textContent: ''}).textContent.trim(),
    crowdedOutputs: [...article.querySelectorAll('.cell_output')]
      .filter((o) => o.querySelectorAll('img').length > 1).length,
    answers: [...article.querySelectorAll('details.answer')].map((d) => ({
      open: d.open,
      statements: [...d.querySelectorAll('strong')].map((s) => s.textContent.trim())
        .filter((t) => /^Exercise \d+\b/.test(t)),
      summary: (d.querySelector(':scope > summary') || {textContent: ''}).textContent.trim(),
      visible: [...d.children].some((c) => c.tagName !== 'SUMMARY' && c.checkVisibility()),
    })),
    pdf: [...document.querySelectorAll('a')].filter((a) => a.href.split('#')[0].endsWith('/__PDF__'))
      .map((a) => a.href),
    solutions: [...article.querySelectorAll('.cell.tag_hide-input')].map((cell) => {
      const details = cell.querySelector('details');
      const input = cell.querySelector('.cell_input');
      return {details: !!details, open: !!(details && details.open),
              visible: !!(input && input.checkVisibility())};
    }),
  };
}
""".replace("__PDF__", PDF_NAME)


def screenshot(browser: Browser, page: str) -> None:
    name = page.replace("/", "__") or "index"
    browser.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def problems_common(info: dict, browser: Browser) -> list[str]:
    """Checks every page must pass: errors, off-site requests, images, math."""
    problems = [f"error on load: {e}" for e in browser.errors]
    problems += [f"request to another host (the site must work offline): {u}" for u in browser.offsite]
    for img in info["images"]:
        img["src"] = img["src"] if len(img["src"]) < 120 else img["src"][:100] + "..."
        if not img["loaded"]:
            problems.append(f"image did not load: {img['src']}")
        if img["output"] and not img["alt"].strip():
            problems.append(f"figure without alt text: {img['src']}")
        if img["output"] and not img["caption"]:
            problems.append(f"figure without a caption: {img['src']}")
    if (info["display"] or info["inline"]) and not info["mathjax"]:
        problems.append("the page has math but MathJax did not load")
    problems += [f"display equation not typeset: {d['text']!r}" for d in info["display"] if not d["typeset"]]
    if not all(info["inline"]):
        problems.append(f"{info['inline'].count(False)} inline equations not typeset")
    if info["errors"]:
        problems.append(f"{info['errors']} MathJax TeX errors (mjx-merror) on the page")
    problems += [f"raw TeX left in the text: {t!r}" for t in info["rawTex"]]
    return problems


def answer_problems(info: dict, browser: Browser) -> list[str]:
    """Every written answer (<details class="answer">) is closed on load and opens on click."""
    problems = []
    for i, answer in enumerate(info["answers"]):
        if answer["open"] or answer["visible"]:
            problems.append(f"written answer {i + 1} is open when the page loads")
        if answer["statements"]:
            problems.append(f"written answer {i + 1} folds away the statement of {answer['statements']}: "
                            "a statement goes after </details>, where readers see it")
        if answer["summary"] != "Answer":
            problems.append(f"written answer {i + 1} is labelled {answer['summary']!r}, not 'Answer'")
    answers = browser.page.locator("article details.answer")
    for i in range(answers.count()):
        answers.nth(i).locator(":scope > summary").click()
        opened = answers.nth(i).evaluate(
            "d => d.open && [...d.children].some((c) => c.tagName !== 'SUMMARY' && c.checkVisibility())")
        if not opened:
            problems.append(f"written answer {i + 1} does not open on click")
    return problems


def count(info: dict, problems: list[str]) -> None:
    """Add a checked page to the summary (images, equations and solutions seen on it)."""
    STATS["pages"] += 1
    STATS["pages_with_problems"] += bool(problems)
    STATS["images"] += len(info["images"])
    STATS["display_equations"] += len(info["display"])
    STATS["inline_equations"] += len(info["inline"])
    STATS["solutions"] += len(info["solutions"])
    STATS["answers"] += len(info["answers"])


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("builder", ["html", "singlehtml"])
def test_book_builds_without_warnings(built_book: Path, builder: str) -> None:
    """scripts/book.py keeps each build's log; a -W build that warned would not have finished."""
    log_file = built_book / "_build" / f"{builder}.log"
    assert log_file.exists(), f"no log of the {builder} build in {log_file}"
    log = log_file.read_text()
    flagged = re.compile(r"(WARNING|ERROR|CRITICAL):|Error\b")
    problems = [line for line in log.splitlines() if flagged.search(line)]
    assert "build succeeded" in log and not problems, (
        f"the {builder} build failed or warned (a warning or a failing cell):\n"
        + "\n".join(problems[:30] or log.splitlines()[-40:]))


class _Resources(html.parser.HTMLParser):
    """Collects URLs that a page loads to render (not plain hyperlinks)."""

    LOADING_REL = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "manifest",
                   "apple-touch-icon", "preconnect", "dns-prefetch"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "link" and set((a.get("rel") or "").lower().split()) & self.LOADING_REL:
            self.urls.append(a.get("href") or "")
        elif tag in ("script", "img", "iframe", "source", "video", "audio", "embed", "track"):
            self.urls.append(a.get("src") or "")
            self.urls += [part.split()[0] for part in (a.get("srcset") or "").split(",") if part.strip()]
        elif tag == "object":
            self.urls.append(a.get("data") or "")


def is_external(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.I))


def test_no_page_loads_anything_from_another_host(site_dir: Path) -> None:
    """Scripts, styles, fonts and images all come from the built site: no CDN."""
    offenders = []
    for path in sorted(site_dir.rglob("*.html")):
        parser = _Resources()
        parser.feed(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(site_dir)}: {u}" for u in parser.urls if is_external(u)]
    css_url = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", re.I)
    for path in sorted((site_dir / "_static").rglob("*.css")):
        offenders += [f"{path.relative_to(site_dir)}: {u}"
                      for u in css_url.findall(path.read_text(errors="replace"))]
    assert not offenders, "the site loads resources from other hosts:\n" + "\n".join(offenders)
    mathjax = site_dir / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.exists(), f"MathJax is not served by the site: {mathjax} is missing"


def test_the_site_serves_the_book_pdf(site: str, site_dir: Path) -> None:
    """The file the download menu links is the PDF that scripts/book.py printed."""
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(urljoin(site, PDF_NAME), timeout=30) as response:
        body = response.read()
        kind = response.headers.get("Content-Type", "")
    assert kind == "application/pdf" and body.startswith(b"%PDF-"), f"{PDF_NAME} is served as {kind!r}"
    assert body == (site_dir.parent / "pdf" / PDF_NAME).read_bytes(), "the site serves another PDF than _build/pdf's"


# ---------------------------------------------------------------- the notebooks the build saved


def saved_notebooks(built_book: Path) -> list[Path]:
    folder = built_book / "_build" / "jupyter_execute"
    saved = [folder / f"{page}.ipynb" for page in PAGES if notebook(page) is not None]
    missing = [str(p) for p in saved if not p.exists()]
    assert not missing, f"the build saved no executed notebook for {missing}"
    return saved


def shown_lines(cell: nbformat.NotebookNode) -> list[str]:
    """The lines a reader sees under a code cell: printed lines, and a table's rows (its header
    row too) where the output is HTML; figures and glued values (display=False) aside."""
    lines: list[str] = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            lines += output.text.splitlines()
        elif output.output_type == "error":
            lines += output.traceback
        elif "scrapbook" in output.get("metadata", {}) or any(k.startswith("image/") for k in output.data):
            continue
        elif "text/html" in output.data:
            lines += re.findall(r"<tr\b[^>]*>", output.data["text/html"])
        else:
            lines += output.data.get("text/plain", "").splitlines()
    return lines


def test_saved_notebooks_keep_outputs_short_and_once(built_book: Path) -> None:
    problems = []
    for path in saved_notebooks(built_book):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            lines = shown_lines(cell)
            if len(lines) > MAX_OUTPUT_LINES:
                problems.append(f"{path.name} cell {i}: {len(lines)} output lines (at most {MAX_OUTPUT_LINES}): "
                                f"{lines[0][:60]!r} ...")
            epochs = [line for line in lines if EPOCH_LINE.match(line)]
            twice = sorted({line for line in epochs if epochs.count(line) > 1})
            if twice:
                problems.append(f"{path.name} cell {i}: epoch lines stored twice: {twice[:2]}")
    assert not problems, "the saved notebooks:\n  " + "\n  ".join(problems)


def test_saved_notebook_checks_catch_long_and_repeated_outputs() -> None:
    """The two rules above, on outputs that break them (as MyST-NB's stream merge once did)."""
    log = "".join(f"epoch {e:>2}  loss 0.{e}\n" for e in range(1, 12))
    merged = nbformat.v4.new_output("stream", name="stdout", text=log)
    cell = nbformat.v4.new_code_cell("fit()", outputs=[merged] + [
        nbformat.v4.new_output("stream", name="stdout", text=line) for line in log.splitlines(True)])
    lines = shown_lines(cell)
    assert len(lines) == 22 > MAX_OUTPUT_LINES
    assert sum(EPOCH_LINE.match(line) is not None for line in lines) == 22
    glued = nbformat.v4.new_output("display_data", data={"text/plain": "0.9"},
                                   metadata={"scrapbook": {"name": "acc"}})
    figure = nbformat.v4.new_output("display_data", data={"image/png": "", "text/plain": "<Figure>"})
    assert shown_lines(nbformat.v4.new_code_cell("", outputs=[glued, figure])) == []
    rows = "".join(f"<tr><td>{k}</td></tr>" for k in range(12))
    table = nbformat.v4.new_output("execute_result", data={"text/html": f"<table><thead><tr><th>k</th></tr></thead>"
                                                           f"<tbody>{rows}</tbody></table>",
                                                           "text/plain": "k\n" + "\n".join(map(str, range(12)))})
    assert len(shown_lines(nbformat.v4.new_code_cell("", outputs=[table]))) == 13


# ---------------------------------------------------------------- every page in the browser


@pytest.mark.parametrize("index", range(len(PAGES)), ids=PAGES)
def test_page_in_browser(browser: Browser, site: str, index: int) -> None:
    page = PAGES[index]
    url = urljoin(site, f"{page}.html")
    browser.open(url)
    info = browser.page.evaluate(INSPECT)
    screenshot(browser, page)
    problems = problems_common(info, browser)

    if [u.rstrip("/") for u in info["repository"]] != [REPOSITORY]:
        problems.append(f"repository button should link {REPOSITORY}, found {info['repository']}")
    expected_next = [urljoin(site, f"{PAGES[index + 1]}.html")] if index + 1 < len(PAGES) else []
    if [u.split("#")[0] for u in info["next"]] != expected_next:
        problems.append(f"'next' link should be {expected_next}, found {info['next']}")

    if index > 0 and not re.match(r"\d+(\.\d+)*\.?\s", info["title"]):
        problems.append(f"the page title is not numbered: {info['title']!r}")
    if info["crowdedOutputs"]:
        problems.append(f"{info['crowdedOutputs']} cells show more than one figure (one per cell, one caption each)")

    nb = notebook(page)
    if nb is not None:
        if sorted(set(info["colab"])) != [expected_colab_url(page)]:
            problems.append(f"Colab link should be {expected_colab_url(page)}, found {info['colab']}")
        hidden = [c for c in nb.cells if c.cell_type == "code" and "hide-input" in c.metadata.get("tags", [])]
        if len(info["solutions"]) != len(hidden):
            problems.append(f"{len(hidden)} hide-input cells in the notebook, {len(info['solutions'])} in the page")
        for i, sol in enumerate(info["solutions"]):
            if not sol["details"] or sol["open"] or sol["visible"]:
                problems.append(f"solution {i + 1} is not collapsed behind a toggle: {sol}")
        # A reader can open every folded cell (the setup cell, long plotting code, the
        # solutions); a solution, below the Exercises heading, ends with its check.
        exercises = next((k for k, c in enumerate(nb.cells) if c.cell_type == "markdown"
                          and c.source.lstrip().startswith("## Exercises")), len(nb.cells))
        is_solution = [nb.cells.index(c) > exercises for c in hidden]
        toggles = browser.page.locator(".cell.tag_hide-input")
        for i in range(toggles.count()):
            cell = toggles.nth(i)
            cell.locator("summary").first.click()
            source = cell.locator(".cell_input")
            if not source.is_visible():
                problems.append(f"folded cell {i + 1} does not open on click")
            elif i < len(is_solution) and is_solution[i] and "assert" not in source.inner_text():
                problems.append(f"solution in folded cell {i + 1} shows no assert")
        problems += answer_problems(info, browser)

    if [u.split("#")[0] for u in info["pdf"]] != [urljoin(site, PDF_NAME)]:
        problems.append(f"the download menu should offer the book as {urljoin(site, PDF_NAME)}, found {info['pdf']}")

    count(info, problems)
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


def test_search_finds_chapters(browser: Browser, site: str, site_dir: Path) -> None:
    assert (site_dir / "searchindex.js").exists(), "the build wrote no searchindex.js"
    browser.open(urljoin(site, f"search.html?q={SEARCH_TERM}"))
    results = browser.page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=20_000)
    info = browser.page.evaluate(INSPECT)
    screenshot(browser, "search")
    problems = problems_common(info, browser)
    found = {urlparse(h).path.lstrip("/").removesuffix(".html")
             for h in results.evaluate_all("els => els.map(a => a.href)")}
    chapters = [p for p in PAGES if notebook(p) is not None]
    if not found & set(chapters):
        problems.append(f"searching {SEARCH_TERM!r} finds no chapter; results: {sorted(found)}")
    count(info, problems)
    assert not problems, "search.html:\n  " + "\n  ".join(problems)


def test_summary(browser, capsys) -> None:
    """Print and save what the browser checked (runs last in this module)."""
    total = time.perf_counter() - TIMES["start"]
    line = (f"browser test: {STATS['pages']} pages checked ({STATS['pages_with_problems']} with problems), "
            f"{STATS['images']} images verified, "
            f"{STATS['display_equations']} display equations and {STATS['inline_equations']} inline "
            f"equations verified, {STATS['solutions']} folded cells and {STATS['answers']} written answers "
            f"toggled; browser {time.perf_counter() - TIMES['browser_start']:.1f} s, total {total:.1f} s")
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {**STATS, "total_s": total}
    (ARTIFACTS / "browser-summary.json").write_text(json.dumps(summary, indent=1))
    with capsys.disabled():
        print("\n" + line)
    assert STATS["pages"] == len(PAGES) + 1, f"only {STATS['pages']} of {len(PAGES) + 1} pages were checked"
