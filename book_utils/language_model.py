"""Chapter 6: character-level language models on real text.

- :class:`NGramModel`: count-based n-gram models with interpolated absolute
  discounting, scored in bits per character;
- :class:`CharLM`: embedding -> RNN / GRU / LSTM (one or more layers, dropout
  between them) -> linear head, called as ``model(x, state) -> (logits, state)``
  so that :func:`book_utils.training.fit` can carry its state across windows;
- :func:`train_for_steps`: the chapter's recipe, :func:`training.fit` with truncated
  BPTT for a fixed number of updates; :func:`budget_steps`: the number of updates
  that takes a given time on the reference machine (:data:`BUDGET_STEPS`);
- :func:`sample`: temperature and top-k sampling from a prompt, with the sample's
  log-likelihood under the model;
- unit analysis: :func:`text_features`, :func:`hidden_states`,
  :func:`unit_correlations`, :func:`units_above`;
- the chapter's figures: :func:`plot_learning_curves`, :func:`plot_unit_activity`.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import training
from ._checks import check_choice, check_float, check_int, check_tensor, check_type, checked_by
from .plots import CYCLE
from .text import CharVocabulary, bits_per_char

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
    """P_k(c | h) = (max(N(h c) - d, 0) + d T(h) P_{k-1}(c | h')) / N(h), from k = 1 up.

    N counts in the training text, T(h) is the number of different characters seen
    after h, h' is h without its oldest character, and P_0 is the uniform guess.
    """
    d, p = model.discount, 1.0 / model.vocab_size
    for k in range(1, order + 1):
        if len(history) < k - 1:
            break                              # not enough history for this order
        h = history[len(history) - k + 1:]     # the last k - 1 characters
        seen = model.context_counts[k - 1].get(h, 0)
        if seen == 0:
            break                              # unseen context: keep the lower order
        hits = model.counts[k - 1].get(h + ch, 0)
        p = (max(hits - d, 0.0) + d * model.followers[k - 1][h] * p) / seen
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


# The chapter's training budgets, in updates (batch 32, window 64, about 100,000 parameters).
# A budget in seconds would make the results depend on how busy the machine is; a fixed number
# of updates gives the same numbers on every run. The counts were chosen so that each model
# trains for about BUDGET_SECONDS on the reference machine (2 CPU cores, one torch thread):
# `python benchmarks/language_model.py --time-steps` measured the median milliseconds per
# update once (RNN 25, GRU 31, LSTM 19, 2-layer LSTM 20), and
# BUDGET_SECONDS divided by them, rounded to tens, gives the counts.
BUDGET_SECONDS = 8.0
BUDGET_STEPS = {("rnn", 1): 320, ("gru", 1): 260, ("lstm", 1): 420, ("lstm", 2): 400}
# The reset experiment's budget: the one-layer LSTM on windows of 16 characters, about half of
# BUDGET_SECONDS (5 ms per update, timed the same way with `--window 16 --models lstm`).
RESET_STEPS = 780


def budget_steps(kind: str, num_layers: int = 1, seconds: float = BUDGET_SECONDS) -> int:
    """Updates that take about ``seconds`` for a chapter-sized model on the reference machine."""
    check_choice("kind", kind, tuple(LAYERS))
    check_int("num_layers", num_layers, minimum=1)
    seconds = check_float("seconds", seconds, minimum=0.0, strict_minimum=True)
    if (kind, num_layers) not in BUDGET_STEPS:
        raise ValueError(f"budgets are measured for {sorted(BUDGET_STEPS)} (kind, num_layers), "
                         f"got ({kind!r}, {num_layers})")
    return max(1, round(BUDGET_STEPS[kind, num_layers] * seconds / BUDGET_SECONDS))


def _check_windows(name: str, windows) -> None:
    """A non-empty list of (x, y) windows of ids, each (batch, time): stream_batches' output."""
    check_type(name, windows, list)
    if not windows:
        raise ValueError(f"{name} must hold at least one (x, y) window, got an empty list")
    for k, window in enumerate(windows):
        if not (isinstance(window, tuple) and len(window) == 2
                and all(isinstance(part, torch.Tensor) for part in window)):
            raise TypeError(f"{name} must hold (x, y) pairs of tensors, as text.stream_batches "
                            f"makes, got {type(window).__name__} at {k}")


def train_for_steps(
    model: CharLM,
    windows: list,
    *,
    steps: int,
    lr: float,
    state: str = "carry",
    clip_norm: float | None = 1.0,
    device: str | torch.device | None = None,
) -> dict[str, list]:
    """Train ``model`` on stream windows for ``steps`` updates with :func:`training.fit`.

    Adam with a cosine-decayed rate and gradient clipping at ``clip_norm`` (``None``:
    no clipping). ``state="carry"`` is
    truncated BPTT across windows; ``"reset"`` starts every window from a zero
    state. The history gains ``"steps"`` and the measured ``"seconds_per_step"``.
    """
    check_type("model", model, CharLM)
    steps = check_int("steps", steps, minimum=1)
    check_choice("state", state, training.STATE_MODES)
    _check_windows("windows", windows)
    optimizer, scheduler = training.make_optimizer(model, lr=lr, total_steps=steps)
    history = training.fit(model, windows, optimizer=optimizer, scheduler=scheduler, steps=steps,
                           state=state, clip_norm=clip_norm, device=device, verbose=False)
    history["seconds_per_step"] = [sum(history["seconds"]) / steps]
    history["steps"] = [steps]
    return history


def held_out_bits(model: CharLM, windows: list, *, device: str | torch.device | None = None) -> float:
    """Bits per character on held-out stream windows, the state carried across them."""
    check_type("model", model, CharLM)
    _check_windows("windows", windows)
    result = training.evaluate(model, windows, state="carry", device=device)
    return bits_per_char(result["loss"])


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
    """softmax(z / T), keeping only the k largest scores when ``top_k`` is given."""
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


def plot_learning_curves(histories: dict[str, dict], *, smooth: int = 25) -> Figure:
    """Training bits per character against seconds of training, one line per model.

    Each window's loss is taken before the update it causes, so it measures text the
    model has not trained on yet within this pass; ``smooth`` windows are averaged.
    """
    check_type("histories", histories, dict)
    for label, history in histories.items():
        check_type(f"histories[{label!r}]", history, dict)
        for key in ("step_loss", "seconds_per_step"):
            if not isinstance(history.get(key), list) or not history[key]:
                raise ValueError(f"histories[{label!r}] must be a train_for_steps history with "
                                 f"a non-empty list {key!r}, got {history.get(key)!r}")
    check_int("smooth", smooth, minimum=1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (label, history), colour in zip(histories.items(), CYCLE):
        bits = _smooth([bits_per_char(v) for v in history["step_loss"]], smooth)
        per_step = history["seconds_per_step"][0]
        seconds = per_step * (np.arange(len(bits)) + len(history["step_loss"]) - len(bits) + 1)
        ax.plot(seconds, bits, color=colour, label=label)
    ax.set_xlabel("seconds of training")
    ax.set_ylabel("training bits per character")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_unit_activity(passage: str, panels: dict[str, torch.Tensor], *, width: int = 80) -> Figure:
    """``passage`` drawn character by character, each coloured by a unit's activation.

    ``panels`` maps a title to the activations (len(passage),) of one unit; blue is
    negative, red positive. Lines longer than ``width`` are cut.
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
    fig, axes = plt.subplots(len(panels), 1, figsize=(0.12 * width, 0.22 * len(lines) * len(panels) + 0.5),
                             squeeze=False)
    for ax, (title, values) in zip(axes[:, 0], panels.items()):
        grid = np.full((len(lines), width), np.nan)
        start = 0
        for row, line in enumerate(lines):
            n = min(len(line) + 1, width, len(values) - start)   # the newline gets a cell too
            grid[row, :n] = values[start:start + n].numpy()
            start += len(line) + 1
        limit = float(np.nanmax(np.abs(grid))) or 1.0
        ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        for row, line in enumerate(lines):
            for col, ch in enumerate(line[:width]):
                ax.text(col, row, ch, ha="center", va="center", family="monospace", fontsize=7)
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return fig
