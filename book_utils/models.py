"""Models that two or more chapters use: classifiers and regressors over recurrent
layers, and an encoder-decoder for symbol strings with its training recipe.

Batches are ``batch_first`` throughout: (batch, time, ...).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from . import training
from ._checks import (
    check_choice, check_dtype, check_float, check_int, check_layer, check_lengths, check_tensor,
    check_type,
)
from .cells import ScratchRNN
from .data import EOS, PAD, SOS, SPECIAL_TOKENS, Vocabulary


RECURRENT_KINDS = ("rnn", "scratch_rnn", "lstm", "gru")


def _output_size(recurrent: nn.Module) -> int | None:
    """The width of a recurrent layer's outputs, when the layer says (None when it does not)."""
    hidden = getattr(recurrent, "hidden_size", None)
    if not isinstance(hidden, int):
        return None
    if isinstance(recurrent, nn.RNNBase):
        hidden = recurrent.proj_size or hidden
        return hidden * (2 if recurrent.bidirectional else 1)
    return hidden


def _check_recurrent(recurrent: nn.Module, hidden_size: int) -> None:
    """A layer called like nn.RNN(batch_first=True) whose outputs are ``hidden_size`` wide."""
    check_layer("recurrent", recurrent)  # a Linear or a cell takes no (x, state): refused here
    if isinstance(recurrent, nn.RNNCellBase):
        raise TypeError(f"recurrent must be a layer that reads whole sequences, got the one-step "
                        f"cell {type(recurrent).__name__} (wrap it in cells.CellLayer)")
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    width = _output_size(recurrent)
    if width is not None and width != hidden_size:
        raise ValueError(f"hidden_size must be the width of recurrent's outputs, {width} for "
                         f"this {type(recurrent).__name__}, got {hidden_size}")


def _check_features(x: torch.Tensor, recurrent: nn.Module) -> None:
    """x (batch, time >= 1, features) fits ``recurrent``: its input size and its weights' dtype."""
    expected = getattr(recurrent, "input_size", None)
    if x.shape[1] == 0 or (isinstance(expected, int) and x.shape[2] != expected):
        raise ValueError(f"x must have shape (batch, time >= 1, {expected or 'features'}), "
                         f"got {tuple(x.shape)}")
    check_dtype("x", x, recurrent)


def make_recurrent(
    kind: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh"
) -> nn.Module:
    """A one-layer recurrent layer that reads (batch, time, features).

    ``kind`` is ``"rnn"`` (``nn.RNN``), ``"scratch_rnn"`` (our :class:`ScratchRNN`),
    ``"lstm"`` (``nn.LSTM``) or ``"gru"`` (``nn.GRU``).
    """
    check_choice("kind", kind, RECURRENT_KINDS)
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
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
        _check_recurrent(recurrent, hidden_size)
        self.recurrent = recurrent
        self.head = nn.Linear(hidden_size, check_int("n_classes", n_classes, minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        _check_features(x, self.recurrent)
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


class SequenceRegressor(nn.Module):
    """Read a sequence, then predict one number from the last output: y = h_T v + c.

    ``recurrent`` is any layer called like ``nn.RNN(batch_first=True)``, for
    example ``nn.LSTM``, ``nn.GRU`` or :class:`book_utils.cells.ScratchLSTM`.
    Returns predictions of shape (batch,).
    """

    def __init__(self, recurrent: nn.Module, hidden_size: int) -> None:
        super().__init__()
        _check_recurrent(recurrent, hidden_size)
        self.recurrent = recurrent
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        _check_features(x, self.recurrent)
        outputs, _ = self.recurrent(x)
        return self.head(outputs[:, -1]).squeeze(-1)


# An encoder-decoder for symbol strings (chapters 3 and 7).


def shift_right(targets: torch.Tensor, start: int = SOS) -> torch.Tensor:
    """The decoder's inputs under teacher forcing: ``start`` followed by the targets minus their last step.

    At step t the decoder reads the *true* token t-1 and must predict token t.
    """
    check_tensor("targets", targets, dim=2, integer=True, layout="(batch, time)")
    if targets.numel() and targets.min() < 0:
        raise ValueError(f"targets must hold token ids >= 0, got {targets.min().item()}")
    check_int("start", start, minimum=0)
    return torch.cat([targets.new_full((targets.shape[0], 1), start), targets[:, :-1]], dim=1)


class EncoderDecoder(nn.Module):
    """A GRU encoder reads the source; a GRU decoder writes the target from the encoder's final state.

    - ``encode(source, lengths)`` packs the padded source, so each sequence's
      summary is its state after its last valid token: (1, batch, hidden).
    - ``forward(source, lengths, decoder_inputs)`` is teacher forcing: the
      decoder reads the true previous tokens (see :func:`shift_right`) and
      returns logits (batch, target_time, vocab).
    - ``greedy_decode(source, lengths, max_steps)`` feeds back the decoder's own
      most likely token at each step, starting from the start token, and
      returns ids (batch, steps).
    """

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 128) -> None:
        super().__init__()
        self.vocab_size = vocab_size = check_int("vocab_size", vocab_size,
                                                 minimum=len(SPECIAL_TOKENS) + 1)
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.embed = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.encoder = nn.GRU(embedding_size, hidden_size, batch_first=True)
        self.decoder = nn.GRU(embedding_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def _check_ids(self, name: str, ids: torch.Tensor) -> None:
        check_tensor(name, ids, dim=2, integer=True, layout="(batch, time)")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"{name} must hold ids in [0, {self.vocab_size - 1}], got values from "
                             f"{ids.min().item()} to {ids.max().item()}")

    def encode(self, source: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self._check_ids("source", source)
        check_lengths(lengths, source.shape[0], source.shape[1], of="source")
        packed = pack_padded_sequence(self.embed(source), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, h_n = self.encoder(packed)
        return h_n

    def forward(self, source: torch.Tensor, lengths: torch.Tensor,
                decoder_inputs: torch.Tensor) -> torch.Tensor:
        self._check_ids("decoder_inputs", decoder_inputs)
        if decoder_inputs.shape[1] == 0:
            raise ValueError(f"decoder_inputs must have at least one step, "
                             f"got shape {tuple(decoder_inputs.shape)}")
        state = self.encode(source, lengths)
        if decoder_inputs.shape[0] != source.shape[0]:
            raise ValueError(f"decoder_inputs must have batch size {source.shape[0]}, "
                             f"got {decoder_inputs.shape[0]}")
        outputs, _ = self.decoder(self.embed(decoder_inputs), state)
        return self.head(outputs)

    @torch.no_grad()
    def greedy_decode(self, source: torch.Tensor, lengths: torch.Tensor, max_steps: int) -> torch.Tensor:
        check_int("max_steps", max_steps, minimum=1)
        state = self.encode(source, lengths)
        token = source.new_full((source.shape[0], 1), SOS)
        finished = torch.zeros(source.shape[0], dtype=torch.bool, device=source.device)
        produced = []
        for _ in range(max_steps):
            output, state = self.decoder(self.embed(token), state)
            token = self.head(output).argmax(dim=-1)                    # (batch, 1)
            token = token.masked_fill(finished[:, None], PAD)          # nothing after the end token
            produced.append(token)
            finished |= token[:, 0] == EOS
            if finished.all():
                break
        return torch.cat(produced, dim=1)


def _check_strings(name: str, value: Sequence[str]) -> None:
    """A non-empty list of strings."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must hold at least one string, got an empty list")
    odd = [v for v in value if not isinstance(v, str)]
    if odd:  # a list, not next(..., None): None itself is no string
        raise TypeError(f"{name} must hold strings only, got a {type(odd[0]).__name__}")


def exact_match(predicted: Sequence[str], expected: Sequence[str]) -> float:
    """The fraction of predicted strings that equal their expected string exactly."""
    _check_strings("predicted", predicted)
    _check_strings("expected", expected)
    if len(predicted) != len(expected):
        raise ValueError(f"predicted and expected must have the same length, "
                         f"got {len(predicted)} and {len(expected)}")
    return sum(p == e for p, e in zip(predicted, expected)) / len(expected)


def train_encoder_decoder(
    model: EncoderDecoder,
    vocab: Vocabulary,
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    steps: int,
    lr: float = 0.01,
    batch_size: int = 64,
    clip_norm: float = 1.0,
    seed: int = 0,
) -> dict[str, list]:
    """Train with teacher forcing: the decoder reads the true previous token at every step.

    The loss is the cross-entropy of every target token, the end token
    included, averaged over the valid steps (:func:`masked_cross_entropy`).
    Each of ``steps`` updates draws a random minibatch; Adam's learning rate
    warms up and then decays (a one-cycle schedule). Returns a history with the
    per-step loss and the total time in seconds.
    """
    check_type("model", model, EncoderDecoder)
    check_type("vocab", vocab, Vocabulary)
    if len(vocab) != model.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} tokens but the model expects {model.vocab_size}")
    _check_strings("sources", sources)
    _check_strings("targets", targets)
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} and {len(targets)}")
    steps = check_int("steps", steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    clip_norm = check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    source_ids, source_lengths = vocab.encode(sources)
    target_ids, target_lengths = vocab.encode(targets, add_eos=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    batches = training.random_batches(source_ids, source_lengths, target_ids, target_lengths,
                                      batch_size=batch_size, seed=check_int("seed", seed, minimum=0))
    return training.fit(model, _teacher_forcing(batches), steps=steps, optimizer=optimizer,
                        scheduler=schedule, clip_norm=clip_norm,
                        loss_fn=training.masked_cross_entropy, verbose=False)


def _teacher_forcing(batches):
    """((source, lengths, decoder inputs), (target, target lengths)) from random rows."""
    for source, lengths, target, target_lengths in batches:
        # Trim each minibatch to its own longest sequence: no step is spent on padding alone.
        source, target = source[:, : int(lengths.max())], target[:, : int(target_lengths.max())]
        yield (source, lengths, shift_right(target)), (target, target_lengths)


def decode_and_score(
    model: EncoderDecoder, vocab: Vocabulary, sources: Sequence[str], targets: Sequence[str]
) -> tuple[float, list[str]]:
    """Greedy-decode ``sources``; return the exact-match accuracy and the predicted strings."""
    check_type("model", model, EncoderDecoder)
    check_type("vocab", vocab, Vocabulary)
    _check_strings("sources", sources)
    _check_strings("targets", targets)
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} and {len(targets)}")
    device = next(model.parameters()).device
    source, lengths = vocab.encode(sources)
    max_steps = max(len(t) for t in targets) + 1                     # room for the end token
    was_training = model.training
    model.eval()
    predicted = vocab.decode(model.greedy_decode(source.to(device), lengths, max_steps).cpu())
    model.train(was_training)
    return exact_match(predicted, targets), predicted
