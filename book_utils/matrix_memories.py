"""Chapter 8: matrix memories, from linear attention to the delta rule and the mLSTM.

The layers of this chapter carry a matrix S_t from step to step instead of a vector.
Conventions, for the whole module: the book's row vectors. A key k_t and a query q_t
are rows of d_k numbers, a value v_t a row of d_v numbers, and the state S_t is
d_k x d_v: a write adds the outer product k_t^T v_t, a read is the row q_t S_t. The
papers (Katharopoulos et al. 2020, Yang et al. 2024, Beck et al. 2024) use column
vectors and store the transpose, a d_v x d_k matrix written v_t k_t^T and read S_t q_t;
:func:`paper_gated_delta_loop` and :func:`paper_mlstm_loop` follow them to the letter.

- **linear attention**: :func:`linear_attention_parallel` and
  :func:`linear_attention_recurrent` (Katharopoulos et al. 2020), the causal
  :func:`softmax_attention` it replaces, and :func:`linear_attention_chunkwise`;
- **the delta rule**: :func:`delta_rule_recurrent` (DeltaNet, and Gated DeltaNet with
  a decay) and its chunkwise-parallel form :func:`delta_rule_chunkwise` (Yang et al.
  2024); :func:`write_pairs`, :func:`retrieval_error` and :func:`retrieval_curves`
  store key-value pairs with no training;
- **the mLSTM**: :func:`mlstm_recurrent`, stabilised or not (Beck et al. 2024);
- **trained comparisons**: the tasks :func:`mqar_batch` and :func:`parity_batch`,
  the :class:`MatrixMemory` layer, :class:`TaskModel`, :func:`train_task` and the
  recipes :data:`MQAR_RECIPE` and :data:`PARITY_RECIPE` that ``benchmarks/matrix_memories.py``
  runs over five seeds; the control :class:`UnitKeyAdditiveMemory` (DeltaNet's layer with the
  additive rule) that ``benchmarks/matrix_memories_keys.py`` trains with :func:`train_model`;
  :func:`time_forms` times the recurrent and chunkwise forms;
- **figures**: :func:`plot_retrieval`, :func:`plot_recall`, :func:`plot_parity`,
  :func:`plot_form_timings`.

Tensors are batch first: (batch, time, features).
"""

from __future__ import annotations

import numbers
import statistics
import time
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from . import plots
from ._checks import (check_bool, check_choice, check_device, check_dtype, check_elements,
                      check_float, check_int, check_tensor, check_type, checked_by)

# --------------------------------------------------------------- argument checks


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int]:
    """q, k (batch, time, d_k) and v (batch, time, d_v), one floating dtype; returns B, T, d_k, d_v."""
    check_tensor("q", q, dim=3, floating=True, nonempty=True, layout="(batch, time, d_k)")
    check_tensor("k", k, dim=3, floating=True, nonempty=True, layout="(batch, time, d_k)")
    check_tensor("v", v, dim=3, floating=True, nonempty=True, layout="(batch, time, d_v)")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape (batch, time, d_k), "
                         f"got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:2] != k.shape[:2]:
        raise ValueError(f"v must start with (batch, time) = {tuple(k.shape[:2])} like k, "
                         f"got {tuple(v.shape)}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    return (*k.shape, v.shape[2])


def _check_gate(name: str, gate: torch.Tensor, k: torch.Tensor, *, low: float | None = None,
                high: float | None = None) -> None:
    """A per-step scalar gate (batch, time), in the dtype of k, optionally within [low, high]."""
    check_tensor(name, gate, dim=2, floating=True, layout="(batch, time)")
    if gate.shape != k.shape[:2]:
        raise ValueError(f"{name} must have shape (batch, time) = {tuple(k.shape[:2])}, "
                         f"got {tuple(gate.shape)}")
    if gate.dtype != k.dtype:
        raise TypeError(f"{name} must have the dtype of k, {k.dtype}, got {gate.dtype}")
    check_tensor(name, gate, finite=True)
    if low is not None and bool((gate < low).any()):
        raise ValueError(f"{name} must be >= {low} everywhere, got a minimum of {gate.min().item():.3g}")
    if high is not None and bool((gate > high).any()):
        raise ValueError(f"{name} must be <= {high} everywhere, got a maximum of {gate.max().item():.3g}")


def _check_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                     normalize: bool = True) -> None:
    _check_qkv(q, k, v)
    check_bool("normalize", normalize)


def _check_plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    _check_qkv(q, k, v)


def _check_chunk(chunk: int) -> None:
    check_int("chunk", chunk, minimum=1)


def _check_generator(generator: torch.Generator) -> None:
    check_type("generator", generator, torch.Generator)


# --------------------------------------------------------------- linear attention


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """The feature map phi(x) = elu(x) + 1 of Katharopoulos et al.: positive, so scores are too."""
    check_tensor("x", x, floating=True)
    return F.elu(x) + 1


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The outer products a_i^T b_i of a batch of rows: (batch, m) x (batch, n) -> (batch, m, n)."""
    return a[:, :, None] * b[:, None, :]


@checked_by(_check_attention)
def linear_attention_parallel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                              normalize: bool = True) -> torch.Tensor:
    """Parallel form: h_t = sum_{s<=t} (phi(q_t) . phi(k_s)) v_s, over the scores' sum."""
    scores = elu_plus_one(q) @ elu_plus_one(k).transpose(1, 2)   # (batch, T, T)
    scores = scores.tril()                          # step t sees the steps s <= t only
    h = scores @ v                                  # (batch, T, d_v)
    if normalize:
        h = h / scores.sum(dim=2, keepdim=True)
    return h


@checked_by(_check_attention)
def linear_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                               normalize: bool = True) -> torch.Tensor:
    """Recurrent form: S_t = S_{t-1} + phi(k_t)^T v_t, n_t = n_{t-1} + phi(k_t),
    h_t = phi(q_t) S_t, divided by phi(q_t) . n_t when ``normalize``."""
    B, T, d_k = k.shape
    S = k.new_zeros(B, d_k, v.shape[2])            # the matrix memory, d_k x d_v
    n = k.new_zeros(B, d_k)                        # the normaliser, a sum of keys
    phi_q, phi_k = elu_plus_one(q), elu_plus_one(k)
    h = []
    for t in range(T):
        S = S + _outer(phi_k[:, t], v[:, t])
        n = n + phi_k[:, t]
        h_t = (phi_q[:, t, None] @ S)[:, 0]        # the row phi(q_t) S_t
        if normalize:
            h_t = h_t / (phi_q[:, t] * n).sum(dim=1, keepdim=True)
        h.append(h_t)
    return torch.stack(h, dim=1)                   # (batch, T, d_v)


@checked_by(_check_plain)
def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal: h_t = sum_{s<=t} softmax_s(q_t . k_s / sqrt(d_k)) v_s."""
    T = q.shape[1]
    scores = q @ k.transpose(1, 2) / q.shape[2] ** 0.5          # (batch, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=2) @ v


def _check_chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int, *,
                             normalize: bool = True) -> None:
    _check_attention(q, k, v, normalize=normalize)
    _check_chunk(chunk)


@checked_by(_check_chunked_attention)
def linear_attention_chunkwise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               chunk: int, *, normalize: bool = True) -> torch.Tensor:
    """Blocks of ``chunk`` steps: the parallel form inside a block, the recurrent form
    from one block to the next."""
    B, T, d_k = k.shape
    S, n = k.new_zeros(B, d_k, v.shape[2]), k.new_zeros(B, d_k)  # before the block
    h = []
    for start in range(0, T, chunk):
        block = slice(start, start + chunk)
        Q, K, V = elu_plus_one(q[:, block]), elu_plus_one(k[:, block]), v[:, block]
        scores = (Q @ K.transpose(1, 2)).tril()     # inside the block
        h_block = Q @ S + scores @ V                # + earlier blocks, through S
        if normalize:
            h_block = h_block / (Q @ n[:, :, None] + scores.sum(dim=2, keepdim=True))
        S, n = S + K.transpose(1, 2) @ V, n + K.sum(dim=1)      # after the block
        h.append(h_block)
    return torch.cat(h, dim=1)                      # (batch, T, d_v)


# --------------------------------------------------------------- the delta rule


def _check_delta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                 alpha: torch.Tensor | None = None) -> None:
    _check_qkv(q, k, v)
    _check_gate("beta", beta, k, low=0.0, high=2.0)
    if alpha is not None:
        _check_gate("alpha", alpha, k, low=0.0, high=1.0)


@checked_by(_check_delta)
def delta_rule_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         beta: torch.Tensor, alpha: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """S_t = a_t S_{t-1} - beta_t k_t^T (k_t a_t S_{t-1} - v_t), h_t = q_t S_t, where
    a_t = 1 (DeltaNet) or the decay alpha_t in [0, 1] (Gated DeltaNet)."""
    B, T, d_k = k.shape
    S = k.new_zeros(B, d_k, v.shape[2])
    h = []
    for t in range(T):
        if alpha is not None:
            S = alpha[:, t, None, None] * S            # forget a share of everything
        error = (k[:, t, None] @ S)[:, 0] - v[:, t]    # what S returns for k_t, - v_t
        S = S - beta[:, t, None, None] * _outer(k[:, t], error)   # a gradient step
        h.append((q[:, t, None] @ S)[:, 0])
    return torch.stack(h, dim=1)                       # (batch, T, d_v)


def _check_delta_chunkwise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                           chunk: int) -> None:
    _check_delta(q, k, v, beta)
    _check_chunk(chunk)


def _blocks(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """(batch, T, ...) -> (batch, blocks, chunk, ...), padding the end with zeros."""
    pad = -x.shape[1] % chunk
    if pad:
        x = torch.cat([x, x.new_zeros(x.shape[0], pad, *x.shape[2:])], dim=1)
    return x.reshape(x.shape[0], -1, chunk, *x.shape[2:])


@checked_by(_check_delta_chunkwise)
def delta_rule_chunkwise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         beta: torch.Tensor, chunk: int) -> torch.Tensor:
    """DeltaNet in blocks of ``chunk`` steps; a triangular solve finds a block's writes."""
    B, T, d_k = k.shape
    Q, K, V, Beta = (_blocks(x, chunk) for x in (q, k, v, beta))  # pad: beta 0
    # For all blocks at once: A = I + tril(diag(beta) K K^T, -1), then A W = diag(beta) K
    # and A U~ = diag(beta) V, so that a block's writes are U = U~ - W S_0.
    I = torch.eye(chunk, dtype=k.dtype, device=k.device)
    A = I + (Beta[..., None] * K @ K.transpose(2, 3)).tril(-1)
    W = torch.linalg.solve_triangular(A, Beta[..., None] * K, upper=False,
                                      unitriangular=True)
    U_tilde = torch.linalg.solve_triangular(A, Beta[..., None] * V, upper=False,
                                            unitriangular=True)
    causal = (Q @ K.transpose(2, 3)).tril()                 # q_t . k_s for s <= t
    S = k.new_zeros(B, d_k, v.shape[2])                     # the state before a block
    h = []
    for n in range(Q.shape[1]):                             # block after block
        U = U_tilde[:, n] - W[:, n] @ S                     # rows beta_t (v_t - k_t S_t-1)
        h.append(Q[:, n] @ S + causal[:, n] @ U)
        S = S + K[:, n].transpose(1, 2) @ U
    return torch.cat(h, dim=1)[:, :T]                       # (batch, T, d_v)


# --------------------------------------------------------------- memory as regression

RULES = ("additive", "delta")


def _check_pairs(keys: torch.Tensor, values: torch.Tensor) -> None:
    check_tensor("keys", keys, dim=3, floating=True, nonempty=True, layout="(trials, pairs, d_k)")
    check_tensor("values", values, dim=3, floating=True, nonempty=True,
                 layout="(trials, pairs, d_v)")
    if keys.shape[:2] != values.shape[:2]:
        raise ValueError(f"keys and values must have the same (trials, pairs), "
                         f"got {tuple(keys.shape)} and {tuple(values.shape)}")
    if keys.dtype != values.dtype:
        raise TypeError(f"keys and values must share one dtype, got {keys.dtype} and {values.dtype}")


def _check_write_pairs(keys: torch.Tensor, values: torch.Tensor, rule: str,
                       beta: float = 1.0) -> None:
    _check_pairs(keys, values)
    check_choice("rule", rule, RULES)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise TypeError(f"beta must be a number, got {type(beta).__name__}")
    if not 0.0 <= beta <= 2.0:
        raise ValueError(f"beta must be in [0, 2], got {beta}")


@checked_by(_check_write_pairs)
def write_pairs(keys: torch.Tensor, values: torch.Tensor, rule: str,
                beta: float = 1.0) -> torch.Tensor:
    """Store keys[:, i] -> values[:, i], in order, in one d_k x d_v matrix per trial."""
    S = keys.new_zeros(keys.shape[0], keys.shape[2], values.shape[2])
    for k, v in zip(keys.unbind(1), values.unbind(1)):
        if rule == "additive":
            S = S + _outer(k, v)                                 # write, never look
        else:
            S = S - beta * _outer(k, (k[:, None] @ S)[:, 0] - v)  # write the error
    return S


def _check_retrieval(S: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
    """A score: S, keys and values of matching shapes and dtype, and finite (NaN scores nothing)."""
    _check_pairs(keys, values)
    check_tensor("S", S, dim=3, floating=True, layout="(trials, d_k, d_v)")
    if S.dtype != keys.dtype:
        raise TypeError(f"S must have the dtype of keys, {keys.dtype}, got {S.dtype}")
    if S.shape != (keys.shape[0], keys.shape[2], values.shape[2]):
        raise ValueError(f"S must have shape (trials, d_k, d_v) = "
                         f"{(keys.shape[0], keys.shape[2], values.shape[2])}, got {tuple(S.shape)}")
    for name, tensor in (("S", S), ("keys", keys), ("values", values)):
        check_tensor(name, tensor, finite=True)


@checked_by(_check_retrieval)
def retrieval_error(S: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """||k_i S - v_i||^2 for every pair: (trials, pairs). Storing nothing scores ||v_i||^2."""
    return ((keys @ S - values) ** 2).sum(dim=2)


def _check_random_pairs(trials: int, pairs: int, d_key: int, *, d_value: int | None = None,
                        generator: torch.Generator) -> None:
    trials, pairs = check_int("trials", trials, minimum=1), check_int("pairs", pairs, minimum=1)
    d_key = check_int("d_key", d_key, minimum=1)
    d_value = check_int("d_value", d_key if d_value is None else d_value, minimum=1)
    _check_generator(generator)
    check_elements("keys and values", trials * pairs * (d_key + d_value))


@checked_by(_check_random_pairs)
def random_pairs(trials: int, pairs: int, d_key: int, *, d_value: int | None = None,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random unit keys (trials, pairs, d_key) and unit values (trials, pairs, d_value), float64."""
    d_value = d_key if d_value is None else d_value
    keys = torch.randn(trials, pairs, d_key, generator=generator, dtype=torch.float64)
    values = torch.randn(trials, pairs, d_value, generator=generator, dtype=torch.float64)
    return F.normalize(keys, dim=2), F.normalize(values, dim=2)


def retrieval_curves(pair_counts: Sequence[int], key_sizes: Sequence[int], *, trials: int = 10,
                     seed: int = 0) -> list[dict]:
    """Mean retrieval error per trial for each d_k, n and rule (and the least-squares best).

    Rows ``{"d_k", "pairs", "rule", "trial", "error"}``; ``rule`` is ``"additive"``,
    ``"delta"`` (beta = 1) or ``"least squares"``, the best any d_k x d_v matrix can do.
    """
    for name, sizes in (("pair_counts", pair_counts), ("key_sizes", key_sizes)):
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
            raise TypeError(f"{name} must be a non-empty list of ints, got {sizes!r}")
        for size in sizes:
            check_int(name, size, minimum=1)
    trials = check_int("trials", trials, minimum=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    rows = []
    for d_k in key_sizes:
        for n in pair_counts:
            keys, values = random_pairs(trials, n, d_k, generator=generator)
            memories = {rule: write_pairs(keys, values, rule) for rule in RULES}
            memories["least squares"] = torch.linalg.pinv(keys) @ values
            for rule, S in memories.items():
                errors = retrieval_error(S, keys, values).mean(dim=1)
                rows += [{"d_k": d_k, "pairs": n, "rule": rule, "trial": i, "error": e}
                         for i, e in enumerate(errors.tolist())]
    return rows


# --------------------------------------------------------------- the mLSTM


def _check_mlstm(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_i: torch.Tensor,
                 log_f: torch.Tensor, *, stabilize: bool = True) -> None:
    _check_qkv(q, k, v)
    _check_gate("log_i", log_i, k)
    _check_gate("log_f", log_f, k, high=0.0)
    check_bool("stabilize", stabilize)


@checked_by(_check_mlstm)
def mlstm_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    log_i: torch.Tensor, log_f: torch.Tensor, *,
                    stabilize: bool = True) -> torch.Tensor:
    """S_t = f_t S_{t-1} + i_t k_t^T v_t, n_t = f_t n_{t-1} + i_t k_t,
    h_t = q_t S_t / max(|q_t . n_t|, 1), from log i_t and log f_t. With ``stabilize``,
    S_t and n_t are kept divided by exp(m_t), so that no exponential overflows."""
    B, T, d_k = k.shape
    S, n, m = k.new_zeros(B, d_k, v.shape[2]), k.new_zeros(B, d_k), k.new_zeros(B)
    h = []
    for t in range(T):
        if stabilize:
            m_new = torch.maximum(log_f[:, t] + m, log_i[:, t])
            f = torch.exp(log_f[:, t] + m - m_new)
            i = torch.exp(log_i[:, t] - m_new)
            floor, m = torch.exp(-m_new), m_new            # the 1 of max(., 1), scaled
        else:
            f, i, floor = log_f[:, t].exp(), log_i[:, t].exp(), torch.ones_like(m)
        S = f[:, None, None] * S + i[:, None, None] * _outer(k[:, t], v[:, t])
        n = f[:, None] * n + i[:, None] * k[:, t]
        denominator = torch.maximum((q[:, t] * n).sum(dim=1).abs(), floor)
        h.append((q[:, t, None] @ S)[:, 0] / denominator[:, None])
    return torch.stack(h, dim=1)                           # (batch, T, d_v)


# --------------------------------------------------------------- loops from the papers


def _check_paper_delta(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                       alpha: torch.Tensor) -> None:
    check_tensor("alpha", alpha, dim=2, floating=True, layout="(batch, time)")
    _check_delta(q, k, v, beta, alpha)


@checked_by(_check_paper_delta)
def paper_gated_delta_loop(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           beta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Gated DeltaNet as Yang, Kautz and Hatamizadeh write it, in column vectors:
    S_t = S_{t-1} alpha_t (I - beta_t k_t k_t^T) + beta_t v_t k_t^T (d_v x d_k),
    h_t = S_t q_t; one sequence, one step at a time."""
    B, T, d_k = k.shape
    out = v.new_zeros(B, T, v.shape[2])
    I = torch.eye(d_k, dtype=k.dtype, device=k.device)
    for b in range(B):
        S = k.new_zeros(v.shape[2], d_k)
        for t in range(T):
            k_t, v_t, q_t = k[b, t, :, None], v[b, t, :, None], q[b, t, :, None]
            S = (S @ (alpha[b, t] * (I - beta[b, t] * k_t @ k_t.T))
                 + beta[b, t] * v_t @ k_t.T)
            out[b, t] = (S @ q_t)[:, 0]
    return out


def _check_paper_mlstm(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, i_pre: torch.Tensor,
                       f_pre: torch.Tensor) -> None:
    _check_qkv(q, k, v)
    _check_gate("i_pre", i_pre, k)
    _check_gate("f_pre", f_pre, k)


@checked_by(_check_paper_mlstm)
def paper_mlstm_loop(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     i_pre: torch.Tensor, f_pre: torch.Tensor) -> torch.Tensor:
    """The mLSTM memory as Beck et al. write it, in column vectors and unstabilised:
    C_t = f_t C_{t-1} + i_t v_t k_t^T, n_t = f_t n_{t-1} + i_t k_t,
    h_t = C_t q_t / max(|n_t^T q_t|, 1), i_t = exp(i_pre), f_t = sigmoid(f_pre)."""
    B, T, d_k = k.shape
    out = v.new_zeros(B, T, v.shape[2])
    for b in range(B):
        C, n = k.new_zeros(v.shape[2], d_k), k.new_zeros(d_k, 1)
        for t in range(T):
            k_t, v_t, q_t = k[b, t, :, None], v[b, t, :, None], q[b, t, :, None]
            i_t, f_t = torch.exp(i_pre[b, t]), torch.sigmoid(f_pre[b, t])
            C = f_t * C + i_t * v_t @ k_t.T
            n = f_t * n + i_t * k_t
            out[b, t] = (C @ q_t)[:, 0] / torch.clamp((n.T @ q_t).abs(), min=1.0)[0]
    return out


# --------------------------------------------------------------- tasks

FILLER, KEY_TOKENS, VALUE_TOKENS = 0, range(1, 32), range(32, 64)   # MQAR's vocabulary of 64
MQAR_VOCAB = 64


def mqar_batch(batch_size: int, pairs: int | Sequence[int], *, length: int = 64,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-query associative recall (Arora et al. 2023): ``(x, y)``, both (batch, length).

    Each sequence starts with ``pairs`` key-value pairs ``k1 v1 k2 v2 ...`` (distinct keys from
    tokens 1-31, values from 32-63); then every key is asked once, at a random later position,
    among filler tokens 0. ``y`` holds the value to recall at each query and -100 (ignored by
    the loss) everywhere else. ``pairs`` may be a list: each sequence draws its count from it.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    length = check_int("length", length, minimum=3)
    counts = [pairs] if isinstance(pairs, numbers.Integral) else pairs
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Sequence) or not counts:
        raise TypeError(f"pairs must be an int or a non-empty list of ints, got {pairs!r}")
    for n in counts:
        check_int("pairs", n, minimum=1)
        if 3 * n > length or n > len(KEY_TOKENS):
            raise ValueError(f"pairs must be at most min(length // 3, {len(KEY_TOKENS)}) = "
                             f"{min(length // 3, len(KEY_TOKENS))} (two tokens per pair, one "
                             f"per query), got {n} for length {length}")
    _check_generator(generator)
    x = torch.full((batch_size, length), FILLER, dtype=torch.long)
    y = torch.full((batch_size, length), -100, dtype=torch.long)
    drawn = torch.randint(len(counts), (batch_size,), generator=generator)
    for row, choice in enumerate(drawn.tolist()):
        n = counts[choice]
        keys = torch.randperm(len(KEY_TOKENS), generator=generator)[:n] + KEY_TOKENS[0]
        values = torch.randint(VALUE_TOKENS[0], VALUE_TOKENS[-1] + 1, (n,), generator=generator)
        x[row, 0:2 * n:2], x[row, 1:2 * n:2] = keys, values
        where = 2 * n + torch.randperm(length - 2 * n, generator=generator)[:n].sort().values
        order = torch.randperm(n, generator=generator)
        x[row, where], y[row, where] = keys[order], values[order]
    return x, y


def parity_batch(batch_size: int, length: int, *,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random bit strings ``x`` (batch, length) and ``y``, the parity of every prefix."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    length = check_int("length", length, minimum=1)
    _check_generator(generator)
    x = torch.randint(2, (batch_size, length), generator=generator)
    return x, x.cumsum(dim=1) % 2


# --------------------------------------------------------------- layers and models

MEMORY_KINDS = ("linear", "delta", "delta_neg", "softmax")
MODEL_KINDS = ("lstm", *MEMORY_KINDS)


class MatrixMemory(nn.Module):
    """One attention-like layer: (batch, time, features) -> (batch, time, d_value).

    ``kind`` is ``"linear"`` (linear attention without the normaliser), ``"delta"``
    (DeltaNet: unit-length keys and queries, beta_t = sigmoid in (0, 1)), ``"delta_neg"``
    (the same with beta_t = 2 sigmoid in (0, 2), Grazzi et al. 2025) or ``"softmax"``
    (causal softmax attention, whose cache grows with the sequence). DeltaNet runs in its
    chunkwise form, blocks of ``chunk`` steps.
    """

    def __init__(self, kind: str, input_size: int, d_key: int, d_value: int | None = None, *,
                 chunk: int = 16) -> None:
        super().__init__()
        self.kind = check_choice("kind", kind, MEMORY_KINDS)
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.d_key = check_int("d_key", d_key, minimum=1)
        self.d_value = check_int("d_value", d_key if d_value is None else d_value, minimum=1)
        self.chunk = check_int("chunk", chunk, minimum=1)
        writes_beta = kind in ("delta", "delta_neg")
        self.project = nn.Linear(input_size, 2 * self.d_key + self.d_value + writes_beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=3, floating=True, nonempty=True, layout="(batch, time, features)")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x must have {self.input_size} features, got shape {tuple(x.shape)}")
        check_dtype("x", x, self)
        check_tensor("x", x, finite=True)
        q, k, v, rest = self._split(self.project(x))
        if self.kind == "linear":
            return linear_attention_parallel(q, k, v, normalize=False)
        if self.kind == "softmax":
            return softmax_attention(q, k, v)
        beta = torch.sigmoid(rest[..., 0]) * (2.0 if self.kind == "delta_neg" else 1.0)
        return delta_rule_chunkwise(F.normalize(q, dim=2), F.normalize(k, dim=2), v, beta,
                                    self.chunk)

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d_k, d_v = self.d_key, self.d_value
        return z[..., :d_k], z[..., d_k:2 * d_k], z[..., 2 * d_k:2 * d_k + d_v], z[..., 2 * d_k + d_v:]

    def state_floats(self) -> int | None:
        """Floats carried from step to step: d_k x d_v, or None for softmax's growing cache."""
        return None if self.kind == "softmax" else self.d_key * self.d_value

    def extra_repr(self) -> str:
        return f"{self.kind!r}, {self.input_size}, d_key={self.d_key}, d_value={self.d_value}"


def _check_memory_input(layer: MatrixMemory, x: torch.Tensor) -> None:
    """x (batch, time, input_size), finite, in the layer's dtype."""
    check_tensor("x", x, dim=3, floating=True, nonempty=True, layout="(batch, time, features)")
    if x.shape[2] != layer.input_size:
        raise ValueError(f"x must have {layer.input_size} features, got shape {tuple(x.shape)}")
    check_dtype("x", x, layer)
    check_tensor("x", x, finite=True)


class UnitKeyAdditiveMemory(MatrixMemory):
    """DeltaNet's layer with the additive rule: the control that isolates the update rule.

    The projection, unit-length q_t and k_t and beta_t = sigmoid in (0, 1) of
    ``MatrixMemory("delta", ...)``, but the write S_t = S_{t-1} + beta_t k_t^T v_t and the read
    h_t = q_t S_t: linear attention without feature map or normaliser, on DeltaNet's keys.
    """

    def __init__(self, input_size: int, d_key: int, d_value: int | None = None) -> None:
        super().__init__("delta", input_size, d_key, d_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_memory_input(self, x)
        q, k, v, rest = self._split(self.project(x))
        q, k = F.normalize(q, dim=2), F.normalize(k, dim=2)
        writes = torch.sigmoid(rest) * v                   # beta_t v_t, (batch, T, d_v)
        return (q @ k.transpose(1, 2)).tril() @ writes     # sum_{s<=t} (q_t . k_s) beta_s v_s

    def extra_repr(self) -> str:
        return (f"additive rule on unit keys, {self.input_size}, d_key={self.d_key}, "
                f"d_value={self.d_value}")


def token_shift(e: torch.Tensor) -> torch.Tensor:
    """[e_t, e_{t-1}] at every step, e_{-1} = 0: each step also sees the token before."""
    check_tensor("e", e, dim=3, floating=True, layout="(batch, time, features)")
    return torch.cat([e, F.pad(e, (0, 0, 1, 0))[:, :-1]], dim=2)


class TaskModel(nn.Module):
    """Embedding, token shift, one sequence layer and a small MLP head, per step.

    ``kind`` ``"lstm"`` uses ``nn.LSTM`` with ``hidden_size`` units (2 x hidden_size floats
    of state); the others a :class:`MatrixMemory` of that kind with d_k = d_v = ``d_key``
    (and no use for ``hidden_size``).
    ``forward(x)`` maps token ids (batch, time) to scores (batch, time, n_classes).
    """

    def __init__(self, kind: str, vocab_size: int, n_classes: int, *, d_model: int = 32,
                 d_key: int = 16, hidden_size: int = 64, head_size: int = 64) -> None:
        super().__init__()
        self.kind = check_choice("kind", kind, MODEL_KINDS)
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        n_classes = check_int("n_classes", n_classes, minimum=2)
        d_model = check_int("d_model", d_model, minimum=1)
        d_key = check_int("d_key", d_key, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        head_size = check_int("head_size", head_size, minimum=1)
        self.embed = nn.Embedding(self.vocab_size, d_model)
        if kind == "lstm":
            self.mixer = nn.LSTM(2 * d_model, self.hidden_size, batch_first=True)
            out = self.hidden_size
        else:
            self.mixer = MatrixMemory(kind, 2 * d_model, d_key)
            out = d_key
        self.head = nn.Sequential(nn.Linear(out, head_size), nn.GELU(),
                                  nn.Linear(head_size, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dim=2, integer=True, nonempty=True, layout="(batch, time)")
        if bool((x < 0).any()) or bool((x >= self.vocab_size).any()):
            raise ValueError(f"x must hold token ids in [0, {self.vocab_size - 1}], "
                             f"got values from {x.min().item()} to {x.max().item()}")
        u = token_shift(self.embed(x))
        h = self.mixer(u)[0] if self.kind == "lstm" else self.mixer(u)
        return self.head(h)

    def state_floats(self) -> int | None:
        """Floats carried from step to step (None: softmax attention's cache grows with T)."""
        return 2 * self.hidden_size if self.kind == "lstm" else self.mixer.state_floats()


# --------------------------------------------------------------- recipes and training

# Multi-query associative recall: 4 to 16 pairs in 64 tokens; a validation set and a test
# set of fixed sequences per pair count, the same for every model and seed.
MQAR_RECIPE = {
    "length": 64, "train_pairs": list(range(4, 17)), "test_pairs": [4, 8, 12, 16],
    "d_model": 32, "d_key": 16, "head_size": 64, "steps": 600, "batch_size": 64,
    "lrs": [1e-3, 3e-3, 1e-2], "clip_norm": 1.0, "validation_size": 250, "test_size": 1000,
}
# Parity: trained on strings of 16 bits, tested on strings of 256, at every prefix.
PARITY_RECIPE = {
    "train_length": 16, "test_length": 256, "test_positions": [16, 32, 64, 128, 256],
    "d_model": 16, "d_key": 8, "head_size": 64, "steps": 600, "batch_size": 64,
    "lrs": [1e-3, 3e-3, 1e-2], "clip_norm": 1.0, "validation_size": 500, "test_size": 1000,
}
# The models compared, as TaskModel arguments. The LSTMs are matched to the memories of size
# d_key x d_key: at equal state (2 x hidden = d_key^2 floats) and at equal parameters
# (tests/test_matrix_memories.py checks both matches).
MQAR_MODELS = {
    "LSTM, equal state": {"kind": "lstm", "hidden_size": 128},
    "LSTM, equal parameters": {"kind": "lstm", "hidden_size": 11},
    "linear attention": {"kind": "linear"},
    "DeltaNet": {"kind": "delta"},
    "softmax attention": {"kind": "softmax"},
}
PARITY_MODELS = {
    "LSTM, equal state": {"kind": "lstm", "hidden_size": 32},
    "LSTM, equal parameters": {"kind": "lstm", "hidden_size": 6},
    "linear attention": {"kind": "linear"},
    "DeltaNet, beta in (0, 1)": {"kind": "delta"},
    "DeltaNet, beta in (0, 2)": {"kind": "delta_neg"},
}
TASKS = {"mqar": (MQAR_RECIPE, MQAR_MODELS), "parity": (PARITY_RECIPE, PARITY_MODELS)}
SPLIT_SEEDS = {"validation": 1, "test": 2}      # the held-out sets never change


def _check_task(task: str, *names: str) -> tuple[dict, dict]:
    """The recipe and models of ``task``; each of ``names`` must name one of its models."""
    recipe, models = TASKS[check_choice("task", task, TASKS)]
    for name in names:
        check_choice("name", name, models)
    return recipe, models


def make_model(task: str, name: str) -> TaskModel:
    """The model called ``name`` in the task's table (:data:`MQAR_MODELS`, :data:`PARITY_MODELS`)."""
    recipe, models = _check_task(task, name)
    vocab, classes = (MQAR_VOCAB, MQAR_VOCAB) if task == "mqar" else (2, 2)
    return TaskModel(vocab_size=vocab, n_classes=classes, d_model=recipe["d_model"],
                     d_key=recipe["d_key"], head_size=recipe["head_size"], **models[name])


def task_batch(task: str, batch_size: int, *, split: str = "train", generator: torch.Generator,
               pairs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the task: MQAR with ``pairs`` (default: the training mix) or parity strings
    of the training length (``split="test"``: the test length)."""
    recipe, _ = _check_task(task)
    check_choice("split", split, ("train", "validation", "test"))
    if task == "mqar":
        return mqar_batch(batch_size, recipe["train_pairs"] if pairs is None else pairs,
                          length=recipe["length"], generator=generator)
    if pairs is not None:
        raise ValueError(f"pairs applies to the task 'mqar' only, got pairs={pairs} for 'parity'")
    length = recipe["test_length"] if split == "test" else recipe["train_length"]
    return parity_batch(batch_size, length, generator=generator)


def held_out(task: str, split: str) -> dict:
    """The fixed validation or test sets: {pair count: (x, y)} for MQAR, {length: (x, y)} for parity."""
    recipe, _ = _check_task(task)
    check_choice("split", split, SPLIT_SEEDS)
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    size = recipe[f"{split}_size"]
    if task == "mqar":
        return {n: task_batch(task, size, generator=generator, pairs=n)
                for n in recipe["test_pairs"]}
    batch = task_batch(task, size, split=split, generator=generator)
    return {batch[0].shape[1]: batch}


@torch.no_grad()
def accuracies(task: str, model: TaskModel, split: str, *,
               device: str | torch.device = "cpu") -> dict:
    """Accuracy on the held-out sets of ``split``, as a fraction.

    MQAR: {pair count: share of queries answered}; parity, validation: {"all steps": share
    of prefixes}; parity, test: {t: share of strings whose first t bits get the right parity}.
    """
    recipe, _ = _check_task(task)
    check_type("model", model, TaskModel)
    device = check_device(device)
    model.eval()
    result = {}
    for key, (x, y) in held_out(task, split).items():
        scores = model(x.to(device))
        if not bool(torch.isfinite(scores).all()):
            raise ValueError("model must produce finite scores to be scored, got NaN or inf "
                             "(a diverged run has no accuracy)")
        right = scores.argmax(dim=2).cpu() == y
        if task == "mqar":
            result[key] = right[y != -100].float().mean().item()
        elif split == "validation":
            result["all steps"] = right.float().mean().item()
        else:
            result.update({t: right[:, t - 1].float().mean().item()
                           for t in recipe["test_positions"]})
    return result


def train_task(task: str, name: str, *, lr: float, seed: int, steps: int | None = None,
               device: str | torch.device = "cpu") -> dict:
    """Train the model ``name`` on fresh batches of ``task``; score the validation sets.

    Adam with a cosine decay from ``lr`` to zero, gradients clipped to the recipe's norm,
    ``steps`` updates (default: the recipe's). A run whose loss stops being finite ends
    there, flagged ``diverged``, with a validation accuracy of 0. Returns ``{"model",
    "validation", "validation_loss", "losses", "diverged", "seconds", "parameters",
    "state_floats"}``.
    """
    recipe, _ = _check_task(task, name)
    seed = check_int("seed", seed, minimum=0)
    steps = recipe["steps"] if steps is None else check_int("steps", steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    device = check_device(device)
    with torch.random.fork_rng(devices=[]):           # seed the weights, not the caller's RNG
        torch.manual_seed(seed)
        model = make_model(task, name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(1000 + seed)    # the training stream
    losses, diverged, start = [], False, time.perf_counter()
    model.train()
    for _ in range(steps):
        x, y = task_batch(task, recipe["batch_size"], generator=generator)
        loss = F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten())
        if not torch.isfinite(loss):
            diverged = True
            break
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_norm"])
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    validation = {} if diverged else accuracies(task, model, "validation", device=device)
    return {"model": model, "diverged": diverged, "losses": losses, "seconds": seconds,
            "validation": sum(validation.values()) / len(validation) if validation else 0.0,
            "validation_loss": float("inf") if diverged else _held_out_loss(task, model, device),
            "parameters": sum(p.numel() for p in model.parameters()),
            "state_floats": model.state_floats()}


def train_model(task: str, model: TaskModel, *, lr: float, seed: int, steps: int | None = None,
                device: str | torch.device = "cpu") -> dict:
    """Train a given ``model`` on fresh batches of ``task`` exactly as :func:`train_task` trains
    the models of the task's table (same optimiser, schedule, clipping and training stream for
    ``seed``), for a model built outside the table, such as a control; returns the same dict."""
    recipe, _ = _check_task(task)
    check_type("model", model, TaskModel)
    seed = check_int("seed", seed, minimum=0)
    steps = recipe["steps"] if steps is None else check_int("steps", steps, minimum=1)
    lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
    device = check_device(device)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(1000 + seed)    # the training stream
    losses, diverged, start = [], False, time.perf_counter()
    model.train()
    for _ in range(steps):
        x, y = task_batch(task, recipe["batch_size"], generator=generator)
        loss = F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten())
        if not torch.isfinite(loss):
            diverged = True
            break
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_norm"])
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    validation = {} if diverged else accuracies(task, model, "validation", device=device)
    return {"model": model, "diverged": diverged, "losses": losses, "seconds": seconds,
            "validation": sum(validation.values()) / len(validation) if validation else 0.0,
            "validation_loss": float("inf") if diverged else _held_out_loss(task, model, device),
            "parameters": sum(p.numel() for p in model.parameters()),
            "state_floats": model.state_floats()}


@torch.no_grad()
def _held_out_loss(task: str, model: TaskModel, device: str | torch.device) -> float:
    """Mean cross-entropy over the validation sets: breaks ties between equal accuracies."""
    model.eval()
    losses = [F.cross_entropy(model(x.to(device)).flatten(0, 1), y.to(device).flatten()).item()
              for x, y in held_out(task, "validation").values()]
    return sum(losses) / len(losses)


# --------------------------------------------------------------- timings

FORMS = ("recurrent", "chunkwise, C = 16", "chunkwise, C = 64", "parallel, C = T")


def _delta_inputs(batch_size: int, T: int, d_key: int, generator: torch.Generator):
    q, k = (F.normalize(torch.randn(batch_size, T, d_key, generator=generator), dim=2)
            for _ in range(2))
    v = torch.randn(batch_size, T, d_key, generator=generator)
    beta = torch.rand(batch_size, T, generator=generator)
    return [t.requires_grad_() for t in (q, k, v, beta)]


def _pass_seconds(form: str, inputs: list[torch.Tensor]) -> float:
    """One forward and backward pass (training needs both) of DeltaNet in ``form``."""
    T = inputs[0].shape[1]
    start = time.perf_counter()
    if form == "recurrent":
        h = delta_rule_recurrent(*inputs)
    else:
        h = delta_rule_chunkwise(*inputs, T if form == "parallel, C = T" else int(form[-2:]))
    h.sum().backward()
    return time.perf_counter() - start


def time_forms(lengths: Sequence[int], *, batch_size: int = 8, d_key: int = 32,
               repeats: int = 5, max_parallel: int = 1024, seed: int = 0) -> list[dict]:
    """Seconds per forward + backward pass of DeltaNet in each of :data:`FORMS`, per length T.

    ``repeats`` timed passes per form and length, after one warm-up pass; the fully parallel
    form (one block of T steps, a T x T solve) only up to ``max_parallel`` steps. Rows
    ``{"T", "form", "repeat", "seconds"}``, on the CPU.
    """
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(f"lengths must be a non-empty list of ints, got {lengths!r}")
    lengths = [check_int("each length", T, minimum=1) for T in lengths]
    batch_size = check_int("batch_size", batch_size, minimum=1)
    d_key = check_int("d_key", d_key, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    max_parallel = check_int("max_parallel", max_parallel, minimum=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    rows = []
    for T in lengths:
        inputs = _delta_inputs(batch_size, T, d_key, generator)
        for form in FORMS:
            if form == "parallel, C = T" and T > max_parallel:
                continue
            _pass_seconds(form, inputs)                          # warm-up: allocations
            rows += [{"T": T, "form": form, "repeat": r, "seconds": _pass_seconds(form, inputs)}
                     for r in range(repeats)]
    return rows


def median_seconds(rows: Sequence[dict]) -> dict[tuple[int, str], float]:
    """The median of the repeats of :func:`time_forms`, keyed by (T, form)."""
    groups: dict[tuple[int, str], list[float]] = {}
    for row in _check_rows(rows, ("T", "form", "seconds")):
        groups.setdefault((row["T"], row["form"]), []).append(row["seconds"])
    return {key: statistics.median(values) for key, values in groups.items()}


def crossover(rows: Sequence[dict], fast: str, slow: str) -> int | None:
    """The smallest T from which ``fast`` has the lower median time at every longer T, or None."""
    check_type("fast", fast, str)
    check_type("slow", slow, str)
    medians = median_seconds(rows)
    forms = sorted({form for _, form in medians})
    for argument, name in (("fast", fast), ("slow", slow)):
        if name not in forms:
            raise ValueError(f"{argument} must be a form the rows time, one of {forms}, "
                             f"got {name!r}")
    shared = sorted({T for T, form in medians if form == fast} & {T for T, form in medians if form == slow})
    found = None
    for T in reversed(shared):
        if medians[T, fast] >= medians[T, slow]:
            break
        found = T
    return found


# --------------------------------------------------------------- figures


def _check_rows(rows: Sequence[dict], keys: Sequence[str]) -> Sequence[dict]:
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if not rows:
        raise ValueError(f"rows must hold at least one row, got an empty {type(rows).__name__}")
    for row in rows:
        if not isinstance(row, dict) or any(key not in row for key in keys):
            raise ValueError(f"rows must hold dicts: every row must be a dict with the keys "
                             f"{list(keys)}, got {row!r}")
    return rows


def _bands(rows: Sequence[dict], line: str, x: str, y: str) -> dict:
    """{line value: (xs, means, minima, maxima)} over the rows, in order of appearance."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[line], {}).setdefault(row[x], []).append(row[y])
    return {name: ([*by_x], [statistics.fmean(v) for v in by_x.values()],
                   [min(v) for v in by_x.values()], [max(v) for v in by_x.values()])
            for name, by_x in groups.items()}


STYLES = [(plots.PALETTE[c], m, ls) for c, m, ls in (
    ("blue", "o", "-"), ("orange", "s", "--"), ("green", "^", "-."), ("vermillion", "D", ":"),
    ("purple", "v", "-"), ("sky", "P", "--"))]


def _log2_ticks(ax, values: Sequence[int]) -> None:
    """A base-2 log axis labelled with the values themselves (16, not 2^4)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [f"{v:,}" for v in values])
    ax.minorticks_off()


def _lines(ax, bands: dict) -> None:
    """One line per entry, with its range as a band."""
    for (name, (xs, mean, low, high)), (colour, marker, style) in zip(bands.items(), STYLES):
        ax.plot(xs, mean, marker=marker, ms=4, color=colour, linestyle=style, label=name)
        ax.fill_between(xs, low, high, color=colour, alpha=0.2, linewidth=0)


def _seeds(ax, rows: Sequence[dict], x: str, *, dodge: float, log: bool = False) -> None:
    """Per model: every run's accuracy as a dot, and a line through their mean."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row["model"], {}).setdefault(row[x], []).append(row["accuracy"])
    middle = (len(groups) - 1) / 2
    for i, ((name, by_x), (colour, marker, style)) in enumerate(zip(groups.items(), STYLES)):
        shift = dodge * (i - middle)
        xs = [value * 2 ** shift if log else value + shift for value in by_x]
        ax.plot(xs, [statistics.fmean(v) for v in by_x.values()], color=colour,
                linestyle=style, marker=marker, ms=5, label=str(name).replace("beta", "β"))
        ax.scatter([xv for xv, v in zip(xs, by_x.values()) for _ in v],
                   [a for v in by_x.values() for a in v], color=colour, marker=marker,
                   s=20, alpha=0.6, linewidths=0)


def plot_retrieval(rows: Sequence[dict]) -> Figure:
    """Retrieval error against the number of pairs stored, one panel per key size d_k."""
    _check_rows(rows, ("d_k", "pairs", "rule", "error"))
    sizes = sorted({row["d_k"] for row in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.3 * len(sizes), 3.3), squeeze=False)
    for ax, d_k in zip(axes[0], sizes):
        _lines(ax, _bands([r for r in rows if r["d_k"] == d_k], "rule", "pairs", "error"))
        ax.axvline(d_k, color="#808080", linestyle="--", linewidth=1)
        ax.axhline(1.0, color="#333333", linestyle=":", linewidth=1)
        _log2_ticks(ax, sorted({r["pairs"] for r in rows}))
        ax.set_title(f"$d_k$ = {d_k}", fontsize=10)
        ax.set_xlabel("pairs stored N")
        ax.set_ylabel(r"mean $\|\mathbf{k}_i \mathbf{S} - \mathbf{v}_i\|^2$")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_recall(rows: Sequence[dict]) -> Figure:
    """MQAR test accuracy against the number of pairs: a dot per run, a line per model
    through the mean of its runs."""
    _check_rows(rows, ("model", "pairs", "accuracy"))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    _seeds(ax, rows, "pairs", dodge=0.12)
    ax.axhline(1 / len(VALUE_TOKENS), color="#333333", linestyle=":", linewidth=1,
               label="chance (1 value in 32)")
    ax.set_xticks(sorted({r["pairs"] for r in rows}))
    ax.set_xlabel("key-value pairs per sequence")
    ax.set_ylabel("test accuracy on the queries")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_parity(rows: Sequence[dict], train_length: int) -> Figure:
    """Parity accuracy against the prefix length t: a dot per run, a line per model through
    the mean of its runs."""
    _check_rows(rows, ("model", "length", "accuracy"))
    train_length = check_int("train_length", train_length, minimum=1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    _seeds(ax, rows, "length", dodge=0.04, log=True)
    ax.axvline(train_length, color="#808080", linestyle="--", linewidth=1,
               label="longest training string")
    ax.axhline(0.5, color="#333333", linestyle=":", linewidth=1, label="chance")
    _log2_ticks(ax, sorted({r["length"] for r in rows}))
    ax.set_xlabel("length of the string t (bits)")
    ax.set_ylabel("test accuracy, parity of t bits")
    ax.set_ylim(0.3, 1.02)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_form_timings(rows: Sequence[dict]) -> Figure:
    """Seconds per forward + backward pass against T, log-log (median, min-max of repeats)."""
    _check_rows(rows, ("T", "form", "seconds"))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bands = _bands(rows, "form", "T", "seconds")
    for name, (xs, _, low, high) in bands.items():
        medians = median_seconds([r for r in rows if r["form"] == name])
        bands[name] = (xs, [medians[T, name] for T in xs], low, high)
    _lines(ax, bands)
    _log2_ticks(ax, sorted({r["T"] for r in rows}))
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("forward + backward (s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
