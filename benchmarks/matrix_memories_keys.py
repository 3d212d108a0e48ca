"""Chapter 8's control for the recall comparison: the additive rule inside DeltaNet's layer.

    python benchmarks/matrix_memories_keys.py              # writes matrix_memories_keys
    python benchmarks/matrix_memories_keys.py --seeds 0    # try one seed first (no file)

In matrix_memories_mqar, linear attention and DeltaNet differ in more than their update rule:
linear attention reads and writes with the feature maps elu + 1 of q_t and k_t (positive
entries, so its keys overlap), DeltaNet with unit-length q_t and k_t and a write strength
beta_t. This control trains DeltaNet's layer with the additive rule S_t = S_{t-1} + beta_t
k_t^T v_t (matrix_memories.UnitKeyAdditiveMemory): the same projection, the same initial
weights as each seed's DeltaNet, the same training stream, and MQAR's protocol
(matrix_memories.MQAR_RECIPE): one run per learning rate of the grid, the run with the best
validation accuracy (then the lowest validation loss) kept, and only that run scores the test
split, once. Only the update rule differs from DeltaNet.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from book_utils import matrix_memories as M
from book_utils import results

SEEDS = [0, 1, 2, 3, 4]
NAME = "additive rule, DeltaNet's keys"
SCRIPT = "benchmarks/matrix_memories_keys.py"
SOURCES = [SCRIPT] + [f"book_utils.matrix_memories.{name}" for name in (
    "UnitKeyAdditiveMemory", "train_model", "accuracies", "held_out", "task_batch",
    "mqar_batch", "make_model", "_held_out_loss", "TaskModel", "MatrixMemory", "token_shift",
    "SPLIT_SEEDS", "MQAR_RECIPE", "MQAR_MODELS")]


def control_model(seed: int) -> M.TaskModel:
    """Seed ``seed``'s DeltaNet for MQAR, its layer's update rule made additive."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = M.make_model("mqar", "DeltaNet")
    recipe = M.MQAR_RECIPE
    layer = M.UnitKeyAdditiveMemory(2 * recipe["d_model"], recipe["d_key"])
    layer.load_state_dict(model.mixer.state_dict())     # DeltaNet's initial weights
    model.mixer = layer
    return model


def select_and_test(seed: int) -> list[dict]:
    """Train at every learning rate, keep the best on validation, score it on the test split."""
    runs = {}
    for lr in M.MQAR_RECIPE["lrs"]:
        runs[lr] = M.train_model("mqar", control_model(seed), lr=lr, seed=seed)
        print(f"  {NAME} seed {seed} lr {lr:g}: validation {runs[lr]['validation']:.3f}"
              f"{' (diverged)' if runs[lr]['diverged'] else ''} "
              f"({runs[lr]['seconds']:.1f} s)", flush=True)
    lr = max(runs, key=lambda r: (runs[r]["validation"], -runs[r]["validation_loss"]))
    run = runs[lr]
    if run["diverged"]:       # every rate diverged: no accuracy to measure, scored as 0
        test = dict.fromkeys(M.MQAR_RECIPE["test_pairs"], 0.0)
    else:
        test = M.accuracies("mqar", run["model"], "test")
    return [{"seed": seed, "model": NAME, "pairs": n, "accuracy": accuracy, "lr": lr,
             "diverged": run["diverged"], "validation": run["validation"],
             "parameters": run["parameters"], "state_floats": run["state_floats"],
             "seconds": round(run["seconds"], 2),
             "lr_validation": {f"{r:g}": runs[r]["validation"] for r in runs}}
            for n, accuracy in test.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, rows = time.perf_counter(), []
    for seed in args.seeds:
        rows += select_and_test(seed)
    print(f"\n{NAME}: {time.perf_counter() - start:.0f} s")
    print(pd.DataFrame(rows).pivot_table(index="seed", columns="pairs", values="accuracy")
          .round(3).to_string())
    if sorted(args.seeds) != SEEDS:
        print(f"(not saved: matrix_memories_keys is written only for seeds {SEEDS})")
        return
    path = results.save("matrix_memories_keys", rows, sources=SOURCES,
                        command=f"python {SCRIPT}",
                        notes=f"torch {torch.__version__}, one CPU thread")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
