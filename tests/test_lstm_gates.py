"""Tests for book_utils.gates, the adding problem in book_utils.tasks and SequenceRegressor."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from book_utils import cells, data, lstm_gates, models

F, H = 3, 5


# ------------------------------------------------------------ adding problem


def test_adding_problem_shapes_markers_and_targets():
    x, y = data.adding_problem(200, 20, seed=1)
    assert x.shape == (200, 20, 2) and y.shape == (200,) and x.dtype == torch.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert torch.equal(markers.sum(dim=1), torch.full((200,), 2.0))
    assert torch.equal(markers[:, :10].sum(dim=1), torch.ones(200))  # one marker per half
    torch.testing.assert_close(y, (values * markers).sum(dim=1))


def test_adding_problem_is_seeded_and_its_baseline_is_one_sixth():
    x1, y1 = data.adding_problem(50, 8, seed=3)
    x2, y2 = data.adding_problem(50, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(data.adding_problem(50, 8, seed=4)[0], x1)
    assert data.ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    _, y = data.adding_problem(100_000, 4, seed=0)
    assert ((y - 1.0) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.003)


def test_adding_problem_errors():
    with pytest.raises(ValueError, match="steps must be >= 2, got 1"):
        data.adding_problem(4, 1)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        data.adding_problem(4.0, 10)
    with pytest.raises(ValueError, match="pass a seed or a generator, got neither"):
        data.adding_problem(4, 10, seed=None)
    with pytest.raises(TypeError, match="generator must be Generator, got int"):
        data.adding_problem(4, 10, generator=3)


def test_sequence_regressor_predicts_one_number_per_sequence():
    model = models.SequenceRegressor(nn.LSTM(2, H, batch_first=True), H)
    assert model(torch.randn(7, 4, 2)).shape == (7,)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(7, 2\)"):
        model(torch.randn(7, 2))
    with pytest.raises(TypeError, match="recurrent must be Module, got str"):
        models.SequenceRegressor("lstm", H)


# ------------------------------------------------------------------- biases


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(F, H, batch_first=True), lambda: nn.LSTMCell(F, H),
    lambda: lstm_gates.LSTMCell(F, H), lambda: lstm_gates.ScratchLSTM(F, H),
])
def test_set_gate_bias_sets_the_total_lstm_bias(make):
    module = make()
    lstm_gates.set_gate_bias(module, "f", 1.0)
    cell = lstm_gates._scratch_cell(module)
    torch.testing.assert_close(cell.b[cell.gate_slice("f")], torch.ones(H))
    x = torch.randn(2, F)
    (_, _), gate = cell(x, return_gates=True)
    # With zero input weights the forget gate would be exactly sigmoid(1); here it is near it.
    assert gate["f"].mean() > torch.sigmoid(torch.tensor(0.0))


def test_set_gate_bias_for_gru_zeroes_the_second_bias():
    gru = nn.GRU(F, H, batch_first=True)
    value = torch.linspace(0, 1, H)
    lstm_gates.set_gate_bias(gru, "z", value)
    torch.testing.assert_close(gru.bias_ih_l0[H:2 * H], value)
    torch.testing.assert_close(gru.bias_hh_l0[H:2 * H], torch.zeros(H))


def test_set_gate_bias_errors():
    with pytest.raises(ValueError, match=r"gate must be one of \('r', 'z'\), got 'n'"):
        lstm_gates.set_gate_bias(nn.GRU(F, H), "n", 1.0)
    with pytest.raises(ValueError, match=r"gate must be one of \('i', 'f', 'g', 'o'\), got 'z'"):
        lstm_gates.set_gate_bias(nn.LSTM(F, H), "z", 1.0)
    with pytest.raises(TypeError, match="module must be LSTM or LSTMCell or .*, got RNN"):
        lstm_gates.set_gate_bias(nn.RNN(F, H), "f", 1.0)
    with pytest.raises(ValueError, match=r"value must be a number or a tensor of shape \(5,\), got shape \(4,\)"):
        lstm_gates.set_gate_bias(nn.LSTM(F, H), "f", torch.zeros(4))
    with pytest.raises(TypeError, match="value must be a number, got str"):
        lstm_gates.set_gate_bias(nn.LSTM(F, H), "f", "1")
    with pytest.raises(ValueError, match="num_layers=2"):
        lstm_gates.set_gate_bias(nn.LSTM(F, H, num_layers=2), "f", 1.0)


def test_long_memory_init_spreads_time_scales():
    lstm = nn.LSTM(F, 64, batch_first=True)
    tau = lstm_gates.long_memory_init(lstm, 100, seed=0)
    assert tau.shape == (64,) and tau.min() >= 2 and tau.max() <= 100
    b_f = lstm.bias_ih_l0[64:128] + lstm.bias_hh_l0[64:128]
    b_i = lstm.bias_ih_l0[:64] + lstm.bias_hh_l0[:64]
    torch.testing.assert_close(torch.sigmoid(b_f), 1 - 1 / tau)  # keep gate ~ 1 - 1/tau
    torch.testing.assert_close(b_i, -b_f)
    gru = nn.GRU(F, 64)
    lstm_gates.long_memory_init(gru, 100, seed=0)
    torch.testing.assert_close(torch.sigmoid(gru.bias_ih_l0[64:128]), 1 - 1 / tau)
    with pytest.raises(ValueError, match="max_lag must be >= 3, got 2"):
        lstm_gates.long_memory_init(gru, 2)


# ---------------------------------------------------------------- recording


def test_record_gates_lstm_matches_the_layer():
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, batch_first=True)
    x = torch.randn(2, 6, F)
    record = lstm_gates.record_gates(lstm, x)
    assert set(record) == {"i", "f", "g", "o", "h", "c"}
    assert all(v.shape == (2, 6, H) for v in record.values())
    out, (_, c_n) = lstm(x)
    torch.testing.assert_close(record["h"], out.detach())
    torch.testing.assert_close(record["c"][:, -1], c_n[0].detach())
    # The cell-state recurrence holds step by step.
    torch.testing.assert_close(
        record["c"][:, 1:], record["f"][:, 1:] * record["c"][:, :-1] + record["i"][:, 1:] * record["g"][:, 1:])


def test_record_gates_gru_and_errors():
    gru = lstm_gates.ScratchGRU(F, H)
    x = torch.randn(2, 4, F)
    record = lstm_gates.record_gates(gru, x)
    assert set(record) == {"r", "z", "n", "h"}
    torch.testing.assert_close(record["h"], gru(x)[0].detach())
    with pytest.raises(TypeError, match="module must be .*, got RNNCell"):
        lstm_gates.record_gates(cells.RNNCell(F, H), x)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(4, 3\)"):
        lstm_gates.record_gates(gru, torch.randn(4, F))


# ------------------------------------------------------------ adding runs


def test_make_adding_model_starts_at_the_mean():
    model = lstm_gates.make_adding_model("lstm", 8, 20)
    x, _ = data.adding_problem(5, 20, seed=0)
    torch.testing.assert_close(model(x), torch.ones(5))
    b = model.recurrent.bias_ih_l0 + model.recurrent.bias_hh_l0
    assert (b[8:16] > 0).all() and (b[:8] < 0).all()
    with pytest.raises(ValueError, match=r"kind must be one of \('rnn', 'lstm', 'gru'\), got 'tcn'"):
        lstm_gates.make_adding_model("tcn", 8, 20)


def test_make_adding_model_with_a_keep_bias():
    lstm = lstm_gates.make_adding_model("lstm", 8, 20, keep_bias=1.0).recurrent
    torch.testing.assert_close(lstm.bias_ih_l0[8:16] + lstm.bias_hh_l0[8:16], torch.ones(8))
    gru = lstm_gates.make_adding_model("gru", 8, 20, keep_bias=2.0).recurrent
    torch.testing.assert_close(gru.bias_ih_l0[8:16] + gru.bias_hh_l0[8:16], torch.full((8,), 2.0))
    with pytest.raises(TypeError, match="keep_bias must be a number, got str"):
        lstm_gates.make_adding_model("lstm", 8, 20, keep_bias="1")


def test_run_adding_problem_short_run_learns_something():
    run = lstm_gates.run_adding_problem("lstm", 10, hidden_size=16, train_steps=60, seed=0, device="cpu")
    assert set(run) == {"model", "val_mse", "mse", "baseline_mse", "prediction_std", "seconds",
                        "history"}
    assert len(run["history"]["step_loss"]) == 60
    assert run["mse"] < data.ADDING_BASELINE_MSE
    with pytest.raises(ValueError, match="lr must be > 0.0, got 0.0"):
        lstm_gates.run_adding_problem("rnn", 10, lr=0.0)
    with pytest.raises(ValueError, match="steps must be >= 3, got 2"):
        lstm_gates.run_adding_problem("rnn", 2)


# ------------------------------------------------------------------ diagram


def test_draw_gru_cell_labels_every_gate():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = lstm_gates.draw_gru_cell()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for label in ("update (keep)", "reset", "candidate", "$1 - z_t$", "$h_{t-1}$", "$h_t$",
                  r"$r_t \odot (h_{t-1} W_{hn} + b_{hn})$"):
        assert label in texts
    plt.close(fig)


def test_draw_lstm_cell_labels_every_gate():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from book_utils import plots

    fig = lstm_gates.draw_lstm_cell()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for label in ("forget (keep)", "input (write)", "candidate", "output (read)", "$c_t$", "$h_t$"):
        assert label in texts
    plt.close(fig)


def _tiny_mnist():
    g = torch.Generator().manual_seed(0)
    return data.MNIST(x_train=torch.rand(40, 28, 28, generator=g), y_train=torch.arange(40) % 10,
                      x_test=torch.rand(20, 28, 28, generator=g), y_test=torch.arange(20) % 10,
                      source="embedded")


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_train_mnist_classifier_trains_every_kind_with_the_same_recipe(kind):
    model, history = lstm_gates.train_mnist_classifier(kind, _tiny_mnist(), hidden_size=8, epochs=2,
                                                       batch_size=16, device="cpu")
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    assert isinstance(model.recurrent, layer) and model.recurrent.hidden_size == 8
    assert len(history["epoch"]) == 2 and all(a is not None for a in history["train_accuracy"])


def test_train_mnist_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        lstm_gates.train_mnist_classifier("transformer", _tiny_mnist())
    with pytest.raises(TypeError, match="digits must be"):
        lstm_gates.train_mnist_classifier("lstm", torch.zeros(3))
    with pytest.raises(ValueError, match="seed"):
        lstm_gates.train_mnist_classifier("lstm", _tiny_mnist(), seed=-1)


# ------------------------------------------------------------ random state and bad arguments


def test_make_adding_model_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = lstm_gates.make_adding_model("lstm", 8, 20, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    second = lstm_gates.make_adding_model("lstm", 8, 20, seed=3)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    # The weights are those of torch.manual_seed(seed) followed by the layer's construction.
    torch.manual_seed(3)
    reference = nn.LSTM(2, 8, batch_first=True)
    assert torch.equal(first.recurrent.weight_hh_l0, reference.weight_hh_l0)
    other = lstm_gates.make_adding_model("lstm", 8, 20, seed=4)
    assert not torch.equal(first.recurrent.weight_hh_l0, other.recurrent.weight_hh_l0)


def test_train_mnist_classifier_leaves_the_global_random_state_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    first, _ = lstm_gates.train_mnist_classifier("gru", _tiny_mnist(), hidden_size=4, epochs=1,
                                                 batch_size=16, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(6)  # another caller state: the same seeded run
    second, _ = lstm_gates.train_mnist_classifier("gru", _tiny_mnist(), hidden_size=4, epochs=1,
                                                  batch_size=16, device="cpu")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_run_adding_problem_without_clipping():
    arguments = dict(kind="gru", steps=6, hidden_size=4, train_steps=4, batch_size=8, n_test=8,
                     device="cpu")
    unclipped = lstm_gates.run_adding_problem(**arguments, clip_norm=None)
    never_reached = lstm_gates.run_adding_problem(**arguments, clip_norm=1e9)
    tight = lstm_gates.run_adding_problem(**arguments, clip_norm=1e-3)
    assert unclipped["history"]["step_loss"] == never_reached["history"]["step_loss"]
    assert unclipped["history"]["step_loss"] != tight["history"]["step_loss"]
    with pytest.raises(ValueError, match="clip_norm must be > 0.0, got -1.0"):
        lstm_gates.run_adding_problem(**{**arguments, "clip_norm": -1.0})
    with pytest.raises(TypeError, match="device must be str or device, got int"):
        lstm_gates.run_adding_problem(**{**arguments, "device": 3})
    with pytest.raises(ValueError, match="device must name a device .* got 'gpu0'"):
        lstm_gates.run_adding_problem(**{**arguments, "device": "gpu0"})


def test_train_mnist_classifier_checks_verbose_and_val_loader():
    with pytest.raises(TypeError, match="verbose must be True or False, got NoneType"):
        lstm_gates.train_mnist_classifier("lstm", _tiny_mnist(), verbose=None)
    with pytest.raises(ValueError, match="val_loader must hold at least one batch, got an empty list"):
        lstm_gates.train_mnist_classifier("lstm", _tiny_mnist(), val_loader=[])


def test_record_gates_refuses_a_dtype_the_layer_does_not_have():
    with pytest.raises(TypeError, match="x must have the dtype of the LSTMCell's weights, "
                                        "torch.float32, got torch.float64"):
        lstm_gates.record_gates(nn.LSTM(F, H, batch_first=True), torch.randn(2, 4, F).double())


# ---------------------------------------------------------------- distorted digits


def test_distortions_with_zero_limits_return_the_images_unchanged():
    x = torch.rand(5, 28, 28)
    out = lstm_gates.distort_images(x, 0, 0.0, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)  # (x - min) + min rounds a little


def test_a_pure_shift_moves_whole_pixels_and_fills_with_the_background():
    x = torch.full((64, 28, 28), -0.5)
    x[:, 10:14, 12:15] = 2.0                               # a block of ink
    out = lstm_gates.distort_images(x, 2, 0.0, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(out.sum(dim=(1, 2)), x.sum(dim=(1, 2)), atol=1e-3)   # nothing lost
    assert set(out.round(decimals=4).unique().tolist()) <= {-0.5, 2.0}         # no blur
    rows = (out == 2.0).any(dim=2).float().argmax(dim=1) - 10                  # first ink row moved by
    cols = (out == 2.0).any(dim=1).float().argmax(dim=1) - 12
    assert rows.abs().max() <= 2 and cols.abs().max() <= 2 and (rows != 0).any() and (cols != 0).any()


def test_rotations_and_scalings_keep_the_labels_and_roughly_the_ink():
    images = torch.zeros(8, 28, 28)
    images[:, 8:20, 13:15] = 1.0                           # a vertical stroke
    labels = torch.arange(8)
    loader = lstm_gates.RandomDistortions(data.make_loader(images, labels, batch_size=4),
                                          max_shift=0, max_rotation=30.0, max_scale=0.1, seed=0)
    assert len(loader) == 2
    batches = list(loader)
    out, seen = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    assert torch.equal(seen, labels)
    ink = out.sum(dim=(1, 2)) / images.sum(dim=(1, 2))
    assert ((ink > 0.75) & (ink < 1.3)).all(), ink                # area scales by at most 1.1^2
    assert not torch.allclose(out[0], images[0], atol=0.1)        # it did turn
    again = torch.cat([x for x, _ in lstm_gates.RandomDistortions(
        data.make_loader(images, labels, batch_size=4), max_shift=0, max_rotation=30.0,
        max_scale=0.1, seed=0)])
    torch.testing.assert_close(out, again)                        # seeded


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(max_rotation=-1.0), ValueError, "max_rotation must be >= 0.0, got -1.0"),
    (dict(max_scale=0.9), ValueError, "max_scale must be <= 0.5, got 0.9"),
    (dict(max_shift=1.5), TypeError, "max_shift must be an int, got float"),
    (dict(generator=None), TypeError, "generator must be Generator, got NoneType"),
])
def test_distortions_refuse_bad_limits_clearly(kwargs, error, message):
    args = dict(x=torch.rand(2, 28, 28), max_shift=1, max_rotation=5.0, max_scale=0.1,
                generator=torch.Generator())
    with pytest.raises(error, match=message):
        lstm_gates.distort_images(**{**args, **kwargs})


# ------------------------------------------------------------ fair comparisons (issue 18)


def test_adding_rnn_starts_orthogonal_or_as_an_irnn():
    rnn = lstm_gates.make_adding_model("rnn", 6, 20).recurrent
    W = rnn.weight_hh_l0.detach()
    torch.testing.assert_close(W @ W.T, torch.eye(6))
    assert rnn.nonlinearity == "tanh"
    irnn = lstm_gates.make_adding_model("rnn", 6, 20, rnn_init="identity").recurrent
    assert irnn.nonlinearity == "relu"
    assert torch.equal(irnn.weight_hh_l0.detach(), torch.eye(6))
    assert not irnn.bias_ih_l0.any() and not irnn.bias_hh_l0.any()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kind="lstm", rnn_init="identity"), ValueError, "rnn_init applies to kind 'rnn' only, "
                                                         "got kind 'lstm'"),
    (dict(kind="rnn", keep_bias=1.0), ValueError, "keep_bias applies to the gated kinds"),
    (dict(kind="rnn", rnn_init="xavier"), ValueError,
     r"rnn_init must be one of \('orthogonal', 'identity'\), got 'xavier'"),
])
def test_make_adding_model_refuses_options_of_another_kind(kwargs, error, message):
    with pytest.raises(error, match=message):
        lstm_gates.make_adding_model(hidden_size=4, steps=10, **kwargs)


def test_run_adding_problem_scores_validation_and_test_apart():
    run = lstm_gates.run_adding_problem("rnn", 8, hidden_size=4, train_steps=3, batch_size=8,
                                        n_val=50, n_test=40, rnn_init="identity", device="cpu")
    assert run["val_mse"] != run["mse"]  # two different sets of sequences
    _, y_test = data.adding_problem(40, 8, seed=1_000_003)
    assert run["baseline_mse"] == pytest.approx(((y_test - 1) ** 2).mean().item())
    predictions = run["model"](data.adding_problem(40, 8, seed=1_000_003)[0]).detach()
    assert run["prediction_std"] == pytest.approx(predictions.std().item(), rel=1e-5)
    with pytest.raises(ValueError, match="n_val must be >= 1, got 0"):
        lstm_gates.run_adding_problem("rnn", 8, n_val=0)


def test_adding_variants_are_matched_on_state_size():
    sizes = {}
    for name, spec in lstm_gates.ADDING_VARIANTS.items():
        spec = {"hidden_size": lstm_gates.ADDING_RECIPE["hidden_size"], **spec}
        layer = lstm_gates.make_adding_model(steps=10, **spec).recurrent
        state = layer.hidden_size * (2 if isinstance(layer, nn.LSTM) else 1)
        sizes[name] = state, models.count_parameters(lstm_gates.make_adding_model(steps=10, **spec))
    assert sizes["RNN, orthogonal"][0] == sizes["LSTM, chrono"][0] == 64
    assert abs(sizes["RNN, orthogonal"][1] / sizes["LSTM, chrono"][1] - 1) < 0.05
    assert sizes["GRU, chrono"][0] < 64 and sizes["GRU, chrono"][1] < sizes["LSTM, chrono"][1]
    assert set(lstm_gates.ADDING_LRS) == set(lstm_gates.ADDING_VARIANTS) | set(
        lstm_gates.ADDING_CONTROLS)


def test_adding_controls_start_with_long_time_scales_not_set_from_T():
    def keep_bias(spec: dict, steps: int) -> torch.Tensor:
        layer = lstm_gates.make_adding_model(hidden_size=32, steps=steps, **spec).recurrent
        # the keep gate is the second block of both: f in (i, f, g, o), z in (r, z, n)
        return (layer.bias_ih_l0 + layer.bias_hh_l0).detach().view(-1, 32)[1]

    controls = lstm_gates.ADDING_CONTROLS
    for name in ("LSTM, b_f = 3", "GRU, b_z = 3"):
        torch.testing.assert_close(keep_bias(controls[name], 200), torch.full((32,), 3.0))
    # sized for T = 50 whatever the length: every time scale between 2 and 50 steps
    wrong = keep_bias(controls["LSTM, chrono for T = 50"], 200)
    torch.testing.assert_close(wrong, keep_bias(controls["LSTM, chrono for T = 50"], 10))
    tau = 1 + wrong.exp()
    assert tau.min() >= 2 - 1e-4 and tau.max() <= 50 + 1e-3 and tau.max() > 25
    # told T, but the input gate starts half open
    layer = lstm_gates.make_adding_model(hidden_size=32, steps=200,
                                         **controls["LSTM, chrono, b_i = 0"]).recurrent
    biases = (layer.bias_ih_l0 + layer.bias_hh_l0).detach().view(4, 32)
    assert not biases[0].any() and (1 + biases[1].exp()).max() > 100


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="rnn", max_lag=50), "max_lag sizes the chrono init of a gated kind without "
                                   "keep_bias, got kind 'rnn' and keep_bias None"),
    (dict(kind="lstm", max_lag=50, keep_bias=1.0), "got kind 'lstm' and keep_bias 1.0"),
    (dict(kind="lstm", max_lag=1), "max_lag must be >= 2, got 1"),
    (dict(kind="gru", input_bias=0.0), "input_bias applies to kind 'lstm' only, got kind 'gru'"),
    (dict(kind="lstm", input_bias=float("nan")), "input_bias must be a finite"),
])
def test_make_adding_model_refuses_a_bad_max_lag_or_input_bias(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lstm_gates.make_adding_model(hidden_size=4, steps=10, **kwargs)


def test_mnist_layers_are_matched_on_parameters():
    counts = {kind: models.count_parameters(models.make_classifier(kind, hidden_size=size))
              for kind, size in lstm_gates.MNIST_MATCHED_SIZES.items()}
    assert lstm_gates.MNIST_MATCHED_SIZES["lstm"] == lstm_gates.MNIST_RECIPE["hidden_size"]
    assert all(abs(n / counts["lstm"] - 1) < 0.005 for n in counts.values()), counts
    assert set(lstm_gates.MNIST_LRS) == set(lstm_gates.MNIST_MATCHED_SIZES)
    assert all(lstm_gates.MNIST_RECIPE["lr"] in lstm_gates.MNIST_LRS[k] for k in ("lstm", "gru"))


def test_best_setting_picks_the_best_mean_and_ranks_diverged_runs_last():
    rows = [{"T": T, "lr": lr, "seed": s, "mse": mse}
            for T, lr, mses in ((10, 0.1, (0.3, 0.1)), (10, 0.01, (0.2, 0.25)),
                                (50, 0.1, (None, 0.01)), (50, 0.01, (0.9, 0.8)))
            for s, mse in enumerate(mses)]
    assert lstm_gates.best_setting(rows, ["T"], "lr", "mse", minimize=True) == {
        (10,): 0.1, (50,): 0.01}  # 0.2 < 0.225 at T = 10; a diverged run loses at T = 50
    assert lstm_gates.best_setting(rows[:4], ["T"], "lr", "mse", minimize=False) == {(10,): 0.01}
    every_one_failed = [{"g": 1, "lr": lr, "acc": None} for lr in (1, 2)]
    assert lstm_gates.best_setting(every_one_failed, ["g"], "lr", "acc", minimize=False) == {(1,): 1}


@pytest.mark.parametrize("args, error, message", [
    (([], ["T"], "lr", "mse"), ValueError, "rows must be a non-empty list of dicts"),
    (([{"T": 1, "lr": 1}], ["T"], "lr", "mse"), ValueError, "every row needs a 'mse' entry"),
    (([{"T": 1, "lr": 1, "mse": 1}], "T", "lr", "mse"), TypeError, "by must be a list of column"),
    (("rows", ["T"], "lr", "mse"), TypeError, "rows must be list, got str"),
])
def test_best_setting_errors(args, error, message):
    with pytest.raises(error, match=message):
        lstm_gates.best_setting(*args, minimize=True)
    with pytest.raises(TypeError, match="minimize must be True or False, got int"):
        lstm_gates.best_setting([{"T": 1, "lr": 1, "mse": 1}], ["T"], "lr", "mse", minimize=1)


def test_gate_variance_shares_find_the_grouping_that_decides():
    ink = torch.zeros(4, 6, dtype=torch.bool)
    ink[:, 2:5] = True
    by_unit = torch.linspace(0.1, 0.9, 5).expand(4, 6, 5).clone()
    assert lstm_gates.gate_variance_shares(by_unit, ink) == pytest.approx(
        {"unit": 1.0, "step": 0.0, "ink": 0.0}, abs=1e-9)
    by_ink = torch.where(ink, 0.8, 0.2)[..., None].expand(4, 6, 5).clone()
    shares = lstm_gates.gate_variance_shares(by_ink, ink)
    assert shares["ink"] == pytest.approx(1.0) and shares["step"] == pytest.approx(1.0)
    assert shares["unit"] == pytest.approx(0.0, abs=1e-9)
    mixed = by_unit + torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(0))
    assert all(0 <= v <= 1 for v in lstm_gates.gate_variance_shares(mixed, ink).values())


@pytest.mark.parametrize("gate, ink, error, message", [
    (torch.rand(4, 6), torch.ones(4, 6, dtype=torch.bool), ValueError, "gate must have shape"),
    (torch.rand(4, 6, 3), torch.ones(4, 6), TypeError, "ink must be a bool tensor"),
    (torch.rand(4, 6, 3), torch.ones(4, 5, dtype=torch.bool), ValueError,
     r"ink must have shape \(batch, time\) = \(4, 6\), got \(4, 5\)"),
    (torch.rand(4, 6, 3), torch.ones(4, 6, dtype=torch.bool), ValueError, "got only rows with ink"),
    (torch.full((4, 6, 3), float("nan")), torch.eye(4, 6, dtype=torch.bool), ValueError,
     "gate must hold finite activations"),
])
def test_gate_variance_shares_errors(gate, ink, error, message):
    with pytest.raises(error, match=message):
        lstm_gates.gate_variance_shares(gate, ink)


def test_plot_gates_on_digit_labels_every_panel():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gates = {name: torch.rand(28, 16) for name in "ifo"}
    roles = {"i": "input, write", "f": "forget, keep", "o": "output, read"}
    fig = lstm_gates.plot_gates_on_digit(torch.rand(28, 28), gates, roles)
    titles = [ax.get_title() for ax in fig.axes]
    assert "gate i: input, write" in titles and "on its side: column t is row t" in titles
    assert all(ax.get_ylabel() for ax in fig.axes)
    assert sum(ax.get_xlabel() == "time step t (row of the image)" for ax in fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match=r"gates\['i'\] must have one row per image row, 28"):
        lstm_gates.plot_gates_on_digit(torch.rand(28, 28), {"i": torch.rand(27, 4)}, roles)
    with pytest.raises(ValueError, match="roles must name the role of every gate"):
        lstm_gates.plot_gates_on_digit(torch.rand(28, 28), gates, {})
