"""Exercises and their solutions, as every chapter must have them.

An exercise is a markdown cell with a line starting ``**Exercise N.**``; the very next cell
is its solution: a code cell tagged ``hide-input`` and ``hide-output`` (code and output folded
away on the website, an ordinary visible cell in the notebook) whose last statement is an
``assert`` that checks the answer. Right after the solution comes the written answer: a
markdown cell tagged ``answer``, folded: ``<details class="answer">``, ``<summary>Answer</summary>``,
the text, ``</details>``, each on lines of their own. At least one exercise per
chapter is worked on paper (its statement says *on paper*); its solution checks the paper
result numerically. The browser test checks that the website shows each solution collapsed
behind a toggle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

MIN_EXERCISES = 3
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.\*\*", re.MULTILINE)
# Tags that would hide a solution in the notebook too, or drop it from the website.
HIDING_TAGS = {"remove-input", "remove-cell", "hide-cell", "remove_input", "remove_cell"}
# A written answer folds like a solution: on the website, in Jupyter and in Colab alike.
ANSWER = re.compile(r'^<details class="answer">\n<summary>Answer</summary>\n\n.*\S\n\n</details>$', re.DOTALL)
ON_PAPER = re.compile(r"\bon paper\b", re.IGNORECASE)


def parse(source: str) -> ast.Module:
    lines = source.splitlines()
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines))


def exercises(path: Path) -> list[tuple[int, int, nbformat.NotebookNode | None]]:
    """(exercise number, index of its markdown cell, the cell after it) for each exercise."""
    cells = nbformat.read(path, as_version=4).cells
    found = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        numbers = [int(n) for n in EXERCISE.findall(cell.source)]
        assert len(numbers) <= 1, f"{path.name}, cell {i}: one exercise per markdown cell, found {numbers}"
        if numbers:
            found.append((numbers[0], i, cells[i + 1] if i + 1 < len(cells) else None))
    return found



def test_at_least_three_exercises_numbered_in_order(chapter: Path) -> None:
    numbers = [n for n, _, _ in exercises(chapter)]
    assert len(numbers) >= MIN_EXERCISES, (
        f"{chapter.name} has {len(numbers)} exercises (lines starting **Exercise N.**); "
        f"every chapter needs at least {MIN_EXERCISES}"
    )
    assert numbers == list(range(1, len(numbers) + 1)), f"{chapter.name}: exercises numbered {numbers}"


def test_exercises_sit_under_an_exercises_heading(chapter: Path) -> None:
    cells = nbformat.read(chapter, as_version=4).cells
    found = exercises(chapter)
    assert found, f"{chapter.name} has no exercises"
    first = found[0][1]
    heading = [i for i, c in enumerate(cells[: first + 1])
               if c.cell_type == "markdown" and re.search(r"^#{2,3} Exercises\s*$", c.source, re.MULTILINE)]
    assert heading, f"{chapter.name}: no '## Exercises' heading before Exercise 1"


def test_each_solution_is_hidden_on_the_website_and_ends_with_an_assert(chapter: Path) -> None:
    problems = []
    for number, index, solution in exercises(chapter):
        where = f"Exercise {number} (cell {index})"
        if solution is None or solution.cell_type != "code":
            problems.append(f"{where}: the next cell should be its solution, a code cell")
            continue
        tags = set(solution.metadata.get("tags", []))
        if "hide-input" not in tags:
            problems.append(f"{where}: solution cell is not tagged hide-input (tags: {sorted(tags)})")
        if tags & HIDING_TAGS:
            problems.append(f"{where}: solution cell has {sorted(tags & HIDING_TAGS)}; it must stay visible")
        if solution.metadata.get("jupyter", {}).get("source_hidden"):
            problems.append(f"{where}: solution source is collapsed in the notebook; learners should see it")
        body = parse(solution.source).body
        if not body or not isinstance(body[-1], ast.Assert):
            last = ast.unparse(body[-1]) if body else "nothing"
            problems.append(f"{where}: the solution should end with an assert, ends with: {last[:80]}")
        elif isinstance(body[-1].test, ast.Constant):
            problems.append(f"{where}: the final assert checks a constant, not the answer")
    assert not problems, f"{chapter.name}:\n  " + "\n  ".join(problems)


def test_each_solution_folds_its_output_and_is_followed_by_a_written_answer(chapter: Path) -> None:
    cells = nbformat.read(chapter, as_version=4).cells
    problems = []
    for number, index, solution in exercises(chapter):
        where = f"Exercise {number} (cell {index})"
        if solution is None or "hide-output" not in solution.metadata.get("tags", []):
            problems.append(f"{where}: solution cell is not tagged hide-output (fold its output too)")
        answer = cells[index + 2] if index + 2 < len(cells) else None
        if answer is None or answer.cell_type != "markdown" or not ANSWER.match(answer.source):
            problems.append(f"{where}: the cell after the solution should be a markdown cell "
                            'folded as <details class="answer"><summary>Answer</summary> ... </details>')
        elif "answer" not in answer.metadata.get("tags", []):
            problems.append(f"{where}: its written answer (cell {index + 2}) is not tagged answer")
    assert not problems, f"{chapter.name}:\n  " + "\n  ".join(problems)


def test_at_least_one_exercise_is_worked_on_paper(chapter: Path) -> None:
    cells = nbformat.read(chapter, as_version=4).cells
    on_paper = [n for n, index, _ in exercises(chapter) if ON_PAPER.search(cells[index].source)]
    assert on_paper, (f"{chapter.name}: no pencil-and-paper exercise (a statement that says "
                      "'on paper', whose solution checks the paper result numerically)")


def test_no_exercise_statement_hides_inside_a_folded_answer(chapter: Path) -> None:
    cells = nbformat.read(chapter, as_version=4).cells
    hidden = [i for i, cell in enumerate(cells)
              if "answer" in cell.metadata.get("tags", []) and EXERCISE.search(cell.source)]
    assert not hidden, (f"{chapter.name}: cells {hidden} fold an exercise statement into a written "
                        "answer; give the statement its own markdown cell after the answer")
