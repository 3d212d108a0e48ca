"""Small models assembled from recurrent layers and ``torch.nn`` parts."""

from __future__ import annotations

from torch import nn
import torch

from ._checks import check_choice, check_int, check_tensor, check_type
from .cells import ScratchRNN

RECURRENT_KINDS = ("rnn", "scratch_rnn", "lstm", "gru")


def make_recurrent(
    kind: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh"
) -> nn.Module:
    """A one-layer recurrent layer that reads (batch, time, features).

    ``kind`` is ``"rnn"`` (``nn.RNN``), ``"scratch_rnn"`` (our :class:`ScratchRNN`),
    ``"lstm"`` (``nn.LSTM``) or ``"gru"`` (``nn.GRU``).
    """
    check_choice("kind", kind, RECURRENT_KINDS)
    check_int("input_size", input_size, minimum=1)
    check_int("hidden_size", hidden_size, minimum=1)
    if kind == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True)
    if kind == "scratch_rnn":
        return ScratchRNN(input_size, hidden_size, nonlinearity)
    if nonlinearity != "tanh":
        raise ValueError(f"nonlinearity applies to 'rnn' and 'scratch_rnn' only, got {kind!r}")
    layer = nn.LSTM if kind == "lstm" else nn.GRU
    return layer(input_size, hidden_size, batch_first=True)


class SequenceClassifier(nn.Module):
    """Read a sequence, then classify it from the last state: logits = h_T V + c.

    ``recurrent`` is any layer called like ``nn.RNN(batch_first=True)``: it
    maps x of shape (batch, time, features) to (outputs, final_state) with
    outputs of shape (batch, time, hidden_size).
    """

    def __init__(self, recurrent: nn.Module, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        check_type("recurrent", recurrent, nn.Module)
        self.recurrent = recurrent
        self.head = nn.Linear(
            check_int("hidden_size", hidden_size, minimum=1),
            check_int("n_classes", n_classes, minimum=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        outputs, _ = self.recurrent(x)
        return self.head(outputs[:, -1])


def make_classifier(
    kind: str = "rnn",
    input_size: int = 28,
    hidden_size: int = 128,
    n_classes: int = 10,
    nonlinearity: str = "tanh",
) -> SequenceClassifier:
    """A sequence classifier for MNIST rows by default: 28 steps of 28 pixels, 10 classes."""
    recurrent = make_recurrent(kind, input_size, hidden_size, nonlinearity)
    return SequenceClassifier(recurrent, hidden_size, n_classes)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable scalars in ``model``."""
    check_type("model", model, nn.Module)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- chapter 2: a no-memory baseline, and a cell whose output is not its state ---


class LastStepClassifier(nn.Module):
    """A feed-forward classifier that sees only the last step of a sequence.

    ``logits = relu(x_T W_1 + b_1) W_2 + b_2`` for ``x`` of shape
    (batch, time, features). It has no state, so it cannot use anything that
    happened before the last step: the no-memory baseline.
    """

    def __init__(self, input_size: int, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(check_int("input_size", input_size, minimum=1),
                      check_int("hidden_size", hidden_size, minimum=1)),
            nn.ReLU(),
            nn.Linear(hidden_size, check_int("n_classes", n_classes, minimum=2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        return self.net(x[:, -1])


class ReadoutRNN(nn.Module):
    """A recurrent layer whose output y_t is a projection of its state h_t.

        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h),    y_t = h_t W_hy + b_y

    Called like ``nn.RNN(batch_first=True)``: ``forward(x, h0=None)`` takes ``x``
    of shape (batch, time, input_size) and returns ``(y, h_n)`` with ``y`` of
    shape (batch, time, output_size) and ``h_n`` of shape (1, batch, hidden_size).
    The state carried from step to step is h, never y.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = make_recurrent("rnn", input_size, hidden_size)
        self.readout = nn.Linear(hidden_size, check_int("output_size", output_size, minimum=1))

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        states, h_n = self.rnn(x, h0)
        return self.readout(states), h_n

# --- chapter 4: a classifier at every step, for long streams read in chunks ---


class StepClassifier(SequenceClassifier):
    """Classify every step of a sequence: logits_t = h_t V + c.

    ``forward(x, state=None)`` takes x of shape (batch, time, features) and the
    state the recurrent layer ended the previous chunk with (or ``None`` for
    zeros), and returns ``(logits, state)`` with logits of shape
    (batch, time, n_classes). Passing the state back in lets a long stream be
    read one chunk at a time (truncated backpropagation through time). It is
    built like :class:`SequenceClassifier`, whose constructor it shares.
    """

    def forward(self, x: torch.Tensor, state=None):
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        outputs, state = self.recurrent(x, state)
        return self.head(outputs), state


def make_step_classifier(
    kind: str = "rnn", input_size: int = 2, hidden_size: int = 64, n_classes: int = 2,
    nonlinearity: str = "tanh",
) -> StepClassifier:
    """A :class:`StepClassifier` over ``make_recurrent(kind, ...)``."""
    recurrent = make_recurrent(kind, input_size, hidden_size, nonlinearity)
    return StepClassifier(recurrent, hidden_size, n_classes)

# --- chapter 5: a regressor head for the adding problem ---


class SequenceRegressor(nn.Module):
    """Read a sequence, then predict one number from the last output: y = h_T v + c.

    ``recurrent`` is any layer called like ``nn.RNN(batch_first=True)``, for
    example ``nn.LSTM``, ``nn.GRU`` or :class:`book_utils.cells.ScratchLSTM`.
    Returns predictions of shape (batch,).
    """

    def __init__(self, recurrent: nn.Module, hidden_size: int) -> None:
        super().__init__()
        check_type("recurrent", recurrent, nn.Module)
        self.recurrent = recurrent
        self.head = nn.Linear(check_int("hidden_size", hidden_size, minimum=1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        outputs, _ = self.recurrent(x)
        return self.head(outputs[:, -1]).squeeze(-1)
