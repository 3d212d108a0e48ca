"""Tests for book_utils.seq2seq and the Chapter 3 symbolic and cropping tasks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from book_utils import plots, seq2seq, tasks
from book_utils.seq2seq import EOS, PAD, SOS

# ---------------------------------------------------------------- lengths and masks


def test_length_mask_marks_valid_steps():
    mask = seq2seq.length_mask(torch.tensor([2, 1, 3]), max_length=4)
    expected = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert seq2seq.length_mask(torch.tensor([2, 3])).shape == (2, 3)


@pytest.mark.parametrize(
    "lengths, max_length, error, match",
    [
        (torch.tensor([1.0, 2.0]), 3, TypeError, "lengths must be an integer tensor"),
        (torch.tensor([[1, 2]]), 3, ValueError, r"lengths must have shape \(batch,\)"),
        (torch.tensor([0, 2]), 3, ValueError, "every length must be >= 1, got 0"),
        (torch.tensor([4, 2]), 3, ValueError, "must not exceed the 3 time steps"),
        (torch.tensor([1, 2]), 0, ValueError, "max_length must be >= 1"),
    ],
)
def test_length_mask_rejects_bad_lengths(lengths, max_length, error, match):
    with pytest.raises(error, match=match):
        seq2seq.length_mask(lengths, max_length)


def test_last_valid_step_picks_each_sequence_last_output():
    outputs = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    last = seq2seq.last_valid_step(outputs, torch.tensor([2, 3]))
    torch.testing.assert_close(last, torch.stack([outputs[0, 1], outputs[1, 2]]))


def test_last_valid_step_matches_packed_final_state():
    torch.manual_seed(0)
    rnn = nn.GRU(3, 4, batch_first=True)
    x, lengths = torch.randn(5, 6, 3), torch.tensor([6, 1, 3, 4, 2])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, h_n = rnn(packed)
    for b in range(5):  # each sequence alone, cut to its own length
        out_alone, _ = rnn(x[b : b + 1, : lengths[b]])
        torch.testing.assert_close(h_n[0, b], out_alone[0, -1])
    full_outputs, _ = rnn(x)
    torch.testing.assert_close(seq2seq.last_valid_step(full_outputs, lengths), h_n[0])


def test_last_valid_step_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"one length per sequence \(2\), got 3"):
        seq2seq.last_valid_step(torch.zeros(2, 3, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"outputs must have shape \(batch, time, hidden\)"):
        seq2seq.last_valid_step(torch.zeros(2, 3), torch.tensor([1, 2]))


def test_masked_mean_ignores_padding():
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    result = seq2seq.masked_mean(values, torch.tensor([2, 1]))
    torch.testing.assert_close(result, torch.tensor(2.0))
    # Extra trailing dimensions are averaged too.
    values3 = values[:, :, None].expand(-1, -1, 4)
    torch.testing.assert_close(seq2seq.masked_mean(values3, torch.tensor([2, 1])), torch.tensor(2.0))


def test_masked_mean_rejects_integer_values():
    with pytest.raises(TypeError, match="values must be a floating-point tensor"):
        seq2seq.masked_mean(torch.ones(2, 3, dtype=torch.long), torch.tensor([1, 2]))


def test_masked_cross_entropy_equals_cross_entropy_over_valid_steps():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 4, 5), torch.randint(0, 5, (3, 4))
    lengths = torch.tensor([4, 2, 1])
    valid = seq2seq.length_mask(lengths, 4)
    expected = F.cross_entropy(logits[valid], targets[valid])
    torch.testing.assert_close(seq2seq.masked_cross_entropy(logits, targets, lengths), expected)
    # Changing targets in the padding changes nothing.
    targets[1, 3] = (targets[1, 3] + 1) % 5
    torch.testing.assert_close(seq2seq.masked_cross_entropy(logits, targets, lengths), expected)


def test_masked_cross_entropy_checks_shapes():
    with pytest.raises(ValueError, match=r"targets must have shape \(batch, time\) = \(3, 4\), got \(3, 5\)"):
        seq2seq.masked_cross_entropy(torch.zeros(3, 4, 5), torch.zeros(3, 5, dtype=torch.long),
                                     torch.tensor([1, 1, 1]))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        seq2seq.masked_cross_entropy(torch.zeros(3, 4, 5), torch.zeros(3, 4), torch.tensor([1, 1, 1]))


# ---------------------------------------------------------------- models with sequence outputs


def test_per_step_classifier_equals_each_sequence_alone():
    torch.manual_seed(0)
    model = seq2seq.PerStepClassifier(3, 6, 4)
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 2, 4, 1])
    x_padded = x * seq2seq.length_mask(lengths, 5)[:, :, None]
    logits = model(x_padded, lengths)
    assert logits.shape == (4, 5, 4)
    for b in range(4):
        alone, _ = model.gru(x[b : b + 1, : lengths[b]])
        torch.testing.assert_close(logits[b, : lengths[b]], model.head(alone)[0])


def test_per_step_classifier_validates_input():
    model = seq2seq.PerStepClassifier(3, 6, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(4, 5\)"):
        model(torch.zeros(4, 5), torch.tensor([1, 1, 1, 1]))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        seq2seq.PerStepClassifier(3, 6, 1)


def test_vector_to_sequence_shapes_and_state():
    torch.manual_seed(0)
    model = seq2seq.VectorToSequence(3, 8, 2, steps=7)
    v = torch.randn(5, 3)
    y = model(v)
    assert y.shape == (5, 7, 2)
    # The first output follows from h0 = tanh(v A + a) and one GRU step on v.
    h0 = torch.tanh(model.initial_state(v))
    h1 = nn.GRUCell(3, 8)
    h1.load_state_dict({k.replace("_l0", ""): p for k, p in model.gru.state_dict().items()})
    torch.testing.assert_close(y[:, 0], model.head(h1(v, h0)))


def test_vector_to_sequence_validates_input():
    model = seq2seq.VectorToSequence(3, 8, 1, steps=4)
    with pytest.raises(ValueError, match=r"v must have 3 features, got shape \(2, 4\)"):
        model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        seq2seq.VectorToSequence(3, 8, 1, steps=0)


# ---------------------------------------------------------------- vocabulary and encoder-decoder


def test_vocabulary_round_trip():
    vocab = seq2seq.Vocabulary("0123456789")
    assert len(vocab) == 13
    ids, lengths = vocab.encode(["12", "0"], add_eos=True)
    assert torch.equal(ids, torch.tensor([[4, 5, EOS], [3, EOS, PAD]]))
    assert torch.equal(lengths, torch.tensor([3, 2]))
    assert vocab.decode(ids) == ["12", "0"]
    assert vocab.decode(torch.tensor([[SOS, 4, 4, EOS, 5]])) == ["11"]


@pytest.mark.parametrize(
    "texts, error, match",
    [
        ("123", TypeError, "texts must be a list of strings, got str"),
        ([], ValueError, "at least one string"),
        (["12a"], ValueError, r"outside the vocabulary: \['a'\]"),
        ([12], TypeError, "each text must be str, got int"),
    ],
)
def test_vocabulary_encode_errors(texts, error, match):
    with pytest.raises(error, match=match):
        seq2seq.Vocabulary().encode(texts)


def test_vocabulary_rejects_repeats_and_bad_ids():
    with pytest.raises(ValueError, match="must not repeat a character"):
        seq2seq.Vocabulary("0120")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 12\]"):
        seq2seq.Vocabulary().decode(torch.tensor([[13]]))


def test_shift_right_prepends_start_token():
    targets = torch.tensor([[4, 5, EOS], [6, EOS, PAD]])
    assert torch.equal(seq2seq.shift_right(targets), torch.tensor([[SOS, 4, 5], [SOS, 6, EOS]]))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        seq2seq.shift_right(targets.float())


def test_encoder_decoder_teacher_forcing_equals_step_by_step_decoding():
    torch.manual_seed(0)
    vocab = seq2seq.Vocabulary()
    model = seq2seq.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=16)
    source, lengths = vocab.encode(["123", "45"])
    targets, _ = vocab.encode(["321", "54"], add_eos=True)
    logits = model(source, lengths, seq2seq.shift_right(targets))
    assert logits.shape == (2, 4, len(vocab))
    # The encoder's summary is each source alone.
    state = model.encode(source, lengths)
    for b in range(2):
        alone, _ = model.encoder(model.embed(source[b : b + 1, : lengths[b]]))
        torch.testing.assert_close(state[0, b], alone[0, -1])
    # Feeding the true tokens one at a time gives the same logits.
    inputs = seq2seq.shift_right(targets)
    for t in range(inputs.shape[1]):
        out, state = model.decoder(model.embed(inputs[:, t : t + 1]), state)
        torch.testing.assert_close(model.head(out)[:, 0], logits[:, t])


def test_greedy_decode_feeds_back_its_own_argmax():
    torch.manual_seed(1)
    vocab = seq2seq.Vocabulary()
    model = seq2seq.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=16)
    source, lengths = vocab.encode(["123", "4567"])
    produced = model.greedy_decode(source, lengths, max_steps=5)
    assert produced.shape[0] == 2 and 1 <= produced.shape[1] <= 5
    # Teacher-forcing the model's own output reproduces its argmax choices until the end token.
    logits = model(source, lengths, seq2seq.shift_right(produced))
    for b in range(2):
        row = produced[b].tolist()
        stop = row.index(EOS) + 1 if EOS in row else len(row)
        assert logits[b, :stop].argmax(-1).tolist() == row[:stop]
        assert all(t == PAD for t in row[stop:])


def test_encoder_decoder_rejects_bad_ids():
    model = seq2seq.EncoderDecoder(13, 4, 8)
    with pytest.raises(ValueError, match=r"source must hold ids in \[0, 12\]"):
        model.encode(torch.tensor([[13]]), torch.tensor([1]))
    with pytest.raises(ValueError, match="vocab_size must be >= 4"):
        seq2seq.EncoderDecoder(3)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        model.greedy_decode(torch.tensor([[4]]), torch.tensor([1]), max_steps=0)


def test_exact_match():
    assert seq2seq.exact_match(["12", "3", "45"], ["12", "4", "45"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same length, got 1 and 2"):
        seq2seq.exact_match(["1"], ["1", "2"])
    with pytest.raises(TypeError, match="predicted must be a list of strings"):
        seq2seq.exact_match("12", ["12"])


def test_encoder_decoder_learns_to_reverse_short_strings():
    torch.manual_seed(0)
    vocab = seq2seq.Vocabulary("0123")
    sources = ["".join(str(d) for d in torch.randint(0, 4, (3,)).tolist()) for _ in range(256)]
    targets = [s[::-1] for s in sources]
    model = seq2seq.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=32)
    history = seq2seq.train_encoder_decoder(model, vocab, sources, targets, steps=150, lr=0.02,
                                            batch_size=64)
    assert len(history["step_loss"]) == 150 and history["step_loss"][-1] < history["step_loss"][0]
    accuracy, predicted = seq2seq.decode_and_score(model, vocab, sources, targets)
    assert len(predicted) == 256
    assert accuracy == seq2seq.exact_match(predicted, targets) > 0.9


def test_train_encoder_decoder_errors():
    vocab = seq2seq.Vocabulary("01")
    model = seq2seq.EncoderDecoder(len(vocab), 4, 8)
    with pytest.raises(ValueError, match="vocab has 13 tokens but the model expects 5"):
        seq2seq.train_encoder_decoder(model, seq2seq.Vocabulary(), ["1"], ["1"], steps=1)
    with pytest.raises(ValueError, match="sources and targets must pair up, got 2 and 1"):
        seq2seq.train_encoder_decoder(model, vocab, ["1", "0"], ["1"], steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        seq2seq.train_encoder_decoder(model, vocab, ["1"], ["1"], steps=0)
    with pytest.raises(TypeError, match="model must be EncoderDecoder, got Linear"):
        seq2seq.decode_and_score(nn.Linear(1, 1), vocab, ["1"], ["1"])


# ---------------------------------------------------------------- tasks and the shapes diagram


def test_reversal_pairs_are_seeded_and_reversed():
    sources, targets = tasks.reversal_pairs(50, 2, 5, seed=3)
    assert (sources, targets) == tasks.reversal_pairs(50, 2, 5, seed=3)
    assert all(t == s[::-1] and 2 <= len(s) <= 5 and s.isdigit() for s, t in zip(sources, targets))
    assert {len(s) for s in sources} == {2, 3, 4, 5}


def test_reversal_pairs_exclude():
    train, _ = tasks.reversal_pairs(60, 1, 2, seed=0)
    held_out, _ = tasks.reversal_pairs(20, 1, 2, seed=1, exclude=train)
    assert not set(held_out) & set(train)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=5, min_length=4, max_length=3), "max_length must be >= min_length"),
        (dict(n=200, min_length=1, max_length=2), "n must be at most 110"),
        (dict(n=0, min_length=1, max_length=2), "n must be >= 1"),
    ],
)
def test_reversal_pairs_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.reversal_pairs(**kwargs)


def test_random_crops_zero_the_tail():
    x = torch.ones(50, 6, 2)
    cropped, lengths = tasks.random_crops(x, 2, 5, seed=0)
    assert cropped.shape == x.shape and lengths.dtype == torch.int64
    assert lengths.min() >= 2 and lengths.max() <= 5
    assert torch.equal(cropped.sum(dim=(1, 2)), 2.0 * lengths)
    assert torch.equal(cropped[:, :, 0], seq2seq.length_mask(lengths, 6).float())
    torch.testing.assert_close(tasks.random_crops(x, 2, 5, seed=0)[1], lengths)


def test_random_crops_errors():
    with pytest.raises(ValueError, match=r"min_length <= max_length <= 6"):
        tasks.random_crops(torch.ones(2, 6, 1), 3, 7)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\)"):
        tasks.random_crops(torch.ones(2, 6), 1)


def test_waves_from_parameters():
    parameters, waves = tasks.waves_from_parameters(8, 30, seed=0)
    assert parameters.shape == (8, 3) and waves.shape == (8, 30)
    frequency = parameters[:, 0] / 10
    phase = torch.atan2(parameters[:, 2], parameters[:, 1])
    t = torch.arange(30.0)
    torch.testing.assert_close(waves, torch.sin(2 * torch.pi * frequency[:, None] * t + phase[:, None]),
                               atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="length must be >= 1"):
        tasks.waves_from_parameters(8, 0)


def test_draw_sequence_shapes_draws_four_panels():
    fig = plots.draw_sequence_shapes()
    titles = [t.get_text() for t in fig.axes[0].texts if "\u2192" in t.get_text()]
    assert titles == ["sequence \u2192 sequence", "sequence \u2192 vector",
                      "vector \u2192 sequence", "encoder \u2192 decoder"]
    matplotlib.pyplot.close(fig)
