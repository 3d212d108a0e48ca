"""Pin every chapter's Colab install to this repository at this release.

The repository URL lives in ``_config.yml`` (``repository.url``) and the release in
``pyproject.toml`` (``[project] version``); the release's git tag is ``v<version>``.
Under Colab, each chapter's first code cell pip-installs exactly
``git+<url>@v<version>``. This script writes that string into every chapter;
with ``--check`` it changes nothing and exits 1 if a chapter disagrees.

    python scripts/pin_colab.py            # after changing the URL or the version
    python scripts/pin_colab.py --check    # what the tests run
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.9 and 3.10: the same parser, as tomli (pytest installs it)
    import tomli as tomllib

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
# A quoted pip requirement that installs from git: "git+<url>" or "git+<url>@<ref>".
GIT_REQUIREMENT = re.compile(r"""(["'])(git\+[^"'\s]*)\1""")
VERSION = re.compile(r"^\d+(\.\d+)*([a-z]+\d+)?$")


def pinned_requirement(root: Path = ROOT) -> str:
    """``git+<repository.url>@v<version>`` from _config.yml and pyproject.toml."""
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(f"_config.yml: expected repository.url to be an https:// URL, got {url!r}")
    if not isinstance(version, str) or not VERSION.match(version):
        raise ValueError(f"pyproject.toml: expected a release version like 0.2.0, got {version!r}")
    return f"git+{url.rstrip('/')}@v{version}"


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "chapters").glob("*.ipynb"))


def installed_requirement(notebook: nbformat.NotebookNode) -> str:
    """The one git+ requirement in the notebook's first code cell."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    found = [m.group(2) for m in GIT_REQUIREMENT.finditer(code[0].source)] if code else []
    if len(found) != 1:
        raise ValueError(f"expected one quoted git+ requirement in the first code cell, found {found}")
    return found[0]


def pin(notebook: nbformat.NotebookNode, requirement: str) -> bool:
    """Make the first code cell install ``requirement``; True if that changed the cell."""
    old = installed_requirement(notebook)
    if old == requirement:
        return False
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    cell.source = cell.source.replace(old, requirement)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a chapter disagrees")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)

    requirement = pinned_requirement(args.root)
    paths = chapters(args.root)
    if not paths:
        print(f"pin_colab: no chapters in {args.root / 'chapters'}", file=sys.stderr)
        return 1
    problems, changed = [], []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        try:
            old = installed_requirement(notebook)
        except ValueError as error:
            problems.append(f"{path.name}: {error}")
            continue
        if old == requirement:
            continue
        if args.check:
            problems.append(f"{path.name} installs {old}, expected {requirement}")
        else:
            pin(notebook, requirement)
            nbformat.write(notebook, path)
            changed.append(path.name)
            print(f"{path.name}: {old} -> {requirement}")
    for problem in problems:
        print(f"pin_colab: {problem}", file=sys.stderr)
    if problems:
        if args.check:
            print("pin_colab: run `python scripts/pin_colab.py` to pin every chapter", file=sys.stderr)
        return 1
    if not args.check:
        tag = requirement.rsplit("@", 1)[1]
        print(f"{len(paths)} chapters install {requirement} ({len(changed)} changed). "
              f"Release it: commit, then `git tag {tag}` and `git push origin {tag}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
