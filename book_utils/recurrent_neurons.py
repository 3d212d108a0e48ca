"""Chapter 1, recurrent neurons: the MNIST-row classifier's recipe, and the chapter's figures.

- :data:`RECIPE`: the recipe of the chapter's classifier; :data:`VARIANTS` the recipe with one
  part removed at a time (and with all of them removed), as ``benchmarks/mnist_rnn.py`` runs them.
- :func:`make_mnist_rnn` and :func:`train_mnist_rnn`: a classifier, and its training, by a recipe.
- :func:`paired_differences`: what the recipe is worth against each variant, seed by seed.
- :func:`draw_unrolled_rnn`: a recurrent layer, folded and unrolled through time.
- :func:`plot_digit_rows`: an MNIST digit as the sequence of rows an RNN reads.
- :func:`plot_compared_runs`: the learning curves of several runs, overlaid.

The cell itself, :mod:`book_utils.cells`, is core: later chapters build on it.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from torch import nn

from . import data, models, training
from ._checks import (
    check_bool, check_choice, check_float, check_int, check_type, checked_by,
)
from .plots import CYCLE, DIAGRAM, as_numpy, diagram_axes, draw_arrow, draw_box

# The classifier's recipe. Its learning rate is chosen from LR_GRID on the validation split,
# and benchmarks/mnist_rnn.py checks each of its other parts there; the sizes (128 units,
# batch 64, 50 epochs, shifts of 2 pixels, clipping at 1) were set, not searched.
RECIPE = {
    "hidden_size": 128,     # H
    "batch_size": 64,
    "epochs": 50,
    "optimizer": "rmsprop",
    "lr": 1e-3,             # the peak rate of the one-cycle schedule
    "schedule": "onecycle",  # or None: a constant rate
    "clip_norm": 1.0,        # or None: no clipping
    "max_shift": 2,          # pixels a training digit moves, afresh every epoch; 0: none
    "orthogonal": True,      # W_hh starts orthogonal; False: PyTorch's initialisation
}

# Each variant changes these entries of the recipe: one part at a time, then all at once.
VARIANTS = {
    "recipe": {},
    "no shifts": {"max_shift": 0},
    "PyTorch's initial W_hh": {"orthogonal": False},
    "constant rate": {"schedule": None},
    "no clipping": {"clip_norm": None},
    "Adam": {"optimizer": "adam"},
    "none of them": {"optimizer": "adam", "schedule": None, "clip_norm": None,
                     "max_shift": 0, "orthogonal": False},
}

# The learning rates each variant may pick from on the validation split.
LR_GRID = (5e-4, 1e-3, 2e-3, 4e-3)

_OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}


def _check_recipe(recipe: Any) -> dict:
    """``recipe``: a dict with the keys of :data:`RECIPE`, each with a valid value."""
    check_type("recipe", recipe, dict)
    if set(recipe) != set(RECIPE):
        missing, unknown = sorted(set(RECIPE) - set(recipe)), sorted(set(recipe) - set(RECIPE))
        raise ValueError(f"recipe must have the keys of RECIPE, got missing {missing}, "
                         f"unknown {unknown}")
    for key in ("hidden_size", "batch_size", "epochs"):
        check_int(f"recipe['{key}']", recipe[key], minimum=1)
    check_int("recipe['max_shift']", recipe["max_shift"], minimum=0)
    check_choice("recipe['optimizer']", recipe["optimizer"], tuple(_OPTIMIZERS))
    check_float("recipe['lr']", recipe["lr"], minimum=0.0, strict_minimum=True)
    if recipe["schedule"] is not None:
        check_choice("recipe['schedule']", recipe["schedule"], ("onecycle", "cosine"))
    if recipe["clip_norm"] is not None:
        check_float("recipe['clip_norm']", recipe["clip_norm"], minimum=0.0, strict_minimum=True)
    check_bool("recipe['orthogonal']", recipe["orthogonal"])
    return recipe


def _check_make_mnist_rnn(kind: str = "rnn", recipe: dict = RECIPE) -> None:
    check_choice("kind", kind, ("rnn", "scratch_rnn"))
    _check_recipe(recipe)


@checked_by(_check_make_mnist_rnn)
def make_mnist_rnn(kind: str = "rnn", recipe: dict = RECIPE) -> models.SequenceClassifier:
    """The classifier of Equation (1.3): 28 rows in, 10 class scores out."""
    model = models.make_classifier(kind, hidden_size=recipe["hidden_size"])
    if recipe["orthogonal"]:
        layer = model.recurrent
        nn.init.orthogonal_(layer.cell.W_hh if kind == "scratch_rnn" else layer.weight_hh_l0)
    return model


def _check_train_mnist_rnn(model: nn.Module, split: data.MNIST, recipe: dict = RECIPE, *,
                           seed: int = 0, device=None, verbose: bool = False) -> None:
    check_type("model", model, nn.Module)
    check_type("split", split, data.MNIST)
    _check_recipe(recipe)
    check_int("seed", seed, minimum=0)
    check_bool("verbose", verbose)


@checked_by(_check_train_mnist_rnn)
def train_mnist_rnn(model: nn.Module, split: data.MNIST, recipe: dict = RECIPE, *,
                    seed: int = 0, device=None, verbose: bool = False) -> dict:
    """Train ``model`` on ``split``'s training digits by ``recipe``; see :func:`training.fit`.

    ``seed`` fixes the order of the minibatches and the shifts, so two models
    trained with the same seed see the same digits in the same positions.
    Validation accuracy is recorded after every epoch when ``split`` has a validation split.
    """
    loader = data.mnist_loader(split, "train", batch_size=recipe["batch_size"], seed=seed)
    loader = data.RandomShifts(loader, max_shift=recipe["max_shift"], seed=seed)
    steps = recipe["epochs"] * len(loader)
    if recipe["schedule"] is None:                     # a constant rate
        optimizer = _OPTIMIZERS[recipe["optimizer"]](model.parameters(), lr=recipe["lr"])
        scheduler = None
    else:
        optimizer, scheduler = training.make_optimizer(
            model, lr=recipe["lr"], total_steps=steps, optimizer=recipe["optimizer"],
            schedule=recipe["schedule"])
    val = data.mnist_loader(split, "validation") if split.y_val is not None else None
    return training.fit(model, loader, epochs=recipe["epochs"], optimizer=optimizer,
                        scheduler=scheduler, val_loader=val, clip_norm=recipe["clip_norm"],
                        device=device, verbose=verbose)


def _check_paired_differences(rows: list[dict], baseline: str, *, value: str = "val",
                               by: str = "variant") -> None:
    check_type("rows", rows, list)
    check_type("baseline", baseline, str)
    check_type("value", value, str)
    check_type("by", by, str)
    keys = {"seed", by, value}
    bad = [i for i, row in enumerate(rows) if not isinstance(row, dict) or not keys <= set(row)]
    if not rows or bad:
        raise ValueError(f"rows must be a non-empty list of dicts with keys {sorted(keys)}, "
                         f"got {len(rows)} rows" + (f", rows {bad[:5]} without them" if bad else ""))
    seeds: dict[str, list] = {}
    for row in rows:
        seeds.setdefault(row[by], []).append(row["seed"])
    if baseline not in seeds:
        raise ValueError(f"baseline must be one of the rows' {by} values {sorted(seeds)}, "
                         f"got {baseline!r}")
    for group, group_seeds in seeds.items():
        if len(set(group_seeds)) != len(group_seeds):
            raise ValueError(f"rows must hold one run per seed and {by}, got seeds "
                             f"{sorted(group_seeds)} for {group!r}")
        if set(group_seeds) != set(seeds[baseline]):
            raise ValueError(f"every {by} must have the baseline's seeds "
                             f"{sorted(seeds[baseline])} to be paired, got {sorted(group_seeds)} "
                             f"for {group!r}")
    if len(seeds[baseline]) < 2:
        raise ValueError(f"rows must hold at least 2 seeds per {by} for a spread, "
                         f"got {len(seeds[baseline])}")


@checked_by(_check_paired_differences)
def paired_differences(rows: list[dict], baseline: str, *, value: str = "val",
                       by: str = "variant") -> list[dict]:
    """The baseline's ``value`` minus each other group's, seed by seed.

    ``rows`` hold one run per seed and group (``row[by]``); runs with the same ``seed``
    are paired (in the ablation a seed fixes the initial weights, the minibatch order and
    the shifts). For every group but ``baseline``, in order of first appearance: the
    number of pairs ``n``, the ``mean`` and sample standard deviation ``std`` of the
    differences, the paired ``t = mean / (std / sqrt(n))`` (infinite when every difference
    is the same non-zero number) and ``ahead``, in how many seeds the baseline is higher.
    """
    runs: dict[str, dict] = {}
    for row in rows:
        runs.setdefault(row[by], {})[row["seed"]] = float(row[value])
    reference = runs.pop(baseline)
    table = []
    for group, scores in runs.items():
        diffs = [reference[seed] - scores[seed] for seed in sorted(reference)]
        mean, std = statistics.fmean(diffs), statistics.stdev(diffs)
        if std > 0:
            t = mean / (std / math.sqrt(len(diffs)))
        else:                   # identical differences: no spread to divide by
            t = math.copysign(math.inf, mean) if mean else 0.0
        table.append({by: group, "n": len(diffs), "mean": mean, "std": std, "t": t,
                      "ahead": sum(d > 0 for d in diffs)})
    return table


def draw_unrolled_rnn(steps: int = 3, *, state: str = "h", output: str | None = None) -> Figure:
    """A recurrent layer folded (left, with its loop) and unrolled through ``steps`` steps.

    Every copy is labelled with the weights it shares: W_xh on the input arrow and
    W_hh on the arrow that carries the state forward. With ``output`` set (e.g.
    ``"o"``), a head W_hy turns each state into an output node above it.
    """
    check_int("steps", steps, minimum=1)
    if steps > 8:
        raise ValueError(f"steps must be at most 8 to stay readable, got {steps}")
    if output is not None:
        check_type("output", output, str)
    check_type("state", state, str)
    font = DIAGRAM["font"] - 1
    top = 3.2 if output else 2.4
    fig, ax = diagram_axes(3.2 + 1.8 * steps, top + 0.3)
    # Folded form: one cell with a loop.
    draw_box(ax, (0.9, 1.4), f"${state}_t$", "state")
    draw_box(ax, (0.9, 0.4), "$x_t$", "input")
    draw_arrow(ax, (0.9, 0.7), (0.9, 1.1), "$W_{xh}$")
    draw_arrow(ax, (1.35, 1.55), (1.35, 1.25), curve=-2.2)
    ax.text(1.75, 1.4, "$W_{hh}$", fontsize=font, va="center")
    if output:
        draw_box(ax, (0.9, 2.6), f"${output}_t$", "output")
        draw_arrow(ax, (0.9, 1.7), (0.9, 2.3), "$W_{hy}$")
    ax.text(2.5, 1.4, "=", fontsize=18, ha="center", va="center")
    # Unrolled form: the state arrives from the left (h_{-1} at the first copy).
    for t in range(steps):
        x = 4.2 + 1.8 * t
        draw_box(ax, (x, 1.4), f"${state}_{{{t}}}$", "state")
        draw_box(ax, (x, 0.4), f"$x_{{{t}}}$", "input")
        draw_arrow(ax, (x, 0.7), (x, 1.1), "$W_{xh}$")
        if output:
            draw_box(ax, (x, 2.6), f"${output}_{{{t}}}$", "output")
            draw_arrow(ax, (x, 1.7), (x, 2.3), "$W_{hy}$")
        draw_arrow(ax, (x - 1.35, 1.4), (x - 0.45, 1.4))
        ax.text(x - 0.9, 1.52, "$W_{hh}$", fontsize=font, ha="center", va="bottom")
        label = f"t={t}" if steps <= 4 else str(t)
        ax.text(x, -0.1, label, ha="center", fontsize=DIAGRAM["font"] - 2)
    ax.text(4.2 - 1.35, 1.25, f"${state}_{{-1}}$", fontsize=font, ha="left", va="top")
    ax.set_ylim(-0.3, top + 0.3)
    return fig


def plot_digit_rows(image, label: int | None = None) -> Figure:
    """A 28x28 digit, and the same digit as the sequence an RNN reads: one row per step."""
    image = as_numpy("image", image, dim=2)
    if label is not None:
        check_int("label", label, minimum=0, maximum=9)
    n_steps, n_features = image.shape
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 2.2]}
    )
    left.imshow(image, cmap="gray_r")
    left.set_title("the image" + (f" (label {label})" if label is not None else ""))
    left.set_xlabel("pixel in row (feature)")
    left.set_ylabel("row = time step t")
    left.grid(False)
    right.imshow(image.T, cmap="gray_r", aspect="auto")
    right.set_title(f"the sequence: {n_steps} steps, each a vector x_t of {n_features} pixels")
    right.set_xlabel("time step t (row of the image)")
    right.set_ylabel("feature (pixel)")
    right.grid(False)
    fig.tight_layout()
    return fig


def plot_compared_runs(histories: dict[str, dict]) -> Figure:
    """Loss and accuracy per epoch of several runs in one figure, to compare them.

    ``histories`` maps a run's name to the history :func:`~book_utils.training.fit`
    returned; each needs ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``
    and ``val_accuracy``. Each run has its own colour and marker; training is a
    solid line, validation a dashed one.
    """
    check_type("histories", histories, dict)
    if not histories:
        raise ValueError("histories must name at least one run, got an empty dict")
    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
    for name, history in histories.items():
        check_type(f"histories[{name!r}]", history, dict)
        missing = [k for k in keys if not history.get(k)]
        if missing:
            raise ValueError(f"histories[{name!r}] must record {list(keys)} (fit with a "
                             f"val_loader), missing or empty: {missing}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for (name, history), colour, marker in zip(histories.items(), CYCLE, "os^vDP"):
            for split, style in (("train", "-"), ("val", "--")):
                label = f"{name}, {'training' if split == 'train' else 'validation'}"
                ax.plot(history["epoch"], history[f"{split}_{metric}"], style, color=colour,
                        marker=marker, ms=3, markevery=max(1, len(history["epoch"]) // 10),
                        label=label)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy loss (log scale)")
    axes[1].set_ylabel("accuracy")
    axes[1].yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))   # as the tables
    axes[0].set_yscale("log")
    # One legend for both panels, below them: the same four lines are drawn in each.
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.09 * ((len(labels) + 3) // 4), 1, 1))
    return fig
