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


def test_the_shipped_corpus_is_one_release_on_every_python(corpus, tmp_path, monkeypatch):
    # The same text on any Python: the file the package ships, checked by its SHA-256.
    import hashlib
    from pathlib import Path

    packed = text.CORPUS_FILE.read_bytes()
    assert hashlib.sha256(packed).hexdigest() == text.CORPUS_SHA256
    assert text.CORPUS_VERSION in text.CORPUS_FILE.name and text.CORPUS_VERSION in corpus.source
    assert (text.CORPUS_FILE.parent / "LICENSE.txt").read_text().count("PYTHON SOFTWARE FOUNDATION") >= 1
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"corpus/*.json.gz"' in pyproject and '"corpus/LICENSE.txt"' in pyproject  # in the wheel
    altered = tmp_path / text.CORPUS_FILE.name
    altered.write_bytes(packed[:-1] + bytes([packed[-1] ^ 1]))
    monkeypatch.setattr(text, "CORPUS_FILE", altered)
    with pytest.raises(ValueError, match="is not the corpus the book ships"):
        text.load_corpus()


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


# ---------------------------------------------------------------- modified Kneser-Ney

KN_VOCAB = text.CharVocabulary("\n abcdhr.")
KN_TRAIN = "abracadabra. a bad cab.\nbrad had a dab.\n" * 3 + "a cab a crab.\n"


def reference_kneser_ney(train: str, history: str, ch: str, order: int, vocab: str) -> float:
    """Interpolated modified Kneser-Ney written from the definitions, by brute force."""
    def grams(k):
        return {train[i:i + k] for i in range(len(train) - k + 1)}

    def raw(g):
        return sum(train.startswith(g, i) for i in range(len(train) - len(g) + 1))

    def continuation(g):
        return len({train[i - 1] for i in range(1, len(train) - len(g) + 1) if train.startswith(g, i)})

    def p(k, top):
        if k == 0:
            return 1 / len(vocab)
        count = raw if k == top else continuation
        table = {g: count(g) for g in grams(k) if count(g) > 0}
        d = text.kneser_ney_discounts(table)
        h = history[len(history) - k + 1:]
        followers = {g: n for g, n in table.items() if g[:-1] == h}
        total = sum(followers.values())
        if total == 0:
            return p(k - 1, top)
        free = sum(d[min(n, 3) - 1] for n in followers.values())
        n = table.get(h + ch, 0)
        kept = n - d[min(n, 3) - 1] if n else 0.0
        return (kept + free * p(k - 1, top)) / total

    top = min(order, len(history) + 1)
    return p(top, top)


@pytest.fixture(scope="module")
def kneser_ney() -> text.KneserNey:
    return text.KneserNey(KN_TRAIN, 4, KN_VOCAB)


def test_kneser_ney_discounts_follow_chen_and_goodman():
    counts = {"a": 1, "b": 1, "g": 1, "c": 2, "d": 3, "e": 4, "h": 9}
    y = 3 / (3 + 2 * 1)                                  # n1 = 3, n2 = 1, n3 = 1, n4 = 1
    d1, d2, d3 = text.kneser_ney_discounts(counts)
    assert d1 == pytest.approx(1 - 2 * y * 1 / 3) and d1 == pytest.approx(y)
    assert d2 == pytest.approx(2 - 3 * y * 1 / 1)
    assert d3 == pytest.approx(3 - 4 * y * 1 / 1)
    # Not every estimate positive (D3+ < 0 once n4 = 2), or a count of counts missing:
    # one discount Y for every count.
    counts["j"] = 4
    assert text.kneser_ney_discounts(counts) == (y,) * 3
    assert text.kneser_ney_discounts({"a": 1, "b": 2, "c": 7}) == (1 / 3,) * 3     # n3 = 0
    assert text.kneser_ney_discounts({"a": 5}) == (0.5, 0.5, 0.5)                 # no n1


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_kneser_ney_sums_to_one_for_every_context(kneser_ney, order):
    seen = {KN_TRAIN[i:i + k] for k in range(0, 4) for i in range(len(KN_TRAIN) - k + 1)}
    unseen = {"rrr", "\n\n\n", "dd", "."}
    for history in sorted(seen | unseen):
        probs = kneser_ney.distribution(history, order)
        assert probs.shape == (len(KN_VOCAB),) and probs.dtype == torch.float64
        assert probs.min() > 0, history                  # smoothing leaves no zero
        assert math.fsum(probs.tolist()) == pytest.approx(1.0, abs=1e-12), (history, order)


@pytest.mark.parametrize("history", ["", "a", "ab", "abr", ".ab", "rr", "d a", "\nbra"])
def test_kneser_ney_matches_the_definition(kneser_ney, history):
    for order in range(0, 5):
        for ch in KN_VOCAB.symbols:
            expected = reference_kneser_ney(KN_TRAIN, history, ch, order, KN_VOCAB.symbols)
            assert kneser_ney.prob(history, ch, order) == pytest.approx(expected, rel=1e-12)


def test_kneser_ney_uses_continuation_counts_below_the_top_order(kneser_ney):
    # "a" is frequent but follows few different characters; the unigram level of a
    # 2-gram model weighs characters by how many left neighbours they have.
    raw, continuation = kneser_ney.tables[0]["raw"], kneser_ney.tables[0]["continuation"]
    assert raw.counts["a"] == KN_TRAIN.count("a")
    assert continuation.counts["a"] == len({KN_TRAIN[i - 1] for i in range(1, len(KN_TRAIN))
                                           if KN_TRAIN[i] == "a"})
    assert kneser_ney.discounts(2) == {"raw": kneser_ney.tables[1]["raw"].discounts,
                                       "continuation": kneser_ney.tables[1]["continuation"].discounts}
    # Scored on its own training text, a higher order predicts better; bpc is the mean -log2 p.
    assert kneser_ney.bits_per_char(KN_TRAIN, 4) < kneser_ney.bits_per_char(KN_TRAIN, 2)
    assert kneser_ney.bits_per_char("ab", 0) == pytest.approx(math.log2(len(KN_VOCAB)))
    expected = -(math.log2(kneser_ney.prob("", "a", 3)) + math.log2(kneser_ney.prob("a", "b", 3))
                 + math.log2(kneser_ney.prob("ab", "r", 3)) + math.log2(kneser_ney.prob("br", "a", 3)))
    assert kneser_ney.bits_per_char("abra", 3) == pytest.approx(expected / 4)


@pytest.mark.parametrize("call, error, message", [
    (lambda: text.KneserNey(KN_TRAIN, 0, KN_VOCAB), ValueError, "max_order must be >= 1, got 0"),
    (lambda: text.KneserNey(KN_TRAIN, 2.0, KN_VOCAB), TypeError, "max_order must be an int"),
    (lambda: text.KneserNey("abc", 3, KN_VOCAB), ValueError, "more than max_order (3) characters"),
    (lambda: text.KneserNey("abz", 1, KN_VOCAB), ValueError, "text has characters outside the vocabulary: ['z']"),
    (lambda: text.KneserNey(KN_TRAIN, 2, "abc"), TypeError, "vocab must be CharVocabulary, got str"),
    (lambda: text.KneserNey(3, 2, KN_VOCAB), TypeError, "text must be str, got int"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).prob("aq", "b"), ValueError,
     "history has characters outside the vocabulary: ['q']"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).prob("a", "z"), ValueError,
     "ch must be one character of the vocabulary, got 'z'"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).prob("a", "ab"), ValueError, "one character"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).prob("a", "b", 3), ValueError,
     "order must be at most max_order (2), got 3"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).distribution("a", -1), ValueError, "order must be >= 0"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).bits_per_char(""), ValueError, "must not be empty"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).bits_per_char("ab\t"), ValueError,
     "text has characters outside the vocabulary: ['\\t']"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).discounts(0), ValueError, "order must be >= 1"),
    (lambda: text.KneserNey(KN_TRAIN, 2, KN_VOCAB).discounts(3), ValueError, "at most max_order (2)"),
    (lambda: text.kneser_ney_prob("model", "a", "b", 1), TypeError, "model must be KneserNey, got str"),
    (lambda: text.kneser_ney_prob(text.KneserNey(KN_TRAIN, 2, KN_VOCAB), "a", "b", None), TypeError,
     "order must be an int, got NoneType"),
    (lambda: text.kneser_ney_prob(text.KneserNey(KN_TRAIN, 2, KN_VOCAB), "a", "b", 3), ValueError,
     "order must be at most max_order (2), got 3"),
    (lambda: text.kneser_ney_discounts({}), ValueError, "at least one n-gram count"),
    (lambda: text.kneser_ney_discounts([1, 2]), TypeError, "counts must be dict, got list"),
])
def test_kneser_ney_errors_name_what_was_expected(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
