"""Chapter 1's MNIST-row classifier: what each part of its recipe is worth, and its test score.

    python benchmarks/mnist_rnn.py --part ablation     # validation split only (about 25 min on one core)
    python benchmarks/mnist_rnn.py --part test         # the recipe's one look at the test split
    python benchmarks/mnist_rnn.py --part twins        # scratch RNN against nn.RNN, same weights

--part ablation trains nn.RNN (128 units) by the recipe of ``recurrent_neurons.RECIPE`` and
by each of its ``VARIANTS``: the recipe with one part removed (shifts, orthogonal W_hh, the
one-cycle schedule, clipping, RMSProp), and with all of them removed. Each variant picks its
own learning rate from ``LR_GRID`` by its mean validation accuracy over the --select-seeds
(rows with role "selection"), then runs the --seeds at that rate (role "evidence"): fresh
seeds that played no part in choosing the rate, and the only runs the chapter concludes from.
Every run is scored on the validation split (and on the unshifted training digits, for the
gap); the test split is not touched. Rows go to book_utils/results/mnist_rnn_ablation.json.

--part test refits the recipe on training + validation digits, once per seed, and scores the
test split. Rows go to book_utils/results/mnist_rnn_test.json.

--part twins trains the scratch RNN and nn.RNN from the same weights on the same minibatches
and prints their validation accuracies and times (target: scratch <= 3x nn.RNN's time).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from book_utils import data, results, session, training
from book_utils.recurrent_neurons import LR_GRID, RECIPE, VARIANTS, make_mnist_rnn, train_mnist_rnn

SOURCES = [
    "benchmarks/mnist_rnn.py",
    "book_utils.recurrent_neurons.RECIPE",
    "book_utils.recurrent_neurons.VARIANTS",
    "book_utils.recurrent_neurons.LR_GRID",
    "book_utils.recurrent_neurons.make_mnist_rnn",
    "book_utils.recurrent_neurons.train_mnist_rnn",
    "book_utils.models.make_classifier",
    "book_utils.data.load_mnist",
    "book_utils.data.standardize",
    "book_utils.data.mnist_loader",
    "book_utils.data.RandomShifts",
    "book_utils.data.shift_images",
    "book_utils.training.make_optimizer",
    "book_utils.training.fit",
    "book_utils.training.update",
]
# The ablation's seeds: the first choose each variant's rate, the others report at that rate.
SELECTION_SEEDS, EVIDENCE_SEEDS = [0, 1, 2], [3, 4, 5, 6, 7]
TEST_SEEDS = [0, 1, 2, 3, 4]


def run(split: data.MNIST, recipe: dict, seed: int, train_digits) -> dict:
    """Train nn.RNN by ``recipe`` with ``seed``; its validation and (unshifted) training accuracy."""
    session.seed_everything(seed)
    model = make_mnist_rnn("rnn", recipe)
    history = train_mnist_rnn(model, split, recipe, seed=seed)
    return {"val": history["val_accuracy"][-1],
            "train": training.evaluate(model, train_digits)["accuracy"],
            "seconds": sum(history["seconds"])}


def ablation(inputs: data.MNIST, select: list[int], seeds: list[int],
             names: list[str]) -> list[dict]:
    train_digits = data.mnist_loader(inputs, "train", batch_size=500)
    rows = []
    print(f"{'variant':<24} {'lr':>7} {'seed':>4} {'validation':>10} {'training':>9} {'s':>6}")
    for name in names:
        def record(lr: float, seed: int, role: str) -> dict:
            row = {"variant": name, "lr": lr, "seed": seed, "role": role,
                   **run(inputs, {**RECIPE, **VARIANTS[name], "lr": lr}, seed, train_digits)}
            print(f"{name:<24} {lr:7.0e} {seed:>4} {row['val']:10.2%} {row['train']:9.2%} "
                  f"{row['seconds']:6.1f}", flush=True)
            rows.append(row)
            return row

        scores = {lr: statistics.fmean(record(lr, s, "selection")["val"] for s in select)
                  for lr in LR_GRID}
        chosen = max(LR_GRID, key=lambda lr: scores[lr])   # ties: the first, the smallest rate
        for seed in seeds:                                  # fresh seeds, at the chosen rate
            record(chosen, seed, "evidence")
        for row in rows:
            if row["variant"] == name:
                row["chosen"] = row["lr"] == chosen
    return rows


def test_part(inputs: data.MNIST, seeds: list[int]) -> list[dict]:
    test_loader = data.mnist_loader(inputs, "test", batch_size=500)
    final_split = inputs.for_final_training()
    rows = []
    for seed in seeds:
        session.seed_everything(seed)
        model = make_mnist_rnn("rnn", RECIPE)
        history = train_mnist_rnn(model, final_split, RECIPE, seed=seed)
        test = training.evaluate(model, test_loader)["accuracy"]      # the one look at test
        rows.append({"seed": seed, "test": test, "seconds": sum(history["seconds"])})
        print(f"seed {seed}: test accuracy {test:.2%} ({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def twins(inputs: data.MNIST, seeds: list[int]) -> None:
    seconds = {"scratch_rnn": 0.0, "rnn": 0.0}
    for seed in seeds:
        session.seed_everything(seed)
        scratch, reference = make_mnist_rnn("scratch_rnn"), make_mnist_rnn("rnn")
        scratch.recurrent.cell.copy_to(reference.recurrent)
        reference.head.load_state_dict(scratch.head.state_dict())
        for kind, model in (("scratch_rnn", scratch), ("rnn", reference)):
            history = train_mnist_rnn(model, inputs, seed=seed)
            seconds[kind] += sum(history["seconds"])
            print(f"seed {seed} {kind:<12} validation {history['val_accuracy'][-1]:.2%} "
                  f"{sum(history['seconds']):.1f} s", flush=True)
    print(f"scratch / nn.RNN training time: {seconds['scratch_rnn'] / seconds['rnn']:.2f}x "
          "(target <= 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("ablation", "test", "twins"), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help=f"the runs to report (default {EVIDENCE_SEEDS} for the ablation, "
                             f"{TEST_SEEDS} for the test)")
    parser.add_argument("--select-seeds", type=int, nargs="+", default=SELECTION_SEEDS,
                        help="ablation: the seeds that choose each variant's rate")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--no-save", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    torch.set_num_threads(1)   # as in the chapters

    mnist = data.load_mnist(validation_fraction=0.125, device="cpu")
    inputs = data.standardize(mnist)
    print(f"torch {torch.__version__}, 1 thread; {mnist.describe()}\n", flush=True)
    start = time.perf_counter()
    if args.part == "ablation":
        seeds = args.seeds or EVIDENCE_SEEDS
        rows = ablation(inputs, args.select_seeds, seeds, args.variants)
        full = (seeds, args.select_seeds, args.variants) == (EVIDENCE_SEEDS, SELECTION_SEEDS,
                                                              list(VARIANTS))
        if full and not args.no_save:
            results.save("mnist_rnn_ablation", rows, sources=SOURCES,
                         command="python benchmarks/mnist_rnn.py --part ablation",
                         notes=f"{mnist.describe()}; validation accuracy after the last epoch")
    elif args.part == "test":
        seeds = args.seeds or TEST_SEEDS
        rows = test_part(inputs, seeds)
        print(f"mean test accuracy {statistics.fmean(r['test'] for r in rows):.2%} "
              f"over seeds {seeds}")
        if seeds == TEST_SEEDS and not args.no_save:
            results.save("mnist_rnn_test", rows, sources=SOURCES,
                         command="python benchmarks/mnist_rnn.py --part test",
                         notes=f"{mnist.describe()}; refit on training + validation digits")
    else:
        twins(inputs, args.seeds or TEST_SEEDS)
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
