"""Models, the training loop, and the gradient-through-time probe."""

import math

import numpy as np

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from book_utils import cells, data, models, session, training


def toy_loader(n=64, steps=5, features=3, seed=0, batch_size=16):
    """A separable toy task: the class is the sign of the sum of the first feature over time."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, steps, features, generator=g)
    y = (x[:, :, 0].sum(dim=1) > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize("kind", models.RECURRENT_KINDS)
def test_make_classifier_shapes(kind):
    model = models.make_classifier(kind, input_size=28, hidden_size=16, n_classes=10)
    assert model(torch.zeros(3, 28, 28)).shape == (3, 10)


def test_parameter_counts_follow_the_formula():
    F, H, C = 28, 32, 10
    scratch = models.make_classifier("scratch_rnn", F, H, C)
    assert models.count_parameters(scratch) == F * H + H * H + H + H * C + C
    assert models.count_parameters(models.make_classifier("rnn", F, H, C)) == F * H + H * H + 2 * H + H * C + C
    assert models.count_parameters(models.make_classifier("lstm", F, H, C)) == 4 * (F * H + H * H + 2 * H) + H * C + C


def test_classifier_uses_the_last_step():
    model = models.make_classifier("scratch_rnn", input_size=2, hidden_size=3, n_classes=2)
    x = torch.randn(1, 4, 2)
    outputs, _ = model.recurrent(x)
    torch.testing.assert_close(model(x), model.head(outputs[:, -1]))


def test_model_errors():
    with pytest.raises(ValueError, match=r"kind must be one of \('rnn', 'scratch_rnn', 'lstm', 'gru'\), got 'transformer'"):
        models.make_recurrent("transformer", 3, 4)
    with pytest.raises(ValueError, match="nonlinearity applies to 'rnn' and 'scratch_rnn' only, got 'lstm'"):
        models.make_recurrent("lstm", 3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match="n_classes must be >= 2, got 1"):
        models.SequenceClassifier(nn.RNN(3, 4, batch_first=True), 4, 1)
    with pytest.raises(TypeError, match="recurrent must be Module, got str"):
        models.SequenceClassifier("rnn", 4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(28, 28\)"):
        models.make_classifier()(torch.zeros(28, 28))
    with pytest.raises(TypeError, match="model must be Module, got int"):
        models.count_parameters(3)


def test_seed_everything_repeats_runs():
    session.seed_everything(123)
    a = torch.randn(3)
    session.seed_everything(123)
    torch.testing.assert_close(a, torch.randn(3))


def test_pick_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert session.pick_device().type == expected
    assert session.pick_device("cpu").type == "cpu"


def test_fit_learns_and_records_history(capsys):
    session.seed_everything(0)
    model = models.make_classifier("rnn", input_size=3, hidden_size=8, n_classes=2)
    loader = toy_loader()
    before = training.evaluate(model, loader)
    history = training.fit(model, loader, epochs=15, optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
                           val_loader=loader)
    after = training.evaluate(model, loader)
    assert after["loss"] < before["loss"]
    assert after["accuracy"] > 0.85
    assert history["epoch"] == list(range(1, 16))
    assert len(history["step_loss"]) == 15 * 4 == len(history["step_grad_norm"])
    assert history["val_accuracy"][-1] == pytest.approx(after["accuracy"])
    assert all(s > 0 for s in history["seconds"])
    lines = capsys.readouterr().out.strip().splitlines()
    # 15 epochs log at most LOG_LINES lines: the first, every 2nd, and the last
    assert [int(l.split("/")[0].split()[1]) for l in lines] == [1, 2, 4, 6, 8, 10, 12, 14, 15]
    assert len(lines) <= training.LOG_LINES and lines[0].startswith("epoch  1/15 | train loss")


def test_fit_clips_gradients_and_steps_the_scheduler():
    session.seed_everything(0)
    model = models.make_classifier("rnn", input_size=3, hidden_size=8, n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    clipped = []
    original = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        norm = original(params, max_norm, *args, **kwargs)
        clipped.append(torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None)).item())
        return norm

    nn.utils.clip_grad_norm_ = spy
    try:
        history = training.fit(model, toy_loader(), epochs=2, optimizer=optimizer, clip_norm=0.01,
                               scheduler=scheduler, verbose=False)
    finally:
        nn.utils.clip_grad_norm_ = original
    assert max(clipped) <= 0.01 + 1e-6
    assert max(history["step_grad_norm"]) > 0.01  # the recorded norm is the one before clipping
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * 0.5 ** 8)  # stepped per batch: 2 x 4


def test_evaluate_regression_has_no_accuracy():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 1))
    loader = DataLoader(TensorDataset(torch.randn(8, 2, 3), torch.randn(8, 1)), batch_size=3)
    result = training.evaluate(model, loader, loss_fn=nn.functional.mse_loss)
    assert set(result) == {"loss"} and math.isfinite(result["loss"])


def test_train_classifier_recipe():
    session.seed_everything(0)
    model = models.make_classifier("gru", input_size=3, hidden_size=8, n_classes=2)
    history = training.train_classifier(model, toy_loader(), epochs=10, lr=0.02, val_loader=toy_loader(seed=1),
                                        verbose=False)
    assert history["val_accuracy"][-1] > 0.8
    model = models.make_classifier("rnn", input_size=3, hidden_size=8, n_classes=2)
    history = training.train_classifier(model, toy_loader(), epochs=10, lr=0.02, optimizer="rmsprop",
                                        schedule="onecycle", verbose=False)
    assert history["train_accuracy"][-1] > 0.8


def test_training_errors():
    model = models.make_classifier("rnn", input_size=3, hidden_size=4, n_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = toy_loader()
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        session.seed_everything(-1)
    with pytest.raises(ValueError, match="prefer must be 'cpu', 'cuda' or None, got 'tpu'"):
        session.pick_device("tpu")
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        training.fit(model, loader, epochs=0, optimizer=optimizer)
    with pytest.raises(TypeError, match="optimizer must be Optimizer, got str"):
        training.fit(model, loader, epochs=1, optimizer="adam")
    with pytest.raises(TypeError, match="batches must be iterable over \\(x, y\\) batches, got int"):
        training.fit(model, 5, epochs=1, optimizer=optimizer)
    with pytest.raises(ValueError, match="clip_norm must be > 0.0, got 0.0"):
        training.fit(model, loader, epochs=1, optimizer=optimizer, clip_norm=0)
    with pytest.raises(TypeError, match="scheduler must be LRScheduler, got int"):
        training.fit(model, loader, epochs=1, optimizer=optimizer, scheduler=3)
    with pytest.raises(ValueError, match="batches yielded no examples"):
        training.fit(model, [], epochs=1, optimizer=optimizer, verbose=False)
    with pytest.raises(ValueError, match="loader yielded no examples"):
        training.evaluate(model, [])
    with pytest.raises(TypeError, match="device must be str or device, got int"):
        training.evaluate(model, loader, device=0)
    with pytest.raises(ValueError, match=r"optimizer must be one of \('adam', 'rmsprop'\), got 'sgd'"):
        training.train_classifier(model, loader, epochs=1, lr=0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="lr must be > 0.0, got -1.0"):
        training.train_classifier(model, loader, epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match=r"schedule must be one of \('cosine', 'onecycle'\), got 'step'"):
        training.train_classifier(model, loader, epochs=1, lr=0.1, schedule="step")
    with pytest.raises(TypeError, match=r"train_loader must have a length \(a DataLoader\), got generator"):
        training.train_classifier(model, (b for b in loader), epochs=1, lr=0.1)


def test_state_gradient_norms_match_autograd_and_decay():
    torch.manual_seed(0)
    cell = cells.RNNCell(3, 5).double()
    with torch.no_grad():
        cell.W_hh.mul_(0.5)  # a contracting recurrence: gradients shrink going back in time
    x = torch.randn(4, 12, 3, dtype=torch.float64)
    norms = cells.state_gradient_norms(cell, x, lambda out: out[:, -1].sum())
    assert set(norms) == {"h"} and norms["h"].shape == (12,)
    # dL/dh_T of sum(h_T) is all ones: norm sqrt(hidden) for every example.
    assert norms["h"][-1].item() == pytest.approx(5 ** 0.5)
    assert norms["h"][0] < norms["h"][-1] / 10
    # Check one step against autograd directly.
    h_states, state = [], None
    for x_t in x.unbind(1):
        state = cell(x_t, state)
        h_states.append(state)
    grads = torch.autograd.grad(h_states[-1].sum(), h_states[3])[0]
    assert norms["h"][3].item() == pytest.approx(grads.norm(dim=-1).mean().item())


def test_state_gradient_norms_for_lstm_pairs():
    lstm = nn.LSTMCell(2, 4)
    norms = cells.state_gradient_norms(lambda x_t, s: lstm(x_t, s), torch.randn(3, 6, 2),
                                           lambda out: out.pow(2).mean())
    assert set(norms) == {"h", "c"} and norms["c"].shape == (6,)
    assert (norms["h"] > 0).all()


def test_state_gradient_norms_errors():
    cell = cells.RNNCell(2, 3)
    with pytest.raises(TypeError, match="cell must be callable, got str"):
        cells.state_gradient_norms("rnn", torch.zeros(1, 2, 2), lambda o: o.sum())
    with pytest.raises(TypeError, match="loss_fn must be callable, got int"):
        cells.state_gradient_norms(cell, torch.zeros(1, 2, 2), 0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(2, 2\)"):
        cells.state_gradient_norms(cell, torch.zeros(2, 2), lambda o: o.sum())
    with pytest.raises(ValueError, match="x must have at least one time step"):
        cells.state_gradient_norms(cell, torch.zeros(1, 0, 2), lambda o: o.sum())
    with pytest.raises(ValueError, match="loss_fn must return a scalar tensor"):
        cells.state_gradient_norms(cell, torch.zeros(1, 2, 2), lambda o: o)


def test_update_takes_one_step_and_reports_the_unclipped_norm():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    loss = nn.functional.mse_loss(model(x), y)
    expected_norm = torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(loss, model.parameters(),
                                                                               retain_graph=True)))
    before = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    norm = training.update(model, loss, optimizer, clip_norm=1e-3, scheduler=scheduler)
    assert norm == pytest.approx(expected_norm.item(), rel=1e-5)
    step = (model.weight.detach() - before).norm().item()
    assert step <= 0.1 * 1e-3 + 1e-7  # the clipped gradient, times the learning rate
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_update_errors():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.ones(3, 2)).sum()
    with pytest.raises(ValueError, match=r"loss must be a scalar tensor, got Tensor of shape \(3, 1\)"):
        training.update(model, model(torch.ones(3, 2)), optimizer)
    with pytest.raises(ValueError, match="loss must be a scalar tensor, got float"):
        training.update(model, 1.0, optimizer)
    with pytest.raises(TypeError, match="optimizer must be Optimizer, got NoneType"):
        training.update(model, loss, None)
    with pytest.raises(ValueError, match="clip_norm must be > 0.0, got -1.0"):
        training.update(model, loss, optimizer, clip_norm=-1.0)
    with pytest.raises(TypeError, match="scheduler must be LRScheduler, got str"):
        training.update(model, loss, optimizer, scheduler="cosine")


def test_a_layer_that_reads_time_first_is_refused():
    with pytest.raises(ValueError, match="batch_first=True, got RNN with batch_first=False"):
        models.SequenceClassifier(nn.RNN(4, 6), 6, 3)
    with pytest.raises(ValueError, match="batch_first=True, got LSTM with batch_first=False"):
        models.SequenceRegressor(nn.LSTM(2, 6), 6)


def test_numpy_integers_are_accepted_as_sizes():
    model = models.make_classifier("rnn", input_size=np.int64(4), hidden_size=np.int64(6))
    assert model(torch.randn(2, 3, 4)).shape == (2, 10)


def test_fit_stops_on_a_non_finite_loss_with_the_step_number():
    model = models.make_classifier("rnn", input_size=3, hidden_size=4, n_classes=2)
    x = torch.randn(8, 5, 3)
    x[0, 0, 0] = float("nan")
    loader = [(x, torch.zeros(8, dtype=torch.long))]
    with pytest.raises(FloatingPointError, match="training diverged at step 1"):
        training.fit(model, loader, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     verbose=False)
    history = training.fit(model, loader, epochs=1, allow_nonfinite=True, verbose=False,
                           optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert math.isnan(history["step_loss"][0])


def test_fit_refuses_an_optimizer_of_another_model_bad_devices_and_labels():
    model = models.make_classifier("rnn", input_size=3, hidden_size=4, n_classes=2)
    other = models.make_classifier("rnn", input_size=3, hidden_size=4, n_classes=2)
    loader = [(torch.randn(4, 5, 3), torch.tensor([0, 1, 0, 1]))]
    with pytest.raises(ValueError, match="optimizer must hold the model's parameters"):
        training.fit(model, loader, epochs=1, optimizer=torch.optim.SGD(other.parameters(), lr=0.1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="give exactly one of epochs and steps"):
        training.fit(model, loader, optimizer=optimizer)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available"):
            training.fit(model, loader, epochs=1, optimizer=optimizer, device="cuda")
    bad = [(torch.randn(4, 5, 3), torch.tensor([0, 1, 2, 1]))]
    with pytest.raises(ValueError, match=r"batches must yield targets y that are class indices in "
                       r"\[0, 1\] \(or IGNORE_INDEX\), got labels from 0 to 2 in batch 0"):
        training.fit(model, bad, epochs=1, optimizer=optimizer, verbose=False)
    with pytest.raises(ValueError, match="lr must be a finite number, got inf"):
        training.make_optimizer(model, lr=float("inf"), total_steps=10)


def test_fit_by_steps_and_with_a_carried_state():
    torch.manual_seed(0)
    model = models.make_classifier("rnn", input_size=3, hidden_size=4, n_classes=2)
    x, y = torch.randn(64, 5, 3), torch.randint(0, 2, (64,))
    was = model.eval()
    history = training.fit(model, training.random_batches(x, y, batch_size=8, seed=0), steps=7,
                           optimizer=torch.optim.SGD(model.parameters(), lr=0.1), verbose=False)
    assert len(history["step_loss"]) == 7 and len(history["seconds"]) == 1
    assert not was.training, "fit restores the model's eval mode"


def test_evaluate_with_a_carried_state_equals_one_long_pass():
    torch.manual_seed(0)
    layer = nn.RNN(3, 5, batch_first=True)
    head = nn.Linear(5, 2)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer, self.head = layer, head

        def forward(self, x, state=None):
            out, state = self.layer(x, state)
            return self.head(out), state

    x, y = torch.randn(4, 12, 3), torch.randint(0, 2, (4, 12))
    whole = training.evaluate(Tagger(), [(x, y)], state="carry")
    pieces = training.evaluate(Tagger(), data.stream_windows(x, y, 5), state="carry")
    assert pieces["accuracy"] == whole["accuracy"]
    assert pieces["loss"] == pytest.approx(whole["loss"], rel=1e-6)


# --- wiring and global state (issue 12) -------------------------------------------------------


def test_classifier_input_must_fit_the_layer():
    model = models.make_classifier("rnn", 3, 4, 2)
    with pytest.raises(TypeError, match="x must have the dtype of the RNN's weights, torch.float32, "
                                        "got torch.float64"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time >= 1, 3\), got \(2, 5, 0\)"):
        model(torch.zeros(2, 5, 0))
    assert model.double()(torch.zeros(2, 5, 3, dtype=torch.float64)).dtype == torch.float64


def test_encoder_decoder_bad_input():
    model = models.EncoderDecoder(np.int64(8), np.int64(3), np.int64(4))  # numpy sizes work
    source, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    with pytest.raises(ValueError, match=r"lengths must hold one length per sequence of source "
                                         r"\(0 in all\), got 1"):
        model.encode(source[:0], lengths)
    with pytest.raises(ValueError, match=r"decoder_inputs must have at least one step, got shape"):
        model(source, lengths, source[:, :0])
    vocab = data.Vocabulary("0123")
    with pytest.raises(ValueError, match="targets must hold at least one string, got an empty list"):
        models.decode_and_score(models.EncoderDecoder(len(vocab)), vocab, ["1"], [])
    with pytest.raises(TypeError, match="sources must hold strings only, got a int"):
        models.decode_and_score(models.EncoderDecoder(len(vocab)), vocab, [1], ["1"])


def test_session_bad_input():
    session.seed_everything(np.int64(3))  # a numpy seed works
    first = torch.rand(2)
    session.seed_everything(3)
    torch.testing.assert_close(torch.rand(2), first)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or None, got 'tpu'"):
        session.setup(device="tpu", verbose=False)
    with pytest.raises(TypeError, match="device must be 'cpu', 'cuda' or None, got 3"):
        session.setup(device=3, verbose=False)
    with pytest.raises(ValueError, match="value must be finite to appear in the text, got nan"):
        session.glue("accuracy", float("nan"))
    with pytest.raises(TypeError, match="display must be bool, got str"):
        session.glue("accuracy", 0.5, display="no")


def test_glue_hands_plain_python_numbers_to_myst_nb(monkeypatch):
    import sys
    import types

    from book_utils import session

    seen = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=False: seen.__setitem__(name, value)
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    session.glue("a", np.float64(0.25))
    session.glue("b", torch.tensor(3.0))
    assert type(seen["a"]) is float and type(seen["b"]) is float


def test_shared_checks_name_what_they_expected_and_got():
    from book_utils._checks import check_bool, check_tensor

    with pytest.raises(TypeError, match="verbose must be True or False, got str"):
        check_bool("verbose", "yes")
    with pytest.raises(ValueError, match=r"x must not be empty .*got shape \(0, 3\)"):
        check_tensor("x", torch.zeros(0, 3), dim=2, nonempty=True, layout="(batch, features)")
    with pytest.raises(ValueError, match="x must hold finite numbers, got NaN or inf"):
        check_tensor("x", torch.tensor([1.0, float("inf")]), finite=True)
    assert check_bool("verbose", False) is False


def test_update_checks_step_and_flags():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss():
        return model(torch.ones(3, 2)).pow(2).mean()

    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        training.update(model, loss(), optimizer, step=-1)
    with pytest.raises(TypeError, match="step must be an int, got float"):
        training.update(model, loss(), optimizer, step=1.5)
    with pytest.raises(TypeError, match="allow_nonfinite must be True or False, got NoneType"):
        training.update(model, loss(), optimizer, allow_nonfinite=None)
    with pytest.raises(TypeError, match="loss must be a floating-point scalar tensor, got dtype torch.int64"):
        training.update(model, torch.tensor(1), optimizer)
    with pytest.raises(ValueError, match="loss must be computed from the model's parameters"):
        training.update(model, loss().detach(), optimizer)
    assert training.update(model, loss(), optimizer, step=np.int64(0)) >= 0.0


def test_a_model_that_cannot_read_the_batches_is_named():
    loader = [(torch.randn(4, 5, 3), torch.arange(4) % 2)]
    wrong = nn.Linear(3, 3)
    with pytest.raises(ValueError, match=r"model must map the inputs \(4, 5, 3\) of loader .* "
                                         r"targets \(4,\), got a Linear that fails on batch 0"):
        training.evaluate(wrong, loader)
    assert wrong.training  # the mode is restored after the failure
    with pytest.raises(ValueError, match="of batches .* got a Linear that fails on batch 0"):
        training.fit(wrong, loader, epochs=1, optimizer=torch.optim.SGD(wrong.parameters(), lr=0.1),
                     verbose=False)
    with pytest.raises(TypeError, match="model must be Module, got NoneType"):
        training.model_device(None)


def test_fit_names_an_empty_loader_before_training():
    model = models.make_classifier("rnn", 3, 4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loader = [(torch.randn(4, 5, 3), torch.arange(4) % 2)]
    with pytest.raises(ValueError, match="val_loader yielded no examples: .*got none"):
        training.fit(model, loader, epochs=1, optimizer=optimizer, val_loader=[], verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained
    with pytest.raises(TypeError, match="verbose must be True or False, got NoneType"):
        training.fit(model, loader, epochs=1, optimizer=optimizer, verbose=None)
    with pytest.raises(TypeError, match="verbose must be True or False, got str"):
        training.train_classifier(model, loader, epochs=1, lr=0.1, verbose="no")
    with pytest.raises(ValueError, match="train_loader must hold at least one batch, got an empty"):
        training.train_classifier(model, [], epochs=1, lr=0.1)


@pytest.mark.parametrize("device", ["", "gpu"])
def test_a_device_name_torch_does_not_know_is_refused_clearly(device):
    loader = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]
    with pytest.raises(ValueError, match=f"device must name a device such as 'cpu' or 'cuda', got '{device}'"):
        training.evaluate(nn.Linear(3, 2), loader, device=device)


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8])
def test_the_one_cycle_schedule_works_for_any_number_of_steps(total_steps):
    model = nn.Linear(2, 2)
    opt, scheduler = training.make_optimizer(model, lr=0.1, total_steps=total_steps,
                                             schedule="onecycle")
    rates = []
    for _ in range(total_steps):
        opt.step()
        scheduler.step()
        rates.append(opt.param_groups[0]["lr"])
    assert all(math.isfinite(r) and 0 <= r <= 0.1 for r in rates)
