"""Backpropagation through time, written out by hand.

The model is the vanilla tanh RNN of Chapter 1 with a linear head and a softmax
cross-entropy loss on the last step only (a sequence classifier):

    h_t    = tanh(x_t W_xh + h_{t-1} W_hh + b_h)      t = 0 .. T-1, h_{-1} = h0
    logits = h_{T-1} V + c
    L      = mean over the batch of -log softmax(logits)[y]

All weights are stored as (in, out), as in :class:`book_utils.cells.RNNCell`:
W_xh (F, H), W_hh (H, H), b_h (H,), V (H, C), c (C,).

:func:`forward` computes the loss and keeps what the backward pass needs (the
inputs, every state and the softmax probabilities). :func:`backward` walks the
steps in reverse, carrying dL/dh_t from one step to the one before, and never
calls autograd. The other helpers measure: :func:`relative_error` compares two
gradients, :func:`autograd_graph` lists the nodes autograd recorded, and
:class:`SavedTensorMeter` counts the bytes the graph keeps alive for backward.
:func:`train_truncated` reads a long stream in chunks (truncated BPTT) and
:func:`stream_accuracy` scores a model on a whole stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from . import training
from ._checks import check_int, check_tensor, check_type
from .cells import ScratchRNN

PARAMETER_NAMES = ("W_xh", "W_hh", "b_h", "V", "c")


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


def _check_parameters(params: dict) -> tuple[int, int, int]:
    """Validate the five weights; return (F, H, C)."""
    check_type("params", params, dict)
    missing = [name for name in PARAMETER_NAMES if name not in params]
    if missing:
        raise ValueError(f"params must have keys {PARAMETER_NAMES}, missing {missing}")
    W_xh = check_tensor("params['W_xh']", params["W_xh"], dim=2, floating=True, layout="(F, H)")
    F, H = W_xh.shape
    expected = {"W_hh": (H, H), "b_h": (H,)}
    V = check_tensor("params['V']", params["V"], dim=2, floating=True, layout="(H, C)")
    C = V.shape[1]
    expected.update({"V": (H, C), "c": (C,)})
    for name, shape in expected.items():
        value = check_tensor(f"params[{name!r}]", params[name], floating=True)
        if tuple(value.shape) != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape} to match W_xh {tuple(W_xh.shape)} "
                f"and V {tuple(V.shape)}, got {tuple(value.shape)}"
            )
    return F, H, C


def forward(
    x: torch.Tensor, y: torch.Tensor, params: dict[str, torch.Tensor],
    h0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, BPTTCache]:
    """Run the classifier over ``x`` (batch, time, features); return the loss and the cache.

    ``y`` holds one class index per sequence, shape (batch,). ``h0`` is the
    initial state (batch, hidden), zeros by default.
    """
    F, H, C = _check_parameters(params)
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    if x.shape[1] == 0 or x.shape[2] != F:
        raise ValueError(
            f"x must have shape (batch, time >= 1, {F}) to match W_xh, got {tuple(x.shape)}"
        )
    check_tensor("y", y, dim=1, integer=True, layout="(batch,)")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have {x.shape[0]} labels, one per sequence, got {y.shape[0]}")
    if len(y) and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y must hold class indices in [0, {C - 1}], got [{y.min()}, {y.max()}]")
    B, T, _ = x.shape
    if h0 is None:
        h0 = x.new_zeros(B, H)
    else:
        check_tensor("h0", h0, dim=2, floating=True, layout="(batch, hidden)")
        if tuple(h0.shape) != (B, H):
            raise ValueError(f"h0 must have shape {(B, H)}, got {tuple(h0.shape)}")

    W_xh, W_hh, b_h, V, c = (params[name] for name in PARAMETER_NAMES)
    h = [h0]
    for t in range(T):
        h.append(torch.tanh(x[:, t] @ W_xh + h[-1] @ W_hh + b_h))
    logits = h[-1] @ V + c
    log_probs = torch.log_softmax(logits, dim=1)
    loss = -log_probs[torch.arange(B), y].mean()
    cache = BPTTCache(x=x, h=torch.stack(h, dim=1), probs=log_probs.exp(), y=y)
    return loss, cache


def backward(
    cache: BPTTCache, params: dict[str, torch.Tensor], *, keep_state_grads: bool = False
) -> dict[str, torch.Tensor]:
    """Gradients of the mean loss with respect to the five weights, by hand.

    Returns a dict with keys ``W_xh, W_hh, b_h, V, c`` (same shapes as the
    weights). With ``keep_state_grads`` it also holds ``"h"``: dL/dh_t for every
    step, shape (batch, T, hidden), the quantity the loop carries as ``dh_next``.
    """
    check_type("cache", cache, BPTTCache)
    _check_parameters(params)
    check_type("keep_state_grads", keep_state_grads, bool)
    W_hh, V = params["W_hh"], params["V"]
    x, h, probs, y = cache.x, cache.h, cache.probs, cache.y
    B, T, _ = x.shape

    # Softmax cross-entropy: dL/dlogits = (p - onehot(y)) / B for a mean over the batch.
    dlogits = probs.clone()
    dlogits[torch.arange(B), y] -= 1.0
    dlogits /= B
    grads = {"V": h[:, T].T @ dlogits, "c": dlogits.sum(dim=0)}

    dW_xh = torch.zeros_like(params["W_xh"])
    dW_hh = torch.zeros_like(W_hh)
    db_h = torch.zeros_like(params["b_h"])
    dh_next = dlogits @ V.T  # dL/dh_{T-1}: the loss sees only the last state
    state_grads = []
    for t in reversed(range(T)):
        h_t, h_prev = h[:, t + 1], h[:, t]
        if keep_state_grads:
            state_grads.append(dh_next)
        dz = dh_next * (1.0 - h_t * h_t)  # through tanh: tanh'(z) = 1 - tanh(z)^2
        dW_xh += x[:, t].T @ dz
        dW_hh += h_prev.T @ dz
        db_h += dz.sum(dim=0)
        dh_next = dz @ W_hh.T  # dL/dh_{t-1}, carried to the previous step
    grads.update({"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h})
    if keep_state_grads:
        grads["h"] = torch.stack(state_grads[::-1], dim=1)
    return {name: grads[name] for name in (*PARAMETER_NAMES, "h") if name in grads}


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
            weights = {
                "W_xh": recurrent.weight_ih_l0.T,
                "W_hh": recurrent.weight_hh_l0.T,
                "b_h": recurrent.bias_ih_l0 + recurrent.bias_hh_l0,
            }
        else:
            cell = recurrent.cell
            weights = {"W_xh": cell.W_xh, "W_hh": cell.W_hh, "b_h": cell.b_h}
        weights.update({"V": head.weight.T, "c": head.bias})
        return {name: weights[name].detach().clone() for name in PARAMETER_NAMES}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||a||, ||b||): 0 for equal tensors, about 1e-16 for float64 rounding.

    A norm-wise ratio, so entries that are nearly zero in both do not blow it up.
    """
    check_tensor("a", a)
    check_tensor("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
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
    ``label`` is a short name (the op without ``Backward0``, or the parameter's
    name from ``names`` for a leaf). An edge ``(i, j)`` means node i passes
    gradient to node j; node 0 is ``output.grad_fn``.
    """
    check_tensor("output", output)
    if output.grad_fn is None:
        raise ValueError("output has no grad_fn: compute it from tensors with requires_grad=True")
    if names is not None:
        check_type("names", names, dict)
    by_tensor = {id(t): name for name, t in (names or {}).items()}
    index: dict[int, int] = {}
    nodes: list[dict] = []
    edges: list[tuple[int, int]] = []

    def visit(fn) -> int:
        if id(fn) in index:
            return index[id(fn)]
        op = type(fn).__name__
        if op == "AccumulateGrad":
            label = by_tensor.get(id(fn.variable), "param")
        else:
            label = op.split("Backward")[0]
        index[id(fn)] = len(nodes)
        nodes.append({"id": len(nodes), "op": op, "label": label})
        me = index[id(fn)]
        for child, _ in fn.next_functions:
            if child is not None:
                edges.append((me, visit(child)))
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


def _check_stream(x: torch.Tensor, y: torch.Tensor) -> None:
    """Streams ``x`` (batch, time, features) with one integer target per step in ``y``."""
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    check_tensor("y", y, dim=2, integer=True, layout="(batch, time)")
    if y.shape != x.shape[:2]:
        raise ValueError(f"y must have shape {tuple(x.shape[:2])}, one target per step, "
                         f"got {tuple(y.shape)}")


def _detach(state):
    """Cut the graph behind a state: the values stay, the history is dropped."""
    if isinstance(state, tuple):
        return tuple(part.detach() for part in state)
    return state.detach()


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
    check_type("model", model, nn.Module)
    _check_stream(x, y)
    window = check_int("window", window, minimum=1)
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    epochs = check_int("epochs", epochs, minimum=1)
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    history: dict[str, list] = {"loss": [], "seconds": []}
    model.train()
    for _ in range(epochs):
        start = time.perf_counter()
        state = None
        for begin in range(0, x.shape[1], window):
            logits, state = model(x[:, begin:begin + window], state)
            state = _detach(state)  # without this, backward would run into the previous chunk
            loss = loss_fn(logits.flatten(0, 1), y[:, begin:begin + window].flatten())
            training.update(model, loss, optimizer)
            history["loss"].append(loss.item())
        history["seconds"].append(time.perf_counter() - start)
    return history


@torch.no_grad()
def stream_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ignore_index: int = -100) -> float:
    """The fraction of steps whose target ``model`` predicts, reading each stream in one pass.

    Steps whose target is ``ignore_index`` do not count.
    """
    check_type("model", model, nn.Module)
    _check_stream(x, y)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, _ = model(x.to(device))
    model.train(was_training)
    y = y.to(device)
    counted = y != ignore_index
    if not counted.any():
        raise ValueError(f"y has no targets: every entry equals ignore_index={ignore_index}")
    return (logits.argmax(dim=-1) == y)[counted].float().mean().item()
