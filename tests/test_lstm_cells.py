"""Tests for the scratch LSTM and GRU cells in book_utils.cells.

Equivalence tests copy the scratch weights into the PyTorch module (or back) and
compare outputs, final states and gradients, parameter by parameter.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from book_utils import cells, lstm_gates

B, T, F, H = 3, 5, 4, 6


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(B, T, F)


# ------------------------------------------------------------------ LSTM


def test_lstm_gates_follow_the_equations():
    torch.manual_seed(1)
    x_t, h = torch.randn(B, F), torch.randn(B, H)
    W_x, W_h, b = torch.randn(F, 4 * H), torch.randn(H, 4 * H), torch.randn(4 * H)
    gate = lstm_gates.lstm_gates(x_t, h, W_x, W_h, b)
    assert list(gate) == ["i", "f", "g", "o"]
    cols = {name: slice(k * H, (k + 1) * H) for k, name in enumerate("ifgo")}
    for name, act in (("i", torch.sigmoid), ("f", torch.sigmoid), ("g", torch.tanh), ("o", torch.sigmoid)):
        s = cols[name]
        torch.testing.assert_close(gate[name], act(x_t @ W_x[:, s] + h @ W_h[:, s] + b[s]))
    c_prev = torch.randn(B, H)
    h_t, c_t, same = lstm_gates.lstm_step(x_t, h, c_prev, W_x, W_h, b)
    torch.testing.assert_close(c_t, gate["f"] * c_prev + gate["i"] * gate["g"])
    torch.testing.assert_close(h_t, gate["o"] * torch.tanh(c_t))
    assert same.keys() == gate.keys()


def test_lstm_cell_shapes_and_zero_state():
    cell = lstm_gates.LSTMCell(F, H)
    assert cell.W_x.shape == (F, 4 * H) and cell.W_h.shape == (H, 4 * H) and cell.b.shape == (4 * H,)
    x_t = torch.randn(B, F)
    h, c = cell(x_t)
    h0, c0 = cell(x_t, (torch.zeros(B, H), torch.zeros(B, H)))
    assert h.shape == c.shape == (B, H)
    torch.testing.assert_close(h, h0)
    torch.testing.assert_close(c, c0)
    (h1, c1), gate = cell(x_t, return_gates=True)
    torch.testing.assert_close(h1, h)
    assert set(gate) == {"i", "f", "g", "o"} and all(g.shape == (B, H) for g in gate.values())
    # With a zero initial cell state, c_1 = i * g.
    torch.testing.assert_close(c1, gate["i"] * gate["g"])


def test_lstm_gate_slice_picks_the_forget_block():
    cell = lstm_gates.LSTMCell(F, H)
    assert cell.gate_slice("f") == slice(H, 2 * H)
    assert cell.gate_slice("o") == slice(3 * H, 4 * H)
    with pytest.raises(ValueError, match=r"gate must be one of \('i', 'f', 'g', 'o'\), got 'z'"):
        cell.gate_slice("z")


@pytest.mark.parametrize("target", ["layer", "cell"])
def test_lstm_matches_torch_outputs_states_and_gradients(x, target):
    scratch = lstm_gates.ScratchLSTM(F, H)
    torch_module = nn.LSTM(F, H, batch_first=True) if target == "layer" else nn.LSTMCell(F, H)
    scratch.cell.copy_to(torch_module)
    out, (h_n, c_n) = scratch(x)
    if target == "layer":
        ref_out, (ref_h, ref_c) = torch_module(x)
    else:
        ref_out, (ref_h, ref_c) = cells.unroll(lambda x_t, s: torch_module(x_t, s), x)
        ref_h, ref_c = ref_h.unsqueeze(0), ref_c.unsqueeze(0)
    assert out.shape == (B, T, H) and h_n.shape == c_n.shape == (1, B, H)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_n, ref_h)
    torch.testing.assert_close(c_n, ref_c)

    def loss(o, c):
        return (o ** 2).sum() + c.sum()

    loss(out, c_n).backward()
    loss(ref_out, ref_c).backward()
    sfx = "_l0" if target == "layer" else ""
    torch.testing.assert_close(scratch.cell.W_x.grad, getattr(torch_module, f"weight_ih{sfx}").grad.T)
    torch.testing.assert_close(scratch.cell.W_h.grad, getattr(torch_module, f"weight_hh{sfx}").grad.T)
    torch.testing.assert_close(scratch.cell.b.grad, getattr(torch_module, f"bias_ih{sfx}").grad)
    torch.testing.assert_close(scratch.cell.b.grad, getattr(torch_module, f"bias_hh{sfx}").grad)


def test_lstm_copy_from_sums_the_two_biases_and_round_trips(x):
    torch.manual_seed(2)
    reference = nn.LSTM(F, H, batch_first=True)
    cell = lstm_gates.LSTMCell(F, H)
    cell.copy_from(reference)
    torch.testing.assert_close(cell.b, reference.bias_ih_l0 + reference.bias_hh_l0)
    torch.testing.assert_close(cell.W_x, reference.weight_ih_l0.T)
    layer = lstm_gates.ScratchLSTM(F, H)
    layer.cell = cell
    torch.testing.assert_close(layer(x)[0], reference(x)[0])


def test_scratch_lstm_accepts_an_initial_state(x):
    scratch = lstm_gates.ScratchLSTM(F, H)
    reference = nn.LSTM(F, H, batch_first=True)
    scratch.cell.copy_to(reference)
    h0, c0 = torch.randn(1, B, H), torch.randn(1, B, H)
    out, (h_n, c_n) = scratch(x, (h0, c0))
    ref_out, (ref_h, ref_c) = reference(x, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c_n, ref_c)


def test_lstm_cell_errors():
    cell = lstm_gates.LSTMCell(F, H)
    with pytest.raises(TypeError, match="hidden_size must be an int, got float"):
        lstm_gates.LSTMCell(F, 2.0)
    with pytest.raises(ValueError, match="input_size must be >= 1, got 0"):
        lstm_gates.LSTMCell(0, H)
    with pytest.raises(ValueError, match=r"x_t must have shape \(batch, input_size\), got \(3, 5, 4\)"):
        cell(torch.randn(B, T, F))
    with pytest.raises(ValueError, match=r"x_t must have 4 features, got shape \(3, 7\)"):
        cell(torch.randn(B, 7))
    with pytest.raises(TypeError, match="state must be a tuple \\(h, c\\) or None, got Tensor"):
        cell(torch.randn(B, F), torch.zeros(B, H))
    with pytest.raises(ValueError, match=r"c must have shape \(3, 6\), got \(3, 5\)"):
        cell(torch.randn(B, F), (torch.zeros(B, H), torch.zeros(B, 5)))
    with pytest.raises(TypeError, match="x_t must be a floating-point tensor, got dtype torch.int64"):
        cell(torch.ones(B, F, dtype=torch.long))


def test_lstm_copy_errors():
    cell = lstm_gates.LSTMCell(F, H)
    with pytest.raises(TypeError, match="module must be LSTM or LSTMCell, got GRU"):
        cell.copy_to(nn.GRU(F, H))
    with pytest.raises(ValueError, match="single-layer, one-directional LSTM .* num_layers=2"):
        cell.copy_to(nn.LSTM(F, H, num_layers=2))
    with pytest.raises(ValueError, match="proj_size=2"):
        cell.copy_from(nn.LSTM(F, H, proj_size=2))
    with pytest.raises(ValueError, match="module must have bias=True, got bias=False"):
        cell.copy_to(nn.LSTMCell(F, H, bias=False))
    with pytest.raises(ValueError, match="module must have input_size=4, hidden_size=6, got input_size=4, hidden_size=8"):
        cell.copy_from(nn.LSTMCell(F, 8))


def test_scratch_lstm_state_errors(x):
    layer = lstm_gates.ScratchLSTM(F, H)
    with pytest.raises(TypeError, match=r"state must be a tuple \(h0, c0\) or None, got Tensor"):
        layer(x, torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, batch, hidden\), got \(3, 6\)"):
        layer(x, (torch.zeros(B, H), torch.zeros(B, H)))
    with pytest.raises(ValueError, match=r"c0 must have shape \(1, batch, hidden\), got \(2, 3, 6\)"):
        layer(x, (torch.zeros(1, B, H), torch.zeros(2, B, H)))


# ------------------------------------------------------------------- GRU


def test_gru_gates_follow_the_equations():
    torch.manual_seed(3)
    x_t, h = torch.randn(B, F), torch.randn(B, H)
    W_x, W_h = torch.randn(F, 3 * H), torch.randn(H, 3 * H)
    b_x, b_h = torch.randn(3 * H), torch.randn(3 * H)
    gate = lstm_gates.gru_gates(x_t, h, W_x, W_h, b_x, b_h)
    r, z, n = (slice(k * H, (k + 1) * H) for k in range(3))
    torch.testing.assert_close(gate["r"], torch.sigmoid(x_t @ W_x[:, r] + b_x[r] + h @ W_h[:, r] + b_h[r]))
    torch.testing.assert_close(gate["z"], torch.sigmoid(x_t @ W_x[:, z] + b_x[z] + h @ W_h[:, z] + b_h[z]))
    torch.testing.assert_close(
        gate["n"], torch.tanh(x_t @ W_x[:, n] + b_x[n] + gate["r"] * (h @ W_h[:, n] + b_h[n])))
    h_t, _ = lstm_gates.gru_step(x_t, h, W_x, W_h, b_x, b_h)
    torch.testing.assert_close(h_t, (1 - gate["z"]) * gate["n"] + gate["z"] * h)


@pytest.mark.parametrize("target", ["layer", "cell"])
def test_gru_matches_torch_outputs_states_and_gradients(x, target):
    scratch = lstm_gates.ScratchGRU(F, H)
    torch_module = nn.GRU(F, H, batch_first=True) if target == "layer" else nn.GRUCell(F, H)
    with torch.no_grad():  # distinct biases, so swapping b_x and b_h would be caught
        scratch.cell.b_h.add_(torch.linspace(-1, 1, 3 * H))
    scratch.cell.copy_to(torch_module)
    out, h_n = scratch(x)
    if target == "layer":
        ref_out, ref_h = torch_module(x)
    else:
        ref_out, ref_h = cells.unroll(torch_module, x)
        ref_h = ref_h.unsqueeze(0)
    assert out.shape == (B, T, H) and h_n.shape == (1, B, H)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_n, ref_h)
    (out ** 2).sum().backward()
    (ref_out ** 2).sum().backward()
    sfx = "_l0" if target == "layer" else ""
    pairs = (("W_x", "weight_ih", True), ("W_h", "weight_hh", True),
             ("b_x", "bias_ih", False), ("b_h", "bias_hh", False))
    for ours, theirs, transposed in pairs:
        grad = getattr(torch_module, f"{theirs}{sfx}").grad
        torch.testing.assert_close(getattr(scratch.cell, ours).grad, grad.T if transposed else grad)


def test_gru_copy_from_round_trips(x):
    reference = nn.GRU(F, H, batch_first=True)
    layer = lstm_gates.ScratchGRU(F, H)
    layer.cell.copy_from(reference)
    torch.testing.assert_close(layer.cell.b_h, reference.bias_hh_l0)
    h0 = torch.randn(1, B, H)
    torch.testing.assert_close(layer(x, h0)[0], reference(x, h0)[0])


def test_gru_cell_return_gates_and_errors():
    cell = lstm_gates.GRUCell(F, H)
    h, gate = cell(torch.randn(B, F), return_gates=True)
    assert h.shape == (B, H) and list(gate) == ["r", "z", "n"]
    assert cell.gate_slice("n") == slice(2 * H, 3 * H)
    with pytest.raises(ValueError, match=r"h_prev must have shape \(3, 6\), got \(3, 2\)"):
        cell(torch.randn(B, F), torch.zeros(B, 2))
    with pytest.raises(TypeError, match="module must be GRU or GRUCell, got LSTM"):
        cell.copy_to(nn.LSTM(F, H))
    with pytest.raises(ValueError, match="bidirectional=True"):
        cell.copy_from(nn.GRU(F, H, bidirectional=True))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, batch, hidden\), got \(3, 6\)"):
        lstm_gates.ScratchGRU(F, H)(torch.randn(B, T, F), torch.zeros(B, H))


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("cell_type", [lstm_gates.LSTMCell, lstm_gates.GRUCell])
def test_cells_refuse_a_dtype_an_empty_batch_and_a_non_bool_return_gates(cell_type):
    cell = cell_type(F, H)
    with pytest.raises(TypeError, match=f"x_t must have the dtype of the {cell_type.__name__}'s "
                                        "weights, torch.float32, got torch.float64"):
        cell(torch.randn(B, F, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x_t must hold at least one example, got shape \(0, 4\)"):
        cell(torch.randn(0, F))
    with pytest.raises(TypeError, match="return_gates must be True or False, got int"):
        cell(torch.randn(B, F), return_gates=1)
    state = torch.zeros(B, H, dtype=torch.float64)
    state = (state, state) if cell_type is lstm_gates.LSTMCell else state
    with pytest.raises(TypeError, match="must have the dtype of .* got torch.float64"):
        cell(torch.randn(B, F), state)
    double = cell_type(F, H).double()  # a float64 cell reads float64 inputs
    _, gates = double(torch.randn(B, F, dtype=torch.float64), return_gates=True)
    assert all(g.dtype == torch.float64 for g in gates.values())
