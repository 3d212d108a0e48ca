"""Chapter 3, sequence shapes: the four input/output shapes and their models.

- **series and forecasts**: :func:`noisy_sines`, :func:`horizon_targets`,
  :class:`RecurrentForecaster` (one step, rollout, or k values at once),
  :func:`naive_forecast` and :class:`LinearForecaster` as baselines,
  :func:`train_forecaster`;
- **vector to sequence**: :func:`waves_from_parameters`, :class:`VectorToSequence`;
- **sequences of different lengths**: :func:`random_crops`, :func:`last_valid_step`,
  :class:`CroppedBatches` (minibatches for :func:`book_utils.training.fit`),
  :func:`last_step_accuracy`,
  :class:`PerStepClassifier` (a packed GRU with a prediction at every valid step);
- **reversing digit strings**: :func:`reversal_pairs_by_length`, a held-out set with as many
  strings of every length as exist outside the training set;
- :func:`draw_sequence_shapes`, the chapter's figure;
- :data:`FORECAST_RECIPE`, :data:`CLASSIFIER_RECIPE` and :data:`TAGGER_RECIPE`, the recipes
  chosen on validation data.

The encoder-decoder and its vocabulary are core (:mod:`book_utils.models`,
:mod:`book_utils.data`): chapter 7 extends them.
"""

from __future__ import annotations

import math
import time
from typing import Iterable, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import training
from ._checks import (
    check_dtype, check_float, check_int, check_lengths, check_tensor, check_type, checked_by,
)
from .plots import DIAGRAM, diagram_axes, draw_arrow, draw_box


#: The chapter's MNIST recipes: the peak learning rate (and, for the classifier, the shift)
#: with the best mean validation accuracy over the selection seeds 10-12 in
#: ``benchmarks/sequence_shapes.py --part mnist``, whose results file keeps every search run;
#: the epochs are fixed by the time budget, and the test digits played no part.
CLASSIFIER_RECIPE = {"epochs": 12, "lr": 2e-2, "max_shift": 1}
TAGGER_RECIPE = {"epochs": 12, "lr": 2e-2}
#: The forecasting recipes, chosen on validation series (not the held-out ones) by
#: ``benchmarks/sequence_shapes.py --part forecast`` with its selection seeds (10, 11, 12):
#: each GRU forecaster's own learning rate, and each linear baseline's window (for one step
#: ahead, the best of those that fit the scored steps, the predictions of x_32 ... x_59).
FORECAST_RECIPE = {"steps": 500, "hidden_size": 32, "lr_one_step": 0.1, "lr_direct": 0.1,
                   "window_one_step": 32, "window_direct": 48}


def noisy_sines(
    n: int, length: int, *, components: int = 3, noise: float = 0.1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` series of ``length`` steps, each a sum of ``components`` random sines plus noise.

    Component k of a series is a_k sin(2 pi f_k t + phi_k), with amplitude a_k
    drawn from [0.5, 1] / components (so the clean series stays within [-1, 1]),
    frequency f_k from [0.01, 0.1] cycles per step and phase phi_k from [0, 2 pi).
    Returns ``(noisy, clean)``, both (n, length) float32; ``noisy`` adds
    Gaussian noise of standard deviation ``noise``.
    """
    n = check_int("n", n, minimum=1)
    length = check_int("length", length, minimum=2)
    components = check_int("components", components, minimum=1)
    noise = check_float("noise", noise, minimum=0.0)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    t = torch.arange(length, dtype=torch.float32)
    amplitude = (0.5 + 0.5 * torch.rand(n, components, 1, generator=g)) / components
    frequency = 0.01 + 0.09 * torch.rand(n, components, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, components, 1, generator=g)
    clean = (amplitude * torch.sin(2 * math.pi * frequency * t + phase)).sum(dim=1)
    noisy = clean + noise * torch.randn(n, length, generator=g)
    return noisy, clean


def waves_from_parameters(
    n: int, length: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sine waves y_t = sin(2 pi f t + phi) and the vectors that describe them.

    Frequency f is drawn from [0.02, 0.1] cycles per step and phase phi from
    [0, 2 pi). Returns ``(parameters, waves)``: parameters (n, 3) hold
    (10 f, cos phi, sin phi), a smooth encoding with no jump at phi = 2 pi,
    and waves are (n, length).
    """
    n = check_int("n", n, minimum=1)
    length = check_int("length", length, minimum=1)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    frequency = 0.02 + 0.08 * torch.rand(n, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    t = torch.arange(length, dtype=torch.float32)
    waves = torch.sin(2 * math.pi * frequency * t + phase)
    parameters = torch.cat([10 * frequency, torch.cos(phase), torch.sin(phase)], dim=1)
    return parameters, waves


def random_crops(
    x: torch.Tensor, min_length: int, max_length: int | None = None, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep a random number of leading steps of each sequence in x (batch, time, features).

    Each sequence keeps its first L steps, L uniform in [min_length,
    max_length] (default: all steps); the steps after L are set to zero.
    Returns ``(cropped, lengths)``: cropped has the shape of x, lengths is (batch,) int64.
    """
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    min_length = check_int("min_length", min_length, minimum=1)
    max_length = x.shape[1] if max_length is None else check_int("max_length", max_length, minimum=1)
    if not min_length <= max_length <= x.shape[1]:
        raise ValueError(f"need min_length <= max_length <= {x.shape[1]} (the time steps of x), "
                         f"got min_length={min_length}, max_length={max_length}")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    lengths = torch.randint(min_length, max_length + 1, (x.shape[0],), generator=g)
    keep = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    return x * keep[:, :, None].to(x), lengths


def _check_series(name: str, series: torch.Tensor, min_length: int = 1) -> torch.Tensor:
    check_tensor(name, series, dim=2, floating=True, layout="(batch, time)", nonempty=True)
    if series.shape[1] < min_length:
        raise ValueError(f"{name} must have at least {min_length} time steps, got shape {tuple(series.shape)}")
    return series


def horizon_targets(series: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, T - horizon, 1) and targets (batch, T - horizon, horizon).

    ``targets[b, t, j]`` is ``series[b, t + 1 + j]``: at each step the model sees
    the series up to t and must predict the next ``horizon`` values.
    """
    horizon = check_int("horizon", horizon, minimum=1)
    _check_series("series", series, horizon + 1)
    steps = series.shape[1] - horizon
    inputs = series[:, :steps, None]
    targets = series.unfold(1, horizon, 1)[:, 1 : steps + 1]
    return inputs, targets


def naive_forecast(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """Repeat the last observed value: (batch, time) -> (batch, horizon)."""
    _check_series("context", context)
    horizon = check_int("horizon", horizon, minimum=1)
    return context[:, -1:].expand(-1, horizon).clone()


def _check_RecurrentForecaster_forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> None:
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, 1)", nonempty=True)
    if x.shape[2] != 1:
        raise ValueError(f"x must have one feature per step, got shape {tuple(x.shape)}")
    check_dtype("x", x, self)
    if h0 is not None:
        expected = (self.gru.num_layers, x.shape[0], self.gru.hidden_size)
        check_tensor("h0", h0, dim=3, floating=True, layout=f"(layers, batch, hidden) = {expected}")
        if tuple(h0.shape) != expected:
            raise ValueError(f"h0 must have shape (layers, batch, hidden) = {expected}, "
                             f"got {tuple(h0.shape)}")
        check_dtype("h0", h0, self)


def _check_RecurrentForecaster_rollout(self, context: torch.Tensor, steps: int) -> None:
    _check_series("context", context)
    check_dtype("context", context, self)
    check_int("steps", steps, minimum=1)


class RecurrentForecaster(nn.Module):
    """A GRU reads the series; a linear head maps each state to the next ``horizon`` values.

    ``forward(x, h0=None)`` takes x (batch, time, 1) and returns the per-step
    forecasts (batch, time, horizon) and the final state (1, batch, hidden).
    """

    def __init__(self, hidden_size: int = 32, horizon: int = 1) -> None:
        super().__init__()
        self.horizon = horizon = check_int("horizon", horizon, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.gru = nn.GRU(1, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, horizon)

    @checked_by(_check_RecurrentForecaster_forward)
    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, h_n = self.gru(x, h0)
        return self.head(outputs), h_n

    @torch.no_grad()
    def forecast(self, context: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` values after the context, all at once: (batch, time) -> (batch, horizon)."""
        _check_series("context", context)
        check_dtype("context", context, self)
        return self(context[:, :, None])[0][:, -1]

    @torch.no_grad()
    @checked_by(_check_RecurrentForecaster_rollout)
    def rollout(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """Forecast ``steps`` values by feeding each one-step prediction back as the next input.

        The state is carried forward, so each new step costs one GRU step.
        Returns (batch, steps).
        """
        predictions, state = self(context[:, :, None])
        next_value = predictions[:, -1:, :1]                          # (batch, 1, 1)
        produced = [next_value]
        for _ in range(steps - 1):
            predictions, state = self(next_value, state)
            next_value = predictions[:, :, :1]
            produced.append(next_value)
        return torch.cat(produced, dim=1)[:, :, 0]


class LinearForecaster(nn.Module):
    """The next ``horizon`` values as a linear function of the last ``window`` values.

    ``forecast = [x_{t-window+1}, ..., x_t, 1] W``, with W of shape
    (window + 1, horizon) fitted by least squares with :meth:`fit`. A tiny
    ``ridge`` penalty keeps the fit unique when windows are linearly dependent,
    as they are for a noise-free sum of a few sines.
    ``forward(series)`` returns the forecast after every complete window,
    (batch, time - window + 1, horizon); :meth:`forecast` returns the one after
    the last step.
    """

    def __init__(self, window: int, horizon: int = 1, ridge: float = 1e-6) -> None:
        super().__init__()
        self.window = check_int("window", window, minimum=1)
        self.horizon = check_int("horizon", horizon, minimum=1)
        self.ridge = check_float("ridge", ridge, minimum=0.0)
        self.register_buffer("weight", torch.zeros(window + 1, horizon))

    def _features(self, series: torch.Tensor) -> torch.Tensor:
        windows = series.unfold(1, self.window, 1)                    # (batch, n_windows, window)
        return torch.cat([windows, torch.ones_like(windows[..., :1])], dim=-1)

    @torch.no_grad()
    def fit(self, series: torch.Tensor) -> "LinearForecaster":
        """Least squares over every window of every series that has ``horizon`` values after it."""
        _check_series("series", series, self.window + self.horizon)
        if series.dtype not in (torch.float32, torch.float64):  # torch's solver has no float16
            raise TypeError(f"series must be float32 or float64, got {series.dtype}")
        features = self._features(series[:, : -self.horizon]).reshape(-1, self.window + 1)
        targets = series[:, self.window :].unfold(1, self.horizon, 1).reshape(-1, self.horizon)
        # Normal equations: (F^T F + ridge I) W = F^T Y.
        gram = features.T @ features
        gram += self.ridge * len(features) * torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
        self.weight.copy_(torch.linalg.solve(gram, features.T @ targets))
        return self

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        _check_series("series", series, self.window)
        # In the series' precision: a float64 series gets a float64 forecast.
        return self._features(series) @ self.weight.to(series.dtype)

    @torch.no_grad()
    def forecast(self, context: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` values after the context: (batch, time) -> (batch, horizon)."""
        _check_series("context", context, self.window)
        return self(context)[:, -1]


def train_forecaster(
    model: RecurrentForecaster,
    series: torch.Tensor,
    *,
    steps: int,
    lr: float = 0.01,
    batch_size: int = 32,
    clip_norm: float = 1.0,
    seed: int = 0,
) -> dict[str, list]:
    """Fit ``model`` to predict the next ``model.horizon`` values at every step of ``series``.

    The loss is the mean squared error over every step and horizon. Each of
    ``steps`` updates uses a random minibatch of whole series; Adam's learning
    rate warms up and then decays (a one-cycle schedule). Returns a history
    with the per-step loss and the total time in seconds.
    """
    check_type("model", model, RecurrentForecaster)
    steps = check_int("steps", steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    clip_norm = check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    _check_series("series", series, model.horizon + 1)
    check_dtype("series", series, model)
    device = next(model.parameters()).device
    inputs, targets = (t.to(device) for t in horizon_targets(series, model.horizon))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    history: dict[str, list] = {"step_loss": [], "seconds": []}
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, len(inputs), (batch_size,), generator=generator).to(device)
        loss = nn.functional.mse_loss(model(inputs[index])[0], targets[index])
        training.update(model, loss, optimizer, clip_norm=clip_norm, scheduler=schedule)
        history["step_loss"].append(loss.item())
    history["seconds"].append(time.perf_counter() - start)
    model.eval()
    return history


def last_valid_step(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last valid step, ``outputs[b, lengths[b] - 1]``: (batch, hidden)."""
    check_tensor("outputs", outputs, dim=3, floating=True, layout="(batch, time, hidden)",
                 nonempty=True)
    check_lengths(lengths, outputs.shape[0], outputs.shape[1])
    index = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    return outputs.gather(1, index).squeeze(1)


def last_step_accuracy(logits: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the prediction at each sequence's last valid step (a fraction in [0, 1])."""
    check_tensor("logits", logits, dim=3, floating=True, layout="(batch, time, classes)",
                 nonempty=True)
    check_tensor("labels", labels, dim=1, integer=True, layout="(batch,)")
    if len(labels) != len(logits):
        raise ValueError(f"labels must hold one label per sequence ({len(logits)}), got {len(labels)}")
    check_lengths(lengths, logits.shape[0], logits.shape[1])
    classes = logits.shape[2]
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must be class indices in [0, {classes - 1}], got values from "
                         f"{labels.min().item()} to {labels.max().item()}")
    scores = last_valid_step(logits, lengths)   # the steps past each length are never read
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("logits must hold finite scores at each sequence's last valid step, "
                         "got NaN or inf: a diverged model scores nothing")
    return (scores.argmax(dim=1) == labels.to(scores.device)).float().mean().item()


class CroppedBatches:
    """Minibatches of variable-length sequences for :func:`book_utils.training.fit`.

    Each batch is ``((x, lengths), (labels, lengths))``: x (batch, longest,
    features) trimmed to the longest sequence in the batch, and each sequence's
    label repeated at every step, (batch, longest), so that
    ``masked_cross_entropy(model(x, lengths), labels, lengths)`` is its loss.
    With ``shuffle`` each pass draws a fresh, seeded order; without it the
    order is fixed (for validation).
    """

    def __init__(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, *,
                 batch_size: int = 32, shuffle: bool = False, seed: int = 0) -> None:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)", nonempty=True)
        check_lengths(lengths, x.shape[0], x.shape[1], of="x")
        check_tensor("y", y, dim=1, integer=True, layout="(batch,)")
        if len(y) != len(x):
            raise ValueError(f"y must hold one label per sequence ({len(x)}), got {len(y)}")
        self.x, self.lengths, self.y = x, lengths, y
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        check_type("shuffle", shuffle, bool)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            lengths = self.lengths[index]
            longest = int(lengths.max())
            labels = self.y[index, None].expand(-1, longest)          # the label at every step
            yield (self.x[index, :longest], lengths), (labels, lengths)


def _check_PerStepClassifier_forward(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)", nonempty=True)
    check_dtype("x", x, self)
    check_lengths(lengths, x.shape[0], x.shape[1], of="x")


class PerStepClassifier(nn.Module):
    """A GRU that reads a padded batch as packed sequences and classifies at every step.

    ``forward(x, lengths)`` takes x (batch, time, features) and returns logits
    (batch, time, classes). Padded steps never reach the GRU, so the state at
    each sequence's last valid step is the state of the sequence alone; their
    logits are only the head's bias and must be masked out of any loss.
    """

    def __init__(self, input_size: int, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        input_size = check_int("input_size", input_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, check_int("n_classes", n_classes, minimum=2))

    @checked_by(_check_PerStepClassifier_forward)
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # pack_padded_sequence wants the lengths on the CPU, whatever the device of x.
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                         total_length=x.shape[1])
        return self.head(outputs)


def _check_VectorToSequence_forward(self, v: torch.Tensor) -> None:
    check_tensor("v", v, dim=2, floating=True, layout="(batch, vector_size)")
    if v.shape[1] != self.vector_size:
        raise ValueError(f"v must have {self.vector_size} features, got shape {tuple(v.shape)}")
    check_dtype("v", v, self)


class VectorToSequence(nn.Module):
    """Generate a sequence of ``steps`` outputs from one vector ``v``.

    The vector sets the state before the first step, h_{-1} = tanh(v W_vh + b_v),
    and is also the input at every step, h_t = GRU(v, h_{t-1}) for
    t = 0, ..., steps - 1, so the GRU never has to remember it; a linear head
    reads each state: y_t = h_t W_hy + b_y. ``forward(v)`` maps (batch, vector_size)
    to (batch, steps, output_size).
    """

    def __init__(self, vector_size: int, hidden_size: int, output_size: int, steps: int) -> None:
        super().__init__()
        self.vector_size = vector_size = check_int("vector_size", vector_size, minimum=1)
        self.steps = check_int("steps", steps, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.initial_state = nn.Linear(vector_size, hidden_size)
        self.gru = nn.GRU(vector_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, check_int("output_size", output_size, minimum=1))

    @checked_by(_check_VectorToSequence_forward)
    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h_before = torch.tanh(self.initial_state(v)).unsqueeze(0)     # h_{-1}: (1, batch, hidden)
        inputs = v.unsqueeze(1).expand(-1, self.steps, -1)            # (batch, steps, vector)
        outputs, _ = self.gru(inputs, h_before)                       # h_0 ... h_{steps-1}
        return self.head(outputs)


def _check_reversal_pairs_by_length(
    per_length: int, min_length: int, max_length: int, *, exclude: Iterable[str] = (), seed: int = 0
) -> None:
    check_int("per_length", per_length, minimum=1)
    check_int("min_length", min_length, minimum=1)
    check_int("max_length", max_length, minimum=1)
    if max_length < min_length:
        raise ValueError(f"max_length must be >= min_length ({min_length}), got {max_length}")
    if isinstance(exclude, str) or not isinstance(exclude, Iterable):
        raise TypeError(f"exclude must be a collection of strings (a list or set), "
                        f"got {type(exclude).__name__}")
    odd = [s for s in exclude if not isinstance(s, str)]
    if odd:
        raise TypeError(f"exclude must hold strings only, got {type(odd[0]).__name__}")
    check_int("seed", seed, minimum=0)


@checked_by(_check_reversal_pairs_by_length)
def reversal_pairs_by_length(
    per_length: int, min_length: int, max_length: int, *, exclude: Iterable[str] = (), seed: int = 0
) -> tuple[list[str], list[str]]:
    """Held-out digit strings and their reversals, ``per_length`` of every length.

    Each length from ``min_length`` to ``max_length`` gets ``per_length`` distinct
    random strings that are not in ``exclude`` (the training set), or every such
    string when fewer exist: a large training set holds most short strings. Returns
    ``(sources, targets)`` ordered by length.
    """
    excluded = set(exclude)
    generator = torch.Generator().manual_seed(int(seed))
    sources: list[str] = []
    for length in range(min_length, max_length + 1):
        taken = {text for text in excluded if len(text) == length}
        if 10 ** length - len(taken) <= per_length:  # few unseen strings: take them all
            sources += [text for text in map(f"{{:0{length}d}}".format, range(10 ** length))
                        if text not in taken]
            continue
        chosen: dict[str, None] = {}  # keeps the order in which strings were drawn
        while len(chosen) < per_length:
            digits = torch.randint(0, 10, (length,), generator=generator).tolist()
            text = "".join(map(str, digits))
            if text not in taken:
                chosen[text] = None
        sources += list(chosen)
    return sources, [text[::-1] for text in sources]


_SHAPE_STEP = 1.5


def _shape_panel(
    ax: Axes, left: float, bottom: float, title: str, inputs: Sequence[str | None],
    outputs: Sequence[str | None], states: Sequence[str], first_sets_state: bool = False,
) -> None:
    """One unrolled network: a row of inputs (or gaps), states joined left to right, outputs (or gaps).

    With ``first_sets_state`` the first input does not enter a recurrent step: it sets the first
    state through a layer of its own, drawn as a dashed arrow.
    """
    step = _SHAPE_STEP
    for t, (x, h, y) in enumerate(zip(inputs, states, outputs)):
        cx = left + 0.5 + step * t
        draw_box(ax, (cx, bottom + 1.6), h, "state")
        if x is not None:
            draw_box(ax, (cx, bottom + 0.5), x, "input")
            if t == 0 and first_sets_state:
                # A curved dashed arrow round the left of the column: the straight gap
                # between the boxes is too short for the dashes to show.
                ax.annotate("", xy=(cx - 0.45, bottom + 1.6), xytext=(cx - 0.45, bottom + 0.5),
                            arrowprops={"arrowstyle": "-|>", "ls": (0, (3, 2)), "lw": 1.5,
                                        "color": DIAGRAM["edge"], "shrinkA": 0, "shrinkB": 0,
                                        "connectionstyle": "arc3,rad=-0.9"})
                ax.text(cx - 1.15, bottom + 1.05, "tanh layer", fontsize=DIAGRAM["font"] - 3,
                        ha="right", va="center", color=DIAGRAM["edge"])
            else:
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
    sequence, as the chapter's generator does it: the vector sets the state
    before the first step, h_{-1}, through a tanh layer (dashed arrow), and is the
    input at every step. Bottom right, encoder to decoder: the source u_0 u_1 u_2
    is read into one state s, which is the decoder's state before its first step,
    d_{-1} = s; the decoder reads y_{-1}, the start token <sos>, first, then each
    target token it has written, and its fourth output y_3 is the end token <eos>:
    four decoder steps for three digits. Wherever no initial state is drawn, it is
    zeros.
    """
    fig, ax = diagram_axes(18.6, 7.6, figsize=(11.7, 4.9))
    xs = [f"$x_{{{t}}}$" for t in range(4)]
    ys = [f"$y_{{{t}}}$" for t in range(4)]
    hs = [f"$h_{{{t}}}$" for t in range(4)]
    top, bottom, right = 4.0, 0.2, 7.8
    _shape_panel(ax, 0.0, top, "sequence \u2192 sequence", xs, ys, hs)
    _shape_panel(ax, right, top, "sequence \u2192 vector", xs, [None, None, None, "$y$"], hs)
    _shape_panel(ax, 0.0, bottom, "vector \u2192 sequence", ["$v$"] * 5, [None] + ys,
                 ["$h_{-1}$"] + hs, first_sets_state=True)
    encoder = [f"$e_{{{i}}}$" for i in range(3)]
    decoder = [f"$d_{{{j}}}$" for j in range(4)]
    _shape_panel(ax, right, bottom, "encoder \u2192 decoder",
                 [f"$u_{{{i}}}$" for i in range(3)] + ["$y_{-1}$"] + ys[:3],
                 [None, None, None] + ys, encoder + decoder)
    # Each decoder output but the end token becomes the next decoder input.
    centre = [right + 0.5 + _SHAPE_STEP * t for t in range(7)]
    for t in (3, 4, 5):
        draw_arrow(ax, (centre[t] + 0.45, bottom + 2.55), (centre[t + 1] - 0.45, bottom + 0.65))
    ax.text(centre[6], bottom + 3.1, "end token", ha="center", va="bottom",
            fontsize=DIAGRAM["font"] - 2)
    ax.text(centre[3], bottom - 0.25, "start token", ha="center", fontsize=DIAGRAM["font"] - 2)
    split = (centre[2] + centre[3]) / 2
    ax.text(split, bottom + 1.85, "$s$", ha="center", va="bottom", fontsize=DIAGRAM["font"])
    ax.plot([split, split], [bottom - 0.1, bottom + 1.4], ls=":", color=DIAGRAM["edge"])
    ax.plot([split, split], [bottom + 2.2, bottom + 3.0], ls=":", color=DIAGRAM["edge"])
    ax.text(centre[1], bottom - 0.25, "encoder", ha="center", fontsize=DIAGRAM["font"] - 1)
    ax.text(centre[5], bottom - 0.25, "decoder", ha="center", fontsize=DIAGRAM["font"] - 1)
    ax.set_ylim(-0.4, 7.6)
    return fig
