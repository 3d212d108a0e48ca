"""The Colab experience: every chapter installs book_utils under Colab, and only there.

Each chapter's first code cell sets ``BOOK_REPOSITORY`` to the repository in
``_config.yml`` and, when ``google.colab`` is imported, pip-installs the package from it.
The install must leave Colab's torch, numpy and matplotlib alone; the venv test runs the
chapter's own pip command against a local copy of the repository, with no network, and
checks exactly that. No chapter may pick its device by hand: ``training.pick_device`` does.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
PROTECTED = ("torch", "numpy", "matplotlib")
# pip options that would replace packages Colab already has.
REPLACING_OPTIONS = {"-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed", "--upgrade-strategy"}


def code_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def parse(source: str) -> ast.Module:
    """Parse a cell, blanking IPython magics and shell escapes so that ast accepts it."""
    lines = source.splitlines()
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines))


def is_colab_test(node: ast.AST) -> bool:
    """``"google.colab" in sys.modules``"""
    return (
        isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Constant) and node.left.value == "google.colab"
        and len(node.ops) == 1 and isinstance(node.ops[0], ast.In)
        and ast.unparse(node.comparators[0]) == "sys.modules"
    )


def colab_block(source: str) -> dict:
    """The BOOK_REPOSITORY assignment and the Colab-only install in a cell, or an explanation."""
    tree = parse(source)
    repository = guard = None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["BOOK_REPOSITORY"]
                and isinstance(node.value, ast.Constant)):
            repository = node
        if isinstance(node, ast.If) and is_colab_test(node.test):
            guard = node
    if repository is None or guard is None:
        return {"error": "no `BOOK_REPOSITORY = \"...\"` and `if \"google.colab\" in sys.modules:` at top level"}
    calls = [n for n in ast.walk(guard) if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.List)]
    if len(calls) != 1:
        return {"error": "the Colab branch should make exactly one subprocess call with an argument list"}
    args = calls[0].args[0].elts
    imports_before = [n for n in tree.body[: tree.body.index(guard)]
                      if isinstance(n, (ast.Import, ast.ImportFrom)) and "book_utils" in ast.unparse(n)]
    return {
        "repository": repository.value.value,
        "segment": ast.unparse(repository) + "\n" + ast.unparse(guard),
        "args": args,
        "imports_before": imports_before,
    }


def pip_arguments(args: list[ast.expr], local_repository: Path) -> list[str]:
    """The chapter's pip command as strings, with git+{BOOK_REPOSITORY} pointing at a local copy."""
    words = []
    for arg in args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            words.append(arg.value)
        elif ast.unparse(arg) == "sys.executable":
            words.append("<python>")
        elif isinstance(arg, ast.JoinedStr) and ast.unparse(arg) == "f'git+{BOOK_REPOSITORY}'":
            words.append(str(local_repository))
        else:
            raise AssertionError(f"unexpected argument in the Colab install command: {ast.unparse(arg)}")
    return words


@pytest.fixture(scope="module", params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request) -> Path:
    return request.param


def test_there_are_chapters() -> None:
    assert CHAPTERS, "no notebooks in chapters/"


def test_first_code_cell_installs_book_utils_under_colab(chapter: Path) -> None:
    cells = code_cells(chapter)
    assert cells, f"{chapter.name} has no code cell"
    block = colab_block(cells[0])
    assert "error" not in block, f"{chapter.name}, first code cell: {block.get('error')}"
    assert block["repository"] == REPOSITORY, (
        f"{chapter.name}: BOOK_REPOSITORY is {block['repository']!r}, _config.yml's repository is {REPOSITORY!r}"
    )
    assert not block["imports_before"], f"{chapter.name} imports book_utils before installing it under Colab"
    words = pip_arguments(block["args"], Path("<repo>"))
    assert words[:4] == ["<python>", "-m", "pip", "install"], (
        f"{chapter.name}: expected [sys.executable, '-m', 'pip', 'install', ...], got {words}"
    )
    assert "<repo>" in words, f"{chapter.name}: the command does not install f\"git+{{BOOK_REPOSITORY}}\": {words}"
    replacing = REPLACING_OPTIONS.intersection(w.split("=")[0] for w in words)
    assert not replacing, f"{chapter.name}: {sorted(replacing)} would replace Colab's own packages"


def test_every_chapter_has_the_same_colab_block() -> None:
    blocks = {p.name: colab_block(code_cells(p)[0]).get("segment") for p in CHAPTERS if code_cells(p)}
    distinct = set(blocks.values())
    assert len(distinct) == 1, "the Colab blocks differ between chapters:\n" + "\n\n".join(
        f"{name}:\n{segment}" for name, segment in blocks.items()
    )


VERSIONS = (
    "import importlib, json; "
    f"mods = {{m: importlib.import_module(m) for m in {PROTECTED!r}}}; "
    "print(json.dumps({m: [mod.__version__, mod.__file__] for m, mod in mods.items()}))"
)


def test_colab_install_command_in_a_fresh_venv(tmp_path: Path) -> None:
    """The chapter's pip command, on a local copy of the repository, in a venv that sees torch & co."""
    block = colab_block(code_cells(CHAPTERS[0])[0])
    assert "error" not in block, block.get("error")
    assert importlib.util.find_spec("setuptools"), "this test builds the package offline: pip install setuptools"
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".git", "_build", "build", "test-artifacts", ".pytest_cache", "__pycache__", "*.egg-info", ".venv*"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*args: str) -> str:
        proc = subprocess.run([str(python), *args], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    before = json.loads(run("-c", VERSIONS))
    words = pip_arguments(block["args"], repo)[1:]  # drop "<python>"
    # No network: no index, and the build backend (setuptools) comes from the system.
    run(*words, "--no-index", "--no-build-isolation")
    after = json.loads(run("-c", VERSIONS))
    assert after == before, f"installing book_utils changed {PROTECTED}: before {before}, after {after}"
    found = run("-c", "import book_utils, importlib.metadata as md; "
                      "print(book_utils.__file__); print(md.version('rnn-book-utils'))").split()
    assert Path(found[0]).resolve().is_relative_to(venv.resolve()), (
        f"book_utils was imported from {found[0]}, not from the venv {venv}"
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert found[1] == version, f"the venv has rnn-book-utils {found[1]}, pyproject.toml says {version}"


# Devices come from training.pick_device(); these would pin a chapter to CPU or CUDA.
# Asking which device was picked (`device.type == "cuda"`, e.g. to synchronise a timer) is fine.
DEVICE_QUESTION = re.compile(r"""\.type\s*[!=]=\s*['"](cpu|cuda)['"]""")
HARD_CODED_DEVICE = re.compile(
    r"""\.cuda\s*\("""
    r"""|device\s*=\s*['"](cpu|cuda)"""
    r"""|torch\.device\s*\(\s*['"](cpu|cuda)"""
    r"""|\.to\s*\(\s*['"](cpu|cuda)"""
    r"""|['"]cuda(:\d+)?['"]""",
)


def test_no_chapter_assumes_cpu_or_cuda(chapter: Path) -> None:
    cells = code_cells(chapter)
    hits = [f"cell {i}: {line.strip()}" for i, source in enumerate(cells)
            for line in source.splitlines()
            if HARD_CODED_DEVICE.search(DEVICE_QUESTION.sub("", line.split("#")[0]))]
    assert not hits, (
        f"{chapter.name} hard-codes a device; use `device = training.pick_device()`:\n" + "\n".join(hits)
    )
    assert any("pick_device(" in source for source in cells), f"{chapter.name} never calls training.pick_device()"
