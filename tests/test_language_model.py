"""Tests for book_utils.language_model: n-grams, the recurrent LM, sampling, unit analysis."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from book_utils import language_model as lm  # noqa: E402
from book_utils import text, training  # noqa: E402

VOCAB = text.CharVocabulary("\n abcdef\"()")
TRAIN = "abc abd (ace) \"bad\"\nfade cab\n" * 20
RUN = {"step_loss": [2.0, 1.5, 1.2, 1.0], "val_steps": [2, 4], "val_loss": [1.4, 1.1]}
SEEDS = {"a": [([2, 4], [2.1, 1.8]), ([2, 4], [2.0, 1.7])]}
W1 = [(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))]  # one window


@pytest.fixture(scope="module")
def ngram() -> lm.NGramModel:
    return lm.NGramModel(TRAIN, 4, VOCAB, discount=0.75)


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("history", ["", "ab", "zzz", "(ac", "xyz ab"])
def test_ngram_probabilities_sum_to_one(ngram, order, history):
    probs = ngram.distribution(history, order)
    assert probs.shape == (len(VOCAB),)
    assert probs.min() > 0                       # smoothing leaves no zero
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_ngram_orders_and_units(ngram):
    assert ngram.prob("ab", "c", 0) == pytest.approx(1 / len(VOCAB))
    assert ngram.bits_per_char("abc", order=0) == pytest.approx(math.log2(len(VOCAB)))
    # On its own training text a higher order predicts better: "ab" is followed by c, d or a newline.
    assert ngram.bits_per_char(TRAIN[:200], 3) < ngram.bits_per_char(TRAIN[:200], 1)
    assert sum(ngram.prob("ab", ch, 3) for ch in "cd\n") > 0.9
    expected = -sum(math.log2(ngram.prob(TRAIN[max(t - 2, 0):t], TRAIN[t], 3)) for t in range(50)) / 50
    assert ngram.bits_per_char(TRAIN[:50], 3) == pytest.approx(expected)


def tiny_lm(kind: str = "lstm", num_layers: int = 1, dropout: float = 0.0) -> lm.CharLM:
    torch.manual_seed(0)
    return lm.CharLM(len(VOCAB), kind, embedding_size=5, hidden_size=7, num_layers=num_layers, dropout=dropout)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_state_carried_across_windows_equals_one_long_pass(kind):
    model = tiny_lm(kind, num_layers=2).eval()
    ids = VOCAB.encode(TRAIN[:121])
    windows = text.stream_batches(ids, batch_size=3, window=7)
    with torch.no_grad():
        long_logits, _ = model(text.streams(ids, 3)[0])
        state, pieces = None, []
        for x, _ in windows:
            logits, state = model(x, state)
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), long_logits)
    assert long_logits.shape == (3, 40, len(VOCAB))


def test_train_for_steps_carries_or_resets_and_lowers_the_loss():
    ids = VOCAB.encode(TRAIN)
    windows = text.stream_batches(ids, batch_size=4, window=16)
    model = tiny_lm("gru")
    before = lm.held_out_bits(model, windows)
    history = lm.train_for_steps(model, windows, steps=30, lr=0.02)
    assert history["steps"] == [30] and len(history["step_loss"]) == 30
    assert lm.held_out_bits(model, windows) < before
    reset = lm.train_for_steps(tiny_lm("rnn"), windows, steps=3, lr=0.02, state="reset")
    assert reset["seconds_per_step"][0] > 0 and len(reset["step_loss"]) == 3


def test_fixed_steps_repeat_exactly():
    """A step budget, unlike a budget in seconds, gives the same model on every run."""
    windows = text.stream_batches(VOCAB.encode(TRAIN), batch_size=4, window=16)
    runs = []
    for _ in range(2):
        model = tiny_lm("lstm", num_layers=2, dropout=0.2)   # dropout draws from the seeded RNG
        history = lm.train_for_steps(model, windows, steps=12, lr=0.02)
        runs.append((history["step_loss"], lm.held_out_bits(model, windows)))
    assert runs[0] == runs[1]


def test_train_for_steps_scores_validation_after_every_pass():
    windows = text.stream_batches(VOCAB.encode(TRAIN), batch_size=4, window=16)
    assert len(windows) == 9
    history = lm.train_for_steps(tiny_lm("gru"), windows, steps=25, lr=0.02, val_windows=windows[:3])
    assert history["val_steps"] == [9, 18, 25]
    assert len(history["val_loss"]) == 3 and history["val_loss"][-1] < history["val_loss"][0]


def test_train_recipe_is_seeded_and_leaves_the_callers_rng_alone(monkeypatch):
    monkeypatch.setitem(lm.RECIPE, "steps", 4)
    monkeypatch.setitem(lm.RECIPE, "parameters", 3_000)
    windows = text.stream_batches(VOCAB.encode(TRAIN), batch_size=4, window=16)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    runs = [lm.train_recipe("LSTM, 2 layers, dropout", len(VOCAB), windows, lr=0.01, seed=3,
                            dropout=0.3) for _ in range(2)]
    assert torch.rand(1) == before                        # the caller's generator is untouched
    (first, h1), (second, h2) = runs
    assert h1["step_loss"] == h2["step_loss"] and h1["steps"] == [4]
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b)
    assert first.num_layers == 2 and first.recurrent.dropout == 0.3
    other, _ = lm.train_recipe("LSTM, 2 layers, dropout", len(VOCAB), windows, lr=0.01, seed=4,
                               dropout=0.3)
    assert not torch.equal(other.head.weight, first.head.weight)
    assert abs(models_count(first) - 3_000) < 300


def models_count(model):
    return sum(p.numel() for p in model.parameters())


def test_bits_by_position_resets_or_carries():
    model = tiny_lm("lstm").eval()
    ids = VOCAB.encode(TRAIN)
    windows = text.stream_batches(ids, batch_size=4, window=8)
    reset = lm.bits_by_position(model, windows)
    carried = lm.bits_by_position(model, windows, state="carry")
    assert reset.shape == carried.shape == (8,)
    # Position 0 after a reset sees its own character only; carried, window 0 is the same run.
    with torch.no_grad():
        x, y = windows[1]
        logits, _ = model(x)
        first = torch.nn.functional.cross_entropy(logits[:, 0], y[:, 0], reduction="sum")
        total = sum(torch.nn.functional.cross_entropy(model(x)[0][:, 0], y[:, 0], reduction="sum")
                    for x, y in windows)
    count = sum(len(x) for x, _ in windows)
    assert reset[0].item() == pytest.approx(total.item() / count / math.log(2), rel=1e-5)
    assert first.item() > 0
    mean_reset = text.bits_per_char(training.evaluate(model, windows, state="reset")["loss"])
    assert reset.mean().item() == pytest.approx(mean_reset, rel=1e-5)   # equal-length windows


def test_sample_ngram_draws_from_the_model():
    kn = text.KneserNey(TRAIN, 4, VOCAB)
    drawn = lm.sample_ngram(kn, "ab", 60, seed=1)
    assert len(drawn) == 60 and set(drawn) <= set(VOCAB.symbols)
    assert drawn == lm.sample_ngram(kn, "ab", 60, seed=1) != lm.sample_ngram(kn, "ab", 60, seed=2)
    # Order 1 ignores the history; a long history uses the last order - 1 characters only.
    assert lm.sample_ngram(kn, "(", 5, order=1, seed=3) == lm.sample_ngram(kn, "bad", 5, order=1, seed=3)
    assert lm.sample_ngram(kn, "(bad) abc", 20, seed=4) == lm.sample_ngram(kn, "abc", 20, seed=4)


def test_make_language_model_matches_the_parameter_budget():
    for kind in ("rnn", "gru", "lstm"):
        model = lm.make_language_model(kind, 96, 50_000)
        count = sum(p.numel() for p in model.parameters())
        assert abs(count - 50_000) < 0.03 * 50_000, (kind, count)


def test_next_char_probs_temperature_and_top_k():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    probs = lm.next_char_probs(logits, 1.0, top_k=2)
    assert probs[2:].sum() == 0 and probs.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(probs[:2], logits[:2].softmax(-1))
    cold, hot = lm.next_char_probs(logits, 0.1), lm.next_char_probs(logits, 10.0)
    assert cold[0] > 0.99 and hot.max() - hot.min() < 0.1


def test_sampling_respects_top_k_and_reports_log_likelihood():
    model = tiny_lm("lstm")
    generated, log2_likelihood = lm.sample(model, VOCAB, "ab", 40, temperature=1.0, top_k=1, seed=0)
    assert len(generated) == 40
    # top_k=1 is greedy decoding: each character is the model's most likely one.
    with torch.no_grad():
        logits, _ = model(VOCAB.encode("ab" + generated)[None])
    greedy = logits[0, 1:-1].argmax(-1)
    assert VOCAB.decode(greedy) == generated
    expected = logits[0, 1:-1].log_softmax(-1).gather(1, greedy[:, None]).sum() / math.log(2)
    assert log2_likelihood == pytest.approx(expected.item(), rel=1e-4)
    for seed in range(3):   # with top_k=3 every character is among the 3 most likely
        generated, _ = lm.sample(model, VOCAB, "(", 20, top_k=3, seed=seed)
        with torch.no_grad():
            logits, _ = model(VOCAB.encode("(" + generated)[None])
        top3 = logits[0, :-1].topk(3, dim=-1).indices
        assert (top3 == VOCAB.encode(generated)[:, None]).any(dim=1).all()
    assert lm.sample(model, VOCAB, "a", 10, seed=5) == lm.sample(model, VOCAB, "a", 10, seed=5)


def test_known_word_share():
    assert lm.known_word_share("the cat zzq", "the cat sat") == pytest.approx(2 / 3)


def test_text_features_and_unit_correlations():
    passage = 'say "hi" (a [b]) x\n   >>> code\nend...'
    f = lm.text_features(passage)
    assert f["inside quotes"][passage.index("h")] == 1 and f["inside quotes"][passage.index("(")] == 0
    assert f["inside brackets"][passage.index("b")] == 1 and f["inside brackets"][passage.index("x")] == 0
    assert f["position in line"][passage.index("c")] == 7 and f["position in line"][0] == 0
    assert f["after newline"].sum() == 2
    assert f["inside code"][passage.index("d")] == 1 and f["inside code"][passage.index("y")] == 0
    assert f["inside code"][passage.index(">")] == 0 and f["inside code"][-1] == 0   # ">" alone is not yet code
    states = torch.stack([f["position in line"] * 2 + 1, -f["inside quotes"], torch.ones(len(passage))], dim=1)
    r = lm.unit_correlations(states, f)
    assert r["position in line"][0].item() == pytest.approx(1.0)
    assert r["inside quotes"][1].item() == pytest.approx(-1.0)
    assert r["inside quotes"][2].item() == 0.0                   # a constant unit correlates with nothing
    assert lm.units_above(r, 0.99) == {"inside quotes": 1, "inside brackets": 0, "position in line": 1,
                                       "after newline": 0, "inside code": 0}


def test_hidden_states_are_the_top_layer_outputs():
    model = tiny_lm("gru", num_layers=2)
    states = lm.hidden_states(model, VOCAB, "abc (d)")
    assert states.shape == (7, 7)
    _, h_n = model.recurrent(model.embedding(VOCAB.encode("abc (d)")[None]))
    torch.testing.assert_close(states[-1], h_n[-1, 0])


def test_figures_draw():
    run = {"step_loss": [9.0, 1.5, 1.2, 1.0], "val_steps": [2, 4], "val_loss": [1.4, 1.1]}
    seeds = {"a": [([2, 4], [2.1, 1.8]), ([2, 4], [2.0, 1.7])], "b": [([2, 4], [2.5, 2.2])] * 2}
    fig = lm.plot_learning_curves(run, seeds, baseline=1.5, smooth=1)
    left, right = fig.axes
    assert left.get_ylabel() == "bits per character" and right.get_xlabel() == "updates"
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["a", "b",
                                                                       "Kneser-Ney n-gram (validation)"]
    assert "2 seeds" in right.get_title()
    # The first window (9 nats, 13 bits) lies above the frame, and an arrow says so.
    assert left.get_ylim()[1] < 13 and "training starts at 13.0 bits" in left.texts[0].get_text()
    plt.close(fig)
    fig = lm.plot_learning_curves(run, seeds, baseline=1.5, smooth=1,
                                  panels={"first": ("a", "b"), "second": ("b",)})
    _, first, second = fig.axes
    assert second.get_title().startswith("second: mean and range over 2 seeds")
    # A model keeps its colour in every panel; the range bars are drawn around the mean.
    colour = [line.get_color() for line in second.get_lines() if line.get_label() == "b"]
    assert colour == [line.get_color() for line in first.get_lines() if line.get_label() == "b"]
    plt.close(fig)
    fig = lm.plot_unit_activity("ab\ncd", {"unit 1": torch.tensor([0.1, -0.2, 0.0, 0.5, 0.3, 0.9])})
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "activation"   # the colour bar
    assert [t.get_text() for t in fig.axes[0].texts] == ["a", "b", "\u21b5", "c", "d"]   # the newline
    plt.close(fig)


def test_char_bits_lists_every_target_in_text_order():
    model = tiny_lm("gru")
    ids = VOCAB.encode(TRAIN[:200])
    windows = text.stream_batches(ids, batch_size=3, window=10)
    bits = lm.char_bits(model, windows)
    n = (len(ids) - 1) // 3
    assert bits.shape == (3, n) and bits.dtype == torch.float64
    assert bits.mean().item() == pytest.approx(lm.held_out_bits(model, windows), rel=1e-6)
    # Stream 1 starts from a zero state at ids[n]: its first target is ids[n + 1].
    with torch.no_grad():
        logits, _ = model(ids[None, n:2 * n])
    expected = torch.nn.functional.cross_entropy(logits[0], ids[n + 1:2 * n + 1], reduction="none")
    torch.testing.assert_close(bits.flatten()[n:2 * n], expected.double() / math.log(2))


def test_ngram_char_bits_average_to_bits_per_char():
    kn = text.KneserNey(TRAIN, 4, VOCAB)
    passage = "fade (bad) cab\nabc"
    bits = lm.ngram_char_bits(kn, passage, 3)
    assert bits.shape == (len(passage),) and bits.dtype == torch.float64
    assert bits.mean().item() == pytest.approx(kn.bits_per_char(passage, 3))
    assert bits[5].item() == pytest.approx(-math.log2(kn.prob("e ", "(", 3)))
    assert lm.ngram_char_bits(kn, passage).mean().item() == pytest.approx(kn.bits_per_char(passage))


def test_copied_mask_marks_strings_found_in_the_reference():
    mask = lm.copied_mask("xxabcdefyy", "zzabcdefzzz", 4)
    assert mask.tolist() == [False] * 2 + [True] * 6 + [False] * 2
    assert not lm.copied_mask("abc", "abd", 3).any()
    assert lm.copied_mask("ab", "ab", 3).tolist() == [False, False]   # shorter than length


def test_cell_states_are_the_lstm_cell_states():
    torch.manual_seed(1)
    model = lm.CharLM(len(VOCAB), "lstm", embedding_size=5, hidden_size=6)
    passage = TRAIN[:90]
    c = lm.cell_states(model, VOCAB, passage)
    assert c.shape == (90, 6)
    with torch.no_grad():
        _, (_, c_n) = model.recurrent(model.embedding(VOCAB.encode(passage)[None]))
        _, (_, c_10) = model.recurrent(model.embedding(VOCAB.encode(passage[:10])[None]))
    torch.testing.assert_close(c[-1], c_n[0, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c[9], c_10[0, 0], atol=1e-5, rtol=1e-5)
    h = lm.hidden_states(model, VOCAB, passage)
    assert not torch.allclose(h, c, atol=1e-2)          # c is not h: h = o * tanh(c)
    assert (h.abs() <= c.tanh().abs() + 1e-6).all()


def test_train_recipe_takes_a_longer_budget(monkeypatch):
    monkeypatch.setitem(lm.RECIPE, "parameters", 3_000)
    windows = text.stream_batches(VOCAB.encode(TRAIN), batch_size=4, window=16)
    _, history = lm.train_recipe("GRU", len(VOCAB), windows, lr=0.01, seed=0, steps=7)
    assert history["steps"] == [7] and len(history["step_loss"]) == 7


@pytest.mark.parametrize("call, error, message", [
    (lambda: lm.NGramModel(TRAIN, 0, VOCAB), ValueError, "max_order must be >= 1"),
    (lambda: lm.NGramModel(TRAIN, 2, VOCAB, discount=0.0), ValueError, "discount must be > 0.0"),
    (lambda: lm.NGramModel(TRAIN, 2, VOCAB, discount=1.5), ValueError, "discount must be <= 1.0"),
    (lambda: lm.NGramModel("xyz", 2, VOCAB), ValueError, "outside the vocabulary"),
    (lambda: lm.NGramModel("a", 3, VOCAB), ValueError, "at least max_order (3)"),
    (lambda: lm.NGramModel(TRAIN, 2, "abc"), TypeError, "vocab must be CharVocabulary"),
    (lambda: lm.NGramModel(TRAIN, 2, VOCAB).prob("a", "ab"), ValueError, "one character"),
    (lambda: lm.NGramModel(TRAIN, 2, VOCAB).prob("a", "b", 3), ValueError, "at most max_order (2)"),
    (lambda: lm.NGramModel(TRAIN, 2, VOCAB).bits_per_char(""), ValueError, "must not be empty"),
    (lambda: lm.CharLM(96, "transformer"), ValueError, "kind must be one of"),
    (lambda: lm.CharLM(96, dropout=0.2), ValueError, "num_layers >= 2"),
    (lambda: lm.CharLM(96, num_layers=2, dropout=1.0), ValueError, "dropout must be < 1"),
    (lambda: lm.CharLM(1), ValueError, "vocab_size must be >= 2"),
    (lambda: tiny_lm()(torch.zeros(2, 3)), TypeError, "integer tensor"),
    (lambda: tiny_lm()(torch.zeros(3, dtype=torch.long)), ValueError, "(batch, time) of character ids"),
    (lambda: tiny_lm()(torch.full((1, 2), 99)), ValueError, "ids in [0, 10]"),
    (lambda: lm.make_language_model("lstm", 96, 0), ValueError, "parameters must be >= 1"),
    (lambda: lm.train_for_steps(tiny_lm(), [], steps=1, lr=0.1), ValueError, "at least one (x, y) window"),
    (lambda: lm.train_for_steps(tiny_lm(), [(torch.zeros(1, 2, dtype=torch.long),) * 2], steps=0, lr=0.1), ValueError, "steps must be >= 1"),
    (lambda: lm.train_for_steps(tiny_lm(), W1, steps=2.5, lr=0.1), TypeError, "steps must be an int"),
    (lambda: lm.train_for_steps(tiny_lm(), W1, steps=1, lr=0.1, state="keep"), ValueError,
     "state must be one of"),
    (lambda: lm.train_for_steps(nn_linear(), W1, steps=1, lr=0.1), TypeError, "model must be CharLM"),
    (lambda: lm.train_for_steps(tiny_lm(), W1, steps=1, lr=0.1, val_windows=[]), ValueError,
     "val_windows must hold at least one (x, y) window"),
    (lambda: lm.train_recipe("Transformer", 11, W1, lr=0.1, seed=0), ValueError,
     "name must be one of"),
    (lambda: lm.train_recipe("LSTM", 11, W1, lr=0.1, seed=-1), ValueError, "seed must be >= 0"),
    (lambda: lm.train_recipe("LSTM", 11, W1, lr=0.1, seed=0, dropout=0.2), ValueError,
     "num_layers >= 2"),
    (lambda: lm.bits_by_position(tiny_lm(), [], state="reset"), ValueError, "at least one (x, y) window"),
    (lambda: lm.bits_by_position(tiny_lm(), W1, state="keep"), ValueError, "state must be one of"),
    (lambda: lm.bits_by_position(nn_linear(), W1), TypeError, "model must be CharLM, got Linear"),
    (lambda: lm.sample_ngram("kn", "a", 3), TypeError, "model must be KneserNey, got str"),
    (lambda: lm.sample_ngram(text.KneserNey(TRAIN, 2, VOCAB), "a", 0), ValueError, "length must be >= 1"),
    (lambda: lm.sample_ngram(text.KneserNey(TRAIN, 2, VOCAB), "q", 3), ValueError,
     "history has characters outside the vocabulary: ['q']"),
    (lambda: lm.sample_ngram(text.KneserNey(TRAIN, 2, VOCAB), "a", 3, order=3), ValueError,
     "order must be at most max_order (2), got 3"),
    (lambda: lm.sample_ngram(text.KneserNey(TRAIN, 2, VOCAB), "a", 3, seed=-2), ValueError,
     "seed must be >= 0"),
    (lambda: lm.plot_learning_curves(RUN, SEEDS, baseline=-1.0), ValueError, "baseline must be >= 0.0"),
    (lambda: lm.held_out_bits(tiny_lm(), [torch.zeros(2, 3, dtype=torch.long)]), TypeError,
     "windows must hold (x, y) pairs of tensors, as text.stream_batches makes"),
    (lambda: lm.held_out_bits(tiny_lm(), [(torch.zeros(2, 3), torch.zeros(2, 3))]), TypeError,
     "windows[0] x must be an integer tensor"),
    (lambda: lm.bits_by_position(tiny_lm(), [(torch.zeros(2, 3, dtype=torch.long),
                                              torch.zeros(2, 4, dtype=torch.long))]), ValueError,
     "windows[0] must hold x and y of one shape, got (2, 3) and (2, 4)"),
    (lambda: lm.train_for_steps(tiny_lm(), W1, steps=1, lr=0.0), ValueError, "lr must be > 0.0"),
    (lambda: lm.train_recipe("LSTM", 1, W1, lr=0.1, seed=0), ValueError, "vocab_size must be >= 2"),
    (lambda: lm.train_recipe("GRU", 11, W1, lr=0.1, seed=0, state="keep"), ValueError,
     "state must be one of"),
    (lambda: lm.plot_learning_curves([], {}, baseline=1.0), TypeError, "run must be dict, got list"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "", 5), ValueError, "prompt must hold at least one"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "a", 0), ValueError, "length must be >= 1"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "a", 5, temperature=0), ValueError, "temperature must be > 0"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "a", 5, top_k=0), ValueError, "top_k must be >= 1"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "a", 5, top_k=12), ValueError, "at most the vocabulary size (11)"),
    (lambda: lm.sample(tiny_lm(), VOCAB, "z", 5), ValueError, "outside the vocabulary"),
    (lambda: lm.known_word_share("1 2", "a"), ValueError, "no words"),
    (lambda: lm.text_features(""), ValueError, "must not be empty"),
    (lambda: lm.unit_correlations(torch.zeros(3, 2), {"a": torch.zeros(4)}), ValueError,
     "one value per row of states (3)"),
    (lambda: lm.unit_correlations(torch.zeros(3), {}), ValueError, "(characters, units)"),
    (lambda: lm.units_above({}, 1.5), ValueError, "threshold must be <= 1.0"),
    (lambda: lm.interpolated_prob("model", "ab", "c", 2), TypeError, "model must be NGramModel, got str"),
    (lambda: lm.interpolated_prob(lm.NGramModel(TRAIN, 2, VOCAB), "ab", "c", 3), ValueError,
     "order must be at most max_order (2), got 3"),
    (lambda: lm.interpolated_prob(lm.NGramModel(TRAIN, 2, VOCAB), "ab", "c", -1), ValueError,
     "order must be >= 0, got -1"),
    (lambda: lm.next_char_probs(torch.arange(5), 1.0), TypeError, "logits must be a floating-point"),
    (lambda: lm.next_char_probs(torch.tensor(1.0), 1.0), ValueError, "logits must have a last dimension"),
    (lambda: lm.next_char_probs(torch.randn(5), float("inf")), ValueError, "temperature must be a finite"),
    (lambda: lm.next_char_probs(torch.randn(5), 1.0, top_k=0), ValueError, "top_k must be >= 1, got 0"),
    (lambda: lm.next_char_probs(torch.randn(5), 1.0, top_k=6), ValueError, "top_k must be at most"),
    (lambda: lm.pearson(torch.randn(4, 2), torch.randn(5)), ValueError, "feature must hold one value per row"),
    (lambda: lm.pearson(torch.randn(0, 2), torch.randn(0)), ValueError, "states must not be empty"),
    (lambda: lm.pearson(torch.randn(4, 2), torch.arange(4)), TypeError, "feature must be a floating-point"),
    (lambda: lm.held_out_bits(nn_linear(), W1), TypeError, "model must be CharLM, got Linear"),
    (lambda: lm.held_out_bits(tiny_lm(), []), ValueError, "windows must hold at least one (x, y) window"),
    (lambda: lm.held_out_bits(tiny_lm(), None), TypeError, "windows must be list, got NoneType"),
    (lambda: lm.hidden_states(tiny_lm(), VOCAB, ""), ValueError, "text must not be empty"),
    (lambda: tiny_lm()(torch.zeros(0, 3, dtype=torch.long)), ValueError, "x must not be empty"),
    (lambda: lm.char_bits(nn_linear(), W1), TypeError, "model must be CharLM, got Linear"),
    (lambda: lm.char_bits(tiny_lm(), []), ValueError, "windows must hold at least one (x, y) window"),
    (lambda: lm.ngram_char_bits("kn", "ab"), TypeError, "model must be KneserNey, got str"),
    (lambda: lm.ngram_char_bits(text.KneserNey(TRAIN, 2, VOCAB), ""), ValueError,
     "text must not be empty"),
    (lambda: lm.ngram_char_bits(text.KneserNey(TRAIN, 2, VOCAB), "q"), ValueError,
     "text has characters outside the vocabulary: ['q']"),
    (lambda: lm.ngram_char_bits(text.KneserNey(TRAIN, 2, VOCAB), "ab", 3), ValueError,
     "order must be at most max_order (2), got 3"),
    (lambda: lm.copied_mask("ab", "ab", 0), ValueError, "length must be >= 1, got 0"),
    (lambda: lm.copied_mask(b"ab", "ab"), TypeError, "text must be str, got bytes"),
    (lambda: lm.copied_mask("ab", None), TypeError, "reference must be str, got NoneType"),
    (lambda: lm.cell_states(tiny_lm("gru"), VOCAB, "ab"), ValueError,
     "model must be a one-layer LSTM (only it has one cell state c_t), got kind='gru'"),
    (lambda: lm.cell_states(tiny_lm("lstm", num_layers=2), VOCAB, "ab"), ValueError,
     "with num_layers=2"),
    (lambda: lm.cell_states(tiny_lm(), VOCAB, ""), ValueError, "text must not be empty"),
    (lambda: lm.cell_states(tiny_lm(), "abc", "ab"), TypeError, "vocab must be CharVocabulary"),
    (lambda: lm.train_recipe("LSTM", 11, W1, lr=0.1, seed=0, steps=0), ValueError,
     "steps must be >= 1, got 0"),
    (lambda: lm.plot_learning_curves(RUN, SEEDS, baseline=1.0, panels={"p": ("b",)}),
     ValueError, "panels must map titles to model names of seeds ['a']"),
    (lambda: lm.plot_learning_curves(RUN, SEEDS, baseline=1.0, panels=[]), TypeError,
     "panels must be dict, got list"),
    (lambda: lm.plot_learning_curves(RUN, SEEDS, baseline=1.0, smooth=0), ValueError,
     "smooth must be >= 1, got 0"),
])
def test_errors_name_what_was_expected(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_train_for_steps_without_clipping():
    """clip_norm=None trains with the raw gradients (no clipping)."""
    ids = VOCAB.encode(TRAIN)
    windows = text.stream_batches(ids, batch_size=4, window=16)
    history = lm.train_for_steps(tiny_lm(), windows, steps=3, lr=0.02, clip_norm=None)
    assert len(history["step_loss"]) == 3 and all(math.isfinite(v) for v in history["step_loss"])


def test_numpy_sizes_are_accepted():
    import numpy as np

    model = lm.CharLM(np.int64(11), "gru", embedding_size=np.int64(3), hidden_size=np.int64(4))
    assert model.recurrent.input_size == 3 and isinstance(model.recurrent.input_size, int)


def nn_linear():
    return torch.nn.Linear(2, 2)


def test_training_module_is_the_only_loop():
    """The chapter module trains through training.fit and never steps an optimiser itself."""
    import inspect

    source = inspect.getsource(lm)
    assert ".backward(" not in source and ".step()" not in source
    assert "training.fit(" in source
    assert training.STATE_MODES == ("carry", "reset")


def test_chosen_rates_and_dropout_are_the_benchmark_search_choices():
    """lm.LEARNING_RATES and lm.DROPOUT are what the committed search chose on validation, and the
    comparisons use fresh seeds, none of which chose a rate."""
    from book_utils import results

    rows = results.load("language_model")["rows"]
    search = [r for r in rows if r["part"] == "search"]
    assert {r["seed"] for r in search} == {lm.SEARCH_SEED}
    dropout_runs = [r for r in search if r["model"] == "LSTM, 2 layers, dropout"
                    and r["lr"] == lm.LEARNING_RATES["LSTM, 2 layers"]]
    assert {r["dropout"] for r in dropout_runs} == set(lm.DROPOUT_GRID)
    assert lm.DROPOUT == min(dropout_runs, key=lambda r: r["validation bpc"])["dropout"]
    for name in lm.CONFIGS:
        runs = {r["lr"]: r["validation bpc"] for r in search if r["model"] == name
                and r["dropout"] == (lm.DROPOUT if "dropout" in name else 0.0)}
        grid = {float(f"{lr:.3g}") for lr in lm.LR_GRID}
        assert grid <= set(runs), name                                   # the whole grid was tried
        coarse = min(grid, key=runs.get)
        refined = {float(f"{coarse * f:.3g}") for f in (1 / lm.LR_REFINE, lm.LR_REFINE)}
        # The dropout search also ran the stack's own rate, which may lie off the grid.
        extra = {lm.LEARNING_RATES["LSTM, 2 layers"]} if "dropout" in name else set()
        assert set(runs) - extra == (grid | refined) - extra, name        # and its best's neighbours
        tried = grid | refined
        assert lm.LEARNING_RATES[name] == min(tried, key=runs.get), name
    for part in ("compare", "reset", "long"):
        runs = [r for r in rows if r["part"] == part]
        assert {r["seed"] for r in runs} == set(lm.SEEDS) and lm.SEARCH_SEED not in lm.SEEDS, part
    compare = [r for r in rows if r["part"] == "compare"]
    assert {(r["model"], r["lr"]) for r in compare} == set(lm.LEARNING_RATES.items())
