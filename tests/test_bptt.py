"""Tests for book_utils.bptt (hand-written BPTT and its measuring helpers) and the
chapter 4 additions to tasks, models and plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from book_utils import bptt, cells, models, plots, training


def float64_classifier(kind: str = "rnn", F_in: int = 5, H: int = 7, C: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return models.make_classifier(kind, input_size=F_in, hidden_size=H, n_classes=C).double()


def batch(B: int = 6, T: int = 9, F_in: int = 5, C: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, F_in, dtype=torch.float64, generator=g), torch.randint(C, (B,), generator=g)


def autograd_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    if isinstance(model.recurrent, nn.RNN):
        rnn = model.recurrent
        recurrent = {"W_xh": rnn.weight_ih_l0.grad.T, "W_hh": rnn.weight_hh_l0.grad.T,
                     "b_h": rnn.bias_ih_l0.grad}
    else:
        cell = model.recurrent.cell
        recurrent = {"W_xh": cell.W_xh.grad, "W_hh": cell.W_hh.grad, "b_h": cell.b_h.grad}
    return {**recurrent, "W_hy": model.head.weight.grad.T, "b_y": model.head.bias.grad}


# ---------------------------------------------------------------- hand BPTT


@pytest.mark.parametrize("kind", ["rnn", "scratch_rnn"])
def test_hand_bptt_matches_autograd_in_float64(kind):
    model = float64_classifier(kind)
    x, y = batch()
    params = bptt.classifier_parameters(model)
    loss, cache = bptt.forward(x, y, params)
    grads = bptt.backward(cache, params)
    expected = autograd_gradients(model, x, y)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y), rtol=1e-12, atol=0)
    assert list(grads) == list(bptt.PARAMETER_NAMES)
    for name in bptt.PARAMETER_NAMES:
        assert grads[name].shape == params[name].shape
        assert bptt.relative_error(grads[name], expected[name]) <= 1e-8
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-10, atol=1e-13)


def test_forward_cache_holds_every_state_and_probabilities():
    model = float64_classifier()
    x, y = batch(B=3, T=4)
    params = bptt.classifier_parameters(model)
    _, cache = bptt.forward(x, y, params)
    outputs, _ = model.recurrent(x)
    assert cache.h.shape == (3, 5, 7)
    assert torch.equal(cache.h[:, 0], torch.zeros(3, 7, dtype=torch.float64))
    torch.testing.assert_close(cache.h[:, 1:], outputs)
    torch.testing.assert_close(cache.probs.sum(dim=1), torch.ones(3, dtype=torch.float64))


def test_initial_state_is_used_and_differentiated_correctly():
    model = float64_classifier(H=6)
    x, y = batch()
    params = {k: v.requires_grad_() for k, v in bptt.classifier_parameters(model).items()}
    h0 = torch.randn(6, 6, dtype=torch.float64)
    loss, cache = bptt.forward(x, y, params, h0=h0)
    torch.testing.assert_close(cache.h[:, 0], h0)
    loss.backward()  # the forward pass is plain torch, so autograd can check the hand gradients
    with torch.no_grad():
        grads = bptt.backward(cache, {k: v.detach() for k, v in params.items()})
    for name in bptt.PARAMETER_NAMES:
        torch.testing.assert_close(grads[name], params[name].grad, rtol=1e-10, atol=1e-13)


def test_state_gradients_match_state_gradient_norms():
    model = float64_classifier()
    x, y = batch()
    params = bptt.classifier_parameters(model)
    _, cache = bptt.forward(x, y, params)
    grads = bptt.backward(cache, params, keep_state_grads=True)
    assert grads["h"].shape == (6, 9, 7)
    cell = cells.RNNCell(5, 7).double()
    cell.copy_from(model.recurrent)
    loss_fn = lambda out: F.cross_entropy(out[:, -1] @ params["W_hy"] + params["b_y"], y)
    expected = cells.state_gradient_norms(cell, x, loss_fn)["h"]
    torch.testing.assert_close(grads["h"].norm(dim=-1).mean(dim=0), expected, rtol=1e-10, atol=0)


def test_gradcheck_rnn_step_and_unrolled_cell():
    torch.manual_seed(0)
    opts = dict(dtype=torch.float64, requires_grad=True)
    inputs = (torch.randn(2, 3, **opts), torch.randn(2, 4, **opts), torch.randn(3, 4, **opts),
              torch.randn(4, 4, **opts), torch.randn(4, **opts))
    assert torch.autograd.gradcheck(cells.rnn_step, inputs)
    for nonlinearity in ("tanh", "relu"):
        cell = cells.RNNCell(3, 4, nonlinearity).double()

        def unrolled(x, W_xh, W_hh, b_h):
            weights = {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}
            step = lambda x_t, h: torch.func.functional_call(cell, weights, (x_t, h))
            return cells.unroll(step, x)[0]

        params = tuple(p.detach().clone().requires_grad_() for p in (cell.W_xh, cell.W_hh, cell.b_h))
        assert torch.autograd.gradcheck(unrolled, (torch.randn(2, 5, 3, **opts), *params))


def test_relative_error_values():
    a = torch.tensor([3.0, 4.0])
    assert bptt.relative_error(a, a) == 0.0
    assert bptt.relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
    assert bptt.relative_error(a, torch.tensor([3.0, 4.5])) == pytest.approx(0.5 / (3**2 + 4.5**2) ** 0.5)
    assert bptt.relative_error(a, torch.zeros(2)) == 1.0


def test_classifier_parameters_layout_and_copies():
    model = float64_classifier()
    params = bptt.classifier_parameters(model)
    assert {k: tuple(v.shape) for k, v in params.items()} == {
        "W_xh": (5, 7), "W_hh": (7, 7), "b_h": (7,), "W_hy": (7, 4), "b_y": (4,)}
    torch.testing.assert_close(params["b_h"], model.recurrent.bias_ih_l0 + model.recurrent.bias_hh_l0)
    params["W_hh"].zero_()
    assert model.recurrent.weight_hh_l0.abs().sum() > 0  # a copy, not a view
    assert not any(p.requires_grad for p in params.values())


# ---------------------------------------------------------------- argument errors


def test_forward_rejects_bad_arguments():
    params = bptt.classifier_parameters(float64_classifier())
    x, y = batch()
    with pytest.raises(TypeError, match="params must be dict, got list"):
        bptt.forward(x, y, [])
    with pytest.raises(ValueError, match=r"params must have keys .* missing \['b_y'\]"):
        bptt.forward(x, y, {k: v for k, v in params.items() if k != "b_y"})
    with pytest.raises(ValueError, match=r"params\['W_hh'\] must have shape \(7, 7\).*got \(7, 6\)"):
        bptt.forward(x, y, {**params, "W_hh": params["W_hh"][:, :6]})
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(6, 5\)"):
        bptt.forward(x[:, 0], y, params)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time >= 1, 5\).*got \(6, 9, 3\)"):
        bptt.forward(x[..., :3], y, params)
    with pytest.raises(TypeError, match="y must be an integer tensor, got dtype torch.float64"):
        bptt.forward(x, y.double(), params)
    with pytest.raises(ValueError, match="y must have 6 labels, one per sequence, got 5"):
        bptt.forward(x, y[:5], params)
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 3\], got \[0, 4\]"):
        bptt.forward(x, torch.tensor([0, 1, 2, 3, 4, 0]), params)
    with pytest.raises(ValueError, match=r"h0 must have shape \(6, 7\), got \(6, 3\)"):
        bptt.forward(x, y, params, h0=torch.zeros(6, 3, dtype=torch.float64))


def test_backward_and_helpers_reject_bad_arguments():
    params = bptt.classifier_parameters(float64_classifier())
    x, y = batch()
    _, cache = bptt.forward(x, y, params)
    with pytest.raises(TypeError, match="cache must be BPTTCache, got dict"):
        bptt.backward({}, params)
    with pytest.raises(TypeError, match="keep_state_grads must be bool, got int"):
        bptt.backward(cache, params, keep_state_grads=1)
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2,\) and \(3,\)"):
        bptt.relative_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="a must be a torch.Tensor, got list"):
        bptt.relative_error([1.0], torch.zeros(1))
    with pytest.raises(TypeError, match="model must be a SequenceClassifier with an nn.RNN or ScratchRNN"):
        bptt.classifier_parameters(models.make_classifier("lstm", input_size=3, hidden_size=4))
    with pytest.raises(ValueError, match="the hand-written backward pass needs tanh, got 'relu'"):
        bptt.classifier_parameters(models.make_classifier("rnn", 3, 4, nonlinearity="relu"))
    with pytest.raises(ValueError, match="output has no grad_fn"):
        bptt.autograd_graph(torch.zeros(2))
    with pytest.raises(TypeError, match="exclude\\[0\\] must be a torch.Tensor, got str"):
        bptt.SavedTensorMeter(exclude=["w"])


# ---------------------------------------------------------------- graph and memory


def test_autograd_graph_counts_shared_parameter_uses():
    torch.manual_seed(0)
    W_xh, W_hh = torch.randn(3, 4, requires_grad=True), torch.randn(4, 4, requires_grad=True)
    b_h = torch.zeros(4, requires_grad=True)
    x, h = torch.randn(2, 3, 3), torch.zeros(2, 4)
    for t in range(3):
        h = cells.rnn_step(x[:, t], h, W_xh, W_hh, b_h)
    nodes, edges = bptt.autograd_graph(h.sum(), {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h})
    assert nodes[0]["op"] == "SumBackward0" and nodes[0]["label"] == "Sum"
    ops = [n["op"] for n in nodes]
    assert ops.count("TanhBackward0") == 3 and ops.count("AccumulateGrad") == 3
    for name in ("W_xh", "W_hh", "b_h"):
        index = next(n["id"] for n in nodes if n["label"] == name)
        assert sum(1 for _, j in edges if j == index) == 3  # one contribution per step
    # an operation names the parameters it uses: the two products of a step differ
    labels = [n["label"] for n in nodes if n["op"] == "MmBackward0"]
    assert sorted(set(labels)) == ["Mm (W_hh)", "Mm (W_xh)"] and len(labels) == 6
    assert [n["label"] for n in nodes].count("Add (b_h)") == 3


def test_saved_tensor_meter_grows_linearly_with_steps():
    torch.manual_seed(0)
    model = bptt.make_step_classifier("rnn", input_size=2, hidden_size=8, n_classes=2)
    sizes = []
    for steps in (10, 20, 40):
        with bptt.SavedTensorMeter(exclude=model.parameters()) as meter:
            logits, _ = model(torch.randn(4, steps, 2))
            logits.sum().backward()
        sizes.append(meter.bytes)
    assert sizes[0] > 0
    assert sizes[2] - sizes[1] == 2 * (sizes[1] - sizes[0])
    with bptt.SavedTensorMeter() as meter:
        torch.randn(3, requires_grad=True).exp()
    assert meter.bytes == 3 * 4  # exp saves its float32 result


# ---------------------------------------------------------------- truncated BPTT


def test_echo_stream_targets_and_errors():
    x, y = bptt.echo_stream(3, 12, lag=4, n_symbols=3, seed=5)
    assert x.shape == (3, 12, 3) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x.sum(dim=-1), torch.ones(3, 12))
    assert torch.equal(y[:, :4], torch.full((3, 4), training.IGNORE_INDEX))
    assert torch.equal(y[:, 4:], x.argmax(dim=-1)[:, :8])
    assert torch.equal(bptt.echo_stream(3, 12, lag=4, n_symbols=3, seed=5)[1], y)
    with pytest.raises(ValueError, match="lag must be smaller than length=5, got lag=5"):
        bptt.echo_stream(2, 5, lag=5)
    with pytest.raises(ValueError, match="n_symbols must be >= 2, got 1"):
        bptt.echo_stream(2, 5, lag=1, n_symbols=1)
    with pytest.raises(TypeError, match="lag must be an int, got float"):
        bptt.echo_stream(2, 5, lag=1.0)


def test_step_classifier_carries_state_across_chunks():
    torch.manual_seed(0)
    model = bptt.make_step_classifier("gru", input_size=2, hidden_size=5, n_classes=3)
    x = torch.randn(2, 8, 2)
    whole, _ = model(x)
    first, state = model(x[:, :5])
    second, _ = model(x[:, 5:], state)
    assert whole.shape == (2, 8, 3)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(2, 8\)"):
        model(x[..., 0])


def test_train_truncated_makes_one_update_per_chunk_and_learns():
    x, y = bptt.echo_stream(16, 600, lag=1, seed=0)
    torch.manual_seed(0)
    model = bptt.make_step_classifier("rnn", input_size=2, hidden_size=16, n_classes=2)
    before = bptt.stream_accuracy(model, x, y)
    history = bptt.train_truncated(model, x, y, window=7, epochs=2,
                                   optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert len(history["loss"]) == 2 * 86 and len(history["seconds"]) == 2  # ceil(600 / 7) = 86
    assert bptt.stream_accuracy(model, x, y) > 0.95 > before


def test_train_truncated_and_stream_accuracy_reject_bad_arguments():
    x, y = bptt.echo_stream(2, 10, lag=1)
    model = bptt.make_step_classifier("rnn", input_size=2, hidden_size=4, n_classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        bptt.train_truncated(model, x, y, window=0, optimizer=opt)
    with pytest.raises(ValueError, match=r"y must have shape \(2, 10\), one target per step, got \(2, 9\)"):
        bptt.train_truncated(model, x, y[:, :9], window=3, optimizer=opt)
    with pytest.raises(TypeError, match="optimizer must be Optimizer, got str"):
        bptt.train_truncated(model, x, y, window=3, optimizer="adam")
    with pytest.raises(ValueError, match="y has no targets"):
        bptt.stream_accuracy(model, x, torch.full_like(y, -100))
    with pytest.raises(TypeError, match="y must be an integer tensor"):
        bptt.stream_accuracy(model, x, y.float())


# ---------------------------------------------------------------- plots


def test_chapter4_plots_draw_and_validate():
    nodes = [{"id": 0, "op": "SumBackward0", "label": "Sum"},
             {"id": 1, "op": "AccumulateGrad", "label": "w"}]
    for fig in (bptt.draw_unrolled_classifier(4),
                bptt.draw_autograd_graph(nodes, [(0, 1)]),
                bptt.plot_state_gradients({"a": torch.tensor([1e-3, 1e-2, 0.0])}),
                bptt.plot_step_history({"run": {"step_loss": [1.0, float("nan")],
                                                 "step_grad_norm": [2.0, float("inf")]}})):
        assert len(fig.axes) >= 1
        plt.close(fig)
    with pytest.raises(ValueError, match="steps must be at most 6 to stay readable, got 7"):
        bptt.draw_unrolled_classifier(7)
    with pytest.raises(ValueError, match=r"edges must join node indices in \[0, 1\], got \(0, 2\)"):
        bptt.draw_autograd_graph(nodes, [(0, 2)])
    with pytest.raises(ValueError, match="nodes is empty"):
        bptt.draw_autograd_graph([], [])
    with pytest.raises(ValueError, match="curves is empty"):
        bptt.plot_state_gradients({})
    with pytest.raises(ValueError, match=r"histories\['r'\] must have 'step_loss' and 'step_grad_norm'"):
        bptt.plot_step_history({"r": {"step_loss": []}})
    with pytest.raises(ValueError, match="loss_max"):
        bptt.plot_step_history({"r": {"step_loss": [1.0], "step_grad_norm": [1.0]}}, loss_max=0.0)


def test_plot_step_history_marks_losses_above_loss_max():
    run = {"step_loss": [1.0, 0.5, 40.0, float("nan")], "step_grad_norm": [1.0, 2.0, 50.0, 9.0]}
    fig = bptt.plot_step_history({"run": run}, loss_max=5.0)
    try:
        loss_ax = fig.axes[0]
        assert loss_ax.get_ylim()[1] == pytest.approx(5.0)
        marks = [line for line in loss_ax.get_lines() if line.get_marker() == "^"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2]
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "run: loss above 5" in labels and "run: NaN from step 3" in labels
    finally:
        plt.close(fig)


def test_autograd_graph_figure_keeps_every_label_inside_its_box():
    torch.manual_seed(0)
    W_xh, W_hh = torch.randn(3, 4, requires_grad=True), torch.randn(4, 4, requires_grad=True)
    b_h, W_hy = torch.zeros(4, requires_grad=True), torch.randn(4, 2, requires_grad=True)
    h = torch.zeros(2, 4)
    for t in range(3):
        h = cells.rnn_step(torch.randn(2, 3), h, W_xh, W_hh, b_h)
    loss = F.cross_entropy(h @ W_hy, torch.tensor([0, 1]))
    names = {"$W_{xh}$": W_xh, "$W_{hh}$": W_hh, "$b_h$": b_h, "$W_{hy}$": W_hy}
    nodes, edges = bptt.autograd_graph(loss, names)
    fig = bptt.draw_autograd_graph(nodes, edges)
    try:
        (ax,) = fig.axes
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
        assert len(boxes) == len(nodes)
        labels = [t for t in ax.texts if t.get_text() in {n["label"] for n in nodes}]
        assert len(labels) == len(nodes)
        for text in labels:
            extent = text.get_window_extent(renderer)
            inside = [b for b in boxes if b.x0 <= extent.x0 and extent.x1 <= b.x1
                      and b.y0 <= extent.y0 and extent.y1 <= b.y1]
            assert inside, f"label {text.get_text()!r} spills out of its box"
        # one column per step (plus the head), named above the graph
        headings = sorted(t.get_text() for t in ax.texts if t.get_text().startswith(("step", "head")))
        assert headings == ["head and loss", "step 0", "step 1", "step 2"]
    finally:
        plt.close(fig)


def test_plot_state_gradients_names_the_quantity_on_the_y_axis():
    fig = bptt.plot_state_gradients({"a: $c_t$": torch.tensor([1e-2, 1e-1, 1.0])},
                                    ylabel="norm of dL/dc_t")
    try:
        (ax,) = fig.axes
        assert ax.get_ylabel() == "norm of dL/dc_t"
        assert ax.lines[0].get_linestyle() == "--"  # c_t curves dashed
    finally:
        plt.close(fig)
    with pytest.raises(TypeError, match="ylabel must be"):
        bptt.plot_state_gradients({"a": torch.ones(3)}, ylabel=3)


def _tiny_mnist():
    from book_utils import data

    g = torch.Generator().manual_seed(0)
    return data.MNIST(x_train=torch.rand(40, 28, 28, generator=g), y_train=torch.arange(40) % 10,
                      x_test=torch.rand(20, 28, 28, generator=g), y_test=torch.arange(20) % 10,
                      source="embedded")


def test_train_mnist_rnn_uses_the_recipe_and_an_orthogonal_w_hh():
    model, history = bptt.train_mnist_rnn(_tiny_mnist(), hidden_size=8, epochs=2, batch_size=16,
                                          device="cpu")
    assert model.recurrent.hidden_size == 8 and len(history["epoch"]) == 2
    assert set(bptt.MNIST_RECIPE) == {"hidden_size", "epochs", "lr", "batch_size", "max_shift"}
    torch.manual_seed(0)
    fresh = models.make_classifier("rnn", hidden_size=8)
    nn.init.orthogonal_(fresh.recurrent.weight_hh_l0)
    W = fresh.recurrent.weight_hh_l0.detach()
    torch.testing.assert_close(W @ W.T, torch.eye(8), atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="digits must be"):
        bptt.train_mnist_rnn(torch.zeros(3))
    with pytest.raises(ValueError, match="seed"):
        bptt.train_mnist_rnn(_tiny_mnist(), seed=-1)


# ---------------------------------------------------------------- bad inputs, random state


def test_bptt_cache_checks_its_fields():
    x, y = batch()
    _, cache = bptt.forward(x, y, bptt.classifier_parameters(float64_classifier()))
    fields = dict(x=cache.x, h=cache.h, probs=cache.probs, y=cache.y)
    assert bptt.BPTTCache(**fields).h.shape == (6, 10, 7)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got NoneType"):
        bptt.BPTTCache(**{**fields, "x": None})
    with pytest.raises(TypeError, match="probs must be a floating-point tensor, got dtype torch.int64"):
        bptt.BPTTCache(**{**fields, "probs": cache.probs.long()})
    with pytest.raises(TypeError, match="y must be an integer tensor, got dtype torch.float32"):
        bptt.BPTTCache(**{**fields, "y": cache.y.float()})
    with pytest.raises(ValueError, match=r"h must have shape \(6, 10, hidden\).*got \(6, 9, 7\)"):
        bptt.BPTTCache(**{**fields, "h": cache.h[:, 1:]})
    with pytest.raises(ValueError, match=r"y must have one row per sequence of x \(6\), got shape \(5,\)"):
        bptt.BPTTCache(**{**fields, "y": cache.y[:5]})


def test_forward_refuses_a_dtype_other_than_the_weights():
    params = bptt.classifier_parameters(float64_classifier())
    x, y = batch()
    with pytest.raises(TypeError, match="x must have the dtype of params, torch.float64, got torch.float32"):
        bptt.forward(x.float(), y, params)
    with pytest.raises(TypeError, match="h0 must have the dtype of params, torch.float64, got torch.float32"):
        bptt.forward(x, y, params, h0=torch.zeros(6, 7))
    with pytest.raises(TypeError, match=r"params\['W_hy'\] must have the dtype of params\['W_xh'\]"):
        bptt.forward(x, y, {**params, "W_hy": params["W_hy"].float()})
    with pytest.raises(ValueError, match=r"x must not be empty .* got shape \(0, 9, 5\)"):
        bptt.forward(x[:0], y[:0], params)


def test_step_classifier_checks_the_state_it_is_given():
    model = bptt.make_step_classifier("gru", input_size=2, hidden_size=5, n_classes=3)
    x = torch.randn(2, 8, 2)
    with pytest.raises(TypeError, match="state must be a torch.Tensor, got list"):
        model(x, [[0.0]])
    with pytest.raises(ValueError, match=r"state must have shape \(layers, batch, hidden\), got \(2, 5\)"):
        model(x, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2, 5\) .* got \(1, 3, 5\)"):
        model(x, torch.zeros(1, 3, 5))
    with pytest.raises(TypeError, match="state must have the dtype of the GRU's weights"):
        model(x, torch.zeros(1, 2, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must have the dtype of the GRU's weights"):
        model(x.double())
    lstm = bptt.make_step_classifier("lstm", input_size=2, hidden_size=5, n_classes=3)
    _, state = lstm(x)
    assert lstm(x, state)[0].shape == (2, 8, 3)
    with pytest.raises(TypeError, match=r"state must be None or a tuple \(h, c\)"):
        lstm(x, state[0])


def test_echo_stream_with_lag_zero_echoes_the_current_symbol():
    x, y = bptt.echo_stream(3, 7, lag=0, seed=2)
    assert torch.equal(x.argmax(dim=2), y)


def test_stream_helpers_and_meter_refuse_what_they_cannot_read():
    x, y = bptt.echo_stream(2, 10, lag=1)
    with pytest.raises(TypeError, match="model must be a recurrent layer called like nn.RNN"):
        bptt.stream_accuracy(nn.Linear(2, 2), x, y)
    with pytest.raises(TypeError, match="exclude must be an iterable of tensors .* got NoneType"):
        bptt.SavedTensorMeter(exclude=None)
    with pytest.raises(TypeError, match="a must be a floating-point tensor, got dtype torch.int64"):
        bptt.relative_error(torch.ones(2, dtype=torch.long), torch.ones(2))


def test_train_mnist_rnn_leaves_the_global_random_state_alone():
    from book_utils import data

    g = torch.Generator().manual_seed(0)
    digits = data.MNIST(x_train=torch.rand(32, 28, 28, generator=g), y_train=torch.arange(32) % 10,
                        x_test=torch.rand(8, 28, 28, generator=g), y_test=torch.arange(8) % 10,
                        source="embedded")
    torch.manual_seed(11)
    before = torch.get_rng_state()
    first, _ = bptt.train_mnist_rnn(digits, hidden_size=4, epochs=1, batch_size=4, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(12)
    second, _ = bptt.train_mnist_rnn(digits, hidden_size=4, epochs=1, batch_size=4, device="cpu")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(TypeError, match="verbose must be True or False, got str"):
        bptt.train_mnist_rnn(digits, verbose="yes")


# ---------------------------------------------------------------- the chapter's equation table


def test_chapter_table_quotes_backward_line_for_line():
    """Chapter 4 shows bptt.backward beside its equations: every code line the table quotes
    must be a line of the function, in the order of the function, and cover its loop."""
    import inspect
    import re
    from pathlib import Path

    import nbformat

    notebook = Path(__file__).resolve().parents[1] / "chapters" / "04_bptt.ipynb"
    cells = nbformat.read(notebook, as_version=4).cells
    (table,) = [c.source for c in cells if c.cell_type == "markdown"
                and "| line of `bptt.backward` |" in c.source]
    quoted = [m.group(1) for line in table.splitlines() if line.startswith("| ")
              for m in [re.search(r"\| `([^`]+)` \|\s*$", line)] if m]
    source = [line.split("#")[0].strip() for line in inspect.getsource(bptt.backward).splitlines()]
    positions = [source.index(code) for code in quoted]  # ValueError names a missing line
    assert positions == sorted(positions) and len(quoted) >= 10
    loop = [line for line in source if line.startswith(("delta", "grads[", "for t"))
            and not line.startswith('grads["h"]')]  # the optional record of every delta
    assert set(loop) <= set(quoted), f"lines of the loop missing from the table: {set(loop) - set(quoted)}"


def test_plot_state_gradients_gives_one_colour_per_model_and_moves_a_long_legend():
    curves = {f"{model}: {path}": torch.logspace(-2, 0, 5) for model in ("RNN", "LSTM a", "LSTM b")
              for path in ("h_t", "c_t")}
    fig = bptt.plot_state_gradients(curves)
    try:
        (ax,) = fig.axes
        colours = {line.get_label(): line.get_color() for line in ax.lines}
        assert colours["LSTM a: h_t"] == colours["LSTM a: c_t"] != colours["LSTM b: h_t"]
        assert len(set(colours.values())) == 3
        assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1
    finally:
        plt.close(fig)


def test_train_exploding_rnn_follows_the_recipe_and_records_every_step():
    x, y = bptt.echo_stream(128, 12, lag=2, n_symbols=4, seed=0)
    state = torch.random.get_rng_state()
    model, history = bptt.train_exploding_rnn(x, y, lr=0.01, clip_norm=1.0, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator is untouched
    recipe = bptt.CLIPPING_RECIPE
    steps = recipe["epochs"] * -(-128 // recipe["batch_size"])
    assert len(history["step_loss"]) == len(history["step_grad_norm"]) == steps
    assert model.recurrent.nonlinearity == "relu"
    assert model.recurrent.hidden_size == recipe["hidden_size"]
    again, _ = bptt.train_exploding_rnn(x, y, lr=0.01, clip_norm=None, seed=3, device="cpu")
    assert not torch.equal(again.recurrent.weight_hh_l0, model.recurrent.weight_hh_l0)
    fresh = bptt.train_exploding_rnn(x, y, lr=1e-12, clip_norm=None, seed=3)[0]
    radius = torch.linalg.eigvals(fresh.recurrent.weight_hh_l0.detach()).abs().max().item()
    assert radius == pytest.approx(recipe["radius"], rel=1e-3)  # the starting W_hh, barely moved
    adam, adam_history = bptt.train_exploding_rnn(x, y, lr=1e-3, clip_norm=None, seed=3,
                                                  optimizer="adam")
    assert len(adam_history["step_loss"]) == steps
    assert not torch.equal(adam.recurrent.weight_hh_l0, again.recurrent.weight_hh_l0)


def test_train_exploding_rnn_rejects_bad_arguments():
    x, y = bptt.echo_stream(16, 6, lag=1, n_symbols=4)
    with pytest.raises(ValueError, match=r"x must one-hot code 4 symbols.*got shape \(16, 6, 2\)"):
        bptt.train_exploding_rnn(x[..., :2], y, lr=0.01, clip_norm=1.0)
    with pytest.raises(ValueError, match=r"y must have shape \(16, 6\).*got \(15, 6\)"):
        bptt.train_exploding_rnn(x, y[:15], lr=0.01, clip_norm=1.0)
    with pytest.raises(ValueError, match=r"y must hold symbols in \[0, 3\].*got [4-7]"):
        bptt.train_exploding_rnn(x, y.clamp(min=0) + 4, lr=0.01, clip_norm=1.0)
    bad = y.clone()
    bad[0, 0] = -1  # a target the loss never reads is still refused
    with pytest.raises(ValueError, match=r"got -1"):
        bptt.train_exploding_rnn(x, bad, lr=0.01, clip_norm=1.0)
    with pytest.raises(ValueError, match="lr"):
        bptt.train_exploding_rnn(x, y, lr=0.0, clip_norm=1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        bptt.train_exploding_rnn(x, y, lr=0.01, clip_norm=-1.0)
    with pytest.raises(TypeError, match="seed"):
        bptt.train_exploding_rnn(x, y, lr=0.01, clip_norm=None, seed=1.5)
    with pytest.raises(ValueError, match=r"optimizer.*'sgd'.*'adam'.*'rmsprop'"):
        bptt.train_exploding_rnn(x, y, lr=0.01, clip_norm=None, optimizer="rmsprop")
