"""requirements.txt on Python 3.9 and 3.10: the pins its environment markers select exist as wheels.

requirements.txt pins two sets: one for Python 3.11 and newer (CI's), one for 3.9 and 3.10 (Debian 11,
RHEL 9, Ubuntu 22.04), told apart by ``; python_version`` markers. CI runs 3.11 only, so a pin of the
older set that has no wheel for 3.9 or 3.10 would go unnoticed until a reader's install failed. Here
pip resolves each older set against the package index for that Python (``--python-version``,
``--only-binary=:all:``, a dry run), so such a pin fails.

The dry run reads only the wheels' metadata: pip's lazy wheels (``--use-feature=fast-deps``) fetch
it with HTTP range requests, where a plain dry run would download every wheel (torch and its CUDA
libraries: gigabytes). The pip that can do that without downloading at the end is newer than the
one a venv comes with, so the test runs pip PIP_WHEEL from its wheel (1.8 MB). Two limits of any
pip resolving for another Python: the markers of the dependencies' own requirements are judged for
the Python running pip (3.11 in CI), and nothing is installed; the install itself was proven on
Debian 11 by hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT

OLDER_PYTHONS = ("3.9", "3.10")
# A pip that a venv does not bring: 26.0.1 is the newest that still runs on Python 3.9.
PIP_WHEEL = "pip==26.0.1"
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
# Linux x86_64 with glibc 2.28 or newer (RHEL 8 and up; Debian 11 has 2.31): manylinux_2_28 and
# every older manylinux tag. pip needs each one named when it is told a --platform.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


# --isolated drops pip's configuration, its CA bundle too: trust what the machine trusts (its CA
# bundle, which holds a proxy's CA where one is installed), or $PIP_CERT; else pip's own.
CERT = next((["--cert", str(path)] for path in map(Path, [os.environ.get("PIP_CERT", ""),
             "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"])
             if str(path) != "." and path.is_file()), [])


def pins(python: str) -> dict[str, Requirement]:
    """The requirements requirements.txt selects on Python ``python`` (X.Y), by normalized name."""
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    selected: dict[str, Requirement] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            name = re.sub(r"[-_.]+", "-", requirement.name).lower()
            assert name not in selected, f"requirements.txt selects {name} twice on Python {python}"
            selected[name] = requirement
    return selected


def pinned_version(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not an exact pin"
    return specifier.version


# Pinned for 3.9 and 3.10 only: their venvs bring a setuptools too old for pyproject.toml's [project].
OLDER_ONLY = {"setuptools"}


@pytest.mark.parametrize("python", ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"])
def test_every_python_gets_one_exact_pin_of_each_package(python: str) -> None:
    newest = pins("3.11")
    selected = pins(python)
    extra = OLDER_ONLY if tuple(map(int, python.split("."))) < (3, 11) else set()
    assert set(selected) == set(newest) | extra, f"Python {python} and 3.11 install different packages"
    for name, requirement in selected.items():
        pinned_version(requirement)
        if tuple(map(int, python.split("."))) >= (3, 11):
            assert requirement == newest[name], f"Python {python} and 3.11 get different {name}"


def test_the_older_set_is_older_and_keeps_jupyter_book_1() -> None:
    older, newest = pins("3.9"), pins("3.11")
    assert pins("3.10") == older, "one set for 3.9 and 3.10"
    assert pinned_version(older["jupyter-book"]) == pinned_version(newest["jupyter-book"]) == "1.0.4.post1"
    for name in set(older) - OLDER_ONLY:
        assert Version(pinned_version(older[name])) <= Version(pinned_version(newest[name])), name


def test_the_pins_satisfy_pyproject() -> None:
    """requirements.txt installs book_utils (-e .): its loose dependencies hold for both sets."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.9"' in text
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
    assert block, "pyproject.toml has no dependencies list"
    for python in ("3.9", "3.11"):
        selected = pins(python)
        for quoted in re.findall(r'"([^"]+)"', block.group(1)):
            dependency = Requirement(quoted)
            version = pinned_version(selected[dependency.name.lower()])
            assert dependency.specifier.contains(version), f"{dependency} vs {version} on Python {python}"


def test_the_running_environment_has_its_pythons_pins() -> None:
    """What the scripts installed is the set requirements.txt selects for this Python."""
    python = "%d.%d" % sys.version_info[:2]
    for name, requirement in pins(python).items():
        try:
            installed = Version(metadata.version(requirement.name))
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed; pip install -r requirements.txt")
        # A local build (torch 2.13.0+cpu from PyTorch's CPU index) is the pinned release.
        assert installed.public == pinned_version(requirement), f"{name} {installed} vs {requirement}"


@pytest.fixture(scope="module")
def pip_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PIP_WHEEL, downloaded; skips when the index cannot be reached."""
    try:
        urllib.request.urlopen(f"{INDEX}/pip/", timeout=20).close()
    except (urllib.error.URLError, OSError) as error:
        pytest.skip(f"the package index {INDEX} cannot be reached ({error})")
    folder = tmp_path_factory.mktemp("pip")
    run = subprocess.run([sys.executable, "-m", "pip", "--isolated", *CERT, "--disable-pip-version-check", "download",
                          "-q", "--no-deps", "--only-binary=:all:", "--index-url", INDEX, "-d", str(folder),
                          PIP_WHEEL], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = folder.glob("pip-*.whl")
    return wheel


def dry_run(pip_wheel: Path, python: str, folder: Path, requirements: list[str]) -> subprocess.CompletedProcess:
    """pip's dry run of installing ``requirements`` on CPython ``python``, Linux x86_64, wheels only.

    --isolated: no pip configuration of this machine (a local wheel folder, a constraint file)
    steers it; the index is what a reader's pip sees.
    """
    listing = folder / f"requirements-{python}.txt"
    listing.write_text("\n".join(requirements) + "\n")
    command = [sys.executable, str(pip_wheel / "pip"), "--isolated", *CERT, "--disable-pip-version-check",
               "--no-cache-dir", "install", "--dry-run", "--ignore-installed", "--use-feature=fast-deps",
               "--target", str(folder / "target"), "--python-version", python, "--implementation", "cp",
               "--only-binary=:all:", *[f"--platform={p}" for p in PLATFORMS], "--index-url", INDEX,
               "--report", str(folder / f"report-{python}.json"), "-r", str(listing)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_older_pins_resolve_to_wheels_for_python_3_9_and_3_10(pip_wheel: Path, tmp_path: Path) -> None:
    # Without their markers: pip would judge them for the Python running it, not for --python-version.
    requirements = {python: [f"{r.name}=={pinned_version(r)}" for r in pins(python).values()]
                    for python in OLDER_PYTHONS}
    with ThreadPoolExecutor(len(OLDER_PYTHONS)) as pool:
        runs = dict(zip(OLDER_PYTHONS, pool.map(
            lambda python: dry_run(pip_wheel, python, tmp_path, requirements[python]), OLDER_PYTHONS)))
    for python, run in runs.items():
        assert run.returncode == 0, f"Python {python}:\n{(run.stdout + run.stderr)[-3000:]}"
        # Metadata only: a "Downloading x.whl" line would be a whole wheel, maybe gigabytes.
        assert "Downloading" not in run.stdout + run.stderr, run.stdout[-3000:]
        report = json.loads((tmp_path / f"report-{python}.json").read_text())
        resolved = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item for item in report["install"]}
        for name, requirement in pins(python).items():
            assert name in resolved, f"{name} is missing from pip's resolution for Python {python}"
            assert resolved[name]["metadata"]["version"] == pinned_version(requirement), name
            filename = resolved[name]["download_info"]["url"].rsplit("/", 1)[-1]
            assert filename.endswith(".whl"), f"{name} for Python {python} would install {filename}"


def test_a_pin_without_a_wheel_for_the_python_fails_the_dry_run(pip_wheel: Path, tmp_path: Path) -> None:
    """The check can fail: the 3.11 set's numpy has no wheel for Python 3.9."""
    run = dry_run(pip_wheel, "3.9", tmp_path, [f"numpy=={pinned_version(pins('3.11')['numpy'])}"])
    assert run.returncode != 0
    assert "No matching distribution found for numpy" in run.stderr, run.stderr[-2000:]
