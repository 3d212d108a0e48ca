"""Results of runs too long for a chapter, kept in the repository with a fingerprint of their code.

A comparative sentence in the book rests on at least five seeds. When those runs do not fit in a
chapter's time, a script in ``benchmarks/`` runs them and writes their per-seed rows with
:func:`save` into ``book_utils/results/NAME.json`` (package data, so a chapter opened in Colab
reads the same file). The chapter reads them with :func:`load`, shows the table with
:func:`summarize` and prints the command that regenerates them.

Each file stores the *sources* its runs depended on: dotted names of ``book_utils`` objects
(functions, classes, recipe dicts) and repository paths of files (the benchmark script). Their
:func:`fingerprint` is stored beside the rows; ``tests/test_results.py`` recomputes it and fails
when any of that code has changed since the file was written, naming the command to rerun.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import inspect
import json
import math
import numbers
import platform
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from ._checks import check_type

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
MIN_SEEDS = 5


def _check_name(name: Any) -> str:
    check_type("name", name, str)
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be a non-empty file stem of letters, digits, '_' or '-', "
                         f"got {name!r}")
    return name


def _check_sources(sources: Any) -> None:
    """A non-empty list of str: repository paths and dotted names."""
    if isinstance(sources, str) or not isinstance(sources, Sequence):
        raise TypeError(f"sources must be a list of str, got {type(sources).__name__}")
    if not sources:
        raise ValueError("sources must name at least one file or object, got an empty list")
    odd = [s for s in sources if not isinstance(s, str) or not s]
    if odd:
        raise TypeError(f"sources must hold non-empty str only, got {odd[0]!r}")


def _object(dotted: str) -> Any:
    """The object a dotted name such as ``book_utils.lstm_gates.adding_run`` points to."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                raise ValueError(f"source {dotted!r} names nothing: {attribute!r} not found")
            obj = getattr(obj, attribute)
        return obj
    raise ValueError(f"source must name a file or an importable object, got {dotted!r}")


def source_text(source: str) -> str:
    """The text a source stands for: a file's contents, an object's source code or its repr.

    ``source`` is a repository path (``benchmarks/lstm.py``) when it contains a ``/``, and
    otherwise a dotted name of a ``book_utils`` object. A function or class contributes its
    source code (argument checks attached with ``@checked_by`` live elsewhere and do not count);
    any other object, such as a recipe dict, contributes its sorted JSON or its ``repr``.
    """
    check_type("source", source, str)
    if not source or source.startswith(".") or ".." in source.split("/"):
        raise ValueError(f"source must be a repository path or a dotted name, got {source!r}")
    if "/" in source:
        path = ROOT / source
        if not path.is_file():
            raise ValueError(f"source {source!r} is no file of the repository (looked in {ROOT})")
        return path.read_text()
    obj = _object(source)
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj):
        return inspect.getsource(obj)
    try:
        return json.dumps(obj, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(obj)


def fingerprint(sources: Sequence[str]) -> str:
    """A SHA-256 over the texts of ``sources`` (see :func:`source_text`), in the order given."""
    _check_sources(sources)
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.encode() + b"\0" + source_text(source).encode() + b"\0")
    return digest.hexdigest()


def save(name: str, rows: list[dict], *, sources: Sequence[str], command: str,
         seed_key: str = "seed", notes: str = "") -> Path:
    """Write ``rows`` (one dict per run, each with a ``seed``) to ``book_utils/results/NAME.json``.

    ``command`` is the shell command that regenerates the file, shown by the chapter and by a
    failing fingerprint test. Every value must be JSON-serialisable and every float finite.
    """
    _check_name(name)
    _check_sources(sources)
    check_type("command", command, str)
    check_type("notes", notes, str)
    check_type("seed_key", seed_key, str)
    check_type("rows", rows, list)
    if not rows or not all(isinstance(row, dict) for row in rows):
        got = next((type(row).__name__ for row in rows if not isinstance(row, dict)), "[]")
        raise ValueError(f"rows must be a non-empty list of dicts, one per run, got {got}")
    missing = [i for i, row in enumerate(rows) if seed_key not in row]
    if missing:
        raise ValueError(f"every row needs a seed_key={seed_key!r} entry, got rows {missing[:5]} "
                         "without one")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"row value {key}={value} is not finite: store a diverged run "
                                 "as a flag and a finite number, not as NaN or inf")
    record = {
        "name": name,
        "command": command,
        "notes": notes,
        "sources": list(sources),
        "fingerprint": fingerprint(sources),
        "seed_key": seed_key,
        "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    return path


def load(name: str) -> dict:
    """The record :func:`save` wrote: ``rows``, ``command``, ``sources``, ``fingerprint``, ..."""
    path = RESULTS / f"{_check_name(name)}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RESULTS.glob("*.json"))
        raise ValueError(f"no results named {name!r}; known: {known}")
    return json.loads(path.read_text())


def is_current(record: dict) -> bool:
    """Whether the code named in ``record['sources']`` is still the code that wrote it."""
    check_type("record", record, dict)
    if not isinstance(record.get("fingerprint"), str) or "sources" not in record:
        raise ValueError(f"record must be what load() returns, with 'sources' and "
                         f"'fingerprint', got keys {sorted(map(str, record))}")
    return fingerprint(record["sources"]) == record["fingerprint"]


def summarize(rows: Iterable[dict], by: Sequence[str], value: str) -> list[dict]:
    """Mean, standard deviation, minimum, maximum and count of ``value`` per group of ``by``.

    Groups keep the order in which they first appear in ``rows``. The standard deviation is
    the sample one (0.0 for a single run).
    """
    if isinstance(by, str):
        by = [by]
    if not isinstance(by, Sequence) or not all(isinstance(key, str) for key in by):
        raise TypeError(f"by must be a str or a list of str, got {by!r}")
    check_type("value", value, str)
    if isinstance(rows, (str, dict)) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one run, got none")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"rows must hold dicts, got {type(row).__name__} at {i}")
        missing = [key for key in (*by, value) if key not in row]
        if missing:
            raise ValueError(f"rows[{i}] must have the keys by={list(by)} and value={value!r}, "
                             f"got keys {sorted(row)}")
        if isinstance(row[value], bool) or not isinstance(row[value], numbers.Real):
            raise TypeError(f"rows[{i}][{value!r}] must be a number, got "
                            f"{type(row[value]).__name__}")
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(float(row[value]))
    return [
        {**dict(zip(by, key)), "mean": statistics.fmean(values),
         "std": statistics.stdev(values) if len(values) > 1 else 0.0,
         "min": min(values), "max": max(values), "n": len(values)}
        for key, values in groups.items()
    ]
