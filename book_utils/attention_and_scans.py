"""Chapter 7: beyond the single state, attention and parallel recurrences.

Two groups of helpers, both for Chapter 7 only:

- **parallel recurrences**: the linear recurrence h_t = a_t * h_{t-1} + b_t computed
  step by step (:func:`linear_recurrence_loop`), all at once with cumulative
  products (:func:`naive_scan`, which breaks on long sequences) and all at once in
  log space (:func:`log_scan`, Heinsen 2023), with :func:`parallel_scan` for inputs
  of either sign (:func:`chunked_log_scan` bounds its float32 error); the
  recurrent layers :class:`MinGRU` and :class:`MinLSTM` (Feng et al. 2024) built
  on it, :func:`chrono_init` for their gates, and the drivers that compare them
  with ``nn.GRU`` and ``nn.LSTM``: :func:`train_adding`, :class:`CharModel` with
  :func:`train_char_model`, :func:`time_recurrences` and :func:`plot_timings`;
- **attention**: :func:`additive_attention` (Bahdanau et al. 2015) with padded
  source positions masked, the :class:`AttentionEncoderDecoder` that uses it,
  and :func:`plot_attention`.

Tensors are batch first: (batch, time, features).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import cells, data, models, plots, training
from ._checks import (check_choice, check_device, check_dtype, check_int, check_lengths, check_tensor,
                      check_type, checked_by)

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
    """All steps at once: h_t = A_t (h_0 + sum_{s<=t} b_s / A_s), A_t = a_1 ... a_t (Equation 5)."""
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0
    A = a.cumprod(dim=1)                                   # underflows to 0 for long t
    return A * (h0[:, None] + (b / A).cumsum(dim=1))


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
    """log h_t for h_t = a_t h_{t-1} + b_t with b, h_0 > 0, all steps at once (Equation 6)."""
    log_a = torch.cat([torch.zeros_like(log_h0[:, None]), log_a], dim=1)  # step 0 holds h_0
    log_b = torch.cat([log_h0[:, None], log_b], dim=1)
    a_star = log_a.cumsum(dim=1)                           # log(a_1 ... a_t)
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
    """h_t = a_t h_{t-1} + b_t in log space, for a > 0 and b, h_0 of either sign.

    The recurrence is linear in (b, h_0), so their positive and negative parts
    run as two scans in log space, and h is the difference. With ``chunk`` the
    scan runs over blocks of that many steps (:func:`chunked_log_scan`), which
    bounds the rounding error that grows with the size of log(a_1 ... a_t).
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


class AttentionEncoderDecoder(models.EncoderDecoder):
    """Chapter 3's encoder-decoder with additive attention over the encoder's states.

    As in Bahdanau et al. (2015), the encoder reads the source in both
    directions (``hidden_size // 2`` units each way), so its state e_i at each
    position i knows the tokens on both sides; it keeps all of them. At each
    output step j the decoder attends with its previous state d_{j-1}, reads the
    context c_j with the previous token's embedding,
    d_j = GRUCell([E[y_{j-1}], c_j], d_{j-1}), and predicts from [d_j, c_j].
    It is called like :class:`models.EncoderDecoder`, so
    ``models.train_encoder_decoder`` and ``models.decode_and_score`` work on it;
    :meth:`decode_with_attention` also returns the attention weights.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 64,
                 attention_size: int | None = None) -> None:
        super().__init__(vocab_size, embedding_size, hidden_size)
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        if hidden_size % 2:
            raise ValueError(f"hidden_size must be even (half for each direction), got {hidden_size}")
        attention_size = check_int("attention_size",
                                   hidden_size if attention_size is None else attention_size,
                                   minimum=1)
        del self.decoder                                  # replaced by a cell that reads c_j
        self.encoder = nn.GRU(embedding_size, hidden_size // 2, batch_first=True,
                              bidirectional=True)
        self.cell = nn.GRUCell(embedding_size + hidden_size, hidden_size)
        self.W_q = nn.Linear(hidden_size, attention_size, bias=False)
        self.W_k = nn.Linear(hidden_size, attention_size)
        self.v = nn.Parameter(torch.randn(attention_size) / attention_size ** 0.5)
        self.head = nn.Linear(2 * hidden_size, vocab_size)

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


LAYER_KINDS = ("mingru", "minlstm", "gru", "lstm")


def make_layer(kind: str, input_size: int, hidden_size: int) -> nn.Module:
    """A batch-first recurrent layer: ``MinGRU``, ``MinLSTM``, ``nn.GRU`` or ``nn.LSTM``."""
    check_choice("kind", kind, LAYER_KINDS)
    if kind == "mingru":
        return MinGRU(input_size, hidden_size)
    if kind == "minlstm":
        return MinLSTM(input_size, hidden_size)
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


def train_adding(kind: str, steps: int, *, hidden_size: int = 32, train_steps: int = 300,
                 batch_size: int = 64, lr: float = 1e-2, seed: int = 0, n_test: int = 1000,
                 device: str | torch.device | None = None) -> dict:
    """Train a ``models.SequenceRegressor`` over ``make_layer(kind)`` on the adding problem.

    The layer starts from :func:`chrono_init` with time scales up to ``steps``.
    ``train_steps`` Adam updates (cosine-decayed rate, clipping at 1) on
    minibatches drawn from ``train_steps * batch_size`` sequences of length
    ``steps``; returns {"model", "mse" (on ``n_test`` new sequences),
    "seconds", "parameters"}.
    """
    torch.manual_seed(check_int("seed", seed, minimum=0))
    steps = check_int("steps", steps, minimum=3)         # chrono_init needs lags of 3 or more
    layer = make_layer(kind, 2, hidden_size)
    chrono_init(layer, steps, seed=seed)
    model = models.SequenceRegressor(layer, hidden_size)
    train_steps = check_int("train_steps", train_steps, minimum=1)
    x, y = data.adding_problem(train_steps * check_int("batch_size", batch_size, minimum=1),
                               steps, seed=seed)
    x_test, y_test = data.adding_problem(check_int("n_test", n_test, minimum=1), steps,
                                         seed=seed + 1_000_003)
    device = torch.device("cpu") if device is None else check_device(device)
    optimizer, schedule = training.make_optimizer(model, lr=lr, total_steps=train_steps)
    batches = training.random_batches(x, y, batch_size=batch_size, seed=seed)
    history = training.fit(model.to(device), batches, steps=train_steps, optimizer=optimizer,
                           scheduler=schedule, loss_fn=F.mse_loss, clip_norm=1.0, device=device,
                           verbose=False)
    test = training.evaluate(model, [(x_test, y_test)], loss_fn=F.mse_loss, device=device)
    return {"model": model, "mse": test["loss"], "seconds": history["seconds"][0],
            "parameters": models.count_parameters(model)}


class CharModel(nn.Module):
    """A character model: embedding, one recurrent layer (:func:`make_layer`), linear head.

    ``forward(x, state=None)`` maps ids (batch, time) to (logits (batch, time,
    vocab), state), so ``training.fit(..., state="carry")`` reads long streams.
    """

    def __init__(self, kind: str, vocab_size: int, embedding_size: int = 32,
                 hidden_size: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(check_int("vocab_size", vocab_size, minimum=2),
                                  check_int("embedding_size", embedding_size, minimum=1))
        self.recurrent = make_layer(kind, embedding_size, hidden_size)
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
                     seed: int = 0, device: str | torch.device | None = None) -> dict:
    """Train a :class:`CharModel` on stream windows with truncated BPTT (state carried).

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
    torch.manual_seed(check_int("seed", seed, minimum=0))
    vocab_size = len(text.CharVocabulary())
    model = CharModel(kind, vocab_size, hidden_size=hidden_size)
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


def _time_once(layer: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    outputs, _ = layer(x)
    outputs.sum().backward()                              # training needs both passes
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_recurrences(lengths: Sequence[int], *, batch_size: int = 16, input_size: int = 32,
                     hidden_size: int = 64, repeats: int = 3,
                     device: str | torch.device = "cpu") -> list[dict]:
    """Seconds for one forward and backward pass of a recurrent layer, for each length T.

    Three layers of the same width: :class:`MinGRU` as a loop and as a scan,
    and ``nn.GRU``. Each time is the best of ``repeats`` runs, after one
    warm-up run. Returns one row per T: {"T", "loop", "scan", "nn.GRU"}.
    """
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(f"lengths must be a non-empty list of ints, got {lengths!r}")
    lengths = [check_int("each length", T, minimum=1) for T in lengths]
    batch_size = check_int("batch_size", batch_size, minimum=1)
    input_size = check_int("input_size", input_size, minimum=1)
    hidden_size = check_int("hidden_size", hidden_size, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    device = check_device(device)
    layers = {"loop": MinGRU(input_size, hidden_size, mode="loop"),
              "scan": MinGRU(input_size, hidden_size, mode="scan"),
              "nn.GRU": nn.GRU(input_size, hidden_size, batch_first=True)}
    rows = []
    for T in lengths:
        x = torch.randn(batch_size, T, input_size, device=device)
        row = {"T": T}
        for name, layer in layers.items():
            layer.to(device)
            _time_once(layer, x)                          # warm-up: allocations, kernel choice
            row[name] = min(_time_once(layer, x) for _ in range(repeats))
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
    """Time per pass against T, log-log: one panel per setting, one line per layer."""
    check_type("timings", timings, dict)
    if not timings:
        raise ValueError("timings must hold at least one setting, got an empty dict")
    for setting, rows in timings.items():
        if not (isinstance(rows, list) and rows and all(
                isinstance(r, dict) and {"T", "loop", "scan", "nn.GRU"} <= set(r) for r in rows)):
            raise TypeError(f"timings[{setting!r}] must be the non-empty list of rows that "
                            f"time_recurrences returns, got {rows!r:.80}")
    fig, axes = plt.subplots(1, len(timings), figsize=(4.6 * len(timings), 3.4), squeeze=False)
    colours = {"loop": plots.PALETTE["orange"], "scan": plots.PALETTE["blue"],
               "nn.GRU": plots.PALETTE["green"]}
    for ax, (setting, rows) in zip(axes[0], timings.items()):
        lengths = [r["T"] for r in rows]
        for name, colour in colours.items():
            ax.loglog(lengths, [1000 * r[name] for r in rows], marker="o", ms=4, color=colour,
                      label={"loop": "minGRU, loop", "scan": "minGRU, scan"}.get(name, name))
        ax.set_title(setting, fontsize=10)
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("forward + backward (ms)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_attention(weights: Sequence[torch.Tensor], sources: Sequence[str],
                   outputs: Sequence[str]) -> Figure:
    """Attention maps: for each example, output step (rows) against source digit (columns)."""
    for name, value, kind in (("weights", weights, torch.Tensor), ("sources", sources, str),
                              ("outputs", outputs, str)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        odd = [v for v in value if not isinstance(v, kind)]
        if odd:
            raise TypeError(f"{name} must hold {kind.__name__} items only, "
                            f"got {type(odd[0]).__name__}")
    for i, alpha in enumerate(weights):
        check_tensor(f"weights[{i}]", alpha, dim=2, floating=True,
                     layout="(output steps, source steps)")
    if not (len(weights) == len(sources) == len(outputs)) or not weights:
        raise ValueError(f"weights, sources and outputs must pair up and not be empty, got "
                         f"{len(weights)}, {len(sources)} and {len(outputs)}")
    fig, axes = plt.subplots(1, len(weights), figsize=(3.0 * len(weights), 3.2))
    axes = [axes] if len(weights) == 1 else list(axes)
    for ax, alpha, source, output in zip(axes, weights, sources, outputs):
        alpha = alpha.detach().cpu()[: len(output) + 1, : len(source)]  # written digits + end
        shown = ax.imshow(alpha, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source)), list(source))
        ax.set_yticks(range(alpha.shape[0]), list(output) + ["<eos>"][: alpha.shape[0] - len(output)])
        ax.set_xlabel("source digit")
        ax.set_ylabel("output digit")
        ax.grid(False)
    fig.colorbar(shown, ax=axes, shrink=0.8, label="attention weight")
    return fig
