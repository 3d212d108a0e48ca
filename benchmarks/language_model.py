"""Chapter 6 benchmark: character language models against n-grams, over seeds.

    python benchmarks/language_model.py                       # 3 seeds, 55 s budget per model
    python benchmarks/language_model.py --seeds 0 1 2 3 --seconds 30 --models gru lstm
    python benchmarks/language_model.py --time-steps          # ms per update, for BUDGET_STEPS

For each seed and model (RNN, GRU, LSTM, 2-layer LSTM with dropout, all of about
the same size) it trains with the chapter's recipe (``language_model.train_for_steps``,
state carried across windows) for the number of updates that takes ``--seconds`` on
the reference machine (``language_model.budget_steps``; the table shows the seconds
each run really took), then prints the test bits per character, the margin over
the best n-gram model (order and discount chosen on validation), and the share of words in a sample at temperature 0.8 that occur in
the training text. Targets: the best recurrent model beats the best n-gram by at
least 0.1 bpc on the test text within 60 s; samples at T <= 0.8 are mostly real words.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from book_utils import language_model as lm
from book_utils import models, session, text, training

MARGIN_TARGET = 0.1
MODELS = {"rnn": dict(kind="rnn"), "gru": dict(kind="gru"), "lstm": dict(kind="lstm"),
          "lstm2-dropout": dict(kind="lstm", num_layers=2, dropout=0.1)}
LR = {"rnn": 0.01, "gru": 0.02, "lstm": 0.02}   # the chapter's peak rates, chosen on validation


def best_ngram(corpus: text.Corpus, vocab: text.CharVocabulary, max_order: int) -> dict:
    """The n-gram order and discount that score best on validation, and their test bpc."""
    start = time.perf_counter()
    ngram = lm.NGramModel(corpus.train, max_order, vocab)
    scores = {}
    for discount in (0.5, 0.75, 0.9, 0.95):
        ngram.discount = discount
        for order in range(1, max_order + 1):
            scores[order, discount] = ngram.bits_per_char(corpus.validation, order)
    order, discount = min(scores, key=scores.get)
    ngram.discount = discount
    return {"order": order, "discount": discount, "validation": scores[order, discount],
            "test": ngram.bits_per_char(corpus.test, order), "seconds": time.perf_counter() - start}


def time_steps(vocab: text.CharVocabulary, train: list, args: argparse.Namespace, device) -> None:
    """Median milliseconds per update of each model, and the updates that fill the chapter's budget."""
    rows = []
    for name in args.models:
        session.seed_everything(0)
        model = lm.make_language_model(vocab_size=len(vocab), parameters=args.parameters,
                                       **MODELS[name]).to(device)
        # One window per pass, so fit times every update; the median ignores warm-up and hiccups.
        history = training.fit(model, train[:1], optimizer=torch.optim.Adam(model.parameters()),
                               epochs=args.timed_steps, state="carry", clip_norm=1.0,
                               device=device, verbose=False)
        ms = 1000 * statistics.median(history["seconds"][1:])
        rows.append({"model": name, "ms per update": round(ms, 2),
                     f"updates in {lm.BUDGET_SECONDS:.0f} s": round(lm.BUDGET_SECONDS * 1000 / ms, -1),
                     "BUDGET_STEPS now": lm.budget_steps(MODELS[name]["kind"],
                                                         MODELS[name].get("num_layers", 1))})
    print(pd.DataFrame(rows).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=55.0, help="training budget per model, "
                        "in seconds on the reference machine (turned into a fixed number of updates)")
    parser.add_argument("--time-steps", action="store_true", help="only time the updates of each "
                        "model (batch 32, window 64) and print the step counts for BUDGET_STEPS")
    parser.add_argument("--timed-steps", type=int, default=30, help="updates timed per model")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--parameters", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="peak rate for every model "
                        "(default: the chapter's, 0.01 for the RNN and 0.02 for the gated cells)")
    parser.add_argument("--max-order", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    device = session.setup(seed=0, threads=args.threads)
    pd.set_option("display.width", 140)

    corpus, vocab = text.load_corpus(), text.CharVocabulary()
    print(corpus.describe())
    train = text.stream_batches(vocab.encode(corpus.train), args.batch, args.window)
    if args.time_steps:
        time_steps(vocab, train, args, device)
        return
    ngram = best_ngram(corpus, vocab, args.max_order)
    print(f"best n-gram on validation: order {ngram['order']}, discount {ngram['discount']}: "
          f"validation {ngram['validation']:.3f}, test {ngram['test']:.3f} bpc "
          f"({ngram['seconds']:.1f} s to count and score)")

    validation = text.stream_batches(vocab.encode(corpus.validation), 16, 256)
    test = text.stream_batches(vocab.encode(corpus.test), 16, 256)
    rows = []
    for seed in args.seeds:
        for name in args.models:
            session.seed_everything(seed)
            model = lm.make_language_model(vocab_size=len(vocab), parameters=args.parameters,
                                           **MODELS[name]).to(device)
            lr = args.lr or LR[MODELS[name]["kind"]]
            steps = lm.budget_steps(MODELS[name]["kind"], MODELS[name].get("num_layers", 1),
                                    args.seconds)
            history = lm.train_for_steps(model, train, steps=steps, lr=lr, device=device)
            sample, _ = lm.sample(model, vocab, 'The "for" statement ', 2000, temperature=0.8, seed=seed)
            rows.append({"seed": seed, "model": name, "parameters": models.count_parameters(model),
                         "steps": history["steps"][0], "seconds": sum(history["seconds"]),
                         "validation bpc": lm.held_out_bits(model, validation),
                         "test bpc": lm.held_out_bits(model, test),
                         "known words, T=0.8": lm.known_word_share(sample, corpus.train)})
            print("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in rows[-1].items()), flush=True)
    runs = pd.DataFrame(rows)
    runs["margin over n-gram"] = ngram["test"] - runs["test bpc"]
    print(f"\nper run (n-gram test bpc {ngram['test']:.3f}):")
    print(runs.round(3).to_string(index=False))
    summary = runs.groupby("model")[["seconds", "test bpc", "margin over n-gram", "known words, T=0.8"]]
    print("\nover seeds (mean, min, max):")
    print(summary.agg(["mean", "min", "max"]).round(3).to_string())
    best = runs.groupby("seed")["margin over n-gram"].max()
    verdict = "meets" if best.min() >= MARGIN_TARGET else "MISSES"
    print(f"\nbest recurrent model's margin per seed: {', '.join(f'{m:.3f}' for m in best)} bpc: "
          f"{verdict} the {MARGIN_TARGET} target with at most {runs['seconds'].max():.0f} s of "
          f"training per model (measured; budget {args.seconds:.0f} s on the reference machine)")
    share = runs["known words, T=0.8"]
    print(f"known words at T=0.8: {share.min():.1%} to {share.max():.1%} "
          f"({'mostly real words' if share.min() > 0.5 else 'NOT mostly real words'})")


if __name__ == "__main__":
    main()
