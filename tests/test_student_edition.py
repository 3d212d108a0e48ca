"""The student edition: the chapters without exercise solutions and written answers.

``scripts/student_edition.py`` writes it; these tests check its output against the chapters with
rules of their own: no solution cell and no written answer survives, every exercise statement
does, everything before the exercises is untouched, and a student notebook still runs up to its
Exercises heading.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "student_edition.py"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# The chapter whose cells before its exercises run fastest offline (measured; see the report).
RUN_CHAPTER = "04_bptt.ipynb"
HEADING = re.compile(r"^#{2,3} Exercises\s*$", re.MULTILINE)
STATEMENT = re.compile(r"^\*\*Exercise (\d+)\b", re.MULTILINE)
SOLUTION_TAGS = {"hide-input", "hide-output"}


def load_script():
    spec = importlib.util.spec_from_file_location("student_edition", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def heading_index(nb: nbformat.NotebookNode) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and HEADING.search(c.source))


def markdown(nb: nbformat.NotebookNode) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def solutions(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the solution cells: tagged code cells after the Exercises heading."""
    return [i for i, c in enumerate(nb.cells) if i > heading_index(nb) and c.cell_type == "code"
            and SOLUTION_TAGS & set(c.metadata.get("tags", []))]


# The markup that folds an answer, which other folded text may share.
FOLD = re.compile(r'<details class="answer">\n<summary>Answer</summary>|</details>')


def written_answers(nb: nbformat.NotebookNode) -> list[str]:
    """The markdown after each solution, up to the next statement or heading."""
    answers = []
    for i in solutions(nb):
        following = []
        for cell in nb.cells[i + 1:]:
            if cell.cell_type != "markdown":
                break
            following.append(cell.source)
        text = re.split(r"^(?:\*\*Exercise \d+\b|#)", "\n\n".join(following), maxsplit=1, flags=re.MULTILINE)[0]
        answers += [paragraph.strip() for paragraph in text.split("\n\n")
                    if paragraph.strip() and not FOLD.fullmatch(paragraph.strip())]
    return answers


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("student")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def pair(request, edition) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(the chapter, its student edition)"""
    return (nbformat.read(request.param, as_version=4),
            nbformat.read(edition[0] / request.param.name, as_version=4))


def test_every_chapter_is_written(edition) -> None:
    out, proc = edition
    assert sorted(p.name for p in out.glob("*.ipynb")) == sorted(p.name for p in CHAPTERS)
    assert f"Student edition of {len(CHAPTERS)} chapters in {out}" in proc.stdout


def test_no_solution_survives(pair) -> None:
    chapter, student = pair
    assert solutions(chapter), "the chapter has no solution cells to remove"
    removed = {chapter.cells[i].source for i in solutions(chapter)}
    survivors = [c.source[:60] for c in student.cells if c.cell_type == "code" and c.source in removed]
    assert not survivors, f"solutions left in the student edition: {survivors}"
    assert not solutions(student), "tagged solution cells left after the Exercises heading"


def test_no_written_answer_survives(pair) -> None:
    chapter, student = pair
    text = markdown(student)
    left = [answer[:60] for answer in written_answers(chapter) if answer in text]
    assert not left, f"written answers left in the student edition: {left}"
    exercises = "\n\n".join(c.source for c in student.cells[heading_index(student):] if c.cell_type == "markdown")
    assert not re.search(r"^\s*\*{1,2}Answer", exercises, re.MULTILINE), "an **Answer** paragraph survived"
    assert not [c for c in student.cells if "answer" in c.metadata.get("tags", [])], "a cell tagged answer survived"


def test_every_statement_survives(pair) -> None:
    chapter, student = pair
    numbers = [int(n) for n in STATEMENT.findall(markdown(chapter))]
    assert numbers and [int(n) for n in STATEMENT.findall(markdown(student))] == numbers
    text = markdown(student)
    for cell in chapter.cells:
        if cell.cell_type == "markdown":
            for match in STATEMENT.finditer(cell.source):
                statement = re.split(r"^(?:\*{1,2}Answer|#)", cell.source[match.start():], flags=re.MULTILINE)[0]
                assert statement.strip() in text, f"statement lost: {statement[:80]}"


def test_everything_before_the_exercises_is_unchanged(pair) -> None:
    chapter, student = pair
    first = heading_index(chapter)
    assert student.cells[:first + 1] == chapter.cells[:first + 1]
    assert student.metadata == chapter.metadata


def test_solutions_and_answers_in_every_form() -> None:
    """Each form of solution and answer the script knows, in one made-up chapter."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    tagged = lambda cell, tag: cell.metadata.update(tags=[tag]) or cell  # noqa: E731
    cells = [
        md("# A chapter"), md(""), tagged(code("folded = 1  # outside the exercises: kept"), "hide-input"),
        md("Some text.\n\n## Exercises\n\n**Exercise 1.** State one.\n\n```python\n# no heading\n```"),
        tagged(code("solution_1 = 1"), "hide-input"),
        md("**Answer.** One is one."),
        md('<details class="answer">\n<summary>Answer</summary>\n\nFolded.\n\n</details>'),
        md("**Exercise 2.** State two.\n\n*Answer:* two, given away in the statement's cell."),
        tagged(code("solution_2 = 2"), "hide-output"),
        md("Two, because of the solution.\n\n**Exercise 3.** State three."),
        tagged(code("solution_3 = 3"), "hide-input"),
        tagged(md("Three, in a cell tagged answer.\n\n**Exercise 4 (on paper).** State four."), "answer"),
        code("helper = 4  # untagged: kept"),
        tagged(code("solution_4 = 4"), "hide-input"),
        md("The last answer.\n\n## Summary\n\nDone."),
        tagged(code("after = 1  # after the section: kept"), "hide-input"),
    ]
    student, counts = load_script().student_notebook(nbformat.v4.new_notebook(cells=cells))
    assert [c.source for c in student.cells] == [
        "# A chapter", "", "folded = 1  # outside the exercises: kept",
        "Some text.\n\n## Exercises\n\n**Exercise 1.** State one.\n\n```python\n# no heading\n```",
        "**Exercise 2.** State two.", "**Exercise 3.** State three.", "**Exercise 4 (on paper).** State four.",
        "helper = 4  # untagged: kept",
        "## Summary\n\nDone.", "after = 1  # after the section: kept",
    ]
    assert counts == {"exercises": 4, "solutions": 4, "answers": 6}
    assert not any("answer" in c.metadata.get("tags", []) for c in student.cells)


def test_an_exercise_outside_the_section_is_an_error() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Part\n\n**Exercise 1.** Lost.")])
    with pytest.raises(ValueError, match="cell 0: an exercise outside an Exercises section"):
        load_script().student_notebook(nb)


def test_the_chapters_folder_is_never_the_output() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(ROOT / "chapters")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "--out must not be chapters/" in proc.stderr


def test_a_student_notebook_runs_up_to_its_exercises(edition, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = edition
    assert (out / RUN_CHAPTER).exists(), f"{RUN_CHAPTER} is gone: pick the fastest chapter in RUN_CHAPTER"
    student = nbformat.read(out / RUN_CHAPTER, as_version=4)
    student.cells = student.cells[:heading_index(student)]
    monkeypatch.setenv("RNN_BOOK_OFFLINE", "1")  # the kernel inherits it: the embedded sample, no network
    NotebookClient(student, timeout=600, resources={"metadata": {"path": str(out)}}).execute()
    errors = [o for c in student.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors and any(c.cell_type == "code" for c in student.cells)
