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


# --- chapter 5: LSTM and GRU cells ---

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")


def lstm_gates(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    W_x: torch.Tensor,
    W_h: torch.Tensor,
    b: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The four gate activations of an LSTM step, each of shape (batch, hidden).

    One fused product computes all four pre-activations,
    ``x_t W_x + h_prev W_h + b``, whose column blocks are i, f, g, o:

        i_t = sigmoid(x_t W_xi + h_prev W_hi + b_i)   input (write) gate
        f_t = sigmoid(x_t W_xf + h_prev W_hf + b_f)   forget (keep) gate
        g_t = tanh(x_t W_xg + h_prev W_hg + b_g)      candidate values
        o_t = sigmoid(x_t W_xo + h_prev W_ho + b_o)   output (read) gate
    """
    z_i, z_f, z_g, z_o = (x_t @ W_x + h_prev @ W_h + b).chunk(4, dim=-1)
    return {"i": torch.sigmoid(z_i), "f": torch.sigmoid(z_f), "g": torch.tanh(z_g),
            "o": torch.sigmoid(z_o)}


def lstm_step(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    c_prev: torch.Tensor,
    W_x: torch.Tensor,
    W_h: torch.Tensor,
    b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """c_t = f_t * c_prev + i_t * g_t,  h_t = o_t * tanh(c_t); returns (h_t, c_t, gates)"""
    gate = lstm_gates(x_t, h_prev, W_x, W_h, b)
    c_t = gate["f"] * c_prev + gate["i"] * gate["g"]
    h_t = gate["o"] * torch.tanh(c_t)
    return h_t, c_t, gate


def gru_gates(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    W_x: torch.Tensor,
    W_h: torch.Tensor,
    b_x: torch.Tensor,
    b_h: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The GRU's reset gate r, update gate z and candidate n, each (batch, hidden).

        r_t = sigmoid(x_t W_xr + b_xr + h_prev W_hr + b_hr)
        z_t = sigmoid(x_t W_xz + b_xz + h_prev W_hz + b_hz)
        n_t = tanh(x_t W_xn + b_xn + r_t * (h_prev W_hn + b_hn))

    The reset gate scales the recurrent part of the candidate, bias included,
    which is why a GRU keeps two bias vectors.
    """
    x_r, x_z, x_n = (x_t @ W_x + b_x).chunk(3, dim=-1)
    h_r, h_z, h_n = (h_prev @ W_h + b_h).chunk(3, dim=-1)
    r_t = torch.sigmoid(x_r + h_r)
    z_t = torch.sigmoid(x_z + h_z)
    n_t = torch.tanh(x_n + r_t * h_n)
    return {"r": r_t, "z": z_t, "n": n_t}


def gru_step(
    x_t: torch.Tensor,
    h_prev: torch.Tensor,
    W_x: torch.Tensor,
    W_h: torch.Tensor,
    b_x: torch.Tensor,
    b_h: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """h_t = (1 - z_t) * n_t + z_t * h_prev; returns (h_t, gates)"""
    gate = gru_gates(x_t, h_prev, W_x, W_h, b_x, b_h)
    return (1 - gate["z"]) * gate["n"] + gate["z"] * h_prev, gate


def _check_step_input(cell: nn.Module, x_t: torch.Tensor) -> None:
    check_tensor("x_t", x_t, dim=2, floating=True, layout="(batch, input_size)")
    if x_t.shape[1] != cell.input_size:
        raise ValueError(f"x_t must have {cell.input_size} features, got shape {tuple(x_t.shape)}")


def _check_state(name: str, value: torch.Tensor, batch: int, hidden: int) -> None:
    check_tensor(name, value, dim=2, floating=True, layout="(batch, hidden_size)")
    if value.shape != (batch, hidden):
        raise ValueError(f"{name} must have shape {(batch, hidden)}, got {tuple(value.shape)}")


class _GatedCell(nn.Module):
    """Shared parts of the LSTM and GRU cells: sizes, initialisation, gate views."""

    gate_names: tuple[str, ...] = ()

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        n = len(self.gate_names) * hidden_size
        self.W_x = nn.Parameter(torch.empty(input_size, n))
        self.W_h = nn.Parameter(torch.empty(hidden_size, n))

    def reset_parameters(self) -> None:
        # uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as in torch.nn.LSTM and nn.GRU.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def gate_slice(self, gate: str) -> slice:
        """The columns of ``W_x``, ``W_h`` and the biases that belong to ``gate``."""
        k = self.gate_names.index(check_choice("gate", gate, self.gate_names))
        return slice(k * self.hidden_size, (k + 1) * self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"

    def _torch_parameters(self, module: nn.Module, kinds: tuple[type, type]) -> list[torch.Tensor]:
        check_type("module", module, kinds)
        suffix = ""
        if isinstance(module, kinds[0]):
            projection = getattr(module, "proj_size", 0)
            if module.num_layers != 1 or module.bidirectional or projection:
                raise ValueError(
                    f"module must be a single-layer, one-directional {kinds[0].__name__} without "
                    f"projection, got num_layers={module.num_layers}, "
                    f"bidirectional={module.bidirectional}, proj_size={projection}"
                )
            suffix = "_l0"
        if not module.bias:
            raise ValueError("module must have bias=True, got bias=False")
        if (module.input_size, module.hidden_size) != (self.input_size, self.hidden_size):
            raise ValueError(
                f"module must have input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"got input_size={module.input_size}, hidden_size={module.hidden_size}"
            )
        return [getattr(module, f"{name}{suffix}")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


class LSTMCell(_GatedCell):
    """An LSTM cell, one time step at a time, with its gates by name.

    Parameters, stored as (in, out) like :class:`RNNCell`, with the column
    blocks of the four gates side by side in the order i, f, g, o:
    ``W_x`` (input_size, 4 H), ``W_h`` (H, 4 H) and one bias ``b`` (4 H).
    ``gate_slice("f")`` picks the forget gate's columns, e.g. ``cell.b[cell.gate_slice("f")]``.

    ``forward(x_t, state)`` takes ``x_t`` (batch, input_size) and ``state = (h, c)``,
    each (batch, H), or ``None`` for zeros. It returns the new ``(h, c)``; with
    ``return_gates=True`` it returns ``((h, c), gates)`` where ``gates`` maps
    "i", "f", "g", "o" to their activations.
    """

    gate_names = LSTM_GATES

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.b = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def forward(
        self,
        x_t: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        return_gates: bool = False,
    ):
        _check_step_input(self, x_t)
        if state is None:
            h_prev = c_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            if not isinstance(state, tuple) or len(state) != 2:
                raise TypeError(f"state must be a tuple (h, c) or None, got {type(state).__name__}")
            h_prev, c_prev = state
            _check_state("h", h_prev, x_t.shape[0], self.hidden_size)
            _check_state("c", c_prev, x_t.shape[0], self.hidden_size)
        h_t, c_t, gate = lstm_step(x_t, h_prev, c_prev, self.W_x, self.W_h, self.b)
        return ((h_t, c_t), gate) if return_gates else (h_t, c_t)

    @torch.no_grad()
    def copy_to(self, module: nn.LSTM | nn.LSTMCell) -> None:
        """Copy these weights into a single-layer ``nn.LSTM`` or an ``nn.LSTMCell``.

        PyTorch stores the gates as row blocks in the same order i, f, g, o, and
        splits the bias in two; ``b`` goes into ``bias_ih`` and ``bias_hh`` is zeroed.
        """
        ih, hh, b_ih, b_hh = self._torch_parameters(module, (nn.LSTM, nn.LSTMCell))
        ih.copy_(self.W_x.T)
        hh.copy_(self.W_h.T)
        b_ih.copy_(self.b)
        b_hh.zero_()

    @torch.no_grad()
    def copy_from(self, module: nn.LSTM | nn.LSTMCell) -> None:
        """Load the weights of a single-layer ``nn.LSTM`` or an ``nn.LSTMCell``."""
        ih, hh, b_ih, b_hh = self._torch_parameters(module, (nn.LSTM, nn.LSTMCell))
        self.W_x.copy_(ih.T)
        self.W_h.copy_(hh.T)
        self.b.copy_(b_ih + b_hh)


class GRUCell(_GatedCell):
    """A GRU cell, one time step at a time, with its gates by name.

    Parameters, stored as (in, out), column blocks in the order r, z, n (as in
    PyTorch): ``W_x`` (input_size, 3 H), ``W_h`` (H, 3 H) and two biases ``b_x``
    and ``b_h`` (3 H each). The reset gate multiplies ``h W_hn + b_hn``, so the
    two biases of the candidate cannot be merged into one.

    ``forward(x_t, h_prev)`` returns ``h_t`` (batch, H); with ``return_gates=True``
    it returns ``(h_t, gates)`` where ``gates`` maps "r", "z", "n" to activations.
    """

    gate_names = GRU_GATES

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.b_x = nn.Parameter(torch.empty(3 * hidden_size))
        self.b_h = nn.Parameter(torch.empty(3 * hidden_size))
        self.reset_parameters()

    def forward(
        self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None, *, return_gates: bool = False
    ):
        _check_step_input(self, x_t)
        if h_prev is None:
            h_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            _check_state("h_prev", h_prev, x_t.shape[0], self.hidden_size)
        h_t, gate = gru_step(x_t, h_prev, self.W_x, self.W_h, self.b_x, self.b_h)
        return (h_t, gate) if return_gates else h_t

    @torch.no_grad()
    def copy_to(self, module: nn.GRU | nn.GRUCell) -> None:
        """Copy these weights into a single-layer ``nn.GRU`` or an ``nn.GRUCell``."""
        ih, hh, b_ih, b_hh = self._torch_parameters(module, (nn.GRU, nn.GRUCell))
        ih.copy_(self.W_x.T)
        hh.copy_(self.W_h.T)
        b_ih.copy_(self.b_x)
        b_hh.copy_(self.b_h)

    @torch.no_grad()
    def copy_from(self, module: nn.GRU | nn.GRUCell) -> None:
        """Load the weights of a single-layer ``nn.GRU`` or an ``nn.GRUCell``."""
        ih, hh, b_ih, b_hh = self._torch_parameters(module, (nn.GRU, nn.GRUCell))
        self.W_x.copy_(ih.T)
        self.W_h.copy_(hh.T)
        self.b_x.copy_(b_ih)
        self.b_h.copy_(b_hh)


def _layer_state(name: str, value: torch.Tensor | None) -> torch.Tensor | None:
    if value is None:
        return None
    check_tensor(name, value, dim=3, layout="(1, batch, hidden)")
    if value.shape[0] != 1:
        raise ValueError(f"{name} must have shape (1, batch, hidden), got {tuple(value.shape)}")
    return value[0]


class ScratchLSTM(nn.Module):
    """A recurrent layer built from :class:`LSTMCell`, called like
    ``nn.LSTM(input_size, hidden_size, batch_first=True)``.

    Takes ``x`` (batch, time, features) and an optional ``(h0, c0)``, each
    (1, batch, hidden); returns ``(output, (h_n, c_n))`` with output
    (batch, time, hidden) and h_n, c_n of shape (1, batch, hidden).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = LSTMCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is not None:
            if not isinstance(state, tuple) or len(state) != 2:
                raise TypeError(f"state must be a tuple (h0, c0) or None, got {type(state).__name__}")
            state = (_layer_state("h0", state[0]), _layer_state("c0", state[1]))
        output, (h_n, c_n) = unroll(self.cell, x, state)
        return output, (h_n.unsqueeze(0), c_n.unsqueeze(0))


class ScratchGRU(nn.Module):
    """A recurrent layer built from :class:`GRUCell`, called like
    ``nn.GRU(input_size, hidden_size, batch_first=True)``: ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = GRUCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output, h_n = unroll(self.cell, x, _layer_state("h0", h0))
        return output, h_n.unsqueeze(0)
