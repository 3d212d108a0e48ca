"""The Colab experience: every chapter installs the pinned release of book_utils under Colab, and only there.

The repository URL (``_config.yml``, ``repository.url``) and the release (``pyproject.toml``,
``version``; git tag ``v<version>``) live in one place each; ``scripts/pin_colab.py`` writes
``git+<url>@v<version>`` into every chapter's first code cell, whose Colab branch pip-installs
it. The install must leave Colab's torch, numpy and matplotlib alone. The venv test plays
Colab offline: a fresh virtual environment that sees this machine's torch, a stand-in
``google.colab`` module, and git told to fetch the repository URL from a local clone tagged at
the release; there the chapter's own first cells run, install the package and use it. No chapter
may pick its device by hand: ``book_utils.setup`` (``training.pick_device``) does.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import site as site_module
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.9 and 3.10: the same parser, as tomli (pytest installs it)
    import tomli as tomllib

import matplotlib
import nbformat
import pytest
import yaml

from conftest import CHAPTERS, ROOT
PIN_SCRIPT = ROOT / "scripts" / "pin_colab.py"
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
PINNED = f"git+{REPOSITORY}@v{VERSION}"
PROTECTED = ("torch", "numpy", "matplotlib")
# pip options that would replace packages Colab already has.
REPLACING_OPTIONS = {"-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed", "--upgrade-strategy"}
FIRST_CELLS = 3  # code cells of the chapter that the venv test runs


def load_pin_colab():
    spec = importlib.util.spec_from_file_location("pin_colab", PIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def colab_install(source: str) -> dict:
    """The Colab-only pip command of a cell as words, or an explanation of what is wrong."""
    tree = parse(source)
    guards = [n for n in tree.body if isinstance(n, ast.If) and is_colab_test(n.test)]
    if len(guards) != 1:
        return {"error": 'expected one top-level `if "google.colab" in sys.modules:`'}
    guard = guards[0]
    calls = [n for n in ast.walk(guard) if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.List)]
    if len(calls) != 1:
        return {"error": "the Colab branch should make exactly one subprocess call with an argument list"}
    # Names bound to strings before the call, e.g. PIN = "git+...": the command may use them.
    strings = {t.id: n.value.value for n in tree.body[: tree.body.index(guard)] + guard.body
               if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
               for t in n.targets if isinstance(t, ast.Name)}
    words = []
    for arg in calls[0].args[0].elts:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            words.append(arg.value)
        elif ast.unparse(arg) == "sys.executable":
            words.append("<python>")
        elif isinstance(arg, ast.Name) and arg.id in strings:
            words.append(strings[arg.id])
        else:
            return {"error": f"unexpected argument in the Colab install command: {ast.unparse(arg)}"}
    return {
        "words": words,
        "checked": any(k.arg == "check" and ast.unparse(k.value) == "True" for k in calls[0].keywords),
        "segment": ast.unparse(guard),
        "imports_before": [n for n in tree.body[: tree.body.index(guard)]
                           if isinstance(n, (ast.Import, ast.ImportFrom)) and "book_utils" in ast.unparse(n)],
    }


@pytest.fixture(scope="module", params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request) -> Path:
    return request.param



def test_first_code_cell_installs_the_pinned_release_under_colab(chapter: Path) -> None:
    cells = code_cells(chapter)
    assert cells, f"{chapter.name} has no code cell"
    block = colab_install(cells[0])
    assert "error" not in block, f"{chapter.name}, first code cell: {block.get('error')}"
    words = block["words"]
    assert words[:4] == ["<python>", "-m", "pip", "install"], (
        f"{chapter.name}: expected [sys.executable, '-m', 'pip', 'install', ...], got {words}"
    )
    requirements = [w for w in words if "git+" in w]
    assert requirements == [PINNED], (
        f"{chapter.name} installs {requirements}; _config.yml and pyproject.toml say {PINNED!r}. "
        "Run `python scripts/pin_colab.py`."
    )
    replacing = REPLACING_OPTIONS.intersection(w.split("=")[0] for w in words)
    assert not replacing, f"{chapter.name}: {sorted(replacing)} would replace Colab's own packages"
    assert block["checked"], f"{chapter.name}: the install should pass check=True, so a failed install stops"
    assert not block["imports_before"], f"{chapter.name} imports book_utils before installing it under Colab"


def test_every_chapter_has_the_same_colab_block() -> None:
    blocks = {p.name: colab_install(code_cells(p)[0]).get("segment") for p in CHAPTERS if code_cells(p)}
    assert len(set(blocks.values())) == 1, "the Colab blocks differ between chapters:\n" + "\n\n".join(
        f"{name}:\n{segment}" for name, segment in blocks.items()
    )


def test_pin_colab_check_passes_on_the_repository() -> None:
    proc = subprocess.run([sys.executable, str(PIN_SCRIPT), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def copy_book(tmp_path: Path) -> Path:
    """The files pin_colab.py reads and writes, in a throwaway repository root."""
    root = tmp_path / "book"
    shutil.copytree(ROOT / "chapters", root / "chapters", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("_config.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    return root


def pin_colab(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PIN_SCRIPT), "--root", str(root), *args],
                          capture_output=True, text=True)


def test_pin_colab_rewrites_every_chapter_from_the_config(tmp_path: Path) -> None:
    """A fork changes the URL, a release bumps the version: --check fails until the script runs."""
    root = copy_book(tmp_path)
    config = root / "_config.yml"
    config.write_text(config.read_text().replace(REPOSITORY, "https://github.com/a-teacher/rnn-course"))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{VERSION}"', 'version = "3.1.4"'))
    expected = "git+https://github.com/a-teacher/rnn-course@v3.1.4"
    before = {p.name: nbformat.read(p, as_version=4) for p in sorted((root / "chapters").glob("*.ipynb"))}

    check = pin_colab(root, "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    for name in before:
        assert f"{name} installs {PINNED}, expected {expected}" in check.stderr, check.stderr

    assert pin_colab(root).returncode == 0
    assert pin_colab(root, "--check").returncode == 0
    for name, old in before.items():
        new = nbformat.read(root / "chapters" / name, as_version=4)
        assert len(new.cells) == len(old.cells)
        changed = [i for i, (a, b) in enumerate(zip(old.cells, new.cells)) if a != b]
        first_code = next(i for i, c in enumerate(old.cells) if c.cell_type == "code")
        assert changed == [first_code], f"{name}: cells {changed} changed, expected only {first_code}"
        assert new.cells[first_code].source == old.cells[first_code].source.replace(PINNED, expected)

    snapshot = {p: p.read_bytes() for p in (root / "chapters").glob("*.ipynb")}
    again = pin_colab(root)
    assert again.returncode == 0 and "(0 changed)" in again.stdout, again.stdout + again.stderr
    assert {p: p.read_bytes() for p in snapshot} == snapshot, "a second run should change nothing"


def test_pin_colab_rejects_a_chapter_without_the_install(tmp_path: Path) -> None:
    root = copy_book(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import book_utils")])
    nbformat.write(nb, root / "chapters" / "99_no_colab.ipynb")
    for args in ((), ("--check",)):
        proc = pin_colab(root, *args)
        assert proc.returncode == 1
        assert "99_no_colab.ipynb: expected one quoted git+ requirement in the first code cell, found []" in proc.stderr


@pytest.mark.parametrize("field, bad, message", [
    ("url", "git@github.com:rnn-book/rnn-book", "expected repository.url to be an https:// URL"),
    ("version", "latest", "expected a release version like 0.2.0"),
])
def test_pinned_requirement_rejects_a_bad_config(tmp_path: Path, field: str, bad: str, message: str) -> None:
    root = copy_book(tmp_path)
    if field == "url":
        (root / "_config.yml").write_text((root / "_config.yml").read_text().replace(REPOSITORY, bad))
    else:
        (root / "pyproject.toml").write_text(
            (root / "pyproject.toml").read_text().replace(f'version = "{VERSION}"', f'version = "{bad}"'))
    with pytest.raises(ValueError, match=message):
        load_pin_colab().pinned_requirement(root)


VERSIONS = (
    "import importlib, json; "
    f"mods = {{m: importlib.import_module(m) for m in {PROTECTED!r}}}; "
    "print(json.dumps({m: [mod.__version__, mod.__file__] for m, mod in mods.items()}))"
)
# After the chapter's cells: where book_utils came from, and what pip recorded about it.
PROBE = """\
import importlib.metadata, json
dist = importlib.metadata.distribution("rnn-book-utils")
print(json.dumps({"file": book_utils.__file__, "version": dist.version,
                  "direct_url": json.loads(dist.read_text("direct_url.json") or "null")}))
"""
RUNNER = """\
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="colab-venv", timeout=240).execute()
nbformat.write(nb, sys.argv[1])
"""


def git(*args: str, cwd: Path, env: dict) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout.strip()


def test_colab_setup_installs_the_pinned_release_offline_and_runs(tmp_path: Path) -> None:
    """Colab, played offline: the chapter's own first cells install the tagged release and use it."""
    assert importlib.util.find_spec("setuptools"), "this test builds the package offline: pip install setuptools"
    chapter = CHAPTERS[0]
    tag = f"v{VERSION}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "GIT_", "PYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    # $HOME's own file too: git before 2.32 (Debian 11 has 2.30) ignores GIT_CONFIG_GLOBAL.
    gitconfig = tmp_path / "home" / ".gitconfig"
    env.update(
        HOME=str(tmp_path / "home"),
        MPLCONFIGDIR=matplotlib.get_configdir(),
        RNN_BOOK_OFFLINE="1",
        # git reads only our config, and may fetch from local paths only: no network.
        GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", GIT_ALLOW_PROTOCOL="file",
        GIT_TERMINAL_PROMPT="0",
        # pip: no config files, no index, and the build backend (setuptools) from the system.
        PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
    )
    (tmp_path / "home").mkdir()

    # The release: this working tree as it would be committed, tagged v<version>.
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(
        ".git", "_build", "build", "student", "test-artifacts", ".pytest_cache", "__pycache__", "*.egg-info",
        ".venv*", ".ipynb_checkpoints"))
    git("init", "-q", cwd=clone, env=env)
    git("add", "-A", cwd=clone, env=env)
    git("-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "release",
        cwd=clone, env=env)
    git("tag", tag, cwd=clone, env=env)
    commit = git("rev-parse", "HEAD", cwd=clone, env=env)
    # The chapter keeps its real URL; git fetches it from the clone.
    gitconfig.write_text(f'[url "{clone.as_uri()}"]\n\tinsteadOf = {REPOSITORY}\n')

    # A fresh venv that sees this machine's torch, numpy and matplotlib, like Colab's preinstalled ones.
    venv = tmp_path / "venv"
    # Those are the packages of the environment running the tests; `--system-site-packages` alone
    # would show the base interpreter's, which hold none of them when the tests run in a venv
    # (the README's commands use .venv).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_preinstalled.pth").write_text("\n".join(site_module.getsitepackages()) + "\n")
    kernel = tmp_path / "jupyter" / "kernels" / "colab-venv"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python"}))
    stand_in = tmp_path / "stand_in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text('"""Stand-in for Colab\'s runtime module: the chapters look for it."""\n')
    env.update(JUPYTER_PATH=str(tmp_path / "jupyter"), PYTHONPATH=str(tmp_path / "stand_in"))

    def run(*args: str) -> str:
        proc = subprocess.run([str(python), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    before = json.loads(run("-c", VERSIONS))
    first_cells = code_cells(chapter)[:FIRST_CELLS]
    cells = ["import google.colab  # Colab's runtime has imported it before the first cell runs",
             *first_cells, "import book_utils\n" + PROBE]
    notebook = tmp_path / chapter.name
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), notebook)
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(notebook)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{chapter.name}'s first cells failed in the Colab stand-in:\n{proc.stderr[-4000:]}"

    outputs = nbformat.read(notebook, as_version=4).cells[-1].outputs
    found = json.loads([o for o in outputs if o.get("name") == "stdout"][-1].text.strip().splitlines()[-1])
    assert Path(found["file"]).resolve().is_relative_to(venv.resolve()), (
        f"book_utils was imported from {found['file']}, not from the venv {venv}"
    )
    assert found["version"] == VERSION, f"the venv has rnn-book-utils {found['version']}, pyproject says {VERSION}"
    vcs = (found["direct_url"] or {}).get("vcs_info", {})
    assert found["direct_url"]["url"] == REPOSITORY, found["direct_url"]
    assert (vcs.get("requested_revision"), vcs.get("commit_id")) == (tag, commit), found["direct_url"]

    after = json.loads(run("-c", VERSIONS))
    assert after == before, f"installing book_utils changed {PROTECTED}: before {before}, after {after}"
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = sorted(p.name.split("-")[0] for p in site.glob("*.dist-info"))
    assert installed == ["rnn_book_utils"], f"the Colab install put {installed} into the venv"


# Devices come from book_utils.setup() / training.pick_device(); these would pin a chapter to CPU or CUDA.
# Asking which device was picked (`device.type == "cuda"`, e.g. to synchronise a timer) is fine.
DEVICE_QUESTION = re.compile(r"""\.type\s*[!=]=\s*['"](cpu|cuda)['"]""")
HARD_CODED_DEVICE = re.compile(
    r"""\.cuda\s*\("""
    r"""|device\s*=\s*['"](cpu|cuda)"""
    r"""|torch\.device\s*\(\s*['"](cpu|cuda)"""
    r"""|\.to\s*\(\s*['"](cpu|cuda)"""
    r"""|['"]cuda(:\d+)?['"]""",
)
PICKS_DEVICE = re.compile(r"\b(setup|pick_device)\(")


def test_no_chapter_assumes_cpu_or_cuda(chapter: Path) -> None:
    cells = code_cells(chapter)
    hits = [f"cell {i}: {line.strip()}" for i, source in enumerate(cells)
            for line in source.splitlines()
            if HARD_CODED_DEVICE.search(DEVICE_QUESTION.sub("", line.split("#")[0]))]
    assert not hits, (
        f"{chapter.name} hard-codes a device; use `device = book_utils.setup(...)`:\n" + "\n".join(hits)
    )
    assert any(PICKS_DEVICE.search(source) for source in cells), (
        f"{chapter.name} never calls book_utils.setup() or training.pick_device()"
    )
