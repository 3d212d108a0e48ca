"""Execute each chapter in a fresh kernel and print how long it takes.

    python benchmarks/chapter_times.py                 # every chapter
    python benchmarks/chapter_times.py chapters/01_*.ipynb --cells 5

Prints one row per chapter (total seconds, target 90 s on the 2-core reference
machine) and, with --cells N, the N slowest cells of each chapter.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TARGET_SECONDS = 90.0


def run(path: Path) -> tuple[float, list[tuple[float, int, str]]]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    timings: list[tuple[float, int, str]] = []
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, index)
            first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            timings.append((time.perf_counter() - t0, index, first_line[:60]))
    return time.perf_counter() - start, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    parser.add_argument("--cells", type=int, default=0, help="also list the N slowest cells")
    args = parser.parse_args()
    paths = [Path(p) for p in (args.notebooks or sorted(glob.glob("chapters/*.ipynb")))]
    rows = []
    for path in paths:
        total, timings = run(path)
        rows.append((path.name, total))
        if args.cells:
            print(f"\n{path.name}: slowest cells")
            for seconds, index, line in sorted(timings, reverse=True)[: args.cells]:
                print(f"  {seconds:7.1f} s  cell {index:>3}  {line}")
    print(f"\n{'chapter':<34} {'seconds':>8} {'target':>7}  verdict")
    for name, total in rows:
        verdict = "ok" if total <= TARGET_SECONDS else "SLOW"
        print(f"{name:<34} {total:8.1f} {TARGET_SECONDS:7.0f}  {verdict}")


if __name__ == "__main__":
    main()
