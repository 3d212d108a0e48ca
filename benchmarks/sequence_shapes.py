"""Chapter 3's models against their baselines, with the chapter's settings, over seeds.

    python benchmarks/sequence_shapes.py                     # seeds 0 1 2, every model
    python benchmarks/sequence_shapes.py --part mnist        # the two MNIST models only
    python benchmarks/sequence_shapes.py --search            # the MNIST recipe search

Default: one row per (seed, model), then one row per model with the mean and the worst
seed. Forecasting: MSE on held-out series (one step ahead, and the mean over 10 steps
ahead) against the naive last-value forecast and a least-squares linear model. The
encoder-decoder: exact match on held-out digit strings (target: at least 95% for every
seed) against copying the input. MNIST, as the chapter does it: the GRU digit classifier
and the per-row classifier of cropped digits train on the training split with the recipes
in ``sequence_shapes.CLASSIFIER_RECIPE`` and ``TAGGER_RECIPE``, are scored on the
validation split, and then, once, on the test split with the same model (the chapter keeps
the train-only model).

``--search`` compares candidate MNIST recipes on the validation split only (mean and worst
of the seeds) and never touches the test split; the chapter uses the best mean.
"""

from __future__ import annotations

import argparse
import itertools
import time

import pandas as pd
import torch

from book_utils import data, models, sequence_shapes, session, training

NOISE, LENGTH, HORIZON, WINDOW = 0.1, 60, 10, 16
FORECAST_STEPS, FORECAST_HIDDEN = 500, 32
MIN_DIGITS, MAX_DIGITS, SEQ2SEQ_STEPS = 3, 8, 1500
MIN_ROWS = 14
EXACT_MATCH_TARGET = 0.95
CLASSIFIER_GRID = {"epochs": [4, 12], "lr": [5e-3], "max_shift": [0, 1]}
TAGGER_GRID = {"epochs": [5, 12], "lr": [5e-3]}


def forecasting_rows(seed: int, device: torch.device) -> list[dict]:
    train, _ = sequence_shapes.noisy_sines(1024, LENGTH, noise=NOISE, seed=0)
    test, _ = sequence_shapes.noisy_sines(500, LENGTH, noise=NOISE, seed=1)
    session.seed_everything(seed)
    one_step = sequence_shapes.RecurrentForecaster(FORECAST_HIDDEN, horizon=1).to(device)
    one_seconds = sequence_shapes.train_forecaster(
        one_step, train, steps=FORECAST_STEPS, seed=seed)["seconds"][0]
    session.seed_everything(seed)
    direct = sequence_shapes.RecurrentForecaster(FORECAST_HIDDEN, horizon=HORIZON).to(device)
    direct_seconds = sequence_shapes.train_forecaster(
        direct, train, steps=FORECAST_STEPS, seed=seed)["seconds"][0]

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
    row = {"seed": seed, "metric": "MSE (lower is better)", "validation": float("nan")}
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
            "metric": "exact match (higher is better)", "value": accuracy, "validation": float("nan"),
            "naive": models.exact_match(test_sources, test_targets), "linear": float("nan"),
            "train s": history["seconds"][0]}


def train_classifier(mnist: data.MNIST, recipe: dict, seed: int, device: torch.device):
    """The chapter's GRU digit classifier; returns (model, validation accuracy, seconds)."""
    session.seed_everything(seed)
    model = models.make_classifier("gru", input_size=28, hidden_size=64).to(device)
    loader = data.mnist_loader(mnist, "train", batch_size=32, seed=seed)
    history = training.train_classifier(
        model, data.RandomShifts(loader, max_shift=recipe["max_shift"], seed=seed),
        epochs=recipe["epochs"], lr=recipe["lr"],
        val_loader=data.mnist_loader(mnist, "validation", batch_size=500), device=device, verbose=False)
    return model, history["val_accuracy"][-1], sum(history["seconds"])


def crops(mnist: data.MNIST) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The chapter's cropped digits: split -> (x, lengths, labels), one seed per split."""
    splits = {"train": (mnist.x_train, mnist.y_train), "validation": (mnist.x_val, mnist.y_val),
              "test": (mnist.x_test, mnist.y_test)}
    return {name: (*sequence_shapes.random_crops(x, MIN_ROWS, seed=k), y)
            for k, (name, (x, y)) in enumerate(splits.items())}


def train_tagger(cropped: dict, recipe: dict, seed: int, device: torch.device):
    """The chapter's per-row classifier; returns (model, validation accuracy, seconds)."""
    session.seed_everything(seed)
    model = sequence_shapes.PerStepClassifier(28, 64, 10).to(device)
    batches = sequence_shapes.CroppedBatches(*cropped["train"], batch_size=32, shuffle=True, seed=seed)
    optimizer, schedule = training.make_optimizer(
        model, lr=recipe["lr"], total_steps=recipe["epochs"] * len(batches), schedule="onecycle")
    history = training.fit(model, batches, epochs=recipe["epochs"], optimizer=optimizer, scheduler=schedule,
                           clip_norm=1.0, loss_fn=training.masked_cross_entropy, verbose=False)
    return model, tagger_accuracy(model, cropped["validation"], device), sum(history["seconds"])


def tagger_accuracy(model, split: tuple, device: torch.device) -> float:
    x, lengths, labels = split
    model.eval()
    with torch.no_grad():
        logits = model(x.to(device), lengths)
    return sequence_shapes.last_step_accuracy(logits, lengths, labels)


def mnist_rows(mnist: data.MNIST, seed: int, device: torch.device) -> list[dict]:
    majority = int(torch.bincount(mnist.y_train).argmax())
    baseline = (mnist.y_test == majority).float().mean().item()
    row = {"seed": seed, "metric": "test accuracy (higher is better)", "naive": baseline,
           "linear": float("nan")}
    classifier, val, seconds = train_classifier(mnist, sequence_shapes.CLASSIFIER_RECIPE, seed, device)
    test = training.evaluate(classifier, data.mnist_loader(mnist, "test", batch_size=500))["accuracy"]
    rows = [{**row, "model": "GRU digit classifier", "task": "MNIST digits", "validation": val,
             "value": test, "train s": seconds}]
    cropped = crops(mnist)
    tagger, val, seconds = train_tagger(cropped, sequence_shapes.TAGGER_RECIPE, seed, device)
    rows.append({**row, "model": "GRU per-row classifier", "task": f"digits cropped to {MIN_ROWS}-28 rows",
                 "validation": val, "value": tagger_accuracy(tagger, cropped["test"], device),
                 "train s": seconds})
    return rows


def search(mnist: data.MNIST, seeds: list[int], device: torch.device) -> None:
    """Every candidate recipe on the validation split: mean and worst over the seeds."""
    cropped = crops(mnist)
    for name, grid, run in [
        ("GRU digit classifier", CLASSIFIER_GRID, lambda r, s: train_classifier(mnist, r, s, device)),
        ("GRU per-row classifier", TAGGER_GRID, lambda r, s: train_tagger(cropped, r, s, device)),
    ]:
        rows = []
        for values in itertools.product(*grid.values()):
            recipe = dict(zip(grid, values))
            scores = [run(recipe, seed)[1:] for seed in seeds]
            accuracies = [a for a, _ in scores]
            rows.append({**recipe, "val mean": sum(accuracies) / len(accuracies), "val worst": min(accuracies),
                         "train s": sum(s for _, s in scores) / len(scores)})
            print(f"{name}: {recipe} -> {rows[-1]['val mean']:.2%}", flush=True)
        table = pd.DataFrame(rows).sort_values("val mean", ascending=False)
        print(f"\n{name}, validation accuracy over seeds {seeds} (best first):")
        print(table.round(4).to_string(index=False), "\n")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and worst seed per model; worst is the highest MSE or the lowest accuracy."""
    rows = []
    for (model, task, metric), group in table.groupby(["model", "task", "metric"], sort=False):
        lower_is_better = metric.startswith("MSE")
        rows.append({"model": model, "task": task, "metric": metric, "seeds": len(group),
                     "mean": group["value"].mean(),
                     "worst": group["value"].max() if lower_is_better else group["value"].min(),
                     "baseline mean": group["naive"].mean(), "train s (mean)": group["train s"].mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--part", choices=("all", "synthetic", "mnist"), default="all")
    parser.add_argument("--search", action="store_true",
                        help="compare MNIST recipes on the validation split (no test split)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = session.pick_device()
    start = time.perf_counter()
    mnist = data.load_mnist(validation_fraction=0.125, device=device) if args.part != "synthetic" else None
    if args.search:
        search(mnist, args.seeds, device)
        print(f"device {device}, total {time.perf_counter() - start:.1f} s")
        return
    rows = []
    for seed in args.seeds:
        if args.part != "mnist":
            rows += forecasting_rows(seed, device)
            rows.append(seq2seq_row(seed, device))
        if args.part != "synthetic":
            rows += mnist_rows(mnist, seed, device)
    table = pd.DataFrame(rows)
    table = table[["seed", "model", "task", "metric", "validation", "value", "naive", "linear", "train s"]]
    names = {"value": "test", "naive": "naive / copy / majority", "linear": "linear baseline"}
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.rename(columns=names).round(4).to_string(index=False))
        print(f"\nover seeds {args.seeds}, test split:")
        print(summary(table).round(4).to_string(index=False))
    exact = table[table["model"] == "GRU encoder-decoder"]["value"]
    if len(exact):
        verdict = "ok" if (exact >= EXACT_MATCH_TARGET).all() else "BELOW TARGET"
        print(f"\nencoder-decoder exact match: worst {exact.min():.2%} over {len(exact)} seed(s), "
              f"target {EXACT_MATCH_TARGET:.0%}: {verdict}")
    print(f"device {device}, total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
