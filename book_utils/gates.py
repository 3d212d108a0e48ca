"""Look inside gated cells: set gate biases, record gate activations, run the adding problem.

The LSTM and GRU helpers accept PyTorch's layers (``nn.LSTM``, ``nn.LSTMCell``,
``nn.GRU``, ``nn.GRUCell``) and the book's scratch versions alike, so a model
trained with the fast PyTorch layer can be opened up with the scratch cell.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F

from . import tasks, training
from ._checks import check_choice, check_float, check_int, check_tensor, check_type
from .cells import GRUCell, LSTMCell, ScratchGRU, ScratchLSTM
from .data import make_loader
from .models import SequenceRegressor

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
    H = module.hidden_size
    k = names.index(gate)
    rows = slice(k * H, (k + 1) * H)
    if isinstance(module, LSTMCell):
        return module.b[rows], None
    if isinstance(module, GRUCell):
        return module.b_x[rows], module.b_h[rows]
    if isinstance(module, (nn.LSTM, nn.GRU)) and (module.num_layers != 1 or module.bidirectional):
        raise ValueError(
            f"module must be a single-layer, one-directional {type(module).__name__}, got "
            f"num_layers={module.num_layers}, bidirectional={module.bidirectional}"
        )
    if not module.bias:
        raise ValueError("module must have bias=True, got bias=False")
    suffix = "_l0" if isinstance(module, (nn.LSTM, nn.GRU)) else ""
    return getattr(module, f"bias_ih{suffix}")[rows], getattr(module, f"bias_hh{suffix}")[rows]


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
    max_lag = check_int("max_lag", max_lag, minimum=3)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    main, _ = _gate_biases(module, "f" if isinstance(module, LSTM_MODULES) else "z")
    tau = 2.0 + (max_lag - 2.0) * torch.rand(main.shape, generator=generator)
    bias = torch.log(tau - 1.0).to(main.device, main.dtype)
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
    torch.manual_seed(check_int("seed", seed, minimum=0))
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](2, hidden_size, batch_first=True)
    if kind != "rnn" and keep_bias is None:
        long_memory_init(layer, steps, seed=seed)
    elif kind != "rnn":
        set_gate_bias(layer, "f" if kind == "lstm" else "z", keep_bias)
    model = SequenceRegressor(layer, hidden_size)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(1.0)
    return model


def run_adding_problem(
    kind: str,
    steps: int,
    *,
    hidden_size: int = 32,
    train_steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-2,
    clip_norm: float = 1.0,
    seed: int = 0,
    n_test: int = 1000,
    keep_bias: float | None = None,
    device: str | torch.device | None = None,
) -> dict:
    """Train one adding-problem model on fresh data and measure its held-out MSE.

    Every model sees ``train_steps`` minibatches of ``batch_size`` new sequences
    (no example twice) and is trained with Adam and gradient clipping. Returns
    ``{"model", "mse", "seconds", "history"}`` where ``mse`` is on ``n_test``
    separate sequences and ``history`` is the :func:`training.fit` history.
    ``keep_bias`` is passed to :func:`make_adding_model`.
    """
    model = make_adding_model(kind, hidden_size, steps, seed=seed, keep_bias=keep_bias)
    train_steps = check_int("train_steps", train_steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    n_test = check_int("n_test", n_test, minimum=1)
    device = training.pick_device() if device is None else torch.device(device)
    x, y = tasks.adding_problem(train_steps * batch_size, steps, seed=seed)
    x_test, y_test = tasks.adding_problem(n_test, steps, seed=seed + 1_000_003)
    loader = make_loader(x, y, batch_size=batch_size)
    optimizer = torch.optim.Adam(model.to(device).parameters(), lr=lr)
    start = time.perf_counter()
    history = training.fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=F.mse_loss,
                           clip_norm=clip_norm, device=device, verbose=False)
    seconds = time.perf_counter() - start
    test = training.evaluate(model, make_loader(x_test, y_test, batch_size=n_test),
                             loss_fn=F.mse_loss, device=device)
    return {"model": model, "mse": test["loss"], "seconds": seconds, "history": history}
