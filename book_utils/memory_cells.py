"""Chapter 2, memory cells: what a recurrent state remembers.

- :func:`perturbation_effect`: change one input step and measure how far the change
  travels through the outputs; :func:`with_spectral_radius` rescales a layer's W_hh and
  :func:`fade_rate` measures the factor per step by which such a change fades or grows.
- :data:`CLASSIFIER`: Chapter 1's recipe for the MNIST-row classifier, restated for this chapter.
- :func:`record_states`: the hidden state of a :class:`~book_utils.models.SequenceClassifier`
  after every step, and what its head would predict from each one.
- :func:`pca`: a principal-component projection written with ``torch.linalg.svd``.
- :func:`linear_probe_accuracy`: how much a linear read-out can decode from each step's state.
- :func:`cell_from_layer` and :func:`run_in_chunks`: a layer is a cell in a loop,
  and a long sequence can be read in pieces if the state is carried over.
- :func:`make_recall_task`: a task that needs memory; :data:`RECALL` its settings,
  :func:`train_recall` a model trained on it and :func:`best_rate_table` the benchmark's
  summary (each lag's learning rate chosen on validation). :class:`LastStepClassifier` is
  the no-memory baseline, :class:`ReadoutRNN` a cell whose output is not its state,
  :func:`draw_cell_with_output` its diagram.
- :func:`plot_state_trajectories`: hidden-state paths of several classes, one panel each.
"""

from __future__ import annotations

import statistics
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from ._checks import (
    LIMITS, check_dtype, check_float, check_int, check_layer, check_layer_input,
    check_layer_state, check_tensor, check_type, checked_by,
)
from .cells import torch_parameters
from .models import make_recurrent
from .plots import DIAGRAM, PALETTE, diagram_axes, draw_arrow, draw_box
from .data import make_loader
from .training import evaluate, fit, model_device


def _check_python_int(name: str, value, *, minimum: int | None = None) -> None:
    """An int as ``check_int`` wants it, and a Python int: torch refuses NumPy's for a seed or a size."""
    check_int(name, value, minimum=minimum)
    if not isinstance(value, int):
        raise TypeError(f"{name} must be a Python int, got {type(value).__module__}."
                        f"{type(value).__name__}: pass int({name})")


def _check_make_recall_task(
    n: int, seq_len: int, lag: int, n_symbols: int = 4, seed: int = 0
) -> None:
    check_int("n", n, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    check_int("lag", lag, minimum=0)
    check_int("n_symbols", n_symbols, minimum=2)
    _check_python_int("seed", seed, minimum=0)
    if lag >= seq_len:
        raise ValueError(f"lag must be smaller than seq_len={seq_len}, got lag={lag}")


@checked_by(_check_make_recall_task)
def make_recall_task(
    n: int, seq_len: int, lag: int, n_symbols: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of random symbols; the target is the symbol seen ``lag`` steps before the end.

    Each of the ``n`` sequences holds ``seq_len`` symbols drawn uniformly from
    ``0 .. n_symbols - 1``, one-hot encoded. The label is the symbol at step
    ``seq_len - 1 - lag``: ``lag=0`` asks for the last symbol (no memory needed),
    ``lag=k`` for the one seen k steps earlier. Guessing scores ``1 / n_symbols``.

    Returns ``x`` of shape (n, seq_len, n_symbols), float32, and ``y`` of shape
    (n,), int64.
    """
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(n_symbols, (n, seq_len), generator=generator)
    x = torch.nn.functional.one_hot(symbols, n_symbols).float()
    y = symbols[:, seq_len - 1 - lag].clone()
    return x, y


# The recall task's recipe: one run per lag in the chapter, five seeds in benchmarks/memory_cells.py.
RECALL = {
    "seq_len": 20,       # T
    "n_symbols": 4,      # V, the alphabet
    "hidden_size": 32,
    "n_train": 4096,     # fresh sequences, then n_test and n_val more of them
    "n_test": 1000,
    "n_val": 1000,
    "batch_size": 64,
    "epochs": 6,         # 384 Adam steps: deliberately few, so the chapter's sweep takes seconds
    "lr": 3e-3,
    "clip_norm": 1.0,
}


# The MNIST-row classifier whose states the chapter looks into, trained by Chapter 1's recipe
# (recurrent_neurons.RECIPE), restated here because a chapter module imports no other chapter's;
# tests/test_memory_cells.py fails when the two differ.
CLASSIFIER = {
    "hidden_size": 128,
    "batch_size": 64,
    "epochs": 50,
    "optimizer": "rmsprop",
    "lr": 1e-3,              # the peak of the one-cycle schedule
    "schedule": "onecycle",
    "clip_norm": 1.0,
    "max_shift": 2,          # pixels a training digit moves, afresh every epoch
    "orthogonal": True,      # W_hh starts orthogonal
}


def _check_recall_recipe(recipe: Any) -> None:
    check_type("recipe", recipe, dict)
    if set(recipe) != set(RECALL):
        missing, unknown = sorted(set(RECALL) - set(recipe)), sorted(set(recipe) - set(RECALL))
        raise ValueError(f"recipe must have the keys of RECALL, got missing {missing}, "
                         f"unknown {unknown}")
    for key in RECALL:
        if key in ("lr", "clip_norm"):
            check_float(f"recipe['{key}']", recipe[key], minimum=0.0, strict_minimum=True)
        else:
            check_int(f"recipe['{key}']", recipe[key], minimum=2 if key == "n_symbols" else 1)


def _check_train_recall(model: nn.Module, lag: int, recipe: dict = RECALL, *, seed: int = 0,
                        device=None) -> None:
    check_type("model", model, nn.Module)
    _check_recall_recipe(recipe)
    _check_python_int("lag", lag, minimum=0)
    if lag >= recipe["seq_len"]:
        raise ValueError(f"lag must be smaller than seq_len={recipe['seq_len']}, got {lag}")
    _check_python_int("seed", seed, minimum=0)


@checked_by(_check_train_recall)
def train_recall(model: nn.Module, lag: int, recipe: dict = RECALL, *, seed: int = 0,
                 device=None) -> dict[str, list[float] | float]:
    """Train ``model`` on the recall task with this ``lag``; its held-out accuracy per epoch.

    The sequences come from :func:`make_recall_task` with seed ``lag + 1``: the first
    ``n_train`` train, the next ``n_test`` test, the next ``n_val`` validate. Adam at a
    constant rate, gradients clipped; ``seed`` orders the minibatches. Returns
    ``{"test": [...], "validation": [...], "seconds": s}``, one accuracy per epoch.
    """
    n_train, n_test, n_val = recipe["n_train"], recipe["n_test"], recipe["n_val"]
    x, y = make_recall_task(n_train + n_test + n_val, recipe["seq_len"], lag,
                            n_symbols=recipe["n_symbols"], seed=lag + 1)
    train = make_loader(x[:n_train], y[:n_train], batch_size=recipe["batch_size"],
                        shuffle=True, seed=seed)
    held_out = {"test": slice(n_train, n_train + n_test),
                "validation": slice(n_train + n_test, n_train + n_test + n_val)}
    held_out = {name: make_loader(x[rows], y[rows], batch_size=len(y[rows]))
                for name, rows in held_out.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    curves, seconds = {"test": [], "validation": []}, 0.0
    for _ in range(recipe["epochs"]):   # one epoch at a time, to score the held-out splits
        history = fit(model, train, epochs=1, optimizer=optimizer,
                      clip_norm=recipe["clip_norm"], device=device, verbose=False)
        seconds += history["seconds"][0]
        for name, loader in held_out.items():
            curves[name].append(evaluate(model, loader, device=device)["accuracy"])
    return {**curves, "seconds": seconds}


def _check_best_rate_table(rows: list[dict], epochs: list[int]) -> None:
    check_type("rows", rows, list)
    check_type("epochs", epochs, list)
    keys = {"seed", "lag", "lr", "test", "validation"}
    if not rows or not all(isinstance(r, dict) and keys <= set(r) for r in rows):
        raise ValueError(f"rows must be a non-empty list of dicts with keys {sorted(keys)}, "
                         f"got {len(rows)} rows" + (f", the first with keys {sorted(rows[0])}"
                                                    if rows and isinstance(rows[0], dict) else ""))
    shortest = min(len(r["validation"]) for r in rows)
    for epoch in epochs:
        check_int("epochs[...]", epoch, minimum=1)
        if epoch > shortest:
            raise ValueError(f"epochs must be at most {shortest}, the shortest curve in rows, "
                             f"got {epoch}")


@checked_by(_check_best_rate_table)
def best_rate_table(rows: list[dict], epochs: list[int]) -> list[dict]:
    """For each lag and training length: the rate with the best mean validation accuracy.

    ``rows`` are runs of :func:`train_recall` (``seed``, ``lag``, ``lr`` and the ``test``
    and ``validation`` curves). For each lag and each number of ``epochs``, the learning
    rate is the one whose mean validation accuracy over the seeds, after that many epochs,
    is highest; the table gives the test accuracy of those runs: mean, standard deviation,
    minimum, maximum and the number of seeds.
    """
    table = []
    for lag in sorted({r["lag"] for r in rows}):
        for epoch in epochs:
            runs = [r for r in rows if r["lag"] == lag]
            by_rate = {lr: [r for r in runs if r["lr"] == lr] for lr in sorted({r["lr"] for r in runs})}
            lr = max(by_rate, key=lambda lr: statistics.fmean(
                r["validation"][epoch - 1] for r in by_rate[lr]))
            test = [r["test"][epoch - 1] for r in by_rate[lr]]
            table.append({"lag": lag, "epochs": epoch, "lr": lr, "mean": statistics.fmean(test),
                          "std": statistics.stdev(test) if len(test) > 1 else 0.0,
                          "min": min(test), "max": max(test), "n": len(test)})
    return table


def _check_LastStepClassifier_init(self, input_size: int, hidden_size: int, n_classes: int) -> None:
    check_int("input_size", input_size, minimum=1)
    check_int("hidden_size", hidden_size, minimum=1)
    check_int("n_classes", n_classes, minimum=2)


def _check_LastStepClassifier_forward(self, x: torch.Tensor) -> None:
    check_tensor("x", x, dim=3, floating=True, nonempty=True, layout="(batch, time, features)")
    in_features = self.net[0].in_features
    if x.shape[2] != in_features:
        raise ValueError(f"x must have {in_features} features in its last dimension, "
                         f"got shape {tuple(x.shape)}")
    check_dtype("x", x, self)


class LastStepClassifier(nn.Module):
    """A feed-forward classifier that sees only the last step of a sequence.

    ``logits = relu(x_T W_1 + b_1) W_2 + b_2`` for ``x`` of shape
    (batch, time, features). It has no state, so it cannot use anything that
    happened before the last step: the no-memory baseline.
    """

    @checked_by(_check_LastStepClassifier_init)
    def __init__(self, input_size: int, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, n_classes)
        )

    @checked_by(_check_LastStepClassifier_forward)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, -1])


def _check_ReadoutRNN_init(self, input_size: int, hidden_size: int, output_size: int) -> None:
    check_int("output_size", output_size, minimum=1)


def _check_ReadoutRNN_forward(
    self, x: torch.Tensor, h0: torch.Tensor | None = None
) -> None:
    check_layer_input("x", x, self.rnn)
    check_layer_state("h0", h0, x, self.rnn)


class ReadoutRNN(nn.Module):
    """A recurrent layer whose output o_t is a projection of its state h_t.

        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h),    o_t = h_t W_hy + b_y

    Called like ``nn.RNN(batch_first=True)``: ``forward(x, h0=None)`` takes ``x``
    of shape (batch, time, input_size) and returns ``(o, h_n)`` with ``o`` of
    shape (batch, time, output_size) and ``h_n`` of shape (1, batch, hidden_size).
    The state carried from step to step is h, never o.
    """

    @checked_by(_check_ReadoutRNN_init)
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = make_recurrent("rnn", input_size, hidden_size)
        self.readout = nn.Linear(hidden_size, output_size)

    @checked_by(_check_ReadoutRNN_forward)
    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, h_n = self.rnn(x, h0)
        return self.readout(states), h_n


def _check_perturbation_effect(
    recurrent: nn.Module, x: torch.Tensor, delta: torch.Tensor, step: int = 0
) -> None:
    check_layer("recurrent", recurrent)
    check_layer_input("x", x, recurrent)
    check_tensor("delta", delta, dim=(1, 2), floating=True, layout="(features,) or (batch, features)")
    batch, time, features = x.shape
    if delta.shape not in ((features,), (batch, features)):
        raise ValueError(
            f"delta must have shape ({features},) or ({batch}, {features}), got {tuple(delta.shape)}"
        )
    check_int("step", step, minimum=0)
    if step >= time:
        raise ValueError(f"step must be smaller than the number of time steps {time}, got {step}")


@torch.no_grad()
@checked_by(_check_perturbation_effect)
def perturbation_effect(
    recurrent: nn.Module, x: torch.Tensor, delta: torch.Tensor, step: int = 0
) -> torch.Tensor:
    """How much every output changes when input step ``step`` is nudged by ``delta``.

    ``recurrent`` is a layer called like ``nn.RNN(batch_first=True)``: it maps
    ``x`` of shape (batch, time, features) to ``(outputs, final_state)`` with
    outputs of shape (batch, time, hidden). ``delta`` has shape (features,) or
    (batch, features) and is added to ``x[:, step]``.

    Returns ``||outputs'[:, t] - outputs[:, t]||`` of shape (batch, time). Entries
    before ``step`` are exactly zero: a state cannot depend on inputs it has not seen.
    """
    nudged = x.clone()
    nudged[:, step] += delta.to(x.device)
    before, _ = recurrent(x)
    after, _ = recurrent(nudged)
    return (after - before).norm(dim=2)


def _check_with_spectral_radius(layer: nn.RNN, rho: float) -> None:
    check_type("layer", layer, nn.RNN)
    if layer.num_layers != 1 or layer.bidirectional:
        raise ValueError(f"layer must be one layer in one direction, got num_layers="
                         f"{layer.num_layers}, bidirectional={layer.bidirectional}")
    check_float("rho", rho, minimum=0.0)
    if not bool(torch.linalg.eigvals(layer.weight_hh_l0.detach()).abs().max() > 0):
        raise ValueError("layer.weight_hh_l0 must have a non-zero eigenvalue to be rescaled, "
                         "got a nilpotent (e.g. all-zero) matrix")


@torch.no_grad()
@checked_by(_check_with_spectral_radius)
def with_spectral_radius(layer: nn.RNN, rho: float) -> nn.RNN:
    """A copy of ``layer`` whose W_hh is rescaled to spectral radius ``rho``; the rest is kept."""
    rescaled = deepcopy(layer)
    W_hh = rescaled.weight_hh_l0
    W_hh.mul_(rho / torch.linalg.eigvals(W_hh).abs().max())
    return rescaled


def _check_fade_rate(recurrent: nn.RNN, x: torch.Tensor, delta: torch.Tensor, *,
                     start: int, stop: int | None = None) -> None:
    check_type("recurrent", recurrent, nn.RNN)
    if recurrent.nonlinearity != "tanh":
        raise ValueError(f"recurrent must be a tanh layer (the slope is tanh's), "
                         f"got nonlinearity={recurrent.nonlinearity!r}")
    _check_perturbation_effect(recurrent, x, delta)
    check_int("start", start, minimum=0)
    last = x.shape[1] - 1
    if stop is None:
        if start > last - 1:
            raise ValueError(f"start must leave at least one step after it, at most "
                             f"{last - 1} for {x.shape[1]} steps, got {start}")
        return
    check_int("stop", stop, minimum=1)
    if not start < stop <= last:
        raise ValueError(f"stop must be after start={start} and at most the last step {last}, "
                         f"got {stop}")


@torch.no_grad()
@checked_by(_check_fade_rate)
def fade_rate(recurrent: nn.RNN, x: torch.Tensor, delta: torch.Tensor, *,
              start: int, stop: int | None = None) -> dict[str, float]:
    """The factor per step by which a change to x_0 shrinks (or grows) from ``start`` to ``stop``.

    ``measured``: (||dh_stop|| / ||dh_start||) ** (1 / (stop - start)), with the distances of
    :func:`perturbation_effect` averaged over the batch; ``stop`` defaults to the last step.
    The slopes tanh'(a_t) = 1 - h_t**2 are those of the steps that carry the change from
    ``start`` to ``stop``, t = start+1 .. stop, every unit and every sequence: ``mean_slope``
    is their mean, ``rms_slope`` the square root of the mean of their squares.
    """
    effect = perturbation_effect(recurrent, x, delta).mean(dim=0)
    stop = x.shape[1] - 1 if stop is None else stop
    states, _ = recurrent(x)
    slopes = 1 - states[:, start + 1:stop + 1] ** 2
    return {"measured": float((effect[stop] / effect[start]) ** (1 / (stop - start))),
            "mean_slope": float(slopes.mean()),
            "rms_slope": float((slopes ** 2).mean().sqrt())}


@dataclass
class StateTrace:
    """What a sequence classifier holds and would predict after each step.

    ``states``: (batch, time, hidden), the hidden state h_t after reading step t.
    ``probabilities``: (batch, time, classes), softmax of the head applied to each h_t;
    the last step is the classifier's actual prediction.
    """

    states: torch.Tensor
    probabilities: torch.Tensor

    def __post_init__(self) -> None:
        check_tensor("states", self.states, dim=3, floating=True, layout="(batch, time, hidden)")
        check_tensor("probabilities", self.probabilities, dim=3, floating=True,
                     layout="(batch, time, classes)")
        if self.probabilities.shape[:2] != self.states.shape[:2]:
            raise ValueError(f"probabilities must have the (batch, time) of states "
                             f"{tuple(self.states.shape[:2])}, got {tuple(self.probabilities.shape)}")


def _check_record_states(model: nn.Module, x: torch.Tensor) -> None:
    check_type("model", model, nn.Module)
    for part in ("recurrent", "head"):
        if not isinstance(getattr(model, part, None), nn.Module):
            raise TypeError(
                f"model must have a '{part}' module like SequenceClassifier, "
                f"got {type(model).__name__} without one"
            )
    check_layer_input("x", x, model.recurrent)


@torch.no_grad()
@checked_by(_check_record_states)
def record_states(model: nn.Module, x: torch.Tensor) -> StateTrace:
    """Run a sequence classifier over ``x`` and keep every hidden state.

    ``model`` has a ``recurrent`` layer (called like ``nn.RNN(batch_first=True)``)
    and a ``head`` that maps a state to class scores, as
    :class:`~book_utils.models.SequenceClassifier` does. ``x`` has shape
    (batch, time, features) and is moved to the model's device; the trace comes
    back on the CPU, ready to plot.
    """
    was_training = model.training
    model.eval()
    states, _ = model.recurrent(x.to(model_device(model)))
    probabilities = model.head(states).softmax(dim=-1)
    model.train(was_training)
    return StateTrace(states.cpu(), probabilities.cpu())


@dataclass
class PCA:
    """A fitted principal-component projection.

    ``mean``: (features,), ``components``: (k, features) with orthonormal rows,
    ``explained_variance_ratio``: (k,), the share of the total variance along each.
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance_ratio: torch.Tensor

    def __post_init__(self) -> None:
        check_tensor("mean", self.mean, dim=1, floating=True, nonempty=True, layout="(features,)")
        check_tensor("components", self.components, dim=2, floating=True, nonempty=True,
                     layout="(k, features)")
        check_tensor("explained_variance_ratio", self.explained_variance_ratio, dim=1,
                     floating=True, nonempty=True, layout="(k,)")
        k, features = self.components.shape
        if features != self.mean.shape[0]:
            raise ValueError(f"components must have shape (k, {self.mean.shape[0]}) to match "
                             f"mean, got {tuple(self.components.shape)}")
        if self.explained_variance_ratio.shape[0] != k:
            raise ValueError(f"explained_variance_ratio must have shape ({k},), one share per "
                             f"component, got {tuple(self.explained_variance_ratio.shape)}")
        if self.mean.dtype != self.components.dtype:
            raise TypeError(f"components must have the dtype of mean, {self.mean.dtype}, "
                            f"got {self.components.dtype}")

    def transform(self, points: torch.Tensor) -> torch.Tensor:
        """Coordinates of ``points`` (..., features) along the components: (..., k)."""
        check_tensor("points", points, floating=True)
        if points.dim() == 0 or points.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"points must have {self.mean.shape[0]} features in the last dimension, "
                f"got shape {tuple(points.shape)}"
            )
        if points.dtype != self.mean.dtype:
            raise TypeError(f"points must have the dtype of the fitted PCA, {self.mean.dtype}, "
                            f"got {points.dtype}: convert one of them, e.g. "
                            f"points.to({self.mean.dtype})")
        return (points - self.mean) @ self.components.T


def _check_pca(points: torch.Tensor, n_components: int = 2) -> None:
    check_tensor("points", points, dim=2, floating=True, nonempty=True, layout="(n, features)")
    if points.dtype not in (torch.float32, torch.float64):  # torch's SVD has no float16
        raise TypeError(f"points must be float32 or float64, got {points.dtype}")
    n, features = points.shape
    check_int("n_components", n_components, minimum=1)
    if n_components > min(n, features):
        raise ValueError(
            f"n_components must be at most min(n, features) = {min(n, features)}, got {n_components}"
        )
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"points must be finite, got {int((~torch.isfinite(points)).sum())} "
                         "NaN or infinite values")
    if n < 2 or not bool((points != points[0]).any()):
        raise ValueError(f"points must not all be equal (PCA needs some variance), "
                         f"got {n} identical points")


@checked_by(_check_pca)
def pca(points: torch.Tensor, n_components: int = 2) -> PCA:
    """Fit PCA to ``points`` of shape (n, features) with a singular value decomposition.

    After centring, Z - mean = L S R^T; the columns of R are the principal directions and
    the squared singular values divided by n - 1 the variances along them. Each component's sign is fixed so that
    its largest entry is positive, which makes the result repeatable.
    """
    mean = points.mean(dim=0)
    _, s, vh = torch.linalg.svd(points - mean, full_matrices=False)
    components = vh[:n_components]
    largest = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
    components = components * largest.sign()
    variance = s**2
    ratio = variance[:n_components] / variance.sum()
    return PCA(mean, components, ratio)


def _check_cell_from_layer(layer: nn.RNN, layer_index: int = 0) -> None:
    check_type("layer", layer, nn.RNN)
    check_int("layer_index", layer_index, minimum=0)
    if layer.bidirectional:
        raise ValueError("layer must be one-directional, got bidirectional=True")
    if layer_index >= layer.num_layers:
        raise ValueError(
            f"layer_index must be smaller than num_layers={layer.num_layers}, got {layer_index}"
        )


@torch.no_grad()
@checked_by(_check_cell_from_layer)
def cell_from_layer(layer: nn.RNN, layer_index: int = 0) -> nn.RNNCell:
    """An ``nn.RNNCell`` holding a copy of one layer's weights from an ``nn.RNN``.

    ``nn.RNN`` names its parameters ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
    ``bias_hh_l0`` (then ``_l1`` for the next layer); ``nn.RNNCell`` drops the suffix.
    """
    weights = torch_parameters(layer, layer_index)
    in_size = layer.input_size if layer_index == 0 else layer.hidden_size
    cell = nn.RNNCell(in_size, layer.hidden_size, nonlinearity=layer.nonlinearity)
    cell.to(device=weights["weight_ih"].device, dtype=weights["weight_ih"].dtype)
    for name, parameter in cell.named_parameters():
        parameter.copy_(weights[name])
    return cell


def _check_run_in_chunks(
    recurrent: nn.Module,
    x: torch.Tensor,
    chunk_len: int,
    state: torch.Tensor | tuple | None = None,
    *,
    detach: bool = False,
) -> None:
    check_layer("recurrent", recurrent)
    check_layer_input("x", x, recurrent)
    _check_python_int("chunk_len", chunk_len, minimum=1)
    check_layer_state("state", state, x, recurrent)
    check_type("detach", detach, bool)


@checked_by(_check_run_in_chunks)
def run_in_chunks(
    recurrent: nn.Module,
    x: torch.Tensor,
    chunk_len: int,
    state: torch.Tensor | tuple | None = None,
    *,
    detach: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | tuple]:
    """Read ``x`` (batch, time, features) in pieces of ``chunk_len`` steps, carrying the state.

    ``recurrent`` is called like ``nn.RNN(batch_first=True)`` as
    ``recurrent(chunk, state)``; its final state (a tensor, or a tuple such as an
    LSTM's ``(h, c)``) becomes the initial state of the next chunk. With
    ``detach=True`` the carried state is cut from the graph between chunks, so
    gradients stop at chunk borders (truncated backpropagation through time);
    the forward values are unchanged.

    Returns the outputs of every step, (batch, time, hidden), and the final state.
    """
    outputs = []
    for chunk in x.split(chunk_len, dim=1):
        if detach and state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out, state = recurrent(chunk, state)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


def _check_linear_probe_accuracy(
    train_states: torch.Tensor,
    train_labels: torch.Tensor,
    test_states: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    ridge: float = 1e-3,
) -> None:
    check_tensor("train_states", train_states, dim=3, floating=True, nonempty=True,
                 finite=True, layout="(n, time, hidden)")
    check_tensor("test_states", test_states, dim=3, floating=True, nonempty=True,
                 finite=True, layout="(n, time, hidden)")
    check_tensor("train_labels", train_labels, dim=1, integer=True, layout="(n,)")
    check_tensor("test_labels", test_labels, dim=1, integer=True, layout="(n,)")
    check_float("ridge", ridge, minimum=0.0, strict_minimum=True)
    if train_states.shape[1:] != test_states.shape[1:]:
        raise ValueError(
            "train_states and test_states must agree in (time, hidden), got "
            f"{tuple(train_states.shape[1:])} and {tuple(test_states.shape[1:])}"
        )
    for name, states, labels in (("train", train_states, train_labels),
                                 ("test", test_states, test_labels)):
        if labels.shape[0] != states.shape[0]:
            raise ValueError(
                f"{name}_labels must have one label per sequence ({states.shape[0]}), "
                f"got {labels.shape[0]}"
            )
    for name, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
        if labels.min() < 0:
            raise ValueError(f"{name} must be class indices >= 0, got a negative label "
                             f"({labels.min().item()})")
        check_int(f"the classes of {name}", int(labels.max()) + 1,
                  maximum=LIMITS["n_classes"])  # one probe column per class


@checked_by(_check_linear_probe_accuracy)
def linear_probe_accuracy(
    train_states: torch.Tensor,
    train_labels: torch.Tensor,
    test_states: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """How much class information a linear read-out can find in the state at each step.

    For every step t a separate linear classifier (a *probe*) is fitted to the
    states ``train_states[:, t]`` by ridge regression onto one-hot labels, in
    closed form, and scored on ``test_states[:, t]``. States have shape
    (n, time, hidden), labels shape (n,) with class indices. ``ridge`` is added
    to the diagonal of the states' covariance matrix.

    Returns the held-out accuracy of each step's probe, shape (time,).
    """
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    x = train_states.detach().double().transpose(0, 1)                 # (time, n, hidden)
    mean = x.mean(dim=1, keepdim=True)
    targets = nn.functional.one_hot(train_labels, n_classes).double()
    target_mean = targets.mean(dim=0)
    centred = x - mean
    covariance = centred.transpose(1, 2) @ centred / x.shape[1]
    covariance = covariance + ridge * torch.eye(x.shape[2], dtype=x.dtype, device=x.device)
    weights = torch.linalg.solve(covariance, centred.transpose(1, 2) @ (targets - target_mean) / x.shape[1])
    scores = (test_states.detach().double().transpose(0, 1) - mean) @ weights + target_mean
    return (scores.argmax(dim=2) == test_labels).float().mean(dim=1)


def draw_cell_with_output(steps: int = 3, *, state: str = "h", output: str = "o") -> Figure:
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


def _check_plot_state_trajectories(
    trajectories: torch.Tensor, labels: torch.Tensor, classes: list[int], *,
    per_class: int = 5, explained: torch.Tensor | None = None,
) -> None:
    check_tensor("trajectories", trajectories, dim=3, floating=True, layout="(digits, time, 2)")
    check_tensor("labels", labels, dim=1, integer=True, layout="(digits,)")
    if trajectories.shape[2] != 2 or len(labels) != len(trajectories):
        raise ValueError(f"trajectories must have shape (digits, time, 2) with one label per "
                         f"digit, got {tuple(trajectories.shape)} and {len(labels)} labels")
    check_type("classes", classes, list)
    for c in classes:
        check_int("each of classes", c)
    check_int("per_class", per_class, minimum=0)
    missing = [c for c in classes if not (labels == c).any()]
    if not classes or missing or len(classes) > _MAX_PANELS:
        raise ValueError(f"classes must list 1 to {_MAX_PANELS} labels present in labels, "
                         f"got {classes} (absent: {missing})")
    if explained is not None:
        check_tensor("explained", explained, dim=1, floating=True, layout="(2,)")
        if explained.shape[0] != 2:
            raise ValueError(f"explained must hold two shares, got shape {tuple(explained.shape)}")


_MAX_PANELS = 6


@checked_by(_check_plot_state_trajectories)
def plot_state_trajectories(
    trajectories: torch.Tensor, labels: torch.Tensor, classes: list[int], *,
    per_class: int = 5, explained: torch.Tensor | None = None,
) -> Figure:
    """State trajectories projected on two principal components: one panel per class.

    ``trajectories`` has shape (digits, time, 2) and ``labels`` shape (digits,). Each panel
    shows one class of ``classes``: ``per_class`` single trajectories as thin lines, the class
    mean as a thick line with arrowheads in the direction of reading and a dot at the state
    after the last row; the other classes' mean paths are drawn in light grey behind it, and
    a grey square marks where every digit starts. The panels share their axes, so end points
    can be compared across panels. ``explained``, the two shares of variance, goes into the
    axis labels. One colour is enough: the panel, not the colour, tells the classes apart.
    """
    columns = min(3, len(classes))
    rows = -(-len(classes) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns, 2.9 * rows),
                             sharex=True, sharey=True, squeeze=False)
    means = {d: trajectories[labels == d].mean(dim=0).numpy() for d in classes}
    start = trajectories[:, 0].mean(dim=0).numpy()
    shares = ["", ""] if explained is None else [f" ({s:.0%})" for s in explained]
    for ax, digit in zip(axes.flat, classes):
        for other, path in means.items():
            if other != digit:
                ax.plot(path[:, 0], path[:, 1], color="#c8c8c8", lw=1.2)
        for path in trajectories[labels == digit][:per_class].numpy():
            ax.plot(path[:, 0], path[:, 1], color=PALETTE["sky"], lw=0.7)
        mean = means[digit]
        ax.plot(mean[:, 0], mean[:, 1], color=PALETTE["blue"], lw=2.4,
                marker="o", markevery=[len(mean) - 1], ms=7, mec="black",
                label=f"digit {digit}")
        for t in range(len(mean) // 4, len(mean) - 1, max(1, len(mean) // 4)):
            ax.annotate("", xy=mean[t + 1], xytext=mean[t],
                        arrowprops={"arrowstyle": "-|>", "color": PALETTE["blue"], "lw": 2})
        ax.plot(*start, marker="s", color="#808080", ms=7, ls="none")
        ax.set_title(f"digit {digit}", fontsize=10)
        ax.set_xlabel(f"component 1{shares[0]}")
        ax.set_ylabel(f"component 2{shares[1]}")
    for ax in list(axes.flat)[len(classes):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
