"""Sequences of different lengths, and models that emit sequences.

Three groups of helpers, all for Chapter 3:

- **lengths and masks**: :func:`length_mask`, :func:`last_valid_step`,
  :func:`masked_mean` and :func:`masked_cross_entropy` for padded batches in
  which each sequence has its own length;
- **models with sequence outputs**: :class:`PerStepClassifier` (a packed
  recurrent layer with a prediction at every valid step) and
  :class:`VectorToSequence` (a sequence generated from one vector);
- **an encoder-decoder** for symbol strings: :class:`Vocabulary`,
  :func:`shift_right`, :class:`EncoderDecoder` (teacher forcing in ``forward``,
  greedy decoding in ``greedy_decode``), its training recipe
  :func:`train_encoder_decoder`, and :func:`exact_match` with
  :func:`decode_and_score` to evaluate it.

Batches are ``batch_first`` throughout: (batch, time, ...). A padded batch comes
with ``lengths``, a 1-D integer tensor holding the number of valid steps of each
sequence; steps at or past a sequence's length are padding.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import training
from ._checks import check_float, check_int, check_tensor, check_type

# --------------------------------------------------------------- lengths and masks


def _check_lengths(lengths: torch.Tensor, batch: int, max_length: int | None = None) -> torch.Tensor:
    check_tensor("lengths", lengths, dim=1, integer=True, layout="(batch,)")
    if lengths.shape[0] != batch:
        raise ValueError(f"lengths must hold one length per sequence ({batch}), got {lengths.shape[0]}")
    if batch and lengths.min() < 1:
        raise ValueError(f"every length must be >= 1, got {lengths.min().item()}")
    if max_length is not None and batch and lengths.max() > max_length:
        raise ValueError(
            f"lengths must not exceed the {max_length} time steps of the batch, "
            f"got {lengths.max().item()}"
        )
    return lengths


def length_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """A (batch, time) boolean mask that is True at the valid steps ``t < lengths[b]``."""
    check_tensor("lengths", lengths, dim=1, integer=True, layout="(batch,)")
    if max_length is None:
        max_length = int(lengths.max()) if len(lengths) else 0
    max_length = check_int("max_length", max_length, minimum=1)
    _check_lengths(lengths, len(lengths), max_length)
    steps = torch.arange(max_length, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def last_valid_step(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last valid step, ``outputs[b, lengths[b] - 1]``: (batch, hidden)."""
    check_tensor("outputs", outputs, dim=3, layout="(batch, time, hidden)")
    _check_lengths(lengths, outputs.shape[0], outputs.shape[1])
    index = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    return outputs.gather(1, index).squeeze(1)


def masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` (batch, time, ...) over the valid steps only.

    Every valid step of every sequence weighs the same, so a long sequence
    counts for more than a short one, and padding counts for nothing.
    """
    check_tensor("values", values, dim=(2, 3, 4), floating=True, layout="(batch, time, ...)")
    mask = length_mask(_check_lengths(lengths, values.shape[0], values.shape[1]), values.shape[1])
    mask = mask.to(values.device).view(*mask.shape, *([1] * (values.dim() - 2)))
    per_element = values.new_tensor(values[0, 0].numel())
    return (values * mask).sum() / (mask.sum() * per_element)


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy averaged over the valid steps of a per-step classifier.

    ``logits`` is (batch, time, classes) and ``targets`` (batch, time) holds a
    class index at each step; whatever ``targets`` holds past a sequence's
    length is ignored.
    """
    check_tensor("logits", logits, dim=3, floating=True, layout="(batch, time, classes)")
    check_tensor("targets", targets, dim=2, integer=True, layout="(batch, time)")
    if targets.shape != logits.shape[:2]:
        raise ValueError(
            f"targets must have shape (batch, time) = {tuple(logits.shape[:2])}, got {tuple(targets.shape)}"
        )
    per_step = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return masked_mean(per_step, lengths)


# --------------------------------------------------------------- models with sequence outputs


class PerStepClassifier(nn.Module):
    """A GRU that reads a padded batch as packed sequences and classifies at every step.

    ``forward(x, lengths)`` takes x (batch, time, features) and returns logits
    (batch, time, classes). Padded steps never reach the GRU, so the state at
    each sequence's last valid step is the state of the sequence alone; their
    logits are only the head's bias and must be masked out of any loss.
    """

    def __init__(self, input_size: int, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        self.gru = nn.GRU(
            check_int("input_size", input_size, minimum=1),
            check_int("hidden_size", hidden_size, minimum=1),
            batch_first=True,
        )
        self.head = nn.Linear(hidden_size, check_int("n_classes", n_classes, minimum=2))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        _check_lengths(lengths, x.shape[0], x.shape[1])
        # pack_padded_sequence wants the lengths on the CPU, whatever the device of x.
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                         total_length=x.shape[1])
        return self.head(outputs)


class VectorToSequence(nn.Module):
    """Generate a sequence of ``steps`` outputs from one vector ``v``.

    The vector sets the initial state, h_0 = tanh(v A + a), and is also the
    input at every step, so the GRU never has to remember it; a linear head
    reads each state: y_t = h_t V + c. ``forward(v)`` maps (batch, vector_size)
    to (batch, steps, output_size).
    """

    def __init__(self, vector_size: int, hidden_size: int, output_size: int, steps: int) -> None:
        super().__init__()
        self.vector_size = check_int("vector_size", vector_size, minimum=1)
        self.steps = check_int("steps", steps, minimum=1)
        self.initial_state = nn.Linear(vector_size, check_int("hidden_size", hidden_size, minimum=1))
        self.gru = nn.GRU(vector_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, check_int("output_size", output_size, minimum=1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        check_tensor("v", v, dim=2, floating=True, layout="(batch, vector_size)")
        if v.shape[1] != self.vector_size:
            raise ValueError(f"v must have {self.vector_size} features, got shape {tuple(v.shape)}")
        h0 = torch.tanh(self.initial_state(v)).unsqueeze(0)           # (1, batch, hidden)
        inputs = v.unsqueeze(1).expand(-1, self.steps, -1)            # (batch, steps, vector)
        outputs, _ = self.gru(inputs, h0)
        return self.head(outputs)


# --------------------------------------------------------------- encoder-decoder

PAD, SOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<sos>", "<eos>")


class Vocabulary:
    """Maps characters to token ids and back; ids 0, 1, 2 are padding, start and end.

    ``encode`` turns strings into a padded (batch, time) id tensor plus their
    lengths; ``decode`` reads ids up to the first end (or padding) token.
    """

    def __init__(self, symbols: str = "0123456789") -> None:
        check_type("symbols", symbols, str)
        if not symbols:
            raise ValueError("symbols must hold at least one character, got ''")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must not repeat a character, got {symbols!r}")
        self.symbols = symbols
        self.tokens = list(SPECIAL_TOKENS) + list(symbols)
        self._ids = {s: i for i, s in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({self.symbols!r}): {len(self)} tokens"

    def encode(self, texts: Sequence[str], *, add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (batch, longest), lengths (batch,)); ``add_eos`` appends the end token."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
        check_type("add_eos", add_eos, bool)
        if not texts:
            raise ValueError("texts must hold at least one string, got an empty list")
        rows = []
        for text in texts:
            check_type("each text", text, str)
            unknown = sorted(set(text) - set(self.symbols))
            if unknown:
                raise ValueError(f"text {text!r} has characters outside the vocabulary: {unknown}")
            row = [self._ids[ch] for ch in text] + ([EOS] if add_eos else [])
            if not row:
                raise ValueError("every text must be non-empty unless add_eos=True, got ''")
            rows.append(row)
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, lengths

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Strings from an id tensor (batch, time), each cut at its first end or padding token."""
        check_tensor("ids", ids, dim=2, integer=True, layout="(batch, time)")
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self) - 1}], got values from "
                             f"{ids.min().item()} to {ids.max().item()}")
        texts = []
        for row in ids.tolist():
            chars = []
            for i in row:
                if i in (EOS, PAD):
                    break
                if i != SOS:
                    chars.append(self.tokens[i])
            texts.append("".join(chars))
        return texts


def shift_right(targets: torch.Tensor, start: int = SOS) -> torch.Tensor:
    """The decoder's inputs under teacher forcing: ``start`` followed by the targets minus their last step.

    At step t the decoder reads the *true* token t-1 and must predict token t.
    """
    check_tensor("targets", targets, dim=2, integer=True, layout="(batch, time)")
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
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=len(SPECIAL_TOKENS) + 1)
        check_int("embedding_size", embedding_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
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
        _check_lengths(lengths, source.shape[0], source.shape[1])
        packed = pack_padded_sequence(self.embed(source), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, h_n = self.encoder(packed)
        return h_n

    def forward(self, source: torch.Tensor, lengths: torch.Tensor,
                decoder_inputs: torch.Tensor) -> torch.Tensor:
        self._check_ids("decoder_inputs", decoder_inputs)
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


def exact_match(predicted: Sequence[str], expected: Sequence[str]) -> float:
    """The fraction of predicted strings that equal their expected string exactly."""
    for name, value in (("predicted", predicted), ("expected", expected)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    if len(predicted) != len(expected):
        raise ValueError(f"predicted and expected must have the same length, "
                         f"got {len(predicted)} and {len(expected)}")
    if not expected:
        raise ValueError("expected must hold at least one string, got an empty list")
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
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} and {len(targets)}")
    steps = check_int("steps", steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    clip_norm = check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    device = next(model.parameters()).device
    source_ids, source_lengths = vocab.encode(sources)
    target_ids, target_lengths = vocab.encode(targets, add_eos=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    history: dict[str, list] = {"step_loss": [], "seconds": []}
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(0, len(source_ids), (batch_size,), generator=generator)
        # Trim each minibatch to its own longest sequence: no step is spent on padding alone.
        lengths, out_lengths = source_lengths[index], target_lengths[index]
        source = source_ids[index, : int(lengths.max())].to(device)
        target = target_ids[index, : int(out_lengths.max())].to(device)
        logits = model(source, lengths, shift_right(target))
        loss = masked_cross_entropy(logits, target, out_lengths.to(device))
        training.update(model, loss, optimizer, clip_norm=clip_norm, scheduler=schedule)
        history["step_loss"].append(loss.item())
    history["seconds"].append(time.perf_counter() - start)
    model.eval()
    return history


def decode_and_score(
    model: EncoderDecoder, vocab: Vocabulary, sources: Sequence[str], targets: Sequence[str]
) -> tuple[float, list[str]]:
    """Greedy-decode ``sources``; return the exact-match accuracy and the predicted strings."""
    check_type("model", model, EncoderDecoder)
    check_type("vocab", vocab, Vocabulary)
    device = next(model.parameters()).device
    source, lengths = vocab.encode(sources)
    max_steps = max(len(t) for t in targets) + 1                     # room for the end token
    was_training = model.training
    model.eval()
    predicted = vocab.decode(model.greedy_decode(source.to(device), lengths, max_steps).cpu())
    model.train(was_training)
    return exact_match(predicted, targets), predicted
