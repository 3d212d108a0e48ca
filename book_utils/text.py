"""Real English text for the language-model chapters: corpus, splits, characters, streams.

The corpus is the reference text of Python's own documentation that every CPython
ships in ``pydoc_data.topics`` (the pages ``help("if")`` prints), under the Python
Software Foundation licence. Each release's pages differ a little, so the book
ships those of one release (``corpus/``, with the licence): offline, on any machine
and in Colab, every reader reads the same text.

    corpus = text.load_corpus()           # train / validation / test strings
    vocab = text.CharVocabulary()          # 96 symbols: newline + printable ASCII
    ids = vocab.encode(corpus.train)       # (N,) int64
    windows = text.stream_batches(ids, batch_size=32, window=64)
    kn = text.KneserNey(corpus.train, 8, vocab)   # the strongest classical baseline
    kn.bits_per_char(corpus.validation, order=6)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import numbers
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_float, check_int, check_symbols, check_tensor, check_type, checked_by
from .data import stream_windows

#: The symbols the corpus keeps: the newline and the 95 printable ASCII characters.
ALPHABET = "\n" + "".join(chr(code) for code in range(32, 127))

#: Typographic characters written as their ASCII spelling; any other character
#: outside :data:`ALPHABET` is dropped.
REPLACEMENTS = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                "\u2026": "...", "\u2014": "--", "\u2013": "-", "\t": "    "}

LICENCE = "Python Software Foundation License (the text of CPython's documentation)"
# The topics of `pydoc_data.topics` from CPython 3.11.7 as JSON (name -> text): each release
# ships slightly different pages, and the book's results were measured on these.
CORPUS_VERSION = "3.11.7"
CORPUS_FILE = Path(__file__).parent / "corpus" / f"python-{CORPUS_VERSION}-topics.json.gz"
CORPUS_SHA256 = "6f4ea5d0c84e46fa1c8499481bc2945395b00837ebc054316cbf6cacd0d97af1"


def normalise(text: str) -> tuple[str, dict[str, int]]:
    """(text in :data:`ALPHABET` only, {dropped character: count}).

    Curly quotes, dashes and the ellipsis become ASCII (:data:`REPLACEMENTS`);
    every other character outside the alphabet is dropped and counted.
    """
    check_type("text", text, str)
    for old, new in REPLACEMENTS.items():
        text = text.replace(old, new)
    keep = set(ALPHABET)
    dropped: dict[str, int] = {}
    for ch in text:
        if ch not in keep:
            dropped[ch] = dropped.get(ch, 0) + 1
    return "".join(ch for ch in text if ch in keep), dropped


def split_text(text: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[str, str, str]:
    """Cut ``text`` by position into (train, validation, test), at paragraph boundaries.

    Each cut moves forward to the next blank line, so no paragraph is shared by two
    parts. The parts do not overlap and, joined, give back ``text``.
    """
    check_type("text", text, str)
    check_type("fractions", fractions, tuple)
    if len(fractions) != 3:
        raise ValueError(f"fractions must hold three numbers (train, validation, test), got {fractions}")
    for name, f in zip(("train", "validation", "test"), fractions):
        check_float(f"fractions ({name})", f, minimum=0.0, maximum=1.0, strict_minimum=True)
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must add up to 1, got {fractions} (sum {sum(fractions)})")

    def cut(position: float) -> int:
        found = text.find("\n\n", int(position))
        return len(text) if found < 0 else found + 2  # the blank line closes the earlier part

    first = cut(fractions[0] * len(text))
    second = max(first, cut((fractions[0] + fractions[1]) * len(text)))
    parts = text[:first], text[first:second], text[second:]
    if not all(parts):
        raise ValueError(f"text of {len(text)} characters is too short to split into three "
                         f"non-empty parts at blank lines, got sizes {[len(p) for p in parts]}")
    return parts


@dataclass
class Corpus:
    """Train, validation and test text, and where it came from."""

    train: str
    validation: str
    test: str
    source: str
    dropped: dict

    def __post_init__(self) -> None:
        for name in ("train", "validation", "test", "source"):
            check_type(name, getattr(self, name), str)
        check_type("dropped", self.dropped, dict)
        odd = [(ch, n) for ch, n in self.dropped.items() if not isinstance(ch, str)
               or isinstance(n, bool) or not isinstance(n, int)]
        if odd:
            raise TypeError(f"dropped must map characters to counts, got {odd[0]!r}")

    def describe(self) -> str:
        sizes = ", ".join(f"{name} {len(getattr(self, name)):,}"
                          for name in ("train", "validation", "test"))
        lost = sum(self.dropped.values())
        return f"{self.source}: {sizes} characters ({lost} non-ASCII characters dropped)"


def load_corpus(fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Corpus:
    """Python's reference documentation (the topics of ``pydoc_data.topics``), normalised and split.

    The book ships the topics of one Python release (``CORPUS_FILE``), so every
    reader, on any Python, reads the same text and gets the same split; the
    topics are joined in sorted order of their names.
    """
    packed = CORPUS_FILE.read_bytes()
    if hashlib.sha256(packed).hexdigest() != CORPUS_SHA256:
        raise ValueError(f"{CORPUS_FILE} is not the corpus the book ships (its SHA-256 differs); "
                         "reinstall book_utils")
    topics = json.loads(gzip.decompress(packed).decode("utf-8"))
    raw = "\n\n".join(topics[name].strip("\n") for name in sorted(topics)) + "\n"
    text, dropped = normalise(raw)
    train, validation, test = split_text(text, fractions)
    source = (f"Python {CORPUS_VERSION} documentation (pydoc_data.topics, "
              f"{len(topics)} topics; {LICENCE})")
    return Corpus(train, validation, test, source, dropped)


class CharVocabulary:
    """One id per character: ``encode`` turns a string into ids, ``decode`` reads them back.

    Unlike :class:`book_utils.data.Vocabulary` it has no padding or start/end
    tokens: a language model reads one unbroken stream of characters.
    """

    def __init__(self, symbols: str = ALPHABET) -> None:
        check_symbols(symbols)
        self.symbols = symbols
        self._ids = {ch: i for i, ch in enumerate(symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"CharVocabulary of {len(self)} symbols"

    def encode(self, text: str) -> torch.Tensor:
        """(len(text),) int64 ids."""
        check_type("text", text, str)
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}")
        return torch.tensor([self._ids[ch] for ch in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        """The string of a 1-D id tensor (or of a list of ids)."""
        if isinstance(ids, (list, tuple)):
            ids = torch.tensor(ids, dtype=torch.long)
        check_tensor("ids", ids, dim=1, integer=True, layout="(length,)")
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self) - 1}], got values from "
                             f"{ids.min().item()} to {ids.max().item()}")
        return "".join(self.symbols[i] for i in ids.tolist())


def streams(ids: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut one long id sequence into ``batch_size`` parallel streams and their targets.

    Row b of ``x`` is a contiguous piece of the text and row b of ``y`` is the same
    piece shifted by one character: ``y[b, t]`` is the character after ``x[b, t]``.
    Both are (batch_size, n) with n = (len(ids) - 1) // batch_size; the tail is dropped.
    """
    check_tensor("ids", ids, dim=1, integer=True, layout="(length,)")
    if ids.numel() and ids.min() < 0:
        raise ValueError(f"ids must be character ids >= 0, got {ids.min().item()}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if len(ids) - 1 < batch_size:
        raise ValueError(f"ids must hold more than batch_size ({batch_size}) ids to make "
                         f"{batch_size} streams, got {len(ids)}")
    n = (len(ids) - 1) // batch_size
    x = ids[: batch_size * n].view(batch_size, n)        # (B, n)
    y = ids[1: batch_size * n + 1].view(batch_size, n)   # (B, n), one step ahead
    return x, y


def stream_batches(ids: torch.Tensor, batch_size: int, window: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive (x, y) windows of ``batch_size`` parallel streams, each ``window`` steps.

    Row b of window k + 1 continues row b of window k, so a model that carries its
    state (``training.fit(..., state="carry")``) reads every stream from start to end.
    """
    check_tensor("ids", ids, dim=1, integer=True, layout="(length,)")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    window = check_int("window", window, minimum=1)
    if len(ids) - 1 < batch_size:
        raise ValueError(f"ids must hold more than batch_size ({batch_size}) ids to make "
                         f"{batch_size} streams, got {len(ids)}")
    x, y = streams(ids, batch_size)
    return stream_windows(x, y, window)


def bits_per_char(loss_nats: float) -> float:
    """Convert a mean cross-entropy in nats per character into bits per character."""
    if isinstance(loss_nats, torch.Tensor):
        if loss_nats.numel() != 1:
            raise ValueError(f"loss_nats must be one number, got a tensor of shape {tuple(loss_nats.shape)}")
        loss_nats = loss_nats.item()
    loss_nats = check_float("loss_nats", loss_nats, minimum=0.0)
    return loss_nats / math.log(2)


# ---------------------------------------------------------------- modified Kneser-Ney n-grams


def _check_discount_table(name: str, counts: dict) -> None:
    check_type(name, counts, dict)
    if not counts:
        raise ValueError(f"{name} must hold at least one n-gram count, got an empty dict")
    odd = [v for v in counts.values()
           if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1]
    if odd:
        raise TypeError(f"{name} must map n-grams to counts (ints >= 1), got {odd[0]!r}")


def kneser_ney_discounts(counts: dict[str, int]) -> tuple[float, float, float]:
    """(D1, D2, D3+) estimated from the counts of counts n_1..n_4 (Chen & Goodman 1998).

    Y = n1 / (n1 + 2 n2); D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.
    Where one of n_1..n_4 is zero, or an estimate is not positive (small or odd
    counts), every count loses Y instead, one discount as in the original
    Kneser-Ney; Y is 0.5 when there is no count of one. A positive discount keeps
    some mass for every character after every context.
    """
    _check_discount_table("counts", counts)
    n = [0] * 5
    for value in counts.values():
        if value <= 4:
            n[value] += 1
    y = n[1] / (n[1] + 2 * n[2]) if n[1] else 0.5
    if min(n[1:]) > 0:
        estimates = tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3))
        if min(estimates) > 0:
            return estimates
    return y, y, y


@dataclass
class _CountTable:
    """The counts C of one order and kind for every string g, and per history u its total
    C(u) and the mass its discounts set free, D1 N1(u.) + D2 N2(u.) + D3+ N3+(u.)."""

    counts: dict
    discounts: tuple
    contexts: dict

    @classmethod
    def of(cls, counts: dict) -> "_CountTable":
        discounts = kneser_ney_discounts(counts)
        contexts: dict[str, list] = {}
        for gram, n in counts.items():
            entry = contexts.setdefault(gram[:-1], [0, 0.0])
            entry[0] += n
            entry[1] += discounts[min(n, 3) - 1]
        return cls(counts, discounts, {h: tuple(v) for h, v in contexts.items()})

    def discount(self, n: int) -> float:
        return 0.0 if n == 0 else self.discounts[min(n, 3) - 1]


def _check_kneser_ney_prob(model: "KneserNey", history: str, ch: str, order: int) -> None:
    check_type("model", model, KneserNey)
    model._check_text("history", history)
    model._check_char(ch)
    model._order(check_int("order", order, minimum=0))


@checked_by(_check_kneser_ney_prob)
def kneser_ney_prob(model: "KneserNey", history: str, ch: str, order: int) -> float:
    """P_k(c | u) = (C(uc) - D(C(uc))) / C(u) + gamma(u) P_{k-1}(c | u'), k = 1 up.

    C counts the training text at the top order and is the continuation count
    N1+(.g), the number of different characters seen before g, below it. C(u) sums
    C(uc) over c; D is D1, D2 or D3+ of the order's table (D(0) = 0); gamma(u) =
    free / C(u), where free is the mass the discounts took from u's followers. u'
    is u without its oldest character, and P_0 = 1/V. An unseen u passes P_{k-1} on.
    """
    p = 1.0 / model.vocab_size                        # P_0: the uniform guess
    top = min(order, len(history) + 1)                # a short history: a lower order
    for k in range(1, top + 1):
        table = model.tables[k - 1]["raw" if k == top else "continuation"]
        u = history[len(history) - k + 1:]            # the last k - 1 characters
        total, free = table.contexts.get(u, (0, 0.0))
        if total == 0:
            continue                                  # unseen history: keep P_{k-1}
        n = table.counts.get(u + ch, 0)
        p = (n - table.discount(n) + free * p) / total
    return p


# The methods check their arguments once, then score many characters with this.
_kneser_ney_prob = kneser_ney_prob.__wrapped__


class KneserNey:
    """Interpolated modified Kneser-Ney character n-grams of orders 1 to ``max_order``.

    Chen & Goodman, *An Empirical Study of Smoothing Techniques for Language
    Modeling* (1998): three discounts per order and kind of count, D1, D2 and D3+,
    estimated from the counts of counts (:func:`kneser_ney_discounts`); raw counts at
    the top order and continuation counts below it; interpolation down to the
    uniform distribution over the vocabulary. Any order up to ``max_order`` can be
    asked for without counting again. Every character must be in ``vocab``.

    ``tables[k - 1]`` holds order k's counts, ``"raw"`` (of the training text) and
    ``"continuation"``: each has ``counts`` (string -> C), ``discounts`` (D1, D2, D3+)
    and ``contexts`` (history u -> (C(u), mass its discounts set free)).
    """

    def __init__(self, text: str, max_order: int, vocab: CharVocabulary) -> None:
        check_type("vocab", vocab, CharVocabulary)
        self.vocab, self.vocab_size = vocab, len(vocab)
        self._check_text("text", text)
        self.max_order = check_int("max_order", max_order, minimum=1)
        if len(text) <= max_order:
            raise ValueError(f"text must hold more than max_order ({max_order}) characters, "
                             f"got {len(text)}")
        self.tables = []                              # per order k: raw and continuation counts
        grams = Counter(text)
        for k in range(1, max_order + 1):
            longer = Counter(text[i:i + k + 1] for i in range(len(text) - k))
            continuation = Counter(gram[1:] for gram in longer)   # distinct left neighbours
            self.tables.append({"raw": _CountTable.of(grams),
                                "continuation": _CountTable.of(continuation)})
            grams = longer

    def _check_text(self, name: str, value: str) -> None:
        check_type(name, value, str)
        unknown = sorted(set(value) - set(self.vocab.symbols))
        if unknown:
            raise ValueError(f"{name} has characters outside the vocabulary: {unknown[:10]}")

    def _check_char(self, ch: str) -> None:
        check_type("ch", ch, str)
        if len(ch) != 1 or ch not in self.vocab.symbols:
            raise ValueError(f"ch must be one character of the vocabulary, got {ch!r}")

    def _order(self, order: int | None) -> int:
        if order is None:
            return self.max_order
        order = check_int("order", order, minimum=0)
        if order > self.max_order:
            raise ValueError(f"order must be at most max_order ({self.max_order}), got {order}")
        return order

    def discounts(self, order: int) -> dict[str, tuple[float, float, float]]:
        """{"raw": (D1, D2, D3+) of the counts, "continuation": those of the continuation counts}."""
        order = check_int("order", order, minimum=1)
        self._order(order)
        return {kind: table.discounts for kind, table in self.tables[order - 1].items()}

    def prob(self, history: str, ch: str, order: int | None = None) -> float:
        """P(ch | history) at ``order`` (default ``max_order``); order 0 is the uniform guess."""
        self._check_text("history", history)
        self._check_char(ch)
        return _kneser_ney_prob(self, history, ch, self._order(order))

    def distribution(self, history: str, order: int | None = None) -> torch.Tensor:
        """(vocab_size,) float64 probabilities of every next character; they add up to one."""
        self._check_text("history", history)
        order = self._order(order)
        return torch.tensor([_kneser_ney_prob(self, history, ch, order) for ch in self.vocab.symbols],
                            dtype=torch.float64)

    def bits_per_char(self, text: str, order: int | None = None) -> float:
        """Mean -log2 P(c_t | previous characters) over ``text``, read from its start.

        The first characters have a shorter history and use the orders it allows.
        """
        self._check_text("text", text)
        if not text:
            raise ValueError("text must not be empty, got ''")
        order = self._order(order)
        keep = max(order - 1, 0)
        total = 0.0
        for t, ch in enumerate(text):
            total -= math.log2(_kneser_ney_prob(self, text[max(t - keep, 0):t], ch, order))
        return total / len(text)
