"""Measure how far gradients reach back through time.

:func:`state_gradient_norms` runs a cell over a sequence, keeps every state,
backpropagates a loss computed from the outputs, and returns the size of
dL/dh_t (and dL/dc_t for cells with a memory state) at every step t.
"""

from __future__ import annotations

from typing import Callable

import torch

from ._checks import check_tensor


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
    if not callable(cell):
        raise TypeError(f"cell must be callable, got {type(cell).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(x.shape)}")
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
            raise ValueError("loss_fn must return a scalar tensor")
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
