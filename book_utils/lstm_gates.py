"""Chapter 5, LSTM gates: the LSTM and GRU cells from scratch, and tools to look inside them.

The LSTM and GRU helpers accept PyTorch's layers (``nn.LSTM``, ``nn.LSTMCell``,
``nn.GRU``, ``nn.GRUCell``) and the book's scratch versions alike, so a model
trained with the fast PyTorch layer can be opened up with the scratch cell.

The cells (:class:`LSTMCell`, :class:`GRUCell`, the layers :class:`ScratchLSTM`
and :class:`ScratchGRU`) match ``nn.LSTM`` and ``nn.GRU`` exactly; weights move to
and from PyTorch through :func:`book_utils.cells.torch_parameters`.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from . import training
from ._checks import (
    check_bool, check_choice, check_device, check_float, check_int, check_step, check_tensor,
    check_type, check_val_loader, checked_by,
)
from .cells import CellLayer, chrono_time_scales, gate_rows, one_layer_state, torch_parameters, unroll
from .data import MNIST, adding_problem, make_loader, mnist_loader
from .models import SequenceRegressor, make_classifier
from .plots import DIAGRAM, diagram_axes, draw_arrow, draw_box
from .session import pick_device


LSTM_GATES = ("i", "f", "g", "o")


GRU_GATES = ("r", "z", "n")


def _check_lstm_gates(x_t, h_prev, W_x, W_h, b) -> None:
    check_step(("x_t", x_t), {"h_prev": h_prev}, ("W_x", W_x), ("W_h", W_h), {"b": b}, blocks=4)


def _check_lstm_step(x_t, h_prev, c_prev, W_x, W_h, b) -> None:
    check_step(("x_t", x_t), {"h_prev": h_prev, "c_prev": c_prev}, ("W_x", W_x), ("W_h", W_h),
               {"b": b}, blocks=4)


def _check_gru(x_t, h_prev, W_x, W_h, b_x, b_h) -> None:
    check_step(("x_t", x_t), {"h_prev": h_prev}, ("W_x", W_x), ("W_h", W_h),
               {"b_x": b_x, "b_h": b_h}, blocks=3)


@checked_by(_check_lstm_gates)
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


@checked_by(_check_lstm_step)
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


@checked_by(_check_gru)
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


@checked_by(_check_gru)
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


def _check_cell_dtype(name: str, value: torch.Tensor, cell: _GatedCell) -> None:
    """``value`` must have the dtype of the cell's weights: torch does not mix them in a product."""
    if value.dtype != cell.W_x.dtype:
        raise TypeError(f"{name} must have the dtype of the {type(cell).__name__}'s weights, "
                        f"{cell.W_x.dtype}, got {value.dtype}: convert one of them, "
                        f"e.g. {name}.to({cell.W_x.dtype}) or cell.to({value.dtype})")


def _check_step_input(cell: _GatedCell, x_t: torch.Tensor, return_gates: bool) -> None:
    check_tensor("x_t", x_t, dim=2, floating=True, layout="(batch, input_size)")
    if x_t.shape[1] != cell.input_size:
        raise ValueError(f"x_t must have {cell.input_size} features, got shape {tuple(x_t.shape)}")
    if x_t.shape[0] == 0:
        raise ValueError(f"x_t must hold at least one example, got shape {tuple(x_t.shape)}")
    _check_cell_dtype("x_t", x_t, cell)
    check_bool("return_gates", return_gates)


def _check_state(name: str, value: torch.Tensor, cell: _GatedCell, batch: int) -> None:
    check_tensor(name, value, dim=2, floating=True, layout="(batch, hidden_size)")
    if value.shape != (batch, cell.hidden_size):
        raise ValueError(f"{name} must have shape {(batch, cell.hidden_size)}, "
                         f"got {tuple(value.shape)}")
    _check_cell_dtype(name, value, cell)


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
        projection = getattr(module, "proj_size", 0)
        if isinstance(module, kinds[0]) and (module.num_layers != 1 or module.bidirectional
                                             or projection):
            raise ValueError(
                f"module must be a single-layer, one-directional {kinds[0].__name__} without "
                f"projection, got num_layers={module.num_layers}, "
                f"bidirectional={module.bidirectional}, proj_size={projection}"
            )
        parameters = torch_parameters(module, input_size=self.input_size,
                                      hidden_size=self.hidden_size)
        return [parameters[name] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


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
        _check_step_input(self, x_t, return_gates)
        if state is None:
            h_prev = c_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            if not isinstance(state, tuple) or len(state) != 2:
                raise TypeError(f"state must be a tuple (h, c) or None, got {type(state).__name__}")
            h_prev, c_prev = state
            _check_state("h", h_prev, self, x_t.shape[0])
            _check_state("c", c_prev, self, x_t.shape[0])
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
        _check_step_input(self, x_t, return_gates)
        if h_prev is None:
            h_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            _check_state("h_prev", h_prev, self, x_t.shape[0])
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
            state = (one_layer_state("h0", state[0]), one_layer_state("c0", state[1]))
        output, (h_n, c_n) = unroll(self.cell, x, state)
        return output, (h_n.unsqueeze(0), c_n.unsqueeze(0))


class ScratchGRU(CellLayer):
    """A recurrent layer built from :class:`GRUCell`, called like
    ``nn.GRU(input_size, hidden_size, batch_first=True)``: ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(GRUCell(input_size, hidden_size))


LSTM_MODULES = (nn.LSTM, nn.LSTMCell, LSTMCell, ScratchLSTM)


GRU_MODULES = (nn.GRU, nn.GRUCell, GRUCell, ScratchGRU)


ADDING_KINDS = ("rnn", "lstm", "gru")


#: The sequence lengths of Chapter 5's adding problem.
ADDING_LENGTHS = (10, 50, 200)


def _gate_biases(module: nn.Module, gate: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The bias slice(s) of ``gate``: (the one we set, the one we zero or None)."""
    check_type("module", module, LSTM_MODULES + GRU_MODULES)
    if isinstance(module, (ScratchLSTM, ScratchGRU)):
        module = module.cell
    names = ("i", "f", "g", "o") if isinstance(module, LSTM_MODULES) else ("r", "z")
    check_choice("gate", gate, names)
    if isinstance(module, LSTMCell):
        return module.b[module.gate_slice(gate)], None
    if isinstance(module, GRUCell):
        return module.b_x[module.gate_slice(gate)], module.b_h[module.gate_slice(gate)]
    if isinstance(module, (nn.LSTM, nn.GRU)) and (module.num_layers != 1 or module.bidirectional):
        raise ValueError(
            f"module must be a single-layer, one-directional {type(module).__name__}, got "
            f"num_layers={module.num_layers}, bidirectional={module.bidirectional}"
        )
    parameters, rows = torch_parameters(module), gate_rows(module, gate)
    return parameters["bias_ih"][rows], parameters["bias_hh"][rows]


@torch.no_grad()
def set_gate_bias(module: nn.Module, gate: str, value: float | torch.Tensor) -> None:
    """Make the total bias of one gate equal to ``value`` (a number or a (hidden,) tensor).

    ``gate`` is "i", "f", "g" or "o" for an LSTM and "r" or "z" for a GRU (the
    candidate's two biases act differently, so "n" is not offered). Where PyTorch
    keeps two biases, the value goes into ``bias_ih`` and ``bias_hh`` is zeroed.
    """
    main, other = _gate_biases(module, gate)
    if isinstance(value, torch.Tensor):
        if value.shape != main.shape:
            raise ValueError(f"value must be a number or a tensor of shape {tuple(main.shape)}, "
                             f"got shape {tuple(value.shape)}")
        main.copy_(value)
    else:
        main.fill_(check_float("value", value))
    if other is not None:
        other.zero_()


@torch.no_grad()
def long_memory_init(module: nn.Module, max_lag: int, *, seed: int = 0) -> torch.Tensor:
    """Spread the memory time scales of a gated layer over 2 .. ``max_lag`` steps.

    A keep gate that sits near ``1 - 1/tau`` keeps ``(1 - 1/tau)**k ~ exp(-k / tau)``
    of its memory after k steps: it remembers for about ``tau`` steps. For each hidden
    unit we draw tau uniformly from [2, max_lag] and turn it into a bias with
    ``bias = log(tau - 1)``, since sigmoid(log(tau - 1)) = 1 - 1/tau, and set

    * LSTM: forget-gate bias ``b_f = log(tau - 1)``, input-gate bias ``b_i = -b_f``,
      so long-memory units also write rarely;
    * GRU: update-gate bias ``b_z = log(tau - 1)`` (PyTorch's z is the share of the
      old state that is kept).

    This is the "chrono" initialisation of Tallec and Ollivier (2018). Returns the
    drawn time scales tau, shape (hidden,).
    """
    check_type("module", module, LSTM_MODULES + GRU_MODULES)
    main, _ = _gate_biases(module, "f" if isinstance(module, LSTM_MODULES) else "z")
    tau, bias = chrono_time_scales(main.shape[0], max_lag, seed=seed)
    bias = bias.to(main.device, main.dtype)
    if isinstance(module, LSTM_MODULES):
        set_gate_bias(module, "f", bias)
        set_gate_bias(module, "i", -bias)
    else:
        set_gate_bias(module, "z", bias)
    return tau


def _scratch_cell(module: nn.Module) -> LSTMCell | GRUCell:
    if isinstance(module, (LSTMCell, GRUCell)):
        return module
    if isinstance(module, (ScratchLSTM, ScratchGRU)):
        return module.cell
    if isinstance(module, (nn.LSTM, nn.LSTMCell, nn.GRU, nn.GRUCell)):
        kind = LSTMCell if isinstance(module, (nn.LSTM, nn.LSTMCell)) else GRUCell
        cell = kind(module.input_size, module.hidden_size)
        cell.copy_from(module)
        first = next(module.parameters())
        return cell.to(first.device, first.dtype)
    check_type("module", module, LSTM_MODULES + GRU_MODULES)
    raise AssertionError("unreachable")


@torch.no_grad()
def record_gates(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run an LSTM or GRU over ``x`` (batch, time, features) and keep every gate.

    Returns a dict of tensors of shape (batch, time, hidden): "i", "f", "g", "o",
    "h" and "c" for an LSTM; "r", "z", "n" and "h" for a GRU. A PyTorch layer is
    first copied into the matching scratch cell, which computes the same function.
    """
    check_type("module", module, LSTM_MODULES + GRU_MODULES)
    cell = _scratch_cell(module)
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(x.shape)}")
    check_tensor("x", x, nonempty=True, layout="(batch, time, features)")
    if x.shape[2] != cell.input_size:
        raise ValueError(f"x must have {cell.input_size} features in its last dimension, "
                         f"got shape {tuple(x.shape)}")
    _check_cell_dtype("x", x, cell)
    steps: dict[str, list[torch.Tensor]] = {}
    state = None
    for x_t in x.unbind(dim=1):
        state, gate = cell(x_t, state, return_gates=True)
        parts = dict(zip(("h", "c"), state)) if isinstance(state, tuple) else {"h": state}
        for name, value in {**gate, **parts}.items():
            steps.setdefault(name, []).append(value)
    return {name: torch.stack(values, dim=1) for name, values in steps.items()}


#: How the plain RNN of the adding problem starts (Chapter 4's two remedies for vanishing
#: gradients): "orthogonal", tanh units with an orthogonal W_hh; "identity", ReLU units with
#: W_hh = I and zero biases, the IRNN of Le, Jaitly and Hinton (2015).
RNN_INITS = ("orthogonal", "identity")


def make_adding_model(
    kind: str, hidden_size: int, steps: int, *, seed: int = 0, keep_bias: float | None = None,
    rnn_init: str | None = None, max_lag: int | None = None, input_bias: float | None = None,
) -> SequenceRegressor:
    """A regressor for the adding problem built on ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    The RNN starts as ``rnn_init`` says (see :data:`RNN_INITS`; default "orthogonal").
    Gated layers get :func:`long_memory_init` with ``max_lag=steps`` (or ``max_lag``
    when given: time scales sized for another length than the task's), or, when
    ``keep_bias`` is a number, that bias on their keep gate (the LSTM's forget
    gate f, the GRU's update gate z) and PyTorch's defaults elsewhere. An LSTM given
    ``input_bias`` gets that bias on its input gate last, over what the above set. The head
    starts at the mean prediction (weights 0, bias 1), so every model begins at
    the baseline MSE of 1/6 and must learn to do better.
    """
    check_choice("kind", kind, ADDING_KINDS)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    steps = check_int("steps", steps, minimum=3)
    if keep_bias is not None:
        keep_bias = check_float("keep_bias", keep_bias)
        if kind == "rnn":
            raise ValueError("keep_bias applies to the gated kinds 'lstm' and 'gru', got kind 'rnn'")
    if rnn_init is not None:
        check_choice("rnn_init", rnn_init, RNN_INITS)
        if kind != "rnn":
            raise ValueError(f"rnn_init applies to kind 'rnn' only, got kind {kind!r}")
    if max_lag is not None:
        max_lag = check_int("max_lag", max_lag, minimum=2)
        if kind == "rnn" or keep_bias is not None:
            raise ValueError("max_lag sizes the chrono init of a gated kind without keep_bias, "
                             f"got kind {kind!r} and keep_bias {keep_bias!r}")
    if input_bias is not None:
        input_bias = check_float("input_bias", input_bias)
        if kind != "lstm":
            raise ValueError(f"input_bias applies to kind 'lstm' only, got kind {kind!r}")
    seed = check_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's CPU RNG is restored
        torch.manual_seed(seed)
        if kind == "rnn":
            layer = _adding_rnn(hidden_size, rnn_init or "orthogonal")
        else:
            layer = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](2, hidden_size, batch_first=True)
        if kind != "rnn" and keep_bias is None:
            long_memory_init(layer, max_lag or steps, seed=seed)
        elif kind != "rnn":
            set_gate_bias(layer, "f" if kind == "lstm" else "z", keep_bias)
        if input_bias is not None:
            set_gate_bias(layer, "i", input_bias)
        model = SequenceRegressor(layer, hidden_size)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(1.0)
    return model


@torch.no_grad()
def _adding_rnn(hidden_size: int, init: str) -> nn.RNN:
    if init == "orthogonal":
        layer = nn.RNN(2, hidden_size, batch_first=True)
        nn.init.orthogonal_(layer.weight_hh_l0)
        return layer
    layer = nn.RNN(2, hidden_size, nonlinearity="relu", batch_first=True)
    layer.weight_hh_l0.copy_(torch.eye(hidden_size))
    layer.bias_ih_l0.zero_()
    layer.bias_hh_l0.zero_()
    return layer


#: Chapter 5's budget for the adding problem, the same for every model: 32 units, 300 Adam
#: steps on minibatches of 64 fresh sequences, gradients clipped to norm 1; 1,000 validation
#: sequences choose each model's learning rate, 1,000 test sequences score it.
ADDING_RECIPE = {"hidden_size": 32, "train_steps": 300, "batch_size": 64, "clip_norm": 1.0,
                 "n_val": 1000, "n_test": 1000}

#: The models compared on the adding problem: keyword arguments of :func:`run_adding_problem`.
#: Matched on recurrent state size: the RNNs have 64 units, the LSTM 32 units with h and c,
#: 64 numbers as well (and 4,641 parameters to the RNN's 4,417); the GRU, with 32 numbers and
#: 3,489 parameters, is the smallest. The chrono rows set the gates' time scales from the
#: sequence length (max_lag = T); "b_f = 1" is the usual default, told nothing about T.
ADDING_VARIANTS = {
    "RNN, orthogonal": {"kind": "rnn", "rnn_init": "orthogonal", "hidden_size": 64},
    "RNN, identity (ReLU)": {"kind": "rnn", "rnn_init": "identity", "hidden_size": 64},
    "LSTM, chrono": {"kind": "lstm"},
    "LSTM, b_f = 1": {"kind": "lstm", "keep_bias": 1.0},
    "GRU, chrono": {"kind": "gru"},
}

#: The controls for "told the lag", run at the longest length only: gated cells whose keep
#: gates start with long time scales that were not set from T. A constant bias of 3 keeps
#: sigmoid(3) = 0.95 per step, a time scale of 1 + e^3, about 21 steps, in every unit; the
#: chrono LSTM sized for T = 50 spreads its time scales over 2 .. 50 steps, a quarter of 200;
#: the chrono LSTM with b_i = 0 is told T but keeps the input gate half open, as b_f = 1 does.
ADDING_CONTROLS = {
    "LSTM, b_f = 3": {"kind": "lstm", "keep_bias": 3.0},
    "LSTM, chrono for T = 50": {"kind": "lstm", "max_lag": 50},
    "LSTM, chrono, b_i = 0": {"kind": "lstm", "input_bias": 0.0},
    "GRU, b_z = 3": {"kind": "gru", "keep_bias": 3.0},
}

#: The learning rates each adding-problem model is tried with, a factor of about 3 apart,
#: around the best ones of a first validation run (seed 0: the tanh RNN does best low, the
#: gated layers high, the ReLU RNN in between); the mean validation MSE over the seeds picks
#: one per model and length.
ADDING_LRS = {name: (1e-3, 3e-3, 1e-2, 3e-2) if spec["kind"] == "rnn" else (1e-2, 3e-2, 1e-1)
              for name, spec in {**ADDING_VARIANTS, **ADDING_CONTROLS}.items()}


def _check_run_adding_problem(
    kind: str, steps: int, *, train_steps: int = 300, batch_size: int = 64, lr: float = 1e-2,
    clip_norm: float | None = 1.0, n_val: int = 1000, n_test: int = 1000,
    device: str | torch.device | None = None, **_,
) -> None:
    check_int("train_steps", train_steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    if clip_norm is not None:  # None: no clipping
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    check_int("n_val", n_val, minimum=1)
    check_int("n_test", n_test, minimum=1)
    if device is not None:
        check_device(device)


@checked_by(_check_run_adding_problem)
def run_adding_problem(
    kind: str,
    steps: int,
    *,
    hidden_size: int = ADDING_RECIPE["hidden_size"],
    train_steps: int = ADDING_RECIPE["train_steps"],
    batch_size: int = ADDING_RECIPE["batch_size"],
    lr: float = 1e-2,
    clip_norm: float | None = ADDING_RECIPE["clip_norm"],
    seed: int = 0,
    n_val: int = ADDING_RECIPE["n_val"],
    n_test: int = ADDING_RECIPE["n_test"],
    keep_bias: float | None = None,
    rnn_init: str | None = None,
    max_lag: int | None = None,
    input_bias: float | None = None,
    device: str | torch.device | None = None,
) -> dict:
    """Train one adding-problem model on fresh data and measure its held-out MSE.

    Every model sees ``train_steps`` minibatches of ``batch_size`` new sequences
    (no example twice) and is trained with Adam, its gradients clipped to norm
    ``clip_norm`` (``None``: not clipped). Returns ``{"model", "val_mse", "mse",
    "baseline_mse", "prediction_std", "seconds", "history"}``: the MSE on ``n_val``
    validation sequences (to choose ``lr``) and on ``n_test`` test sequences, the MSE
    of always predicting the mean, 1, on those test sequences (1/6 up to sampling
    noise), the spread of the test predictions (near 0: the model predicts one number
    for every sequence), and the :func:`training.fit` history. ``keep_bias``,
    ``rnn_init``, ``max_lag`` and ``input_bias`` go to :func:`make_adding_model`.
    """
    model = make_adding_model(kind, hidden_size, steps, seed=seed, keep_bias=keep_bias,
                              rnn_init=rnn_init, max_lag=max_lag, input_bias=input_bias)
    device = pick_device() if device is None else torch.device(device)
    x, y = adding_problem(train_steps * batch_size, steps, seed=seed)
    x_val, y_val = adding_problem(n_val, steps, seed=seed + 2_000_003)
    x_test, y_test = adding_problem(n_test, steps, seed=seed + 1_000_003)
    optimizer = torch.optim.Adam(model.to(device).parameters(), lr=lr)
    start = time.perf_counter()
    history = training.fit(model, make_loader(x, y, batch_size=batch_size), epochs=1,
                           optimizer=optimizer, loss_fn=F.mse_loss, clip_norm=clip_norm,
                           device=device, verbose=False)
    seconds = time.perf_counter() - start
    val, test = (training.evaluate(model, make_loader(a, b, batch_size=len(b)),
                                   loss_fn=F.mse_loss, device=device)["loss"]
                 for a, b in ((x_val, y_val), (x_test, y_test)))
    with torch.no_grad():
        spread = model(x_test.to(device)).std().item()
    return {"model": model, "val_mse": val, "mse": test,
            "baseline_mse": ((y_test - 1) ** 2).mean().item(), "prediction_std": spread,
            "seconds": seconds, "history": history}


def distort_images(
    x: torch.Tensor, max_shift: int, max_rotation: float, max_scale: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Turn, scale and move every image in ``x`` (batch, height, width) by its own small amount.

    Each image is rotated by an angle in [-max_rotation, max_rotation] degrees, scaled by
    a factor in [1 - max_scale, 1 + max_scale] about its centre and moved by a whole
    number of pixels in [-max_shift, max_shift] along each axis; pixels are read back by
    bilinear interpolation, and the uncovered border gets the background value (the
    batch's minimum). With all three limits at 0 the images come back unchanged.
    """
    check_tensor("x", x, dim=3, floating=True, nonempty=True, layout="(batch, height, width)")
    check_int("max_shift", max_shift, minimum=0)
    check_float("max_rotation", max_rotation, minimum=0.0, maximum=180.0)
    check_float("max_scale", max_scale, minimum=0.0, maximum=0.5)
    check_type("generator", generator, torch.Generator)
    batch, height, width = x.shape

    def uniform(limit: float) -> torch.Tensor:  # (batch,) draws in [-limit, limit]
        return (2 * torch.rand(batch, generator=generator) - 1) * limit

    angle, scale = torch.deg2rad(uniform(max_rotation)), 1 + uniform(max_scale)
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, batch), generator=generator)
    # affine_grid maps each output pixel to where it is read in the input, in coordinates
    # running from -1 to 1 across the image: one pixel is 2 / width across, 2 / height down.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, -2 * dx / width], dim=1),
                         torch.stack([sin, cos, -2 * dy / height], dim=1)], dim=1)  # (batch, 2, 3)
    grid = F.affine_grid(theta.to(x), [batch, 1, height, width], align_corners=False)
    background = x.min()
    moved = F.grid_sample((x - background)[:, None], grid, align_corners=False)  # zeros outside
    return moved[:, 0] + background


class RandomDistortions:
    """A training loader whose images are turned, scaled and moved a little, afresh every epoch.

    Wraps any loader of ``(x, y)`` batches with x of shape (batch, height, width), keeps its
    length and its labels, and passes each x through :func:`distort_images`. A network that
    has seen the same digit written at slightly different angles, sizes and places
    generalises better: a known help when the training set is small.
    """

    def __init__(self, loader, *, max_shift: int, max_rotation: float, max_scale: float,
                 seed: int = 0) -> None:
        if not hasattr(loader, "__iter__") or not hasattr(loader, "__len__"):
            raise TypeError(f"loader must be a DataLoader (iterable with a length), "
                            f"got {type(loader).__name__}")
        self.loader = loader
        self.max_shift = check_int("max_shift", max_shift, minimum=0)
        self.max_rotation = check_float("max_rotation", max_rotation, minimum=0.0, maximum=180.0)
        self.max_scale = check_float("max_scale", max_scale, minimum=0.0, maximum=0.5)
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield distort_images(x, self.max_shift, self.max_rotation, self.max_scale,
                                 self.generator), y


#: Chapter 5's MNIST recipe, the same for nn.RNN, nn.LSTM and nn.GRU, chosen on the
#: training and validation digits (4-fold cross-validation in benchmarks/lstm.py, never the
#: test split): standardised digits turned by up to 20 degrees, scaled by up to 20% and
#: shifted by up to 2 pixels afresh every epoch, Adam with a cosine-decayed rate, gradients
#: clipped to norm 1.
MNIST_RECIPE = {"hidden_size": 128, "epochs": 20, "lr": 6e-3, "batch_size": 64, "max_shift": 2,
                "max_rotation": 20.0, "max_scale": 0.2}


#: The layers compared on MNIST rows, matched on parameters: widths that give each classifier
#: (layer and head) within 0.5% of the LSTM's 82,186 parameters at 128 units.
MNIST_MATCHED_SIZES = {"rnn": 267, "lstm": 128, "gru": 150}

#: The learning rates each MNIST layer is tried with, three a factor of 2 apart around the best
#: of a first validation run (seed 0: the wide RNN fails above 2e-3); the mean validation
#: accuracy over the seeds picks one per layer.
MNIST_LRS = {"rnn": (5e-4, 1e-3, 2e-3), "lstm": (3e-3, 6e-3, 1.2e-2), "gru": (3e-3, 6e-3, 1.2e-2)}


def _check_train_mnist_classifier(kind: str, digits: MNIST, *, val_loader=None, seed: int = 0,
                                  verbose: bool = False, **recipe) -> None:
    """The arguments train_mnist_classifier uses itself; the recipe's are checked where used."""
    check_choice("kind", kind, ADDING_KINDS)
    check_type("digits", digits, MNIST)
    check_int("seed", seed, minimum=0)
    check_val_loader(val_loader)
    check_bool("verbose", verbose)


@checked_by(_check_train_mnist_classifier)
def train_mnist_classifier(
    kind: str,
    digits: MNIST,
    *,
    hidden_size: int = MNIST_RECIPE["hidden_size"],
    epochs: int = MNIST_RECIPE["epochs"],
    lr: float = MNIST_RECIPE["lr"],
    batch_size: int = MNIST_RECIPE["batch_size"],
    max_shift: int = MNIST_RECIPE["max_shift"],
    max_rotation: float = MNIST_RECIPE["max_rotation"],
    max_scale: float = MNIST_RECIPE["max_scale"],
    val_loader=None,
    seed: int = 0,
    device: str | torch.device | None = None,
    verbose: bool = False,
) -> tuple[nn.Module, dict]:
    """Train a ``kind`` ("rnn", "lstm", "gru") classifier on ``digits.x_train`` (standardised).

    Every kind gets the same data, order, distortions and optimiser; the RNN also gets
    an orthogonal W_hh (Chapter 4), without which it trains worse. Returns
    ``(model, history)`` from :func:`training.train_classifier`.
    """
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's CPU RNG is restored
        torch.manual_seed(seed)
        model = make_classifier(kind, hidden_size=hidden_size)
        if kind == "rnn":
            nn.init.orthogonal_(model.recurrent.weight_hh_l0)
    loader = RandomDistortions(mnist_loader(digits, "train", batch_size=batch_size, seed=seed),
                               max_shift=max_shift, max_rotation=max_rotation,
                               max_scale=max_scale, seed=seed)
    history = training.train_classifier(model, loader, epochs=epochs, lr=lr, val_loader=val_loader,
                                        device=device, verbose=verbose)
    return model, history


def _check_best_setting(rows: list[dict], by: Sequence[str], setting: str, score: str, *,
                        minimize: bool) -> None:
    check_type("rows", rows, list)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"rows must be a non-empty list of dicts, one per run, got {rows!r:.60}")
    if (isinstance(by, str) or not isinstance(by, (list, tuple))
            or not all(isinstance(key, str) for key in by)):
        raise TypeError(f"by must be a list of column names, got {by!r}")
    check_type("setting", setting, str)
    check_type("score", score, str)
    for key in (*by, setting, score):
        missing = [i for i, row in enumerate(rows) if key not in row]
        if missing:
            raise ValueError(f"every row needs a {key!r} entry; rows {missing[:5]} have none")
    check_bool("minimize", minimize)


@checked_by(_check_best_setting)
def best_setting(rows: list[dict], by: Sequence[str], setting: str, score: str, *,
                 minimize: bool) -> dict[tuple, Any]:
    """For each group of ``rows`` that agree on the columns ``by``, the value of ``setting``
    (say the learning rate) whose runs have the best mean ``score`` (say the validation MSE).

    A run whose score is ``None`` (it diverged) counts as worse than any number, so a
    setting with a diverged run loses to every setting without one. Returns
    ``{group: value}`` with ``group`` the tuple of the ``by`` values.
    """
    runs: dict[tuple, dict[Any, list]] = {}
    for row in rows:
        group = tuple(row[key] for key in by)
        runs.setdefault(group, {}).setdefault(row[setting], []).append(row[score])

    def rank(scores: list) -> tuple[int, float]:
        failed = sum(value is None for value in scores)
        mean = statistics.fmean(v for v in scores if v is not None) if failed < len(scores) else 0.0
        return failed, mean if minimize else -mean

    return {group: min(options, key=lambda value: rank(options[value]))
            for group, options in runs.items()}


def _check_gate_variance_shares(gate: torch.Tensor, ink: torch.Tensor) -> None:
    check_tensor("gate", gate, dim=3, floating=True, nonempty=True, layout="(batch, time, hidden)")
    check_tensor("ink", ink, dim=2, layout="(batch, time)")
    if ink.dtype != torch.bool:
        raise TypeError(f"ink must be a bool tensor (True on rows with ink), got {ink.dtype}")
    if ink.shape != gate.shape[:2]:
        raise ValueError(f"ink must have shape (batch, time) = {tuple(gate.shape[:2])}, "
                         f"got {tuple(ink.shape)}")
    if ink.all() or not ink.any():
        raise ValueError("ink must mark some rows with ink and some without, got "
                         + ("only rows with ink" if ink.all() else "no row with ink"))
    if not torch.isfinite(gate).all():
        raise ValueError("gate must hold finite activations, got NaN or inf")


@checked_by(_check_gate_variance_shares)
def gate_variance_shares(gate: torch.Tensor, ink: torch.Tensor) -> dict[str, float]:
    """How much of a gate's variation each of three groupings explains, as shares in [0, 1].

    ``gate`` holds one gate's activations, (batch, time, hidden), and ``ink`` (batch, time)
    is True on the rows that have ink. Each share is the variance of the group means
    (weighted by group size) over the variance of every activation: "unit" groups by
    hidden unit (the horizontal bands of a heat map with time across), "step" by time
    step (the vertical bands), and "ink" by whether the row read has ink. A share of 1
    means the grouping alone decides the activation; 0, that it does not matter.
    """
    a = gate.double()
    total = a.var(unbiased=False)
    mask = ink.to(a.device)[..., None].expand_as(a)
    between_ink = sum(part.numel() * (part.mean() - a.mean()) ** 2
                      for part in (a[mask], a[~mask])) / a.numel()
    shares = {"unit": a.mean(dim=(0, 1)).var(unbiased=False),
              "step": a.mean(dim=(0, 2)).var(unbiased=False), "ink": between_ink}
    return {name: (value / total).item() if total > 0 else 0.0 for name, value in shares.items()}


def _check_plot_gates_on_digit(image: torch.Tensor, gates: dict, roles: dict) -> None:
    check_tensor("image", image, dim=2, floating=True, nonempty=True, layout="(rows, pixels)")
    check_type("gates", gates, dict)
    check_type("roles", roles, dict)
    if not gates:
        raise ValueError("gates must map at least one gate name to its activations, got {}")
    for name, value in gates.items():
        check_tensor(f"gates[{name!r}]", value, dim=2, floating=True, layout="(time, hidden)")
        if value.shape[0] != image.shape[0]:
            raise ValueError(f"gates[{name!r}] must have one row per image row, "
                             f"{image.shape[0]}, got shape {tuple(value.shape)}")
        if not isinstance(roles.get(name), str):
            raise ValueError(f"roles must name the role of every gate (a str), got "
                             f"{roles.get(name)!r} for {name!r}")


@checked_by(_check_plot_gates_on_digit)
def plot_gates_on_digit(image: torch.Tensor, gates: dict[str, torch.Tensor],
                        roles: dict[str, str]) -> Figure:
    """A digit read row by row, and the gates of every unit at every step.

    ``image`` is (rows, pixels); ``gates`` maps a gate's name to its activations,
    (time, hidden), one step per image row, with the units in the order to draw them;
    ``roles`` names each gate's role. Left: the digit upright, each row a time step.
    Then the same digit turned on its side, so that time runs across like the gates
    (column t is row t of the image), and one heat map per gate, units down, time across.
    """
    fig = plt.figure(figsize=(11, 6.4), layout="constrained")
    grid = fig.add_gridspec(1 + len(gates) // 2, 3, width_ratios=[0.6, 1, 1])
    upright = fig.add_subplot(grid[:, 0])
    upright.imshow(image.detach().cpu().numpy(), cmap="gray_r", interpolation="nearest")
    upright.set(title="the digit, read top down", xlabel="pixel in row",
                ylabel="row of the image = time step t")
    panels = [fig.add_subplot(grid[k // 2, 1 + k % 2]) for k in range(len(gates) + 1)]
    panels[0].imshow(image.detach().cpu().numpy().T, aspect="auto", cmap="gray_r",
                     interpolation="nearest")
    panels[0].set(title="on its side: column t is row t", ylabel="pixel in row")
    for ax, (name, value) in zip(panels[1:], gates.items()):
        shown = ax.imshow(value.detach().cpu().numpy().T, aspect="auto", cmap="viridis",
                          vmin=0, vmax=1, interpolation="nearest")
        ax.set(title=f"gate {name}: {roles[name]}", ylabel="hidden unit (sorted)")
    for ax in panels:
        ax.set_xlabel("time step t (row of the image)")
        ax.grid(False)
    upright.grid(False)
    fig.colorbar(shown, ax=panels, shrink=0.8, label="gate activation")
    return fig


def draw_lstm_cell() -> Figure:
    """The LSTM cell: the cell state c runs along the top as a straight path,
    touched only by one multiplication (the forget gate f) and one addition
    (the input gate i times the candidate g); the output gate o reads it out.
    """
    fig, ax = diagram_axes(11.6, 6.6, figsize=(10, 5.6))
    op = (0.5, 0.5)
    top, gate_y, bus_y = 5.4, 2.6, 1.1
    # The cell state's path.
    draw_box(ax, (0.8, top), "$c_{t-1}$", "state")
    draw_box(ax, (2.9, top), r"$\times$", "state", size=op)
    draw_box(ax, (5.6, top), "$+$", "state", size=op)
    draw_box(ax, (10.8, top), "$c_t$", "state")
    draw_arrow(ax, (1.25, top), (2.65, top))
    draw_arrow(ax, (3.15, top), (5.35, top))
    draw_arrow(ax, (5.85, top), (10.35, top))
    ax.text(4.2, top + 0.45, "cell state: a linear path", ha="center", fontsize=DIAGRAM["font"] - 1)
    # The gates read [h_{t-1}, x_t].
    draw_box(ax, (0.8, bus_y), "$h_{t-1}$", "state")
    draw_box(ax, (5.6, bus_y), r"$[\,h_{t-1},\ x_t\,]$", "input", size=(7.0, 0.5))
    draw_box(ax, (5.6, -0.2), "$x_t$", "input")
    draw_arrow(ax, (1.25, bus_y), (2.05, bus_y))
    draw_arrow(ax, (5.6, 0.1), (5.6, bus_y - 0.25))
    gates = (
        (2.9, r"$f_t = \sigma$", "gate", "forget (keep)"),
        (4.7, r"$i_t = \sigma$", "gate", "input (write)"),
        (6.5, r"$g_t = \tanh$", "state", "candidate"),
        (8.3, r"$o_t = \sigma$", "gate", "output (read)"),
    )
    for x, text, role, name in gates:
        draw_arrow(ax, (x, bus_y + 0.25), (x, gate_y - 0.42))
        draw_box(ax, (x, gate_y), f"{text}\n{name}", role, size=(1.65, 0.84))
    # f scales the old state; i scales the candidate, and the product is added.
    draw_arrow(ax, (2.9, gate_y + 0.42), (2.9, top - 0.25))
    draw_box(ax, (5.6, 4.0), r"$\times$", "state", size=op)
    draw_arrow(ax, (4.7, gate_y + 0.42), (5.4, 3.8))
    draw_arrow(ax, (6.5, gate_y + 0.42), (5.8, 3.8))
    draw_arrow(ax, (5.6, 4.25), (5.6, top - 0.25))
    # The output gate reads tanh(c_t) into h_t.
    draw_box(ax, (9.8, 4.2), r"$\tanh$", "state", size=(0.8, 0.5))
    draw_arrow(ax, (9.8, top), (9.8, 4.45))
    draw_box(ax, (9.8, 2.6), r"$\times$", "state", size=op)
    draw_arrow(ax, (9.8, 3.95), (9.8, 2.85))
    draw_arrow(ax, (9.12, gate_y), (9.55, gate_y))
    draw_box(ax, (10.8, 1.1), "$h_t$", "output")
    draw_arrow(ax, (9.95, 2.4), (10.6, 1.4))
    ax.set_ylim(-0.6, 6.2)
    return fig


def draw_gru_cell() -> Figure:
    """The GRU cell as PyTorch computes it: the state h runs along the top, scaled by
    the update gate z and added to (1 - z) times the candidate n; the reset gate r
    scales the recurrent part of the candidate, after its product with W_hn.
    """
    fig, ax = diagram_axes(11.6, 6.6, figsize=(10, 5.6))
    op = (0.5, 0.5)
    top, gate_y, bus_y = 5.4, 2.6, 1.1
    # The state's path: keep z of the old state, add (1 - z) of the candidate.
    draw_box(ax, (0.8, top), "$h_{t-1}$", "state")
    draw_box(ax, (2.9, top), r"$\times$", "state", size=op)
    draw_box(ax, (7.8, top), "$+$", "state", size=op)
    draw_box(ax, (10.8, top), "$h_t$", "output")
    draw_arrow(ax, (1.25, top), (2.65, top))
    draw_arrow(ax, (3.15, top), (7.55, top))
    draw_arrow(ax, (8.05, top), (10.35, top))
    ax.text(5.3, top + 0.45, r"state: keep $z_t$ of it, write $1 - z_t$ of the candidate",
            ha="center", fontsize=DIAGRAM["font"] - 1)
    # The gates read [h_{t-1}, x_t].
    draw_box(ax, (0.8, bus_y), "$h_{t-1}$", "state")
    draw_box(ax, (5.6, bus_y), r"$[\,h_{t-1},\ x_t\,]$", "input", size=(7.0, 0.5))
    draw_box(ax, (5.6, -0.2), "$x_t$", "input")
    draw_arrow(ax, (1.25, bus_y), (2.05, bus_y))
    draw_arrow(ax, (5.6, 0.1), (5.6, bus_y - 0.25))
    gates = (
        (2.9, r"$z_t = \sigma$", "gate", "update (keep)"),
        (5.3, r"$r_t = \sigma$", "gate", "reset"),
        (7.8, r"$n_t = \tanh$", "state", "candidate"),
    )
    for x, text, role, name in gates:
        draw_arrow(ax, (x, bus_y + 0.25), (x, gate_y - 0.42))
        draw_box(ax, (x, gate_y), f"{text}\n{name}", role, size=(1.65, 0.84))
    # z scales the old state; 1 - z scales the candidate before the sum.
    draw_arrow(ax, (2.9, gate_y + 0.42), (2.9, top - 0.25))
    draw_box(ax, (5.3, 4.1), "$1 - z_t$", "gate", size=(0.9, 0.45))
    draw_arrow(ax, (3.4, gate_y + 0.42), (4.85, 4.0))
    draw_box(ax, (7.8, 4.1), r"$\times$", "state", size=op)
    draw_arrow(ax, (5.75, 4.1), (7.55, 4.1))
    draw_arrow(ax, (7.8, gate_y + 0.42), (7.8, 3.85))
    draw_arrow(ax, (7.8, 4.35), (7.8, top - 0.25))
    # r scales h_{t-1} W_hn + b_hn inside the candidate (PyTorch's form).
    draw_arrow(ax, (6.12, gate_y), (6.97, gate_y))
    ax.text(6.6, gate_y + 0.6, r"$r_t \odot (h_{t-1} W_{hn} + b_{hn})$", ha="center",
            fontsize=DIAGRAM["font"] - 2)
    draw_arrow(ax, (10.8, top - 0.3), (10.8, 3.6))
    ax.text(10.8, 3.3, "to the next step\nand the output", ha="center",
            fontsize=DIAGRAM["font"] - 2)
    ax.set_ylim(-0.6, 6.2)
    return fig
