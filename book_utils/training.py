"""Training loops: seed, pick a device, fit, evaluate.

``fit`` returns a *history*: a plain dict of lists that :mod:`book_utils.plots`
can draw without knowing anything about training.

    history["epoch"], ["train_loss"], ["train_accuracy"], ["val_loss"],
    ["val_accuracy"], ["seconds"]            one entry per epoch
    history["step_loss"], ["step_grad_norm"]  one entry per optimiser step
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_float, check_int, check_type

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated."""
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when a GPU is present, else the CPU; ``prefer="cpu"`` forces the CPU."""
    if prefer is not None:
        check_type("prefer", prefer, str)
        if prefer not in ("cpu", "cuda"):
            raise ValueError(f"prefer must be 'cpu', 'cuda' or None, got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' was asked for, but no CUDA device is available")
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        first = next(model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    check_type("device", device, (str, torch.device))
    return torch.device(device)


def _is_classification(outputs: torch.Tensor, targets: torch.Tensor) -> bool:
    return outputs.dim() == 2 and targets.dim() == 1 and not targets.is_floating_point()


def update(
    model: nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """One optimiser step on ``loss``; returns the gradient norm before clipping.

    Zeroes the gradients, backpropagates, rescales them to at most ``clip_norm``
    (``torch.nn.utils.clip_grad_norm_``) when given, steps the optimiser, then
    the scheduler. Every training loop in the book takes its steps through here.
    """
    check_type("model", model, nn.Module)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"loss must be a scalar tensor, got {type(loss).__name__}"
                         + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""))
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    if scheduler is not None:
        check_type("scheduler", scheduler, torch.optim.lr_scheduler.LRScheduler)
    optimizer.zero_grad()
    loss.backward()
    # With max_norm=inf this only measures the norm.
    max_norm = float("inf") if clip_norm is None else clip_norm
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return grad_norm.item()


def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss_fn: LossFn = F.cross_entropy,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss over ``loader`` and, for classifiers, accuracy (a fraction in [0, 1]).

    Every example counts once, whatever the batch sizes: the seeds' "batch
    accuracy" on a single test batch is not what we report.
    """
    check_type("model", model, nn.Module)
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"loader must be iterable over (x, y) batches, got {type(loader).__name__}")
    device = _resolve_device(model, device)
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    classification = False
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            outputs = model(x)
            total_loss += loss_fn(outputs, y).item() * len(y)
            if _is_classification(outputs, y):
                classification = True
                correct += (outputs.argmax(dim=1) == y).sum().item()
            seen += len(y)
    model.train(was_training)
    if seen == 0:
        raise ValueError("loader yielded no examples")
    result = {"loss": total_loss / seen}
    if classification:
        result["accuracy"] = correct / seen
    return result


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    val_loader: Iterable | None = None,
    loss_fn: LossFn = F.cross_entropy,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: str | torch.device | None = None,
    verbose: bool = True,
) -> dict[str, list]:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the history.

    ``clip_norm`` rescales the gradients whenever their global norm exceeds it
    (``torch.nn.utils.clip_grad_norm_``). With ``verbose`` one plain line is
    printed per epoch, which reads well both in a notebook and in the built book.
    ``scheduler``, if given, is stepped after every optimiser step, so its
    horizon is counted in steps: ``epochs * len(train_loader)``.
    """
    check_type("model", model, nn.Module)
    if not hasattr(train_loader, "__iter__"):
        raise TypeError(
            f"train_loader must be iterable over (x, y) batches, got {type(train_loader).__name__}"
        )
    check_int("epochs", epochs, minimum=1)
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    if val_loader is not None and not hasattr(val_loader, "__iter__"):
        raise TypeError(
            f"val_loader must be iterable over (x, y) batches or None, got {type(val_loader).__name__}"
        )
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    if scheduler is not None:
        check_type("scheduler", scheduler, torch.optim.lr_scheduler.LRScheduler)
    device = _resolve_device(model, device)
    model.to(device)

    history: dict[str, list] = {
        key: []
        for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                    "seconds", "step_loss", "step_grad_norm")
    }
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        total_loss, correct, seen, classification = 0.0, 0, 0, False
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            outputs = model(x)
            loss = loss_fn(outputs, y)
            grad_norm = update(model, loss, optimizer, clip_norm=clip_norm, scheduler=scheduler)
            history["step_loss"].append(loss.item())
            history["step_grad_norm"].append(grad_norm)
            total_loss += loss.item() * len(y)
            if _is_classification(outputs, y):
                classification = True
                correct += (outputs.argmax(dim=1) == y).sum().item()
            seen += len(y)
        seconds = time.perf_counter() - start
        if seen == 0:
            raise ValueError("train_loader yielded no examples")

        history["epoch"].append(epoch)
        history["train_loss"].append(total_loss / seen)
        history["train_accuracy"].append(correct / seen if classification else None)
        history["seconds"].append(seconds)
        line = f"epoch {epoch:>2}/{epochs} | train loss {total_loss / seen:.4f}"
        if classification:
            line += f" acc {correct / seen:6.2%}"
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn=loss_fn, device=device)
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val.get("accuracy"))
            line += f" | held-out loss {val['loss']:.4f}"
            if "accuracy" in val:
                line += f" acc {val['accuracy']:6.2%}"
        if verbose:
            print(f"{line} | {seconds:.1f} s", flush=True)
    return history


def train_classifier(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "adam",
    schedule: str = "cosine",
    val_loader: Iterable | None = None,
    clip_norm: float | None = 1.0,
    device: str | torch.device | None = None,
    verbose: bool = True,
) -> dict[str, list]:
    """The book's standard recipe: Adam or RMSProp, a decaying learning rate, clipping.

    ``schedule="cosine"`` decays the rate from ``lr`` to zero over all steps;
    ``"onecycle"`` warms up to ``lr`` over the first quarter, then decays.
    A thin wrapper around :func:`fit` for chapters whose subject is not the
    training loop itself.
    """
    check_type("model", model, nn.Module)
    check_int("epochs", epochs, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    if optimizer not in ("adam", "rmsprop"):
        raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {optimizer!r}")
    if schedule not in ("cosine", "onecycle"):
        raise ValueError(f"schedule must be 'cosine' or 'onecycle', got {schedule!r}")
    if not hasattr(train_loader, "__len__"):
        raise TypeError(f"train_loader must have a length (a DataLoader), got {type(train_loader).__name__}")
    steps = epochs * len(train_loader)
    if steps == 0:
        raise ValueError("train_loader yielded no examples")
    device = _resolve_device(model, device)
    model.to(device)
    make = torch.optim.Adam if optimizer == "adam" else torch.optim.RMSprop
    opt = make(model.parameters(), lr=lr)
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    else:
        # cycle_momentum=False: otherwise OneCycleLR switches on RMSProp's momentum.
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=steps, pct_start=0.25, cycle_momentum=False
        )
    return fit(model, train_loader, epochs=epochs, optimizer=opt, val_loader=val_loader,
               clip_norm=clip_norm, scheduler=scheduler, device=device, verbose=verbose)
