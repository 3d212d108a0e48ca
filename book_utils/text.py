"""Real English text for the language-model chapters: corpus, splits, characters, streams.

The corpus is the reference text of Python's own documentation that ships with
every CPython in ``pydoc_data.topics`` (the pages ``help("if")`` prints), under the
Python Software Foundation licence. It is there offline, on any machine and in
Colab, with no download. Its exact content follows the Python version, so
:func:`load_corpus` says which one it read.

    corpus = text.load_corpus()           # train / validation / test strings
    vocab = text.CharVocabulary()          # 96 symbols: newline + printable ASCII
    ids = vocab.encode(corpus.train)       # (N,) int64
    windows = text.stream_batches(ids, batch_size=32, window=64)
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass

import torch

from ._checks import check_float, check_int, check_symbols, check_tensor, check_type
from .data import stream_windows

#: The symbols the corpus keeps: the newline and the 95 printable ASCII characters.
ALPHABET = "\n" + "".join(chr(code) for code in range(32, 127))

#: Typographic characters written as their ASCII spelling; any other character
#: outside :data:`ALPHABET` is dropped.
REPLACEMENTS = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                "\u2026": "...", "\u2014": "--", "\u2013": "-", "\t": "    "}

LICENCE = "Python Software Foundation License (the text of CPython's documentation)"


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
    """Python's reference documentation (``pydoc_data.topics``), normalised and split.

    The topics are joined in sorted order of their names, so the same Python
    version always gives the same text and the same split.
    """
    from pydoc_data import topics

    raw = "\n\n".join(topics.topics[name].strip("\n") for name in sorted(topics.topics)) + "\n"
    text, dropped = normalise(raw)
    train, validation, test = split_text(text, fractions)
    source = (f"Python {platform.python_version()} documentation (pydoc_data.topics, "
              f"{len(topics.topics)} topics; {LICENCE})")
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
