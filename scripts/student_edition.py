"""Write the student edition: every chapter without its exercise solutions and written answers.

    python scripts/student_edition.py [--out student]

In a chapter's Exercises section (from its "## Exercises" heading to the next heading of the
same or a higher level) it drops

* the solutions: code cells tagged ``hide-input`` or ``hide-output``;
* the written answers: text that starts with ``**Answer``, ``*Answer`` or ``<details class="answer">``
  (the folded form the chapters use), markdown cells tagged
  ``answer``, and any text that follows a solution; each up to the next exercise statement
  (``**Exercise N``) or heading, which stays even when it shares a cell with the answer.

The exercise statements and everything outside the section stay as they are. The notebooks go
into one folder (default ``student/``, not tracked by git), ready to hand out; each still
installs the pinned book_utils when opened in Colab.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAGS = {"hide-input", "hide-output"}
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXERCISE = re.compile(r"^\*\*Exercise \d+\b")
ANSWER = re.compile(r"^(?:\*{1,2}Answer|<details class=\"answer\">)")
FENCE = re.compile(r"^(```|~~~)")


def is_solution(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and bool(SOLUTION_TAGS & set(cell.metadata.get("tags", [])))


def blocks(source: str) -> list[list[str]]:
    """The lines of a markdown cell, cut before each heading, exercise statement and answer.

    Lines inside fenced code are never cut at: ``# shape (B, T)`` there is no heading.
    """
    cut, fenced = [[]], False
    for line in source.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (HEADING.match(line) or EXERCISE.match(line) or ANSWER.match(line)) and cut[-1]:
            cut.append([])
        cut[-1].append(line)
    return [block for block in cut if block]


class Section:
    """Where a walk through the notebook is: inside the Exercises section, and after a solution."""

    def __init__(self) -> None:
        self.level: int | None = None  # heading level of the open Exercises section
        self.answering = False  # after a solution or an answer's first line, until a statement or heading

    def read(self, first_line: str) -> None:
        heading = HEADING.match(first_line)
        if heading:
            self.answering = False
            if self.level is not None and len(heading.group(1)) <= self.level:
                self.level = None
            if heading.group(2) == "Exercises":
                self.level = len(heading.group(1))
        elif EXERCISE.match(first_line):
            self.answering = False
        elif ANSWER.match(first_line):
            self.answering = True

    @property
    def inside(self) -> bool:
        return self.level is not None


def student_notebook(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, dict[str, int]]:
    """The notebook without solutions and written answers, and how many of each went."""
    section, kept = Section(), []
    counts = {"exercises": 0, "solutions": 0, "answers": 0}
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            if section.inside and is_solution(cell):
                counts["solutions"] += 1
                section.answering = True
            else:
                kept.append(copy.deepcopy(cell))
            continue
        if cell.cell_type != "markdown":
            kept.append(copy.deepcopy(cell))
            continue
        lines, dropped = [], False
        if "answer" in cell.metadata.get("tags", []):
            section.answering = True  # until a statement or heading in the same cell
        for block in blocks(cell.source):
            section.read(block[0])
            if EXERCISE.match(block[0]):
                if not section.inside:
                    raise ValueError(f"cell {i}: an exercise outside an Exercises section; its solution would stay")
                counts["exercises"] += 1
            if section.inside and section.answering and "".join(block).strip():
                counts["answers"] += 1
                dropped = True
            else:
                lines += block
        if not dropped:
            kept.append(copy.deepcopy(cell))
        elif "".join(lines).strip():
            kept.append(copy.deepcopy(cell))
            kept[-1].source = "".join(lines).strip("\n")
            tags = [t for t in cell.metadata.get("tags", []) if t != "answer"]  # what is left is no answer
            kept[-1].metadata.pop("tags", None)
            if tags:
                kept[-1].metadata["tags"] = tags
    student = copy.deepcopy(notebook)
    student.cells = kept
    return student, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="folder to write (default: student/)")
    args = parser.parse_args(argv)

    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.out.resolve() == (ROOT / "chapters").resolve():
        print("student_edition: --out must not be chapters/, which holds the solutions", file=sys.stderr)
        return 1
    editions, problems = {}, []
    for path in chapters:
        try:
            editions[path.name] = student_notebook(nbformat.read(path, as_version=4))
        except ValueError as error:
            problems.append(f"{path.name}, {error}")
    if problems or not chapters:
        print("student_edition: " + ("\n  ".join(problems) or "no chapters found"), file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (notebook, counts) in editions.items():
        nbformat.write(notebook, args.out / name)
        print(f"{name}: {counts['exercises']} exercises; removed {counts['solutions']} solutions "
              f"and {counts['answers']} written answers")
    print(f"Student edition of {len(editions)} chapters in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
