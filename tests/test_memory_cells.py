"""Tests for Chapter 2's helpers: memory probes, the recall task, the baseline and readout models."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from book_utils import data, memory_cells, models, training


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- perturbation_effect


def test_perturbation_effect_is_zero_before_the_step_and_positive_after():
    rnn = nn.RNN(3, 5, batch_first=True)
    x = torch.randn(4, 7, 3)
    effect = memory_cells.perturbation_effect(rnn, x, torch.full((3,), 0.5), step=2)
    assert effect.shape == (4, 7)
    assert torch.equal(effect[:, :2], torch.zeros(4, 2))
    assert (effect[:, 2:] > 0).all()


def test_perturbation_effect_matches_a_manual_difference():
    rnn = nn.GRU(3, 5, batch_first=True)
    x = torch.randn(2, 6, 3)
    delta = torch.randn(2, 3)
    nudged = x.clone()
    nudged[:, 0] += delta
    expected = (rnn(nudged)[0] - rnn(x)[0]).norm(dim=2)
    torch.testing.assert_close(memory_cells.perturbation_effect(rnn, x, delta), expected)
    assert torch.equal(x, x.clone())  # the input is not modified in place


def test_perturbation_effect_without_recurrence_stops_at_the_step():
    rnn = nn.RNN(3, 5, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.zero_()
    effect = memory_cells.perturbation_effect(rnn, torch.randn(2, 5, 3), torch.ones(3), step=1)
    assert (effect[:, 1] > 0).all()
    assert torch.equal(effect[:, 2:], torch.zeros(2, 3))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"recurrent": "rnn"}, TypeError, "recurrent must be Module, got str"),
        ({"x": torch.randn(7, 3)}, ValueError, r"x must have shape \(batch, time, features\), got \(7, 3\)"),
        ({"delta": torch.ones(4)}, ValueError, r"delta must have shape \(3,\) or \(2, 3\), got \(4,\)"),
        ({"delta": [1.0, 1.0, 1.0]}, TypeError, "delta must be a torch.Tensor, got list"),
        ({"step": 7}, ValueError, "step must be smaller than the number of time steps 7, got 7"),
        ({"step": -1}, ValueError, "step must be >= 0, got -1"),
    ],
)
def test_perturbation_effect_rejects_bad_arguments(kwargs, error, match):
    arguments = {"recurrent": nn.RNN(3, 5, batch_first=True), "x": torch.randn(2, 7, 3),
                 "delta": torch.ones(3), "step": 0}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        memory_cells.perturbation_effect(**arguments)


# ---------------------------------------------------------------- spectral radius and fade rate


def test_with_spectral_radius_rescales_a_copy_and_keeps_the_rest():
    layer = nn.RNN(3, 6, batch_first=True).double()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    scaled = memory_cells.with_spectral_radius(layer, 1.5)
    rho = torch.linalg.eigvals(scaled.weight_hh_l0.detach()).abs().max()
    torch.testing.assert_close(rho, torch.tensor(1.5, dtype=torch.float64))
    for name, value in layer.state_dict().items():
        assert torch.equal(value, before[name])             # the original is untouched
        if name != "weight_hh_l0":
            assert torch.equal(scaled.state_dict()[name], value)
    zero = memory_cells.with_spectral_radius(layer, 0.0)
    assert torch.equal(zero.weight_hh_l0, torch.zeros(6, 6, dtype=torch.float64))


def test_fade_rate_of_a_linear_like_cell_is_its_spectral_radius():
    # Tiny inputs keep tanh in its linear middle, and a diagonal W_hh makes every change
    # shrink by exactly rho per step there: the measured rate is rho, the mean slope ~1.
    layer = nn.RNN(2, 3, batch_first=True, bias=False).double()
    with torch.no_grad():
        layer.weight_hh_l0.copy_(torch.diag(torch.tensor([0.7, 0.7, 0.7], dtype=torch.float64)))
    x = 1e-4 * torch.randn(4, 12, 2, dtype=torch.float64)
    rate = memory_cells.fade_rate(layer, x, torch.tensor([1e-3, 0.0], dtype=torch.float64),
                                  start=3)
    assert rate["measured"] == pytest.approx(0.7, rel=1e-4)
    assert rate["mean_slope"] == pytest.approx(1.0, abs=1e-6)
    assert rate["rms_slope"] == pytest.approx(1.0, abs=1e-6)
    window = memory_cells.fade_rate(layer, x, torch.tensor([1e-3, 0.0], dtype=torch.float64),
                                    start=2, stop=6)
    assert window["measured"] == pytest.approx(0.7, rel=1e-4)


def test_fade_rate_matches_the_perturbation_effect():
    layer = nn.RNN(3, 5, batch_first=True).double()
    x, delta = torch.randn(6, 10, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    effect = memory_cells.perturbation_effect(layer, x, delta).mean(dim=0)
    rate = memory_cells.fade_rate(layer, x, delta, start=4)
    assert rate["measured"] == pytest.approx(float((effect[9] / effect[4]) ** (1 / 5)))
    with torch.no_grad():
        states, _ = layer(x)
    # five steps carry the change from step 4 to step 9: the slopes of steps 5 to 9
    slopes = 1 - states[:, 5:] ** 2
    assert rate["mean_slope"] == pytest.approx(float(slopes.mean()))
    assert rate["rms_slope"] == pytest.approx(float((slopes ** 2).mean().sqrt()))
    assert rate["rms_slope"] >= rate["mean_slope"]          # never below the mean
    window = memory_cells.fade_rate(layer, x, delta, start=2, stop=6)
    assert window["measured"] == pytest.approx(float((effect[6] / effect[2]) ** (1 / 4)))
    assert window["mean_slope"] == pytest.approx(float((1 - states[:, 3:7] ** 2).mean()))


@pytest.mark.parametrize("call, error, match", [
    (lambda: memory_cells.with_spectral_radius(nn.GRU(2, 3), 1.0), TypeError,
     "layer must be RNN, got GRU"),
    (lambda: memory_cells.with_spectral_radius(nn.RNN(2, 3, num_layers=2), 1.0), ValueError,
     "layer must be one layer in one direction, got num_layers=2"),
    (lambda: memory_cells.with_spectral_radius(nn.RNN(2, 3), -1.0), ValueError,
     "rho must be >= 0.0, got -1.0"),
    (lambda: memory_cells.with_spectral_radius(nn.RNN(2, 3), "1"), TypeError,
     "rho must be a number, got str"),
    (lambda: memory_cells.with_spectral_radius(
        memory_cells.with_spectral_radius(nn.RNN(2, 3), 0.0), 1.0), ValueError,
     "must have a non-zero eigenvalue to be rescaled"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, nonlinearity="relu", batch_first=True),
                                    torch.randn(2, 5, 2), torch.ones(2), start=1), ValueError,
     "recurrent must be a tanh layer .* got nonlinearity='relu'"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(2), start=4), ValueError,
     "start must leave at least one step after it, at most 3 for 5 steps, got 4"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(3), start=1), ValueError,
     r"delta must have shape \(2,\) or \(2, 2\), got \(3,\)"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(2), start=-1), ValueError,
     "start must be >= 0, got -1"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(2), start=2, stop=2), ValueError,
     "stop must be after start=2 and at most the last step 4, got 2"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(2), start=1, stop=5), ValueError,
     "stop must be after start=1 and at most the last step 4, got 5"),
    (lambda: memory_cells.fade_rate(nn.RNN(2, 3, batch_first=True), torch.randn(2, 5, 2),
                                    torch.ones(2), start=1, stop=2.0), TypeError,
     "stop must be an int"),
])
def test_spectral_helpers_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- record_states


def test_record_states_keeps_every_state_and_ends_at_the_prediction():
    model = models.make_classifier("rnn", input_size=4, hidden_size=6, n_classes=3)
    model.train()
    x = torch.randn(5, 8, 4)
    trace = memory_cells.record_states(model, x)
    assert trace.states.shape == (5, 8, 6)
    assert trace.probabilities.shape == (5, 8, 3)
    torch.testing.assert_close(trace.states, model.recurrent(x)[0].detach())
    torch.testing.assert_close(trace.probabilities[:, -1], model(x).softmax(dim=1).detach())
    torch.testing.assert_close(trace.probabilities.sum(dim=2), torch.ones(5, 8))
    assert model.training  # the mode is restored


def test_record_states_works_with_an_lstm_classifier():
    model = models.make_classifier("lstm", input_size=4, hidden_size=6, n_classes=3)
    x = torch.randn(2, 5, 4)
    trace = memory_cells.record_states(model, x)
    torch.testing.assert_close(trace.probabilities[:, -1], model(x).softmax(dim=1).detach())


def test_record_states_rejects_bad_arguments():
    with pytest.raises(TypeError, match="model must have a 'recurrent' module like SequenceClassifier"):
        memory_cells.record_states(nn.Linear(3, 2), torch.randn(2, 5, 3))
    model = models.make_classifier("rnn", input_size=4, hidden_size=6, n_classes=3)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(5, 4\)"):
        memory_cells.record_states(model, torch.randn(5, 4))
    with pytest.raises(TypeError, match="model must be Module, got int"):
        memory_cells.record_states(3, torch.randn(2, 5, 4))


# ---------------------------------------------------------------- pca


def test_pca_matches_the_eigenvectors_of_the_covariance():
    points = torch.randn(200, 5, dtype=torch.float64) @ torch.randn(5, 5, dtype=torch.float64)
    fitted = memory_cells.pca(points, n_components=3)
    covariance = np.cov(points.numpy(), rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:3]
    np.testing.assert_allclose(fitted.explained_variance_ratio.numpy(),
                               eigenvalues[order] / eigenvalues.sum(), rtol=1e-8)
    for component, vector in zip(fitted.components.numpy(), eigenvectors[:, order].T):
        assert abs(abs(component @ vector) - 1) < 1e-8  # the same direction, up to sign
    torch.testing.assert_close(fitted.components @ fitted.components.T, torch.eye(3, dtype=torch.float64))


def test_pca_projection_has_zero_mean_and_decreasing_variance_and_fixed_signs():
    points = torch.randn(100, 4) * torch.tensor([5.0, 2.0, 1.0, 0.1])
    fitted = memory_cells.pca(points, n_components=2)
    projected = fitted.transform(points)
    assert projected.shape == (100, 2)
    torch.testing.assert_close(projected.mean(dim=0), torch.zeros(2), atol=1e-5, rtol=0)
    assert projected[:, 0].var() > projected[:, 1].var()
    largest = fitted.components.gather(1, fitted.components.abs().argmax(dim=1, keepdim=True))
    assert (largest > 0).all()
    torch.testing.assert_close(memory_cells.pca(-points).components.abs(), fitted.components.abs())
    # transform accepts any leading shape, e.g. (batch, time, features)
    assert fitted.transform(points.reshape(10, 10, 4)).shape == (10, 10, 2)


def test_pca_agrees_with_torch_pca_lowrank_up_to_sign():
    points = torch.randn(300, 6) @ torch.randn(6, 6)
    fitted = memory_cells.pca(points, n_components=2)
    _, _, v = torch.pca_lowrank(points, q=6, center=True)
    torch.testing.assert_close(fitted.components.abs(), v[:, :2].T.abs(), atol=1e-4, rtol=0)


def test_pca_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"points must have shape \(n, features\), got \(3,\)"):
        memory_cells.pca(torch.randn(3))
    with pytest.raises(ValueError, match=r"n_components must be at most min\(n, features\) = 4, got 5"):
        memory_cells.pca(torch.randn(10, 4), n_components=5)
    with pytest.raises(TypeError, match="points must be a floating-point tensor, got dtype torch.int64"):
        memory_cells.pca(torch.ones(3, 2, dtype=torch.int64))
    fitted = memory_cells.pca(torch.randn(10, 4))
    with pytest.raises(ValueError, match=r"points must have 4 features in the last dimension, got shape \(2, 3\)"):
        fitted.transform(torch.randn(2, 3))


# ---------------------------------------------------------------- cell_from_layer, run_in_chunks


@pytest.mark.parametrize("num_layers, nonlinearity", [(1, "tanh"), (2, "relu")])
def test_cell_loop_equals_the_layer(num_layers, nonlinearity):
    layer = nn.RNN(3, 5, num_layers=num_layers, nonlinearity=nonlinearity, batch_first=True)
    x = torch.randn(4, 6, 3)
    inputs, finals = x, []
    for index in range(num_layers):
        cell = memory_cells.cell_from_layer(layer, index)
        assert cell.nonlinearity == nonlinearity
        h, steps = None, []
        for x_t in inputs.unbind(dim=1):
            h = cell(x_t, h)
            steps.append(h)
        inputs = torch.stack(steps, dim=1)
        finals.append(h)
    outputs, h_n = layer(x)
    torch.testing.assert_close(inputs, outputs)
    torch.testing.assert_close(torch.stack(finals), h_n)


def test_cell_from_layer_copies_rather_than_shares():
    layer = nn.RNN(3, 5)
    cell = memory_cells.cell_from_layer(layer)
    with torch.no_grad():
        cell.weight_hh.zero_()
    assert layer.weight_hh_l0.abs().sum() > 0


def test_cell_from_layer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="layer must be RNN, got LSTM"):
        memory_cells.cell_from_layer(nn.LSTM(3, 5))
    with pytest.raises(ValueError, match="layer_index must be smaller than num_layers=1, got 1"):
        memory_cells.cell_from_layer(nn.RNN(3, 5), 1)
    with pytest.raises(ValueError, match="layer must be one-directional, got bidirectional=True"):
        memory_cells.cell_from_layer(nn.RNN(3, 5, bidirectional=True))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "scratch_rnn"])
@pytest.mark.parametrize("chunk_len", [1, 4, 5, 30])
def test_chunks_with_carried_state_equal_one_pass(kind, chunk_len):
    layer = models.make_recurrent(kind, 3, 5)
    x = torch.randn(2, 17, 3)
    outputs, state = layer(x)
    chunked, chunked_state = memory_cells.run_in_chunks(layer, x, chunk_len)
    torch.testing.assert_close(chunked, outputs)
    if isinstance(state, tuple):
        for a, b in zip(chunked_state, state):
            torch.testing.assert_close(a, b)
    else:
        torch.testing.assert_close(chunked_state, state)


def test_run_in_chunks_gradients_equal_one_pass_and_detach_cuts_them():
    layer = nn.RNN(3, 5, batch_first=True)
    x = torch.randn(2, 12, 3, requires_grad=True)
    layer(x)[0].sum().backward()
    full = x.grad.clone()
    x.grad = None
    memory_cells.run_in_chunks(layer, x, 4)[0].sum().backward()
    torch.testing.assert_close(x.grad, full)
    x.grad = None
    memory_cells.run_in_chunks(layer, x, 4, detach=True)[0].sum().backward()
    torch.testing.assert_close(x.grad[:, 8:], full[:, 8:])  # the last chunk sees everything after it
    assert not torch.allclose(x.grad[:, :8], full[:, :8])


def test_run_in_chunks_uses_the_initial_state_and_rejects_bad_arguments():
    layer = nn.RNN(3, 5, batch_first=True)
    x, h0 = torch.randn(2, 6, 3), torch.randn(1, 2, 5)
    torch.testing.assert_close(memory_cells.run_in_chunks(layer, x, 2, h0)[0], layer(x, h0)[0])
    with pytest.raises(ValueError, match="chunk_len must be >= 1, got 0"):
        memory_cells.run_in_chunks(layer, x, 0)
    with pytest.raises(TypeError, match="chunk_len must be an int, got float"):
        memory_cells.run_in_chunks(layer, x, 2.0)
    with pytest.raises(TypeError, match="detach must be bool, got int"):
        memory_cells.run_in_chunks(layer, x, 2, detach=1)
    with pytest.raises(ValueError, match=r"x must have at least one time step, got shape \(2, 0, 3\)"):
        memory_cells.run_in_chunks(layer, torch.randn(2, 0, 3), 2)


# ---------------------------------------------------------------- the recall task


def test_recall_task_targets_the_symbol_lag_steps_before_the_end():
    x, y = memory_cells.make_recall_task(50, seq_len=9, lag=3, n_symbols=5, seed=1)
    assert x.shape == (50, 9, 5) and x.dtype == torch.float32
    assert y.shape == (50,) and y.dtype == torch.int64
    torch.testing.assert_close(x.sum(dim=2), torch.ones(50, 9))  # one-hot
    assert torch.equal(x[:, 9 - 1 - 3].argmax(dim=1), y)
    assert set(y.tolist()) <= set(range(5))


def test_recall_task_is_seeded():
    a = memory_cells.make_recall_task(20, 6, 2, seed=3)
    b = memory_cells.make_recall_task(20, 6, 2, seed=3)
    c = memory_cells.make_recall_task(20, 6, 2, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_recall_task_classes_are_balanced():
    _, y = memory_cells.make_recall_task(8000, 5, 4, n_symbols=4, seed=0)
    shares = torch.bincount(y, minlength=4).float() / len(y)
    torch.testing.assert_close(shares, torch.full((4,), 0.25), atol=0.02, rtol=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lag": 6}, ValueError, "lag must be smaller than seq_len=6, got lag=6"),
        ({"lag": -1}, ValueError, "lag must be >= 0, got -1"),
        ({"n_symbols": 1}, ValueError, "n_symbols must be >= 2, got 1"),
        ({"n": 0}, ValueError, "n must be >= 1, got 0"),
        ({"seq_len": 2.5}, TypeError, "seq_len must be an int, got float"),
        ({"seed": -3}, ValueError, "seed must be >= 0, got -3"),
    ],
)
def test_recall_task_rejects_bad_arguments(kwargs, error, match):
    arguments = {"n": 10, "seq_len": 6, "lag": 2}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        memory_cells.make_recall_task(**arguments)


def small_recall(**changes) -> dict:
    return {**memory_cells.RECALL, "n_train": 64, "n_test": 40, "n_val": 30, "batch_size": 16,
            "epochs": 3, "hidden_size": 8, **changes}


def test_train_recall_scores_both_held_out_splits_after_every_epoch():
    recipe = small_recall()
    torch.manual_seed(0)
    model = models.make_classifier("rnn", 4, 8, 4)
    run = memory_cells.train_recall(model, 2, recipe, seed=5)
    assert set(run) == {"test", "validation", "seconds"}
    assert len(run["test"]) == len(run["validation"]) == 3
    # the splits follow the training sequences of the same generator, test first
    x, y = memory_cells.make_recall_task(64 + 40 + 30, 20, 2, seed=3)
    with torch.no_grad():
        test_acc = (model(x[64:104]).argmax(dim=1) == y[64:104]).float().mean().item()
        val_acc = (model(x[104:]).argmax(dim=1) == y[104:]).float().mean().item()
    assert run["test"][-1] == pytest.approx(test_acc) and run["validation"][-1] == pytest.approx(val_acc)


def test_train_recall_is_one_fit_seen_epoch_by_epoch():
    recipe = small_recall()
    torch.manual_seed(0)
    model = models.make_classifier("rnn", 4, 8, 4)
    memory_cells.train_recall(model, 1, recipe, seed=2)
    torch.manual_seed(0)
    again = models.make_classifier("rnn", 4, 8, 4)
    x, y = memory_cells.make_recall_task(64 + 40 + 30, 20, 1, seed=2)
    loader = data.make_loader(x[:64], y[:64], batch_size=16, shuffle=True, seed=2)
    training.fit(again, loader, epochs=3, optimizer=torch.optim.Adam(again.parameters(), lr=3e-3),
                 clip_norm=1.0, verbose=False)
    for a, b in zip(model.parameters(), again.parameters()):
        torch.testing.assert_close(a, b)


def test_best_rate_table_picks_the_rate_on_validation_and_reports_test():
    rows = [{"seed": s, "lag": 4, "lr": lr, "validation": [0.5, v], "test": [0.4, t + 0.01 * s]}
            for s in range(3) for lr, v, t in ((0.1, 0.9, 0.6), (0.2, 0.8, 0.95))]
    (after_1, after_2) = memory_cells.best_rate_table(rows, epochs=[1, 2])
    assert after_2["lr"] == 0.1 and after_2["mean"] == pytest.approx(0.61)   # not 0.95's rate
    assert after_2["n"] == 3 and after_2["min"] == pytest.approx(0.6)
    assert after_1["lr"] == 0.1 and after_1["epochs"] == 1 and after_1["std"] == 0.0


@pytest.mark.parametrize("call, error, match", [
    (lambda: memory_cells.train_recall("rnn", 1), TypeError, "model must be Module, got str"),
    (lambda: memory_cells.train_recall(nn.Linear(2, 2), 20), ValueError,
     "lag must be smaller than seq_len=20, got 20"),
    (lambda: memory_cells.train_recall(nn.Linear(2, 2), 1, {"lr": 1.0}), ValueError,
     r"recipe must have the keys of RECALL, got missing \['batch_size'"),
    (lambda: memory_cells.train_recall(nn.Linear(2, 2), 1, small_recall(lr=0)), ValueError,
     r"recipe\['lr'\] must be > 0.0, got 0.0"),
    (lambda: memory_cells.train_recall(nn.Linear(2, 2), 1, small_recall(epochs=0)), ValueError,
     r"recipe\['epochs'\] must be >= 1, got 0"),
    (lambda: memory_cells.train_recall(nn.Linear(2, 2), 1, seed=-2), ValueError,
     "seed must be >= 0, got -2"),
    (lambda: memory_cells.best_rate_table([], [1]), ValueError,
     "rows must be a non-empty list of dicts with keys"),
    (lambda: memory_cells.best_rate_table(
        [{"seed": 0, "lag": 1, "lr": 0.1, "validation": [0.5], "test": [0.5]}], [2]),
     ValueError, "epochs must be at most 1, the shortest curve in rows, got 2"),
    (lambda: memory_cells.best_rate_table("rows", [1]), TypeError, "rows must be list, got str"),
])
def test_recall_helpers_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- models


def test_last_step_classifier_ignores_everything_but_the_last_step():
    model = memory_cells.LastStepClassifier(4, 8, 3)
    x = torch.randn(5, 6, 4)
    changed = x.clone()
    changed[:, :-1] = torch.randn(5, 5, 4)
    assert model(x).shape == (5, 3)
    torch.testing.assert_close(model(x), model(changed))
    torch.testing.assert_close(model(x), model.net(x[:, -1]))


def test_last_step_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_classes must be >= 2, got 1"):
        memory_cells.LastStepClassifier(4, 8, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(5, 4\)"):
        memory_cells.LastStepClassifier(4, 8, 3)(torch.randn(5, 4))


def test_readout_rnn_output_is_a_projection_of_the_state():
    model = memory_cells.ReadoutRNN(3, 6, 2)
    x = torch.randn(4, 5, 3)
    y, h_n = model(x)
    assert y.shape == (4, 5, 2) and h_n.shape == (1, 4, 6)
    states, h_ref = model.rnn(x)
    torch.testing.assert_close(h_n, h_ref)
    torch.testing.assert_close(y, states @ model.readout.weight.T + model.readout.bias)
    # The state, not the output, is carried: two halves with h passed on give the same y.
    y1, h1 = model(x[:, :2])
    y2, _ = model(x[:, 2:], h1)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y)


def test_readout_rnn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="output_size must be >= 1, got 0"):
        memory_cells.ReadoutRNN(3, 6, 0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        memory_cells.ReadoutRNN(3, 6, 2)(torch.ones(2, 4, 3, dtype=torch.int64))


# ---------------------------------------------------------------- the diagram


def test_draw_cell_with_output_draws_one_cell_input_and_output_per_step():
    fig = memory_cells.draw_cell_with_output(4, state="s", output="o")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("cell") == 4
    assert {"$x_{0}$", "$o_{3}$", "$s_{3}$", "$s_{-1}$"} <= set(texts)
    plt.close(fig)


def test_draw_cell_with_output_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps must be at most 6 to stay readable, got 7"):
        memory_cells.draw_cell_with_output(7)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        memory_cells.draw_cell_with_output(0)
    with pytest.raises(TypeError, match="output must be str, got int"):
        memory_cells.draw_cell_with_output(output=1)


# ---------------------------------------------------------------- linear_probe_accuracy


def probe_data(n: int, seed: int):
    """Step 0 holds noise only; step 1 holds the label linearly; step 2 holds it weakly."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, (n,), generator=generator)
    states = torch.randn(n, 3, 6, generator=generator)
    states[:, 1, :3] += 5 * nn.functional.one_hot(labels, 3).float()
    states[:, 2, :3] += 0.5 * nn.functional.one_hot(labels, 3).float()
    return states, labels


def test_linear_probe_finds_linear_information_and_not_noise():
    train_states, train_labels = probe_data(600, seed=0)
    test_states, test_labels = probe_data(600, seed=1)
    accuracy = memory_cells.linear_probe_accuracy(train_states, train_labels, test_states, test_labels)
    assert accuracy.shape == (3,)
    assert abs(accuracy[0].item() - 1 / 3) < 0.08
    assert accuracy[1].item() > 0.99
    assert accuracy[0] < accuracy[2] < accuracy[1]


def test_linear_probe_matches_least_squares_with_a_bias():
    train_states, train_labels = probe_data(200, seed=2)
    test_states, test_labels = probe_data(100, seed=3)
    accuracy = memory_cells.linear_probe_accuracy(train_states, train_labels, test_states, test_labels,
                                            ridge=1e-9)
    for t in range(3):
        design = torch.cat([train_states[:, t], torch.ones(200, 1)], dim=1).double()
        targets = nn.functional.one_hot(train_labels, 3).double()
        solution = torch.linalg.lstsq(design, targets).solution
        test_design = torch.cat([test_states[:, t], torch.ones(100, 1)], dim=1).double()
        expected = ((test_design @ solution).argmax(dim=1) == test_labels).float().mean()
        torch.testing.assert_close(accuracy[t], expected)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"test_states": torch.randn(5, 3, 4)}, ValueError,
         r"train_states and test_states must agree in \(time, hidden\), got \(3, 6\) and \(3, 4\)"),
        ({"train_labels": torch.zeros(9, dtype=torch.int64)}, ValueError,
         r"train_labels must have one label per sequence \(10\), got 9"),
        ({"test_labels": torch.zeros(5)}, TypeError,
         "test_labels must be an integer tensor, got dtype torch.float32"),
        ({"train_labels": -torch.ones(10, dtype=torch.int64)}, ValueError,
         "labels must be class indices >= 0, got a negative label"),
        ({"train_states": torch.randn(10, 6)}, ValueError,
         r"train_states must have shape \(n, time, hidden\), got \(10, 6\)"),
        ({"ridge": 0.0}, ValueError, "ridge must be > 0.0, got 0.0"),
    ],
)
def test_linear_probe_rejects_bad_arguments(change, error, match):
    arguments = {"train_states": torch.randn(10, 3, 6), "train_labels": torch.zeros(10, dtype=torch.int64),
                 "test_states": torch.randn(5, 3, 6), "test_labels": torch.zeros(5, dtype=torch.int64)}
    arguments.update(change)
    with pytest.raises(error, match=match):
        memory_cells.linear_probe_accuracy(**arguments)


# ---------------------------------------------------------------- plot_state_trajectories


def test_state_trajectories_draw_one_panel_per_class_on_shared_axes():
    trajectories = torch.randn(30, 10, 2).cumsum(dim=1)
    labels = torch.arange(30) % 3
    fig = memory_cells.plot_state_trajectories(trajectories, labels, [0, 2], per_class=4,
                                               explained=torch.tensor([0.4, 0.25]))
    try:
        first, second = fig.axes
        assert [ax.get_title() for ax in fig.axes] == ["digit 0", "digit 2"]
        assert first.get_xlabel() == "component 1 (40%)"
        assert first.get_ylabel() == "component 2 (25%)"
        assert first.get_shared_x_axes().joined(first, second)    # end points comparable
        (mean,) = [line for line in second.lines if line.get_label() == "digit 2"]
        np.testing.assert_allclose(mean.get_xydata(),
                                   trajectories[labels == 2].mean(dim=0).numpy(), rtol=1e-6)
        arrows = [a for a in second.texts if a.arrow_patch is not None]
        assert len(arrows) >= 2                      # arrowheads along the mean path
        # the other class's mean (grey), four singles, the mean, the start marker
        assert len(second.lines) == 1 + 4 + 1 + 1
        assert second.lines[0].get_color() == "#c8c8c8"
    finally:
        plt.close(fig)
    fig = memory_cells.plot_state_trajectories(trajectories, labels, [0, 1, 2, 0][:3] + [1])
    try:
        assert len(fig.axes) == 6 and sum(ax.axison for ax in fig.axes) == 4   # 2 x 3, two off
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"trajectories": torch.randn(6, 5, 3)}, ValueError,
         r"trajectories must have shape \(digits, time, 2\) with one label per digit, got \(6, 5, 3\)"),
        ({"labels": torch.zeros(4, dtype=torch.int64)}, ValueError, "with one label per digit"),
        ({"classes": [0, 9]}, ValueError, r"classes must list 1 to 6 labels present in labels, "
                                          r"got \[0, 9\] \(absent: \[9\]\)"),
        ({"classes": (0,)}, TypeError, "classes must be list, got tuple"),
        ({"per_class": -1}, ValueError, "per_class must be >= 0, got -1"),
        ({"explained": torch.tensor([0.5, 0.2, 0.1])}, ValueError,
         r"explained must hold two shares, got shape \(3,\)"),
    ],
)
def test_state_trajectories_reject_bad_arguments(change, error, match):
    arguments = {"trajectories": torch.randn(6, 5, 2), "labels": torch.arange(6) % 2,
                 "classes": [0, 1]}
    arguments.update(change)
    with pytest.raises(error, match=match):
        memory_cells.plot_state_trajectories(**arguments)


def test_pca_refuses_identical_and_non_finite_points():
    with pytest.raises(ValueError, match="points must not all be equal .* got 5 identical points"):
        memory_cells.pca(torch.ones(5, 3))
    bad = torch.randn(5, 3)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="points must be finite, got 1 NaN or infinite values"):
        memory_cells.pca(bad)


# ---------------------------------------------------------------- bad inputs


def test_pca_and_state_trace_check_their_fields():
    fitted = memory_cells.pca(torch.randn(10, 3))
    assert memory_cells.PCA(fitted.mean, fitted.components, fitted.explained_variance_ratio)
    with pytest.raises(TypeError, match="mean must be a torch.Tensor, got NoneType"):
        memory_cells.PCA(None, fitted.components, fitted.explained_variance_ratio)
    with pytest.raises(TypeError, match="components must be a floating-point tensor, got dtype torch.int64"):
        memory_cells.PCA(fitted.mean, fitted.components.long(), fitted.explained_variance_ratio)
    with pytest.raises(ValueError, match=r"explained_variance_ratio must have shape \(2,\).*got \(1,\)"):
        memory_cells.PCA(fitted.mean, fitted.components, fitted.explained_variance_ratio[:1])
    with pytest.raises(ValueError, match=r"components must have shape \(k, 3\) to match mean, got \(2, 2\)"):
        memory_cells.PCA(fitted.mean, fitted.components[:, :2], fitted.explained_variance_ratio)
    with pytest.raises(TypeError, match="points must have the dtype of the fitted PCA, torch.float32, "
                                        "got torch.float64"):
        fitted.transform(torch.randn(4, 3, dtype=torch.float64))
    states, probabilities = torch.randn(2, 5, 4), torch.rand(2, 5, 3)
    assert memory_cells.StateTrace(states, probabilities).states is states
    with pytest.raises(TypeError, match="states must be a floating-point tensor, got dtype torch.int64"):
        memory_cells.StateTrace(states.long(), probabilities)
    with pytest.raises(ValueError, match=r"probabilities must have the \(batch, time\) of states"):
        memory_cells.StateTrace(states, probabilities[:, :4])


def test_run_in_chunks_and_readout_rnn_check_the_state():
    layer = nn.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 6, 3)
    with pytest.raises(TypeError, match="state must be a torch.Tensor, got list"):
        memory_cells.run_in_chunks(layer, x, 2, [0.0])
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2, 4\) .* got \(1, 3, 4\)"):
        memory_cells.run_in_chunks(layer, x, 2, torch.zeros(1, 3, 4))
    with pytest.raises(TypeError, match="state must have the dtype of the GRU's weights"):
        memory_cells.run_in_chunks(layer, x, 2, torch.zeros(1, 2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="recurrent must be a recurrent layer called like nn.RNN"):
        memory_cells.run_in_chunks(nn.Linear(3, 3), x, 2)
    with pytest.raises(ValueError, match="recurrent must read .* batch_first=True"):
        memory_cells.run_in_chunks(nn.GRU(3, 4), x, 2)
    with pytest.raises(TypeError, match="chunk_len must be a Python int, got numpy.int64"):
        memory_cells.run_in_chunks(layer, x, np.int64(2))
    lstm = nn.LSTM(3, 4, batch_first=True)
    _, state = lstm(x)
    torch.testing.assert_close(memory_cells.run_in_chunks(lstm, x, 4, state)[0], lstm(x, state)[0])
    with pytest.raises(TypeError, match=r"state must be None or a tuple \(h, c\)"):
        memory_cells.run_in_chunks(lstm, x, 2, state[0])
    model = memory_cells.ReadoutRNN(3, 4, 2)
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 2, 4\) .* got \(2, 2, 4\)"):
        model(x, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"x must not be empty .* got shape \(0, 6, 3\)"):
        model(x[:0])


def test_perturbation_effect_and_record_states_refuse_what_the_layer_cannot_read():
    with pytest.raises(TypeError, match="recurrent must be a recurrent layer called like nn.RNN"):
        memory_cells.perturbation_effect(nn.Linear(3, 3), torch.randn(2, 5, 3), torch.ones(3))
    with pytest.raises(TypeError, match="x must have the dtype of the RNN's weights"):
        memory_cells.perturbation_effect(nn.RNN(3, 4, batch_first=True),
                                         torch.randn(2, 5, 3).double(), torch.ones(3))
    with pytest.raises(TypeError, match="x must have the dtype of the RNN's weights"):
        memory_cells.record_states(models.make_classifier("rnn", 3, 4, 2), torch.randn(2, 5, 3).double())


def test_recall_task_lag_zero_asks_for_the_last_symbol_and_seed_must_be_a_python_int():
    x, y = memory_cells.make_recall_task(20, 6, 0, seed=1)
    assert torch.equal(x[:, -1].argmax(dim=1), y)
    with pytest.raises(TypeError, match="seed must be a Python int, got numpy.int64"):
        memory_cells.make_recall_task(20, 6, 2, seed=np.int64(1))


def test_classifier_recipe_is_chapter_1s():
    # Chapter 2 restates Chapter 1's recipe (a chapter module imports no other's): keep them equal.
    from book_utils.recurrent_neurons import RECIPE
    assert memory_cells.CLASSIFIER == RECIPE
