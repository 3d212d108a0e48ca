"""The recurrent cell written from scratch, and the one home of PyTorch's weight layout.

A cell computes one time step. ``unroll`` runs any cell over a whole sequence.
The names follow Chapter 1:

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)        (Equation 2)

where ``W_xh`` (the text's U) maps inputs to the state, ``W_hh`` (the text's W)
carries the state from one step to the next, and the classifier head (V) lives
in :mod:`book_utils.models`. Rows are examples, as in ``X_t W``: the weights are
stored as (in, out), the transpose of PyTorch's (out, in).

:func:`torch_parameters` is where PyTorch's layout is read: the names with their
``_l0`` suffixes, the two biases and the gate blocks of ``nn.RNN``, ``nn.LSTM``,
``nn.GRU`` and their cells. Every scratch cell copies weights to and from PyTorch
through it. :func:`state_gradient_norms` measures how far gradients reach back
through any cell.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
from torch import nn

from ._checks import (
    check_choice, check_dtype, check_int, check_step, check_tensor, check_type, checked_by,
)

NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}
#: The row blocks of PyTorch's stacked gate weights, in PyTorch's order.
GATE_ORDER: dict[type, tuple[str, ...]] = {
    nn.RNN: ("h",), nn.RNNCell: ("h",),
    nn.LSTM: ("i", "f", "g", "o"), nn.LSTMCell: ("i", "f", "g", "o"),
    nn.GRU: ("r", "z", "n"), nn.GRUCell: ("r", "z", "n"),
}
TORCH_RECURRENT = tuple(GATE_ORDER)


def torch_parameters(
    module: nn.Module, layer: int = 0, *, input_size: int | None = None,
    hidden_size: int | None = None,
) -> dict[str, nn.Parameter]:
    """The parameters of one layer of a PyTorch recurrent module, by their plain names.

    Returns ``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}``: PyTorch stores each
    weight as (out, in), the transpose of the book's (in, out), with the gate blocks
    of an LSTM (i, f, g, o) or a GRU (r, z, n) stacked as rows, and keeps two biases
    whose sum acts as one (except for the GRU's candidate, see chapter 5). A layer
    ``k`` of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` has the suffix ``_lk``; a cell has none.
    ``input_size`` and ``hidden_size``, when given, must match the module's.
    """
    check_type("module", module, TORCH_RECURRENT)
    layer = check_int("layer", layer, minimum=0)
    suffix = ""
    if isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        projection = getattr(module, "proj_size", 0)
        if module.bidirectional or projection:
            raise ValueError(f"module must be a one-directional {type(module).__name__} without "
                             f"projection, got bidirectional={module.bidirectional}, "
                             f"proj_size={projection}")
        if layer >= module.num_layers:
            raise ValueError(f"layer must be smaller than num_layers={module.num_layers}, got {layer}")
        suffix = f"_l{layer}"
    elif layer != 0:
        raise ValueError(f"a {type(module).__name__} has one layer, got layer={layer}")
    if not module.bias:
        raise ValueError("module must have bias=True, got bias=False")
    module_input = module.input_size if layer == 0 else module.hidden_size
    expected = (
        module_input if input_size is None else check_int("input_size", input_size, minimum=1),
        module.hidden_size if hidden_size is None else check_int("hidden_size", hidden_size,
                                                                  minimum=1),
    )
    if (module_input, module.hidden_size) != expected:
        raise ValueError(
            f"module must have input_size={expected[0]}, hidden_size={expected[1]}, "
            f"got input_size={module_input}, hidden_size={module.hidden_size}"
        )
    return {name: getattr(module, f"{name}{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def gate_rows(module: nn.Module, gate: str) -> slice:
    """The rows of PyTorch's stacked weights and biases that belong to ``gate``."""
    check_type("module", module, TORCH_RECURRENT)
    names = GATE_ORDER[type(module)]
    k = names.index(check_choice("gate", gate, names))
    return slice(k * module.hidden_size, (k + 1) * module.hidden_size)


def chrono_time_scales(
    hidden_size: int, max_lag: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory time scales for a gated layer: (tau, keep bias), each (hidden_size,).

    A keep gate that sits near ``1 - 1/tau`` remembers for about ``tau`` steps.
    Each unit draws tau from U[2, max_lag]; the bias ``log(tau - 1)`` puts the gate
    there, since sigmoid(log(tau - 1)) = 1 - 1/tau. This is the "chrono"
    initialisation of Tallec and Ollivier (2018), "Can recurrent neural networks
    warp time?"; chapters 5 and 7 set their gates from it.
    """
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    max_lag = check_int("max_lag", max_lag, minimum=3)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    tau = 2.0 + (max_lag - 2.0) * torch.rand(hidden_size, generator=generator)
    return tau, torch.log(tau - 1.0)


def _check_rnn_step(x_t, h_prev, W_xh, W_hh, b_h, phi=torch.tanh) -> None:
    check_step(("x_t", x_t), {"h_prev": h_prev}, ("W_xh", W_xh), ("W_hh", W_hh), {"b_h": b_h})
    if not callable(phi):
        raise TypeError(f"phi must be a callable nonlinearity such as torch.tanh, "
                        f"got {type(phi).__name__}")


@checked_by(_check_rnn_step)
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
        self.W_xh = nn.Parameter(torch.empty(self.input_size, self.hidden_size))
        self.W_hh = nn.Parameter(torch.empty(self.hidden_size, self.hidden_size))
        self.b_h = nn.Parameter(torch.empty(self.hidden_size))
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
        check_dtype("x_t", x_t, self)
        if h_prev is None:
            h_prev = x_t.new_zeros(x_t.shape[0], self.hidden_size)
        else:
            check_tensor("h_prev", h_prev, dim=2, floating=True, layout="(batch, hidden_size)")
            if h_prev.shape != (x_t.shape[0], self.hidden_size):
                raise ValueError(
                    f"h_prev must have shape {(x_t.shape[0], self.hidden_size)} to match x_t "
                    f"{tuple(x_t.shape)}, got {tuple(h_prev.shape)}"
                )
            check_dtype("h_prev", h_prev, self)
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
        p = self._torch_parameters(module)
        p["weight_ih"].copy_(self.W_xh.T)
        p["weight_hh"].copy_(self.W_hh.T)
        p["bias_ih"].copy_(self.b_h)
        p["bias_hh"].zero_()

    @torch.no_grad()
    def copy_from(self, module: nn.RNN | nn.RNNCell) -> None:
        """Load the weights of a single-layer ``nn.RNN`` or an ``nn.RNNCell``."""
        p = self._torch_parameters(module)
        self.W_xh.copy_(p["weight_ih"].T)
        self.W_hh.copy_(p["weight_hh"].T)
        self.b_h.copy_(p["bias_ih"] + p["bias_hh"])

    def _torch_parameters(self, module: nn.RNN | nn.RNNCell) -> dict[str, nn.Parameter]:
        check_type("module", module, (nn.RNN, nn.RNNCell))
        if isinstance(module, nn.RNN) and (module.num_layers != 1 or module.bidirectional):
            raise ValueError("module must be a single-layer, one-directional nn.RNN, got "
                             f"num_layers={module.num_layers}, bidirectional={module.bidirectional}")
        parameters = torch_parameters(module, input_size=self.input_size,
                                      hidden_size=self.hidden_size)
        if module.nonlinearity != self.nonlinearity:
            raise ValueError(
                f"module must use nonlinearity={self.nonlinearity!r}, got {module.nonlinearity!r}")
        return parameters


def _check_cell(cell: Callable) -> None:
    if not callable(cell):
        raise TypeError(f"cell must be callable, got {type(cell).__name__}")
    if isinstance(cell, nn.RNNBase):
        raise TypeError(f"cell must compute one time step, as RNNCell or nn.RNNCell do, got the "
                        f"whole layer {type(cell).__name__}")
    call = cell.forward if isinstance(cell, nn.Module) else cell  # a module's own signature
    try:
        inspect.signature(call).bind(None, None)
    except TypeError:
        raise TypeError(f"cell must be callable as cell(x_t, state), got {type(cell).__name__} "
                        f"with signature {inspect.signature(call)}") from None
    except ValueError:  # no signature to read (a builtin): let the call decide
        pass


def _check_state(state, x: torch.Tensor) -> None:
    """A state is None, a (batch, hidden) tensor, or a tuple of them (an LSTM's (h, c))."""
    if state is None:
        return
    parts = state if isinstance(state, tuple) else (state,)
    for part in parts:
        if not isinstance(part, torch.Tensor):
            raise TypeError(f"state must be a tensor, a tuple of tensors or None, "
                            f"got {type(state).__name__}")
        check_tensor("state", part, dim=2, floating=True, layout="(batch, hidden)")
        if part.shape[0] != x.shape[0]:
            raise ValueError(f"state must have the batch size of x, {x.shape[0]}, "
                             f"got shape {tuple(part.shape)}")
        if part.dtype != x.dtype:
            raise TypeError(f"state must have the dtype of x, {x.dtype}, got {part.dtype}")


def _check_features(cell: Callable, x: torch.Tensor) -> None:
    """x (batch, time >= 1, features) with as many features as the cell reads, when it says."""
    check_tensor("x", x, dim=3, layout="(batch, time, features)")
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(x.shape)}")
    expected = getattr(cell, "input_size", None)
    if isinstance(expected, int) and x.shape[2] != expected:
        raise ValueError(f"x must have the cell's {expected} features in its last dimension, "
                         f"got shape {tuple(x.shape)}")


def _check_unroll(cell: Callable, x: torch.Tensor, state=None) -> None:
    _check_cell(cell)
    _check_features(cell, x)
    _check_state(state, x)


@checked_by(_check_unroll)
def unroll(
    cell: Callable, x: torch.Tensor, state: torch.Tensor | tuple | None = None
) -> tuple[torch.Tensor, torch.Tensor | tuple]:
    """Run ``cell`` over every step of ``x`` (batch, time, features).

    The state may be a tensor (an RNN's ``h``) or a tuple whose first entry is
    the output (an LSTM's ``(h, c)``). Returns the per-step outputs, shape
    (batch, time, hidden), and the final state.
    """
    outputs = []
    for x_t in x.unbind(dim=1):
        state = cell(x_t, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, dim=1), state


def one_layer_state(name: str, value: torch.Tensor | None) -> torch.Tensor | None:
    """A layer's initial state (1, batch, hidden) as the cell's (batch, hidden), or None."""
    check_type("name", name, str)
    if value is None:
        return None
    check_tensor(name, value, dim=3, floating=True, layout="(1, batch, hidden)")
    if value.shape[0] != 1:
        raise ValueError(f"{name} must have shape (1, batch, hidden), got {tuple(value.shape)}")
    return value[0]


class CellLayer(nn.Module):
    """A one-layer network that runs ``cell`` over time, called like ``nn.RNN(batch_first=True)``.

    ``forward(x, h0=None)``: x (batch, time, features), h0 (1, batch, hidden);
    returns ``(output, h_n)``, output (batch, time, hidden), h_n (1, batch, hidden).
    """

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        check_type("cell", cell, nn.Module)
        if not isinstance(getattr(cell, "hidden_size", None), int):
            raise TypeError(f"cell must have an int hidden_size, as RNNCell does, "
                            f"got {type(cell).__name__} without one")
        _check_cell(cell)
        self.cell = cell
        self.hidden_size = cell.hidden_size

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        check_dtype("x", x, self.cell)
        h0 = one_layer_state("h0", h0)
        if h0 is not None:
            if h0.shape != (x.shape[0], self.hidden_size):
                raise ValueError(f"h0 must have shape (1, {x.shape[0]}, {self.hidden_size}) to "
                                 f"match x {tuple(x.shape)}, got {(1, *h0.shape)}")
            check_dtype("h0", h0, self.cell)
        output, h_n = unroll(self.cell, x, h0)
        return output, h_n.unsqueeze(0)


class ScratchRNN(CellLayer):
    """A recurrent layer built from :class:`RNNCell` and :func:`unroll`.

    Called like ``nn.RNN(input_size, hidden_size, batch_first=True)``: it takes
    ``x`` of shape (batch, time, features) and an optional ``h0`` of shape
    (1, batch, hidden), and returns ``(output, h_n)`` with output of shape
    (batch, time, hidden) and ``h_n`` of shape (1, batch, hidden).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__(RNNCell(input_size, hidden_size, nonlinearity))


def state_gradient_norms(
    cell: Callable,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    state: torch.Tensor | tuple | None = None,
) -> dict[str, torch.Tensor]:
    """Norms of dL/d(state_t) for t = 0 .. T-1, averaged over the batch.

    ``cell(x_t, state)`` returns the next state: a tensor ``h`` or a tuple
    ``(h, c, ...)``. ``loss_fn`` receives the outputs, shape (batch, time, hidden),
    and returns a scalar (use ``outputs[:, -1]`` for a loss on the last step only).
    Returns ``{"h": (T,)}``, plus ``{"c": (T,)}`` when the state is a pair.
    The norm is taken per example over the hidden units, then averaged.
    """
    _check_cell(cell)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    _check_features(cell, x)
    _check_state(state, x)
    states: list[tuple[torch.Tensor, ...]] = []
    outputs = []
    with torch.enable_grad():
        for x_t in x.unbind(dim=1):
            state = cell(x_t, state)
            parts = state if isinstance(state, tuple) else (state,)
            for part in parts:
                part.retain_grad()  # keep dL/d(state_t) for this intermediate tensor
            states.append(parts)
            outputs.append(parts[0])
        loss = loss_fn(torch.stack(outputs, dim=1))
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            got = (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                   else type(loss).__name__)
            raise ValueError(f"loss_fn must return a scalar tensor, got {got}")
        loss.backward()
    names = ("h", "c")[: len(states[0])]
    result = {}
    for i, name in enumerate(names):
        norms = []
        for parts in states:
            grad = parts[i].grad
            norms.append(torch.zeros(()) if grad is None else grad.norm(dim=-1).mean())
        result[name] = torch.stack(norms).detach()
    return result
