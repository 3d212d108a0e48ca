"""Run the chapters on the full-size MNIST road, offline, and print seconds and peak memory.

    python benchmarks/full_data.py                       # every chapter
    python benchmarks/full_data.py chapters/03_*.ipynb   # some of them

With a network (Colab, a CI) the chapters load the official 60,000 + 10,000
digits instead of the embedded 5,000. This measures that road without one: it
writes full-size official-format files (``scripts/make_fake_mnist.py``) into a
temporary folder and points the chapters' kernels at them through the loader's
checksum hook, with these variables, which every kernel inherits:

    RNN_BOOK_DATA=<temp>  RNN_BOOK_MNIST_CHECKSUMS=<temp>/fake-checksums.json
    RNN_BOOK_OFFLINE=1    RNN_BOOK_STRICT=1   (no fallback: a chapter that misses the files fails)

Each chapter runs in a fresh kernel, started by a child process of this script;
its peak memory is the largest resident set among the processes that child
waited for: the kernel and anything the kernel started and waited for
(``getrusage(RUSAGE_CHILDREN)``). Targets on the 2-core reference machine:
135 s and 2 GiB per chapter. On a busy machine run it under ``flock``.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 135.0
TARGET_GIB = 2.0


def run_one(path: Path) -> dict:
    """Execute one notebook in a fresh kernel; time it and read the kernel's peak memory."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    error = ""
    start = time.perf_counter()
    try:
        client.execute()  # starts the kernel, runs every cell, shuts the kernel down and reaps it
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB
    data_lines = [line for cell in nb.cells for out in cell.get("outputs", [])
                  if out.get("name") == "stdout" for line in out.get("text", "").splitlines()
                  if line.startswith("MNIST:")]
    return {"seconds": seconds, "peak_bytes": peak_bytes, "error": error,
            "data": data_lines[0] if data_lines else ""}


def fake_mnist(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_fake_mnist",
                                                  ROOT / "scripts" / "make_fake_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_fake_mnist(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one chapter, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one))))
        return

    paths = [Path(p) for p in (args.notebooks or sorted(glob.glob(str(ROOT / "chapters" / "*.ipynb"))))]
    with tempfile.TemporaryDirectory(prefix="full-mnist-") as folder:
        start = time.perf_counter()
        checksums = fake_mnist(Path(folder))
        print(f"full-size files written in {time.perf_counter() - start:.1f} s to {folder}")
        env = dict(os.environ, RNN_BOOK_DATA=folder, RNN_BOOK_MNIST_CHECKSUMS=str(checksums),
                   RNN_BOOK_OFFLINE="1", RNN_BOOK_STRICT="1")
        rows = []
        for path in paths:
            child = subprocess.run([sys.executable, __file__, "--one", str(path.resolve())],
                                   env=env, capture_output=True, text=True)
            if child.returncode != 0:
                rows.append((path.name, {"error": child.stderr.strip().splitlines()[-1]}))
                continue
            rows.append((path.name, json.loads(child.stdout.strip().splitlines()[-1])))

    print(f"\n{'chapter':<30} {'seconds':>8} {'peak GiB':>9}  verdict (targets {TARGET_SECONDS:.0f} s, "
          f"{TARGET_GIB:.0f} GiB)")
    for name, row in rows:
        if "seconds" not in row:
            print(f"{name:<30} {'-':>8} {'-':>9}  FAILED: {row['error']}")
            continue
        gib = row["peak_bytes"] / 2**30
        verdict = "ok" if row["seconds"] <= TARGET_SECONDS and gib <= TARGET_GIB else "OVER"
        if row["error"]:
            verdict = f"FAILED: {row['error']}"
        print(f"{name:<30} {row['seconds']:8.1f} {gib:9.2f}  {verdict}")
    for line in sorted({row.get("data", "") for _, row in rows} - {""}):
        print(f"data seen by the chapters: {line}")


if __name__ == "__main__":
    main()
