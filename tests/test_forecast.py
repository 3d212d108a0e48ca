"""Tests for book_utils.forecast and the noisy sine series it forecasts."""

from __future__ import annotations

import math

import pytest
import torch

from book_utils import forecast, tasks


def test_noisy_sines_shapes_seed_and_noise():
    noisy, clean = tasks.noisy_sines(200, 50, components=3, noise=0.1, seed=4)
    assert noisy.shape == clean.shape == (200, 50)
    assert torch.equal(noisy, tasks.noisy_sines(200, 50, components=3, noise=0.1, seed=4)[0])
    assert clean.abs().max() <= 1.0
    assert (noisy - clean).std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(*tasks.noisy_sines(3, 10, noise=0.0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n=2, length=1), ValueError, "length must be >= 2"),
        (dict(n=2, length=5, noise=-0.1), ValueError, "noise must be >= 0.0"),
        (dict(n=2, length=5, components=1.5), TypeError, "components must be an int"),
    ],
)
def test_noisy_sines_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        tasks.noisy_sines(**kwargs)


def test_horizon_targets_are_the_next_values():
    series = torch.arange(2 * 7, dtype=torch.float32).view(2, 7)
    inputs, targets = forecast.horizon_targets(series, 3)
    assert inputs.shape == (2, 4, 1) and targets.shape == (2, 4, 3)
    assert torch.equal(inputs[1, :, 0], series[1, :4])
    assert torch.equal(targets[1, 2], series[1, 3:6])
    assert torch.equal(targets[0, -1], series[0, 4:7])


def test_horizon_targets_errors():
    with pytest.raises(ValueError, match=r"series must have at least 4 time steps, got shape \(2, 3\)"):
        forecast.horizon_targets(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match=r"series must have shape \(batch, time\)"):
        forecast.horizon_targets(torch.zeros(2, 3, 1), 1)


def test_naive_forecast_repeats_last_value():
    context = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, -1.0]])
    assert torch.equal(forecast.naive_forecast(context, 2), torch.tensor([[3.0, 3.0], [-1.0, -1.0]]))
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        forecast.naive_forecast(context, 0)


def test_linear_forecaster_recovers_a_linear_recurrence():
    # A pure sine obeys x_{t+1} = 2 cos(w) x_t - x_{t-1}: a window of 2 predicts it exactly.
    w = 2 * math.pi * 0.05
    t = torch.arange(40, dtype=torch.float64)
    series = torch.stack([torch.sin(w * t + p) for p in (0.0, 1.0, 2.0)])
    model = forecast.LinearForecaster(window=2, horizon=1).to(torch.float64).fit(series)
    expected = torch.tensor([-1.0, 2 * math.cos(w), 0.0], dtype=torch.float64)
    torch.testing.assert_close(model.weight[:, 0], expected, atol=1e-4, rtol=0)
    predictions = model(series[:, :-1])
    assert predictions.shape == (3, 38, 1)
    torch.testing.assert_close(predictions[..., 0], series[:, 2:], atol=1e-4, rtol=0)
    torch.testing.assert_close(model.forecast(series[:, :10]), series[:, 10:11], atol=1e-4, rtol=0)


def test_linear_forecaster_direct_horizon():
    w = 2 * math.pi * 0.03
    t = torch.arange(60, dtype=torch.float64)
    series = torch.stack([torch.sin(w * t + p) for p in (0.0, 0.5)])
    # Windows of 4 values of one sine are linearly dependent; the ridge term keeps the fit unique.
    model = forecast.LinearForecaster(window=4, horizon=5).to(torch.float64).fit(series)
    torch.testing.assert_close(model.forecast(series[:, :30]), series[:, 30:35], atol=1e-4, rtol=0)


def test_linear_forecaster_errors():
    with pytest.raises(ValueError, match="window must be >= 1"):
        forecast.LinearForecaster(0)
    with pytest.raises(ValueError, match="ridge must be >= 0.0"):
        forecast.LinearForecaster(3, ridge=-1.0)
    model = forecast.LinearForecaster(window=5, horizon=3)
    with pytest.raises(ValueError, match=r"series must have at least 8 time steps"):
        model.fit(torch.zeros(4, 7))
    with pytest.raises(ValueError, match=r"series must have at least 5 time steps"):
        model(torch.zeros(4, 4))


def test_recurrent_forecaster_shapes():
    model = forecast.RecurrentForecaster(hidden_size=8, horizon=4)
    predictions, h_n = model(torch.randn(3, 10, 1))
    assert predictions.shape == (3, 10, 4) and h_n.shape == (1, 3, 8)
    assert model.forecast(torch.randn(3, 10)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"x must have one feature per step, got shape \(3, 10, 2\)"):
        model(torch.randn(3, 10, 2))


def test_rollout_feeds_predictions_back():
    torch.manual_seed(0)
    model = forecast.RecurrentForecaster(hidden_size=8, horizon=1)
    context = torch.randn(2, 6)
    rolled = model.rollout(context, 4)
    assert rolled.shape == (2, 4)
    # Rerunning the model on the context extended by its own forecasts gives the same values.
    extended = context
    for k in range(4):
        next_value = model(extended[:, :, None])[0][:, -1, 0]
        torch.testing.assert_close(next_value, rolled[:, k])
        extended = torch.cat([extended, next_value[:, None]], dim=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        model.rollout(context, 0)


def test_trained_forecaster_beats_naive():
    torch.manual_seed(0)
    train, _ = tasks.noisy_sines(128, 40, noise=0.05, seed=0)
    test, _ = tasks.noisy_sines(64, 40, noise=0.05, seed=1)
    model = forecast.RecurrentForecaster(hidden_size=16, horizon=1)
    history = forecast.train_forecaster(model, train, steps=150, lr=0.02, batch_size=32)
    assert len(history["step_loss"]) == 150 and len(history["seconds"]) == 1
    assert not model.training
    context, future = test[:, :35], test[:, 35:]
    model_error = ((model.rollout(context, 5) - future) ** 2).mean()
    naive_error = ((forecast.naive_forecast(context, 5) - future) ** 2).mean()
    assert model_error < naive_error


def test_train_forecaster_errors():
    model = forecast.RecurrentForecaster(hidden_size=4, horizon=3)
    with pytest.raises(TypeError, match="model must be RecurrentForecaster, got Linear"):
        forecast.train_forecaster(torch.nn.Linear(1, 1), torch.zeros(2, 8), steps=1)
    with pytest.raises(ValueError, match="lr must be > 0.0"):
        forecast.train_forecaster(model, torch.zeros(2, 8), steps=1, lr=0.0)
    with pytest.raises(ValueError, match=r"series must have at least 4 time steps"):
        forecast.train_forecaster(model, torch.zeros(2, 3), steps=1)
