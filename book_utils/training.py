"""The book's one optimisation loop, its evaluation, and the standard recipe.

:func:`fit` trains any model for a number of epochs or of steps, on classification
or regression, and for models that carry a state from batch to batch (streams).
Every chapter trains through it. It returns a *history*: a plain dict of lists
that :mod:`book_utils.plots` can draw without knowing anything about training.

    history["epoch"], ["train_loss"], ["train_accuracy"], ["val_loss"],
    ["val_accuracy"], ["seconds"]            one entry per epoch (one in all for steps=)
    history["step_loss"], ["step_grad_norm"]  one entry per optimiser step

A batch is ``(x, y)``. When ``x`` is a tuple the model is called as ``model(*x)``;
when ``y`` is a tuple the loss is ``loss_fn(outputs, *y)`` (for example a target
and its lengths). Per-step class scores (batch, time, classes) against integer
targets (batch, time) are flattened for the loss, and targets equal to
:data:`IGNORE_INDEX` count for neither loss nor accuracy.
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import (
    check_bool, check_choice, check_device, check_float, check_int, check_lengths, check_tensor,
    check_type, checked_by,
)
from .data import length_mask

LossFn = Callable[..., torch.Tensor]
IGNORE_INDEX = -100  # F.cross_entropy skips targets with this value (its default ignore_index)
STATE_MODES = ("carry", "reset")
LOG_LINES = 11  # the most epoch lines fit(verbose=True) prints: a cell's log stays short


def _to(value, device: torch.device):
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _detach(state):
    """Cut the graph behind a state: the values stay, the history is dropped."""
    if isinstance(state, tuple):
        return tuple(_detach(part) for part in state)
    return state.detach() if isinstance(state, torch.Tensor) else state


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (the CPU for a model without any)."""
    check_type("model", model, nn.Module)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        return model_device(model)
    return check_device(device)


def _check_loader(name: str, loader) -> None:
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"{name} must be iterable over (x, y) batches, got {type(loader).__name__}")


def _check_optimizer(model: nn.Module, optimizer) -> None:
    """``optimizer`` updates some of ``model``'s parameters (not another model's)."""
    check_type("optimizer", optimizer, torch.optim.Optimizer)
    owned = {id(p) for p in model.parameters()}
    if not any(id(p) in owned for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("optimizer must hold the model's parameters, got an optimizer built for "
                         "other parameters (pass model.parameters() to it)")


def _check_takes_state(model: nn.Module, state: str) -> None:
    """With ``state`` set, ``model`` is called as model(x, state): its forward must take a state."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the call decides
        return
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in parameters):
        raise TypeError(f"state={state!r} calls model(x, state) and expects (outputs, state) "
                        f"back: model must take a state, got a {type(model).__name__} whose "
                        f"forward{inspect.signature(model.forward)} does not")


def _shape_of(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_shape_of(v) for v in value) + ")"
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _rows(value) -> list[int]:
    """The first dimension of every tensor in ``value`` (a tensor or a tuple of them)."""
    parts = value if isinstance(value, tuple) else (value,)
    return [len(v) for v in parts if isinstance(v, torch.Tensor) and v.dim() > 0]


def _batch(batch, name: str, k: int) -> tuple:
    """``batch`` as (x, y): tensors (or tuples of tensors) with one row per example in both."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = (f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list))
               else type(batch).__name__)
        raise TypeError(f"{name} must yield (x, y) pairs, got {got} as batch {k}")
    x, y = batch
    for part, value in (("x", x), ("y", y)):
        values = value if isinstance(value, tuple) else (value,)
        if not values or not all(isinstance(v, torch.Tensor) for v in values):
            raise TypeError(f"{name} must yield tensors (or tuples of tensors) as {part}, "
                            f"got {_shape_of(value)} in batch {k}")
    rows = _rows(x) + _rows(y)
    if len(set(rows)) > 1:
        raise ValueError(f"{name} must yield batches whose inputs and targets have one row per "
                         f"example, got x {_shape_of(x)} and y {_shape_of(y)} in batch {k}")
    return x, y


def _check_loss_fn(loss_fn) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(outputs, targets), "
                        f"got {type(loss_fn).__name__}")


def _is_empty(loader) -> bool:
    """True for a loader with a length of 0 (a loader without a length is not known to be)."""
    try:
        return len(loader) == 0
    except TypeError:  # no __len__, or a DataLoader over an IterableDataset
        return False


def _no_examples(name: str) -> ValueError:
    return ValueError(f"{name} yielded no examples: it must yield at least one batch with a "
                      "counted target, got none")


def _forward(model: nn.Module, x, y, loss_fn: LossFn, state_mode: str | None, state,
             name: str, k: int):
    """One forward pass: (loss, outputs, targets, state); flattens per-step class scores.

    torch's own error (a shape or dtype mismatch deep inside the model or the loss) is
    re-raised as a ValueError that names ``model`` and batch ``k`` of loader ``name``.
    """
    try:
        if state_mode is None:
            outputs = model(*x) if isinstance(x, tuple) else model(x)
        else:
            result = model(x, state if state_mode == "carry" else None)
            if not isinstance(result, tuple) or len(result) != 2:
                raise TypeError(f"state={state_mode!r} needs model to return (outputs, state), "
                                f"got {_shape_of(result)} from a {type(model).__name__}")
            outputs, state = result
        if not isinstance(outputs, torch.Tensor):
            raise TypeError(f"model must return a tensor of outputs, got {_shape_of(outputs)} "
                            f"from a {type(model).__name__} (a recurrent layer returns "
                            "(outputs, state): wrap it in models.SequenceClassifier)")
        targets = y
        if (isinstance(y, torch.Tensor) and not y.is_floating_point() and outputs.dim() == 3
                and y.dim() == 2):
            outputs, targets = outputs.flatten(0, 1), y.flatten()
        _check_labels(outputs, targets, loss_fn, name, k)
        loss = (loss_fn(outputs, *targets) if isinstance(targets, tuple)
                else loss_fn(outputs, targets))
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, IndexError) as err:
        raise ValueError(
            f"model must map the inputs {_shape_of(x)} of {name} to outputs that the loss "
            f"accepts against the targets {_shape_of(y)}, got a {type(model).__name__} that "
            f"fails on batch {k}: {err}") from err
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar tensor, got {_shape_of(loss)}")
    return loss, outputs, targets, state


def _count_correct(outputs: torch.Tensor, targets) -> tuple[int, int, int] | None:
    """(correct, counted, not finite) for class scores (n, classes) against class indices (n,).

    A row of scores that holds NaN or inf never counts as correct: a diverged model
    scores nothing. None when the outputs are no class scores.
    """
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point():
        return None
    if outputs.dim() != 2 or targets.dim() != 1:
        return None
    counted = targets != IGNORE_INDEX
    finite = torch.isfinite(outputs).all(dim=1)
    correct = (outputs.argmax(dim=1) == targets) & counted & finite
    return int(correct.sum()), int(counted.sum()), int((counted & ~finite).sum())


class _Tally:
    """Running totals of loss (weighted by counted targets) and, for classifiers, accuracy."""

    def __init__(self) -> None:
        self.loss, self.seen, self.correct, self.counted = 0.0, 0, 0, 0

    def add(self, loss: torch.Tensor, outputs: torch.Tensor, targets) -> tuple[int, int]:
        """Add one batch; return (targets counted, counted rows whose scores are not finite).

        A batch that counts 0 targets (all IGNORE_INDEX) adds nothing.
        """
        first = targets[0] if isinstance(targets, tuple) else targets
        score = _count_correct(outputs, targets)
        n = score[1] if score is not None else len(first)
        if n == 0:
            return 0, 0  # the loss of a batch without targets is 0/0; it carries no information
        self.loss += loss.item() * n
        self.seen += n
        if score is None:
            return n, 0  # no class scores: a non-finite output shows in the loss
        self.correct, self.counted = self.correct + score[0], self.counted + score[1]
        return n, score[2]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.counted if self.counted else None


def _check_labels(outputs: torch.Tensor, targets, loss_fn: LossFn, name: str, k: int) -> None:
    """Class indices within the model's scores (torch would raise an IndexError on them)."""
    if (loss_fn is F.cross_entropy and isinstance(targets, torch.Tensor)
            and not targets.is_floating_point() and targets.numel()):
        valid = targets[targets != IGNORE_INDEX]
        if valid.numel() and (valid.min() < 0 or valid.max() >= outputs.shape[-1]):
            raise ValueError(f"{name} must yield targets y that are class indices in "
                             f"[0, {outputs.shape[-1] - 1}] (or IGNORE_INDEX), got labels from "
                             f"{valid.min().item()} to {valid.max().item()} in batch {k}")


def update(
    model: nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    allow_nonfinite: bool = False,
    step: int | None = None,
) -> float:
    """One optimiser step on ``loss``; returns the gradient norm before clipping.

    Zeroes the gradients, backpropagates, rescales them to at most ``clip_norm``
    (``torch.nn.utils.clip_grad_norm_``) when given, steps the optimiser, then
    the scheduler. A gradient norm that is not finite raises ``FloatingPointError``
    before the weights change (naming ``step`` when given), unless ``allow_nonfinite``.
    """
    check_type("model", model, nn.Module)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"loss must be a scalar tensor, got {type(loss).__name__}"
                         + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""))
    if not loss.is_floating_point():
        raise TypeError(f"loss must be a floating-point scalar tensor, got dtype {loss.dtype}")
    if not loss.requires_grad:
        raise ValueError("loss must be computed from the model's parameters (requires_grad), "
                         "got a tensor without a gradient graph")
    _check_optimizer(model, optimizer)
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    if scheduler is not None:
        check_type("scheduler", scheduler, torch.optim.lr_scheduler.LRScheduler)
        if scheduler.optimizer is not optimizer:
            raise ValueError("scheduler must drive optimizer, got a scheduler built for "
                             "another optimizer")
    check_bool("allow_nonfinite", allow_nonfinite)
    if step is not None:
        check_int("step", step, minimum=0)
    optimizer.zero_grad()
    loss.backward()
    updated = [p for group in optimizer.param_groups for p in group["params"]]
    if all(p.grad is None for p in updated):
        raise ValueError("loss must be computed from the parameters optimizer updates, got a "
                         "loss that none of them affects (was it computed by another model?)")
    # With max_norm=inf this only measures the norm.
    max_norm = float("inf") if clip_norm is None else clip_norm
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    if not allow_nonfinite and not math.isfinite(grad_norm.item()):
        where = f" at step {step}" if step is not None else ""
        raise FloatingPointError(f"training diverged{where}: the gradient norm is "
                                 f"{grad_norm.item()}; lower the learning rate or clip gradients")
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
    state: str | None = None,
) -> dict[str, float]:
    """Mean loss over ``loader`` and, for classifiers, accuracy (a fraction in [0, 1]).

    Every example (every counted step, for per-step targets) weighs the same,
    whatever the batch sizes. With ``state="carry"`` the batches are consecutive
    pieces of streams and the state is carried from one to the next. A model whose
    scores or loss are NaN or infinite is not scored: ``FloatingPointError``.
    """
    check_type("model", model, nn.Module)
    _check_loader("loader", loader)
    _check_loss_fn(loss_fn)
    if state is not None:
        check_choice("state", state, STATE_MODES)
        _check_takes_state(model, state)
    return _evaluate(model, loader, loss_fn, _resolve_device(model, device), state, "loader")


def _evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn, device: torch.device,
              state: str | None, name: str, allow_nonfinite: bool = False) -> dict[str, float]:
    """:func:`evaluate` once its arguments are checked; ``name`` is the loader's, for messages.

    Scores or a loss that are not finite raise ``FloatingPointError``: a diverged model
    is not scored. With ``allow_nonfinite`` (fit's, for an explosion shown on purpose)
    the loss is kept as it is and such rows count as wrong.
    """
    was_training = model.training
    model.eval()
    tally, carried = _Tally(), None
    try:
        with torch.no_grad():
            for k, batch in enumerate(loader):
                x, y = _batch(batch, name, k)
                x, y = _to(x, device), _to(y, device)
                loss, outputs, targets, carried = _forward(model, x, y, loss_fn, state, carried,
                                                           name, k)
                counted, bad = tally.add(loss, outputs, targets)
                if counted and not allow_nonfinite and (bad or not math.isfinite(loss.item())):
                    raise FloatingPointError(
                        f"model gives scores or a loss that are not finite (NaN or inf) on batch "
                        f"{k} of {name}: a diverged model cannot be scored; check the inputs "
                        "for NaN or inf, or train again with a lower learning rate")
    finally:
        model.train(was_training)
    if tally.seen == 0:
        raise _no_examples(name)
    result = {"loss": tally.loss / tally.seen}
    if tally.accuracy is not None:
        result["accuracy"] = tally.accuracy
    return result


def fit(
    model: nn.Module,
    batches: Iterable,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int | None = None,
    steps: int | None = None,
    val_loader: Iterable | None = None,
    loss_fn: LossFn = F.cross_entropy,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: str | torch.device | None = None,
    state: str | None = None,
    allow_nonfinite: bool = False,
    verbose: bool = True,
) -> dict[str, list]:
    """Train ``model`` for ``epochs`` passes over ``batches``, or for ``steps`` updates.

    Give exactly one of ``epochs`` and ``steps``. With ``steps`` the batches are
    drawn until that many updates are done (starting a new pass when an iterable
    ends), which suits an endless :func:`random_batches`.

    ``state="carry"``: the model is called as ``model(x, state)`` and returns
    ``(outputs, state)``; the state is carried from each batch to the next and
    detached after every update (truncated backpropagation through time), and
    starts from ``None`` at every pass. ``state="reset"`` calls ``model(x, None)``
    every time.

    ``clip_norm`` rescales the gradients whenever their global norm exceeds it.
    ``scheduler`` is stepped after every update. A loss or gradient norm that is
    not finite stops training with the step number, unless ``allow_nonfinite``
    (for a chapter that shows an explosion on purpose: scores that are NaN or
    infinite then count as wrong, never as right). With ``verbose`` one plain
    line is printed for the first epoch, the last, and evenly between them: at most
    :data:`LOG_LINES` lines, so a long run stays readable in a notebook. The model's
    train/eval mode is restored at the end.
    """
    check_type("model", model, nn.Module)
    _check_loader("batches", batches)
    _check_optimizer(model, optimizer)
    _check_loss_fn(loss_fn)
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs and steps, got epochs={epochs}, steps={steps}")
    if epochs is not None:
        check_int("epochs", epochs, minimum=1)
    if steps is not None:
        check_int("steps", steps, minimum=1)
    if val_loader is not None:
        _check_loader("val_loader", val_loader)
        if _is_empty(val_loader):
            raise _no_examples("val_loader")  # before a whole epoch of training, not after
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    if scheduler is not None:
        check_type("scheduler", scheduler, torch.optim.lr_scheduler.LRScheduler)
    if scheduler is not None and scheduler.optimizer is not optimizer:
        raise ValueError("scheduler must drive optimizer, got a scheduler built for another "
                         "optimizer")
    if state is not None:
        check_choice("state", state, STATE_MODES)
        _check_takes_state(model, state)
    check_bool("allow_nonfinite", allow_nonfinite)
    check_bool("verbose", verbose)
    device = _resolve_device(model, device)
    model.to(device)
    was_training = model.training

    history: dict[str, list] = {
        key: []
        for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                    "seconds", "step_loss", "step_grad_norm")
    }
    passes = range(1, epochs + 1) if epochs is not None else itertools.count(1)
    total = epochs or (math.ceil(steps / len(batches)) if hasattr(batches, "__len__") else None)
    every = math.ceil(total / (LOG_LINES - 1)) if total else 1  # first + every k-th + last
    done = 0
    for epoch in passes:
        model.train()
        start = time.perf_counter()
        tally, carried = _Tally(), None
        for k, batch in enumerate(batches):
            x, y = _batch(batch, "batches", k)
            x, y = _to(x, device), _to(y, device)
            loss, outputs, targets, carried = _forward(model, x, y, loss_fn, state, carried,
                                                       "batches", k)
            carried = _detach(carried)  # else the next backward would run into this batch
            done += 1
            counted, bad = tally.add(loss, outputs, targets)
            # A batch whose targets are all IGNORE_INDEX has loss 0/0 and zero gradients.
            tolerate = allow_nonfinite or not counted
            if not tolerate and (bad or not math.isfinite(loss.item())):
                raise FloatingPointError(
                    f"training diverged at step {done}: the loss is {loss.item()}; lower the "
                    "learning rate, clip gradients, or check the data for NaN or inf")
            grad_norm = update(model, loss, optimizer, clip_norm=clip_norm, scheduler=scheduler,
                               allow_nonfinite=tolerate, step=done)
            history["step_loss"].append(loss.item())
            history["step_grad_norm"].append(grad_norm)
            if steps is not None and done == steps:
                break
        seconds = time.perf_counter() - start
        if tally.seen == 0:
            raise _no_examples("batches")
        history["epoch"].append(epoch)
        history["train_loss"].append(tally.loss / tally.seen)
        history["train_accuracy"].append(tally.accuracy)
        history["seconds"].append(seconds)
        line = f"epoch {epoch:>2}" + (f"/{epochs}" if epochs else "") + \
            f" | train loss {tally.loss / tally.seen:.4f}"
        if tally.accuracy is not None:
            line += f" acc {tally.accuracy:6.2%}"
        if val_loader is not None:
            val = _evaluate(model, val_loader, loss_fn, device, state, "val_loader",
                            allow_nonfinite)
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val.get("accuracy"))
            line += f" | held-out loss {val['loss']:.4f}"
            if "accuracy" in val:
                line += f" acc {val['accuracy']:6.2%}"
        last = epoch == epochs or (steps is not None and done == steps)
        if verbose and (epoch == 1 or epoch % every == 0 or last):
            print(f"{line} | {seconds:.1f} s", flush=True)
        if steps is not None and done == steps:
            break
    model.train(was_training)
    return history


def random_batches(*tensors: torch.Tensor, batch_size: int, seed: int = 0) -> Iterator[tuple]:
    """Endless minibatches of rows drawn at random (with replacement), seeded.

    ``random_batches(x, y, batch_size=32)`` yields ``(x[i], y[i])`` for a fresh
    random index ``i`` of ``batch_size`` rows each time; use it with
    ``fit(..., steps=N)``. Every tensor must have the same number of rows.
    """
    if not tensors:
        raise ValueError("random_batches needs at least one tensor, got none")
    for k, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            raise TypeError(f"tensors[{k}] must be a tensor with rows, got {type(t).__name__}")
    rows = len(tensors[0])
    if any(len(t) != rows for t in tensors) or rows == 0:
        raise ValueError(f"tensors must have the same, non-zero number of rows, "
                         f"got {[len(t) for t in tensors]}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def draw():
        while True:
            index = torch.randint(0, rows, (batch_size,), generator=generator)
            yield tuple(t[index.to(t.device)] for t in tensors)

    return draw()


def make_optimizer(
    model: nn.Module, *, lr: float, total_steps: int, optimizer: str = "adam",
    schedule: str = "cosine",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The book's standard recipe: Adam or RMSProp with a decaying learning rate.

    ``schedule="cosine"`` decays the rate from ``lr`` to zero over ``total_steps``;
    ``"onecycle"`` warms up to ``lr`` over the first quarter, then decays.
    """
    check_type("model", model, nn.Module)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model must have trainable parameters to optimise, got a "
                         f"{type(model).__name__} without any")
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    check_choice("optimizer", optimizer, ("adam", "rmsprop"))
    check_choice("schedule", schedule, ("cosine", "onecycle"))
    make = torch.optim.Adam if optimizer == "adam" else torch.optim.RMSprop
    opt = make(model.parameters(), lr=lr)
    if schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    # cycle_momentum=False: otherwise OneCycleLR switches on RMSProp's momentum. torch divides
    # by zero when the warm-up is exactly one step (a quarter of 4 steps): warm up a little longer.
    warm_up = 0.25 if total_steps != 4 else 0.3
    return opt, torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total_steps, pct_start=warm_up, cycle_momentum=False)


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
    """:func:`fit` with :func:`make_optimizer`'s recipe and gradient clipping.

    For chapters whose subject is not the training loop itself.
    """
    check_type("model", model, nn.Module)
    check_int("epochs", epochs, minimum=1)
    if not hasattr(train_loader, "__len__"):
        raise TypeError(f"train_loader must have a length (a DataLoader), got {type(train_loader).__name__}")
    if len(train_loader) == 0:
        raise ValueError("train_loader must hold at least one batch, got an empty loader")
    check_bool("verbose", verbose)
    device = _resolve_device(model, device)
    model.to(device)
    opt, scheduler = make_optimizer(model, lr=lr, total_steps=epochs * len(train_loader),
                                    optimizer=optimizer, schedule=schedule)
    return fit(model, train_loader, epochs=epochs, optimizer=opt, val_loader=val_loader,
               clip_norm=clip_norm, scheduler=scheduler, device=device, verbose=verbose)


def _check_masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> None:
    check_tensor("values", values, dim=(2, 3, 4), floating=True, layout="(batch, time, ...)",
                 nonempty=True)
    check_lengths(lengths, values.shape[0], values.shape[1], of="values")
    valid = length_mask(lengths, values.shape[1]).to(values.device)
    if not bool(torch.isfinite(values[valid]).all()):
        raise ValueError("values must hold finite numbers at the valid steps (padding may hold "
                         "anything), got NaN or inf")


@checked_by(_check_masked_mean)
def masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` (batch, time, ...) over the valid steps only.

    Every valid step of every sequence weighs the same, so a long sequence
    counts for more than a short one. The padding is never read, so whatever
    it holds, even NaN, counts for nothing.
    """
    valid = length_mask(lengths, values.shape[1]).to(values.device)   # (batch, time)
    return values[valid].mean()                                        # the valid steps alone


def _check_masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
) -> None:
    check_tensor("logits", logits, dim=3, floating=True, layout="(batch, time, classes)",
                 nonempty=True)
    check_tensor("targets", targets, dim=2, integer=True, layout="(batch, time)")
    if targets.shape != logits.shape[:2]:
        raise ValueError(f"targets must have shape (batch, time) = {tuple(logits.shape[:2])}, "
                         f"got {tuple(targets.shape)}")
    check_lengths(lengths, logits.shape[0], logits.shape[1], of="logits")
    valid = length_mask(lengths, logits.shape[1]).to(logits.device)
    scores, labels = logits[valid], targets.to(logits.device)[valid]
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("logits must hold finite scores at the valid steps (padding may hold "
                         "anything), got NaN or inf")
    classes = logits.shape[2]
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"targets must hold class indices in [0, {classes - 1}] at the valid "
                         f"steps, got values from {labels.min().item()} to {labels.max().item()}")


@checked_by(_check_masked_cross_entropy)
def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy averaged over the valid steps of a per-step classifier.

    ``logits`` is (batch, time, classes) and ``targets`` (batch, time) holds a
    class index at each step; whatever ``logits`` and ``targets`` hold past a
    sequence's length is never read.
    """
    valid = length_mask(lengths, logits.shape[1]).to(logits.device)   # (batch, time)
    return F.cross_entropy(logits[valid], targets.to(logits.device)[valid])
