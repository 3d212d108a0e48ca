"""Chapter 6: character-level language models on real text.

- :class:`NGramModel`: count-based n-gram models with interpolated absolute
  discounting, scored in bits per character (the chapter's strongest n-gram model,
  modified Kneser-Ney, lives in :mod:`book_utils.text`); :func:`sample_ngram`;
- :class:`CharLM`: embedding -> RNN / GRU / LSTM (one or more layers, dropout
  between them) -> linear head, called as ``model(x, state) -> (logits, state)``
  so that :func:`book_utils.training.fit` can carry its state across windows;
- the recipe: :data:`RECIPE`, :data:`CONFIGS`, the rates and dropout chosen on
  validation (:data:`LEARNING_RATES`, :data:`DROPOUT`); :func:`train_for_steps`
  (:func:`training.fit` with truncated BPTT for a fixed number of updates) and
  :func:`train_recipe`; scores: :func:`held_out_bits`, :func:`bits_by_position`;
- :func:`sample`: temperature and top-k sampling from a prompt, with the sample's
  log-likelihood under the model;
- unit analysis: :func:`text_features`, :func:`hidden_states`,
  :func:`unit_correlations`, :func:`units_above`;
- the chapter's figures: :func:`plot_learning_curves`, :func:`plot_unit_activity`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import training
from ._checks import (check_choice, check_device, check_float, check_int, check_tensor, check_type,
                      checked_by)
from .plots import CYCLE
from .text import CharVocabulary, KneserNey, bits_per_char, kneser_ney_prob

LAYERS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


# ---------------------------------------------------------------- n-gram baselines


def _check_interpolated_prob(model: "NGramModel", history: str, ch: str, order: int) -> None:
    check_type("model", model, NGramModel)
    check_type("history", history, str)  # an unknown character is an unseen context: back off
    check_type("ch", ch, str)
    if len(ch) != 1 or ch not in model.vocab.symbols:
        raise ValueError(f"ch must be one character of the vocabulary, got {ch!r}")
    check_int("order", order, minimum=0)
    if order > model.max_order:
        raise ValueError(f"order must be at most max_order ({model.max_order}), got {order}")


@checked_by(_check_interpolated_prob)
def interpolated_prob(model: "NGramModel", history: str, ch: str, order: int) -> float:
    """P_k(c | u) = (max(N(uc) - d, 0) + d N1+(u.) P_{k-1}(c | u')) / N(u), from k = 1 up.

    N counts in the training text, N1+(u.) is the number of different characters
    seen after u, u' is u without its oldest character, and P_0 is the uniform guess.
    """
    d, p = model.discount, 1.0 / model.vocab_size
    for k in range(1, order + 1):
        if len(history) < k - 1:
            break                              # not enough history for this order
        u = history[len(history) - k + 1:]     # the last k - 1 characters
        seen = model.context_counts[k - 1].get(u, 0)
        if seen == 0:
            break                              # unseen context: keep the lower order
        hits = model.counts[k - 1].get(u + ch, 0)
        p = (max(hits - d, 0.0) + d * model.followers[k - 1][u] * p) / seen
    return p


# The methods of NGramModel check their arguments once, then score many characters with this.
_interpolated_prob = interpolated_prob.__wrapped__


class NGramModel:
    """Character n-gram counts of orders 1 to ``max_order``, with interpolated discounting.

    ``prob(history, ch, order)`` is :func:`interpolated_prob`; any order up to
    ``max_order`` can be asked for without counting again.
    """

    def __init__(self, text: str, max_order: int, vocab: CharVocabulary, *, discount: float = 0.75) -> None:
        check_type("text", text, str)
        self.max_order = check_int("max_order", max_order, minimum=1)
        check_type("vocab", vocab, CharVocabulary)
        self.discount = check_float("discount", discount, minimum=0.0, maximum=1.0, strict_minimum=True)
        if len(text) < max_order:
            raise ValueError(f"text must hold at least max_order ({max_order}) characters, got {len(text)}")
        unknown = sorted(set(text) - set(vocab.symbols))
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}")
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.counts, self.context_counts, self.followers = [], [], []
        for k in range(1, max_order + 1):
            grams = Counter(text[i:i + k] for i in range(len(text) - k + 1))
            contexts, followers = Counter(), Counter()
            for gram, n in grams.items():
                contexts[gram[:-1]] += n
                followers[gram[:-1]] += 1
            self.counts.append(grams)
            self.context_counts.append(contexts)
            self.followers.append(followers)

    def _order(self, order: int | None) -> int:
        if order is None:
            return self.max_order
        order = check_int("order", order, minimum=0)
        if order > self.max_order:
            raise ValueError(f"order must be at most max_order ({self.max_order}), got {order}")
        return order

    def prob(self, history: str, ch: str, order: int | None = None) -> float:
        """P(ch | history) at ``order`` (default: ``max_order``); order 0 is uniform."""
        check_type("history", history, str)
        check_type("ch", ch, str)
        if len(ch) != 1 or ch not in self.vocab.symbols:
            raise ValueError(f"ch must be one character of the vocabulary, got {ch!r}")
        return _interpolated_prob(self, history, ch, self._order(order))

    def distribution(self, history: str, order: int | None = None) -> torch.Tensor:
        """(vocab_size,) probabilities of every next character; they add up to one."""
        check_type("history", history, str)
        order = self._order(order)
        return torch.tensor([_interpolated_prob(self, history, ch, order) for ch in self.vocab.symbols],
                            dtype=torch.float64)

    def bits_per_char(self, text: str, order: int | None = None) -> float:
        """Mean -log2 P(c_t | previous characters) over ``text`` (read from its start)."""
        check_type("text", text, str)
        unknown = sorted(set(text) - set(self.vocab.symbols))
        if unknown:  # a character the model never gives a probability cannot be scored
            raise ValueError(f"text must hold characters of the model's vocabulary only, got "
                             f"{len(unknown)} others: {unknown[:10]}")
        if not text:
            raise ValueError("text must not be empty, got ''")
        order = self._order(order)
        keep = max(order - 1, 0)
        total = 0.0
        for t, ch in enumerate(text):
            history = text[max(t - keep, 0):t]
            total -= math.log2(_interpolated_prob(self, history, ch, order))
        return total / len(text)


# ---------------------------------------------------------------- the recurrent model


class CharLM(nn.Module):
    """Embedding -> recurrent layers -> linear head: scores for the next character.

    ``forward(x, state)`` takes ids x of shape (batch, time) and the state left by
    the previous window (``None`` for zeros), and returns logits (batch, time,
    vocab_size) and the new state: h (layers, batch, hidden) for the RNN and GRU,
    the pair (h, c) for the LSTM. ``dropout`` acts between stacked layers.
    """

    def __init__(self, vocab_size: int, kind: str = "lstm", *, embedding_size: int = 32,
                 hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        self.kind = check_choice("kind", kind, tuple(LAYERS))
        embedding_size = check_int("embedding_size", embedding_size, minimum=1)
        hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        num_layers = check_int("num_layers", num_layers, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        if dropout > 0 and num_layers == 1:
            raise ValueError(f"dropout acts between layers: use num_layers >= 2 with dropout={dropout}")
        if dropout == 1.0:
            raise ValueError("dropout must be < 1, got 1.0 (it would drop everything)")
        self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.recurrent = LAYERS[kind](embedding_size, hidden_size, num_layers,
                                      batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, state=None):
        check_tensor("x", x, dim=2, integer=True, nonempty=True,
                     layout="(batch, time) of character ids")
        if x.numel() and (x.min() < 0 or x.max() >= self.vocab_size):
            raise ValueError(f"x must hold ids in [0, {self.vocab_size - 1}], got values from "
                             f"{x.min().item()} to {x.max().item()}")
        outputs, state = self.recurrent(self.embedding(x), state)   # (B, T, H)
        return self.head(outputs), state                            # (B, T, V)


def make_language_model(kind: str, vocab_size: int, parameters: int, *, embedding_size: int = 32,
                        num_layers: int = 1, dropout: float = 0.0) -> CharLM:
    """A :class:`CharLM` of ``kind`` whose hidden size gives the count nearest ``parameters``."""
    check_int("parameters", parameters, minimum=1)

    def count(hidden: int) -> int:
        model = CharLM(vocab_size, kind, embedding_size=embedding_size, hidden_size=hidden,
                       num_layers=num_layers, dropout=dropout)
        return sum(p.numel() for p in model.parameters())

    low, high = 1, 4096   # the count grows with the hidden size: bisect
    while low < high:
        mid = (low + high) // 2
        if count(mid) < parameters:
            low = mid + 1
        else:
            high = mid
    best = min((low - 1, low), key=lambda h: abs(count(h) - parameters) if h >= 1 else math.inf)
    return CharLM(vocab_size, kind, embedding_size=embedding_size, hidden_size=best,
                  num_layers=num_layers, dropout=dropout)


# The chapter's recipe, the same for every recurrent model: about 100,000 parameters (the
# axis the models are matched on), an embedding of 32, batches of 32 streams in windows of
# 64 characters, 1,000 Adam updates with a cosine-decayed rate, gradients clipped at norm 1.
RECIPE = {"parameters": 100_000, "embedding_size": 32, "batch_size": 32, "window": 64,
          "steps": 1000, "clip_norm": 1.0}
# The models compared. The dropout rate between the two LSTM layers is chosen on validation.
CONFIGS = {"RNN": {"kind": "rnn"}, "GRU": {"kind": "gru"}, "LSTM": {"kind": "lstm"},
           "LSTM, 2 layers": {"kind": "lstm", "num_layers": 2},
           "LSTM, 2 layers, dropout": {"kind": "lstm", "num_layers": 2}}
# What `python benchmarks/language_model.py` searches, on the validation text, with one seed
# (SEARCH_SEED): Adam's peak rate for each model on LR_GRID, then the two rates a factor
# LR_REFINE either side of the best; then the dropout rate at the 2-layer LSTM's chosen rate.
LR_GRID = (0.0025, 0.005, 0.01, 0.02, 0.04)
LR_REFINE = 2 ** 0.5
DROPOUT_GRID = (0.05, 0.1, 0.2, 0.3)
# The discounts of absolute discounting tried at each order, on the validation text.
DISCOUNT_GRID = (0.5, 0.75, 0.9, 0.95)
SEARCH_SEED = 0
# The seeds of every comparison: fresh, none of them chose a rate.
SEEDS = (1, 2, 3, 4, 5)
# The reset experiment: the one-layer LSTM on windows of 16 characters.
RESET_WINDOW = 16
# The longer runs that separate capacity from budget: the one-layer LSTM, 4x the updates.
LONG_STEPS = 4000
# A held-out character counts as copied when it lies inside a string of at least this many
# characters that also occurs in the training text.
COPY_LENGTH = 40
# Chosen on validation by `python benchmarks/language_model.py --part all` (its "search" rows in
# book_utils/results/language_model.json; tests/test_language_model.py checks they agree).
LEARNING_RATES = {"RNN": 0.00707, "GRU": 0.00707, "LSTM": 0.02, "LSTM, 2 layers": 0.02,
                  "LSTM, 2 layers, dropout": 0.02}
DROPOUT = 0.05


def _check_windows(name: str, windows) -> None:
    """A non-empty list of (x, y) windows of ids, each (batch, time): stream_batches' output."""
    check_type(name, windows, list)
    if not windows:
        raise ValueError(f"{name} must hold at least one (x, y) window, got an empty list")
    for k, window in enumerate(windows):
        if not (isinstance(window, tuple) and len(window) == 2
                and all(isinstance(part, torch.Tensor) for part in window)):
            raise TypeError(f"{name} must hold (x, y) pairs of tensors, as text.stream_batches "
                            f"makes, got {window!r:.60} at {k}")


def _check_training(windows: list, steps: int, lr: float, state: str, clip_norm: float | None,
                    val_windows: list | None, device) -> None:
    _check_windows("windows", windows)
    if val_windows is not None:
        _check_windows("val_windows", val_windows)
    check_int("steps", steps, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    check_choice("state", state, training.STATE_MODES)
    if clip_norm is not None:
        check_float("clip_norm", clip_norm, minimum=0.0, strict_minimum=True)
    if device is not None:
        check_device(device)


def _check_train_for_steps(model: CharLM, windows: list, *, steps: int, lr: float,
                           state: str = "carry", clip_norm: float | None = 1.0,
                           val_windows: list | None = None, device=None) -> None:
    check_type("model", model, CharLM)
    _check_training(windows, steps, lr, state, clip_norm, val_windows, device)


@checked_by(_check_train_for_steps)
def train_for_steps(
    model: CharLM,
    windows: list,
    *,
    steps: int,
    lr: float,
    state: str = "carry",
    clip_norm: float | None = 1.0,
    val_windows: list | None = None,
    device: str | torch.device | None = None,
) -> dict[str, list]:
    """Train ``model`` on stream windows for ``steps`` updates with :func:`training.fit`.

    Adam with a cosine-decayed rate and gradient clipping at ``clip_norm`` (``None``:
    no clipping). ``state="carry"`` is truncated BPTT across windows; ``"reset"``
    starts every window from a zero state. With ``val_windows`` the held-out loss is
    measured after every pass over ``windows`` and at the end (``"val_loss"``, at the
    updates listed in ``"val_steps"``). The history gains ``"steps"`` and the
    measured ``"seconds_per_step"``.
    """
    optimizer, scheduler = training.make_optimizer(model, lr=lr, total_steps=steps)
    history = training.fit(model, windows, optimizer=optimizer, scheduler=scheduler, steps=steps,
                           val_loader=val_windows, state=state, clip_norm=clip_norm,
                           device=device, verbose=False)
    history["val_steps"] = [min(k * len(windows), steps) for k in history["epoch"]]
    history["seconds_per_step"] = [sum(history["seconds"]) / steps]
    history["steps"] = [steps]
    return history


def _check_train_recipe(name: str, vocab_size: int, windows: list, *, lr: float, seed: int,
                        dropout: float = 0.0, state: str = "carry",
                        val_windows: list | None = None, steps: int | None = None,
                        device=None) -> None:
    check_choice("name", name, tuple(CONFIGS))
    check_int("vocab_size", vocab_size, minimum=2)
    check_int("seed", seed, minimum=0)
    check_float("dropout", dropout, minimum=0.0, maximum=1.0)
    if dropout > 0 and CONFIGS[name].get("num_layers", 1) == 1:
        raise ValueError(f"dropout acts between layers: {name!r} has one layer (num_layers >= 2 "
                         f"needed), got dropout={dropout}")
    _check_training(windows, RECIPE["steps"] if steps is None else steps, lr, state,
                    RECIPE["clip_norm"], val_windows, device)


@checked_by(_check_train_recipe)
def train_recipe(
    name: str,
    vocab_size: int,
    windows: list,
    *,
    lr: float,
    seed: int,
    dropout: float = 0.0,
    state: str = "carry",
    val_windows: list | None = None,
    steps: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[CharLM, dict[str, list]]:
    """``(model, history)``: the model ``CONFIGS[name]`` trained with :data:`RECIPE`.

    Its weights and its dropout draws come from ``seed`` (the caller's random state is
    left alone); it trains for ``RECIPE["steps"]`` updates (or ``steps``, for a longer
    run) at peak rate ``lr``, with :func:`train_for_steps`. The chapter and
    ``benchmarks/language_model.py`` both train through here, so a run of the chapter
    and the benchmark's run with the same seed are the same run.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_language_model(vocab_size=vocab_size, parameters=RECIPE["parameters"],
                                    embedding_size=RECIPE["embedding_size"], dropout=dropout,
                                    **CONFIGS[name])
        steps = RECIPE["steps"] if steps is None else steps
        history = train_for_steps(model, windows, steps=steps, lr=lr, state=state,
                                  clip_norm=RECIPE["clip_norm"], val_windows=val_windows,
                                  device=device)
    return model, history


def _check_held_out(model: CharLM, windows: list, *, state: str = "carry", device=None) -> None:
    check_type("model", model, CharLM)
    check_choice("state", state, training.STATE_MODES)
    _check_windows("windows", windows)
    for k, pair in enumerate(windows):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"windows[{k}] must be an (x, y) pair of id tensors, "
                            f"got {type(pair).__name__}")
        for name, ids in zip(("x", "y"), pair):
            check_tensor(f"windows[{k}] {name}", ids, dim=2, integer=True, nonempty=True,
                         layout="(batch, time) of character ids")
        if pair[0].shape != pair[1].shape:
            raise ValueError(f"windows[{k}] must hold x and y of one shape, got "
                             f"{tuple(pair[0].shape)} and {tuple(pair[1].shape)}")
    if device is not None:
        check_device(device)


@checked_by(_check_held_out)
def held_out_bits(model: CharLM, windows: list, *, device: str | torch.device | None = None) -> float:
    """Bits per character on held-out stream windows, the state carried across them."""
    result = training.evaluate(model, windows, state="carry", device=device)
    return bits_per_char(result["loss"])


@checked_by(_check_held_out)
def char_bits(model: CharLM, windows: list, *, device: str | torch.device | None = None) -> torch.Tensor:
    """(streams, characters) bits of every target in ``windows``, the state carried across them.

    Entry (b, t) is -log2 p(y[b, t]) of the windows joined along time. For the windows
    of ``text.stream_batches(ids, B, T)``, ``.flatten()`` lists the bits of ids[1],
    ids[2], ... in the order of the text, and the mean is :func:`held_out_bits`.
    """
    device = training.model_device(model) if device is None else torch.device(device)
    pieces, carried = [], None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for x, y in windows:
            logits, carried = model(x.to(device), carried)
            nats = nn.functional.cross_entropy(logits.transpose(1, 2), y.to(device),
                                               reduction="none")          # (B, t)
            pieces.append(nats.double().cpu())
    model.train(was_training)
    return torch.cat(pieces, dim=1) / math.log(2)


@checked_by(_check_held_out)
def bits_by_position(model: CharLM, windows: list, *, state: str = "reset",
                     device: str | torch.device | None = None) -> torch.Tensor:
    """(window,) mean bits per character at each position of the windows.

    ``state="reset"`` starts every window from a zero state, so position 0 is
    predicted from its own character alone; ``"carry"`` hands each window the state
    the previous one left.
    """
    device = training.model_device(model) if device is None else torch.device(device)
    width = max(x.shape[1] for x, _ in windows)
    total, count = torch.zeros(width, dtype=torch.float64), torch.zeros(width)
    was_training, carried = model.training, None
    model.eval()
    with torch.no_grad():
        for x, y in windows:
            logits, carried = model(x.to(device), carried if state == "carry" else None)
            nats = nn.functional.cross_entropy(logits.transpose(1, 2), y.to(device),
                                               reduction="none")          # (B, t)
            total[: x.shape[1]] += nats.sum(dim=0).double().cpu()
            count[: x.shape[1]] += x.shape[0]
    model.train(was_training)
    return (total / count / math.log(2)).float()


# ---------------------------------------------------------------- sampling


def _check_next_char_probs(logits: torch.Tensor, temperature: float = 1.0,
                           top_k: int | None = None) -> None:
    check_tensor("logits", logits, floating=True)
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a last dimension of one score per character, "
                         f"got shape {tuple(logits.shape)}")
    check_float("temperature", temperature, minimum=0.0, strict_minimum=True)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
        if top_k > logits.shape[-1]:
            raise ValueError(f"top_k must be at most the number of scores in the last dimension "
                             f"of logits ({logits.shape[-1]}), got {top_k}")


@checked_by(_check_next_char_probs)
def next_char_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """softmax(z / temperature), keeping only the k largest scores when ``top_k`` is given."""
    z = logits / temperature
    if top_k is not None:
        kth_largest = z.topk(top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth_largest, float("-inf"))
    return z.softmax(dim=-1)


def _sample(model, vocab, prompt, length, temperature, top_k, generator):
    device = training.model_device(model)
    logits, state = model(vocab.encode(prompt)[None].to(device))   # read the prompt
    chars, log_likelihood = [], 0.0
    for _ in range(length):
        scores = logits[0, -1]                                      # (V,) for the next char
        probs = next_char_probs(scores, temperature, top_k)
        ch = torch.multinomial(probs.cpu(), 1, generator=generator)
        log_likelihood += scores.log_softmax(-1)[ch.item()].item()  # under the model itself
        chars.append(ch.item())
        logits, state = model(ch[None].to(device), state)
    return vocab.decode(chars), log_likelihood / math.log(2)


def sample(
    model: CharLM,
    vocab: CharVocabulary,
    prompt: str,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> tuple[str, float]:
    """(``length`` characters drawn after ``prompt``, their log2-likelihood under the model).

    Each character is drawn from :func:`next_char_probs` (temperature, top-k); the
    log-likelihood is measured with the model's own distribution (T = 1, all
    characters), so samples at different temperatures can be compared.
    """
    check_type("model", model, CharLM)
    check_type("vocab", vocab, CharVocabulary)
    check_type("prompt", prompt, str)
    if not prompt:
        raise ValueError("prompt must hold at least one character, got ''")
    length = check_int("length", length, minimum=1)
    check_float("temperature", temperature, minimum=0.0, strict_minimum=True)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1)
        if top_k > len(vocab):
            raise ValueError(f"top_k must be at most the vocabulary size ({len(vocab)}), got {top_k}")
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        result = _sample(model, vocab, prompt, length, temperature, top_k, generator)
    model.train(was_training)
    return result


def sample_ngram(model: KneserNey, prompt: str, length: int, *, order: int | None = None,
                 seed: int = 0) -> str:
    """``length`` characters drawn one by one from an n-gram model after ``prompt``.

    Each character is drawn from ``model.distribution`` of the last ``order - 1``
    characters (default: the model's ``max_order``), then appended to the history.
    """
    check_type("model", model, KneserNey)
    check_type("prompt", prompt, str)
    length = check_int("length", length, minimum=1)
    order = model.max_order if order is None else check_int("order", order, minimum=0)
    model.prob(prompt, model.vocab.symbols[0], order)       # checks the prompt and the order
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    keep, written = max(order - 1, 0), prompt
    for _ in range(length):
        probs = model.distribution(written[max(len(written) - keep, 0):] if keep else "", order)
        written += model.vocab.symbols[torch.multinomial(probs, 1, generator=generator).item()]
    return written[len(prompt):]


def _check_ngram_char_bits(model: KneserNey, text: str, order: int | None = None) -> None:
    check_type("model", model, KneserNey)
    model._check_text("text", text)
    if not text:
        raise ValueError("text must not be empty, got ''")
    if order is not None:
        model._order(order)


@checked_by(_check_ngram_char_bits)
def ngram_char_bits(model: KneserNey, text: str, order: int | None = None) -> torch.Tensor:
    """(len(text),) float64 -log2 P(c_t | previous characters) of every character of ``text``.

    Read from the start, as ``model.bits_per_char(text, order)``, which is their mean.
    """
    order = model.max_order if order is None else order
    keep = max(order - 1, 0)
    return torch.tensor([-math.log2(_kn_prob(model, text[max(t - keep, 0):t], ch, order))
                         for t, ch in enumerate(text)], dtype=torch.float64)


_kn_prob = kneser_ney_prob.__wrapped__     # checked once above, then called per character


def _check_copied_mask(text: str, reference: str, length: int = COPY_LENGTH) -> None:
    check_type("text", text, str)
    check_type("reference", reference, str)
    check_int("length", length, minimum=1)


@checked_by(_check_copied_mask)
def copied_mask(text: str, reference: str, length: int = COPY_LENGTH) -> torch.Tensor:
    """(len(text),) bool: which characters of ``text`` lie inside a string of ``length``
    characters (or more) that also occurs, character for character, in ``reference``."""
    seen = {reference[i:i + length] for i in range(len(reference) - length + 1)}
    cover = np.zeros(len(text) + 1, dtype=np.int64)   # +1 where a copy starts, -1 after it ends
    for i in range(len(text) - length + 1):
        if text[i:i + length] in seen:
            cover[i] += 1
            cover[i + length] -= 1
    return torch.from_numpy(np.cumsum(cover[:-1]) > 0)


WORD = re.compile(r"[A-Za-z]+")


def known_word_share(generated: str, reference: str) -> float:
    """Share of the words (runs of letters) in ``generated`` that occur in ``reference``."""
    check_type("generated", generated, str)
    check_type("reference", reference, str)
    words = WORD.findall(generated)
    if not words:
        raise ValueError(f"generated holds no words (runs of letters), got {generated[:40]!r}")
    known = set(WORD.findall(reference))
    return sum(w in known for w in words) / len(words)


# ---------------------------------------------------------------- looking inside


FEATURES = ("inside quotes", "inside brackets", "position in line", "after newline", "inside code")


def text_features(text: str) -> dict[str, torch.Tensor]:
    """Per-character features of ``text``, each known once that character has been read.

    - inside quotes: an odd number of ``"`` so far on this line;
    - inside brackets: more ``( [ {`` than ``) ] }`` so far in this paragraph;
    - position in line: characters since the last newline;
    - after newline: the character is a newline;
    - inside code: the line is an interactive code sample (``>>> `` or ``... `` after
      its indentation), from that prompt on.
    """
    check_type("text", text, str)
    if not text:
        raise ValueError("text must not be empty, got ''")
    columns = {name: [] for name in FEATURES}
    quotes = depth = position = 0
    line, previous = "", "\n"
    for ch in text:
        if previous == "\n":
            quotes, position, line = 0, 0, ""
            if ch == "\n":
                depth = 0                  # a blank line ends the paragraph
        else:
            position += 1
        line += ch
        quotes ^= ch == '"'
        depth = max(depth + (ch in "([{") - (ch in ")]}"), 0)
        columns["inside quotes"].append(quotes)
        columns["inside brackets"].append(depth > 0)
        columns["position in line"].append(position)
        columns["after newline"].append(ch == "\n")
        columns["inside code"].append(line.lstrip().startswith((">>>", "...")) and ch != "\n")
        previous = ch
    return {name: torch.tensor(values, dtype=torch.float32) for name, values in columns.items()}


def hidden_states(model: CharLM, vocab: CharVocabulary, text: str) -> torch.Tensor:
    """(len(text), hidden_size) hidden state of the top layer after each character, one pass."""
    check_type("model", model, CharLM)
    check_type("vocab", vocab, CharVocabulary)
    check_type("text", text, str)
    if not text:
        raise ValueError("text must not be empty, got ''")
    ids = vocab.encode(text)[None].to(training.model_device(model))   # (1, N)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs, _ = model.recurrent(model.embedding(ids))              # (1, N, H)
    model.train(was_training)
    return outputs[0].cpu()


def _check_cell_states(model: CharLM, vocab: CharVocabulary, text: str) -> None:
    check_type("model", model, CharLM)
    if model.kind != "lstm" or model.num_layers != 1:
        raise ValueError(f"model must be a one-layer LSTM (only it has one cell state c_t), got "
                         f"kind={model.kind!r} with num_layers={model.num_layers}")
    check_type("vocab", vocab, CharVocabulary)
    check_type("text", text, str)
    if not text:
        raise ValueError("text must not be empty, got ''")


@checked_by(_check_cell_states)
def cell_states(model: CharLM, vocab: CharVocabulary, text: str) -> torch.Tensor:
    """(len(text), hidden_size) cell state c_t of a one-layer LSTM after each character.

    nn.LSTM returns h_t at every step but c_t only at the end. From the h_{t-1} it
    returns (h_{-1} = 0) every gate follows at once, i, f, g, o = e_t W_ih^T +
    h_{t-1} W_hh^T + b; then c_t = f_t * c_{t-1} + i_t * g_t is run step by step from
    c_{-1} = 0 (h_t = o_t * tanh(c_t) is what nn.LSTM returned).
    """
    h = hidden_states(model, vocab, text)                                # (N, H)
    w = {name: p.detach().cpu() for name, p in model.recurrent.named_parameters()}
    with torch.no_grad():
        e = model.embedding(vocab.encode(text).to(training.model_device(model))).cpu()
    h_before = torch.cat([torch.zeros(1, h.shape[1]), h[:-1]])             # h_{t-1}
    gates = e @ w["weight_ih_l0"].T + h_before @ w["weight_hh_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]
    i, f, g, _ = gates.double().chunk(4, dim=1)                            # PyTorch's gate order
    f, written = f.sigmoid().numpy(), (i.sigmoid() * g.tanh()).numpy()
    c = np.empty_like(f)
    previous = np.zeros(f.shape[1])
    for t in range(len(f)):
        previous = c[t] = f[t] * previous + written[t]
    return torch.from_numpy(c).float()


def pearson(states: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """Correlation of every column of ``states`` (N, H) with ``feature`` (N,): (H,)."""
    check_tensor("states", states, dim=2, floating=True, nonempty=True, finite=True,
                 layout="(characters, units)")
    check_tensor("feature", feature, dim=1, floating=True, finite=True, layout="(characters,)")
    if len(feature) != len(states):
        raise ValueError(f"feature must hold one value per row of states ({len(states)}), "
                         f"got {len(feature)}")
    s = states - states.mean(dim=0)
    f = feature - feature.mean()
    return (s * f[:, None]).sum(dim=0) / (s.norm(dim=0) * f.norm()).clamp_min(1e-12)


def unit_correlations(states: torch.Tensor, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{feature name: (H,) correlation of each hidden unit with that feature}."""
    check_tensor("states", states, dim=2, floating=True, finite=True, layout="(characters, units)")
    check_type("features", features, dict)
    for name, feature in features.items():
        check_tensor(f"features[{name!r}]", feature, dim=1, finite=True, layout="(characters,)")
        if len(feature) != len(states):
            raise ValueError(f"features[{name!r}] must hold one value per row of states "
                             f"({len(states)}), got {len(feature)}")
    return {name: pearson(states, feature.float()) for name, feature in features.items()}


def units_above(correlations: dict[str, torch.Tensor], threshold: float) -> dict[str, int]:
    """{feature name: number of units whose |correlation| is at least ``threshold``}."""
    check_type("correlations", correlations, dict)
    for name, r in correlations.items():
        check_tensor(f"correlations[{name!r}]", r, floating=True, layout="(units,)")
    check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    return {name: int((r.abs() >= threshold).sum()) for name, r in correlations.items()}


# ---------------------------------------------------------------- figures


def _smooth(values: list[float], width: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    width = max(1, min(width, len(values)))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def _check_plot_learning_curves(run: dict, seeds: dict, *, baseline: float,
                                panels: dict | None = None, smooth: int = 25) -> None:
    check_type("run", run, dict)
    for key in ("step_loss", "val_loss", "val_steps"):
        if not isinstance(run.get(key), list) or not run[key]:
            raise ValueError(f"run must be a train_for_steps history with validation, holding a "
                             f"non-empty list {key!r}, got {run.get(key)!r:.80}")
    if len(run["val_loss"]) != len(run["val_steps"]):
        raise ValueError(f"run's val_loss and val_steps must pair up, got {len(run['val_loss'])} "
                         f"and {len(run['val_steps'])}")
    check_type("seeds", seeds, dict)
    if not seeds:
        raise ValueError("seeds must hold at least one model's curves, got an empty dict")
    for name, curves in seeds.items():
        if not (isinstance(curves, list) and curves and all(
                isinstance(c, (tuple, list)) and len(c) == 2 and len(c[0]) == len(c[1]) > 0
                and len(c[0]) == len(curves[0][0]) for c in curves)):
            raise ValueError(f"seeds[{name!r}] must be a non-empty list of (val_steps, bpc) pairs "
                             f"of one length, got {curves!r:.80}")
    check_float("baseline", baseline, minimum=0.0)
    if panels is not None:
        check_type("panels", panels, dict)
        unknown = [name for names in panels.values() for name in names if name not in seeds]
        if not panels or unknown:
            raise ValueError(f"panels must map titles to model names of seeds {list(seeds)}, "
                             f"got {panels!r}")
    check_int("smooth", smooth, minimum=1)


MARKERS = ("o", "s", "^", "D", "v", "P")


@checked_by(_check_plot_learning_curves)
def plot_learning_curves(run: dict, seeds: dict[str, list[tuple[list, list]]], *,
                         baseline: float, panels: dict[str, tuple[str, ...]] | None = None,
                         smooth: int = 25) -> Figure:
    """Bits per character against updates: one run (left), models over seeds (right).

    ``run`` is a history of :func:`train_for_steps` with validation: its training
    windows' losses (each taken before the update it causes, averaged over ``smooth``
    windows) and its validation scores; the curve's first points lie above the frame, and an
    arrow says where the smoothed curve starts. ``seeds`` maps a model's name to one
    ``(val_steps, validation bpc)`` pair per seed, drawn as the mean (line) and the
    range over seeds (bars, each model's nudged sideways so they do not hide each
    other). ``panels`` maps a panel's title to the models it shows (default: one
    panel with all); a model keeps its colour, line style and marker in every panel.
    ``baseline`` (the n-gram model's validation bpc) is the dashed line of the seed panels;
    the one-run panel leaves it out, since its training windows are a different text.
    """
    panels = {"validation text": tuple(seeds)} if panels is None else panels
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(4.2 * (1 + len(panels)), 3.8),
                             sharey=True)
    left = axes[0]
    bits = _smooth([bits_per_char(v) for v in run["step_loss"]], smooth)
    updates = np.arange(len(bits)) + len(run["step_loss"]) - len(bits) + 1
    val_bits = [bits_per_char(v) for v in run["val_loss"]]
    left.plot(updates, bits, color=CYCLE[0], lw=1, label="training windows (before each update)")
    left.plot(run["val_steps"], val_bits, "o-", color=CYCLE[1], label="validation text")
    left.set_title("one run", fontsize=10)
    lowest, first = min(baseline, float(bits.min()), min(val_bits)), [val_bits[0]]
    styles = ("-", "-.", ":", (0, (6, 1)), (0, (3, 1, 1, 1, 1, 1)))   # the n-gram is "--"
    look = {name: (colour, style, marker) for name, colour, style, marker
            in zip(seeds, CYCLE, itertools.cycle(styles), itertools.cycle(MARKERS))}
    for ax, (title, names) in zip(axes[1:], panels.items()):
        width = max(max(curve[0][0]) for curve in (seeds[n] for n in names))
        for j, name in enumerate(names):
            colour, style, marker = look[name]
            values = np.array([bpc for _, bpc in seeds[name]])           # (seeds, points)
            mean = values.mean(axis=0)
            x = np.asarray(seeds[name][0][0]) + (j - (len(names) - 1) / 2) * 0.012 * width
            ax.errorbar(x, mean, yerr=[mean - values.min(axis=0), values.max(axis=0) - mean],
                        color=colour, ls=style, marker=marker, ms=4, lw=1.3, elinewidth=0.9,
                        capsize=2, label=name)
            lowest, first = min(lowest, float(values.min())), first + [float(values[:, 0].max())]
        ax.set_title(f"{title}: mean and range over {len(seeds[names[0]])} seeds", fontsize=10)
    for ax in axes:
        if ax is not left:
            ax.axhline(baseline, color="0.3", ls="--", lw=1, label="Kneser-Ney n-gram (validation)")
        ax.set_xlabel("updates")
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda k: labels[k].startswith("Kneser"))
        ax.legend([handles[k] for k in order], [labels[k] for k in order], fontsize=8)
    for ax in axes:
        ax.set_ylabel("bits per character")
    top = max(first) + 0.1
    left.set_ylim(lowest - 0.1, top)
    if bits[0] > top:      # the first windows (about log2 V bits) lie above the frame
        left.annotate(f"smoothed curve starts at {bits[0]:.1f} bits", xy=(updates[0], top),
                      xytext=(0.25, 0.55), textcoords="axes fraction", fontsize=8,
                      arrowprops={"arrowstyle": "->", "color": "0.3"})
    fig.tight_layout()
    return fig


def plot_unit_activity(passage: str, panels: dict[str, torch.Tensor], *, width: int = 80) -> Figure:
    """``passage`` drawn character by character, each coloured by a unit's activation.

    ``panels`` maps a title to the activations (len(passage),) of one unit after each
    character; each panel has its own colour scale, symmetric around zero (blue
    negative, red positive), shown in its colour bar. The cell after each line's last
    character is its newline, marked with a grey arrow. Lines longer than ``width`` are cut.
    """
    check_type("passage", passage, str)
    check_type("panels", panels, dict)
    if not passage or not panels:
        raise ValueError(f"passage and panels must not be empty, got {len(passage)} characters "
                         f"and {len(panels)} panels")
    for title, values in panels.items():
        check_tensor(f"panels[{title!r}]", values, dim=1, floating=True, layout="(characters,)")
    check_int("width", width, minimum=1)
    lines = passage.split("\n")
    width = min(width, max(len(line) for line in lines) + 1)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(0.085 * width + 1.4, 0.2 * len(lines) * len(panels) + 0.6))
    for ax, (title, values) in zip(axes[:, 0], panels.items()):
        grid = np.full((len(lines), width), np.nan)
        start = 0
        for row, line in enumerate(lines):
            n = min(len(line) + 1, width, len(values) - start)   # the newline gets a cell too
            grid[row, :n] = values[start:start + n].numpy()
            start += len(line) + 1
        limit = float(np.nanmax(np.abs(grid))) or 1.0
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                          interpolation="nearest")
        for row, line in enumerate(lines):
            for col, ch in enumerate(line[:width]):
                ax.text(col, row, ch, ha="center", va="center", family="monospace", fontsize=8)
            if len(line) < width and row < len(lines) - 1:
                ax.text(len(line), row, "\u21b5", ha="center", va="center", fontsize=7, color="0.4")
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="activation")
    fig.tight_layout()
    return fig
