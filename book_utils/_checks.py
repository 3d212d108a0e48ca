"""Argument checks shared by the public helpers.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, what was expected and what was received, so a reader can fix the call.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Iterable

import torch


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


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


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
        raise ValueError(f"every length must be >= 1, got {lengths.min().item()}")
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
