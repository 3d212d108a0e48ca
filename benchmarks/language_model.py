"""Chapter 6 benchmark: character language models over seeds, and the n-gram baselines.

    python benchmarks/language_model.py --part all           # about 30 min on one CPU thread
    python benchmarks/language_model.py --part all --smoke   # the same code, 3 updates, no file
    python benchmarks/language_model.py --part speed         # ms per update on this machine

(a) all, written to book_utils/results/language_model.json for the chapter. Every
    recurrent model has about RECIPE["parameters"] parameters (the axis they are matched
    on) and trains with the same recipe (language_model.RECIPE) for the same number of
    updates.
    1. search, on the validation text, with SEARCH_SEED only: Adam's peak rate for each
       model from LR_GRID, then the two rates a factor LR_REFINE either side of the best;
       then the dropout rate of the 2-layer LSTM from DROPOUT_GRID at the 2-layer LSTM's
       rate, and the rate of that dropout model the same way.
    2. compare: each model at its chosen rate (and dropout) with the fresh SEEDS (none of
       them chose a rate): validation bpc after every pass and at the end, bpc on the first
       characters of the training text (as many as the validation text has), the test
       text once, both held-out texts split into characters copied from the training text
       (inside a string of COPY_LENGTH or more that occurs there) and the rest, the
       measured seconds, and the share of known words in a sample at temperature 0.8. For
       the LSTM, the correlation of its units' h_t and c_t with the features of
       language_model.text_features on the test text, beside the same network untrained.
    3. reset: the LSTM at its rate on windows of RESET_WINDOW characters, trained carrying
       its state and resetting it, SEEDS; validation bpc with the state carried and reset at
       every window, and per position in the window.
    4. long: the LSTM at its rate for LONG_STEPS updates instead of RECIPE["steps"], SEEDS,
       scored like the compare runs.
    5. ngram (deterministic, "seed" None): modified Kneser-Ney (text.KneserNey) at every
       order up to NGRAM_ORDER on the validation and test texts (in all, and split into
       copied and other characters like the networks), with the number of counts it
       stores, its counts of counts and its discounts; absolute discounting
       (language_model.NGramModel) at every order up to ABSOLUTE_ORDER with its discount
       chosen from DISCOUNT_GRID on validation at that order.
(b) speed: median milliseconds per update of each model, measured here (one thread).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter

import pandas as pd
import torch

from book_utils import language_model as lm
from book_utils import models, results, session, text, training

COMMAND = "python benchmarks/language_model.py --part all"
SOURCES = [
    "benchmarks/language_model.py",
    "book_utils.language_model.RECIPE", "book_utils.language_model.CONFIGS",
    "book_utils.language_model.LR_GRID", "book_utils.language_model.LR_REFINE",
    "book_utils.language_model.DROPOUT_GRID", "book_utils.language_model.DISCOUNT_GRID",
    "book_utils.language_model.SEARCH_SEED", "book_utils.language_model.SEEDS",
    "book_utils.language_model.RESET_WINDOW", "book_utils.language_model.LONG_STEPS",
    "book_utils.language_model.COPY_LENGTH",
    "book_utils.language_model.CharLM", "book_utils.language_model.make_language_model",
    "book_utils.language_model.train_for_steps", "book_utils.language_model.train_recipe",
    "book_utils.language_model.held_out_bits", "book_utils.language_model.char_bits",
    "book_utils.language_model.bits_by_position", "book_utils.language_model.copied_mask",
    "book_utils.language_model.sample", "book_utils.language_model.known_word_share",
    "book_utils.language_model.text_features", "book_utils.language_model.hidden_states",
    "book_utils.language_model.cell_states", "book_utils.language_model.pearson",
    "book_utils.language_model.NGramModel", "book_utils.language_model.interpolated_prob",
    "book_utils.language_model.ngram_char_bits",
    "book_utils.training.fit", "book_utils.training.evaluate", "book_utils.training.make_optimizer",
    "book_utils.text.load_corpus", "book_utils.text.CORPUS_SHA256",
    "book_utils.text.stream_batches", "book_utils.text.KneserNey",
    "book_utils.text.kneser_ney_prob", "book_utils.text.kneser_ney_discounts",
]
MEMORY_FEATURES = ("inside quotes", "inside brackets", "position in line", "inside code")
NGRAM_ORDER, ABSOLUTE_ORDER = 20, 12


class Data:
    """The corpus as the chapter cuts it: training windows, held-out windows, copied masks."""

    def __init__(self) -> None:
        self.corpus, self.vocab = text.load_corpus(), text.CharVocabulary()
        ids = {name: self.vocab.encode(getattr(self.corpus, name))
               for name in ("train", "validation", "test")}
        self.train = text.stream_batches(ids["train"], lm.RECIPE["batch_size"], lm.RECIPE["window"])
        self.held_out = {name: text.stream_batches(ids[name], 16, 256)
                         for name in ("validation", "test")}
        self.validation = self.held_out["validation"]
        # Training characters scored like the validation text: as many, from the start.
        self.train_sample = text.stream_batches(ids["train"][:len(ids["validation"])], 16, 256)
        self.short_train = text.stream_batches(ids["train"], lm.RECIPE["batch_size"], lm.RESET_WINDOW)
        self.short_validation = text.stream_batches(ids["validation"], 16, lm.RESET_WINDOW)
        # Which targets of the held-out windows (ids[1], ids[2], ... in order) were copied.
        self.copied = {}
        for name, windows in self.held_out.items():
            scored = sum(y.numel() for _, y in windows)
            mask = lm.copied_mask(getattr(self.corpus, name), self.corpus.train, lm.COPY_LENGTH)
            self.copied[name] = mask[1:scored + 1]


def train(data: Data, name: str, seed: int, lr: float, dropout: float = 0.0,
          windows: list | None = None, state: str = "carry", curve: bool = True,
          steps: int | None = None):
    """(model, history, seconds of training): one run of the recipe, on the chapter's windows
    (with the validation text scored after every pass when ``curve``), or on ``windows``."""
    model, history = lm.train_recipe(name, len(data.vocab), windows or data.train, lr=lr,
                                     seed=seed, dropout=dropout, state=state, steps=steps,
                                     val_windows=data.validation if curve else None)
    return model, history, sum(history["seconds"])     # the scoring of validation not counted


def search(data: Data) -> tuple[dict, float, list[dict]]:
    """(rate per model, dropout rate, rows): all chosen on validation with SEARCH_SEED."""
    rows, scores = [], {}

    def run(name: str, lr: float, dropout: float = 0.0) -> float:
        lr = float(f"{lr:.3g}")
        if (name, lr, dropout) not in scores:
            model, _, seconds = train(data, name, lm.SEARCH_SEED, lr, dropout, curve=False)
            bpc = lm.held_out_bits(model, data.validation)
            scores[name, lr, dropout] = bpc
            rows.append({"part": "search", "model": name, "seed": lm.SEARCH_SEED, "lr": lr,
                         "dropout": dropout, "validation bpc": bpc})
            print(f"  search {name:<24} lr {lr:<7} dropout {dropout}: {bpc:.4f} bpc "
                  f"({seconds:.0f} s)", flush=True)
        return scores[name, lr, dropout]

    def best_rate(name: str, dropout: float = 0.0) -> float:
        tried = {float(f"{lr:.3g}"): run(name, lr, dropout) for lr in lm.LR_GRID}
        coarse = min(tried, key=tried.get)
        for lr in (coarse / lm.LR_REFINE, coarse * lm.LR_REFINE):
            tried[float(f"{lr:.3g}")] = run(name, lr, dropout)
        return min(tried, key=tried.get)

    rates = {name: best_rate(name) for name in lm.CONFIGS if "dropout" not in name}
    name, base = "LSTM, 2 layers, dropout", rates["LSTM, 2 layers"]
    by_dropout = {p: run(name, base, p) for p in lm.DROPOUT_GRID}
    dropout = min(by_dropout, key=by_dropout.get)
    rates[name] = best_rate(name, dropout)
    print(f"chosen on validation: rates {rates}, dropout {dropout}", flush=True)
    return rates, dropout, rows


def held_out_scores(data: Data, model: lm.CharLM) -> dict:
    """bpc on the validation and test texts, in all and split into copied and other characters."""
    row = {}
    for name, windows in data.held_out.items():
        bits, copied = lm.char_bits(model, windows).flatten(), data.copied[name]
        row[f"{name} bpc"] = bits.mean().item()
        row[f"{name} bpc, copied"] = bits[copied].mean().item()
        row[f"{name} bpc, not copied"] = bits[~copied].mean().item()
    return row


def unit_rows(data: Data, model: lm.CharLM, seed: int) -> dict:
    """Best |r| of a unit's h_t and c_t with each memory feature, trained and untrained."""
    features = lm.text_features(data.corpus.test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)                 # the trained network's starting point
        untrained = lm.make_language_model(model.kind, len(data.vocab), lm.RECIPE["parameters"],
                                           embedding_size=lm.RECIPE["embedding_size"])
    row = {}
    for label, net in (("trained", model), ("untrained", untrained)):
        for state, read in (("h", lm.hidden_states), ("c", lm.cell_states)):
            r = lm.unit_correlations(read(net, data.vocab, data.corpus.test), features)
            for feature in MEMORY_FEATURES:
                row[f"best |r|, {feature}, {label}, {state}"] = r[feature].abs().max().item()
                row[f"units |r| >= 0.3, {feature}, {label}, {state}"] = int(
                    (r[feature].abs() >= 0.3).sum())
    return row


def compare(data: Data, rates: dict, dropout: float) -> list[dict]:
    rows = []
    for name in lm.CONFIGS:
        p = dropout if "dropout" in name else 0.0
        for seed in lm.SEEDS:
            model, history, seconds = train(data, name, seed, rates[name], p)
            sample, _ = lm.sample(model, data.vocab, 'The "for" statement ', 2000,
                                  temperature=0.8, seed=seed)
            row = {"part": "compare", "model": name, "seed": seed, "lr": rates[name], "dropout": p,
                   "hidden size": model.hidden_size, "parameters": models.count_parameters(model),
                   "seconds": seconds, **held_out_scores(data, model),
                   "training bpc": lm.held_out_bits(model, data.train_sample),
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
        for seed in lm.SEEDS:
            model, _, seconds = train(data, "LSTM", seed, lr, windows=data.short_train, state=mode,
                                      curve=False)
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


def long(data: Data, lr: float) -> list[dict]:
    rows = []
    for seed in lm.SEEDS:
        model, _, seconds = train(data, "LSTM", seed, lr, curve=False, steps=lm.LONG_STEPS)
        rows.append({"part": "long", "model": "LSTM", "seed": seed, "lr": lr,
                     "updates": lm.LONG_STEPS, "seconds": seconds, **held_out_scores(data, model),
                     "training bpc": lm.held_out_bits(model, data.train_sample)})
        print(f"  LSTM, {lm.LONG_STEPS} updates, seed {seed}: validation "
              f"{rows[-1]['validation bpc']:.4f}, test {rows[-1]['test bpc']:.4f} bpc "
              f"({seconds:.0f} s)", flush=True)
    return rows


def ngram_scores(data: Data, kn: text.KneserNey, order: int) -> dict:
    """Kneser-Ney's bpc on the validation and test texts, read from their first character; and
    on the characters the networks score (ids[1], ids[2], ...), split as in held_out_scores."""
    row = {}
    for name, copied in data.copied.items():
        bits = lm.ngram_char_bits(kn, getattr(data.corpus, name), order)
        row[f"{name} bpc"] = bits.mean().item()
        scored = bits[1:len(copied) + 1]
        row[f"{name} bpc, copied"] = scored[copied].mean().item()
        row[f"{name} bpc, not copied"] = scored[~copied].mean().item()
    return row


def ngram(data: Data, kn_order: int = NGRAM_ORDER, absolute_order: int = ABSOLUTE_ORDER) -> list[dict]:
    """Kneser-Ney at every order up to ``kn_order``; absolute discounting up to ``absolute_order``."""
    corpus, rows = data.corpus, []
    kn = text.KneserNey(corpus.train, kn_order, data.vocab)
    for k in range(1, kn_order + 1):
        top = kn.tables[k - 1]["raw"]
        stored = len(top.counts) + sum(len(kn.tables[j - 1]["continuation"].counts)
                                       for j in range(1, k))
        of_counts = Counter(min(n, 5) for n in top.counts.values())
        rows.append({"part": "ngram", "model": "Kneser-Ney", "seed": None, "order": k,
                     "counts stored": stored,
                     "n1-n4": [of_counts[j] for j in range(1, 5)], "D1, D2, D3+": list(top.discounts),
                     **ngram_scores(data, kn, k)})
        print(f"  Kneser-Ney order {k}: validation {rows[-1]['validation bpc']:.4f}, "
              f"{stored:,} counts", flush=True)
    del kn
    absolute = lm.NGramModel(corpus.train, absolute_order, data.vocab)
    for k in range(1, absolute_order + 1):
        by_discount = {}
        for absolute.discount in lm.DISCOUNT_GRID:
            by_discount[absolute.discount] = absolute.bits_per_char(corpus.validation, k)
        absolute.discount = min(by_discount, key=by_discount.get)
        rows.append({"part": "ngram", "model": "absolute discounting", "seed": None, "order": k,
                     "discount": absolute.discount, "validation bpc": by_discount[absolute.discount],
                     "validation bpc by discount": list(by_discount.values()),
                     "test bpc": absolute.bits_per_char(corpus.test, k)})
        print(f"  absolute discounting order {k}: discount {absolute.discount}, validation "
              f"{rows[-1]['validation bpc']:.4f}", flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    for part, value in (("compare", "validation bpc"), ("compare", "test bpc"),
                        ("long", "test bpc"), ("reset", "validation bpc, carried"),
                        ("reset", "validation bpc, reset")):
        table = results.summarize([r for r in rows if r["part"] == part], by="model", value=value)
        print(f"\n{value} ({part}):\n" + pd.DataFrame(table).round(4).to_string(index=False))


def part_all(args: argparse.Namespace) -> None:
    if args.smoke:                 # the whole pipeline on a few updates; nothing is written
        lm.RECIPE["steps"] = lm.LONG_STEPS = 3
    data = Data()
    print(data.corpus.describe(), flush=True)
    start = time.perf_counter()
    rows = ngram(data, *((2, 2) if args.smoke else ()))
    rates, dropout, search_rows = search(data)
    rows += search_rows + compare(data, rates, dropout)
    rows += reset(data, rates["LSTM"]) + long(data, rates["LSTM"])
    summary(rows)
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{minutes:.1f} min in all")
    if not args.smoke:
        path = results.save("language_model", rows, sources=SOURCES, command=COMMAND,
                            notes=f"{math.ceil(minutes)} min on one CPU thread")
        print(f"wrote {path}")


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
    parser.add_argument("--part", choices=("all", "speed"), default="all")
    parser.add_argument("--smoke", action="store_true", help="all: 3 updates per run, no file")
    parser.add_argument("--timed-steps", type=int, default=30, help="speed: updates timed per model")
    args = parser.parse_args()
    session.setup(seed=0, threads=1)
    pd.set_option("display.width", 140)
    {"all": part_all, "speed": part_speed}[args.part](args)


if __name__ == "__main__":
    main()
