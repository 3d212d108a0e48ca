"""Every number honest: what the prose states, the code computed. Checked without running anything.

For every chapter in ``chapters/``:

- **Measurements are glued.** A markdown cell must not state a percentage (``95.4%``) or a decimal
  (``0.0217``, ``2.82e4``, ``2.82 \\times 10^4``) outside a ``{glue:...}`` role, because such a
  number is a measurement that can drift from the run that produced it. Not checked: whole numbers
  (sizes and counts such as 28 rows or 4,096 sequences are settings), code spans and code blocks
  (code states settings, not results), and, inside math, numbers that define something
  (``$\\rho = 0.5$``, ``$(0.01, 0.99)$``). Inside math a number after ``\\approx`` or ``\\sim``, or
  written as a power of ten, is checked like prose. The few constants the prose may state
  anyway are listed, each with its reason, in ``ALLOWED``; a number reported by a published
  work is allowed in a sentence that says so and names the work (``CITED``).
- **No internal shorthand.** Neither markdown nor code says "seed 00N" or "the seeds": the book
  cites published work by author and title.
- **Small code cells.** Every code cell is at most ``MAX_LINES`` lines and ``MAX_COLUMNS`` columns;
  only the pinned install URL in a chapter's first (setup) cell may be wider.
- **Glue names exist.** Every name used by a ``{glue...}`` role or directive in the markdown is
  glued by some code cell of the same chapter (``glue("name", value, display=False)``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

MAX_LINES, MAX_COLUMNS = 25, 88

# Constants the prose may state without glue: (pattern around the number, why it is not a measurement).
ALLOWED = {
    r"chance \(10%\)": "guessing one of ten digit classes",
    r"0\.16?67\b": "the baseline 1/6 of the adding problem (predicting the mean)",
    r"\\approx 0\.73\b": "sigma(1), a mathematical constant",
    r"80% training, 10% validation and 10% test": "the split fractions of a data set, settings",
    r"below 1%": "a threshold the exercise asks for, a setting",
    r"above 1%": "the threshold that defines a gradient's reach (chapter 5), a setting",
    r"below 0\.01\b": "the MSE the adding problem counts as solved (chapter 5), a setting",
    r"95% interval": "the confidence level of an interval, a setting",
}
# Published work that the prose may quote numbers from, in a sentence saying that it reports them.
CITED = ("Géron", "Liu", "Tensorflow Learning", "Hochreiter", "Schmidhuber", "Karpathy", "Graves")
REPORTED = re.compile(r"\breport(s|ed)?\b", re.IGNORECASE)

PERCENT = r"\d+(?:\.\d+)?\s*(?:%|\\%)"
DECIMAL = r"\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+"
NUMBER = re.compile(rf"(?<![\w.\\]){PERCENT}|(?<![\w.\\])(?:{DECIMAL})(?!\w|\.\d)")
POWER_OF_TEN = re.compile(r"\d+(?:\.\d+)?\s*\\times\s*10\^")
MEASURED_IN_MATH = re.compile(r"(?:\\approx|\\sim)\s*$")

GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")
GLUE_DIRECTIVE = re.compile(r"^(?:```|:::)\{glue(?::\w+)?\}\s+(\S+)", re.MULTILINE)
GLUE_CALL = re.compile(r"\bglue\(\s*(f?)(['\"])(.+?)\2")
SHORTHAND = re.compile(r"\bseeds? 0\d\d\b|\bthe seeds\b", re.IGNORECASE)
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
CODE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]+`")
NOT_PROSE = re.compile(r"\]\([^)]*\)|https?://\S+|\(eq-[\w-]+\)|\{eq\}`[^`]*`|<[^>]+>")


def notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def blank(text: str, pattern: re.Pattern) -> str:
    """Replace every match by spaces, so positions (and line breaks) stay where they were."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def unglued_numbers(markdown: str) -> list[str]:
    """The numbers in one markdown cell that no glue role, allow-list entry or citation covers."""
    text = blank(blank(blank(markdown, GLUE_DIRECTIVE), CODE), GLUE_ROLE)
    text = blank(blank(text, CODE_SPAN), NOT_PROSE)
    allowed = [m.span() for pattern in ALLOWED
               for m in re.finditer(pattern.replace(" ", r"\s+"), text)]
    for sentence in re.finditer(r"[^.!?]+(?:[.!?](?=\s|$)|$)", re.sub(r"\d\.\d", "d_d", text)):
        if REPORTED.search(sentence.group()) and any(s in sentence.group() for s in CITED):
            allowed.append(sentence.span())
    math = [m.span() for m in MATH.finditer(text)]
    found = []
    for match in NUMBER.finditer(text):
        start, end = match.span()
        if any(a <= start and end <= b for a, b in allowed):
            continue
        in_math = next(((a, b) for a, b in math if a <= start < b), None)
        if in_math and not (MEASURED_IN_MATH.search(text[in_math[0]:start])
                            or POWER_OF_TEN.match(text, start)):
            continue
        context = " ".join(markdown[max(0, start - 30):end + 15].split())
        found.append(f"{match.group().strip()!r} in '...{context}...'")
    return found



def test_markdown_states_no_unglued_measurement(chapter: Path) -> None:
    problems = [f"cell {i}: {number}"
                for i, cell in enumerate(notebook(chapter).cells) if cell.cell_type == "markdown"
                for number in unglued_numbers(cell.source)]
    assert not problems, (
        f"{chapter.name}: numbers in the prose that no cell glues; glue them "
        "(glue('name', value, display=False), then {glue:text}`name:.1%`), or, for a constant, "
        "add it to ALLOWED with its reason:\n  " + "\n  ".join(problems))


def test_no_internal_shorthand_for_the_sources(chapter: Path) -> None:
    problems = [f"cell {i}: {match.group()!r}"
                for i, cell in enumerate(notebook(chapter).cells)
                for match in SHORTHAND.finditer(cell.source)]
    assert not problems, (
        f"{chapter.name}: cite the published work by author and title instead of:\n  "
        + "\n  ".join(problems))


def test_code_cells_are_small(chapter: Path) -> None:
    code = [(i, c) for i, c in enumerate(notebook(chapter).cells) if c.cell_type == "code"]
    problems = []
    for k, (i, cell) in enumerate(code):
        lines = cell.source.rstrip().splitlines()
        if len(lines) > MAX_LINES:
            problems.append(f"cell {i}: {len(lines)} lines (at most {MAX_LINES}); "
                            "move long code (plots) into the chapter's module")
        for n, line in enumerate(lines, 1):
            pinned_url = k == 0 and "git+" in line
            if len(line) > MAX_COLUMNS and not pinned_url:
                problems.append(f"cell {i}, line {n}: {len(line)} columns (at most {MAX_COLUMNS})")
    assert not problems, f"{chapter.name}:\n  " + "\n  ".join(problems)


def glued_names(cells: list) -> list[re.Pattern]:
    """Each name a code cell glues, as a pattern (an f-string's {...} parts match anything)."""
    names = []
    for cell in cells:
        if cell.cell_type != "code":
            continue
        for is_f, _, name in GLUE_CALL.findall(cell.source):
            parts = re.split(r"\{[^}]*\}", name) if is_f else [name]
            names.append(re.compile(".+".join(map(re.escape, parts))))
    return names


def test_every_glued_name_in_the_prose_is_glued_by_the_code(chapter: Path) -> None:
    cells = notebook(chapter).cells
    glued = glued_names(cells)
    problems = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        used = [m.split(":")[0].strip() for m in GLUE_ROLE.findall(cell.source)]
        used += GLUE_DIRECTIVE.findall(cell.source)
        problems += [f"cell {i}: {name!r}" for name in used
                     if not any(pattern.fullmatch(name) for pattern in glued)]
    assert not problems, (
        f"{chapter.name}: the prose uses glue names that no code cell glues:\n  " + "\n  ".join(problems))


@pytest.mark.parametrize("text, flagged", [
    ("The RNN reaches 95.4% on the test digits.", ["95.4%"]),
    ("The loss falls to 0.0217 and the norm peaks at 2.82e4.", ["0.0217", "2.82e4"]),
    ("It peaks at $2.82 \\times 10^4$, and $\\sigma_{max} \\approx 1.96$.", ["2.82", "1.96"]),
    ("It reaches {glue:text}`acc:.1%` after 30 epochs of 28 rows.", []),
    ("With $\\rho = 0.5$ and gates in $(0.01, 0.99)$, the baseline is 0.167.", []),
    ("Run `fit(lr=0.001)` and compare with chance (10%).", []),
    ("Géron reports 98.4% on the test set. We measure 97.1%.", ["97.1%"]),
    ("```python\nx = 0.5\n```\nDone in 2.5 s.", ["2.5"]),
    ("See [v1.2](https://example.org/v1.2) and {eq}`eq-1.5`.", []),
])
def test_the_number_check_itself(text: str, flagged: list[str]) -> None:
    found = [f.split("'")[1] for f in unglued_numbers(text)]
    assert found == flagged
