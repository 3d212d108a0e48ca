"""Forecasting a time series: a recurrent forecaster and the baselines it must beat.

A *forecast origin* is the last observed step of a context; a forecast of
horizon k predicts the k values after it. Series are (batch, time) tensors of
one variable.

- :func:`horizon_targets` turns series into per-step training pairs: at step t
  the target is the next k values.
- :class:`RecurrentForecaster` is a GRU with a linear head that emits k values at
  every step; with k = 1 it is a one-step forecaster, and :meth:`~RecurrentForecaster.rollout`
  forecasts further by feeding its own predictions back.
- :func:`naive_forecast` repeats the last observed value; :class:`LinearForecaster`
  is a least-squares linear model of the last ``window`` values.
- :func:`train_forecaster` is the training recipe for the recurrent forecaster.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from . import training
from ._checks import check_float, check_int, check_tensor, check_type


def _check_series(name: str, series: torch.Tensor, min_length: int = 1) -> torch.Tensor:
    check_tensor(name, series, dim=2, floating=True, layout="(batch, time)")
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


class RecurrentForecaster(nn.Module):
    """A GRU reads the series; a linear head maps each state to the next ``horizon`` values.

    ``forward(x, h0=None)`` takes x (batch, time, 1) and returns the per-step
    forecasts (batch, time, horizon) and the final state (1, batch, hidden).
    """

    def __init__(self, hidden_size: int = 32, horizon: int = 1) -> None:
        super().__init__()
        self.horizon = check_int("horizon", horizon, minimum=1)
        self.gru = nn.GRU(1, check_int("hidden_size", hidden_size, minimum=1), batch_first=True)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, 1)")
        if x.shape[2] != 1:
            raise ValueError(f"x must have one feature per step, got shape {tuple(x.shape)}")
        outputs, h_n = self.gru(x, h0)
        return self.head(outputs), h_n

    @torch.no_grad()
    def forecast(self, context: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` values after the context, all at once: (batch, time) -> (batch, horizon)."""
        _check_series("context", context)
        return self(context[:, :, None])[0][:, -1]

    @torch.no_grad()
    def rollout(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """Forecast ``steps`` values by feeding each one-step prediction back as the next input.

        The state is carried forward, so each new step costs one GRU step.
        Returns (batch, steps).
        """
        _check_series("context", context)
        steps = check_int("steps", steps, minimum=1)
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
        features = self._features(series[:, : -self.horizon]).reshape(-1, self.window + 1)
        targets = series[:, self.window :].unfold(1, self.horizon, 1).reshape(-1, self.horizon)
        # Normal equations: (F^T F + ridge I) W = F^T Y.
        gram = features.T @ features
        gram += self.ridge * len(features) * torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
        self.weight.copy_(torch.linalg.solve(gram, features.T @ targets))
        return self

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        _check_series("series", series, self.window)
        return self._features(series) @ self.weight

    @torch.no_grad()
    def forecast(self, context: torch.Tensor) -> torch.Tensor:
        """The ``horizon`` values after the context: (batch, time) -> (batch, horizon)."""
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
