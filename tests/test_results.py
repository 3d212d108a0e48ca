"""The committed results files: each still matches the code that wrote it, and holds enough seeds.

A chapter that states "A beats B" from runs too long for the chapter reads them from
``book_utils/results/NAME.json`` (written by a ``benchmarks/`` script through
:func:`book_utils.results.save`). These tests fail when the code named in a file's ``sources``
has changed since the file was written, and name the command that regenerates it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from book_utils import results

FILES = sorted(results.RESULTS.glob("*.json"))
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_results_file_matches_the_code_that_wrote_it(path: Path) -> None:
    record = json.loads(path.read_text())
    assert record["name"] == path.stem
    assert results.is_current(record), (
        f"{path.name} was written by code that has changed since (sources: {record['sources']}); "
        f"rerun: {record['command']}"
    )


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_results_file_has_at_least_five_seeds_and_a_command(path: Path) -> None:
    record = json.loads(path.read_text())
    seeds = {row[record["seed_key"]] for row in record["rows"]}
    assert len(seeds) >= results.MIN_SEEDS, f"{path.name}: {len(seeds)} seeds, need {results.MIN_SEEDS}"
    script = record["command"].split()[1] if record["command"].startswith("python ") else None
    assert script and (ROOT / script).is_file(), f"{path.name}: command {record['command']!r} names no script"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_results_file_is_read_by_a_chapter(path: Path) -> None:
    text = "".join(p.read_text() for p in sorted((ROOT / "chapters").glob("*.ipynb")))
    assert f'"{path.stem}"' in text or f"'{path.stem}'" in text or f'\\"{path.stem}\\"' in text, (
        f"{path.name} is read by no chapter (results.load({path.stem!r}))")


def test_fingerprint_changes_with_the_code(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(results, "ROOT", tmp_path)
    (tmp_path / "bench").mkdir()
    script = tmp_path / "bench" / "run.py"
    script.write_text("LR = 0.01\n")
    before = results.fingerprint(["bench/run.py", "book_utils.results.summarize"])
    assert before == results.fingerprint(["bench/run.py", "book_utils.results.summarize"])
    script.write_text("LR = 0.02\n")
    assert results.fingerprint(["bench/run.py", "book_utils.results.summarize"]) != before


def test_save_load_roundtrip_and_summary(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    rows = [{"seed": s, "model": m, "acc": 0.5 + 0.1 * s} for m in ("a", "b") for s in range(5)]
    path = results.save("demo", rows, sources=["book_utils.results.summarize"],
                        command="python benchmarks/demo.py")
    assert path == tmp_path / "demo.json"
    record = results.load("demo")
    assert record["rows"] == rows and results.is_current(record)
    table = results.summarize(record["rows"], by="model", value="acc")
    assert [t["model"] for t in table] == ["a", "b"]
    assert table[0]["n"] == 5 and table[0]["mean"] == pytest.approx(0.7)
    assert table[0]["min"] == pytest.approx(0.5) and table[0]["max"] == pytest.approx(0.9)


@pytest.mark.parametrize("bad, error", [
    (dict(rows=[]), ValueError), (dict(rows=[{"acc": 1.0}]), ValueError),
    (dict(rows=[{"seed": 0, "acc": float("nan")}]), ValueError), (dict(rows="x"), TypeError),
    (dict(name="../x"), ValueError), (dict(sources=[]), ValueError),
    (dict(sources=["book_utils.results.nothing_here"]), ValueError),
    (dict(sources=["no/such/file.py"]), ValueError),
])
def test_save_refuses_bad_records(tmp_path, monkeypatch, bad, error) -> None:
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    args = dict(name="demo", rows=[{"seed": 0, "acc": 1.0}],
                sources=["book_utils.results.summarize"], command="python benchmarks/x.py")
    args.update(bad)
    with pytest.raises(error):
        results.save(args.pop("name"), args.pop("rows"), **args)


def test_load_names_the_known_files() -> None:
    with pytest.raises(ValueError, match="no results named"):
        results.load("no_such_results")
