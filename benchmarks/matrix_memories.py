"""Chapter 8 benchmarks: recall and state tracking over five seeds, and the two forms' speed.

    python benchmarks/matrix_memories.py --part mqar               # writes matrix_memories_mqar
    python benchmarks/matrix_memories.py --part control            # needs the mqar results
    python benchmarks/matrix_memories.py --part parity             # writes matrix_memories_parity
    python benchmarks/matrix_memories.py --part timing             # prints a table only
    python benchmarks/matrix_memories.py --part mqar --seeds 0     # try one seed first (no file)

(a) mqar: multi-query associative recall (matrix_memories.MQAR_RECIPE). For every model of
    MQAR_MODELS and every seed, one run per learning rate of the recipe; the run with the best
    validation accuracy (then the lowest validation loss) is kept, and only that run scores
    the test split, once: accuracy on the queries for 4, 8, 12 and 16 pairs.
(b) control: is the equal-state LSTM's failure a matter of budget? The same LSTM, with each
    seed's chosen learning rate, trained four times longer; scored on the test split.
(c) parity: the same protocol on parity (PARITY_RECIPE, PARITY_MODELS): trained on strings of
    16 bits, validated on fresh 16-bit strings, tested on 256-bit strings, where each prefix
    of t bits is scored (t = 16, 32, 64, 128, 256).
(d) timing: DeltaNet's recurrent, chunkwise and fully parallel forms, one forward and backward
    pass, for T from 16 to 4,096 (median and range of five repeats).

With all five seeds (the default), (a) to (c) write their per-seed rows to
book_utils/results/ with book_utils.results.save; chapter 8 reads them.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from book_utils import results
from book_utils import matrix_memories as M

SEEDS = [0, 1, 2, 3, 4]
CONTROL_FACTOR = 4
SCRIPT = "benchmarks/matrix_memories.py"
SOURCES = [SCRIPT] + [f"book_utils.matrix_memories.{name}" for name in (
    "train_task", "accuracies", "held_out", "task_batch", "make_model", "_held_out_loss",
    "TaskModel", "MatrixMemory", "token_shift", "delta_rule_chunkwise", "_blocks",
    "linear_attention_parallel", "softmax_attention", "elu_plus_one", "SPLIT_SEEDS")]
TASK_SOURCES = {
    "mqar": SOURCES + [f"book_utils.matrix_memories.{name}" for name in (
        "mqar_batch", "MQAR_RECIPE", "MQAR_MODELS")],
    "parity": SOURCES + [f"book_utils.matrix_memories.{name}" for name in (
        "parity_batch", "PARITY_RECIPE", "PARITY_MODELS")],
}


def select_and_test(task: str, name: str, seed: int) -> list[dict]:
    """Train at every learning rate, keep the best on validation, score it on the test split."""
    recipe, _ = M.TASKS[task]
    runs = {}
    for lr in recipe["lrs"]:
        runs[lr] = M.train_task(task, name, lr=lr, seed=seed)
        print(f"  {name:<26} seed {seed} lr {lr:g}: validation {runs[lr]['validation']:.3f}"
              f"{' (diverged)' if runs[lr]['diverged'] else ''} "
              f"({runs[lr]['seconds']:.1f} s)", flush=True)
    lr = max(runs, key=lambda r: (runs[r]["validation"], -runs[r]["validation_loss"]))
    run = runs[lr]
    column = "pairs" if task == "mqar" else "length"
    if run["diverged"]:       # every rate diverged: no accuracy to measure, scored as 0
        keys = recipe["test_pairs"] if task == "mqar" else recipe["test_positions"]
        test = dict.fromkeys(keys, 0.0)
    else:
        test = M.accuracies(task, run["model"], "test")
    return [{"seed": seed, "model": name, column: key, "accuracy": accuracy, "lr": lr,
             "diverged": run["diverged"], "validation": run["validation"],
             "parameters": run["parameters"],
             "state_floats": run["state_floats"], "seconds": round(run["seconds"], 2),
             "lr_validation": {f"{r:g}": runs[r]["validation"] for r in runs}}
            for key, accuracy in test.items()]


def show(rows: list[dict], column: str) -> None:
    table = pd.DataFrame(rows).pivot_table(index=["model", "seed"], columns=column,
                                           values="accuracy", sort=False)
    print(table.round(3).to_string())
    summary = results.summarize(rows, by=["model", column], value="accuracy")
    print(pd.DataFrame(summary).round(3).to_string(index=False))


def run_task(task: str, seeds: list[int], models: list[str]) -> None:
    rows = []
    start = time.perf_counter()
    for name in models:
        for seed in seeds:
            rows += select_and_test(task, name, seed)
    print(f"\n{task}: {time.perf_counter() - start:.0f} s")
    show(rows, "pairs" if task == "mqar" else "length")
    save(f"matrix_memories_{task}", rows, task, seeds, models)


def run_control(seeds: list[int]) -> None:
    name = "LSTM, equal state"
    chosen = {row["seed"]: row["lr"] for row in results.load("matrix_memories_mqar")["rows"]
              if row["model"] == name}
    steps = CONTROL_FACTOR * M.MQAR_RECIPE["steps"]
    rows = []
    for seed in seeds:
        run = M.train_task("mqar", name, lr=chosen[seed], seed=seed, steps=steps)
        print(f"  {name}, {steps} steps, seed {seed} lr {chosen[seed]:g}: validation "
              f"{run['validation']:.3f} ({run['seconds']:.1f} s)", flush=True)
        rows += [{"seed": seed, "model": f"{name}, {steps} steps", "pairs": n, "accuracy": a,
                  "lr": chosen[seed], "steps": steps, "validation": run["validation"],
                  "seconds": round(run["seconds"], 2)}
                 for n, a in M.accuracies("mqar", run["model"], "test").items()]
    show(rows, "pairs")
    save("matrix_memories_mqar_control", rows, "mqar", seeds, [name])


def save(name: str, rows: list[dict], task: str, seeds: list[int], models: list[str]) -> None:
    recipe_models = list(M.TASKS[task][1])
    if sorted(seeds) != SEEDS or (name != "matrix_memories_mqar_control"
                                  and models != recipe_models):
        print(f"(not saved: {name} is written only for seeds {SEEDS} and every model)")
        return
    part = {"matrix_memories_mqar": "mqar", "matrix_memories_parity": "parity",
            "matrix_memories_mqar_control": "control"}[name]
    path = results.save(name, rows, sources=TASK_SOURCES[task],
                        command=f"python {SCRIPT} --part {part}",
                        notes=f"torch {torch.__version__}, one CPU thread")
    print(f"wrote {path}")


def run_timing() -> None:
    rows = M.time_forms([16, 64, 256, 1024, 4096], repeats=5)
    medians = M.median_seconds(rows)
    table = pd.Series(medians).unstack().reindex(columns=list(M.FORMS))
    print((1000 * table).round(1).to_string())
    print("chunkwise (C = 64) faster than recurrent from T =",
          M.crossover(rows, "chunkwise, C = 64", "recurrent"))
    print("chunkwise (C = 64) faster than parallel from T =",
          M.crossover(rows, "chunkwise, C = 64", "parallel, C = T"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["mqar", "control", "parity", "timing"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names of the task's table (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part in ("mqar", "parity"):
        run_task(args.part, args.seeds, args.models or list(M.TASKS[args.part][1]))
    elif args.part == "control":
        run_control(args.seeds)
    else:
        run_timing()


if __name__ == "__main__":
    main()
