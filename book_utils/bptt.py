"""Chapter 4, backpropagation through time, written out by hand.

The model is the vanilla tanh RNN of Chapter 1 with a linear head and a softmax
cross-entropy loss on the last step only (a sequence classifier):

    h_t    = tanh(x_t W_xh + h_{t-1} W_hh + b_h)      t = 0 .. T-1, h_{-1} = h0
    logits = h_{T-1} W_hy + b_y
    L      = mean over the batch of -log softmax(logits)[y]

All weights are stored as (in, out), as in :class:`book_utils.cells.RNNCell`:
W_xh (F, H), W_hh (H, H), b_h (H,), W_hy (H, C), b_y (C,).

:func:`forward` computes the loss and keeps what the backward pass needs (the
inputs, every state and the softmax probabilities). :func:`backward` walks the
steps in reverse, carrying dL/dh_t from one step to the one before, and never
calls autograd. The other helpers measure: :func:`relative_error` compares two
gradients, :func:`autograd_graph` lists the nodes autograd recorded, and
:class:`SavedTensorMeter` counts the bytes the graph keeps alive for backward.
:func:`train_truncated` reads a long stream in chunks (truncated BPTT) and
:func:`stream_accuracy` scores a model on a whole stream.

:class:`StepClassifier` classifies every step of a stream, :func:`echo_stream`
makes streams that need a memory of ``lag`` steps; :func:`train_exploding_rnn` runs the
clipping experiment (:data:`CLIPPING_RECIPE`); the figures are the chapter's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import FuncFormatter, LogLocator
from torch import nn
from torch.nn import functional as F

from . import data, models, training
from ._checks import (
    check_bool, check_choice, check_device, check_float, check_int, check_layer, check_layer_input,
    check_layer_state, check_tensor, check_type, check_val_loader, checked_by,
)
from .cells import ScratchRNN, torch_parameters
from .models import SequenceClassifier, make_recurrent
from .plots import CYCLE, DIAGRAM, as_numpy, diagram_axes, draw_arrow, draw_box
from .training import IGNORE_INDEX


PARAMETER_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


@dataclass
class BPTTCache:
    """What :func:`forward` keeps for :func:`backward`.

    ``h`` holds every state, with the initial one first: ``h[:, 0]`` is h0 and
    ``h[:, t + 1]`` is h_t, so its shape is (batch, T + 1, hidden).
    """

    x: torch.Tensor  # (B, T, F)
    h: torch.Tensor  # (B, T + 1, H)
    probs: torch.Tensor  # (B, C) softmax of the logits
    y: torch.Tensor  # (B,) class indices

    def __post_init__(self) -> None:
        check_tensor("x", self.x, dim=3, floating=True, layout="(batch, time, features)")
        check_tensor("h", self.h, dim=3, floating=True, layout="(batch, time + 1, hidden)")
        check_tensor("probs", self.probs, dim=2, floating=True, layout="(batch, classes)")
        check_tensor("y", self.y, dim=1, integer=True, layout="(batch,)")
        B, T, _ = self.x.shape
        if tuple(self.h.shape[:2]) != (B, T + 1):
            raise ValueError(f"h must have shape ({B}, {T + 1}, hidden), every state with h0 "
                             f"first, to match x {tuple(self.x.shape)}, got {tuple(self.h.shape)}")
        for name, value in (("probs", self.probs), ("y", self.y)):
            if value.shape[0] != B:
                raise ValueError(f"{name} must have one row per sequence of x ({B}), "
                                 f"got shape {tuple(value.shape)}")
        C = self.probs.shape[1]
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= C):
            raise ValueError(f"y must hold class indices in [0, {C - 1}], one of the {C} columns "
                             f"of probs, got values from {self.y.min().item()} to "
                             f"{self.y.max().item()}")


def _check_parameters(params: dict) -> tuple[int, int, int]:
    """Validate the five weights; return (F, H, C)."""
    check_type("params", params, dict)
    missing = [name for name in PARAMETER_NAMES if name not in params]
    if missing:
        raise ValueError(f"params must have keys {PARAMETER_NAMES}, missing {missing}, "
                         f"got keys {sorted(map(str, params))}")
    W_xh = check_tensor("params['W_xh']", params["W_xh"], dim=2, floating=True, layout="(F, H)")
    F, H = W_xh.shape
    expected = {"W_hh": (H, H), "b_h": (H,)}
    W_hy = check_tensor("params['W_hy']", params["W_hy"], dim=2, floating=True, layout="(H, C)")
    C = W_hy.shape[1]
    expected.update({"W_hy": (H, C), "b_y": (C,)})
    for name, shape in expected.items():
        value = check_tensor(f"params[{name!r}]", params[name], floating=True)
        if tuple(value.shape) != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape} to match W_xh {tuple(W_xh.shape)} "
                f"and W_hy {tuple(W_hy.shape)}, got {tuple(value.shape)}"
            )
    for name in PARAMETER_NAMES[1:]:
        if params[name].dtype != W_xh.dtype:
            raise TypeError(f"params[{name!r}] must have the dtype of params['W_xh'], "
                            f"{W_xh.dtype}, got {params[name].dtype}")
    return F, H, C


def _check_params_dtype(name: str, value: torch.Tensor, params: dict) -> None:
    """``value`` must have the dtype of the weights: torch does not mix them in a product."""
    dtype = params["W_xh"].dtype
    if value.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of params, {dtype}, got {value.dtype}: "
                        f"convert one of them, e.g. {name}.to({dtype})")


def _check_forward(
    x: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor],
    h0: torch.Tensor | None = None,
) -> None:
    F, H, C = _check_parameters(params)
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    if x.shape[1] == 0 or x.shape[2] != F:
        raise ValueError(
            f"x must have shape (batch, time >= 1, {F}) to match W_xh, got {tuple(x.shape)}"
        )
    check_tensor("x", x, nonempty=True, layout="(batch, time, features)")
    _check_params_dtype("x", x, params)
    check_tensor("y", y, dim=1, integer=True, layout="(batch,)")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have {x.shape[0]} labels, one per sequence, got {y.shape[0]}")
    if len(y) and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y must hold class indices in [0, {C - 1}], got [{y.min()}, {y.max()}]")
    B, T, _ = x.shape
    if h0 is not None:
        check_tensor("h0", h0, dim=2, floating=True, layout="(batch, hidden)")
        if tuple(h0.shape) != (B, H):
            raise ValueError(f"h0 must have shape {(B, H)}, got {tuple(h0.shape)}")
        _check_params_dtype("h0", h0, params)


@checked_by(_check_forward)
def forward(
    x: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor],
    h0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, BPTTCache]:
    """Run the classifier over ``x`` (batch, time, features); return the loss and the cache.

    ``y`` holds one class index per sequence, shape (batch,). ``h0`` is the
    initial state (batch, hidden), zeros by default.
    """
    B, T, _ = x.shape
    if h0 is None:
        h0 = x.new_zeros(B, params["W_hh"].shape[0])
    W_xh, W_hh, b_h, W_hy, b_y = (params[name] for name in PARAMETER_NAMES)
    h = [h0]
    for t in range(T):
        h.append(torch.tanh(x[:, t] @ W_xh + h[-1] @ W_hh + b_h))
    logits = h[-1] @ W_hy + b_y
    log_probs = torch.log_softmax(logits, dim=1)
    loss = -log_probs[torch.arange(B), y].mean()
    cache = BPTTCache(x=x, h=torch.stack(h, dim=1), probs=log_probs.exp(), y=y)
    return loss, cache


def _check_backward(
    cache: BPTTCache, params: dict[str, torch.Tensor], *, keep_state_grads: bool = False
) -> None:
    check_type("cache", cache, BPTTCache)
    _check_parameters(params)
    check_type("keep_state_grads", keep_state_grads, bool)


@checked_by(_check_backward)
def backward(
    cache: BPTTCache, params: dict[str, torch.Tensor], *, keep_state_grads: bool = False
) -> dict[str, torch.Tensor]:
    """The gradients of the mean loss with respect to the five weights, without autograd.

    Names follow the text: ``H[:, t + 1]`` is H_t (the cache stores H_{-1} first),
    ``delta`` is Δ_t = ∂L/∂H_t and ``delta_z`` is Δᶻ_t. Returns ``W_xh, W_hh, b_h,
    W_hy, b_y``, each of its weight's shape; with ``keep_state_grads`` also ``"h"``,
    every Δ_t stacked to (batch, T, hidden).
    """
    X, H, P, y = cache.x, cache.h, cache.probs, cache.y
    W_hh, W_hy = params["W_hh"], params["W_hy"]
    B, T, _ = X.shape
    grads = {name: torch.zeros_like(params[name]) for name in PARAMETER_NAMES}
    Y = F.one_hot(y.long(), P.shape[1]).to(P.dtype)         # one-hot labels, (B, C)
    delta_O = (P - Y) / B
    grads["W_hy"] = H[:, T].T @ delta_O
    grads["b_y"] = delta_O.sum(dim=0)
    delta = delta_O @ W_hy.T                                # Δ_{T-1}
    kept = []
    for t in reversed(range(T)):
        kept.append(delta)
        delta_z = delta * (1 - H[:, t + 1] ** 2)            # through tanh
        grads["W_hh"] += H[:, t].T @ delta_z                # one term of each sum
        grads["W_xh"] += X[:, t].T @ delta_z
        grads["b_h"] += delta_z.sum(dim=0)
        delta = delta_z @ W_hh.T                            # Δ_{t-1}, one step back
    if keep_state_grads:
        grads["h"] = torch.stack(kept[::-1], dim=1)         # Δ_0, ..., Δ_{T-1}
    return grads


def classifier_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copy the weights of a tanh-RNN ``SequenceClassifier`` in the (in, out) convention.

    Works for a classifier whose recurrent layer is a one-layer ``nn.RNN`` or a
    :class:`~book_utils.cells.ScratchRNN`. PyTorch stores (out, in) matrices and
    two biases; we transpose and add them. The copies are detached.
    """
    check_type("model", model, nn.Module)
    recurrent, head = getattr(model, "recurrent", None), getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not isinstance(recurrent, (nn.RNN, ScratchRNN)):
        raise TypeError(
            "model must be a SequenceClassifier with an nn.RNN or ScratchRNN layer and a Linear "
            f"head, got recurrent={type(recurrent).__name__}, head={type(head).__name__}"
        )
    if isinstance(recurrent, nn.RNN):
        if recurrent.num_layers != 1 or recurrent.bidirectional or not recurrent.bias:
            raise ValueError("model.recurrent must be a one-layer, one-directional nn.RNN with bias")
        nonlinearity = recurrent.nonlinearity
    else:
        nonlinearity = recurrent.cell.nonlinearity
    if nonlinearity != "tanh":
        raise ValueError(f"the hand-written backward pass needs tanh, got {nonlinearity!r}")
    with torch.no_grad():
        if isinstance(recurrent, nn.RNN):
            p = torch_parameters(recurrent)
            weights = {"W_xh": p["weight_ih"].T, "W_hh": p["weight_hh"].T,
                       "b_h": p["bias_ih"] + p["bias_hh"]}
        else:
            cell = recurrent.cell
            weights = {"W_xh": cell.W_xh, "W_hh": cell.W_hh, "b_h": cell.b_h}
        weights.update({"W_hy": head.weight.T, "b_y": head.bias})
        return {name: weights[name].detach().clone() for name in PARAMETER_NAMES}


def _check_relative_error(a: torch.Tensor, b: torch.Tensor) -> None:
    check_tensor("a", a, floating=True, finite=True)
    check_tensor("b", b, floating=True, finite=True)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


@checked_by(_check_relative_error)
def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||a||, ||b||): 0 for equal tensors, about 1e-16 for float64 rounding.

    A norm-wise ratio, so entries that are nearly zero in both do not blow it up.
    """
    a, b = a.detach().double(), b.detach().double()
    scale = max(a.norm().item(), b.norm().item())
    return 0.0 if scale == 0.0 else (a - b).norm().item() / scale


def autograd_graph(
    output: torch.Tensor, names: dict[str, torch.Tensor] | None = None
) -> tuple[list[dict], list[tuple[int, int]]]:
    """The backward graph autograd recorded for ``output``, as plain data.

    Walks ``output.grad_fn`` and its ``next_functions``. Returns ``(nodes, edges)``:
    each node is ``{"id": int, "op": str, "label": str}`` where ``op`` is the
    autograd class name (``"TanhBackward0"``, ``"AccumulateGrad"``, ...) and
    ``label`` is a short name: the parameter's name from ``names`` for a leaf, and
    for an operation the op without ``Backward0``, followed by the names of the
    parameters it uses (``"Mm ($W_{hh}$)"``), so that the two products of a step
    can be told apart. An edge ``(i, j)`` means node i passes gradient to node j;
    node 0 is ``output.grad_fn``.
    """
    check_tensor("output", output, floating=True)
    if output.grad_fn is None:
        raise ValueError("output has no grad_fn: compute it from tensors with requires_grad=True, "
                         "got a tensor with grad_fn=None")
    if names is not None:
        check_type("names", names, dict)
        for name, tensor in names.items():
            check_tensor(f"names[{name!r}]", tensor)
    by_tensor = {id(t): name for name, t in (names or {}).items()}
    # Keyed by the node objects themselves, not id(): the dict keeps each one alive, so a freed
    # node's id cannot be reused by another (torch 2.8 frees them as the walk goes).
    index: dict[object, int] = {}
    nodes: list[dict] = []
    edges: list[tuple[int, int]] = []

    def visit(fn) -> int:
        if fn in index:
            return index[fn]
        op = type(fn).__name__
        if op == "AccumulateGrad":
            label = by_tensor.get(id(fn.variable), "param")
        else:
            label = op.split("Backward")[0]
        index[fn] = me = len(nodes)
        nodes.append({"id": me, "op": op, "label": label})
        uses = []
        for child, _ in fn.next_functions:
            if child is not None:
                edges.append((me, visit(child)))
                if type(child).__name__ == "AccumulateGrad" and id(child.variable) in by_tensor:
                    uses.append(by_tensor[id(child.variable)])
        if uses:
            nodes[me]["label"] += f" ({', '.join(uses)})"
        return me

    visit(output.grad_fn)
    return nodes, edges


class SavedTensorMeter:
    """Count the bytes of the tensors autograd saves for backward inside a ``with`` block.

    Those tensors are what a long unroll costs in memory: they stay alive until
    ``backward()`` frees them. Each tensor is counted once (several nodes may
    save the same state), and tensors sharing storage with ``exclude`` (typically
    the model's parameters, which exist anyway) are not counted::

        with SavedTensorMeter(exclude=model.parameters()) as meter:
            loss = loss_fn(model(x), y)
        meter.bytes
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        if not hasattr(exclude, "__iter__"):
            raise TypeError(f"exclude must be an iterable of tensors such as model.parameters(), "
                            f"got {type(exclude).__name__}")
        exclude = list(exclude)
        for i, t in enumerate(exclude):
            check_tensor(f"exclude[{i}]", t)
        self._excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self._seen: dict[tuple[int, int], int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in self._excluded:
            key = (tensor.data_ptr(), tensor.numel() * tensor.element_size())
            self._seen[key] = key[1]
        return tensor

    @property
    def bytes(self) -> int:
        """Total bytes of the distinct saved tensors seen so far."""
        return sum(self._seen.values())

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def _check_stream(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Streams ``x`` (batch, time, features) that ``model`` reads as ``model(chunk, state)``,
    with one integer target per step in ``y``."""
    check_layer("model", model)
    check_layer_input("x", x, model)
    check_tensor("x", x, finite=True)
    check_tensor("y", y, dim=2, integer=True, layout="(batch, time)")
    if y.shape != x.shape[:2]:
        raise ValueError(f"y must have shape {tuple(x.shape[:2])}, one target per step, "
                         f"got {tuple(y.shape)}")


@torch.no_grad()
def stream_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of steps whose target ``model`` predicts, reading each stream in one pass.

    Steps whose target is :data:`~book_utils.training.IGNORE_INDEX` do not count.
    """
    _check_stream(model, x, y)
    if not (y != IGNORE_INDEX).any():
        raise ValueError(f"y has no targets: every entry equals IGNORE_INDEX={IGNORE_INDEX}")
    return training.evaluate(model, [(x, y)], state="carry")["accuracy"]


def _check_train_truncated(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, window: int,
    optimizer: torch.optim.Optimizer, epochs: int = 1,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> None:
    _check_stream(model, x, y)
    check_int("window", window, minimum=1)
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    check_int("epochs", epochs, minimum=1)


@checked_by(_check_train_truncated)
def train_truncated(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, window: int,
    optimizer: torch.optim.Optimizer, epochs: int = 1,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> dict[str, list]:
    """Truncated BPTT: read the streams ``x`` in chunks of ``window`` steps, one update per chunk.

    ``model(chunk, state)`` returns ``(logits, state)``, as
    :class:`~book_utils.models.StepClassifier` does; ``y`` holds one target per
    step, shape (batch, time). The state is carried from chunk to chunk, so the
    forward pass sees the whole past, but it is detached after every chunk, so
    each backward pass stops at the start of its chunk. Returns a history with one
    ``"loss"`` per update and the ``"seconds"`` of each epoch.
    """
    history = training.fit(model, data.stream_windows(x, y, window), epochs=epochs,
                           optimizer=optimizer, loss_fn=loss_fn, state="carry", verbose=False)
    return {"loss": history["step_loss"], "seconds": history["seconds"]}


def echo_stream(
    n_streams: int, length: int, *, lag: int, n_symbols: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Long sequences of random symbols; the target at step t is the symbol seen at t - lag.

    Each of the ``n_streams`` streams holds ``length`` symbols drawn uniformly
    from ``0 .. n_symbols - 1``. The input is their one-hot code; the target at
    step t is the symbol at step ``t - lag``, so a model must remember the last
    ``lag`` symbols (``lag=0`` asks for the current one: no memory needed). The
    first ``lag`` steps have nothing to echo and carry the target
    :data:`IGNORE_INDEX`. Guessing scores ``1 / n_symbols``.

    Returns ``x`` of shape (n_streams, length, n_symbols), float32, and ``y`` of
    shape (n_streams, length), int64. ``y[:, -1]`` is a label for classifying the
    whole sequence from its last step.
    """
    n_streams = check_int("n_streams", n_streams, minimum=1)
    length = check_int("length", length, minimum=1)
    lag = check_int("lag", lag, minimum=0)
    n_symbols = check_int("n_symbols", n_symbols, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    if lag >= length:
        raise ValueError(f"lag must be smaller than length={length}, got lag={lag}")
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(n_symbols, (n_streams, length), generator=generator)
    x = torch.nn.functional.one_hot(symbols, n_symbols).float()
    y = torch.full_like(symbols, IGNORE_INDEX)
    y[:, lag:] = symbols[:, : length - lag]
    return x, y


class StepClassifier(SequenceClassifier):
    """Classify every step of a sequence: logits_t = h_t W_hy + b_y.

    ``forward(x, state=None)`` takes x of shape (batch, time, features) and the
    state the recurrent layer ended the previous chunk with (or ``None`` for
    zeros), and returns ``(logits, state)`` with logits of shape
    (batch, time, n_classes). Passing the state back in lets a long stream be
    read one chunk at a time (truncated backpropagation through time). It is
    built like :class:`SequenceClassifier`, whose constructor it shares.
    """

    def forward(self, x: torch.Tensor, state=None):
        check_layer_input("x", x, self.recurrent)
        check_layer_state("state", state, x, self.recurrent)
        outputs, state = self.recurrent(x, state)
        return self.head(outputs), state


def make_step_classifier(
    kind: str = "rnn", input_size: int = 2, hidden_size: int = 64, n_classes: int = 2,
    nonlinearity: str = "tanh",
) -> StepClassifier:
    """A :class:`StepClassifier` over ``make_recurrent(kind, ...)``."""
    recurrent = make_recurrent(kind, input_size, hidden_size, nonlinearity)
    return StepClassifier(recurrent, hidden_size, n_classes)


#: Chapter 4's exploding-gradient experiment: sequences of ``length`` random symbols out of
#: ``n_symbols``, labelled by the symbol ``lag`` steps before the end (:func:`echo_stream`); a
#: ReLU RNN whose W_hh starts at spectral radius ``radius``, trained with SGD and momentum,
#: with or without clipping the gradient norm to ``clip_norm``.
CLIPPING_RECIPE = {"n_symbols": 4, "lag": 4, "length": 40, "hidden_size": 64, "radius": 1.5,
                   "lr": 0.04, "momentum": 0.9, "batch_size": 64, "epochs": 6, "clip_norm": 1.0}


def _check_train_exploding_rnn(x: torch.Tensor, y: torch.Tensor, *, lr: float,
                               clip_norm: float | None, seed: int = 0, device=None,
                               optimizer: str = "sgd") -> None:
    n_symbols = CLIPPING_RECIPE["n_symbols"]
    check_tensor("x", x, dim=3, floating=True, layout=f"(sequences, time, {n_symbols})",
                 nonempty=True, finite=True)
    if x.shape[2] != n_symbols:
        raise ValueError(f"x must one-hot code {n_symbols} symbols in its last axis, "
                         f"got shape {tuple(x.shape)}")
    check_tensor("y", y, dim=2, integer=True, layout="(sequences, time)")
    if y.shape != x.shape[:2]:
        raise ValueError(f"y must have shape {tuple(x.shape[:2])}, one target per step of x, "
                         f"got {tuple(y.shape)}")
    # echo_stream's targets: a symbol, or -100 where no target exists yet
    allowed = ((y >= 0) & (y < n_symbols)) | (y == -100)
    if not allowed.all():
        raise ValueError(f"y must hold symbols in [0, {n_symbols - 1}] or -100 (no target yet), "
                         f"got {int(y[~allowed][0])}")
    if (y[:, -1] == -100).any():
        raise ValueError("y[:, -1], the labels, must be symbols, got -100 (no target)")
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    check_int("seed", seed, minimum=0)
    if device is not None:
        check_device(device)
    check_choice("optimizer", optimizer, ("sgd", "adam"))


@checked_by(_check_train_exploding_rnn)
def train_exploding_rnn(
    x: torch.Tensor, y: torch.Tensor, *, lr: float, clip_norm: float | None, seed: int = 0,
    device: str | torch.device | None = None, optimizer: str = "sgd",
) -> tuple[SequenceClassifier, dict]:
    """Train :data:`CLIPPING_RECIPE`'s ReLU RNN to classify ``x`` by its last label ``y[:, -1]``.

    ``x`` (sequences, time, n_symbols) and ``y`` (sequences, time) come from
    :func:`echo_stream`. The seed sets the random W_hh (rescaled to the recipe's
    spectral radius), the other initial weights and the order of the batches. With
    ``clip_norm=None`` nothing is clipped. ``optimizer="sgd"`` is the recipe's SGD
    with momentum; ``"adam"`` is Adam with PyTorch's defaults, the control a
    practitioner would try first. A run may explode: its history then holds NaN or
    infinite losses (``allow_nonfinite``). Returns ``(model, history)`` from
    :func:`training.fit`, with the gradient norm before clipping at every step.
    """
    recipe = CLIPPING_RECIPE
    H = recipe["hidden_size"]
    loader = data.make_loader(x, y[:, -1], batch_size=recipe["batch_size"], shuffle=True, seed=seed)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's CPU RNG is restored
        torch.manual_seed(seed)
        model = models.make_classifier("rnn", input_size=recipe["n_symbols"], hidden_size=H,
                                       n_classes=recipe["n_symbols"], nonlinearity="relu")
        W = torch.randn(H, H)
        with torch.no_grad():
            model.recurrent.weight_hh_l0.copy_(W * recipe["radius"] / torch.linalg.eigvals(W).abs().max())
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe["momentum"])
    history = training.fit(model.to(device), loader, epochs=recipe["epochs"], optimizer=opt,
                           clip_norm=clip_norm, device=device, allow_nonfinite=True, verbose=False)
    return model, history


#: Chapter 4's recipe for MNIST rows, chosen on the validation split (benchmarks/bptt.py):
#: 150 tanh units, orthogonal W_hh, standardised digits shifted by up to 1 pixel
#: every epoch, Adam with a one-cycle schedule, gradients clipped to norm 1.
MNIST_RECIPE = {"hidden_size": 150, "epochs": 30, "lr": 2e-3, "batch_size": 32, "max_shift": 1}


def _check_train_mnist_rnn(digits: data.MNIST, *, val_loader: Iterable | None = None, seed: int = 0,
                           verbose: bool = False, **recipe) -> None:
    """The arguments train_mnist_rnn uses itself; the recipe's are checked where used."""
    check_type("digits", digits, data.MNIST)
    check_int("seed", seed, minimum=0)
    check_val_loader(val_loader)
    check_bool("verbose", verbose)


@checked_by(_check_train_mnist_rnn)
def train_mnist_rnn(
    digits: data.MNIST,
    *,
    hidden_size: int = MNIST_RECIPE["hidden_size"],
    epochs: int = MNIST_RECIPE["epochs"],
    lr: float = MNIST_RECIPE["lr"],
    batch_size: int = MNIST_RECIPE["batch_size"],
    max_shift: int = MNIST_RECIPE["max_shift"],
    val_loader: Iterable | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> tuple[SequenceClassifier, dict]:
    """Train an ``nn.RNN`` classifier on ``digits.x_train`` (standardise them first).

    Returns ``(model, history)``; ``history`` comes from :func:`training.fit` and
    holds the per-epoch validation scores when ``val_loader`` is given.
    """
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's CPU RNG is restored
        torch.manual_seed(seed)
        model = models.make_classifier("rnn", hidden_size=hidden_size)
        nn.init.orthogonal_(model.recurrent.weight_hh_l0)  # every singular value 1
    loader = data.mnist_loader(digits, "train", batch_size=batch_size, seed=seed)
    shifted = data.RandomShifts(loader, max_shift, seed=seed)
    history = training.train_classifier(model, shifted, epochs=epochs, lr=lr, schedule="onecycle",
                                        val_loader=val_loader, device=device, verbose=verbose)
    return model, history


def draw_unrolled_classifier(steps: int = 3, *, backward: bool = True) -> Figure:
    """An RNN classifier unrolled through ``steps`` steps, with the loss on the last step only.

    Forward arrows run left to right and upwards: every input enters through
    W_xh, every state passes to the next through W_hh, and the last state gives
    the scores o through W_hy, which the loss compares with the target y. With
    ``backward``, curved arrows show dL/dh_t
    travelling back from the head to the last state, then one step at a time
    through every copy of W_hh.
    """
    check_int("steps", steps, minimum=1)
    if steps > 6:
        raise ValueError(f"steps must be at most 6 to stay readable, got {steps}")
    check_type("backward", backward, bool)
    width = 2.4 + 1.7 * steps
    fig, ax = diagram_axes(width, 5.0)
    xs = [1.0 + 1.7 * t for t in range(steps)]
    last = steps - 1
    small = DIAGRAM["font"] - 2

    def name(t: int) -> str:
        return "T-1" if (t == last and steps > 3) else str(t)

    for t, x in enumerate(xs):
        draw_box(ax, (x, 0.4), f"$x_{{{name(t)}}}$", "input")
        draw_box(ax, (x, 2.2), f"$h_{{{name(t)}}}$", "state")
        draw_arrow(ax, (x, 0.7), (x, 1.9))
        ax.text(x - 0.08, 1.05, "$W_{xh}$", ha="right", va="center", fontsize=small)
        if t > 0:
            draw_arrow(ax, (xs[t - 1] + 0.45, 2.2), (x - 0.45, 2.2))
            ax.text((xs[t - 1] + x) / 2, 2.3, "$W_{hh}$", ha="center", va="bottom", fontsize=small)
    x_last = xs[last]
    draw_box(ax, (x_last, 3.3), "$o$", "output")
    draw_arrow(ax, (x_last, 2.5), (x_last, 3.0), "$W_{hy}$")
    draw_box(ax, (x_last, 4.4), r"$\mathcal{L}$", "loss")
    draw_arrow(ax, (x_last, 3.6), (x_last, 4.1))
    draw_box(ax, (x_last + 1.5, 4.4), "target $y$", "input", size=(1.2, 0.6))
    draw_arrow(ax, (x_last + 0.9, 4.4), (x_last + 0.45, 4.4))
    if backward:
        ax.add_patch(FancyArrowPatch((x_last + 0.45, 3.2), (x_last + 0.45, 2.3), arrowstyle="-|>",
                                     mutation_scale=12, color=DIAGRAM["loss"], lw=1.3,
                                     connectionstyle="arc3,rad=-0.6", shrinkA=2, shrinkB=2))
        ax.text(x_last + 0.85, 2.75, rf"$\partial \mathcal{{L}} / \partial h_{{{name(last)}}}$",
                ha="left", va="center", fontsize=small, color=DIAGRAM["loss"])
        for t in range(last, 0, -1):
            ax.add_patch(FancyArrowPatch((xs[t] - 0.3, 1.9), (xs[t - 1] + 0.3, 1.9), arrowstyle="-|>",
                                         mutation_scale=12, color=DIAGRAM["loss"], lw=1.3,
                                         connectionstyle="arc3,rad=-0.45", shrinkA=2, shrinkB=2))
            ax.text((xs[t] + xs[t - 1]) / 2, 1.3, rf"$\partial \mathcal{{L}} / \partial h_{{{name(t - 1)}}}$",
                    ha="center", va="center", fontsize=small, color=DIAGRAM["loss"])
    ax.set_xlim(-0.1, width)
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


_STATE_OPS = ("Tanh", "Relu")


def _op(node: dict) -> str:
    """The operation of a node without autograd's ``Backward0`` suffix: ``"Tanh"``, ``"Mm"``."""
    return node["op"].split("Backward")[0]
_LOSS_OPS = ("NllLoss", "LogSoftmax", "Mean", "Neg", "MseLoss")


def _box_width(label: str) -> float:
    """A box wide enough for its label (mathematical labels such as $W_{hh}$ print short)."""
    shown = label.replace("$", "").replace("{", "").replace("}", "").replace("_", "")
    return max(0.95, 0.15 * len(shown) + 0.4)


def _column_layout(nodes, depth, is_leaf):
    """Cut the operations into columns, one per recurrent step, at every state node.

    Returns (column of each operation, row of each operation, number of columns):
    column 0 holds what comes before the first state node (the head and the loss),
    column k the k-th state node from the loss and what lies below it.
    """
    state_depths = sorted({depth[i] for i, node in enumerate(nodes)
                           if not is_leaf[i] and _op(node) in _STATE_OPS})
    starts = [0] + [d for d in state_depths if d > 0]
    column, row = {}, {}
    for i in range(len(nodes)):
        if not is_leaf[i]:
            k = max(c for c, start in enumerate(starts) if depth[i] >= start)
            column[i], row[i] = k, depth[i] - starts[k]
    return column, row, len(starts)


def draw_autograd_graph(
    nodes: Sequence[dict], edges: Sequence[tuple[int, int]]
) -> Figure:
    """Draw a backward graph given as plain data (see ``bptt.autograd_graph``).

    The operations are cut into columns at every state node (``Tanh``, ``Relu``):
    one column per recurrent step, earliest step on the left, the head and the
    loss on the right, each column read from top to bottom. An arrow that leaves
    a column runs back one step in time, through the gap between the columns.
    The parameters (``op == "AccumulateGrad"``) sit in a column on the far right;
    each one collects its gradient along its own coloured rail under the graph,
    fed by one line from every operation that uses it. Arrows point the way
    ``backward()`` sends gradients. Colours: state nodes in the state colour, loss
    nodes in the loss colour, parameters in the input colour, the rest in the
    gate colour.
    """
    check_type("nodes", nodes, (list, tuple))
    check_type("edges", edges, (list, tuple))
    if not nodes:
        raise ValueError("nodes is empty: there is no graph to draw, got an empty list")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not {"op", "label"} <= set(node):
            raise ValueError(f"nodes[{i}] must be a dict with keys 'op' and 'label', got {node!r}")
    n = len(nodes)
    for edge in edges:
        if not (isinstance(edge, (tuple, list)) and len(edge) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) for i in edge)):
            raise TypeError(f"edges must hold pairs (i, j) of node indices, got {edge!r}")
    for a, b in edges:
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"edges must join node indices in [0, {n - 1}], got ({a}, {b})")
    depth = _graph_depths(n, edges)
    is_leaf = [node["op"] == "AccumulateGrad" for node in nodes]
    column, row, n_columns = _column_layout(nodes, depth, is_leaf)
    width = [_box_width(node["label"]) for node in nodes]
    box_h, dy, gap, lane_gap = 0.5, 0.95, 0.25, 0.3
    leaf_users = {i: [a for a, b in edges if b == i] for i in range(n) if is_leaf[i]}
    crosses = {a for a, b in edges if not is_leaf[a] and not is_leaf[b] and column[a] != column[b]}
    fed: dict[int, list[int]] = {}
    for a, b in edges:
        if is_leaf[b] and not is_leaf[a]:
            fed.setdefault(a, []).append(b)

    # Place the columns left to right in time: the last column (step 0) first.
    pos: dict[int, tuple[float, float]] = {}
    lanes: dict[int, float] = {}
    left_edge: dict[int, float] = {}
    x = 0.6
    for k in reversed(range(n_columns)):
        members = [i for i in column if column[i] == k]
        if not members:
            continue
        bottom_row = max(row[i] for i in members)
        by_row: dict[int, list[int]] = {}
        # In a row: the node that reaches back in time on the left, then the others,
        # those feeding later-recorded parameters first, so every step looks alike.
        for i in sorted(members, key=lambda i: (i not in crosses, -max(fed.get(i, [-1])), i)):
            by_row.setdefault(row[i], []).append(i)
        content = max(sum(width[i] for i in r) + gap * (len(r) - 1) for r in by_row.values())
        left_edge[k] = x
        for r, members_r in by_row.items():
            cx = x + (content - sum(width[i] for i in members_r) - gap * (len(members_r) - 1)) / 2
            for i in members_r:
                pos[i] = (cx + width[i] / 2, -r * dy)
                cx += width[i] + gap
        laned = [i for i in members if i in fed and row[i] < bottom_row]
        for j, i in enumerate(sorted(laned, key=lambda i: row[i])):
            lanes[i] = x + content + lane_gap * (j + 1)
        x += content + lane_gap * (len(laned) + 1) + 0.7
    graph_bottom = min(y for _, y in pos.values()) - box_h / 2

    # Rails: one per parameter, the one whose first user is furthest right on top.
    leaves = [i for i in range(n) if is_leaf[i]]
    first_x = {i: min(lanes.get(a, pos[a][0]) for a in leaf_users[i]) if leaf_users[i] else x
               for i in leaves}
    leaves.sort(key=lambda i: -first_x[i])
    leaf_x = x + max((width[i] for i in leaves), default=0) / 2 + 0.2
    rail_y = {i: graph_bottom - 0.55 - 0.6 * j for j, i in enumerate(leaves)}
    for i in leaves:
        pos[i] = (leaf_x, rail_y[i])
    right = leaf_x + max((width[i] for i in leaves), default=0) / 2 + 0.3
    top = 1.5
    bottom = min(rail_y.values(), default=graph_bottom) - 0.5
    fig, ax = diagram_axes(right, top - bottom, figsize=(0.62 * right, 0.62 * (top - bottom)))
    ax.set_ylim(bottom, top)
    ax.text(0.6, 1.15, "Arrows point the way backward() sends gradients: from the loss back "
            "through the steps, right to left, and down to the parameters.", ha="left",
            va="bottom", fontsize=DIAGRAM["font"] - 1, color=DIAGRAM["edge"])

    for k, start in left_edge.items():
        heading = "head and loss" if k == 0 else f"step {n_columns - 1 - k}"
        ax.text(start, 0.55, heading, ha="left", va="bottom", fontsize=DIAGRAM["font"] - 1,
                color=DIAGRAM["edge"], style="italic")
    for i, node in enumerate(nodes):
        if is_leaf[i]:
            role = "input"
        elif _op(node) in _STATE_OPS:
            role = "state"
        elif _op(node) in _LOSS_OPS:
            role = "loss"
        else:
            role = "gate"
        draw_box(ax, pos[i], node["label"], role, size=(width[i], box_h))

    line = dict(color=DIAGRAM["edge"], lw=1.3, solid_capstyle="round")
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        if is_leaf[b]:
            continue
        if column[a] == column[b]:
            draw_arrow(ax, (xa, ya - box_h / 2), (xb, yb + box_h / 2))
        else:  # one step back in time: out to the left, up the gap, into the state's side
            gx = left_edge[column[a]] - 0.35
            ax.plot([xa - width[a] / 2, gx, gx], [ya, ya, yb], **line)
            draw_arrow(ax, (gx, yb), (xb + width[b] / 2, yb))
    for colour, i in zip(CYCLE, leaves):
        users = leaf_users[i]
        y = rail_y[i]
        for a in users:
            xa, ya = pos[a]
            if a in lanes:
                ax.plot([xa + width[a] / 2, lanes[a], lanes[a]], [ya, ya, y], color=colour, lw=1.3)
                xa = lanes[a]
            else:
                ax.plot([xa, xa], [ya - box_h / 2, y], color=colour, lw=1.3)
            ax.plot([xa], [y], "o", color=colour, ms=3.5)
        if users:
            start = min(lanes.get(a, pos[a][0]) for a in users)
            ax.add_patch(FancyArrowPatch((start, y), (leaf_x - width[i] / 2, y), arrowstyle="-|>",
                                         mutation_scale=12, color=colour, lw=1.3, shrinkA=0,
                                         shrinkB=2))
    return fig


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_state_gradients(
    curves: dict, *, title: str | None = None, ax: Axes | None = None,
    ylabel: str = r"$\| \partial \mathcal{L} / \partial h_t \|$",
) -> Figure:
    """Gradient norms against the step t on a log scale, one line per entry of ``curves``.

    ``curves`` maps a label to a 1-D array or tensor of norms (as returned by
    ``cells.state_gradient_norms(...)["h"]``). A straight line on this plot is
    a constant factor per step: the slope is the log of that factor. ``ylabel``
    names what the curves measure; when they mix ||dL/dh_t|| and ||dL/dc_t||, say
    so there and in each label. A label that mentions ``c_t`` is drawn dashed, and
    labels that share the part before a colon (``"LSTM: h_t"``, ``"LSTM: c_t"``)
    share a colour and a marker, so that models differ by more than colour. With
    more than four curves the legend sits beside the axes, in a wider figure.
    """
    check_type("ylabel", ylabel, str)
    if title is not None:
        check_type("title", title, str)
    check_type("curves", curves, dict)
    if not curves:
        raise ValueError("curves is empty: give at least one label -> norms entry, "
                         "got an empty dict")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.6, 3.4) if len(curves) > 4 else (6, 3.4))
    else:
        check_type("ax", ax, Axes)
        fig = ax.figure
    models_seen: list[str] = []
    for label, norms in curves.items():
        norms = as_numpy(f"curves[{label!r}]", norms, dim=1).astype(float)
        shown = np.where(norms > 0, norms, np.nan)  # a log axis cannot show exact zeros
        style = "--" if "c_t" in str(label) else "-"
        model = str(label).split(":")[0]
        if model not in models_seen:
            models_seen.append(model)
        k = models_seen.index(model)
        every = max(1, len(norms) // 8)  # markers staggered, so close lines stay apart
        ax.plot(np.arange(len(norms)), shown, style, color=CYCLE[k % len(CYCLE)],
                marker=_MARKERS[k % len(_MARKERS)], ms=4, markevery=(k * every // 4 % every, every),
                label=str(label))
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    if len(curves) > 4:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    else:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_step_history(
    histories: dict, *, title: str | None = None, loss_max: float | None = None
) -> Figure:
    """Loss and gradient norm at every optimiser step, for several training runs.

    ``histories`` maps a label to a history from ``training.fit`` (its
    ``"step_loss"`` and ``"step_grad_norm"`` lists). Both panels use a log scale
    and share one legend, under them.
    A run whose loss becomes NaN or infinite gets a dotted vertical line at the
    first such step, since a log plot cannot show those values. With ``loss_max``
    the loss axis stops there, so that a few huge losses do not squeeze the rest,
    and every finite loss above it is marked by a triangle on the top edge.
    """
    if title is not None:
        check_type("title", title, str)
    if loss_max is not None:
        check_float("loss_max", loss_max, minimum=0.0, strict_minimum=True)
    check_type("histories", histories, dict)
    if not histories:
        raise ValueError("histories is empty: give at least one label -> history entry, "
                         "got an empty dict")
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
            above = np.flatnonzero(np.isfinite(values) & (values > (loss_max or np.inf)))
            if key == "step_loss" and len(above):
                ax.plot(above, np.full(len(above), loss_max), "^", color=colour, ms=6,
                        clip_on=False, label=f"{label}: loss above {loss_max:g}")
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[1].set_ylabel("gradient norm before clipping")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
    if loss_max is not None:
        axes[0].set_ylim(top=loss_max)
        axes[0].yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.1, 0.2, 0.5, 1, ...
        axes[0].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes[0].minorticks_off()
    # One legend for both panels, under them, where it covers no curve.
    handles, labels = axes[1].get_legend_handles_labels()
    for handle, label in zip(*axes[0].get_legend_handles_labels()):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
