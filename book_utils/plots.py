"""The book's figure style, its general figures, and the parts its diagrams are built from.

Plots read plain data (arrays, tensors, history dicts) and import nothing from
training. Colours come from the Okabe-Ito palette, which stays distinguishable
under the common forms of colour blindness. Diagrams share one style, built from
:func:`diagram_axes`, :func:`draw_box` and :func:`draw_arrow`.

A figure that only one chapter draws lives in that chapter's module, built from
:func:`diagram_axes`, :func:`draw_box`, :func:`draw_arrow` and :data:`PALETTE`.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ._checks import check_float, check_int, check_type


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


BOOK_STYLE = {
    "axes.prop_cycle": plt.cycler(color=CYCLE),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.dpi": 150,
    "font.size": 10,
    "image.cmap": "viridis",
}


class _RestoreStyle:
    """Gives matplotlib back the settings it had, at the end of a ``with`` block."""

    def __init__(self, saved: dict) -> None:
        self.saved = saved

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        dict.update(mpl.rcParams, self.saved)  # as matplotlib's own rc_context restores


def use_book_style() -> _RestoreStyle:
    """Set the book's matplotlib defaults: palette, grid, readable sizes.

    A plain call sets them for the session, as a chapter's setup does;
    ``with use_book_style(): ...`` sets them for the block only and then gives
    matplotlib back the settings it had before.
    """
    saved = dict(mpl.rcParams.copy())
    mpl.rcParams.update(BOOK_STYLE)
    return _RestoreStyle(saved)


def as_numpy(name: str, value, dim: int | None = None) -> np.ndarray:
    """``value`` (a tensor or an array) as a numpy array, with ``dim`` dimensions if given."""
    check_type("name", name, str)
    if dim is not None:
        dim = check_int("dim", dim, minimum=0, maximum=64)  # torch allows no more
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if dim is not None and value.ndim != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {value.shape}")
    return value


# The per-epoch entries of a training history that plot_history draws.
_HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def plot_history(
    history: dict, *, title: str | None = None, labels: Sequence[str] = ("train", "held-out")
) -> Figure:
    """Loss and (if recorded) accuracy per epoch, for training and held-out data."""
    check_type("history", history, dict)
    missing = [k for k in ("epoch", "train_loss") if k not in history]
    if missing:
        raise ValueError(f"history must have keys 'epoch' and 'train_loss', missing {missing}, "
                         f"got keys {sorted(history)}")
    for key, values in history.items():
        if key in _HISTORY_KEYS and not isinstance(values, (list, tuple)):
            raise TypeError(f"history[{key!r}] must be a list with one entry per epoch, "
                            f"got {type(values).__name__}")
    if title is not None:
        check_type("title", title, str)
    if (isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != 2
            or not all(isinstance(label, str) for label in labels)):
        raise TypeError(f"labels must be two strings (training, held-out), got {labels!r}")
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


def _check_pair(name: str, value, *, positive: bool = False) -> tuple[float, float]:
    """Two finite numbers, such as a point (x, y) or a size (width, height)."""
    if (isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}")
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in value):
        kind = "positive" if positive else "finite"
        raise ValueError(f"{name} must be a pair of {kind} numbers, got {value!r}")
    return float(value[0]), float(value[1])


def diagram_axes(width: float, height: float, *, figsize: tuple[float, float] | None = None):
    """A blank canvas with data coordinates 0..width by 0..height and no axes."""
    check_float("width", width, minimum=0, strict_minimum=True)
    check_float("height", height, minimum=0, strict_minimum=True)
    if figsize is not None:
        _check_pair("figsize", figsize, positive=True)
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
    check_type("ax", ax, Axes)
    center = _check_pair("center", center)
    check_type("text", text, str)
    if role not in DIAGRAM or role in ("edge", "font"):
        raise ValueError(f"role must be one of 'input', 'state', 'output', 'gate', 'loss', got {role!r}")
    w, h = _check_pair("size", size, positive=True)
    check_type("round", round, bool)
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
    check_type("ax", ax, Axes)
    start, end = _check_pair("start", start), _check_pair("end", end)
    if text is not None:
        check_type("text", text, str)
    curve = check_float("curve", curve)
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                        color=DIAGRAM["edge"], lw=1.3, connectionstyle=f"arc3,rad={curve}",
                        shrinkA=2, shrinkB=2)
    )
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text,
                fontsize=DIAGRAM["font"] - 1, ha="left", va="center", color=DIAGRAM["edge"])
