"""Tests for book_utils.text: the corpus, its split, the character vocabulary and streams."""

from __future__ import annotations

import math
import re

import pytest
import torch

from book_utils import text


@pytest.fixture(scope="module")
def corpus() -> text.Corpus:
    return text.load_corpus()


def test_corpus_is_ascii_split_without_overlap_and_deterministic(corpus):
    assert set(corpus.train + corpus.validation + corpus.test) <= set(text.ALPHABET)
    total = len(corpus.train) + len(corpus.validation) + len(corpus.test)
    assert total > 100_000
    assert 0.75 < len(corpus.train) / total < 0.85
    assert corpus.train.endswith("\n\n") and corpus.validation.endswith("\n\n")  # cut at blank lines
    again = text.load_corpus()
    assert (again.train, again.validation, again.test) == (corpus.train, corpus.validation, corpus.test)
    assert "Python Software Foundation" in corpus.describe()


def test_split_text_cuts_at_paragraphs_and_joins_back():
    paragraphs = [f"paragraph {i} " * 3 for i in range(20)]
    whole = "\n\n".join(paragraphs)
    train, validation, test = text.split_text(whole, (0.5, 0.25, 0.25))
    assert train + validation + test == whole
    for part in (train, validation):
        assert part.endswith("\n\n")
    assert not set(train.split("\n\n")[:-1]) & set(test.split("\n\n"))


def test_normalise_maps_typography_and_counts_what_it_drops():
    clean, dropped = text.normalise("\u201cdon\u2019t\u201d \u2014 stra\u00dfe\u2026")
    assert clean == '"don\'t" -- strae...'
    assert dropped == {"\u00df": 1}


def test_vocabulary_round_trip(corpus):
    vocab = text.CharVocabulary()
    assert len(vocab) == 96
    ids = vocab.encode(corpus.validation[:2000])
    assert ids.dtype == torch.long and ids.shape == (2000,)
    assert vocab.decode(ids) == corpus.validation[:2000]
    assert vocab.decode([0, 1]) == "\n "


def test_stream_batches_keep_order_across_batches():
    ids = torch.arange(1, 102)                      # 101 ids: 100 inputs, targets one ahead
    windows = text.stream_batches(ids, batch_size=4, window=10)
    assert len(windows) == 3                        # 25 steps per stream: 10 + 10 + 5
    x = torch.cat([w[0] for w in windows], dim=1)  # (4, 25): the streams, window after window
    y = torch.cat([w[1] for w in windows], dim=1)
    for b in range(4):
        assert x[b].tolist() == list(range(1 + 25 * b, 26 + 25 * b))  # contiguous text
    assert torch.equal(y, x + 1)                    # each target is the next character
    assert windows[1][0][2, 0] == windows[0][0][2, -1] + 1   # row b continues row b


def test_bits_per_char():
    assert text.bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert text.bits_per_char(torch.tensor(math.log(96))) == pytest.approx(math.log2(96))


@pytest.mark.parametrize("call, error, message", [
    (lambda: text.normalise(3), TypeError, "text must be str"),
    (lambda: text.split_text("a\n\nb", (0.5, 0.5)), ValueError, "three numbers"),
    (lambda: text.split_text("a\n\nb", [0.8, 0.1, 0.1]), TypeError, "fractions must be tuple"),
    (lambda: text.split_text("a\n\nb", (0.5, 0.3, 0.3)), ValueError, "add up to 1"),
    (lambda: text.split_text("a\n\nb", (1.0, 0.0, 0.0)), ValueError, "must be > 0"),
    (lambda: text.split_text("abc", (0.8, 0.1, 0.1)), ValueError, "too short"),
    (lambda: text.CharVocabulary(""), ValueError, "at least one character"),
    (lambda: text.CharVocabulary("abca"), ValueError, "must not repeat"),
    (lambda: text.CharVocabulary(["a"]), TypeError, "symbols must be str"),
    (lambda: text.CharVocabulary("ab").encode("abc"), ValueError, "outside the vocabulary: ['c']"),
    (lambda: text.CharVocabulary("ab").encode(b"ab"), TypeError, "text must be str"),
    (lambda: text.CharVocabulary("ab").decode(torch.tensor([0, 2])), ValueError, "ids must lie in [0, 1]"),
    (lambda: text.CharVocabulary("ab").decode(torch.zeros(2, 2, dtype=torch.long)), ValueError, "(length,)"),
    (lambda: text.CharVocabulary("ab").decode(torch.zeros(2)), TypeError, "integer tensor"),
    (lambda: text.stream_batches(torch.arange(10.0), 2, 3), TypeError, "integer tensor"),
    (lambda: text.stream_batches(torch.arange(10), 0, 3), ValueError, "batch_size must be >= 1"),
    (lambda: text.stream_batches(torch.arange(10), 2, 0), ValueError, "window must be >= 1"),
    (lambda: text.stream_batches(torch.arange(10), 2.0, 3), TypeError, "batch_size must be an int"),
    (lambda: text.stream_batches(torch.arange(5), 8, 3), ValueError, "more than batch_size"),
    (lambda: text.bits_per_char(-1.0), ValueError, "loss_nats must be >= 0"),
    (lambda: text.bits_per_char(float("nan")), ValueError, "finite"),
    (lambda: text.bits_per_char("1"), TypeError, "loss_nats must be a number"),
    (lambda: text.bits_per_char(torch.ones(2)), ValueError, "one number"),
    (lambda: text.streams(torch.arange(10.0), 2), TypeError, "ids must be an integer tensor"),
    (lambda: text.streams([0, 1, 2], 2), TypeError, "ids must be a torch.Tensor, got list"),
    (lambda: text.streams(torch.arange(10), 0), ValueError, "batch_size must be >= 1, got 0"),
    (lambda: text.streams(torch.arange(3), 4), ValueError, "more than batch_size (4)"),
    (lambda: text.Corpus(None, "c", "d", "s", {}), TypeError, "train must be str, got NoneType"),
    (lambda: text.Corpus("ab", "c", 3, "s", {}), TypeError, "test must be str, got int"),
    (lambda: text.Corpus("ab", "c", "d", "s", []), TypeError, "dropped must be dict, got list"),
])
def test_errors_name_what_was_expected(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
