"""The from-scratch RNN cell computes exactly what torch.nn computes."""

import numpy as np
import pytest
import torch
from torch import nn

from book_utils import cells


def make_pair(features=4, hidden=6, nonlinearity="tanh", seed=0):
    torch.manual_seed(seed)
    scratch = cells.RNNCell(features, hidden, nonlinearity).double()
    reference = nn.RNNCell(features, hidden, nonlinearity=nonlinearity).double()
    scratch.copy_to(reference)
    return scratch, reference


def test_rnn_step_is_equation_2():
    x, h = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -0.5, 0.0]])
    W_xh = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    W_hh = torch.eye(3)
    b_h = torch.tensor([0.1, 0.2, 0.3])
    expected = torch.tanh(torch.tensor([[1.0 + 0.5 + 0.1, 2.0 - 0.5 + 0.2, -1.0 + 1.0 + 0.3]]))
    torch.testing.assert_close(cells.rnn_step(x, h, W_xh, W_hh, b_h), expected)


def test_parameter_names_and_shapes():
    cell = cells.RNNCell(28, 128)
    shapes = {name: tuple(p.shape) for name, p in cell.named_parameters()}
    assert shapes == {"W_xh": (28, 128), "W_hh": (128, 128), "b_h": (128,)}


def test_initialisation_matches_torch_range():
    cell = cells.RNNCell(10, 100)
    bound = 1 / 100 ** 0.5
    for p in cell.parameters():
        assert p.abs().max() <= bound


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_cell_matches_nn_rnncell_outputs_and_gradients(nonlinearity):
    scratch, reference = make_pair(nonlinearity=nonlinearity)
    x = torch.randn(5, 7, 4, dtype=torch.float64)
    out_s, h_s = cells.unroll(scratch, x)
    out_r, h_r = cells.unroll(reference, x)
    torch.testing.assert_close(out_s, out_r)
    torch.testing.assert_close(h_s, h_r)
    (out_s.sin().sum()).backward()
    (out_r.sin().sum()).backward()
    torch.testing.assert_close(scratch.W_xh.grad, reference.weight_ih.grad.T)
    torch.testing.assert_close(scratch.W_hh.grad, reference.weight_hh.grad.T)
    torch.testing.assert_close(scratch.b_h.grad, reference.bias_ih.grad)
    torch.testing.assert_close(scratch.b_h.grad, reference.bias_hh.grad)


def test_scratch_layer_matches_nn_rnn_with_initial_state():
    torch.manual_seed(1)
    layer = cells.ScratchRNN(3, 5).double()
    reference = nn.RNN(3, 5, batch_first=True).double()
    layer.cell.copy_to(reference)
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 4, 5, dtype=torch.float64)
    out_s, hn_s = layer(x, h0)
    out_r, hn_r = reference(x, h0)
    torch.testing.assert_close(out_s, out_r)
    torch.testing.assert_close(hn_s, hn_r)
    assert hn_s.shape == (1, 4, 5)
    grad_s, = torch.autograd.grad(out_s.sum(), x)
    grad_r, = torch.autograd.grad(out_r.sum(), x)
    torch.testing.assert_close(grad_s, grad_r)


def test_copy_from_round_trip_sums_the_two_biases():
    torch.manual_seed(2)
    reference = nn.RNN(3, 4)
    cell = cells.RNNCell(3, 4)
    cell.copy_from(reference)
    torch.testing.assert_close(cell.b_h, reference.bias_ih_l0 + reference.bias_hh_l0)
    torch.testing.assert_close(cell.W_hh, reference.weight_hh_l0.T)


def test_gradcheck_in_float64():
    cell = cells.RNNCell(3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: cell(x, h), (x, h))


def test_unroll_zero_initial_state_and_tuple_states():
    cell = cells.RNNCell(2, 3)
    x = torch.randn(4, 5, 2)
    outputs, h = cells.unroll(cell, x)
    assert outputs.shape == (4, 5, 3)
    torch.testing.assert_close(outputs[:, 0], cell(x[:, 0], torch.zeros(4, 3)))
    torch.testing.assert_close(outputs[:, -1], h)
    lstm = nn.LSTMCell(2, 3)
    outputs, (h, c) = cells.unroll(lambda x_t, s: lstm(x_t, s), x)
    assert outputs.shape == (4, 5, 3) and c.shape == (4, 3)
    torch.testing.assert_close(outputs[:, -1], h)


# --- bad input gets a clear error --------------------------------------------------------------

@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0, 4), ValueError, "input_size must be >= 1, got 0"),
        ((3, 2.5), TypeError, "hidden_size must be an int, got float"),
        ((3, 4, "sigmoid"), ValueError, r"nonlinearity must be one of \('tanh', 'relu'\), got 'sigmoid'"),
    ],
)
def test_rnncell_constructor_errors(args, error, message):
    with pytest.raises(error, match=message):
        cells.RNNCell(*args)


def test_forward_errors():
    cell = cells.RNNCell(3, 4)
    with pytest.raises(TypeError, match="x_t must be a torch.Tensor, got list"):
        cell([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"x_t must have shape \(batch, input_size\), got \(3,\)"):
        cell(torch.zeros(3))
    with pytest.raises(ValueError, match=r"x_t must have 3 features, got shape \(2, 5\)"):
        cell(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="x_t must be a floating-point tensor, got dtype torch.int64"):
        cell(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"h_prev must have shape \(2, 4\) to match x_t \(2, 3\), "
                                         r"got \(2, 5\)"):
        cell(torch.zeros(2, 3), torch.zeros(2, 5))


def test_copy_errors():
    cell = cells.RNNCell(3, 4)
    with pytest.raises(TypeError, match="module must be RNN or RNNCell, got LSTM"):
        cell.copy_to(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="single-layer, one-directional nn.RNN, got num_layers=2"):
        cell.copy_to(nn.RNN(3, 4, num_layers=2))
    with pytest.raises(ValueError, match="input_size=3, hidden_size=4, got input_size=3, hidden_size=5"):
        cell.copy_to(nn.RNNCell(3, 5))
    with pytest.raises(ValueError, match="nonlinearity='tanh', got 'relu'"):
        cell.copy_from(nn.RNNCell(3, 4, nonlinearity="relu"))
    with pytest.raises(ValueError, match="bias=True, got bias=False"):
        cell.copy_to(nn.RNNCell(3, 4, bias=False))


def test_unroll_and_layer_errors():
    cell = cells.RNNCell(3, 4)
    with pytest.raises(TypeError, match="cell must be callable, got int"):
        cells.unroll(3, torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(2, 3\)"):
        cells.unroll(cell, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="x must have at least one time step"):
        cells.unroll(cell, torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, batch, hidden\), got \(2, 4\)"):
        cells.ScratchRNN(3, 4)(torch.zeros(2, 5, 3), torch.zeros(2, 4))


def test_float64_input_to_a_float32_cell_names_both_dtypes():
    cell, layer = cells.RNNCell(3, 4), cells.ScratchRNN(3, 4)
    with pytest.raises(TypeError, match=r"x_t must have the dtype of the RNNCell's weights, "
                                        r"torch.float32, got torch.float64"):
        cell(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="h_prev must have the dtype .* torch.float32, got torch.float64"):
        cell(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must have the dtype .* torch.float32, got torch.float64"):
        layer(torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="h0 must have the dtype .* torch.float64, got torch.float32"):
        layer.double()(torch.zeros(2, 5, 3, dtype=torch.float64), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="state must have the dtype of x, torch.float32, got torch.float64"):
        cells.unroll(cell, torch.zeros(2, 5, 3), torch.zeros(2, 4, dtype=torch.float64))


def test_numpy_integer_sizes_work():
    cell = cells.RNNCell(np.int64(3), np.int64(4))
    assert cell(torch.zeros(2, 3)).shape == (2, 4) and type(cell.hidden_size) is int
    assert cells.ScratchRNN(np.int32(3), np.int64(4))(torch.zeros(2, 5, 3))[0].shape == (2, 5, 4)


def test_wiring_errors():
    with pytest.raises(TypeError, match="cell must be Module, got str"):
        cells.CellLayer("rnn")
    with pytest.raises(TypeError, match="cell must have an int hidden_size, as RNNCell does, got Linear"):
        cells.CellLayer(nn.Linear(3, 4))
    with pytest.raises(TypeError, match=r"cell must be callable as cell\(x_t, state\), got Linear"):
        cells.unroll(nn.Linear(3, 4), torch.zeros(2, 5, 3))
    with pytest.raises(TypeError, match="state must be a tensor, a tuple of tensors or None, got list"):
        cells.unroll(cells.RNNCell(3, 4), torch.zeros(2, 5, 3), [torch.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"state must have the batch size of x, 2, got shape \(3, 4\)"):
        cells.state_gradient_norms(cells.RNNCell(3, 4), torch.zeros(2, 5, 3), torch.sum,
                                   torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 2, 4\) to match x"):
        cells.ScratchRNN(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 3, 4))
    with pytest.raises(TypeError, match="h0 must be a floating-point tensor, got dtype torch.int64"):
        cells.one_layer_state("h0", torch.zeros(1, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="input_size must be >= 1, got 0"):
        cells.torch_parameters(nn.RNN(3, 4), input_size=0)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar tensor, got shape \(2, 5, 4\)"):
        cells.state_gradient_norms(cells.RNNCell(3, 4), torch.zeros(2, 5, 3), lambda out: out)
