"""Figures for the book: learning curves, digits as sequences, and diagrams.

Plots read plain data (arrays, tensors, history dicts) and import nothing from
training. Colours come from the Okabe-Ito palette, which stays distinguishable
under the common forms of colour blindness. Diagrams share one style, built from
:func:`diagram_axes`, :func:`draw_box` and :func:`draw_arrow`.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ._checks import check_int, check_type

# Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}
CYCLE = [PALETTE[k] for k in ("blue", "orange", "green", "vermillion", "sky", "purple", "black")]

# Diagram roles, so every diagram in the book reads the same way.
DIAGRAM = {
    "input": PALETTE["sky"],
    "state": PALETTE["orange"],
    "output": PALETTE["green"],
    "gate": PALETTE["purple"],
    "loss": PALETTE["vermillion"],
    "edge": "#333333",
    "font": 11,
}


def use_book_style() -> None:
    """Set matplotlib defaults used by every chapter: palette, grid, readable sizes."""
    plt.rcParams.update(
        {
            "axes.prop_cycle": plt.cycler(color=CYCLE),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 10,
            "image.cmap": "viridis",
        }
    )


def _as_numpy(name: str, value, dim: int | None = None) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if dim is not None and value.ndim != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {value.shape}")
    return value


def plot_history(
    history: dict, *, title: str | None = None, labels: Sequence[str] = ("train", "held-out")
) -> Figure:
    """Loss and (if recorded) accuracy per epoch, for training and held-out data."""
    check_type("history", history, dict)
    missing = [k for k in ("epoch", "train_loss") if k not in history]
    if missing:
        raise ValueError(f"history must have keys 'epoch' and 'train_loss', missing {missing}")
    epochs = history["epoch"]
    if len(epochs) == 0:
        raise ValueError("history is empty: it has no epochs to plot")
    has_acc = any(a is not None for a in history.get("train_accuracy", []))
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(9 if has_acc else 4.5, 3.2))
    axes = np.atleast_1d(axes)
    pairs = [("loss", "loss"), ("accuracy", "accuracy")][: len(axes)]
    for ax, (key, name) in zip(axes, pairs):
        for prefix, label, style in (("train", labels[0], "-"), ("val", labels[1], "--")):
            values = history.get(f"{prefix}_{key}", [])
            if values and values[0] is not None:
                ax.plot(epochs[: len(values)], values, style, marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_digit_rows(image, label: int | None = None) -> Figure:
    """A 28x28 digit, and the same digit as the sequence an RNN reads: one row per step."""
    image = _as_numpy("image", image, dim=2)
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


def diagram_axes(width: float, height: float, *, figsize: tuple[float, float] | None = None):
    """A blank canvas with data coordinates 0..width by 0..height and no axes."""
    fig, ax = plt.subplots(figsize=figsize or (width * 0.9, height * 0.9))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def draw_box(
    ax: Axes, center: tuple[float, float], text: str, role: str = "state",
    size: tuple[float, float] = (0.9, 0.6), round: bool = True,
) -> None:
    """A labelled node; ``role`` picks its colour from :data:`DIAGRAM`."""
    if role not in DIAGRAM or role in ("edge", "font"):
        raise ValueError(f"role must be one of 'input', 'state', 'output', 'gate', 'loss', got {role!r}")
    w, h = size
    style = "round,pad=0.02,rounding_size=0.15" if round else "square,pad=0.02"
    ax.add_patch(
        FancyBboxPatch((center[0] - w / 2, center[1] - h / 2), w, h, boxstyle=style,
                       facecolor=DIAGRAM[role], edgecolor=DIAGRAM["edge"], alpha=0.9)
    )
    ax.text(*center, text, ha="center", va="center", fontsize=DIAGRAM["font"])


def draw_arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str | None = None,
    curve: float = 0.0,
) -> None:
    """An arrow from ``start`` to ``end``, optionally curved and labelled at its middle."""
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                        color=DIAGRAM["edge"], lw=1.3, connectionstyle=f"arc3,rad={curve}",
                        shrinkA=2, shrinkB=2)
    )
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text,
                fontsize=DIAGRAM["font"] - 1, ha="left", va="center", color=DIAGRAM["edge"])


def draw_unrolled_rnn(steps: int = 3, *, state: str = "h", output: str | None = None) -> Figure:
    """A recurrent layer folded (left, with its loop) and unrolled through ``steps`` steps.

    Each copy shares the same weights: W_xh on the input arrows and W_hh on the
    arrows that carry the state forward. With ``output`` set (e.g. ``"y"``), an
    output node sits above each step.
    """
    check_int("steps", steps, minimum=1)
    if steps > 8:
        raise ValueError(f"steps must be at most 8 to stay readable, got {steps}")
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


# --- chapter 5: the LSTM cell diagram ---


def draw_lstm_cell() -> Figure:
    """The LSTM cell: the cell state c runs along the top as a straight path,
    touched only by one multiplication (the forget gate f) and one addition
    (the input gate i times the candidate g); the output gate o reads it out.
    """
    fig, ax = diagram_axes(11.6, 6.6, figsize=(10, 5.6))
    op = (0.5, 0.5)
    top, gate_y, bus_y = 5.4, 2.6, 1.1
    # The cell state's path.
    draw_box(ax, (0.8, top), "$c_{t-1}$", "state")
    draw_box(ax, (2.9, top), r"$\times$", "state", size=op)
    draw_box(ax, (5.6, top), "$+$", "state", size=op)
    draw_box(ax, (10.8, top), "$c_t$", "state")
    draw_arrow(ax, (1.25, top), (2.65, top))
    draw_arrow(ax, (3.15, top), (5.35, top))
    draw_arrow(ax, (5.85, top), (10.35, top))
    ax.text(4.2, top + 0.45, "cell state: a linear path", ha="center", fontsize=DIAGRAM["font"] - 1)
    # The gates read [h_{t-1}, x_t].
    draw_box(ax, (0.8, bus_y), "$h_{t-1}$", "state")
    draw_box(ax, (5.6, bus_y), r"$[\,h_{t-1},\ x_t\,]$", "input", size=(7.0, 0.5))
    draw_box(ax, (5.6, -0.2), "$x_t$", "input")
    draw_arrow(ax, (1.25, bus_y), (2.05, bus_y))
    draw_arrow(ax, (5.6, 0.1), (5.6, bus_y - 0.25))
    gates = (
        (2.9, r"$f_t = \sigma$", "gate", "forget (keep)"),
        (4.7, r"$i_t = \sigma$", "gate", "input (write)"),
        (6.5, r"$g_t = \tanh$", "state", "candidate"),
        (8.3, r"$o_t = \sigma$", "gate", "output (read)"),
    )
    for x, text, role, name in gates:
        draw_arrow(ax, (x, bus_y + 0.25), (x, gate_y - 0.42))
        draw_box(ax, (x, gate_y), f"{text}\n{name}", role, size=(1.65, 0.84))
    # f scales the old state; i scales the candidate, and the product is added.
    draw_arrow(ax, (2.9, gate_y + 0.42), (2.9, top - 0.25))
    draw_box(ax, (5.6, 4.0), r"$\times$", "state", size=op)
    draw_arrow(ax, (4.7, gate_y + 0.42), (5.4, 3.8))
    draw_arrow(ax, (6.5, gate_y + 0.42), (5.8, 3.8))
    draw_arrow(ax, (5.6, 4.25), (5.6, top - 0.25))
    # The output gate reads tanh(c_t) into h_t.
    draw_box(ax, (9.8, 4.2), r"$\tanh$", "state", size=(0.8, 0.5))
    draw_arrow(ax, (9.8, top), (9.8, 4.45))
    draw_box(ax, (9.8, 2.6), r"$\times$", "state", size=op)
    draw_arrow(ax, (9.8, 3.95), (9.8, 2.85))
    draw_arrow(ax, (9.12, gate_y), (9.55, gate_y))
    draw_box(ax, (10.8, 1.1), "$h_t$", "output")
    draw_arrow(ax, (9.95, 2.4), (10.6, 1.4))
    ax.set_ylim(-0.6, 6.2)
    return fig
