"""Chapter 7: beyond the single state, attention and parallel recurrences.

Two groups of helpers, both for Chapter 7 only:

- **parallel recurrences**: the linear recurrence h_t = a_t * h_{t-1} + b_t computed
  step by step (:func:`linear_recurrence_loop`), all at once with cumulative
  products (:func:`naive_scan`, which breaks on long sequences) and all at once in
  log space (:func:`log_scan`, Heinsen 2023), with :func:`parallel_scan` for inputs
  of either sign (:func:`chunked_log_scan` bounds its float32 error); the
  associative scan: the operator on pairs (:func:`combine`), the Hillis-Steele scan
  (:func:`hillis_steele_scan`), its rounds (:func:`scan_schedule`,
  :func:`draw_scan_tree`) and :func:`time_scans` with :func:`plot_timings`; the
  recurrent layers :class:`MinGRU` and :class:`MinLSTM` (Feng et al. 2024) built
  on it, :func:`chrono_init` for their gates, and the drivers that compare them
  with ``nn.GRU`` and ``nn.LSTM`` at equal parameters (:func:`match_width`):
  :func:`train_adding`, :class:`CharModel` with :func:`train_char_model`;
- **attention**: :func:`additive_attention` (Bahdanau et al. 2015) with padded
  source positions masked, the :class:`AttentionEncoderDecoder` that uses it and
  its control without attention, :class:`BidirectionalEncoderDecoder`; the reversal
  drivers (:func:`reversal_splits`, :func:`train_reverser`, :func:`reversal_loss`,
  :func:`exact_match_by_length`); :func:`plot_attention` and
  :func:`draw_attention_decoder`;
- **results over seeds**, read from ``book_utils/results`` (written by
  ``benchmarks/attention_and_scans.py``): :func:`seed_summary`, :func:`paired_wins`.

Tensors are batch first: (batch, time, features).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import cells, data, models, plots, results, training
from ._checks import (check_bool, check_choice, check_device, check_dtype, check_float, check_int,
                      check_lengths, check_tensor, check_type, checked_by, LIMITS)

# --------------------------------------------------------------- the linear recurrence


def _check_recurrence(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> None:
    check_tensor("a", a, dim=3, floating=True, layout="(batch, time, hidden)")
    check_tensor("b", b, dim=3, floating=True, layout="(batch, time, hidden)")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if h0 is not None:
        check_tensor("h0", h0, dim=2, floating=True, layout="(batch, hidden)")
        if h0.shape != (a.shape[0], a.shape[2]):
            raise ValueError(f"h0 must have shape (batch, hidden) = {(a.shape[0], a.shape[2])}, "
                             f"got {tuple(h0.shape)}")


@checked_by(_check_recurrence)
def linear_recurrence_loop(a: torch.Tensor, b: torch.Tensor,
                           h0: torch.Tensor | None = None) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t, one step after the other (Equation 4)."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0     # (batch, hidden)
    states = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, dim=1)                      # (batch, time, hidden)


@checked_by(_check_recurrence)
def naive_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """All steps at once: h_t = P_t (h_{-1} + sum_{s<=t} b_s / P_s), P_t = a_0 ... a_t (Equation 5)."""
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0   # h_{-1}
    P = a.cumprod(dim=1)                                   # underflows to 0 for long t
    return P * (h0[:, None] + (b / P).cumsum(dim=1))


def _check_log_scan(log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor) -> None:
    check_tensor("log_a", log_a, dim=3, floating=True, layout="(batch, time, hidden)")
    check_tensor("log_b", log_b, dim=3, floating=True, layout="(batch, time, hidden)")
    check_tensor("log_h0", log_h0, dim=2, floating=True, layout="(batch, hidden)")
    if log_a.shape != log_b.shape:
        raise ValueError(f"log_a and log_b must have the same shape, "
                         f"got {tuple(log_a.shape)} and {tuple(log_b.shape)}")
    if log_h0.shape != (log_a.shape[0], log_a.shape[2]):
        raise ValueError(f"log_h0 must have shape (batch, hidden) = "
                         f"{(log_a.shape[0], log_a.shape[2])}, got {tuple(log_h0.shape)}")


@checked_by(_check_log_scan)
def log_scan(log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor) -> torch.Tensor:
    """log h_t for h_t = a_t h_{t-1} + b_t with b, h_{-1} > 0, all steps at once (Equation 6)."""
    log_a = torch.cat([torch.zeros_like(log_h0[:, None]), log_a], dim=1)  # step -1: h_{-1}
    log_b = torch.cat([log_h0[:, None], log_b], dim=1)
    a_star = log_a.cumsum(dim=1)                # index k: log(a_0 ... a_{k-1}) = a*_{k-1}
    log_h = a_star + torch.logcumsumexp(log_b - a_star, dim=1)
    return log_h[:, 1:]                                    # (batch, time, hidden)


def _check_parallel_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                         *, chunk: int | None = None) -> None:
    _check_recurrence(a, b, h0)
    if a.numel() and not bool((a > 0).all()):
        raise ValueError(f"a must be positive everywhere (its logarithm is taken), "
                         f"got a minimum of {a.min().item():.3g}")
    if chunk is not None:
        check_int("chunk", chunk, minimum=1)


def _check_chunked_log_scan(log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor,
                            chunk: int) -> None:
    _check_log_scan(log_a, log_b, log_h0)
    check_int("chunk", chunk, minimum=1)


@checked_by(_check_chunked_log_scan)
def chunked_log_scan(log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor,
                     chunk: int) -> torch.Tensor:
    """:func:`log_scan` over blocks of ``chunk`` steps, each starting from the last state."""
    pieces = []
    for start in range(0, log_a.shape[1], chunk):
        piece = log_scan(log_a[:, start:start + chunk], log_b[:, start:start + chunk], log_h0)
        log_h0 = piece[:, -1]                              # the next block starts here
        pieces.append(piece)
    return torch.cat(pieces, dim=1)


@checked_by(_check_parallel_scan)
def parallel_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None,
                  *, chunk: int | None = None) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t in log space, for a > 0 and b, h_{-1} of either sign.

    The recurrence is linear in (b, h_{-1}), so their positive and negative parts
    run as two scans in log space, and h is the difference. With ``chunk`` the
    scan runs over blocks of that many steps (:func:`chunked_log_scan`), which
    bounds the rounding error that grows with the size of a*_t = log(a_0 ... a_t).
    """
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0
    log_a = a.log()
    parts = []
    for sign in (1, -1):
        log_b, log_h0 = (sign * b).clamp(min=0).log(), (sign * h0).clamp(min=0).log()
        log_h = (log_scan(log_a, log_b, log_h0) if chunk is None
                 else chunked_log_scan(log_a, log_b, log_h0, chunk))
        parts.append(log_h.exp())
    return parts[0] - parts[1]


def max_relative_error(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """max |estimate - reference| / max |reference|: the error on the scale of the values.

    An estimate that holds NaN or inf has no bounded error: the result is then inf.
    """
    check_tensor("estimate", estimate, floating=True, nonempty=True)
    check_tensor("reference", reference, floating=True, nonempty=True, finite=True)
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate and reference must have the same shape, "
                         f"got {tuple(estimate.shape)} and {tuple(reference.shape)}")
    if not bool(reference.ne(0).any()):
        raise ValueError("reference must not be all zeros (the error is relative to its size), "
                         "got only zeros")
    if not bool(torch.isfinite(estimate).all()):
        return math.inf
    return ((estimate - reference).abs().max() / reference.abs().max()).item()


# --------------------------------------------------------------- the associative scan


def _check_combine(first: tuple[torch.Tensor, torch.Tensor],
                   second: tuple[torch.Tensor, torch.Tensor]) -> None:
    shapes = []
    for name, pair in (("first", first), ("second", second)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} must be a pair (a, b) of tensors, got {type(pair).__name__}")
        for part, tensor in zip("ab", pair):
            check_tensor(f"{name}'s {part}", tensor, floating=True)
            shapes.append(tuple(tensor.shape))
    if len(set(shapes)) > 1:
        raise ValueError(f"the a and b of first and second must have one shape, got {shapes}")


@checked_by(_check_combine)
def combine(first: tuple[torch.Tensor, torch.Tensor],
            second: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) o (a', b') = (a a', a' b + b'): first h -> a h + b, then h -> a' h + b' (Equation 7)."""
    (a, b), (a_next, b_next) = first, second
    return a * a_next, a_next * b + b_next


@checked_by(_check_recurrence)
def hillis_steele_scan(a: torch.Tensor, b: torch.Tensor,
                       h0: torch.Tensor | None = None) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t by an associative scan: ceil(log2 T) rounds of :func:`combine`.

    Round r = 1, 2, ... combines every position t with the one 2^(r-1) steps before
    it, all t at once; after the last round position t holds the pair of steps 0..t.
    """
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0
    shift = 1
    while shift < a.shape[1]:                              # one round: every t at once
        a_new, b_new = combine((a[:, :-shift], b[:, :-shift]), (a[:, shift:], b[:, shift:]))
        a = torch.cat([a[:, :shift], a_new], dim=1)        # the first `shift` are done
        b = torch.cat([b[:, :shift], b_new], dim=1)
        shift *= 2
    return a * h0[:, None] + b                             # (a_0..t, b_0..t) applied to h_{-1}


def scan_schedule(T: int) -> list[list[tuple[int, int]]]:
    """The rounds of :func:`hillis_steele_scan` for ``T`` steps: in each, the pairs (s, t)
    whose partial results it combines, the earlier s first. Its length is the scan's depth."""
    T = check_int("T", T, minimum=1)
    rounds, shift = [], 1
    while shift < T:
        rounds.append([(t - shift, t) for t in range(shift, T)])
        shift *= 2
    return rounds


# --------------------------------------------------------------- minGRU and minLSTM

SCAN_MODES = ("scan", "loop")


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x) with g(x) = x + 1/2 for x >= 0 and sigmoid(x) below: positive, so it has a log."""
    check_tensor("x", x, floating=True)
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class _LinearRecurrence(nn.Module):
    """A layer h_t = a_t * h_{t-1} + b_t whose a_t and b_t depend on x_t alone.

    Subclasses define ``coefficients(x) -> (log_a, log_b)``. Called like
    ``nn.GRU(batch_first=True)``: ``forward(x, h0=None)`` takes x (batch, time,
    features) and an optional non-negative h0 (1, batch, hidden), and returns
    (h (batch, time, hidden), h_n (1, batch, hidden)). ``mode="scan"`` computes
    all steps at once with :func:`log_scan`; ``mode="loop"`` one step after
    the other with :func:`linear_recurrence_loop`; both give the same numbers.
    """

    n_blocks = 2

    def __init__(self, input_size: int, hidden_size: int, *, mode: str = "scan") -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        self.mode = check_choice("mode", mode, SCAN_MODES)
        self.linear = nn.Linear(input_size, self.n_blocks * hidden_size)

    def forward(self, x: torch.Tensor,
                h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x must have {self.input_size} features, got shape {tuple(x.shape)}")
        expected = (1, x.shape[0], self.hidden_size)
        if h0 is not None:
            check_tensor("h0", h0, dim=3, floating=True, layout="(1, batch, hidden)")
            if h0.shape != expected:
                raise ValueError(f"h0 must have shape {expected}, got {tuple(h0.shape)}")
            if bool((h0 < 0).any()):
                raise ValueError("h0 must be non-negative: the layer's states are, "
                                 f"got a minimum of {h0.min().item():.3g}")
        check_choice("mode", self.mode, SCAN_MODES)
        h0 = x.new_zeros(expected) if h0 is None else h0
        log_a, log_b = self.coefficients(x)                # (batch, time, hidden) each
        if self.mode == "scan":
            h = log_scan(log_a, log_b, h0[0].log()).exp()
        else:
            h = linear_recurrence_loop(log_a.exp(), log_b.exp(), h0[0])
        return h, h[:, -1][None]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, mode={self.mode!r}"


def _check_coefficients(layer: _LinearRecurrence, x: torch.Tensor) -> None:
    check_tensor("x", x, dim=3, floating=True, nonempty=True, layout="(batch, time, features)")
    if x.shape[2] != layer.input_size:
        raise ValueError(f"x must have {layer.input_size} features, got shape {tuple(x.shape)}")
    check_dtype("x", x, layer)


class MinGRU(_LinearRecurrence):
    """minGRU (Feng et al. 2024): h_t = (1 - z_t) h_{t-1} + z_t g(h~_t), gates from x_t alone."""

    n_blocks = 2

    @checked_by(_check_coefficients)
    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log a_t = log(1 - z_t), log b_t = log z_t + log g(h~_t)   (Equation 2)."""
        k, h_tilde = self.linear(x).chunk(2, dim=-1)       # z_t = sigmoid(k)
        log_a = -F.softplus(k)                             # log(1 - sigmoid(k))
        log_b = -F.softplus(-k) + log_g(h_tilde)           # log sigmoid(k) + log g(h~)
        return log_a, log_b


class MinLSTM(_LinearRecurrence):
    """minLSTM (Feng et al. 2024): h_t = f'_t h_{t-1} + i'_t g(h~_t), f' + i' = 1."""

    n_blocks = 3

    @checked_by(_check_coefficients)
    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f'_t = f_t / (f_t + i_t), i'_t = i_t / (f_t + i_t), in log space   (Equation 3)."""
        k_f, k_i, h_tilde = self.linear(x).chunk(3, dim=-1)
        log_i_over_f = F.softplus(-k_f) - F.softplus(-k_i)  # log i_t - log f_t
        log_a = -F.softplus(log_i_over_f)                  # log f'_t
        log_b = -F.softplus(-log_i_over_f) + log_g(h_tilde)  # log i'_t + log g(h~)
        return log_a, log_b


# --------------------------------------------------------------- attention


def _check_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     mask: torch.Tensor, v: torch.Tensor) -> None:
    check_tensor("query", query, dim=2, floating=True, nonempty=True, layout="(batch, attention)")
    check_tensor("keys", keys, dim=3, floating=True, nonempty=True,
                 layout="(batch, source_time, attention)")
    check_tensor("values", values, dim=3, floating=True, nonempty=True,
                 layout="(batch, source_time, hidden)")
    check_tensor("mask", mask, dim=2, nonempty=True, layout="(batch, source_time)")
    check_tensor("v", v, dim=1, floating=True, nonempty=True, layout="(attention,)")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True at real positions), got dtype {mask.dtype}")
    dtypes = {"query": query.dtype, "keys": keys.dtype, "values": values.dtype, "v": v.dtype}
    if len(set(dtypes.values())) > 1:
        raise TypeError("query, keys, values and v must share one dtype, got "
                        + ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items()))
    batch, source_time, size = keys.shape
    if query.shape != (batch, size) or v.shape != (size,):
        raise ValueError(f"query must be (batch, attention) = {(batch, size)} and v ({size},), "
                         f"got {tuple(query.shape)} and {tuple(v.shape)}")
    if values.shape[:2] != (batch, source_time) or mask.shape != (batch, source_time):
        raise ValueError(f"values and mask must start with (batch, source_time) = "
                         f"{(batch, source_time)}, got {tuple(values.shape)} and {tuple(mask.shape)}")
    if batch and not bool(mask.any(dim=1).all()):
        raise ValueError("mask must keep at least one source position in every row")


@checked_by(_check_attention)
def additive_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                       mask: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """c = sum_i alpha_i values_i, alpha = softmax_i(v . tanh(query + keys_i))  (Equation 1)."""
    scores = torch.tanh(query[:, None] + keys) @ v          # (batch, source_time)
    scores = scores.masked_fill(~mask, float("-inf"))     # padding gets weight exactly 0
    alpha = scores.softmax(dim=1)                         # (batch, source_time), rows sum to 1
    context = (alpha[:, :, None] * values).sum(dim=1)     # (batch, hidden)
    return context, alpha


def _check_step(model: "AttentionEncoderDecoder", token: torch.Tensor, d: torch.Tensor,
                states: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> None:
    """One decoder step's inputs: what encode_all returns, W_k of its states, and a token per row."""
    check_tensor("token", token, dim=1, integer=True, nonempty=True, layout="(batch,)")
    if token.min() < 0 or token.max() >= model.vocab_size:
        raise ValueError(f"token must hold ids in [0, {model.vocab_size - 1}], got values from "
                         f"{token.min().item()} to {token.max().item()}")
    batch, hidden, size = len(token), model.cell.hidden_size, model.v.shape[0]
    check_tensor("d", d, dim=2, floating=True, layout="(batch, hidden)")
    check_tensor("states", states, dim=3, floating=True, nonempty=True,
                 layout="(batch, source_time, hidden)")
    check_tensor("keys", keys, dim=3, floating=True, layout="(batch, source_time, attention)")
    check_tensor("mask", mask, dim=2, layout="(batch, source_time)")
    source_time = states.shape[1]
    shapes = {"d": (batch, hidden), "states": (batch, source_time, hidden),
              "keys": (batch, source_time, size), "mask": (batch, source_time)}
    for name, value in (("d", d), ("states", states), ("keys", keys), ("mask", mask)):
        shape = shapes[name]
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} to match token ({batch},) and the "
                             f"model's sizes, got {tuple(value.shape)}")
    for name, value in (("d", d), ("states", states), ("keys", keys)):
        check_dtype(name, value, model)
    if mask.dtype != torch.bool or not bool(mask.any(dim=1).all()):
        raise ValueError(f"mask must be a bool tensor keeping at least one source position in "
                         f"every row, got dtype {mask.dtype}")


class BidirectionalEncoderDecoder(models.EncoderDecoder):
    """Chapter 3's encoder-decoder with a bidirectional encoder, and no attention.

    The encoder reads the source in both directions (``hidden_size // 2`` units
    each way); the decoder, a GRU of ``hidden_size`` units as in
    :class:`models.EncoderDecoder`, starts from the two directions' final states
    side by side. It is the control for :class:`AttentionEncoderDecoder`: the
    same encoder, without the look-back.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 64) -> None:
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        if hidden_size % 2:
            raise ValueError(f"hidden_size must be even (half for each direction), got {hidden_size}")
        super().__init__(vocab_size, embedding_size, hidden_size)
        self.encoder = nn.GRU(embedding_size, hidden_size // 2, batch_first=True,
                              bidirectional=True)

    def _check_ids(self, name: str, ids: torch.Tensor) -> None:
        super()._check_ids(name, ids)
        check_tensor(name, ids, nonempty=True, layout="(batch, time)")

    def encode_all(self, source: torch.Tensor, lengths: torch.Tensor):
        """(states e (batch, source_time, hidden), summary (batch, hidden), mask (batch, source_time))."""
        self._check_ids("source", source)
        check_lengths(lengths, source.shape[0], source.shape[1])
        packed = pack_padded_sequence(self.embed(source), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, h_n = self.encoder(packed)                # h_n: (2 directions, batch, hidden / 2)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=source.shape[1])
        summary = torch.cat([h_n[0], h_n[1]], dim=1)      # both directions' final states
        return states, summary, data.length_mask(lengths.to(source.device), source.shape[1])

    def encode(self, source: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encode_all(source, lengths)[1][None]  # (1, batch, hidden), as in chapter 3


class AttentionEncoderDecoder(BidirectionalEncoderDecoder):
    """:class:`BidirectionalEncoderDecoder` with additive attention over the encoder's states.

    As in Bahdanau et al. (2015), the encoder reads the source in both
    directions, so its state e_i at each position i knows the tokens on both
    sides; it keeps all of them. At each output step j the decoder attends with
    its previous state d_{j-1}, reads the context c_j with the previous token's
    embedding, d_j = GRUCell([E[y_{j-1}], c_j], d_{j-1}), and predicts from
    [d_j, c_j]. It is called like :class:`models.EncoderDecoder`, so
    ``models.train_encoder_decoder`` and ``models.decode_and_score`` work on it;
    :meth:`decode_with_attention` also returns the attention weights.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 64,
                 attention_size: int | None = None) -> None:
        super().__init__(vocab_size, embedding_size, hidden_size)
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        attention_size = check_int("attention_size",
                                   hidden_size if attention_size is None else attention_size,
                                   minimum=1)
        del self.decoder                                  # replaced by a cell that reads c_j
        self.cell = nn.GRUCell(embedding_size + hidden_size, hidden_size)
        self.W_q = nn.Linear(hidden_size, attention_size, bias=False)
        self.W_k = nn.Linear(hidden_size, attention_size)
        self.v = nn.Parameter(torch.randn(attention_size) / attention_size ** 0.5)
        self.head = nn.Linear(2 * hidden_size, vocab_size)

    @checked_by(_check_step)
    def step(self, token, d, states, keys, mask):
        """One decoder step: (logits (batch, vocab), new state d, attention weights)."""
        context, alpha = additive_attention(self.W_q(d), keys, states, mask, self.v)
        d = self.cell(torch.cat([self.embed(token), context], dim=1), d)
        return self.head(torch.cat([d, context], dim=1)), d, alpha

    def forward(self, source: torch.Tensor, lengths: torch.Tensor,
                decoder_inputs: torch.Tensor) -> torch.Tensor:
        check_tensor("source", source, dim=2, integer=True, nonempty=True,
                     layout="(batch, time)")       # its ids: encode_all
        self._check_ids("decoder_inputs", decoder_inputs)
        if decoder_inputs.shape[0] != source.shape[0]:
            raise ValueError(f"decoder_inputs must have batch size {source.shape[0]}, "
                             f"got {decoder_inputs.shape[0]}")
        states, d, mask = self.encode_all(source, lengths)
        keys = self.W_k(states)                           # computed once for all steps
        logits = []
        for token in decoder_inputs.unbind(1):            # teacher forcing: the true tokens
            step_logits, d, _ = self.step(token, d, states, keys, mask)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)                 # (batch, target_time, vocab)

    @torch.no_grad()
    def decode_with_attention(self, source: torch.Tensor, lengths: torch.Tensor,
                              max_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: (ids (batch, steps), attention (batch, steps, source_time))."""
        check_int("max_steps", max_steps, minimum=1)
        states, d, mask = self.encode_all(source, lengths)
        keys = self.W_k(states)
        token = source.new_full((source.shape[0],), data.SOS)
        finished = torch.zeros(source.shape[0], dtype=torch.bool, device=source.device)
        produced, weights = [], []
        for _ in range(max_steps):
            logits, d, alpha = self.step(token, d, states, keys, mask)
            token = logits.argmax(dim=1).masked_fill(finished, data.PAD)  # nothing after the end
            produced.append(token)
            weights.append(alpha)
            finished |= token == data.EOS
            if finished.all():
                break
        return torch.stack(produced, dim=1), torch.stack(weights, dim=1)

    def greedy_decode(self, source: torch.Tensor, lengths: torch.Tensor, max_steps: int) -> torch.Tensor:
        return self.decode_with_attention(source, lengths, max_steps)[0]


# --------------------------------------------------------------- training drivers


def match_width(build: Callable[[int], nn.Module], target: int, *, step: int = 1) -> int:
    """The width w, a multiple of ``step``, whose ``build(w)`` has the parameter count nearest
    ``target``. Counts grow with the width, so a bisection finds it."""
    if not callable(build):
        raise TypeError(f"build must be a function of the width, got {type(build).__name__}")
    target = check_int("target", target, minimum=1)
    step = check_int("step", step, minimum=1, maximum=LIMITS["hidden_size"])
    count = lambda k: models.count_parameters(build(k * step))  # noqa: E731
    low, high = 1, 2
    while count(high) < target:                           # bracket: count(high) >= target
        if high > 2 ** 16:
            raise ValueError(f"build must grow with the width: {high * step} units still give "
                             f"fewer than {target} parameters")
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < target else (low, middle)
    best = min((low, high), key=lambda k: abs(count(k) - target))
    return best * step


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with its weights drawn from ``seed``; the caller's random state is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# The digit reverser (chapter 3's task): trained on 3 to 8 digits, tested on 3-8 and on 9-12.
REVERSAL_RECIPE = {"train": 20000, "lengths": (3, 8), "long_lengths": (9, 12), "held_out": 1000,
                   "embedding_size": 32, "steps": 1000, "batch_size": 64}
# Three models at one parameter count, the attention model's with 64 units (match_width).
REVERSERS = {"no attention": models.EncoderDecoder,
             "bidirectional, no attention": BidirectionalEncoderDecoder,
             "attention": AttentionEncoderDecoder}
REVERSAL_WIDTHS = {"no attention": 78, "bidirectional, no attention": 88, "attention": 64}
DIGITS = "0123456789"


def reversal_splits() -> dict[str, tuple[list[str], list[str]]]:
    """(sources, targets) of the reverser's splits: train, validation and test on the trained
    lengths (no string in two of them), and "long", test strings of unseen lengths."""
    r = REVERSAL_RECIPE
    train = data.reversal_pairs(r["train"], *r["lengths"], seed=0)
    test = data.reversal_pairs(r["held_out"], *r["lengths"], seed=1, exclude=train[0])
    validation = data.reversal_pairs(r["held_out"], *r["lengths"], seed=3,
                                     exclude=train[0] + test[0])
    long = data.reversal_pairs(r["held_out"], *r["long_lengths"], seed=2)
    return {"train": train, "validation": validation, "test": test, "long": long}


def _check_train_reverser(kind: str, splits: dict, *, lr: float, seed: int = 0,
                          steps: int | None = None,
                          device: str | torch.device | None = None) -> None:
    check_choice("kind", kind, REVERSERS)
    if steps is not None:
        check_int("steps", steps, minimum=1)
    check_type("splits", splits, dict)
    if "train" not in splits:
        raise ValueError(f"splits must hold a 'train' pair of lists, got keys {sorted(splits)}")
    pair = splits["train"]
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(part, list) and part and all(isinstance(s, str) for s in part)
                    for part in pair) and len(pair[0]) == len(pair[1])):
        raise TypeError(f"splits['train'] must be a (sources, targets) pair of equal, non-empty "
                        f"lists of digit strings, as reversal_splits makes, got {pair!r:.80}")
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    check_int("seed", seed, minimum=0)
    if device is not None:
        check_device(device)


@checked_by(_check_train_reverser)
def train_reverser(kind: str, splits: dict, *, lr: float, seed: int = 0,
                   steps: int | None = None,
                   device: str | torch.device | None = None) -> dict:
    """Train one of :data:`REVERSERS` at its width with chapter 3's recipe (teacher forcing,
    Adam, one-cycle rate) on ``splits["train"]``, for ``steps`` updates (None: the recipe's
    1,000). Returns {"model", "seconds", "parameters"}."""
    r, vocab = REVERSAL_RECIPE, data.Vocabulary(DIGITS)
    model = _seeded(lambda: REVERSERS[kind](len(vocab), r["embedding_size"], REVERSAL_WIDTHS[kind]),
                    seed)
    device = torch.device("cpu") if device is None else check_device(device)
    history = models.train_encoder_decoder(model.to(device), vocab, *splits["train"],
                                           steps=r["steps"] if steps is None else steps,
                                           lr=lr, batch_size=r["batch_size"],
                                           seed=seed)
    return {"model": model, "seconds": history["seconds"][0],
            "parameters": models.count_parameters(model)}


def _check_reversal_pairs(model: models.EncoderDecoder, sources: Sequence[str],
                          targets: Sequence[str]) -> None:
    check_type("model", model, models.EncoderDecoder)
    for name, strings in (("sources", sources), ("targets", targets)):
        if isinstance(strings, str) or not isinstance(strings, Sequence) or not strings:
            raise TypeError(f"{name} must be a non-empty list of digit strings, got {strings!r:.60}")
        odd = [s for s in strings if not isinstance(s, str)]
        if odd:
            raise TypeError(f"{name} must hold digit strings only, got {type(odd[0]).__name__}")
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} and {len(targets)}")


@checked_by(_check_reversal_pairs)
@torch.no_grad()
def reversal_loss(model: models.EncoderDecoder, sources: Sequence[str],
                  targets: Sequence[str]) -> float:
    """Mean cross-entropy per target token (end token included) under teacher forcing."""
    vocab, device = data.Vocabulary(DIGITS), next(model.parameters()).device
    source, lengths = vocab.encode(list(sources))
    target, target_lengths = vocab.encode(list(targets), add_eos=True)
    was_training = model.training
    logits = model.eval()(source.to(device), lengths, models.shift_right(target).to(device))
    model.train(was_training)
    return training.masked_cross_entropy(logits, target.to(device), target_lengths).item()


@checked_by(_check_reversal_pairs)
def exact_match_by_length(model: models.EncoderDecoder, sources: Sequence[str],
                          targets: Sequence[str]) -> dict[str, float]:
    """Greedy exact match over all strings ("all") and for each source length ("9", ...)."""
    _, predicted = models.decode_and_score(model, data.Vocabulary(DIGITS), list(sources),
                                           list(targets))
    scores = {"all": models.exact_match(predicted, list(targets))}
    for n in sorted({len(t) for t in targets}):
        pairs = [(p, t) for p, t in zip(predicted, targets) if len(t) == n]
        scores[str(n)] = models.exact_match(*map(list, zip(*pairs)))
    return scores


LAYER_KINDS = ("mingru", "minlstm", "gru", "lstm")


def make_layer(kind: str, input_size: int, hidden_size: int, *, mode: str = "scan") -> nn.Module:
    """A batch-first recurrent layer: ``MinGRU``, ``MinLSTM`` (computed as ``mode`` says),
    ``nn.GRU`` or ``nn.LSTM``."""
    check_choice("kind", kind, LAYER_KINDS)
    check_choice("mode", mode, SCAN_MODES)
    if kind == "mingru":
        return MinGRU(input_size, hidden_size, mode=mode)
    if kind == "minlstm":
        return MinLSTM(input_size, hidden_size, mode=mode)
    return models.make_recurrent(kind, input_size, hidden_size)


@torch.no_grad()
def chrono_init(layer: nn.Module, max_lag: int, *, seed: int = 0) -> torch.Tensor:
    """Spread the memory of a layer over 2 .. ``max_lag`` steps (Tallec and Ollivier 2018).

    For each unit a time scale tau is drawn from U[2, max_lag], and the gate
    biases are set so that the share of the old state kept at each step starts
    at 1 - 1/tau (and, for the LSTMs, the share written at 1/tau), as chapter 5
    does for ``nn.LSTM`` and ``nn.GRU``. Returns tau, shape (hidden,).
    """
    check_type("layer", layer, (MinGRU, MinLSTM, nn.GRU, nn.LSTM))
    H = layer.hidden_size
    tau, keep = cells.chrono_time_scales(H, max_lag, seed=seed)   # sigmoid(keep) = 1 - 1/tau
    if isinstance(layer, MinGRU):                         # blocks k (z = sigmoid(k)), h~
        layer.linear.bias[:H] = -keep
    elif isinstance(layer, MinLSTM):                      # blocks f, i, h~
        layer.linear.bias[:H], layer.linear.bias[H:2 * H] = keep, -keep
    else:                                                 # PyTorch's layout, from its one home
        gates = {"z": keep} if isinstance(layer, nn.GRU) else {"i": -keep, "f": keep}
        p = cells.torch_parameters(layer)
        for gate, value in gates.items():
            rows = cells.gate_rows(layer, gate)
            p["bias_ih"][rows], p["bias_hh"][rows] = value, 0.0
    return tau


# Learning rates tried for every model of a comparison; each model gets the one with the best
# validation score (benchmarks/attention_and_scans.py).
LR_GRID = (3e-3, 1e-2, 3e-2, 1e-1)
# On the adding problem two layers chose LR_GRID's largest rate, so the search goes one further.
ADDING_LR_GRID = LR_GRID + (3e-1,)
# Recurrent layers compared at the parameter count of the GRU with 32 units (adding problem)
# and 128 units (text), as match_width finds them.
ADDING_WIDTHS = {"mingru": 498, "gru": 32, "lstm": 27}
TEXT_RECIPE = {"embedding_size": 32, "streams": 32, "window": 64, "epochs": 1, "mode": "loop"}
TEXT_WIDTHS = {"mingru": 460, "gru": 128, "lstm": 111}

# The adding problem at T = 50 (chapter 5's task), with chapter 5's recipe: 300 Adam steps on
# minibatches of fresh sequences, a constant rate, the head starting at the mean prediction.
# minGRU runs as a loop: on a CPU that is faster than its log-space scan, and it gives the same
# numbers up to float32 rounding (the chapter measures both at this size).
ADDING_RECIPE = {"steps": 50, "train_steps": 300, "batch_size": 64, "clip_norm": 1.0,
                 "schedule": "constant", "head_at_mean": True, "fresh": True, "mode": "loop"}
ADDING_SCHEDULES = ("constant", "cosine")


def _check_train_adding(kind: str, steps: int, *, hidden_size: int = 32, train_steps: int = 300,
                        batch_size: int = 64, lr: float = 1e-2, clip_norm: float = 1.0,
                        schedule: str = "constant", head_at_mean: bool = True, fresh: bool = True,
                        mode: str = "scan", seed: int = 0, n_eval: int = 1000, test: bool = False,
                        device: str | torch.device | None = None) -> None:
    check_choice("kind", kind, LAYER_KINDS)
    check_int("steps", steps, minimum=3)                  # chrono_init needs lags of 3 or more
    for name, value in (("hidden_size", hidden_size), ("train_steps", train_steps),
                        ("batch_size", batch_size), ("n_eval", n_eval)):
        check_int(name, value, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    check_choice("schedule", schedule, ADDING_SCHEDULES)
    check_bool("head_at_mean", head_at_mean)
    check_bool("fresh", fresh)
    check_choice("mode", mode, SCAN_MODES)
    check_int("seed", seed, minimum=0)
    check_bool("test", test)
    if device is not None:
        check_device(device)


@checked_by(_check_train_adding)
def train_adding(kind: str, steps: int, *, hidden_size: int = 32, train_steps: int = 300,
                 batch_size: int = 64, lr: float = 1e-2, clip_norm: float = 1.0,
                 schedule: str = "constant", head_at_mean: bool = True, fresh: bool = True,
                 mode: str = "scan", seed: int = 0, n_eval: int = 1000, test: bool = False,
                 device: str | torch.device | None = None) -> dict:
    """Train a regressor over ``make_layer(kind)`` (chrono gates) on the adding problem.

    ``train_steps`` Adam updates, clipped at norm ``clip_norm``, at a ``"constant"`` rate or a
    ``"cosine"`` decay; ``fresh`` minibatches are new sequences every step, otherwise
    they are drawn with replacement from ``train_steps * batch_size`` sequences;
    ``head_at_mean`` starts the head at the mean prediction (weights 0, bias 1);
    ``mode`` says how a minGRU or minLSTM computes its recurrence (the same numbers).
    Returns {"model", "validation_mse", "seconds", "parameters"}, and with ``test`` the
    "test_mse"; each on ``n_eval`` new sequences.
    """
    def build() -> nn.Module:
        layer = make_layer(kind, 2, hidden_size, mode=mode)
        chrono_init(layer, steps, seed=seed)
        model = models.SequenceRegressor(layer, hidden_size)
        if head_at_mean:
            with torch.no_grad():
                model.head.weight.zero_()
                model.head.bias.fill_(1.0)
        return model

    model = _seeded(build, seed)
    x, y = data.adding_problem(train_steps * batch_size, steps, seed=seed)
    device = torch.device("cpu") if device is None else check_device(device)
    batches = (list(zip(x.split(batch_size), y.split(batch_size))) if fresh   # each once
               else training.random_batches(x, y, batch_size=batch_size, seed=seed))
    optimizer, decay = training.make_optimizer(model, lr=lr, total_steps=train_steps)
    history = training.fit(model.to(device), batches, steps=train_steps, optimizer=optimizer,
                           scheduler=decay if schedule == "cosine" else None,
                           loss_fn=F.mse_loss, clip_norm=clip_norm, device=device, verbose=False)
    run = {"model": model, "seconds": history["seconds"][0],
           "parameters": models.count_parameters(model)}
    for split, offset in (("validation", 2_000_003), ("test", 1_000_003))[: 1 + test]:
        x_eval, y_eval = data.adding_problem(n_eval, steps, seed=seed + offset)
        scored = training.evaluate(model, [(x_eval, y_eval)], loss_fn=F.mse_loss, device=device)
        run[f"{split}_mse"] = scored["loss"]
    return run


class CharModel(nn.Module):
    """A character model: embedding, one recurrent layer (:func:`make_layer`), linear head.

    ``forward(x, state=None)`` maps ids (batch, time) to (logits (batch, time,
    vocab), state), so ``training.fit(..., state="carry")`` reads long streams.
    """

    def __init__(self, kind: str, vocab_size: int, embedding_size: int = 32,
                 hidden_size: int = 128, *, mode: str = "scan") -> None:
        super().__init__()
        self.embed = nn.Embedding(check_int("vocab_size", vocab_size, minimum=2),
                                  check_int("embedding_size", embedding_size, minimum=1))
        self.recurrent = make_layer(kind, embedding_size, hidden_size, mode=mode)
        self.head = nn.Linear(hidden_size, vocab_size)

    def _check_state(self, state, batch: int) -> None:
        """The state the layer left: h (1, batch, hidden), or the pair (h, c) for ``nn.LSTM``."""
        expected = (1, batch, self.recurrent.hidden_size)
        if isinstance(self.recurrent, nn.LSTM):
            if not (isinstance(state, tuple) and len(state) == 2):
                raise TypeError(f"state must be the pair (h, c) an LSTM returns, "
                                f"got {type(state).__name__}")
            parts = {"state h": state[0], "state c": state[1]}
        else:
            parts = {"state": state}
        for name, part in parts.items():
            check_tensor(name, part, dim=3, floating=True, layout="(1, batch, hidden)")
            if part.shape != expected:
                raise ValueError(f"{name} must have shape {expected}, got {tuple(part.shape)}")
            check_dtype(name, part, self)

    def forward(self, x: torch.Tensor, state=None):
        check_tensor("x", x, dim=2, integer=True, nonempty=True, layout="(batch, time)")
        vocab_size = self.embed.num_embeddings
        if x.min() < 0 or x.max() >= vocab_size:
            raise ValueError(f"x must hold character ids in [0, {vocab_size - 1}], got values "
                             f"from {x.min().item()} to {x.max().item()}")
        if state is not None:
            self._check_state(state, x.shape[0])
        outputs, state = self.recurrent(self.embed(x), state)
        return self.head(outputs), state


def train_char_model(kind: str, train_windows: list, validation_windows: list, *,
                     hidden_size: int = 128, epochs: int = 1, lr: float = 3e-3,
                     mode: str = "scan", seed: int = 0,
                     device: str | torch.device | None = None) -> dict:
    """Train a :class:`CharModel` on stream windows with truncated BPTT (state carried);
    ``mode`` as in :func:`make_layer`.

    Returns {"model", "validation_bpc", "seconds", "parameters", "history"}.
    """
    from . import text                                    # the corpus helpers, core

    for name, windows in (("train_windows", train_windows), ("validation_windows", validation_windows)):
        check_type(name, windows, list)
        if not windows:
            raise ValueError(f"{name} must hold at least one (x, y) window, got an empty list")
        for k, window in enumerate(windows):
            if not (isinstance(window, tuple) and len(window) == 2
                    and all(isinstance(part, torch.Tensor) for part in window)):
                raise TypeError(f"{name} must hold (x, y) pairs of tensors, as "
                                f"text.stream_batches makes, got {type(window).__name__} at {k}")
    vocab_size = len(text.CharVocabulary())
    model = _seeded(lambda: CharModel(kind, vocab_size, hidden_size=hidden_size, mode=mode),
                    check_int("seed", seed, minimum=0))
    steps = check_int("epochs", epochs, minimum=1) * len(train_windows)
    optimizer, schedule = training.make_optimizer(model, lr=lr, total_steps=steps)
    history = training.fit(model, train_windows, epochs=epochs, optimizer=optimizer,
                           scheduler=schedule, clip_norm=1.0, state="carry", device=device,
                           verbose=False)
    validation = training.evaluate(model, validation_windows, state="carry", device=device)
    return {"model": model, "validation_bpc": text.bits_per_char(validation["loss"]),
            "seconds": sum(history["seconds"]), "parameters": models.count_parameters(model),
            "history": history}


# --------------------------------------------------------------- timings and figures


def time_scans(lengths: Sequence[int], *, batch_size: int = 16, hidden_size: int = 64,
               repeats: int = 3) -> list[dict]:
    """Seconds to compute every h_t of h_t = a_t h_{t-1} + b_t on the CPU, three ways.

    :func:`linear_recurrence_loop`, :func:`hillis_steele_scan` and the log-space
    form (:func:`log_scan`), on gates in (0, 1) and positive b; the best of
    ``repeats`` runs after a warm-up. Returns one row per T:
    {"T", "loop", "Hillis-Steele", "log-space"}.
    """
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(f"lengths must be a non-empty list of ints, got {lengths!r}")
    lengths = [check_int("each length", T, minimum=1) for T in lengths]
    batch_size = check_int("batch_size", batch_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    forms = {"loop": linear_recurrence_loop, "Hillis-Steele": hillis_steele_scan,
             "log-space": lambda a, b: log_scan(a.log(), b.log(),
                                                torch.full_like(b[:, 0], -torch.inf)).exp()}
    rows = []
    for T in lengths:
        g = torch.Generator().manual_seed(T)
        a = torch.rand(batch_size, T, hidden_size, generator=g)
        b = torch.rand(batch_size, T, hidden_size, generator=g)
        row = {"T": T}
        for name, form in forms.items():
            form(a, b)                                    # warm-up: allocations
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                form(a, b)
                times.append(time.perf_counter() - start)
            row[name] = min(times)
        rows.append(row)
    return rows


def crossover(rows: Sequence[dict], fast: str, slow: str) -> int | None:
    """The smallest T from which ``fast`` beats ``slow`` at every longer T measured, or None."""
    check_type("rows", rows, (list, tuple))
    check_type("fast", fast, str)
    check_type("slow", slow, str)
    if not rows:
        raise ValueError(f"rows must hold at least one row, got an empty {type(rows).__name__}")
    for row in rows:
        if not isinstance(row, dict) or any(key not in row for key in ("T", fast, slow)):
            raise ValueError(f"rows must be dicts with keys 'T', {fast!r} (fast) and {slow!r} (slow), "
                             f"got {row!r}")
    found = None
    for row in sorted(rows, key=lambda r: r["T"], reverse=True):
        if row[fast] >= row[slow]:
            break
        found = row["T"]
    return found


def plot_timings(timings: dict[str, list[dict]]) -> Figure:
    """Time against T, log-log: one panel per setting, one line per form (every key but "T")."""
    check_type("timings", timings, dict)
    if not timings:
        raise ValueError("timings must hold at least one setting, got an empty dict")
    for setting, rows in timings.items():
        if not rows or not all(isinstance(r, dict) and "T" in r and len(r) > 1 for r in rows):
            raise ValueError(f"timings[{setting!r}] must be a non-empty list of rows with 'T' "
                             f"and at least one time, got {rows!r:.80}")
    fig, axes = plt.subplots(1, len(timings), figsize=(4.6 * len(timings), 3.4), squeeze=False)
    markers = "osD^v"
    for ax, (setting, rows) in zip(axes[0], timings.items()):
        lengths = [r["T"] for r in rows]
        forms = [k for k in rows[0] if k != "T"]
        for k, name in enumerate(forms):
            ax.loglog(lengths, [1000 * r[name] for r in rows], marker=markers[k % 5], ms=4,
                      color=plots.CYCLE[k % len(plots.CYCLE)], label=name)
        ax.set_xticks(lengths, [str(T) for T in lengths])
        ax.minorticks_off()
        ax.set_title(setting, fontsize=10)
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("time (ms)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _check_plot_attention(weights: Sequence[torch.Tensor], sources: Sequence[str],
                          outputs: Sequence[str], titles: Sequence[str] | None = None,
                          marks: Sequence[int | None] | None = None) -> None:
    for name, value, kind in (("weights", weights, torch.Tensor), ("sources", sources, str),
                              ("outputs", outputs, str), ("titles", titles, str)):
        if name == "titles" and value is None:
            continue
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        odd = [v for v in value if not isinstance(v, kind)]
        if odd:
            raise TypeError(f"{name} must hold {kind.__name__} items only, "
                            f"got {type(odd[0]).__name__}")
    if not (len(weights) == len(sources) == len(outputs)) or not weights:
        raise ValueError(f"weights, sources and outputs must pair up and not be empty, got "
                         f"{len(weights)}, {len(sources)} and {len(outputs)}")
    if titles is not None and len(titles) != len(weights):
        raise ValueError(f"titles must give one title per map ({len(weights)}), got {len(titles)}")
    for alpha in weights:
        check_tensor("each map of weights", alpha, dim=2, floating=True, nonempty=True,
                     layout="(output step, source position)")
    if marks is not None:
        if isinstance(marks, str) or not isinstance(marks, Sequence) or len(marks) != len(weights):
            raise ValueError(f"marks must give one output step (or None) per map "
                             f"({len(weights)}), got {marks!r:.60}")
        for step, output in zip(marks, outputs):
            if step is not None:
                check_int("each mark", step, minimum=0, maximum=len(output))


@checked_by(_check_plot_attention)
def plot_attention(weights: Sequence[torch.Tensor], sources: Sequence[str],
                   outputs: Sequence[str], titles: Sequence[str] | None = None,
                   marks: Sequence[int | None] | None = None) -> Figure:
    """Attention maps: for each example, output step (rows) against source digit (columns).

    The last row is the step that wrote the end token, labelled "end"; ``titles``
    go above the maps (say which string is of an unseen length, or wrong). ``marks``
    gives, for each map, an output step to outline (the first wrong digit), or None.
    """
    widths = [len(source) + 1.5 for source in sources]     # wider strings, wider panels
    fig, axes = plt.subplots(1, len(weights), figsize=(0.42 * sum(widths) + 1.2, 3.6),
                             gridspec_kw={"width_ratios": widths}, layout="constrained")
    axes = [axes] if len(weights) == 1 else list(axes)
    for k, (ax, alpha, source, output) in enumerate(zip(axes, weights, sources, outputs)):
        alpha = alpha.detach().cpu()[: len(output) + 1, : len(source)]  # written digits + end
        shown = ax.imshow(alpha.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source)), list(source))
        ax.set_yticks(range(alpha.shape[0]), (list(output) + ["end"])[: alpha.shape[0]],
                      fontsize=8)
        ax.set_xlabel("source digit")
        ax.set_ylabel("output digit" if k == 0 else " ")
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
        if marks is not None and marks[k] is not None:       # outline the row, label it too
            ax.add_patch(Rectangle((-0.5, marks[k] - 0.5), len(source), 1, fill=False, lw=2,
                                   edgecolor=plots.PALETTE["vermillion"]))
            label = ax.get_yticklabels()[marks[k]]
            label.set_color(plots.PALETTE["vermillion"])
            label.set_fontweight("bold")
        ax.grid(False)
    fig.colorbar(shown, ax=axes, shrink=0.8, label="attention weight")
    return fig


def draw_scan_tree(T: int = 8) -> Figure:
    """The rounds of :func:`hillis_steele_scan` for ``T`` steps, from :func:`scan_schedule`.

    Row 0 holds the pairs (a_t, b_t); in round r each position t combines what
    position t - 2^(r-1) holds (a slanted arrow) with its own (a straight one).
    A box shows the steps s..t its pair stands for; finished prefixes 0..t are green.
    """
    T = check_int("T", T, minimum=2)
    if T > 16:
        raise ValueError(f"T must be at most 16 to stay readable, got {T}")
    schedule = scan_schedule(T)
    gap_x, gap_y = 1.15, 1.25
    fig, ax = plots.diagram_axes(T * gap_x + 2.2, (len(schedule) + 1) * gap_y + 0.2)
    first = list(range(T))                                 # first step each position holds
    for level in range(len(schedule) + 1):
        if level:
            for s, t in schedule[level - 1]:
                plots.draw_arrow(ax, (2.2 + s * gap_x, (level - 1) * gap_y + 0.75),
                                 (2.2 + t * gap_x, level * gap_y + 0.45))
            for t in range(T):
                plots.draw_arrow(ax, (2.2 + t * gap_x, (level - 1) * gap_y + 0.75),
                                 (2.2 + t * gap_x, level * gap_y + 0.45))
            shift = 2 ** (level - 1)
            first = [first[t - shift] if t >= shift else first[t] for t in range(T)]
        for t in range(T):
            label = f"{t}" if first[t] == t else f"{first[t]}..{t}"
            role = "input" if level == 0 else ("output" if first[t] == 0 else "state")
            plots.draw_box(ax, (2.2 + t * gap_x, level * gap_y + 0.6), label, role,
                           size=(0.95, 0.42))
        name = "steps t" if level == 0 else f"round {level}\n(shift {2 ** (level - 1)})"
        ax.text(0.75, level * gap_y + 0.6, name, ha="center", va="center",
                fontsize=plots.DIAGRAM["font"] - 1)
    return fig


def draw_attention_decoder() -> Figure:
    """One step j of the attention decoder of Bahdanau et al. over a source of four digits."""
    fig, ax = plots.diagram_axes(9.6, 6.2)
    xs = [1.0 + 1.5 * i for i in range(4)]
    for i, x in enumerate(xs):
        plots.draw_box(ax, (x, 0.5), f"$x_{i}$", "input")
        plots.draw_box(ax, (x, 1.8), f"$e_{i}$", "state")
        plots.draw_arrow(ax, (x, 0.8), (x, 1.5))
        if i:
            plots.draw_arrow(ax, (x - 1.05, 1.9), (x - 0.45, 1.9))    # forward direction
            plots.draw_arrow(ax, (x - 0.45, 1.7), (x - 1.05, 1.7))    # backward direction
        plots.draw_box(ax, (x, 3.2), f"$\\alpha_{{j{i}}}$", "gate", size=(0.8, 0.5))
        plots.draw_arrow(ax, (x, 2.1), (x, 2.95))
        plots.draw_arrow(ax, (x, 3.45), (3.25, 4.45))
    ax.add_patch(FancyBboxPatch((0.45, 2.8), 5.6, 0.8, boxstyle="round,pad=0.02",
                                fill=False, ls="--", edgecolor=plots.DIAGRAM["edge"]))
    plots.draw_box(ax, (3.25, 4.8), "$c_j = \\sum_i \\alpha_{ji} e_i$", "state", size=(2.3, 0.65))
    plots.draw_arrow(ax, (xs[0] - 0.4, 2.0), (2.1, 4.75), curve=-0.35)  # the states, as values
    ax.text(0.05, 3.9, "values\n$e_i$", fontsize=plots.DIAGRAM["font"] - 1,
            color=plots.DIAGRAM["edge"])
    plots.draw_box(ax, (8.0, 1.8), "$d_{j-1}$", "state")
    plots.draw_arrow(ax, (7.55, 2.0), (6.1, 3.1), "query")
    plots.draw_box(ax, (8.0, 4.8), "$d_j$", "state")
    plots.draw_arrow(ax, (8.0, 2.1), (8.0, 4.5), "GRU cell")
    plots.draw_box(ax, (6.6, 3.9), "$y_{j-1}$", "input")
    plots.draw_arrow(ax, (6.95, 4.1), (7.55, 4.6))
    plots.draw_arrow(ax, (4.45, 4.8), (7.55, 4.8))
    plots.draw_box(ax, (8.0, 5.8), "$o_j$", "output")
    plots.draw_arrow(ax, (8.0, 5.1), (8.0, 5.5))
    plots.draw_arrow(ax, (3.25, 5.15), (7.55, 5.8), curve=-0.15)
    ax.text(3.25, -0.1, "encoder: both directions", ha="center", fontsize=plots.DIAGRAM["font"] - 1)
    ax.text(8.0, -0.1, "decoder, step j", ha="center", fontsize=plots.DIAGRAM["font"] - 1)
    ax.set_ylim(-0.3, 6.3)
    return fig


def seed_summary(rows: Sequence[dict], by: str, values: Sequence[str],
                 digits: int = 3) -> "pd.DataFrame":
    """One line per group of ``by``: each value as "mean ± sd" over the rows' seeds, and the
    number of seeds. The sd is the sample standard deviation, shown with ``digits`` decimals;
    a value that is the same in every seed of a group (a setting) is shown alone."""
    import pandas as pd                                   # the chapters' table library

    check_type("rows", rows, (list, tuple))
    check_type("by", by, str)
    check_int("digits", digits, minimum=0, maximum=15)
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
        raise TypeError(f"values must be a non-empty list of column names, got {values!r}")
    odd = [v for v in values if not isinstance(v, str)]
    if odd:
        raise TypeError(f"values must hold column names (str), got {odd[0]!r}")
    if not rows:
        raise ValueError("rows must hold at least one row, got an empty list")
    for row in rows:
        if not isinstance(row, dict) or by not in row or any(v not in row for v in values):
            raise ValueError(f"rows must be dicts with {by!r} and {list(values)}, got {row!r:.80}")
    table = {}
    for value in values:
        for group in results.summarize(rows, by, value):
            line = table.setdefault(group[by], {})
            if group["min"] == group["max"]:             # a setting: no spread to show
                mean = group["mean"]
                line[value] = (f"{mean:.0f}" if mean == int(mean) and abs(mean) >= 2
                               else f"{mean:.{digits}f}")
            else:
                line[value] = f"{group['mean']:.{digits}f} ± {group['std']:.{digits}f}"
            line["seeds"] = group["n"]
    return pd.DataFrame.from_dict(table, orient="index").rename_axis(by)


def paired_wins(rows: Sequence[dict], first: str, second: str, value: str = "test") -> int:
    """The number of seeds in which model ``first`` scores lower ``value`` than ``second``."""
    check_type("rows", rows, (list, tuple))
    check_type("first", first, str)
    check_type("second", second, str)
    check_type("value", value, str)
    if not rows:
        raise ValueError("rows must hold at least one row, got an empty list")
    score = {}
    for row in rows:
        if not isinstance(row, dict) or any(k not in row for k in ("model", "seed", value)):
            raise ValueError(f"rows must be dicts with 'model', 'seed' and {value!r}, got {row!r:.80}")
        score[row["model"], row["seed"]] = row[value]
    seeds = {s for m, s in score if m == first} & {s for m, s in score if m == second}
    if not seeds:
        raise ValueError(f"no seed has runs of both {first!r} and {second!r}")
    return sum(score[first, s] < score[second, s] for s in seeds)
