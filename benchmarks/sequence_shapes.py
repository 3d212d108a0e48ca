"""Chapter 3's models against their baselines, over five seeds, with the searches behind its recipes.

    python benchmarks/sequence_shapes.py                     # forecast, reverser and mnist parts
    python benchmarks/sequence_shapes.py --part forecast     # writes sequence_shapes_forecast
    python benchmarks/sequence_shapes.py --part reverser     # writes sequence_shapes_reverser
    python benchmarks/sequence_shapes.py --part mnist        # writes sequence_shapes_mnist
    python benchmarks/sequence_shapes.py --part mnist --seeds 0 --no-search   # a quick try

The forecast and mnist parts first search their recipes on *validation* data with their own
selection seeds (``SELECTION_SEEDS``, 10-12), and stop if the search does not pick the recipe the
chapter uses (``sequence_shapes.FORECAST_RECIPE``, ``CLASSIFIER_RECIPE``, ``TAGGER_RECIPE`` and
``MLP`` below). Then each part runs the chapter's recipe with seeds 0-4 (``--seeds`` to change;
fewer than five seeds, or ``--no-search``, print without saving) and writes the search rows
(``role: selection``) and the per-seed rows (``role: evidence``) with ``book_utils.results.save``;
chapter 3 reads them. The seeds reported as evidence played no part in choosing the recipes.

forecast: the search scores each linear model's window, and each GRU forecaster's and the MLP's
learning rate, on validation series. The evidence scores held-out series (the chapter's), one
step ahead on the predictions of x_32 ... x_59 (so every window fits) and on the prediction of
x_32 alone (where the GRU, the MLP and the 32-value linear model read the same values), with a
paired bootstrap over the 500 held-out series of each difference at x_32; and the 10 values after
a context of 50, for the naive last value, the linear model and the two GRU forecasters.
reverser: the encoder-decoder's exact match on held-out strings, per length: up to 200 unseen
strings of each length 3-8 (every unseen one where fewer exist), and 200 of each of the longer
lengths 9 and 10, which training never showed.
mnist: the search trains every candidate recipe (learning rate and, for the classifier, the
shift; the epochs are fixed at 12 by the chapter's time budget) and scores the validation split
only. The evidence trains the GRU digit classifier and the per-row classifier of cropped digits
on the training split; test accuracy once per seed, and the per-row classifier's validation
accuracy after each row of the uncropped digits. A control trains the per-row classifier on
uncropped digits (every crop 28 rows), so that every row's prediction learns from every digit,
and records its accuracy on the cropped test digits and its validation accuracy after each row.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import pandas as pd
import torch
from torch import nn

from book_utils import data, models, results, sequence_shapes, session, training

NOISE, LENGTH, HORIZON, SCORED_FROM = 0.1, 60, 10, 32
MIN_DIGITS, MAX_DIGITS, LONGER, PER_LENGTH, SEQ2SEQ_STEPS = 3, 8, (9, 10), 200, 1500
MIN_ROWS = 14
# The pixel baseline: a linear softmax (multinomial logistic regression) on the 784 pixels,
# fitted full-batch by L-BFGS; its L2 penalty is searched on the validation digits.
LOGISTIC = {"l2": 1e-3, "iterations": 200}
LOGISTIC_L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
# Epochs are fixed by the chapter's time budget; the learning rate and the shift are searched.
CLASSIFIER_GRID = {"epochs": [12], "lr": [2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1], "max_shift": [0, 1]}
TAGGER_GRID = {"epochs": [12], "lr": [2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]}
LR_GRID, WINDOW_GRID = (1e-2, 3e-2, 1e-1, 3e-1), (4, 8, 16, 24, 32, 40, 44, 48, 50)
# A control for the one-step GRU: an MLP on the linear model's 32 values, 100 ReLU units, so
# 32 * 100 + 100 + 100 + 1 = 3,401 parameters against the GRU's 3,393; its lr is searched too.
MLP = {"window": 32, "hidden": 100, "steps": 1000, "batch_size": 256, "lr": 1e-2}
MLP_LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2)
# A control for the ten-step forecasters: an MLP on the last 48 values (the linear direct
# model's window) with 10 outputs, 48 * 62 + 62 + 62 * 10 + 10 = 3,668 parameters against the
# direct GRU's 3,690; same budget as the one-step MLP, its own lr searched on validation.
MLP_DIRECT = {"window": 48, "hidden": 62, "steps": 1000, "batch_size": 256, "lr": 1e-2}
BOOTSTRAP = 2000  # resamples of the 500 held-out series
COMPARED_AT_32 = (("GRU", "linear"), ("GRU", "MLP"), ("MLP", "linear"))
COMPARED_ALL_STEPS = (("GRU", "linear"), ("GRU", "MLP"))
# Ten steps ahead: (a, b, steps scored) with steps counted from 1.
COMPARED_K = (("rollout", "direct", range(1, 11)), ("rollout", "direct", range(2, 10)),
              ("rollout", "linear", range(10, 11)), ("direct", "linear", range(10, 11)),
              ("direct", "MLP", range(1, 11)), ("direct", "MLP", range(10, 11)))
SELECTION_SEEDS = (10, 11, 12)  # choose recipes; the evidence uses seeds 0-4
COMMAND = "python benchmarks/sequence_shapes.py --part {}"
# Every book_utils object the stored runs call (the call graph walked from each part).
TRAINING = ["book_utils.training.fit", "book_utils.training.update",
            "book_utils.training.evaluate", "book_utils.session.seed_everything"]
SOURCES = {
    "forecast": ["book_utils.sequence_shapes.FORECAST_RECIPE",
                 "book_utils.sequence_shapes.RecurrentForecaster",
                 "book_utils.sequence_shapes.LinearForecaster",
                 "book_utils.sequence_shapes.train_forecaster",
                 "book_utils.sequence_shapes.noisy_sines",
                 "book_utils.sequence_shapes.naive_forecast",
                 "book_utils.sequence_shapes.horizon_targets",
                 "book_utils.training.update", "book_utils.session.seed_everything"],
    "reverser": ["book_utils.models.EncoderDecoder", "book_utils.models.train_encoder_decoder",
                 "book_utils.models.decode_and_score", "book_utils.models.exact_match",
                 "book_utils.models.shift_right", "book_utils.data.reversal_pairs",
                 "book_utils.data.Vocabulary", "book_utils.data.length_mask",
                 "book_utils.training.random_batches", "book_utils.training.masked_cross_entropy",
                 "book_utils.sequence_shapes.reversal_pairs_by_length", *TRAINING],
    "mnist": ["book_utils.sequence_shapes.CLASSIFIER_RECIPE",
              "book_utils.sequence_shapes.TAGGER_RECIPE",
              "book_utils.sequence_shapes.PerStepClassifier",
              "book_utils.sequence_shapes.CroppedBatches",
              "book_utils.sequence_shapes.random_crops",
              "book_utils.sequence_shapes.last_step_accuracy",
              "book_utils.sequence_shapes.last_valid_step",
              "book_utils.training.train_classifier", "book_utils.training.make_optimizer",
              "book_utils.training.masked_cross_entropy", "book_utils.data.length_mask",
              "book_utils.models.make_classifier", "book_utils.models.make_recurrent",
              "book_utils.models.SequenceClassifier", "book_utils.data.RandomShifts",
              "book_utils.data.shift_images", "book_utils.data.load_mnist",
              "book_utils.data._load_embedded", "book_utils.data._carve_validation",
              "book_utils.data._stratified_split", "book_utils.data.mnist_loader",
              "book_utils.data.make_loader", *TRAINING],
}


# ---------------------------------------------------------------- forecasting


def series() -> dict[str, torch.Tensor]:
    """The chapter's training and held-out series, and validation series for the search."""
    return {name: sequence_shapes.noisy_sines(n, LENGTH, noise=NOISE, seed=seed)[0]
            for name, n, seed in (("train", 1024, 0), ("test", 500, 1), ("validation", 500, 2))}


def train_gru(train: torch.Tensor, horizon: int, lr: float, seed: int, device: torch.device):
    recipe = sequence_shapes.FORECAST_RECIPE
    session.seed_everything(seed)
    model = sequence_shapes.RecurrentForecaster(recipe["hidden_size"], horizon=horizon).to(device)
    history = sequence_shapes.train_forecaster(model, train, steps=recipe["steps"], lr=lr, seed=seed)
    return model, history["seconds"][0]


def one_step_mse(predictions: torch.Tensor, held_out: torch.Tensor, last: int | None = None) -> float:
    """MSE of one-step predictions (batch, steps) of x_1 ... x_{T-1}, scored from x_32 to x_last."""
    stop = None if last is None else last + 1
    errors = predictions[:, SCORED_FROM - 1: None if stop is None else stop - 1] - held_out[:, SCORED_FROM:stop]
    return (errors ** 2).mean().item()


def linear_one_step(train: torch.Tensor, held_out: torch.Tensor, window: int) -> torch.Tensor:
    """The linear model's one-step predictions, aligned with x_1 ... x_{T-1} (NaN before a full window)."""
    fitted = sequence_shapes.LinearForecaster(window, 1).fit(train)(held_out[:, :-1])[..., 0]
    return torch.cat([torch.full((len(held_out), window - 1), float("nan")), fitted], dim=1)


def gru_one_step(model, held_out: torch.Tensor, device: torch.device) -> torch.Tensor:
    with torch.no_grad():
        return model(held_out[:, :-1, None].to(device))[0][..., 0].cpu()


def multi_step(forecast: torch.Tensor, future: torch.Tensor) -> dict[str, float]:
    errors = ((forecast - future) ** 2).mean(dim=0)
    return {"MSE, step 1": errors[0].item(), f"MSE, step {HORIZON}": errors[-1].item(),
            f"MSE, mean of {HORIZON}": errors.mean().item(),
            f"MSE, mean of steps 2-{HORIZON - 1}": errors[1:-1].mean().item(),
            **{f"MSE at step {k + 1}": e.item() for k, e in enumerate(errors)}}


def mlp_windows(series: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of ``window`` values with the value after it: (n, window), (n,)."""
    windows = series[:, :-1].unfold(1, window, 1)                 # ends at x_{window-1} ... x_{T-2}
    return windows.reshape(-1, window), series[:, window:].reshape(-1)


def train_mlp(train: torch.Tensor, lr: float, seed: int, device: torch.device,
              recipe: dict = MLP, horizon: int = 1) -> nn.Module:
    """An MLP on the last recipe["window"] values with ``horizon`` outputs (Adam, one cycle)."""
    session.seed_everything(seed)
    model = nn.Sequential(nn.Linear(recipe["window"], recipe["hidden"]), nn.ReLU(),
                          nn.Linear(recipe["hidden"], horizon)).to(device)
    if horizon == 1:
        inputs, targets = mlp_windows(train, recipe["window"])
        targets = targets[:, None]
    else:  # every window with ``horizon`` values after it
        runs = train.unfold(1, recipe["window"] + horizon, 1).reshape(-1, recipe["window"] + horizon)
        inputs, targets = runs[:, :recipe["window"]], runs[:, recipe["window"]:]
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=recipe["steps"])
    generator = torch.Generator().manual_seed(seed)
    for _ in range(recipe["steps"]):
        index = torch.randint(0, len(inputs), (recipe["batch_size"],), generator=generator).to(device)
        loss = nn.functional.mse_loss(model(inputs[index]), targets[index])
        training.update(model, loss, optimizer, clip_norm=1.0, scheduler=schedule)
    return model.eval()


def mlp_forecast(model: nn.Module, context: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The ten-step MLP's forecast of the values after ``context`` (batch, HORIZON)."""
    with torch.no_grad():
        return model(context[:, -MLP_DIRECT["window"]:].to(device)).cpu()


def mlp_one_step(model: nn.Module, held_out: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The MLP's one-step predictions, aligned with x_1 ... x_{T-1} (NaN before a full window)."""
    window = MLP["window"]
    with torch.no_grad():
        windows = held_out[:, :-1].unfold(1, window, 1).to(device)
        fitted = model(windows)[..., 0].cpu()
    return torch.cat([torch.full((len(held_out), window - 1), float("nan")), fitted], dim=1)


def interval(difference: torch.Tensor) -> tuple[float, float, float]:
    """Mean of a per-series difference and its 95% paired-bootstrap interval over the series.

    The seeds vary only the training, and every seed is scored on the same held-out series;
    resampling the series (fixed generator) gives the sampling noise the seeds do not show.
    """
    index = torch.randint(0, len(difference), (BOOTSTRAP, len(difference)),
                          generator=torch.Generator().manual_seed(0))
    low, high = torch.quantile(difference[index].mean(dim=1), torch.tensor([0.025, 0.975])).tolist()
    return difference.mean().item(), low, high


def bootstrap_row(seed: int, task: str, pair: str, where: str, difference: torch.Tensor) -> list[dict]:
    mean, low, high = interval(difference)
    return [{"seed": seed, "task": task, "model": pair, "measure": measure, "value": value}
            for measure, value in ((f"{where}: mean difference", mean),
                                   ("95% interval, low", low), ("95% interval, high", high))
            ] if where.startswith("x_") else [
            {"seed": seed, "task": task, "model": pair, "measure": f"{where}: {name}", "value": value}
            for name, value in (("mean difference", mean), ("95% low", low), ("95% high", high))]


def bootstrap_rows(seed: int, errors: dict[str, torch.Tensor], held_out: torch.Tensor) -> list[dict]:
    """Paired bootstrap over the held-out series of each model's one-step edge.

    At x_32 alone (rows as before) and over the scored steps x_32 ... x_59 (per-series mean).
    """
    target = held_out[:, SCORED_FROM]
    squared = {name: (p[:, SCORED_FROM - 1] - target) ** 2 for name, p in errors.items()}
    rows = []
    for a, b in COMPARED_AT_32:
        rows += bootstrap_row(seed, "one step, paired bootstrap", f"{a} minus {b}",
                              f"x_{SCORED_FROM}", squared[a] - squared[b])
    per_series = {name: ((p[:, SCORED_FROM - 1:] - held_out[:, SCORED_FROM:]) ** 2).mean(dim=1)
                  for name, p in errors.items()}
    for a, b in COMPARED_ALL_STEPS:
        rows += bootstrap_row(seed, "one step, paired bootstrap", f"{a} minus {b}",
                              "all scored steps", per_series[a] - per_series[b])
    return rows


def bootstrap_k_rows(seed: int, forecasts: dict[str, torch.Tensor], future: torch.Tensor) -> list[dict]:
    """Paired bootstrap over the held-out series of the ten-step differences in COMPARED_K."""
    squared = {name: (f - future) ** 2 for name, f in forecasts.items()}
    rows = []
    for a, b, steps in COMPARED_K:
        columns = list(range(steps.start - 1, steps.stop - 1))
        where = (f"step {steps.start}" if len(columns) == 1
                 else f"mean of steps {steps.start}-{steps.stop - 1}")
        difference = (squared[a][:, columns] - squared[b][:, columns]).mean(dim=1)
        rows += bootstrap_row(seed, f"{HORIZON} steps, paired bootstrap", f"{a} minus {b}",
                              where, difference)
    return rows


def forecast_search(device: torch.device) -> list[dict]:
    """Every candidate forecasting setting on the validation series, one row per run."""
    data_ = series()
    train, val = data_["train"], data_["validation"]
    context, future = val[:, :-HORIZON], val[:, -HORIZON:]
    rows = []

    def row(seed, model, setting, value):
        rows.append({"seed": seed, "role": "selection", "task": "search", "model": model,
                     "setting": setting, "measure": "validation MSE", "value": value})

    for window in WINDOW_GRID:  # least squares: no seed
        if window <= SCORED_FROM:
            row(None, "linear, one step", window, one_step_mse(linear_one_step(train, val, window), val))
        forecast = sequence_shapes.LinearForecaster(window, HORIZON).fit(train).forecast(context)
        row(None, "linear, direct", window, multi_step(forecast, future)[f"MSE, mean of {HORIZON}"])
    for seed in SELECTION_SEEDS:
        for lr in LR_GRID:
            model, _ = train_gru(train, 1, lr, seed, device)
            row(seed, "GRU, one step", lr, one_step_mse(gru_one_step(model, val, device), val))
            model, _ = train_gru(train, HORIZON, lr, seed, device)
            forecast = model.forecast(context.to(device)).cpu()
            row(seed, f"GRU, vector of {HORIZON}", lr, multi_step(forecast, future)[f"MSE, mean of {HORIZON}"])
        for lr in MLP_LR_GRID:
            model = train_mlp(train, lr, seed, device)
            row(seed, "MLP, one step", lr, one_step_mse(mlp_one_step(model, val, device), val))
            model = train_mlp(train, lr, seed, device, MLP_DIRECT, HORIZON)
            row(seed, f"MLP, vector of {HORIZON}", lr,
                multi_step(mlp_forecast(model, context, device), future)[f"MSE, mean of {HORIZON}"])
        print(f"selection seed {seed} done", flush=True)
    return rows


def best_settings(rows: list[dict], keys: list[str], lowest: bool) -> dict[str, dict]:
    """Per model, the setting with the best mean over the selection seeds."""
    table = pd.DataFrame([r for r in rows if r["role"] == "selection"])
    means = table.groupby(["model", *keys], dropna=False)["value"].mean().reset_index()
    groups = means.groupby("model")["value"]
    best = means.loc[groups.idxmin() if lowest else groups.idxmax()]
    return {row["model"]: {k: row[k] for k in keys} for _, row in best.iterrows()}


def check_forecast_recipe(rows: list[dict]) -> None:
    chosen = {m: v["setting"] for m, v in best_settings(rows, ["setting"], lowest=True).items()}
    print("chosen on validation:", chosen)
    recipe = sequence_shapes.FORECAST_RECIPE
    expected = {"linear, one step": recipe["window_one_step"], "linear, direct": recipe["window_direct"],
                "GRU, one step": recipe["lr_one_step"], f"GRU, vector of {HORIZON}": recipe["lr_direct"],
                "MLP, one step": MLP["lr"], f"MLP, vector of {HORIZON}": MLP_DIRECT["lr"]}
    wrong = {m: (v, expected[m]) for m, v in chosen.items() if v != expected[m]}
    if wrong:
        raise SystemExit(f"the search chose {wrong} (chosen, in the recipe): update the recipe and rerun")


def forecast_rows(seeds: list[int], device: torch.device) -> list[dict]:
    recipe = sequence_shapes.FORECAST_RECIPE
    data_ = series()
    train, test = data_["train"], data_["test"]
    context, future = test[:, :-HORIZON], test[:, -HORIZON:]
    naive_one = test[:, :-1]  # x_t as the forecast of x_{t+1}
    linear_one = linear_one_step(train, test, recipe["window_one_step"])
    naive_k = multi_step(sequence_shapes.naive_forecast(context, HORIZON), future)
    linear_direct = sequence_shapes.LinearForecaster(recipe["window_direct"], HORIZON).fit(train)
    linear_k = multi_step(linear_direct.forecast(context), future)
    rows = []
    for seed in seeds:
        one_step, one_seconds = train_gru(train, 1, recipe["lr_one_step"], seed, device)
        direct, direct_seconds = train_gru(train, HORIZON, recipe["lr_direct"], seed, device)
        forecasts = {"rollout": one_step.rollout(context.to(device), HORIZON).cpu(),
                     "direct": direct.forecast(context.to(device)).cpu(),
                     "linear": linear_direct.forecast(context),
                     "MLP": mlp_forecast(train_mlp(train, MLP_DIRECT["lr"], seed, device,
                                                   MLP_DIRECT, HORIZON), context, device)}
        rollout_k, direct_k = (multi_step(forecasts[m], future) for m in ("rollout", "direct"))
        mlp_k = multi_step(forecasts["MLP"], future)
        gru_predictions = gru_one_step(one_step, test, device)
        gru_one = one_step_mse(gru_predictions, test)
        predictions = {"naive (last value)": naive_one,
                       f"linear (window {recipe['window_one_step']})": linear_one,
                       f"MLP (window {MLP['window']})": mlp_one_step(
                           train_mlp(train, MLP["lr"], seed, device), test, device),
                       "GRU": gru_predictions}
        for model, predicted in predictions.items():
            rows += [{"seed": seed, "role": "evidence", "task": "one step", "model": model,
                      "measure": measure, "value": one_step_mse(predicted, test, last)}
                     for measure, last in (("one-step MSE", None),
                                           (f"MSE of x_{SCORED_FROM} alone", SCORED_FROM))]
        named = dict(zip(("naive", "linear", "MLP", "GRU"), predictions.values()))
        rows += [{**r, "role": "evidence"} for r in bootstrap_rows(seed, named, test)]
        for model, errors in [("naive (last value)", naive_k),
                              (f"linear (window {recipe['window_direct']}), direct", linear_k),
                              ("GRU, predictions fed back", rollout_k),
                              (f"GRU, vector of {HORIZON}", direct_k),
                              (f"MLP (window {MLP_DIRECT['window']}), vector of {HORIZON}", mlp_k)]:
            rows += [{"seed": seed, "role": "evidence", "task": f"{HORIZON} steps", "model": model,
                      "measure": measure, "value": value} for measure, value in errors.items()]
        rows += [{**r, "role": "evidence"} for r in bootstrap_k_rows(seed, forecasts, future)]
        print(f"seed {seed}: one-step GRU {gru_one:.5f}, direct GRU "
              f"{direct_k[f'MSE, mean of {HORIZON}']:.5f}; trained in {one_seconds:.1f} s "
              f"+ {direct_seconds:.1f} s", flush=True)
    return rows


# ---------------------------------------------------------------- reversing digit strings


def reverser_rows(seeds: list[int], device: torch.device) -> list[dict]:
    vocab = data.Vocabulary("0123456789")
    sources, targets = data.reversal_pairs(20000, MIN_DIGITS, MAX_DIGITS, seed=0)
    held_out, expected = sequence_shapes.reversal_pairs_by_length(
        PER_LENGTH, MIN_DIGITS, MAX_DIGITS, exclude=sources, seed=1)
    longer, longer_expected = sequence_shapes.reversal_pairs_by_length(
        PER_LENGTH, *LONGER, seed=2)
    held_out, expected = held_out + longer, expected + longer_expected
    rows = []
    for seed in seeds:
        session.seed_everything(seed)
        model = models.EncoderDecoder(len(vocab), embedding_size=32, hidden_size=64).to(device)
        history = models.train_encoder_decoder(model, vocab, sources, targets, steps=SEQ2SEQ_STEPS,
                                               lr=0.01, batch_size=64, seed=seed)
        _, predicted = models.decode_and_score(model, vocab, held_out, expected)
        table = pd.DataFrame({"length": [len(s) for s in held_out],
                              "exact": [p == e for p, e in zip(predicted, expected)]})
        for length, group in table.groupby("length"):
            rows.append({"seed": seed, "length": int(length), "examples": len(group),
                         "trained on this length": bool(length <= MAX_DIGITS),
                         "exact match": float(group["exact"].mean())})
        print(f"seed {seed}: {history['seconds'][0]:.1f} s, exact match by length "
              f"{[round(r['exact match'], 3) for r in rows[-len(set(table['length'])):]]}",
              flush=True)
    return rows


# ---------------------------------------------------------------- MNIST


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


def train_logistic(mnist: data.MNIST, l2: float, seed: int) -> nn.Module:
    """Multinomial logistic regression on the 784 pixels: cross-entropy + l2 * |W|^2, L-BFGS."""
    session.seed_everything(seed)
    model = nn.Linear(28 * 28, 10)
    x, y = mnist.x_train.reshape(len(mnist.x_train), -1).cpu(), mnist.y_train.cpu()
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=LOGISTIC["iterations"],
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model.eval()


def logistic_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x.reshape(len(x), -1).cpu()).argmax(dim=1) == y.cpu()).float().mean().item()


def crops(mnist: data.MNIST, min_rows: int = MIN_ROWS) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The chapter's cropped digits: split -> (x, lengths, labels), one seed per split."""
    splits = {"train": (mnist.x_train, mnist.y_train), "validation": (mnist.x_val, mnist.y_val),
              "test": (mnist.x_test, mnist.y_test)}
    return {name: (*sequence_shapes.random_crops(x, min_rows, seed=k), y)
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


def accuracy_after_each_row(model, mnist: data.MNIST, device: torch.device) -> torch.Tensor:
    """Validation accuracy of the prediction after r rows of the uncropped digits, r = 1 ... 28."""
    with torch.no_grad():
        logits = model(mnist.x_val.to(device), torch.full((len(mnist.x_val),), 28)).cpu()
    return (logits.argmax(dim=2) == mnist.y_val[:, None]).float().mean(dim=0)


def mnist_rows(mnist: data.MNIST, seeds: list[int], device: torch.device) -> list[dict]:
    cropped, uncropped, rows = crops(mnist), crops(mnist, min_rows=28), []
    for seed in seeds:
        logistic = train_logistic(mnist, LOGISTIC["l2"], seed)
        rows.append({"seed": seed, "model": "logistic regression on the pixels",
                     "measure": "test accuracy", "rows read": 28,
                     "value": logistic_accuracy(logistic, mnist.x_test, mnist.y_test)})
        classifier, val, _ = train_classifier(mnist, sequence_shapes.CLASSIFIER_RECIPE, seed, device)
        test = training.evaluate(classifier, data.mnist_loader(mnist, "test", batch_size=500))["accuracy"]
        rows.append({"seed": seed, "model": "GRU digit classifier", "measure": "test accuracy",
                     "rows read": 28, "value": test})
        tagger, val, _ = train_tagger(cropped, sequence_shapes.TAGGER_RECIPE, seed, device)
        tagger_test = tagger_accuracy(tagger, cropped["test"], device)
        rows.append({"seed": seed, "model": "GRU per-row classifier",
                     "measure": "test accuracy, cropped digits", "rows read": None,
                     "value": tagger_test})
        by_row = accuracy_after_each_row(tagger, mnist, device)
        rows += [{"seed": seed, "model": "GRU per-row classifier",
                  "measure": "validation accuracy after t rows", "rows read": t + 1,
                  "value": by_row[t].item()} for t in range(28)]
        control, _, _ = train_tagger(uncropped, sequence_shapes.TAGGER_RECIPE, seed, device)
        control_by_row = accuracy_after_each_row(control, mnist, device)
        control_name = "GRU per-row classifier, trained on uncropped digits"
        rows.append({"seed": seed, "model": control_name, "measure": "test accuracy, cropped digits",
                     "rows read": None, "value": tagger_accuracy(control, cropped["test"], device)})
        rows += [{"seed": seed, "model": control_name,
                  "measure": "validation accuracy after t rows", "rows read": t + 1,
                  "value": control_by_row[t].item()} for t in range(28)]
        print(f"seed {seed}: classifier test {test:.2%}, per-row classifier test "
              f"{tagger_test:.2%}, best row {int(by_row.argmax()) + 1} "
              f"(uncropped control: {int(control_by_row.argmax()) + 1})", flush=True)
    return [{**row, "role": "evidence"} for row in rows]


def search(mnist: data.MNIST, seeds: list[int], device: torch.device) -> list[dict]:
    """Every candidate MNIST recipe on the validation split, one row per run."""
    cropped, rows = crops(mnist), []
    for l2 in LOGISTIC_L2_GRID:
        for seed in seeds:
            model = train_logistic(mnist, l2, seed)
            rows.append({"seed": seed, "role": "selection", "model": "logistic regression on the pixels",
                         "measure": "validation accuracy", "rows read": None, "l2": l2,
                         "value": logistic_accuracy(model, mnist.x_val, mnist.y_val)})
        print(f"logistic regression, l2 {l2}: "
              f"{statistics.mean(r['value'] for r in rows[-len(seeds):]):.2%}", flush=True)
    for name, grid, run in [
        ("GRU digit classifier", CLASSIFIER_GRID, lambda r, s: train_classifier(mnist, r, s, device)),
        ("GRU per-row classifier", TAGGER_GRID, lambda r, s: train_tagger(cropped, r, s, device)),
    ]:
        for values in itertools.product(*grid.values()):
            recipe = dict(zip(grid, values))
            for seed in seeds:
                _, accuracy, seconds = run(recipe, seed)
                rows.append({"seed": seed, "role": "selection", "model": name,
                             "measure": "validation accuracy", "rows read": None,
                             "epochs": recipe["epochs"], "lr": recipe["lr"],
                             "max_shift": recipe.get("max_shift"), "value": accuracy,
                             "seconds": seconds})
            print(f"{name}: {recipe} -> {statistics.mean(r['value'] for r in rows[-len(seeds):]):.2%}",
                  flush=True)
    return rows


def check_mnist_recipes(rows: list[dict]) -> None:
    chosen = best_settings([r for r in rows if "l2" not in r], ["epochs", "lr", "max_shift"], lowest=False)
    l2 = best_settings([r for r in rows if "l2" in r], ["l2"], lowest=False)
    print("chosen on validation:", chosen, l2)
    if l2["logistic regression on the pixels"]["l2"] != LOGISTIC["l2"]:
        raise SystemExit(f"logistic regression: the search chose {l2}, LOGISTIC is {LOGISTIC}")
    for name, recipe in [("GRU digit classifier", sequence_shapes.CLASSIFIER_RECIPE),
                         ("GRU per-row classifier", sequence_shapes.TAGGER_RECIPE)]:
        picked = {k: v for k, v in chosen[name].items() if k in recipe}
        if picked != recipe:
            raise SystemExit(f"{name}: the search chose {picked}, the recipe is {recipe}: update it")


# ---------------------------------------------------------------- main


def report(part: str, rows: list[dict], by: list[str], value: str, seeds: list[int], notes: str,
           selection: list[dict] = ()) -> None:
    """Print the evidence's summary; save it with the search rows behind its recipe."""
    table = pd.DataFrame(results.summarize(rows, by, value))
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 200):
        print(table.round(5).to_string(index=False))
    if len(seeds) >= results.MIN_SEEDS and (selection or part == "reverser"):
        path = results.save(f"sequence_shapes_{part}", [*selection, *rows],
                            sources=["benchmarks/sequence_shapes.py", *SOURCES[part]],
                            command=COMMAND.format(part), notes=notes)
        print(f"wrote {path}")
    else:
        print(f"(not saved: {len(seeds)} seeds, or no search; a results file needs "
              f"{results.MIN_SEEDS} seeds and the search behind its recipe)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--part", choices=("all", "forecast", "reverser", "mnist"), default="all")
    parser.add_argument("--no-search", action="store_true",
                        help="skip the recipe search (a quick try; nothing is saved)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = session.pick_device()
    start = time.perf_counter()
    parts = ("forecast", "reverser", "mnist") if args.part == "all" else (args.part,)
    for part in parts:
        print(f"\n== {part}, seeds {args.seeds}", flush=True)
        if part == "forecast":
            selection = [] if args.no_search else forecast_search(device)
            if selection:
                check_forecast_recipe(selection)
            rows = forecast_rows(args.seeds, device)
            report(part, rows, ["task", "model", "measure"], "value", args.seeds, f"device {device}",
                   selection)
        elif part == "reverser":
            rows = reverser_rows(args.seeds, device)
            report(part, rows, ["length"], "exact match", args.seeds, f"device {device}")
        else:
            mnist = data.load_mnist(validation_fraction=0.125, device=device)
            selection = [] if args.no_search else search(mnist, list(SELECTION_SEEDS), device)
            if selection:
                check_mnist_recipes(selection)
            rows = mnist_rows(mnist, args.seeds, device)
            report(part, rows, ["model", "measure", "rows read"], "value", args.seeds,
                   f"data: {mnist.describe()}; device {device}", selection)
    print(f"device {device}, total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
