"""Tests for book_utils.seq2seq and the Chapter 3 symbolic and cropping tasks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from book_utils import data, models, results, sequence_shapes, training
from book_utils.data import EOS, PAD, SOS

# ---------------------------------------------------------------- lengths and masks


def test_length_mask_marks_valid_steps():
    mask = data.length_mask(torch.tensor([2, 1, 3]), max_length=4)
    expected = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert data.length_mask(torch.tensor([2, 3])).shape == (2, 3)


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
        data.length_mask(lengths, max_length)


def test_last_valid_step_picks_each_sequence_last_output():
    outputs = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    last = sequence_shapes.last_valid_step(outputs, torch.tensor([2, 3]))
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
    torch.testing.assert_close(sequence_shapes.last_valid_step(full_outputs, lengths), h_n[0])


def test_last_valid_step_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"one length per sequence \(2\), got 3"):
        sequence_shapes.last_valid_step(torch.zeros(2, 3, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"outputs must have shape \(batch, time, hidden\)"):
        sequence_shapes.last_valid_step(torch.zeros(2, 3), torch.tensor([1, 2]))


def test_last_step_accuracy_scores_the_last_valid_step():
    logits = torch.zeros(3, 4, 5)
    logits[0, 1, 2] = logits[1, 3, 4] = logits[2, 0, 1] = 1.0   # last valid steps: 1, 3, 0
    logits[0, 3, 0] = 9.0                                         # padding: must not count
    lengths = torch.tensor([2, 4, 1])
    assert sequence_shapes.last_step_accuracy(logits, lengths, torch.tensor([2, 4, 1])) == 1.0
    assert sequence_shapes.last_step_accuracy(logits, lengths, torch.tensor([2, 4, 0])) == pytest.approx(2 / 3)


def test_last_step_accuracy_errors():
    with pytest.raises(ValueError, match=r"one label per sequence \(3\), got 2"):
        sequence_shapes.last_step_accuracy(torch.zeros(3, 4, 5), torch.tensor([1, 2, 3]),
                                           torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        sequence_shapes.last_step_accuracy(torch.zeros(3, 4, 5), torch.tensor([1, 2, 3]),
                                           torch.zeros(3))
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        sequence_shapes.last_step_accuracy(torch.zeros(3, 4, 5, dtype=torch.long),
                                           torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.long))


def test_cropped_batches_trim_repeat_labels_and_cover_every_sequence():
    x = torch.arange(5 * 4 * 2, dtype=torch.float32).view(5, 4, 2)
    lengths, y = torch.tensor([1, 3, 2, 4, 2]), torch.tensor([7, 8, 9, 0, 1])
    batches = sequence_shapes.CroppedBatches(x, lengths, y, batch_size=2)
    assert len(batches) == 3
    seen = []
    for (xb, lb), (yb, lb2) in batches:
        assert lb is lb2 and xb.shape == (len(lb), int(lb.max()), 2)
        assert yb.shape == xb.shape[:2] and (yb == yb[:, :1]).all()   # the label at every step
        seen += yb[:, 0].tolist()
    assert seen == y.tolist()                                       # fixed order without shuffle
    first = next(iter(batches))
    torch.testing.assert_close(first[0][0], x[:2, :3])


def test_cropped_batches_shuffle_is_seeded_and_fresh_each_pass():
    x, lengths, y = torch.zeros(6, 3, 1), torch.full((6,), 3), torch.arange(6)

    def labels(batches):
        return [yb[:, 0].tolist() for _, (yb, _) in batches]

    a = sequence_shapes.CroppedBatches(x, lengths, y, batch_size=6, shuffle=True, seed=1)
    b = sequence_shapes.CroppedBatches(x, lengths, y, batch_size=6, shuffle=True, seed=1)
    first, second = labels(a), labels(a)
    assert first == labels(b) and first != second
    assert sorted(first[0]) == list(range(6))


def test_cropped_batches_train_a_per_step_classifier_with_fit():
    torch.manual_seed(0)
    x, lengths = torch.randn(16, 5, 3), torch.randint(1, 6, (16,))
    y = (x[:, 0, 0] > 0).long()                      # readable from the first step
    model = sequence_shapes.PerStepClassifier(3, 8, 2)
    batches = sequence_shapes.CroppedBatches(x, lengths, y, batch_size=4, shuffle=True)
    history = training.fit(model, batches, epochs=30, optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
                           loss_fn=training.masked_cross_entropy, verbose=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": torch.zeros(4, 3)}, ValueError, r"x must have shape \(batch, time, features\)"),
        ({"lengths": torch.tensor([1, 2, 9, 1])}, ValueError, "must not exceed the 3 time steps"),
        ({"y": torch.zeros(4)}, TypeError, "y must be an integer tensor"),
        ({"y": torch.zeros(3, dtype=torch.long)}, ValueError, r"one label per sequence \(4\), got 3"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"shuffle": 1}, TypeError, "shuffle must be bool"),
    ],
)
def test_cropped_batches_errors(kwargs, error, match):
    args = {"x": torch.zeros(4, 3, 2), "lengths": torch.tensor([1, 2, 3, 1]),
            "y": torch.zeros(4, dtype=torch.long)} | kwargs
    with pytest.raises(error, match=match):
        sequence_shapes.CroppedBatches(args.pop("x"), args.pop("lengths"), args.pop("y"), **args)


def test_masked_mean_ignores_padding():
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    result = training.masked_mean(values, torch.tensor([2, 1]))
    torch.testing.assert_close(result, torch.tensor(2.0))
    # Extra trailing dimensions are averaged too.
    values3 = values[:, :, None].expand(-1, -1, 4)
    torch.testing.assert_close(training.masked_mean(values3, torch.tensor([2, 1])), torch.tensor(2.0))


def test_masked_mean_rejects_integer_values():
    with pytest.raises(TypeError, match="values must be a floating-point tensor"):
        training.masked_mean(torch.ones(2, 3, dtype=torch.long), torch.tensor([1, 2]))


def test_masked_cross_entropy_equals_cross_entropy_over_valid_steps():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 4, 5), torch.randint(0, 5, (3, 4))
    lengths = torch.tensor([4, 2, 1])
    valid = data.length_mask(lengths, 4)
    expected = F.cross_entropy(logits[valid], targets[valid])
    torch.testing.assert_close(training.masked_cross_entropy(logits, targets, lengths), expected)
    # Changing targets in the padding changes nothing.
    targets[1, 3] = (targets[1, 3] + 1) % 5
    torch.testing.assert_close(training.masked_cross_entropy(logits, targets, lengths), expected)


def test_masked_cross_entropy_checks_shapes():
    with pytest.raises(ValueError, match=r"targets must have shape \(batch, time\) = \(3, 4\), got \(3, 5\)"):
        training.masked_cross_entropy(torch.zeros(3, 4, 5), torch.zeros(3, 5, dtype=torch.long),
                                     torch.tensor([1, 1, 1]))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        training.masked_cross_entropy(torch.zeros(3, 4, 5), torch.zeros(3, 4), torch.tensor([1, 1, 1]))


# ---------------------------------------------------------------- models with sequence outputs


def test_per_step_classifier_equals_each_sequence_alone():
    torch.manual_seed(0)
    model = sequence_shapes.PerStepClassifier(3, 6, 4)
    x, lengths = torch.randn(4, 5, 3), torch.tensor([5, 2, 4, 1])
    x_padded = x * data.length_mask(lengths, 5)[:, :, None]
    logits = model(x_padded, lengths)
    assert logits.shape == (4, 5, 4)
    for b in range(4):
        alone, _ = model.gru(x[b : b + 1, : lengths[b]])
        torch.testing.assert_close(logits[b, : lengths[b]], model.head(alone)[0])


def test_per_step_classifier_validates_input():
    model = sequence_shapes.PerStepClassifier(3, 6, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\), got \(4, 5\)"):
        model(torch.zeros(4, 5), torch.tensor([1, 1, 1, 1]))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        sequence_shapes.PerStepClassifier(3, 6, 1)


def test_vector_to_sequence_shapes_and_state():
    torch.manual_seed(0)
    model = sequence_shapes.VectorToSequence(3, 8, 2, steps=7)
    v = torch.randn(5, 3)
    y = model(v)
    assert y.shape == (5, 7, 2)
    # h_{-1} = tanh(v A + a) is the state before step 0; y_0 is read from h_0, one GRU step later.
    h_before = torch.tanh(model.initial_state(v))
    cell = nn.GRUCell(3, 8)
    cell.load_state_dict({k.replace("_l0", ""): p for k, p in model.gru.state_dict().items()})
    h = h_before
    for t in range(7):  # h_t = GRU(v, h_{t-1}) and y_t = h_t w + c at every step
        h = cell(v, h)
        torch.testing.assert_close(y[:, t], model.head(h))
    assert not torch.allclose(y[:, 0], model.head(h_before))


def test_vector_to_sequence_validates_input():
    model = sequence_shapes.VectorToSequence(3, 8, 1, steps=4)
    with pytest.raises(ValueError, match=r"v must have 3 features, got shape \(2, 4\)"):
        model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        sequence_shapes.VectorToSequence(3, 8, 1, steps=0)


# ---------------------------------------------------------------- vocabulary and encoder-decoder


def test_vocabulary_round_trip():
    vocab = data.Vocabulary("0123456789")
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
        data.Vocabulary().encode(texts)


def test_vocabulary_rejects_repeats_and_bad_ids():
    with pytest.raises(ValueError, match="must not repeat a character"):
        data.Vocabulary("0120")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 12\]"):
        data.Vocabulary().decode(torch.tensor([[13]]))


def test_shift_right_prepends_start_token():
    targets = torch.tensor([[4, 5, EOS], [6, EOS, PAD]])
    assert torch.equal(models.shift_right(targets), torch.tensor([[SOS, 4, 5], [SOS, 6, EOS]]))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        models.shift_right(targets.float())


def test_encoder_decoder_teacher_forcing_equals_step_by_step_decoding():
    torch.manual_seed(0)
    vocab = data.Vocabulary()
    model = models.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=16)
    source, lengths = vocab.encode(["123", "45"])
    targets, _ = vocab.encode(["321", "54"], add_eos=True)
    logits = model(source, lengths, models.shift_right(targets))
    assert logits.shape == (2, 4, len(vocab))
    # The encoder's summary is each source alone.
    state = model.encode(source, lengths)
    for b in range(2):
        alone, _ = model.encoder(model.embed(source[b : b + 1, : lengths[b]]))
        torch.testing.assert_close(state[0, b], alone[0, -1])
    # Feeding the true tokens one at a time gives the same logits.
    inputs = models.shift_right(targets)
    for t in range(inputs.shape[1]):
        out, state = model.decoder(model.embed(inputs[:, t : t + 1]), state)
        torch.testing.assert_close(model.head(out)[:, 0], logits[:, t])


def test_greedy_decode_feeds_back_its_own_argmax():
    torch.manual_seed(1)
    vocab = data.Vocabulary()
    model = models.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=16)
    source, lengths = vocab.encode(["123", "4567"])
    produced = model.greedy_decode(source, lengths, max_steps=5)
    assert produced.shape[0] == 2 and 1 <= produced.shape[1] <= 5
    # Teacher-forcing the model's own output reproduces its argmax choices until the end token.
    logits = model(source, lengths, models.shift_right(produced))
    for b in range(2):
        row = produced[b].tolist()
        stop = row.index(EOS) + 1 if EOS in row else len(row)
        assert logits[b, :stop].argmax(-1).tolist() == row[:stop]
        assert all(t == PAD for t in row[stop:])


def test_encoder_decoder_rejects_bad_ids():
    model = models.EncoderDecoder(13, 4, 8)
    with pytest.raises(ValueError, match=r"source must hold ids in \[0, 12\]"):
        model.encode(torch.tensor([[13]]), torch.tensor([1]))
    with pytest.raises(ValueError, match="vocab_size must be >= 4"):
        models.EncoderDecoder(3)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        model.greedy_decode(torch.tensor([[4]]), torch.tensor([1]), max_steps=0)


def test_exact_match():
    assert models.exact_match(["12", "3", "45"], ["12", "4", "45"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same length, got 1 and 2"):
        models.exact_match(["1"], ["1", "2"])
    with pytest.raises(TypeError, match="predicted must be a list of strings"):
        models.exact_match("12", ["12"])


def test_encoder_decoder_learns_to_reverse_short_strings():
    torch.manual_seed(0)
    vocab = data.Vocabulary("0123")
    sources = ["".join(str(d) for d in torch.randint(0, 4, (3,)).tolist()) for _ in range(256)]
    targets = [s[::-1] for s in sources]
    model = models.EncoderDecoder(len(vocab), embedding_size=8, hidden_size=32)
    history = models.train_encoder_decoder(model, vocab, sources, targets, steps=150, lr=0.02,
                                            batch_size=64)
    assert len(history["step_loss"]) == 150 and history["step_loss"][-1] < history["step_loss"][0]
    accuracy, predicted = models.decode_and_score(model, vocab, sources, targets)
    assert len(predicted) == 256
    assert accuracy == models.exact_match(predicted, targets) > 0.9


def test_train_encoder_decoder_errors():
    vocab = data.Vocabulary("01")
    model = models.EncoderDecoder(len(vocab), 4, 8)
    with pytest.raises(ValueError, match="vocab has 13 tokens but the model expects 5"):
        models.train_encoder_decoder(model, data.Vocabulary(), ["1"], ["1"], steps=1)
    with pytest.raises(ValueError, match="sources and targets must pair up, got 2 and 1"):
        models.train_encoder_decoder(model, vocab, ["1", "0"], ["1"], steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        models.train_encoder_decoder(model, vocab, ["1"], ["1"], steps=0)
    with pytest.raises(TypeError, match="model must be EncoderDecoder, got Linear"):
        models.decode_and_score(nn.Linear(1, 1), vocab, ["1"], ["1"])


# ---------------------------------------------------------------- tasks and the shapes diagram


def test_reversal_pairs_are_seeded_and_reversed():
    sources, targets = data.reversal_pairs(50, 2, 5, seed=3)
    assert (sources, targets) == data.reversal_pairs(50, 2, 5, seed=3)
    assert all(t == s[::-1] and 2 <= len(s) <= 5 and s.isdigit() for s, t in zip(sources, targets))
    assert {len(s) for s in sources} == {2, 3, 4, 5}


def test_reversal_pairs_exclude():
    train, _ = data.reversal_pairs(60, 1, 2, seed=0)
    held_out, _ = data.reversal_pairs(20, 1, 2, seed=1, exclude=train)
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
        data.reversal_pairs(**kwargs)


def test_random_crops_zero_the_tail():
    x = torch.ones(50, 6, 2)
    cropped, lengths = sequence_shapes.random_crops(x, 2, 5, seed=0)
    assert cropped.shape == x.shape and lengths.dtype == torch.int64
    assert lengths.min() >= 2 and lengths.max() <= 5
    assert torch.equal(cropped.sum(dim=(1, 2)), 2.0 * lengths)
    assert torch.equal(cropped[:, :, 0], data.length_mask(lengths, 6).float())
    torch.testing.assert_close(sequence_shapes.random_crops(x, 2, 5, seed=0)[1], lengths)


def test_random_crops_errors():
    with pytest.raises(ValueError, match=r"min_length <= max_length <= 6"):
        sequence_shapes.random_crops(torch.ones(2, 6, 1), 3, 7)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\)"):
        sequence_shapes.random_crops(torch.ones(2, 6), 1)


def test_waves_from_parameters():
    parameters, waves = sequence_shapes.waves_from_parameters(8, 30, seed=0)
    assert parameters.shape == (8, 3) and waves.shape == (8, 30)
    frequency = parameters[:, 0] / 10
    phase = torch.atan2(parameters[:, 2], parameters[:, 1])
    t = torch.arange(30.0)
    torch.testing.assert_close(waves, torch.sin(2 * torch.pi * frequency[:, None] * t + phase[:, None]),
                               atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="length must be >= 1"):
        sequence_shapes.waves_from_parameters(8, 0)


def test_draw_sequence_shapes_draws_four_panels():
    fig = sequence_shapes.draw_sequence_shapes()
    titles = [t.get_text() for t in fig.axes[0].texts if "\u2192" in t.get_text()]
    assert titles == ["sequence \u2192 sequence", "sequence \u2192 vector",
                      "vector \u2192 sequence", "encoder \u2192 decoder"]
    matplotlib.pyplot.close(fig)


def test_draw_sequence_shapes_labels_match_the_chapter_equations():
    fig = sequence_shapes.draw_sequence_shapes()
    labels = [t.get_text() for t in fig.axes[0].texts]
    matplotlib.pyplot.close(fig)
    # Vector to sequence: v sets h_{-1} and is read at all five steps drawn (h_{-1}, h_0..h_3).
    assert labels.count("$v$") == 5 and labels.count("$h_{-1}$") == 1
    assert "tanh layer" in labels  # v sets h_{-1} through a layer, not a recurrent step
    # Encoder-decoder: source u_i, the summary s handed over, start token y_{-1} read first.
    for label in ("$u_{0}$", "$u_{2}$", "$s$", "$y_{-1}$", "$y_{3}$", "$d_{0}$", "$e_{2}$"):
        assert label in labels, label
    assert "$d_{-1}$" not in labels  # d_{-1} is s, drawn once as the hand-over
    assert not any(label.startswith(("$a_", "$b_")) for label in labels)  # the old token names


# Forecasting (chapter 3's first section)


def test_noisy_sines_shapes_seed_and_noise():
    noisy, clean = sequence_shapes.noisy_sines(200, 50, components=3, noise=0.1, seed=4)
    assert noisy.shape == clean.shape == (200, 50)
    assert torch.equal(noisy, sequence_shapes.noisy_sines(200, 50, components=3, noise=0.1, seed=4)[0])
    assert clean.abs().max() <= 1.0
    assert (noisy - clean).std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(*sequence_shapes.noisy_sines(3, 10, noise=0.0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n=2, length=1), ValueError, "length must be >= 2"),
        (dict(n=2, length=5, noise=-0.1), ValueError, "noise must be >= 0.0"),
        (dict(n=2, length=5, components=1.5), TypeError, "components must be an int"),
    ],
)
def test_noisy_sines_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        sequence_shapes.noisy_sines(**kwargs)


def test_horizon_targets_are_the_next_values():
    series = torch.arange(2 * 7, dtype=torch.float32).view(2, 7)
    inputs, targets = sequence_shapes.horizon_targets(series, 3)
    assert inputs.shape == (2, 4, 1) and targets.shape == (2, 4, 3)
    assert torch.equal(inputs[1, :, 0], series[1, :4])
    assert torch.equal(targets[1, 2], series[1, 3:6])
    assert torch.equal(targets[0, -1], series[0, 4:7])


def test_horizon_targets_errors():
    with pytest.raises(ValueError, match=r"series must have at least 4 time steps, got shape \(2, 3\)"):
        sequence_shapes.horizon_targets(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match=r"series must have shape \(batch, time\)"):
        sequence_shapes.horizon_targets(torch.zeros(2, 3, 1), 1)


def test_naive_forecast_repeats_last_value():
    context = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, -1.0]])
    assert torch.equal(sequence_shapes.naive_forecast(context, 2), torch.tensor([[3.0, 3.0], [-1.0, -1.0]]))
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        sequence_shapes.naive_forecast(context, 0)


def test_linear_forecaster_recovers_a_linear_recurrence():
    # A pure sine obeys x_{t+1} = 2 cos(w) x_t - x_{t-1}: a window of 2 predicts it exactly.
    w = 2 * math.pi * 0.05
    t = torch.arange(40, dtype=torch.float64)
    series = torch.stack([torch.sin(w * t + p) for p in (0.0, 1.0, 2.0)])
    model = sequence_shapes.LinearForecaster(window=2, horizon=1).to(torch.float64).fit(series)
    expected = torch.tensor([-1.0, 2 * math.cos(w), 0.0], dtype=torch.float64)
    torch.testing.assert_close(model.weight[:, 0], expected, atol=1e-4, rtol=0)
    predictions = model(series[:, :-1])
    assert predictions.shape == (3, 38, 1)
    torch.testing.assert_close(predictions[..., 0], series[:, 2:], atol=1e-4, rtol=0)
    torch.testing.assert_close(model.forecast(series[:, :10]), series[:, 10:11], atol=1e-4, rtol=0)


def test_linear_forecaster_direct_horizon():
    w = 2 * math.pi * 0.03
    t = torch.arange(60, dtype=torch.float64)
    series = torch.stack([torch.sin(w * t + p) for p in (0.0, 0.5)])
    # Windows of 4 values of one sine are linearly dependent; the ridge term keeps the fit unique.
    model = sequence_shapes.LinearForecaster(window=4, horizon=5).to(torch.float64).fit(series)
    torch.testing.assert_close(model.forecast(series[:, :30]), series[:, 30:35], atol=1e-4, rtol=0)


def test_linear_forecaster_errors():
    with pytest.raises(ValueError, match="window must be >= 1"):
        sequence_shapes.LinearForecaster(0)
    with pytest.raises(ValueError, match="ridge must be >= 0.0"):
        sequence_shapes.LinearForecaster(3, ridge=-1.0)
    model = sequence_shapes.LinearForecaster(window=5, horizon=3)
    with pytest.raises(ValueError, match=r"series must have at least 8 time steps"):
        model.fit(torch.zeros(4, 7))
    with pytest.raises(ValueError, match=r"series must have at least 5 time steps"):
        model(torch.zeros(4, 4))


def test_recurrent_forecaster_shapes():
    model = sequence_shapes.RecurrentForecaster(hidden_size=8, horizon=4)
    predictions, h_n = model(torch.randn(3, 10, 1))
    assert predictions.shape == (3, 10, 4) and h_n.shape == (1, 3, 8)
    assert model.forecast(torch.randn(3, 10)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"x must have one feature per step, got shape \(3, 10, 2\)"):
        model(torch.randn(3, 10, 2))


def test_rollout_feeds_predictions_back():
    torch.manual_seed(0)
    model = sequence_shapes.RecurrentForecaster(hidden_size=8, horizon=1)
    context = torch.randn(2, 6)
    rolled = model.rollout(context, 4)
    assert rolled.shape == (2, 4)
    # Rerunning the model on the context extended by its own forecasts gives the same values.
    extended = context
    for k in range(4):
        next_value = model(extended[:, :, None])[0][:, -1, 0]
        torch.testing.assert_close(next_value, rolled[:, k])
        extended = torch.cat([extended, next_value[:, None]], dim=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        model.rollout(context, 0)


def test_trained_forecaster_beats_naive():
    torch.manual_seed(0)
    train, _ = sequence_shapes.noisy_sines(128, 40, noise=0.05, seed=0)
    test, _ = sequence_shapes.noisy_sines(64, 40, noise=0.05, seed=1)
    model = sequence_shapes.RecurrentForecaster(hidden_size=16, horizon=1)
    history = sequence_shapes.train_forecaster(model, train, steps=150, lr=0.02, batch_size=32)
    assert len(history["step_loss"]) == 150 and len(history["seconds"]) == 1
    assert not model.training
    context, future = test[:, :35], test[:, 35:]
    model_error = ((model.rollout(context, 5) - future) ** 2).mean()
    naive_error = ((sequence_shapes.naive_forecast(context, 5) - future) ** 2).mean()
    assert model_error < naive_error


def test_train_forecaster_errors():
    model = sequence_shapes.RecurrentForecaster(hidden_size=4, horizon=3)
    with pytest.raises(TypeError, match="model must be RecurrentForecaster, got Linear"):
        sequence_shapes.train_forecaster(torch.nn.Linear(1, 1), torch.zeros(2, 8), steps=1)
    with pytest.raises(ValueError, match="lr must be > 0.0"):
        sequence_shapes.train_forecaster(model, torch.zeros(2, 8), steps=1, lr=0.0)
    with pytest.raises(ValueError, match=r"series must have at least 4 time steps"):
        sequence_shapes.train_forecaster(model, torch.zeros(2, 3), steps=1)


def test_reversal_pairs_exclude_must_be_a_collection_of_strings():
    with pytest.raises(TypeError, match="exclude must be a collection of strings .*got str"):
        data.reversal_pairs(3, 2, 4, exclude="12")
    with pytest.raises(TypeError, match="exclude must be a collection of strings .*got NoneType"):
        data.reversal_pairs(3, 2, 4, exclude=None)
    with pytest.raises(TypeError, match="exclude must hold strings only, got a int"):
        data.reversal_pairs(3, 2, 4, exclude=[12])
    assert data.reversal_pairs(3, 2, 4, exclude={"12"}) == data.reversal_pairs(3, 2, 4, exclude=["12"])


def test_forecasters_check_state_and_dtype():
    model = sequence_shapes.RecurrentForecaster(hidden_size=4, horizon=2)
    x = torch.randn(2, 6, 1)
    with pytest.raises(ValueError, match=r"h0 must have shape \(layers, batch, hidden\) = \(1, 2, 4\), "
                                         r"got \(1, 3, 4\)"):
        model(x, torch.zeros(1, 3, 4))
    with pytest.raises(TypeError, match="h0 must have the dtype of the RecurrentForecaster's weights"):
        model(x, torch.zeros(1, 2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must have the dtype of the RecurrentForecaster's weights"):
        model(x.double())
    with pytest.raises(TypeError, match="context must have the dtype"):
        model.rollout(torch.randn(2, 6, dtype=torch.float64), 3)
    with pytest.raises(TypeError, match="series must have the dtype"):
        sequence_shapes.train_forecaster(model, torch.randn(2, 8, dtype=torch.float64), steps=1)
    with pytest.raises(ValueError, match=r"series must not be empty .*got shape \(0, 8\)"):
        sequence_shapes.train_forecaster(model, torch.randn(0, 8), steps=1)
    outputs, state = model(x)
    assert model(x, state)[0].shape == (2, 6, 2)


def test_linear_forecaster_follows_the_series_precision():
    series = torch.randn(4, 12)
    model = sequence_shapes.LinearForecaster(3, 2).fit(series)
    single = model(series)
    double = model(series.double())
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), single)
    with pytest.raises(ValueError, match=r"context must have at least 3 time steps, got shape \(4, 2\)"):
        model.forecast(series[:, :2])
    with pytest.raises(ValueError, match=r"series must not be empty .*got shape \(0, 12\)"):
        model.fit(series[:0])


def test_per_step_models_name_their_input():
    model = sequence_shapes.PerStepClassifier(3, 4, 2)
    lengths = torch.tensor([5, 2])
    with pytest.raises(TypeError, match="x must have the dtype of the PerStepClassifier's weights"):
        model(torch.randn(2, 5, 3, dtype=torch.float64), lengths)
    with pytest.raises(ValueError, match=r"x must not be empty .*got shape \(0, 5, 3\)"):
        model(torch.randn(0, 5, 3), lengths)
    with pytest.raises(ValueError, match=r"lengths must hold one length per sequence of x \(1 in all\)"):
        model(torch.randn(1, 5, 3), lengths)
    generator = sequence_shapes.VectorToSequence(np.int64(3), 4, 2, 5)   # numpy sizes work
    with pytest.raises(TypeError, match="v must have the dtype of the VectorToSequence's weights"):
        generator(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="outputs must be a floating-point tensor, got dtype torch.int64"):
        sequence_shapes.last_valid_step(torch.zeros(2, 3, 4, dtype=torch.long), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"values must not be empty"):
        training.masked_mean(torch.zeros(0, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"lengths must hold one length per sequence of values \(1 in all\)"):
        training.masked_mean(torch.zeros(1, 2, 3), torch.tensor([1, 2]))


# ---------------------------------------------------------------- held-out reversals by length


def test_reversal_pairs_by_length_balances_lengths_and_excludes_training_strings():
    train, _ = data.reversal_pairs(3000, 2, 4, seed=0)
    sources, targets = sequence_shapes.reversal_pairs_by_length(50, 2, 4, exclude=train, seed=1)
    counts = {n: sum(len(s) == n for s in sources) for n in (2, 3, 4)}
    unseen_two = 100 - len({s for s in train if len(s) == 2})
    assert counts == {2: unseen_two, 3: 50, 4: 50}       # all unseen 2-digit strings, 50 of the rest
    assert unseen_two < 50
    assert len(set(sources)) == len(sources) and not set(sources) & set(train)
    assert targets == [s[::-1] for s in sources]
    assert [len(s) for s in sources] == sorted(len(s) for s in sources)
    again = sequence_shapes.reversal_pairs_by_length(50, 2, 4, exclude=train, seed=1)
    assert again == (sources, targets)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(per_length=0), ValueError, "per_length must be >= 1, got 0"),
    (dict(min_length=0), ValueError, "min_length must be >= 1, got 0"),
    (dict(max_length=1, min_length=2), ValueError, r"max_length must be >= min_length \(2\), got 1"),
    (dict(exclude="123"), TypeError, "exclude must be a collection of strings .* got str"),
    (dict(seed=-1), ValueError, "seed must be >= 0, got -1"),
    (dict(per_length=2.0), TypeError, "per_length must be an int, got float"),
])
def test_reversal_pairs_by_length_errors(kwargs, error, match):
    arguments = {"per_length": 5, "min_length": 2, "max_length": 3, **kwargs}
    with pytest.raises(error, match=match):
        sequence_shapes.reversal_pairs_by_length(
            arguments.pop("per_length"), arguments.pop("min_length"),
            arguments.pop("max_length"), **arguments)


def test_forecast_recipe_names_every_choice_the_chapter_reads():
    recipe = sequence_shapes.FORECAST_RECIPE
    assert set(recipe) == {"steps", "hidden_size", "lr_one_step", "lr_direct",
                           "window_one_step", "window_direct"}
    assert recipe["window_one_step"] <= 32  # the chapter scores the predictions of x_32 on
    assert recipe["window_direct"] <= 50    # the context before the 10 forecast values


# ---------------------------------------------------------------- the recipes and their searches


def _benchmark():
    """benchmarks/sequence_shapes.py as a module, for its grids and its MLP control's recipe."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "sequence_shapes.py"
    spec = importlib.util.spec_from_file_location("sequence_shapes_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _search_means(name: str, keys: list[str]) -> pd.DataFrame:
    rows = [r for r in results.load(name)["rows"] if r["role"] == "selection"]
    return pd.DataFrame(rows).groupby(["model", *keys], dropna=False)["value"].agg(["mean", "count"])


def test_forecast_recipe_is_the_best_of_its_saved_search():
    bench = _benchmark()
    means = _search_means("sequence_shapes_forecast", ["setting"])["mean"]
    best = {model: group.idxmin()[1] for model, group in means.groupby(level="model")}
    recipe = sequence_shapes.FORECAST_RECIPE
    assert best == {"linear, one step": recipe["window_one_step"],
                    "linear, direct": recipe["window_direct"],
                    "GRU, one step": recipe["lr_one_step"],
                    "GRU, vector of 10": recipe["lr_direct"], "MLP, one step": bench.MLP["lr"],
                    "MLP, vector of 10": bench.MLP_DIRECT["lr"]}
    # every candidate ran with every selection seed, and none of them reports evidence
    learned = [m for m in best if not m.startswith("linear")]
    counts = _search_means("sequence_shapes_forecast", ["setting"])["count"]
    assert (counts.loc[learned] == len(bench.SELECTION_SEEDS)).all()
    evidence = {r["seed"] for r in results.load("sequence_shapes_forecast")["rows"]
                if r["role"] == "evidence"}
    assert not evidence & set(bench.SELECTION_SEEDS)


def test_mnist_recipes_are_the_best_of_their_saved_search():
    bench = _benchmark()
    rows = [r for r in results.load("sequence_shapes_mnist")["rows"] if r["role"] == "selection"]
    logistic = pd.DataFrame([r for r in rows if r.get("l2") is not None])
    logistic = logistic.groupby("l2")["value"].mean()
    assert logistic.idxmax() == bench.LOGISTIC["l2"]
    assert sorted(logistic.index) == sorted(bench.LOGISTIC_L2_GRID)
    table = pd.DataFrame([r for r in rows if r.get("l2") is None]).groupby(
        ["model", "epochs", "lr", "max_shift"], dropna=False)["value"].agg(["mean", "count"])
    for model, recipe, grid in [("GRU digit classifier", sequence_shapes.CLASSIFIER_RECIPE,
                                 bench.CLASSIFIER_GRID),
                                ("GRU per-row classifier", sequence_shapes.TAGGER_RECIPE,
                                 bench.TAGGER_GRID)]:
        runs = table.loc[model]
        epochs, lr, shift = runs["mean"].idxmax()
        chosen = {"epochs": epochs, "lr": lr, "max_shift": shift}
        assert {k: chosen[k] for k in recipe} == recipe
        assert len(runs) == math.prod(len(v) for v in grid.values())
        assert (runs["count"] == len(bench.SELECTION_SEEDS)).all()


def test_the_chapter_counts_the_benchmark_mlps_it_describes():
    # The chapter types the MLP controls' parameter counts (32-100-1 and 48-62-10); they
    # must match the benchmark's recipes and the GRUs they are matched with.
    bench = _benchmark()
    one = torch.nn.Sequential(torch.nn.Linear(bench.MLP["window"], bench.MLP["hidden"]),
                              torch.nn.ReLU(), torch.nn.Linear(bench.MLP["hidden"], 1))
    ten = torch.nn.Sequential(
        torch.nn.Linear(bench.MLP_DIRECT["window"], bench.MLP_DIRECT["hidden"]),
        torch.nn.ReLU(), torch.nn.Linear(bench.MLP_DIRECT["hidden"], bench.HORIZON))
    assert models.count_parameters(one) == 32 * 100 + 100 + 100 + 1 == 3401
    assert models.count_parameters(ten) == 48 * 62 + 62 + 62 * 10 + 10 == 3668
    assert bench.MLP_DIRECT["window"] == sequence_shapes.FORECAST_RECIPE["window_direct"]
