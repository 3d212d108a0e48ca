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
import time

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
    """Spread the memory time scales of a gated layer over 1 .. ``max_lag`` steps.

    A keep gate that sits near ``1 - 1/tau`` remembers for about ``tau`` steps. For
    each hidden unit we draw tau from U[2, max_lag] (in log space: bias = log(tau - 1)
    gives sigmoid(bias) = 1 - 1/tau) and set

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


def make_adding_model(
    kind: str, hidden_size: int, steps: int, *, seed: int = 0, keep_bias: float | None = None
) -> SequenceRegressor:
    """A regressor for the adding problem built on ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    Gated layers get :func:`long_memory_init` with ``max_lag=steps``, or, when
    ``keep_bias`` is a number, that bias on their keep gate (the LSTM's forget
    gate f, the GRU's update gate z) and PyTorch's defaults elsewhere. The head
    starts at the mean prediction (weights 0, bias 1), so every model begins at
    the baseline MSE of 1/6 and must learn to do better.
    """
    check_choice("kind", kind, ADDING_KINDS)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    steps = check_int("steps", steps, minimum=3)
    if keep_bias is not None:
        keep_bias = check_float("keep_bias", keep_bias)
    seed = check_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's CPU RNG is restored
        torch.manual_seed(seed)
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](2, hidden_size,
                                                                      batch_first=True)
        if kind != "rnn" and keep_bias is None:
            long_memory_init(layer, steps, seed=seed)
        elif kind != "rnn":
            set_gate_bias(layer, "f" if kind == "lstm" else "z", keep_bias)
        model = SequenceRegressor(layer, hidden_size)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(1.0)
    return model


def _check_run_adding_problem(
    kind: str, steps: int, *, train_steps: int = 300, batch_size: int = 64, lr: float = 1e-2,
    clip_norm: float | None = 1.0, n_test: int = 1000,
    device: str | torch.device | None = None, **_,
) -> None:
    check_int("train_steps", train_steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    if clip_norm is not None:  # None: no clipping
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    check_int("n_test", n_test, minimum=1)
    if device is not None:
        check_device(device)


@checked_by(_check_run_adding_problem)
def run_adding_problem(
    kind: str,
    steps: int,
    *,
    hidden_size: int = 32,
    train_steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-2,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    n_test: int = 1000,
    keep_bias: float | None = None,
    device: str | torch.device | None = None,
) -> dict:
    """Train one adding-problem model on fresh data and measure its held-out MSE.

    Every model sees ``train_steps`` minibatches of ``batch_size`` new sequences
    (no example twice) and is trained with Adam, its gradients clipped to norm
    ``clip_norm`` (``None``: not clipped). Returns
    ``{"model", "mse", "seconds", "history"}`` where ``mse`` is on ``n_test``
    separate sequences and ``history`` is the :func:`training.fit` history.
    ``keep_bias`` is passed to :func:`make_adding_model`.
    """
    model = make_adding_model(kind, hidden_size, steps, seed=seed, keep_bias=keep_bias)
    device = pick_device() if device is None else torch.device(device)
    x, y = adding_problem(train_steps * batch_size, steps, seed=seed)
    x_test, y_test = adding_problem(n_test, steps, seed=seed + 1_000_003)
    loader = make_loader(x, y, batch_size=batch_size)
    optimizer = torch.optim.Adam(model.to(device).parameters(), lr=lr)
    start = time.perf_counter()
    history = training.fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=F.mse_loss,
                           clip_norm=clip_norm, device=device, verbose=False)
    seconds = time.perf_counter() - start
    test = training.evaluate(model, make_loader(x_test, y_test, batch_size=n_test),
                             loss_fn=F.mse_loss, device=device)
    return {"model": model, "mse": test["loss"], "seconds": seconds, "history": history}


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
