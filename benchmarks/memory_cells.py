"""Chapter 2's recall task over five seeds: is the long-lag failure one of capacity or of training?

    python benchmarks/memory_cells.py --part recall      # about 8 min on one core
    python benchmarks/memory_cells.py --part recall --seeds 0 --rates 0.003 --no-save   # a trial

For every lag and seed, the chapter's RNN (``memory_cells.RECALL``: H = 32, Adam, gradients
clipped) trains for --epochs epochs (64 steps each) at each rate of --rates, and its accuracy
on the validation and the test sequences is recorded after every epoch. Run seed s of lag k
seeds everything with 100 s + k, so seed 0 is the chapter's own run. Rows go to
book_utils/results/memory_cells_recall.json; the chapter picks, for each lag and training
length, the rate with the best mean validation accuracy (``memory_cells.best_rate_table``)
and shows the test accuracy of those runs.
"""

from __future__ import annotations

import argparse
import time

import torch

from book_utils import memory_cells, models, results, session
from book_utils.memory_cells import RECALL

SOURCES = [
    "benchmarks/memory_cells.py",
    "book_utils.memory_cells.RECALL",
    "book_utils.memory_cells.make_recall_task",
    "book_utils.memory_cells.train_recall",
    "book_utils.models.make_classifier",
    "book_utils.data.make_loader",
    "book_utils.training.fit",
    "book_utils.training.update",
    "book_utils.training.evaluate",
]
LAGS, SEEDS, RATES, EPOCHS = [1, 2, 4, 8, 16], [0, 1, 2, 3, 4], [1e-3, 3e-3, 1e-2, 3e-2], 30


def recall(lags: list[int], seeds: list[int], rates: list[float], epochs: int) -> list[dict]:
    rows = []
    print(f"{'lag':>3} {'lr':>7} {'seed':>4} | test accuracy after epochs 6, 12, 30 | s")
    for lag in lags:
        for lr in rates:
            for seed in seeds:
                session.seed_everything(100 * seed + lag)
                model = models.make_classifier("rnn", RECALL["n_symbols"], RECALL["hidden_size"],
                                               RECALL["n_symbols"])
                run = memory_cells.train_recall(model, lag, {**RECALL, "lr": lr, "epochs": epochs},
                                                seed=100 * seed + lag)
                rows.append({"seed": seed, "lag": lag, "lr": lr, **run})
                marks = [run["test"][e - 1] for e in (6, 12, epochs) if e <= epochs]
                print(f"{lag:>3} {lr:7.0e} {seed:>4} | "
                      + "  ".join(f"{m:6.1%}" for m in marks) + f" | {run['seconds']:.1f}",
                      flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("recall",), required=True)
    parser.add_argument("--lags", type=int, nargs="+", default=LAGS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--rates", type=float, nargs="+", default=RATES)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--no-save", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    torch.set_num_threads(1)   # as in the chapters
    start = time.perf_counter()
    rows = recall(args.lags, args.seeds, args.rates, args.epochs)
    full = (args.lags, args.seeds, args.rates, args.epochs) == (LAGS, SEEDS, RATES, EPOCHS)
    if full and not args.no_save:
        results.save("memory_cells_recall", rows, sources=SOURCES,
                     command="python benchmarks/memory_cells.py --part recall",
                     notes="test and validation accuracy after every epoch of 64 Adam steps")
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
