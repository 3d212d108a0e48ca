"""Chapter 6 benchmark: character language models over seeds, and the Kneser-Ney baseline.

    python benchmarks/language_model.py --part models          # about 20 min on one CPU thread
    python benchmarks/language_model.py --part models --smoke  # the same code, 3 updates, no file
    python benchmarks/language_model.py --part ngram           # Kneser-Ney orders 1-20 (2 GB)
    python benchmarks/language_model.py --part speed           # ms per update on this machine

(a) models, written to book_utils/results/language_model.json for the chapter. Every
    model has about RECIPE["parameters"] parameters (the axis they are matched on) and
    trains with the same recipe (language_model.RECIPE) for the same number of updates.
    1. search, on the validation text, with seed 0: Adam's peak rate for each model from
       LR_GRID; then the dropout rate of the 2-layer LSTM from DROPOUT_GRID at the
       2-layer LSTM's rate, and the rate of that dropout model from LR_GRID.
    2. compare: each model at its chosen rate (and dropout), seeds 0-4 (seed 0 is the
       search's run): validation bpc after every pass and at the end, bpc on the first
       characters of the training text (as many as the validation text has), the test
       text once, the measured seconds, and the share of known words in a sample at
       temperature 0.8. For the LSTM, the correlation of its units with the features of
       language_model.text_features on the test text, beside the same network untrained.
    3. reset: the LSTM at its rate on windows of RESET_WINDOW characters, trained carrying
       its state and resetting it, seeds 0-4; validation bpc with the state carried and
       reset at every window, and per position in the window.
(b) ngram: modified Kneser-Ney (text.KneserNey) at every order up to --max-order on the
    validation and test texts; no seeds (counting is deterministic).
(c) speed: median milliseconds per update of each model, measured here (one thread).
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from book_utils import language_model as lm
from book_utils import models, results, session, text, training

COMMAND = "python benchmarks/language_model.py --part models"
SOURCES = [
    "benchmarks/language_model.py",
    "book_utils.language_model.RECIPE", "book_utils.language_model.CONFIGS",
    "book_utils.language_model.LR_GRID", "book_utils.language_model.DROPOUT_GRID",
    "book_utils.language_model.RESET_WINDOW",
    "book_utils.language_model.CharLM", "book_utils.language_model.make_language_model",
    "book_utils.language_model.train_for_steps", "book_utils.language_model.train_recipe",
    "book_utils.language_model.held_out_bits", "book_utils.language_model.bits_by_position",
    "book_utils.language_model.sample", "book_utils.language_model.known_word_share",
    "book_utils.language_model.text_features", "book_utils.language_model.hidden_states",
    "book_utils.language_model.pearson",
    "book_utils.training.fit", "book_utils.training.make_optimizer",
    "book_utils.text.load_corpus", "book_utils.text.stream_batches",
]
SEEDS = (0, 1, 2, 3, 4)
SEARCH_SEED = 0
MEMORY_FEATURES = ("inside quotes", "inside brackets", "position in line", "inside code")


class Data:
    """The corpus as the chapter cuts it: training windows and held-out windows."""

    def __init__(self) -> None:
        self.corpus, self.vocab = text.load_corpus(), text.CharVocabulary()
        ids = {name: self.vocab.encode(getattr(self.corpus, name))
               for name in ("train", "validation", "test")}
        self.train = text.stream_batches(ids["train"], lm.RECIPE["batch_size"], lm.RECIPE["window"])
        self.validation = text.stream_batches(ids["validation"], 16, 256)
        self.test = text.stream_batches(ids["test"], 16, 256)
        # Training characters scored like the validation text: as many, from the start.
        self.train_sample = text.stream_batches(ids["train"][:len(ids["validation"])], 16, 256)
        self.short_train = text.stream_batches(ids["train"], lm.RECIPE["batch_size"], lm.RESET_WINDOW)
        self.short_validation = text.stream_batches(ids["validation"], 16, lm.RESET_WINDOW)


def train(data: Data, name: str, seed: int, lr: float, dropout: float = 0.0,
          windows: list | None = None, state: str = "carry"):
    """(model, history, seconds of training): one run of the recipe, on the chapter's windows
    with the validation text scored after every pass, or on ``windows``."""
    model, history = lm.train_recipe(name, len(data.vocab), windows or data.train, lr=lr,
                                     seed=seed, dropout=dropout, state=state,
                                     val_windows=data.validation if windows is None else None)
    return model, history, sum(history["seconds"])     # the scoring of validation not counted


def search(data: Data) -> tuple[dict, float, list[dict], dict]:
    """(rate per model, dropout rate, rows, runs): all chosen on validation with SEARCH_SEED."""
    rows, runs = [], {}

    def run(name: str, lr: float, dropout: float = 0.0) -> float:
        model, history, seconds = train(data, name, SEARCH_SEED, lr, dropout)
        bpc = text.bits_per_char(history["val_loss"][-1])
        runs[name, lr, dropout] = model, history, seconds
        rows.append({"part": "search", "model": name, "seed": SEARCH_SEED, "lr": lr,
                     "dropout": dropout, "validation bpc": bpc})
        print(f"  search {name:<24} lr {lr:<7} dropout {dropout}: {bpc:.4f} bpc "
              f"({seconds:.0f} s)", flush=True)
        return bpc

    rates = {}
    for name in [n for n in lm.CONFIGS if "dropout" not in n]:
        scores = {lr: run(name, lr) for lr in lm.LR_GRID}
        rates[name] = min(scores, key=scores.get)
    name, base = "LSTM, 2 layers, dropout", rates["LSTM, 2 layers"]
    by_dropout = {p: run(name, base, p) for p in lm.DROPOUT_GRID}
    dropout = min(by_dropout, key=by_dropout.get)
    scores = {lr: (by_dropout[dropout] if lr == base else run(name, lr, dropout)) for lr in lm.LR_GRID}
    rates[name] = min(scores, key=scores.get)
    print(f"chosen on validation: rates {rates}, dropout {dropout}", flush=True)
    return rates, dropout, rows, runs


def unit_rows(data: Data, model: lm.CharLM, seed: int) -> dict:
    """Best |r| of a unit with each memory feature, trained and untrained (same seed)."""
    features = lm.text_features(data.corpus.test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)                 # the trained network's starting point
        untrained = lm.make_language_model(model.kind, len(data.vocab), lm.RECIPE["parameters"],
                                           embedding_size=lm.RECIPE["embedding_size"])
    row = {}
    for label, net in (("trained", model), ("untrained", untrained)):
        r = lm.unit_correlations(lm.hidden_states(net, data.vocab, data.corpus.test), features)
        for feature in MEMORY_FEATURES:
            row[f"best |r|, {feature}, {label}"] = r[feature].abs().max().item()
            row[f"units |r| >= 0.3, {feature}, {label}"] = int((r[feature].abs() >= 0.3).sum())
    return row


def compare(data: Data, rates: dict, dropout: float, runs: dict) -> list[dict]:
    rows = []
    for name in lm.CONFIGS:
        p = dropout if "dropout" in name else 0.0
        for seed in SEEDS:
            key = name, rates[name], p
            if seed == SEARCH_SEED and key in runs:
                model, history, seconds = runs[key]
            else:
                model, history, seconds = train(data, name, seed, rates[name], p)
            sample, _ = lm.sample(model, data.vocab, 'The "for" statement ', 2000,
                                  temperature=0.8, seed=seed)
            row = {"part": "compare", "model": name, "seed": seed, "lr": rates[name], "dropout": p,
                   "hidden size": model.hidden_size, "parameters": models.count_parameters(model),
                   "seconds": seconds, "validation bpc": lm.held_out_bits(model, data.validation),
                   "training bpc": lm.held_out_bits(model, data.train_sample),
                   "test bpc": lm.held_out_bits(model, data.test),
                   "known words, T=0.8": lm.known_word_share(sample, data.corpus.train),
                   "curve steps": history["val_steps"],
                   "curve bpc": [text.bits_per_char(v) for v in history["val_loss"]]}
            if name == "LSTM":
                row.update(unit_rows(data, model, seed))
            rows.append(row)
            print(f"  {name:<24} seed {seed}: validation {row['validation bpc']:.4f}, test "
                  f"{row['test bpc']:.4f}, training {row['training bpc']:.4f} bpc "
                  f"({seconds:.0f} s)", flush=True)
    return rows


def reset(data: Data, lr: float) -> list[dict]:
    rows = []
    for mode in ("carry", "reset"):
        for seed in SEEDS:
            model, _, seconds = train(data, "LSTM", seed, lr, windows=data.short_train, state=mode)
            reset_nats = training.evaluate(model, data.short_validation, state="reset")["loss"]
            rows.append({
                "part": "reset", "model": f"LSTM, state {mode} in training", "seed": seed, "lr": lr,
                "seconds": seconds, "validation bpc, carried": lm.held_out_bits(model, data.validation),
                "validation bpc, reset": text.bits_per_char(reset_nats),
                "bpc by position, reset": lm.bits_by_position(model, data.short_validation).tolist(),
                "bpc by position, carried": lm.bits_by_position(
                    model, data.short_validation, state="carry").tolist()})
            print(f"  reset experiment, {mode} seed {seed}: carried "
                  f"{rows[-1]['validation bpc, carried']:.4f}, reset "
                  f"{rows[-1]['validation bpc, reset']:.4f} bpc", flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    for part, value in (("compare", "validation bpc"), ("compare", "test bpc"),
                        ("reset", "validation bpc, carried"), ("reset", "validation bpc, reset")):
        table = results.summarize([r for r in rows if r["part"] == part], by="model", value=value)
        print(f"\n{value} ({part}):\n" + pd.DataFrame(table).round(4).to_string(index=False))


def part_models(args: argparse.Namespace) -> None:
    if args.smoke:                 # the whole pipeline on a few updates; nothing is written
        lm.RECIPE["steps"] = 3
    data = Data()
    print(data.corpus.describe(), flush=True)
    start = time.perf_counter()
    rates, dropout, rows, runs = search(data)
    rows += compare(data, rates, dropout, runs)
    rows += reset(data, rates["LSTM"])
    summary(rows)
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{minutes:.1f} min in all")
    if not args.smoke:
        path = results.save("language_model", rows, sources=SOURCES, command=COMMAND,
                            notes=f"{minutes:.0f} min on one CPU thread")
        print(f"wrote {path}")


def part_ngram(args: argparse.Namespace) -> None:
    corpus, vocab = text.load_corpus(), text.CharVocabulary()
    start = time.perf_counter()
    kn = text.KneserNey(corpus.train, args.max_order, vocab)
    print(f"counted orders 1-{args.max_order} in {time.perf_counter() - start:.1f} s")
    rows = [{"order": k, "validation bpc": kn.bits_per_char(corpus.validation, k),
             "test bpc": kn.bits_per_char(corpus.test, k)} for k in range(1, args.max_order + 1)]
    print(pd.DataFrame(rows).round(4).to_string(index=False))


def part_speed(args: argparse.Namespace) -> None:
    data = Data()
    rows = []
    for name in lm.CONFIGS:
        model = lm.make_language_model(vocab_size=len(data.vocab), parameters=lm.RECIPE["parameters"],
                                       embedding_size=lm.RECIPE["embedding_size"], **lm.CONFIGS[name])
        # One window per pass, so fit times every update; the median ignores warm-up and hiccups.
        history = training.fit(model, data.train[:1], optimizer=torch.optim.Adam(model.parameters()),
                               epochs=args.timed_steps, state="carry", clip_norm=1.0, verbose=False)
        rows.append({"model": name, "hidden size": model.hidden_size,
                     "ms per update": 1000 * statistics.median(history["seconds"][1:])})
    print(pd.DataFrame(rows).round(2).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("models", "ngram", "speed"), default="models")
    parser.add_argument("--smoke", action="store_true", help="models: 3 updates per run, no file")
    parser.add_argument("--max-order", type=int, default=20, help="ngram: the highest order")
    parser.add_argument("--timed-steps", type=int, default=30, help="speed: updates timed per model")
    args = parser.parse_args()
    session.setup(seed=0, threads=1)
    pd.set_option("display.width", 140)
    {"models": part_models, "ngram": part_ngram, "speed": part_speed}[args.part](args)


if __name__ == "__main__":
    main()
