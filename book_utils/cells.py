"""Recurrent cells written from scratch, parameter for parameter as in the text.

A cell computes one time step. ``unroll`` runs any cell over a whole sequence.
The names follow Chapter 1:

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)        (Equation 2)

where ``W_xh`` (the text's U) maps inputs to the state, ``W_hh`` (the text's W)
carries the state from one step to the next, and the classifier head (V) lives
in :mod:`book_utils.models`. Rows are examples, as in ``X_t W``: the weights are
stored as (in, out), the transpose of PyTorch's (out, in).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ._checks import check_choice, check_int, check_tensor, check_type

NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def rnn_step(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    W_xh: torch.Tensor,
    W_hh: torch.Tensor,
    b_h: torch.Tensor,
    phi: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> torch.Tensor:
    """h_t = phi(x_t W_xh + h_prev W_hh + b_h)   (Equation 2)"""
    return phi(x_t @ W_xh + h_prev @ W_hh + b_h)


class RNNCell(nn.Module):
    """One layer of recurrent neurons, one time step at a time.

    ``forward(x_t, h_prev)`` takes ``x_t`` of shape (batch, input_size) and the
    previous state ``h_prev`` of shape (batch, hidden_size), or ``None`` for a
    zero state, and returns ``h_t`` of shape (batch, hidden_size).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b_h = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The same uniform(-1/sqrt(H), 1/sqrt(H)) initialisation as torch.nn.RNN.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("x_t", x_t, dim=2, floating=True, layout="(batch, input_size)")
        if x_t.shape[1] != self.input_size:
            raise ValueError(
                f"x_t must have {self.input_size} features, got shape {tuple(x_t.shape)}"
            )
        if h_prev is None:
            h_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            check_tensor("h_prev", h_prev, dim=2, floating=True, layout="(batch, hidden_size)")
            if h_prev.shape != (x_t.shape[0], self.hidden_size):
                raise ValueError(
                    f"h_prev must have shape {(x_t.shape[0], self.hidden_size)}, "
                    f"got {tuple(h_prev.shape)}"
                )
        phi = NONLINEARITIES[self.nonlinearity]
        return rnn_step(x_t, h_prev, self.W_xh, self.W_hh, self.b_h, phi)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"

    @torch.no_grad()
    def copy_to(self, module: nn.RNN | nn.RNNCell) -> None:
        """Copy these weights into a single-layer ``nn.RNN`` or an ``nn.RNNCell``.

        PyTorch keeps two biases, ``b_ih + b_hh``; we put all of ``b_h`` in the
        first and zero the second, so both compute the same function.
        """
        ih, hh, b_ih, b_hh = _torch_rnn_parameters(module, self)
        ih.copy_(self.W_xh.T)
        hh.copy_(self.W_hh.T)
        b_ih.copy_(self.b_h)
        b_hh.zero_()

    @torch.no_grad()
    def copy_from(self, module: nn.RNN | nn.RNNCell) -> None:
        """Load the weights of a single-layer ``nn.RNN`` or an ``nn.RNNCell``."""
        ih, hh, b_ih, b_hh = _torch_rnn_parameters(module, self)
        self.W_xh.copy_(ih.T)
        self.W_hh.copy_(hh.T)
        self.b_h.copy_(b_ih + b_hh)


def _torch_rnn_parameters(
    module: nn.RNN | nn.RNNCell, cell: RNNCell
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    check_type("module", module, (nn.RNN, nn.RNNCell))
    if isinstance(module, nn.RNN):
        if module.num_layers != 1 or module.bidirectional:
            raise ValueError(
                "module must be a single-layer, one-directional nn.RNN, got "
                f"num_layers={module.num_layers}, bidirectional={module.bidirectional}"
            )
        suffix = "_l0"
    else:
        suffix = ""
    if not module.bias:
        raise ValueError("module must have bias=True, got bias=False")
    if (module.input_size, module.hidden_size) != (cell.input_size, cell.hidden_size):
        raise ValueError(
            f"module must have input_size={cell.input_size}, hidden_size={cell.hidden_size}, "
            f"got input_size={module.input_size}, hidden_size={module.hidden_size}"
        )
    if module.nonlinearity != cell.nonlinearity:
        raise ValueError(
            f"module must use nonlinearity={cell.nonlinearity!r}, got {module.nonlinearity!r}"
        )
    return tuple(  # type: ignore[return-value]
        getattr(module, f"{name}{suffix}")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


def unroll(
    cell: Callable, x: torch.Tensor, state: torch.Tensor | tuple | None = None
) -> tuple[torch.Tensor, torch.Tensor | tuple]:
    """Run ``cell`` over every step of ``x`` (batch, time, features).

    The state may be a tensor (an RNN's ``h``) or a tuple whose first entry is
    the output (an LSTM's ``(h, c)``). Returns the per-step outputs, shape
    (batch, time, hidden), and the final state.
    """
    if not callable(cell):
        raise TypeError(f"cell must be callable, got {type(cell).__name__}")
    check_tensor("x", x, dim=3, layout="(batch, time, features)")
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(x.shape)}")
    outputs = []
    for x_t in x.unbind(dim=1):
        state = cell(x_t, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, dim=1), state


class ScratchRNN(nn.Module):
    """A recurrent layer built from :class:`RNNCell` and :func:`unroll`.

    Called like ``nn.RNN(input_size, hidden_size, batch_first=True)``: it takes
    ``x`` of shape (batch, time, features) and an optional ``h0`` of shape
    (1, batch, hidden), and returns ``(output, h_n)`` with output of shape
    (batch, time, hidden) and ``h_n`` of shape (1, batch, hidden).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size, nonlinearity)
        self.hidden_size = hidden_size

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if h0 is not None:
            check_tensor("h0", h0, dim=3, layout="(1, batch, hidden)")
            h0 = h0[0]
        output, h_n = unroll(self.cell, x, h0)
        return output, h_n.unsqueeze(0)
