"""Argument checks shared by the public helpers.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, what was expected and what was received, so a reader can fix the call.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Any, Callable, Iterable

import torch
from torch import nn


def check_type(name: str, value: Any, types: type | tuple[type, ...]) -> None:
    if not isinstance(value, types):
        expected = (
            " or ".join(t.__name__ for t in types) if isinstance(types, tuple) else types.__name__
        )
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


_WIDTH, _LENGTH, _SAMPLES, _STEPS = 16_384, 1_000_000, 10_000_000, 1_000_000

#: The largest value an int argument may take, by the argument's name. Past these a call
#: would hang or exhaust memory long before it finished (a size of 2**63 loops "forever").
#: :func:`check_int` applies the limit of the name it is given, so every helper gets them.
LIMITS: dict[str, int] = {
    "seed": 2**32 - 1,                      # NumPy's generators take 32 bits
    # passes, updates and repeats
    "epochs": 10_000, "steps": _STEPS, "train_steps": _STEPS, "total_steps": _STEPS,
    "max_steps": _STEPS, "repeats": 1_000,
    # time steps, windows and distances in time
    **dict.fromkeys(("length", "each length", "seq_len", "min_length", "max_length", "window",
                     "horizon", "chunk", "chunk_len", "lag", "max_lag", "max_shift", "smooth",
                     "width", "T", "train_length", "max_parallel"), _LENGTH),
    # layers of a stack
    "num_layers": 64, "layer": 64, "layer_index": 64,
    # widths of a layer, vocabularies and classes, token ids
    **dict.fromkeys(("input_size", "hidden_size", "embedding_size", "vocab_size",
                     "attention_size", "output_size", "vector_size", "n_classes", "n_symbols",
                     "components", "n_components", "start", "d_model", "d_key", "d_value",
                     "head_size"), _WIDTH),
    "parameters": 100_000_000, "target": 100_000_000, "max_order": 64, "order": 64,
    # examples
    **dict.fromkeys(("n", "n_test", "n_eval", "n_streams", "batch_size", "per_class",
                     "per_length", "trials", "pairs"), _SAMPLES),
    "threads": 4_096,
}
#: The most numbers a generated data set may hold (1 GiB of float32).
MAX_ELEMENTS = 1 << 28
#: The largest float32 number: a bigger value overflows when it meets a tensor.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def check_int(name: str, value: Any, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """An int (not a bool) in [minimum, maximum]; ``maximum`` defaults to ``LIMITS[name]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is None and name in LIMITS:
        if value > LIMITS[name]:
            raise ValueError(f"{name} must be at most {LIMITS[name]:,}, the book's limit "
                             f"(LIMITS[{name!r}] in book_utils._checks), got {value:,}")
    elif maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")
    return int(value)


def check_elements(name: str, count: int) -> None:
    """A generated data set of ``count`` numbers must fit in :data:`MAX_ELEMENTS`."""
    if count > MAX_ELEMENTS:
        raise ValueError(f"{name} would hold {count:,} numbers, more than the book's limit of "
                         f"{MAX_ELEMENTS:,} (MAX_ELEMENTS in book_utils._checks): ask for fewer "
                         "or shorter sequences")


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{name} must be at most {FLOAT32_MAX:.4g} in size, the largest "
                         f"float32 number, got {value:g}")
    if minimum is not None:
        if strict_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not strict_minimum and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_tensor(
    name: str,
    value: Any,
    *,
    dim: int | tuple[int, ...] | None = None,
    floating: bool = False,
    integer: bool = False,
    layout: str | None = None,
    nonempty: bool = False,
    finite: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor with ``dim`` dimensions.

    ``layout`` is a human description of the expected shape, such as
    ``"(batch, time, features)"``, used in the error message. ``nonempty`` refuses a
    tensor with no elements; ``finite`` refuses one holding NaN or an infinity.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else dim
        if value.dim() not in dims:
            shape = layout or " or ".join(f"{d}-D" for d in dims)
            raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    if nonempty and value.numel() == 0:
        shape = f"{layout}, " if layout else ""
        raise ValueError(f"{name} must not be empty ({shape}every size >= 1), "
                         f"got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must hold finite numbers, got NaN or inf")
    return value


def check_step(
    x: tuple[str, Any], states: dict[str, Any], W_in: tuple[str, Any], W_rec: tuple[str, Any],
    biases: dict[str, Any], *, blocks: int = 1,
) -> None:
    """The arguments of one recurrent step, each given with its name, in the book's layout.

    ``x`` (batch, input_size); each state (batch, H); ``W_in`` (input_size, blocks * H);
    ``W_rec`` (H, blocks * H), where ``blocks`` is the number of gate blocks side by side;
    each bias (blocks * H,). All floating point, of one dtype.
    """
    (x_name, x_t), (in_name, W_x), (rec_name, W_h) = x, W_in, W_rec
    check_tensor(x_name, x_t, dim=2, floating=True, layout="(batch, input_size)")
    check_tensor(rec_name, W_h, dim=2, floating=True, layout="(H, blocks * H)")
    batch, features = x_t.shape
    H = W_h.shape[0]
    width = blocks * H
    expected = {rec_name: (W_h, (H, width)), in_name: (W_x, (features, width)),
                **{name: (value, (batch, H)) for name, value in states.items()},
                **{name: (value, (width,)) for name, value in biases.items()}}
    for name, (value, shape) in expected.items():
        check_tensor(name, value, floating=True)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} to match {x_name} "
                             f"{tuple(x_t.shape)} and {rec_name} {tuple(W_h.shape)} "
                             f"({blocks} block(s) of H={H}), got {tuple(value.shape)}")
        if value.dtype != x_t.dtype:
            raise TypeError(f"{name} must have the dtype of {x_name}, {x_t.dtype}, "
                            f"got {value.dtype}")


def check_dtype(name: str, value: torch.Tensor, module: torch.nn.Module) -> None:
    """``value`` must have the dtype of ``module``'s weights: torch refuses to mix them."""
    weight = next(module.parameters(), None)
    if weight is not None and value.dtype != weight.dtype:
        raise TypeError(
            f"{name} must have the dtype of the {type(module).__name__}'s weights, "
            f"{weight.dtype}, got {value.dtype}: convert one of them, "
            f"e.g. {name}.to({weight.dtype}) or model.to({value.dtype})"
        )


def check_lengths(
    lengths: Any, batch: int, max_length: int | None = None, *, of: str | None = None
) -> torch.Tensor:
    """``lengths``: a (batch,) integer tensor of valid steps, each in [1, max_length].

    ``of`` names the tensor whose sequences they measure, for the message.
    """
    check_tensor("lengths", lengths, dim=1, integer=True, layout="(batch,)")
    if lengths.shape[0] != batch:
        sequences = f"sequence of {of} ({batch} in all)" if of else f"sequence ({batch})"
        raise ValueError(f"lengths must hold one length per {sequences}, got {lengths.shape[0]}")
    if batch and lengths.min() < 1:
        raise ValueError(f"every length must be >= 1, got {lengths.min().item()} in lengths")
    if max_length is not None and batch and lengths.max() > max_length:
        raise ValueError(
            f"lengths must not exceed the {max_length} time steps of {of or 'the batch'}, "
            f"got {lengths.max().item()}"
        )
    return lengths


def checked_by(check: Callable[..., None]) -> Callable:
    """Decorate a function so that ``check(*args, **kwargs)`` runs before it.

    The guards then live in ``check``, and the function that a chapter displays
    with ``show_source`` holds the algorithm alone.
    """

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def checked(*args, **kwargs):
            check(*args, **kwargs)
            return function(*args, **kwargs)

        return checked

    return decorate


def check_symbols(symbols: Any) -> str:
    """``symbols``: a non-empty string of distinct characters (a vocabulary's alphabet)."""
    check_type("symbols", symbols, str)
    if not symbols:
        raise ValueError("symbols must hold at least one character, got ''")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols must not repeat a character, got {symbols!r}")
    return symbols


def check_layer(name: str, module) -> None:
    """``module`` is a recurrent layer called like ``nn.RNN(batch_first=True)``: module(x, state).

    A one-off check for the helpers that run a layer (not for a training step): it reads
    the signature of ``module.forward``.
    """
    check_type(name, module, nn.Module)
    if isinstance(module, nn.RNNBase) and not module.batch_first:
        raise ValueError(f"{name} must read (batch, time, features): build it with "
                         f"batch_first=True, got {type(module).__name__} with batch_first=False")
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in parameters):
        raise TypeError(f"{name} must be a recurrent layer called like nn.RNN(batch_first=True), "
                        f"as {name}(x, state) -> (outputs, state), got {type(module).__name__}, "
                        "whose forward takes no state")


def check_layer_input(name: str, x, module: nn.Module) -> None:
    """``x`` (batch, time, features), not empty, that ``module`` can read: its input size and dtype."""
    check_tensor(name, x, dim=3, floating=True, layout="(batch, time, features)")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(x.shape)}")
    check_tensor(name, x, nonempty=True, layout="(batch, time, features)")
    expected = getattr(module, "input_size", None)
    if isinstance(expected, int) and x.shape[2] != expected:
        raise ValueError(f"{name} must have {expected} features in its last dimension, "
                         f"got shape {tuple(x.shape)}")
    check_dtype(name, x, module)


def check_layer_state(name: str, state, x: torch.Tensor, module: nn.Module) -> None:
    """``state`` is what ``module`` starts ``x`` from: None, a (layers, batch, hidden) tensor,
    or for an LSTM a tuple (h, c) of two such tensors, in the dtype of the module's weights.
    """
    if state is None:
        return
    if isinstance(module, nn.LSTM) or isinstance(state, tuple):
        if not isinstance(state, tuple) or len(state) != 2:
            what = f"a tuple of {len(state)}" if isinstance(state, tuple) else type(state).__name__
            raise TypeError(f"{name} must be None or a tuple (h, c) of (layers, batch, hidden) "
                            f"tensors for {type(module).__name__}, got {what}")
        parts = {f"{name}[0]": state[0], f"{name}[1]": state[1]}
    else:
        parts = {name: state}
    layers = hidden = None
    if isinstance(module, nn.RNNBase):
        layers = module.num_layers * (2 if module.bidirectional else 1)
    if isinstance(getattr(module, "hidden_size", None), int):
        hidden = module.hidden_size
    for i, (part, value) in enumerate(parts.items()):
        check_tensor(part, value, dim=3, floating=True, layout="(layers, batch, hidden)")
        size = getattr(module, "proj_size", 0) if i == 0 else 0  # an LSTM's h may be projected
        expected = (layers or value.shape[0], x.shape[0], size or hidden or value.shape[2])
        if tuple(value.shape) != expected:
            raise ValueError(f"{part} must have shape {expected} (layers, batch, hidden) to fit "
                             f"{type(module).__name__} and x {tuple(x.shape)}, "
                             f"got {tuple(value.shape)}")
        check_dtype(part, value, module)


def check_val_loader(val_loader) -> None:
    """None, or batches to score after every epoch: an empty one would score nothing."""
    if val_loader is None:
        return
    if not hasattr(val_loader, "__iter__"):
        raise TypeError(f"val_loader must be None or iterable over (x, y) batches, "
                        f"got {type(val_loader).__name__}")
    if hasattr(val_loader, "__len__") and len(val_loader) == 0:
        raise ValueError(f"val_loader must hold at least one batch, "
                         f"got an empty {type(val_loader).__name__}")


def check_device(device: Any) -> torch.device:
    """``device``: a str or torch.device that names a device existing on this machine."""
    check_type("device", device, (str, torch.device))
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must name a device such as 'cpu' or 'cuda', got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device must be one that exists here (cpu), got {device}: "
                         "no CUDA device is available")
    return device
