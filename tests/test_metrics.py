"""Numbers that cannot lie: the ten examples of issue 19, one test each, and the size limits.

Each example was found by an outside audit: a metric that scored a diverged model, a loss
that padding turned into NaN, an object of the wrong kind accepted, a framework error where
ours belongs, a size that hung. Every test here asserts the value or the message we give now.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from book_utils import (
    _checks, attention_and_scans as scans, bptt, data, language_model as lm, memory_cells, models,
    sequence_shapes as shapes, session, text, training,
)

NAN, INF = float("nan"), float("inf")


def _classifier(features: int = 3, hidden: int = 4, classes: int = 2) -> models.SequenceClassifier:
    torch.manual_seed(0)
    return models.make_classifier("rnn", features, hidden, classes)


# ---------------------------------------------------------------- 1. a diverged model scores


def test_example_01_accuracies_refuse_non_finite_scores_and_labels_out_of_range():
    nan_logits = torch.full((2, 3, 4), NAN)
    with pytest.raises(ValueError, match="logits must hold finite scores .* got NaN or inf"):
        shapes.last_step_accuracy(nan_logits, torch.tensor([3, 2]), torch.tensor([0, 0]))
    logits = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\], got values "
                                         r"from 0 to 7"):
        shapes.last_step_accuracy(logits, torch.tensor([3, 2]), torch.tensor([0, 7]))
    tagger = bptt.make_step_classifier("rnn", 2, 4, 2)
    x, y = bptt.echo_stream(2, 6, lag=1)
    x[0, 2, 0] = NAN
    with pytest.raises(ValueError, match="x must hold finite numbers, got NaN or inf"):
        bptt.stream_accuracy(tagger, x, y)
    states, labels = torch.randn(8, 3, 4), torch.arange(8) % 2
    with pytest.raises(ValueError, match="train_states must hold finite numbers"):
        memory_cells.linear_probe_accuracy(states.masked_fill(states > 1, NAN), labels,
                                           states[:4], labels[:4])


def test_example_01_a_diverged_model_is_never_scored():
    model = _classifier()
    with torch.no_grad():
        model.head.bias.fill_(NAN)                      # every score is NaN
    loader = [(torch.randn(4, 5, 3), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(FloatingPointError, match="not finite .* on batch 0 of loader"):
        training.evaluate(model, loader)
    # Shown on purpose (allow_nonfinite): the NaN rows count as wrong, never as right.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = training.fit(model, loader, epochs=1, optimizer=optimizer, val_loader=loader,
                           allow_nonfinite=True, verbose=False)
    assert history["train_accuracy"] == [0.0] and history["val_accuracy"] == [0.0]


# ---------------------------------------------------------------- 2. NaN or inf in the padding


@pytest.mark.parametrize("poison", [NAN, INF])
def test_example_02_padding_counts_for_nothing_even_when_it_holds_nan_or_inf(poison):
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 4, 5), torch.randint(0, 5, (3, 4))
    lengths = torch.tensor([4, 2, 1])
    valid = data.length_mask(lengths, 4)
    clean_loss = training.masked_cross_entropy(logits, targets, lengths)
    clean_mean = training.masked_mean(logits, lengths)
    poisoned = logits.masked_fill(~valid[:, :, None], poison)
    wild_targets = targets.masked_fill(~valid, 99)      # out of range, but in the padding
    assert training.masked_cross_entropy(poisoned, wild_targets, lengths) == clean_loss
    assert training.masked_mean(poisoned, lengths) == clean_mean
    torch.testing.assert_close(clean_loss, F.cross_entropy(logits[valid], targets[valid]))
    torch.testing.assert_close(clean_mean, logits[valid].mean())
    with pytest.raises(ValueError, match="logits must hold finite scores at the valid steps"):
        training.masked_cross_entropy(logits.masked_fill(valid[:, :, None], poison), targets,
                                      lengths)
    with pytest.raises(ValueError, match="values must hold finite numbers at the valid steps"):
        training.masked_mean(logits.masked_fill(valid[:, :, None], poison), lengths)


def test_example_02_a_masked_loss_trains_through_nan_padding():
    """The gradient of a selected mean never reaches the padding, so NaN there is harmless."""
    logits = torch.randn(2, 3, 4).masked_fill(torch.tensor([[False] * 3, [False, True, True]])
                                              [:, :, None], NAN).requires_grad_()
    loss = training.masked_cross_entropy(logits, torch.zeros(2, 3, dtype=torch.long),
                                         torch.tensor([3, 1]))
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(logits.grad).all())
    assert bool((logits.grad[1, 1:] == 0).all())


# ---------------------------------------------------------------- 3. objects of the wrong kind


def test_example_03_sequence_classifier_refuses_a_linear_layer_and_a_wrong_width():
    with pytest.raises(TypeError, match="recurrent must be a recurrent layer called like "
                                        r"nn.RNN\(batch_first=True\).* got Linear"):
        models.SequenceClassifier(nn.Linear(3, 4), 4, 3)
    with pytest.raises(ValueError, match="hidden_size must be the width of recurrent's outputs, "
                                         "4 for this RNN, got 5"):
        models.SequenceClassifier(nn.RNN(3, 4, batch_first=True), hidden_size=5, n_classes=3)
    with pytest.raises(TypeError, match="one-step cell RNNCell"):
        models.SequenceRegressor(nn.RNNCell(3, 4), 4)
    both_ways = nn.GRU(3, 4, batch_first=True, bidirectional=True)
    assert models.SequenceClassifier(both_ways, 8, 3)(torch.randn(2, 5, 3)).shape == (2, 3)


# ---------------------------------------------------------------- 4. None is no string


def test_example_04_exact_match_refuses_none():
    with pytest.raises(TypeError, match="predicted must hold strings only, got a NoneType"):
        models.exact_match([None], [None])
    with pytest.raises(TypeError, match="expected must hold strings only, got a NoneType"):
        models.exact_match(["1"], [None])
    assert models.exact_match(["12", "3"], ["12", "4"]) == 0.5


# ---------------------------------------------------------------- 5. characters the model cannot score


def test_example_05_ngram_bits_per_char_refuses_characters_outside_the_vocabulary():
    vocab = text.CharVocabulary("ab c.")
    model = lm.NGramModel("ab ca. ba cab. " * 4, 2, vocab)
    with pytest.raises(ValueError, match=r"text must hold characters of the model's vocabulary "
                                         r"only, got 1 others: \['é'\]"):
        model.bits_per_char("ééé")
    assert 0 < model.bits_per_char("ab ca.") < 3
    # An unknown character in a history is an unseen context: the model backs off.
    assert model.distribution("zz").sum().item() == pytest.approx(1.0)


# ---------------------------------------------------------------- 6. another model's optimizer


def test_example_06_update_refuses_another_models_optimizer_and_a_loss_it_cannot_change():
    model, other = nn.Linear(2, 1), nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(3, 2)).pow(2).mean()
    with pytest.raises(ValueError, match="optimizer must hold the model's parameters"):
        training.update(model, loss, torch.optim.SGD(other.parameters(), lr=0.1))
    foreign = other(torch.randn(3, 2)).pow(2).mean()
    with pytest.raises(ValueError, match="loss must be computed from the parameters optimizer "
                                         "updates, got a loss that none of them affects"):
        training.update(model, foreign, torch.optim.SGD(model.parameters(), lr=0.1))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert training.update(model, loss, torch.optim.SGD(model.parameters(), lr=0.1)) > 0


# ---------------------------------------------------------------- 7. ids and labels out of range


def test_example_07_ids_and_labels_out_of_range_get_our_errors():
    logits, lengths = torch.randn(2, 3, 5), torch.tensor([3, 2])
    with pytest.raises(ValueError, match=r"targets must hold class indices in \[0, 4\] at the "
                                         r"valid steps, got values from 0 to 5"):
        training.masked_cross_entropy(logits, torch.tensor([[0, 1, 5], [2, 3, 0]]), lengths)
    model = scans.CharModel("gru", 6, 3, 4)
    with pytest.raises(ValueError, match=r"x must hold character ids in \[0, 5\], got values "
                                         r"from 0 to 6"):
        model(torch.tensor([[0, 1, 6]]))
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 1\], one of the 2 "
                                         r"columns of probs, got values from 0 to 2"):
        bptt.BPTTCache(torch.randn(2, 3, 3), torch.randn(2, 4, 4), torch.rand(2, 2),
                       torch.tensor([0, 2]))


# ---------------------------------------------------------------- 8. batches that do not fit


def test_example_08_fit_and_evaluate_name_mismatched_batches_and_a_stateless_model():
    model = _classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    uneven = [(torch.randn(4, 5, 3), torch.zeros(3, dtype=torch.long))]
    with pytest.raises(ValueError, match=r"batches must yield batches whose inputs and targets "
                                         r"have one row per example, got x \(4, 5, 3\) and y "
                                         r"\(3,\) in batch 0"):
        training.fit(model, uneven, epochs=1, optimizer=optimizer, verbose=False)
    with pytest.raises(ValueError, match=r"loader must yield .* got x \(4, 5, 3\) and y \(3,\)"):
        training.evaluate(model, uneven)
    even = [(torch.randn(4, 5, 3), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(TypeError, match=r"state='carry' calls model\(x, state\) .* model must "
                                        r"take a state, got a SequenceClassifier"):
        training.fit(model, even, epochs=1, optimizer=optimizer, state="carry", verbose=False)
    with pytest.raises(TypeError, match="state='reset' .* model must take a state"):
        training.evaluate(model, even, state="reset")
    with pytest.raises(TypeError, match=r"loader must yield \(x, y\) pairs, got NoneType as "
                                        r"batch 0"):
        training.evaluate(model, [None])
    # torch's own error from a later batch is ours too, and names the batch.
    later = even + [(torch.randn(4, 5, 3), torch.zeros(4))]   # float targets: probabilities
    with pytest.raises(ValueError, match="got a SequenceClassifier that fails on batch 1"):
        training.evaluate(model, later)


# ---------------------------------------------------------------- 9. sizes and values past a limit


def test_example_09_seeds_devices_learning_rates_and_huge_sizes_get_clear_errors(tmp_path):
    limit = r"must be at most 4,294,967,295, the book's limit \(LIMITS\['seed'\]"
    with pytest.raises(ValueError, match="seed " + limit):
        session.seed_everything(2**32)
    with pytest.raises(ValueError, match="seed " + limit):
        data.load_mnist(tmp_path, offline=True, verbose=False, seed=2**32)
    with pytest.raises(ValueError, match="seed " + limit):
        data.make_loader(torch.zeros(4, 2), torch.zeros(4), shuffle=True, seed=2**63)
    with pytest.raises(ValueError, match="device must name a device such as 'cpu' or 'cuda', "
                                         "got 'tpu'"):
        data.load_mnist(tmp_path, offline=True, verbose=False, device="tpu")
    with pytest.raises(ValueError, match="lr must be at most 3.403e\\+38 in size, the largest "
                                         "float32 number, got 1e\\+300"):
        training.make_optimizer(nn.Linear(2, 2), lr=1e300, total_steps=3)


HUGE = 2**63
LINEAR = nn.Linear(2, 2)


@pytest.mark.parametrize("name, call", [
    ("epochs", lambda: training.fit(LINEAR, [], epochs=HUGE, verbose=False,
                                    optimizer=torch.optim.SGD(LINEAR.parameters(), lr=1))),
    ("steps", lambda: lm.train_for_steps(lm.CharLM(5, "gru", hidden_size=4),
                                         [(torch.zeros(1, 2, dtype=torch.long),) * 2],
                                         steps=HUGE, lr=0.1)),
    ("max_steps", lambda: models.EncoderDecoder(8, 3, 4).greedy_decode(
        torch.tensor([[4, 5]]), torch.tensor([2]), max_steps=HUGE)),
    ("num_layers", lambda: lm.CharLM(5, "gru", num_layers=HUGE)),
    ("max_length", lambda: data.reversal_pairs(3, 1, HUGE)),
    ("length", lambda: lm.sample(lm.CharLM(6, "gru", hidden_size=4), text.CharVocabulary("ab c.\n"),
                                 "ab", HUGE)),
    ("hidden_size", lambda: models.make_classifier("lstm", 3, HUGE, 2)),
    ("n", lambda: data.adding_problem(HUGE, 10)),
])
def test_example_09_a_size_of_2_to_the_63_is_refused_at_once_naming_its_limit(name, call):
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"{name} must be at most [\d,]+, the book's limit "
                                         rf"\(LIMITS\['{name}'\] in book_utils._checks\), "
                                         r"got 9,223,372,036,854,775,808"):
        call()
    assert time.monotonic() - start < 5  # no hang: refused before any work


def test_generated_data_sets_have_a_size_limit():
    with pytest.raises(ValueError, match=r"x would hold 20,000,000,000 numbers, more than the "
                                         r"book's limit of 268,435,456 \(MAX_ELEMENTS"):
        data.adding_problem(10_000_000, 1_000)
    assert _checks.LIMITS["seed"] == 2**32 - 1


# ---------------------------------------------------------------- 10. our errors, not torch's


def test_example_10_nonlinearity_and_attention_step_errors_are_ours():
    message = r"nonlinearity must be one of \('tanh', 'relu'\), got 'sigmoid'"
    with pytest.raises(ValueError, match=message):
        models.make_recurrent("rnn", 3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=message):
        models.make_recurrent("scratch_rnn", 3, 4, nonlinearity="sigmoid")
    model = scans.AttentionEncoderDecoder(8, 3, 4)
    states, d, mask = model.encode_all(torch.tensor([[4, 5, 6], [5, 6, 0]]), torch.tensor([3, 2]))
    keys, token = model.W_k(states), torch.tensor([1, 1])
    logits, _, alpha = model.step(token, d, states, keys, mask)
    assert logits.shape == (2, 8) and alpha.shape == (2, 3)
    with pytest.raises(ValueError, match=r"d must have shape \(2, 4\) to match token \(2,\)"):
        model.step(token, d[:1], states, keys, mask)
    with pytest.raises(ValueError, match=r"states must have shape \(2, 3, 4\)"):
        model.step(token, d, states[:, :, :2], keys, mask)
    with pytest.raises(ValueError, match=r"token must hold ids in \[0, 7\], got values from 1 to 9"):
        model.step(torch.tensor([1, 9]), d, states, keys, mask)
