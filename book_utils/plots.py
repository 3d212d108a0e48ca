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


# --- chapter 2: a memory cell whose output differs from its state ---


def draw_cell_with_output(steps: int = 3, *, state: str = "h", output: str = "y") -> Figure:
    """A memory cell unrolled over ``steps`` steps, with its state and output kept apart.

    Each cell reads the input x_t (below) and the previous state (from the left).
    It passes its new state to the right and emits a separate output above:
    ``state_t = f(state_{t-1}, x_t)`` and ``output_t = g(state_{t-1}, x_t)``.
    """
    check_int("steps", steps, minimum=1)
    if steps > 6:
        raise ValueError(f"steps must be at most 6 to stay readable, got {steps}")
    check_type("state", state, str)
    check_type("output", output, str)
    gap = 2.2
    width = 0.9 + gap * steps
    fig, ax = diagram_axes(width, 3.6)
    size = (1.1, 0.8)
    for t in range(steps):
        x = 1.2 + gap * t
        draw_box(ax, (x, 1.6), "cell", "state", size=size)
        draw_box(ax, (x, 0.35), f"$x_{{{t}}}$", "input")
        draw_box(ax, (x, 2.9), f"${output}_{{{t}}}$", "output")
        draw_arrow(ax, (x, 0.65), (x, 1.2))
        draw_arrow(ax, (x, 2.0), (x, 2.6))
        ax.text(x, -0.15, f"t={t}", ha="center", fontsize=DIAGRAM["font"] - 2)
        # The state leaves to the right; it reaches the next cell, or runs off the page.
        start, end = (x + size[0] / 2, 1.6), (x + gap - size[0] / 2, 1.6)
        draw_arrow(ax, start, end)
        ax.text((start[0] + end[0]) / 2, 1.75, f"${state}_{{{t}}}$", ha="center", va="bottom",
                fontsize=DIAGRAM["font"], color=DIAGRAM["edge"])
    draw_arrow(ax, (0.0, 1.6), (1.2 - size[0] / 2, 1.6))
    ax.text(0.05, 1.75, f"${state}_{{-1}}$", ha="left", va="bottom", fontsize=DIAGRAM["font"],
            color=DIAGRAM["edge"])
    ax.set_xlim(-0.1, width)
    ax.set_ylim(-0.35, 3.35)
    return fig

# --- chapter 4: the unrolled classifier, autograd graphs, gradient norms ---


def draw_unrolled_classifier(steps: int = 3, *, backward: bool = True) -> Figure:
    """An RNN classifier unrolled through ``steps`` steps, with the loss on the last step only.

    Forward arrows run left to right and upwards. With ``backward``, curved
    arrows under the states show dL/dh_t travelling back from the loss, one step
    at a time, through every copy of W_hh.
    """
    check_int("steps", steps, minimum=1)
    if steps > 6:
        raise ValueError(f"steps must be at most 6 to stay readable, got {steps}")
    check_type("backward", backward, bool)
    fig, ax = diagram_axes(1.2 + 1.7 * steps, 5.0)
    xs = [1.0 + 1.7 * t for t in range(steps)]
    last = steps - 1
    for t, x in enumerate(xs):
        name = "T-1" if (t == last and steps > 3) else str(t)
        draw_box(ax, (x, 0.4), f"$x_{{{name}}}$", "input")
        draw_box(ax, (x, 2.2), f"$h_{{{name}}}$", "state")
        draw_arrow(ax, (x, 0.7), (x, 1.9))
        if t == 0:
            ax.text(x - 0.08, 1.3, "$W_{xh}$", ha="right", va="center", fontsize=DIAGRAM["font"] - 1)
        if t > 0:
            draw_arrow(ax, (xs[t - 1] + 0.45, 2.2), (x - 0.45, 2.2))
            ax.text((xs[t - 1] + x) / 2, 2.3, "$W_{hh}$", ha="center", va="bottom",
                    fontsize=DIAGRAM["font"] - 2)
    x_last = xs[last]
    draw_box(ax, (x_last, 3.3), r"$\hat{y}$", "output")
    draw_arrow(ax, (x_last, 2.5), (x_last, 3.0), "$V$")
    draw_box(ax, (x_last, 4.4), "$L$", "loss")
    draw_arrow(ax, (x_last, 3.6), (x_last, 4.1), "$y$")
    if backward:
        for t in range(last, 0, -1):
            draw_arrow(ax, (xs[t] - 0.3, 1.9), (xs[t - 1] + 0.3, 1.9), curve=-0.45)
            ax.text((xs[t] + xs[t - 1]) / 2, 1.3, rf"$\partial L / \partial h_{{{t - 1}}}$",
                    ha="center", va="center", fontsize=DIAGRAM["font"] - 2,
                    color=DIAGRAM["loss"])
    ax.set_xlim(-0.1, 1.2 + 1.7 * steps)
    ax.set_ylim(0.0, 4.8)
    return fig


def _graph_depths(n_nodes: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Longest distance from node 0 along the edges of a directed acyclic graph."""
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    indegree = [0] * n_nodes
    for a, b in edges:
        children[a].append(b)
        indegree[b] += 1
    depth = [0] * n_nodes
    ready = [i for i in range(n_nodes) if indegree[i] == 0]
    while ready:
        node = ready.pop()
        for child in children[node]:
            depth[child] = max(depth[child], depth[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return depth


def draw_autograd_graph(
    nodes: Sequence[dict], edges: Sequence[tuple[int, int]], *, parameter_roles: dict | None = None
) -> Figure:
    """Draw a backward graph given as plain data (see ``bptt.autograd_graph``).

    Operations are stacked by their distance from the loss (top row); the leaves
    that accumulate gradients into parameters (``op == "AccumulateGrad"``) sit in
    a column on the right, level with the operations that use them. Arrows point
    the way ``backward()`` sends gradients. Colours: tanh nodes in the state colour,
    loss nodes (``NllLoss``, ``LogSoftmax``, ``Mean``, ``Neg``) in the loss colour,
    parameters in the input colour, other operations in the gate colour.
    """
    check_type("nodes", nodes, (list, tuple))
    check_type("edges", edges, (list, tuple))
    if not nodes:
        raise ValueError("nodes is empty: there is no graph to draw")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not {"op", "label"} <= set(node):
            raise ValueError(f"nodes[{i}] must be a dict with keys 'op' and 'label', got {node!r}")
    n = len(nodes)
    for a, b in edges:
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"edges must join node indices in [0, {n - 1}], got ({a}, {b})")
    depth = _graph_depths(n, edges)
    is_leaf = [node["op"] == "AccumulateGrad" for node in nodes]
    parents: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        parents[b].append(a)

    # Operations: one row per depth, spread horizontally.
    rows: dict[int, list[int]] = {}
    for i in range(n):
        if not is_leaf[i]:
            rows.setdefault(depth[i], []).append(i)
    dy, dx = 0.85, 1.45
    pos: dict[int, tuple[float, float]] = {}
    width = max(len(r) for r in rows.values())
    for d, members in rows.items():
        for k, i in enumerate(members):
            pos[i] = (1.0 + dx * (k + (width - len(members)) / 2), -d * dy)
    # Leaves: a column on the right, each level with the mean height of its users.
    leaf_x = 1.0 + dx * width + 0.9
    leaves = sorted((i for i in range(n) if is_leaf[i]),
                    key=lambda i: -np.mean([pos[p][1] for p in parents[i]]))
    last_y = np.inf
    for i in leaves:
        y = min(np.mean([pos[p][1] for p in parents[i]]), last_y - 0.8)
        pos[i] = (leaf_x, y)
        last_y = y
    ys = [p[1] for p in pos.values()]
    top, bottom = max(ys) + 0.6, min(ys) - 0.6
    fig, ax = diagram_axes(leaf_x + 1.0, top - bottom,
                           figsize=(0.6 * (leaf_x + 1.0), 0.6 * (top - bottom)))
    ax.set_ylim(bottom, top)
    loss_ops = ("NllLoss", "LogSoftmax", "Mean", "Neg", "MseLoss")
    for i, node in enumerate(nodes):
        if is_leaf[i]:
            role = "input"
        elif node["label"] in ("Tanh", "Relu"):
            role = "state"
        elif node["label"] in loss_ops:
            role = "loss"
        else:
            role = "gate"
        draw_box(ax, pos[i], node["label"], role, size=(1.15, 0.5))
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        if is_leaf[b]:
            draw_arrow(ax, (xa + 0.58, ya), (xb - 0.58, yb))
        else:
            draw_arrow(ax, (xa, ya - 0.25), (xb, yb + 0.25))
    return fig


def plot_state_gradients(
    curves: dict, *, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """||dL/dh_t|| against the step t on a log scale, one line per entry of ``curves``.

    ``curves`` maps a label to a 1-D array or tensor of norms (as returned by
    ``gradients.state_gradient_norms(...)["h"]``). A straight line on this plot is
    a constant factor per step: the slope is the log of that factor.
    """
    check_type("curves", curves, dict)
    if not curves:
        raise ValueError("curves is empty: give at least one label -> norms entry")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
    else:
        check_type("ax", ax, Axes)
        fig = ax.figure
    for label, norms in curves.items():
        norms = _as_numpy(f"curves[{label!r}]", norms, dim=1).astype(float)
        shown = np.where(norms > 0, norms, np.nan)  # a log axis cannot show exact zeros
        ax.plot(np.arange(len(norms)), shown, label=str(label))
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\| \partial L / \partial h_t \|$")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_step_history(histories: dict, *, title: str | None = None) -> Figure:
    """Loss and gradient norm at every optimiser step, for several training runs.

    ``histories`` maps a label to a history from ``training.fit`` (its
    ``"step_loss"`` and ``"step_grad_norm"`` lists). Both panels use a log scale.
    A run whose loss becomes NaN or infinite gets a dotted vertical line at the
    first such step, since a log plot cannot show those values.
    """
    check_type("histories", histories, dict)
    if not histories:
        raise ValueError("histories is empty: give at least one label -> history entry")
    for label, history in histories.items():
        check_type(f"histories[{label!r}]", history, dict)
        missing = [k for k in ("step_loss", "step_grad_norm") if k not in history]
        if missing:
            raise ValueError(f"histories[{label!r}] must have 'step_loss' and 'step_grad_norm', "
                             f"missing {missing}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for (label, history), colour in zip(histories.items(), CYCLE):
        for ax, key in zip(axes, ("step_loss", "step_grad_norm")):
            values = np.asarray(history[key], dtype=float)
            ax.plot(np.arange(len(values)), values, color=colour, lw=1, label=label)
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                ax.axvline(bad[0], color=colour, ls=":", lw=1.5,
                           label=f"{label}: NaN from step {bad[0]}")
    axes[0].set_ylabel("training loss")
    axes[1].set_ylabel("gradient norm before clipping")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

# --- chapter 3: the four input/output shapes ---


_SHAPE_STEP = 1.5


def _shape_panel(
    ax: Axes, left: float, bottom: float, title: str, inputs: Sequence[str | None],
    outputs: Sequence[str | None], states: Sequence[str],
) -> None:
    """One unrolled network: a row of inputs (or gaps), states joined left to right, outputs (or gaps)."""
    step = _SHAPE_STEP
    for t, (x, h, y) in enumerate(zip(inputs, states, outputs)):
        cx = left + 0.5 + step * t
        draw_box(ax, (cx, bottom + 1.6), h, "state")
        if x is not None:
            draw_box(ax, (cx, bottom + 0.5), x, "input")
            draw_arrow(ax, (cx, bottom + 0.8), (cx, bottom + 1.3))
        if y is not None:
            draw_box(ax, (cx, bottom + 2.7), y, "output")
            draw_arrow(ax, (cx, bottom + 1.9), (cx, bottom + 2.4))
        if t > 0:
            draw_arrow(ax, (cx - step + 0.45, bottom + 1.6), (cx - 0.45, bottom + 1.6))
    ax.text(left + 0.05, bottom + 3.35, title, fontsize=DIAGRAM["font"] + 1, ha="left", va="center",
            fontweight="bold")


def draw_sequence_shapes() -> Figure:
    """The four ways a recurrent network maps inputs to outputs, unrolled over time.

    Top left, sequence to sequence: an output at every step. Top right,
    sequence to vector: only the last output is used. Bottom left, vector to
    sequence: one input, an output at every step. Bottom right, encoder to
    decoder: a sequence is read into one state, from which another sequence is
    written, each output fed back as the next input.
    """
    fig, ax = diagram_axes(16.6, 7.6, figsize=(10.5, 4.9))
    xs = [f"$x_{{{t}}}$" for t in range(4)]
    ys = [f"$y_{{{t}}}$" for t in range(4)]
    hs = [f"$h_{{{t}}}$" for t in range(4)]
    top, bottom, right = 4.0, 0.2, 7.3
    _shape_panel(ax, 0.0, top, "sequence \u2192 sequence", xs, ys, hs)
    _shape_panel(ax, right, top, "sequence \u2192 vector", xs, [None, None, None, "$y$"], hs)
    _shape_panel(ax, 0.0, bottom, "vector \u2192 sequence", ["$v$", None, None, None], ys, hs)
    encoder = [f"$e_{{{t}}}$" for t in range(3)]
    decoder = [f"$d_{{{t}}}$" for t in range(3)]
    _shape_panel(ax, right, bottom, "encoder \u2192 decoder",
                 xs[:3] + ["$\\langle s \\rangle$", "$y_{0}$", "$y_{1}$"],
                 [None, None, None] + ys[:3], encoder + decoder)
    # Each decoder output becomes the next decoder input.
    centre = [right + 0.5 + _SHAPE_STEP * t for t in range(6)]
    for t in (3, 4):
        draw_arrow(ax, (centre[t] + 0.45, bottom + 2.55), (centre[t + 1] - 0.45, bottom + 0.65))
    split = (centre[2] + centre[3]) / 2
    ax.plot([split, split], [bottom - 0.1, bottom + 3.0], ls=":", color=DIAGRAM["edge"])
    ax.text(centre[1], bottom - 0.25, "encoder", ha="center", fontsize=DIAGRAM["font"] - 1)
    ax.text(centre[4], bottom - 0.25, "decoder", ha="center", fontsize=DIAGRAM["font"] - 1)
    ax.set_ylim(-0.4, 7.6)
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
