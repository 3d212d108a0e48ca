"""Chapter 7's comparisons, over five seeds, and its scan measurements.

    python benchmarks/attention_and_scans.py --part reversal        # about 6 min on one core
    python benchmarks/attention_and_scans.py --part adding-recipe   # about 1 min
    python benchmarks/attention_and_scans.py --part adding          # about 6 min
    python benchmarks/attention_and_scans.py --part text            # about 3 min
    python benchmarks/attention_and_scans.py --part scans           # tables only, no file
    python benchmarks/attention_and_scans.py --part adding --seeds 2 --search-seeds 0 --no-save

Every comparison matches its models on parameters (the widths in ``attention_and_scans``) and
gives each model its own learning rate: each rate of ``LR_GRID`` (``ADDING_LR_GRID`` for the
adding problem) is tried with the search seeds and scored on the validation split only; the rate with the best mean validation score is then
trained with every final seed and scored once on the test split. The final seeds (2-6) are not
the search seeds (0 and 1), so no reported test score comes from a run that chose its rate. Each
part writes its per-seed rows,
search and final, to ``book_utils/results/attention_and_scans_<part>.json``, which the chapter
reads.

- ``reversal``: the digit reverser with no attention, with a bidirectional encoder and no
  attention (the control), and with attention; exact match on held-out strings of the trained
  lengths 3-8 and of the unseen lengths 9-12 (also per length).
- ``adding-recipe``: why chapter 7's first LSTM stayed at the baseline at T = 50 where chapter
  5's learned: the LSTM with 32 units under every combination of head start (mean or PyTorch's
  default), rate schedule (constant or cosine decay) and minibatches (fresh or redrawn from a
  fixed pool), 300 steps at rate 0.01, plus that first recipe itself (400 steps); validation MSE.
- ``adding``: minGRU, GRU and LSTM on the adding problem at T = 50 with chapter 5's recipe.
- ``text``: minGRU, GRU and LSTM on chapter 6's text, one pass, test bits per character.
- ``scans``: the scans' errors against a float64 loop, and the times of the loop, the
  Hillis-Steele scan and the log-space scan, on this machine (the chapter measures them too).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import pandas as pd
import torch

from book_utils import attention_and_scans as A
from book_utils import results, session, text, training

ADD_LSTM_WIDTH, ADD_LSTM_LR = 32, 1e-2                      # the two chapters' LSTM runs
FIRST_RECIPE = {"head_at_mean": False, "schedule": "cosine", "fresh": False, "train_steps": 400}
SOURCES = {
    "reversal": ["book_utils.attention_and_scans.reversal_splits",
                 "book_utils.attention_and_scans.train_reverser",
                 "book_utils.attention_and_scans.reversal_loss",
                 "book_utils.attention_and_scans.exact_match_by_length",
                 "book_utils.attention_and_scans.REVERSAL_RECIPE",
                 "book_utils.attention_and_scans.REVERSAL_WIDTHS",
                 "book_utils.attention_and_scans.BidirectionalEncoderDecoder",
                 "book_utils.attention_and_scans.AttentionEncoderDecoder",
                 "book_utils.attention_and_scans.additive_attention"],
    "adding": ["book_utils.attention_and_scans.ADDING_LR_GRID",
               "book_utils.attention_and_scans.train_adding",
               "book_utils.attention_and_scans.ADDING_RECIPE",
               "book_utils.attention_and_scans.ADDING_WIDTHS",
               "book_utils.attention_and_scans.chrono_init",
               "book_utils.attention_and_scans.MinGRU",
               "book_utils.attention_and_scans._LinearRecurrence",
               "book_utils.attention_and_scans.linear_recurrence_loop"],
    "text": ["book_utils.attention_and_scans.train_char_model",
             "book_utils.attention_and_scans.CharModel",
             "book_utils.attention_and_scans.TEXT_RECIPE",
             "book_utils.attention_and_scans.TEXT_WIDTHS",
             "book_utils.attention_and_scans.MinGRU",
             "book_utils.attention_and_scans._LinearRecurrence",
             "book_utils.attention_and_scans.linear_recurrence_loop"],
}
# The core code the runs call is fingerprinted too, so a change there marks the results stale.
TRAINING = ["book_utils.training.fit", "book_utils.training.update",
            "book_utils.training.evaluate", "book_utils.training.random_batches"]
ADDING_CORE = ["book_utils.data.adding_problem", "book_utils.training.make_optimizer",
               "book_utils.models.SequenceRegressor", "book_utils.models.make_recurrent",
               "book_utils.cells.chrono_time_scales", "book_utils.cells.gate_rows",
               "book_utils.cells.torch_parameters"]
SOURCES["reversal"] += ["book_utils.models.EncoderDecoder",
                        "book_utils.models.train_encoder_decoder",
                        "book_utils.models.decode_and_score", "book_utils.models.exact_match",
                        "book_utils.models.shift_right", "book_utils.data.reversal_pairs",
                        "book_utils.data.Vocabulary", "book_utils.data.length_mask",
                        "book_utils.training.masked_cross_entropy"] + TRAINING
SOURCES["adding"] += ADDING_CORE + TRAINING
SOURCES["text"] += ["book_utils.text.load_corpus", "book_utils.text.CharVocabulary",
                    "book_utils.text.stream_batches", "book_utils.text.bits_per_char",
                    "book_utils.training.make_optimizer",
                    "book_utils.models.make_recurrent"] + TRAINING
SOURCES["adding-recipe"] = ["book_utils.attention_and_scans.train_adding",
                            "book_utils.attention_and_scans.ADDING_RECIPE",
                            "book_utils.attention_and_scans.chrono_init"] + ADDING_CORE + TRAINING
COMMON = ["benchmarks/attention_and_scans.py", "book_utils.attention_and_scans.LR_GRID"]


def guarded(train, kind, lr, seed, final) -> dict:
    """A run whose loss stopped being finite is kept as a row that says so."""
    try:
        return {**train(kind, lr, seed, final), "diverged": False}
    except FloatingPointError as error:
        print(f"{kind}, rate {lr}, seed {seed}: {error}", flush=True)
        return {"seed": seed, "model": kind, "lr": lr, "diverged": True, "validation": None}


def search_then_test(kinds, train, *, search_seeds, seeds, grid=A.LR_GRID) -> list[dict]:
    """``train(kind, lr, seed, final)`` returns a row; final rows are scored on the test split.
    The rate with the lowest mean validation score wins; one diverged run rules a rate out."""
    rows = []
    for kind in kinds:
        search = [{"phase": "search", **guarded(train, kind, lr, seed, False)}
                  for lr in grid for seed in search_seeds]
        rows += search
        mean = {lr: statistics.fmean(r["validation"] if not r["diverged"] else float("inf")
                                     for r in search if r["lr"] == lr)
                for lr in grid}
        best = min(mean, key=mean.get)
        print(f"{kind}: validation by rate {({k: round(v, 4) for k, v in mean.items()})}, "
              f"chose {best}", flush=True)
        rows += [{"phase": "final", **guarded(train, kind, best, seed, True)} for seed in seeds]
    return rows


def reversal(args) -> list[dict]:
    splits = A.reversal_splits()

    def train(kind, lr, seed, final):
        run = A.train_reverser(kind, splits, lr=lr, seed=seed)
        row = {"seed": seed, "model": kind, "lr": lr, "parameters": run["parameters"],
               "seconds": run["seconds"],
               "validation": A.reversal_loss(run["model"], *splits["validation"])}
        if final:                                          # the test splits, once
            seen = A.exact_match_by_length(run["model"], *splits["test"])
            long = A.exact_match_by_length(run["model"], *splits["long"])
            row.update({"3-8": seen["all"], "9-12": long["all"],
                        **{n: long[n] for n in ("9", "10", "11", "12")}})
        print(row, flush=True)
        return row

    return search_then_test(A.REVERSERS, train, search_seeds=args.search_seeds, seeds=args.seeds)


def adding_recipe(args) -> list[dict]:
    rows = []
    grid = itertools.product((True, False), ("constant", "cosine"), (True, False))
    configs = [{"head_at_mean": h, "schedule": s, "fresh": f,
                "train_steps": A.ADDING_RECIPE["train_steps"]} for h, s, f in grid]
    for config, seed in itertools.product(configs + [FIRST_RECIPE], args.seeds):
        settings = {**A.ADDING_RECIPE, **config}
        run = A.train_adding("lstm", hidden_size=ADD_LSTM_WIDTH, lr=ADD_LSTM_LR, seed=seed,
                             **settings)
        rows.append({"seed": seed, "first recipe": config is FIRST_RECIPE, **config,
                     "validation": run["validation_mse"], "seconds": run["seconds"]})
        print(rows[-1], flush=True)
    return rows


def adding(args) -> list[dict]:
    def train(kind, lr, seed, final):
        run = A.train_adding(kind, hidden_size=A.ADDING_WIDTHS[kind], lr=lr, seed=seed,
                             test=final, **A.ADDING_RECIPE)
        row = {"seed": seed, "model": kind, "lr": lr, "parameters": run["parameters"],
               "seconds": run["seconds"], "validation": run["validation_mse"]}
        if final:                                          # the test sequences, once
            row["test"] = run["test_mse"]
        print(row, flush=True)
        return row

    return search_then_test(A.ADDING_WIDTHS, train, search_seeds=args.search_seeds,
                            seeds=args.seeds, grid=A.ADDING_LR_GRID)


def text_part(args) -> list[dict]:
    corpus, chars, r = text.load_corpus(), text.CharVocabulary(), A.TEXT_RECIPE
    windows = {split: text.stream_batches(chars.encode(getattr(corpus, split)), r["streams"],
                                          r["window"])
               for split in ("train", "validation", "test")}

    def train(kind, lr, seed, final):
        run = A.train_char_model(kind, windows["train"], windows["validation"],
                                 hidden_size=A.TEXT_WIDTHS[kind], epochs=r["epochs"], lr=lr,
                                 mode=r["mode"], seed=seed)
        row = {"seed": seed, "model": kind, "lr": lr, "parameters": run["parameters"],
               "seconds": run["seconds"], "validation": run["validation_bpc"]}
        if final:
            test = training.evaluate(run["model"], windows["test"], state="carry")
            row["test"] = text.bits_per_char(test["loss"])
        print(row, flush=True)
        return row

    return search_then_test(A.TEXT_WIDTHS, train, search_seeds=args.search_seeds,
                            seeds=args.seeds)


def scans(args) -> None:
    rows = []
    for T in (64, 256, 1024, 4096):
        g = torch.Generator().manual_seed(T)
        a = 0.01 + 0.98 * torch.rand(4, T, 16, generator=g, dtype=torch.float64)
        b = torch.randn(4, T, 16, generator=g, dtype=torch.float64)
        reference = A.linear_recurrence_loop(a, b)
        error = lambda h: A.max_relative_error(h.double(), reference)  # noqa: E731
        rows.append({"T": T, "Hillis-Steele, float32": error(A.hillis_steele_scan(a.float(),
                                                                                  b.float())),
                     "log-space, float32": error(A.parallel_scan(a.float(), b.float())),
                     "log-space, float32, chunk=64": error(A.parallel_scan(a.float(), b.float(),
                                                                          chunk=64))})
    print("Scans against a float64 loop, largest relative error\n")
    print(pd.DataFrame(rows).set_index("T").to_string(float_format=lambda e: f"{e:.1e}"), "\n")
    timed = A.time_scans([64, 256, 1024, 4096], repeats=3)
    print(f"Seconds per recurrence, best of 3 ({args.threads} CPU thread(s))\n")
    print(pd.DataFrame(timed).set_index("T").to_string(float_format=lambda s: f"{s:.2e}"))


PARTS = {"reversal": reversal, "adding-recipe": adding_recipe, "adding": adding,
         "text": text_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "scans"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="final seeds: 2-6, apart from the search seeds (adding-recipe, "
                             "which chooses nothing: 0-4)")
    parser.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="a trial: print, write nothing")
    args = parser.parse_args()
    if args.seeds is None:
        args.seeds = [0, 1, 2, 3, 4] if args.part == "adding-recipe" else [2, 3, 4, 5, 6]
    torch.set_num_threads(args.threads)
    session.seed_everything(0)
    if args.part == "scans":
        scans(args)
        return
    start = time.perf_counter()
    rows = PARTS[args.part](args)
    print(f"{args.part}: {time.perf_counter() - start:.0f} s")
    if not args.no_save:
        name = f"attention_and_scans_{args.part.replace('-', '_')}"
        notes = ("" if args.part == "adding-recipe" else
                 f"rates chosen with seeds {args.search_seeds} on validation; final seeds "
                 f"{args.seeds}, scored once on test")
        path = results.save(name, rows, sources=COMMON + SOURCES[args.part], notes=notes,
                            command=f"python benchmarks/attention_and_scans.py --part {args.part}")
        print("wrote", path)


if __name__ == "__main__":
    main()
