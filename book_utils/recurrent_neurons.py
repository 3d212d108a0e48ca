"""Chapter 1, recurrent neurons: its figures.

- :func:`draw_unrolled_rnn`: a recurrent layer, folded and unrolled through time.
- :func:`plot_digit_rows`: an MNIST digit as the sequence of rows an RNN reads.
- :func:`plot_compared_runs`: the learning curves of several runs, overlaid.

The cell itself, :mod:`book_utils.cells`, is core: later chapters build on it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ._checks import check_int, check_type
from .plots import CYCLE, DIAGRAM, as_numpy, diagram_axes, draw_arrow, draw_box


def draw_unrolled_rnn(steps: int = 3, *, state: str = "h", output: str | None = None) -> Figure:
    """A recurrent layer folded (left, with its loop) and unrolled through ``steps`` steps.

    Each copy shares the same weights: W_xh on the input arrows and W_hh on the
    arrows that carry the state forward. With ``output`` set (e.g. ``"y"``), an
    output node sits above each step.
    """
    check_int("steps", steps, minimum=1)
    if steps > 8:
        raise ValueError(f"steps must be at most 8 to stay readable, got {steps}")
    check_type("state", state, str)
    if output is not None:
        check_type("output", output, str)
    top = 3.2 if output else 2.4
    fig, ax = diagram_axes(2.8 + 1.6 * steps, top + 0.3)
    # Folded form: one cell with a loop.
    draw_box(ax, (0.9, 1.4), f"${state}$", "state")
    draw_box(ax, (0.9, 0.4), "$x$", "input")
    draw_arrow(ax, (0.9, 0.7), (0.9, 1.1))
    draw_arrow(ax, (1.35, 1.55), (1.35, 1.25), curve=-2.2)
    ax.text(1.8, 1.4, "$W_{hh}$", fontsize=DIAGRAM["font"] - 1, va="center")
    if output:
        draw_box(ax, (0.9, 2.6), f"${output}$", "output")
        draw_arrow(ax, (0.9, 1.7), (0.9, 2.3))
    ax.text(2.55, 1.4, "=", fontsize=18, ha="center", va="center")
    # Unrolled form.
    for t in range(steps):
        x = 3.4 + 1.6 * t
        label = f"t={t}" if steps <= 4 else str(t)
        draw_box(ax, (x, 1.4), f"${state}_{{{t}}}$", "state")
        draw_box(ax, (x, 0.4), f"$x_{{{t}}}$", "input")
        draw_arrow(ax, (x, 0.7), (x, 1.1), "$W_{xh}$" if t == 0 else None)
        if output:
            draw_box(ax, (x, 2.6), f"${output}_{{{t}}}$", "output")
            draw_arrow(ax, (x, 1.7), (x, 2.3))
        if t > 0:
            draw_arrow(ax, (x - 1.15, 1.4), (x - 0.45, 1.4))
        ax.text(x, -0.1, label, ha="center", fontsize=DIAGRAM["font"] - 2)
    if steps > 1:
        ax.text(3.4 + 0.8, 1.6, "$W_{hh}$", fontsize=DIAGRAM["font"] - 1, ha="center")
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
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for (name, history), colour, marker in zip(histories.items(), CYCLE, "os^vDP"):
            for split, style in (("train", "-"), ("val", "--")):
                label = f"{name}, {'training' if split == 'train' else 'validation'}"
                ax.plot(history["epoch"], history[f"{split}_{metric}"], style, color=colour,
                        marker=marker, ms=3, markevery=max(1, len(history["epoch"]) // 10),
                        label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
