"""Chapter 3's headline metrics against their baselines, with the chapter's settings.

    python benchmarks/sequence_shapes.py              # seed 0, as in the chapter
    python benchmarks/sequence_shapes.py --seeds 0 1 2

Prints one row per (seed, model): forecasting MSE on held-out series (one step
ahead, and the mean over 10 steps ahead) against the naive last-value forecast
and a least-squares linear model; and the encoder-decoder's exact-match accuracy
on held-out digit strings (target: at least 95%) against copying the input.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from book_utils import data, models, sequence_shapes, session

NOISE, LENGTH, HORIZON, WINDOW = 0.1, 60, 10, 16
FORECAST_STEPS, FORECAST_HIDDEN = 500, 32
MIN_DIGITS, MAX_DIGITS, SEQ2SEQ_STEPS = 3, 8, 1500
EXACT_MATCH_TARGET = 0.95


def forecasting_rows(seed: int, device: torch.device) -> list[dict]:
    train, _ = sequence_shapes.noisy_sines(1024, LENGTH, noise=NOISE, seed=0)
    test, _ = sequence_shapes.noisy_sines(500, LENGTH, noise=NOISE, seed=1)
    session.seed_everything(seed)
    one_step = sequence_shapes.RecurrentForecaster(FORECAST_HIDDEN, horizon=1).to(device)
    one_seconds = sequence_shapes.train_forecaster(one_step, train, steps=FORECAST_STEPS, seed=seed)["seconds"][0]
    session.seed_everything(seed)
    direct = sequence_shapes.RecurrentForecaster(FORECAST_HIDDEN, horizon=HORIZON).to(device)
    direct_seconds = sequence_shapes.train_forecaster(direct, train, steps=FORECAST_STEPS, seed=seed)["seconds"][0]

    inputs, targets = sequence_shapes.horizon_targets(test, 1)
    scored = slice(WINDOW - 1, None)
    with torch.no_grad():
        gru_one = one_step(inputs.to(device))[0].cpu()
    linear_one = sequence_shapes.LinearForecaster(WINDOW, 1).fit(train)(test[:, :-1])
    one_step_mse = {
        "naive": ((inputs - targets)[:, scored] ** 2).mean().item(),
        "linear": ((linear_one - targets[:, scored]) ** 2).mean().item(),
        "gru": ((gru_one - targets)[:, scored] ** 2).mean().item(),
    }

    context, future = test[:, :-HORIZON], test[:, -HORIZON:]
    mse = lambda f: ((f - future) ** 2).mean().item()  # noqa: E731
    naive_k = mse(sequence_shapes.naive_forecast(context, HORIZON))
    linear_k = mse(sequence_shapes.LinearForecaster(WINDOW, HORIZON).fit(train).forecast(context))
    rollout_k = mse(one_step.rollout(context.to(device), HORIZON).cpu())
    direct_k = mse(direct.forecast(context.to(device)).cpu())
    row = {"seed": seed, "metric": "MSE (lower is better)"}
    return [
        {**row, "model": "GRU one-step forecaster", "task": "1 step ahead", "value": one_step_mse["gru"],
         "naive": one_step_mse["naive"], "linear": one_step_mse["linear"], "train s": one_seconds},
        {**row, "model": "GRU, predictions fed back", "task": f"mean of {HORIZON} steps", "value": rollout_k,
         "naive": naive_k, "linear": linear_k, "train s": one_seconds},
        {**row, "model": f"GRU, vector of {HORIZON}", "task": f"mean of {HORIZON} steps", "value": direct_k,
         "naive": naive_k, "linear": linear_k, "train s": direct_seconds},
    ]


def seq2seq_row(seed: int, device: torch.device) -> dict:
    vocab = data.Vocabulary()
    sources, targets = data.reversal_pairs(20000, MIN_DIGITS, MAX_DIGITS, seed=0)
    test_sources, test_targets = data.reversal_pairs(1000, MIN_DIGITS, MAX_DIGITS, seed=1, exclude=sources)
    session.seed_everything(seed)
    model = models.EncoderDecoder(len(vocab), embedding_size=32, hidden_size=64).to(device)
    history = models.train_encoder_decoder(model, vocab, sources, targets, steps=SEQ2SEQ_STEPS,
                                            lr=0.01, batch_size=64, seed=seed)
    accuracy, _ = models.decode_and_score(model, vocab, test_sources, test_targets)
    return {"seed": seed, "model": "GRU encoder-decoder", "task": f"reverse {MIN_DIGITS}-{MAX_DIGITS} digits",
            "metric": "exact match (higher is better)", "value": accuracy,
            "naive": models.exact_match(test_sources, test_targets), "linear": float("nan"),
            "train s": history["seconds"][0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = session.pick_device()
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        rows += forecasting_rows(seed, device)
        rows.append(seq2seq_row(seed, device))
    table = pd.DataFrame(rows)
    table = table[["seed", "model", "task", "metric", "value", "naive", "linear", "train s"]]
    table = table.rename(columns={"naive": "naive / copy baseline", "linear": "linear baseline"})
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
    exact = table[table["model"] == "GRU encoder-decoder"]["value"]
    verdict = "ok" if (exact >= EXACT_MATCH_TARGET).all() else "BELOW TARGET"
    print(f"\nencoder-decoder exact match: min {exact.min():.2%} over {len(exact)} seed(s), "
          f"target {EXACT_MATCH_TARGET:.0%}: {verdict}")
    print(f"device {device}, total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
