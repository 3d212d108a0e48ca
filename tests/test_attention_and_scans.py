"""Chapter 7's helpers: attention with masked padding, the linear recurrence as a loop and as a
scan, minGRU and minLSTM, and the errors their entry points raise."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.patches import Rectangle
from torch import nn

from book_utils import attention_and_scans as A
from book_utils import data, models


def random_recurrence(batch, time, hidden, *, dtype=torch.float64, seed=0, low=0.01, high=0.99):
    g = torch.Generator().manual_seed(seed)
    a = low + (high - low) * torch.rand(batch, time, hidden, generator=g, dtype=dtype)
    b = torch.randn(batch, time, hidden, generator=g, dtype=dtype)
    h0 = torch.randn(batch, hidden, generator=g, dtype=dtype)
    return a, b, h0


# ---------------------------------------------------------------- loop and scans


def test_loop_follows_the_recurrence_by_hand():
    a = torch.tensor([[[0.5], [2.0], [0.1]]])
    b = torch.tensor([[[1.0], [-1.0], [3.0]]])
    h = A.linear_recurrence_loop(a, b, torch.tensor([[4.0]]))
    # h1 = 0.5*4 + 1 = 3, h2 = 2*3 - 1 = 5, h3 = 0.1*5 + 3 = 3.5
    torch.testing.assert_close(h[0, :, 0], torch.tensor([3.0, 5.0, 3.5]))


@pytest.mark.parametrize("time", [1, 7, 256, 4096])
def test_scan_equals_loop_on_random_inputs_of_either_sign(time):
    a, b, h0 = random_recurrence(2, time, 3, seed=time)
    loop = A.linear_recurrence_loop(a, b, h0)
    assert A.max_relative_error(A.parallel_scan(a, b, h0), loop) <= 1e-10
    assert A.max_relative_error(A.parallel_scan(a, b, h0, chunk=64), loop) <= 1e-10


def test_float32_scan_in_chunks_stays_within_1e_5_of_a_float64_loop_on_long_sequences():
    a, b, h0 = random_recurrence(2, 4096, 4, dtype=torch.float32, seed=1)
    reference = A.linear_recurrence_loop(a.double(), b.double(), h0.double())
    assert A.max_relative_error(A.parallel_scan(a, b, h0, chunk=64).double(), reference) <= 1e-5


@pytest.mark.parametrize("low, high", [(1e-30, 1e-20), (1 - 1e-9, 1.0), (1e-30, 1.0)])
def test_scan_equals_loop_for_extreme_gates(low, high):
    a, b, h0 = random_recurrence(2, 1024, 3, seed=5, low=low, high=high)
    loop = A.linear_recurrence_loop(a, b, h0)
    assert A.max_relative_error(A.parallel_scan(a, b, h0), loop) <= 1e-8


def test_naive_scan_is_right_on_short_sequences_and_breaks_on_long_ones():
    a, b, h0 = random_recurrence(2, 16, 3, dtype=torch.float32, seed=2, low=0.4, high=0.6)
    torch.testing.assert_close(A.naive_scan(a, b, h0), A.linear_recurrence_loop(a, b, h0))
    a, b, h0 = random_recurrence(2, 512, 3, dtype=torch.float32, seed=2, low=0.4, high=0.6)
    assert not torch.isfinite(A.naive_scan(a, b, h0)).all()
    assert torch.isfinite(A.parallel_scan(a, b, h0)).all()


def test_log_scan_gives_log_states_and_chunks_change_nothing():
    a, b, h0 = random_recurrence(3, 50, 2, seed=3)
    b, h0 = b.abs(), h0.abs()
    log_h = A.log_scan(a.log(), b.log(), h0.log())
    torch.testing.assert_close(log_h.exp(), A.linear_recurrence_loop(a, b, h0))
    torch.testing.assert_close(A.chunked_log_scan(a.log(), b.log(), h0.log(), 7), log_h)


def test_recurrence_errors_name_the_problem():
    a, b, h0 = random_recurrence(2, 5, 3)
    with pytest.raises(ValueError, match="a must have shape"):
        A.linear_recurrence_loop(a[0], b)
    with pytest.raises(ValueError, match="same shape"):
        A.naive_scan(a, b[:, :4])
    with pytest.raises(ValueError, match="h0 must have shape"):
        A.parallel_scan(a, b, h0[:1])
    with pytest.raises(ValueError, match="a must be positive"):
        A.parallel_scan(-a, b)
    with pytest.raises(TypeError, match="floating-point"):
        A.linear_recurrence_loop(torch.ones(1, 2, 3, dtype=torch.long), torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        A.parallel_scan(a, b, chunk=0)
    with pytest.raises(ValueError, match="log_h0 must have shape"):
        A.log_scan(a.log(), b.abs().log(), h0[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        A.max_relative_error(a, b[:, :2])


# ---------------------------------------------------------------- the associative scan


def test_combine_composes_two_steps_in_order_and_is_associative_not_commutative():
    p, q, r = ((torch.tensor(a), torch.tensor(b)) for a, b in ((0.5, 1.0), (2.0, -1.0), (0.1, 3.0)))
    h = torch.tensor(4.0)
    a, b = A.combine(p, q)
    torch.testing.assert_close(a * h + b, q[0] * (p[0] * h + p[1]) + q[1])  # p first, then q
    left, right = A.combine(A.combine(p, q), r), A.combine(p, A.combine(q, r))
    torch.testing.assert_close(left, right)
    swapped = A.combine(q, p)
    assert not torch.allclose(swapped[1], A.combine(p, q)[1])


@pytest.mark.parametrize("time", [1, 2, 3, 8, 100, 1025])
def test_hillis_steele_scan_equals_the_loop_for_gates_of_either_sign(time):
    a, b, h0 = random_recurrence(2, time, 3, seed=time, low=-1.0, high=1.0)
    loop = A.linear_recurrence_loop(a, b, h0)
    assert A.max_relative_error(A.hillis_steele_scan(a, b, h0), loop) <= 1e-12
    a, b, _ = random_recurrence(2, time, 3, seed=time)
    torch.testing.assert_close(A.hillis_steele_scan(a, b), A.parallel_scan(a, b))


def test_hillis_steele_scan_in_float32_stays_close_on_long_sequences():
    a, b, h0 = random_recurrence(2, 4096, 4, dtype=torch.float32, seed=1)
    reference = A.linear_recurrence_loop(a.double(), b.double(), h0.double())
    assert A.max_relative_error(A.hillis_steele_scan(a, b, h0).double(), reference) <= 1e-6


@pytest.mark.parametrize("T, depth, combines", [(1, 0, 0), (2, 1, 1), (8, 3, 17),
                                                (9, 4, 21), (4096, 12, 45057)])
def test_scan_schedule_counts_rounds_and_combines(T, depth, combines):
    rounds = A.scan_schedule(T)
    assert len(rounds) == depth == math.ceil(math.log2(T))
    assert sum(map(len, rounds)) == combines
    # Played round after round on scalar pairs, the schedule is the scan.
    g = torch.Generator().manual_seed(T)
    n = min(T, 64)
    a, b = (0.5 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64) for _ in "ab")
    pairs = [(a[t], b[t]) for t in range(n)]
    for round_ in A.scan_schedule(n):
        new = list(pairs)                                 # every combine reads the last round
        for s, t in round_:
            new[t] = A.combine(pairs[s], pairs[t])
        pairs = new
    loop = A.linear_recurrence_loop(a[None, :, None], b[None, :, None])[0, :, 0]
    torch.testing.assert_close(torch.stack([q[1] for q in pairs]), loop)
    with pytest.raises(ValueError, match="T must be >= 1"):
        A.scan_schedule(0)


def test_scan_errors_name_the_problem():
    a, b, h0 = random_recurrence(2, 5, 3)
    with pytest.raises(ValueError, match="same shape"):
        A.hillis_steele_scan(a, b[:, :4])
    with pytest.raises(ValueError, match="h0 must have shape"):
        A.hillis_steele_scan(a, b, h0[:1])
    with pytest.raises(TypeError, match="T must be an int"):
        A.scan_schedule(8.0)
    with pytest.raises(ValueError, match="T must be at most 16"):
        A.draw_scan_tree(32)


# ---------------------------------------------------------------- minGRU and minLSTM


@pytest.mark.parametrize("layer_class", [A.MinGRU, A.MinLSTM])
def test_min_layers_shapes_and_scan_equals_loop(layer_class):
    torch.manual_seed(0)
    layer = layer_class(3, 5).double()
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    h, h_n = layer(x)
    assert h.shape == (4, 9, 5) and h_n.shape == (1, 4, 5)
    torch.testing.assert_close(h_n[0], h[:, -1])
    assert (h > 0).all(), "states stay positive: b_t > 0 and h_0 = 0"
    layer.mode = "loop"
    torch.testing.assert_close(layer(x)[0], h)
    # Carrying the state: two halves equal one pass.
    first, state = layer(x[:, :4])
    torch.testing.assert_close(torch.cat([first, layer(x[:, 4:], state)[0]], dim=1), h)


def test_mingru_matches_its_equation_step_by_step():
    torch.manual_seed(1)
    layer = A.MinGRU(2, 4).double()
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    k, h_tilde = layer.linear(x).chunk(2, dim=-1)
    z = torch.sigmoid(k)
    g = torch.where(h_tilde >= 0, h_tilde + 0.5, torch.sigmoid(h_tilde))
    h, states = torch.zeros(3, 4, dtype=torch.float64), []
    for t in range(6):
        h = (1 - z[:, t]) * h + z[:, t] * g[:, t]
        states.append(h)
    torch.testing.assert_close(layer(x)[0], torch.stack(states, dim=1))


def test_minlstm_normalises_its_gates_step_by_step():
    torch.manual_seed(2)
    layer = A.MinLSTM(2, 4).double()
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    k_f, k_i, h_tilde = layer.linear(x).chunk(3, dim=-1)
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    g = torch.where(h_tilde >= 0, h_tilde + 0.5, torch.sigmoid(h_tilde))
    h, states = torch.zeros(3, 4, dtype=torch.float64), []
    for t in range(6):
        h = f[:, t] / (f[:, t] + i[:, t]) * h + i[:, t] / (f[:, t] + i[:, t]) * g[:, t]
        states.append(h)
    torch.testing.assert_close(layer(x)[0], torch.stack(states, dim=1))


@pytest.mark.parametrize("layer_class", [A.MinGRU, A.MinLSTM])
@pytest.mark.parametrize("mode", ["scan", "loop"])
def test_min_layers_pass_gradcheck_in_float64(layer_class, mode):
    torch.manual_seed(3)
    layer = layer_class(2, 3, mode=mode).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(1, 2, 3, dtype=torch.float64, requires_grad=True) + 0.1
    assert torch.autograd.gradcheck(lambda x, h0: layer(x, h0)[0], (x, h0))
    weight = layer.linear.weight
    assert torch.autograd.gradcheck(
        lambda w: torch.func.functional_call(layer, {"linear.weight": w}, (x.detach(),))[0],
        (weight.detach().clone().requires_grad_(),))


def test_min_layer_errors_name_the_problem():
    layer = A.MinGRU(3, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, features\)"):
        layer(torch.randn(5, 3))
    with pytest.raises(ValueError, match="x must have 3 features"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, batch, hidden\)"):
        layer(torch.randn(2, 5, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="h0 must be non-negative"):
        layer(torch.randn(2, 5, 3), -torch.ones(1, 2, 4))
    with pytest.raises(ValueError, match="mode must be one of"):
        A.MinLSTM(3, 4, mode="parallel")
    with pytest.raises(TypeError, match="hidden_size must be an int"):
        A.MinGRU(3, 4.0)
    with pytest.raises(TypeError, match="x must have the dtype of the MinGRU's weights"):
        layer.coefficients(torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must not be empty"):
        A.MinLSTM(3, 4).coefficients(torch.randn(2, 0, 3))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        A.log_g(torch.arange(3))


def test_chrono_init_sets_the_kept_share_to_one_minus_one_over_tau():
    for layer in (A.MinGRU(2, 6), A.MinLSTM(2, 6)):
        tau = A.chrono_init(layer, 50)
        log_a, _ = layer.coefficients(torch.zeros(1, 1, 2))
        torch.testing.assert_close(log_a[0, 0].exp(), 1 - 1 / tau)
    gru = nn.GRU(2, 6, batch_first=True)
    tau = A.chrono_init(gru, 50)
    torch.testing.assert_close(torch.sigmoid(gru.bias_ih_l0[6:12] + gru.bias_hh_l0[6:12]), 1 - 1 / tau)
    with pytest.raises(TypeError, match="layer must be"):
        A.chrono_init(nn.RNN(2, 6), 50)


def test_make_layer_and_crossover():
    assert isinstance(A.make_layer("minlstm", 2, 4), A.MinLSTM)
    assert A.make_layer("mingru", 2, 4, mode="loop").mode == "loop"
    assert isinstance(A.make_layer("lstm", 2, 4), nn.LSTM)
    with pytest.raises(ValueError, match="kind must be one of"):
        A.make_layer("transformer", 2, 4)
    rows = [{"T": 1, "scan": 3, "loop": 2}, {"T": 2, "scan": 1, "loop": 2}, {"T": 4, "scan": 1, "loop": 2}]
    assert A.crossover(rows, "scan", "loop") == 2
    assert A.crossover(rows, "loop", "scan") is None
    with pytest.raises(ValueError, match="rows must be"):
        A.crossover([{"T": 1}], "scan", "loop")


# ---------------------------------------------------------------- attention


def attention_inputs(batch=3, source_time=6, size=4, hidden=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, size, generator=g)
    keys = torch.randn(batch, source_time, size, generator=g)
    values = torch.randn(batch, source_time, hidden, generator=g)
    v = torch.randn(size, generator=g)
    lengths = torch.tensor([6, 3, 1])[:batch]
    return query, keys, values, data.length_mask(lengths, source_time), v


def test_attention_weights_sum_to_one_and_are_zero_on_padding():
    query, keys, values, mask, v = attention_inputs()
    context, alpha = A.additive_attention(query, keys, values, mask, v)
    assert context.shape == (3, 5) and alpha.shape == (3, 6)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    assert (alpha[~mask] == 0).all()
    torch.testing.assert_close(context, torch.einsum("bs,bsh->bh", alpha, values))


def test_padding_changes_nothing():
    query, keys, values, mask, v = attention_inputs()
    context, alpha = A.additive_attention(query, keys, values, mask, v)
    keys2, values2 = keys.clone(), values.clone()
    keys2[~mask], values2[~mask] = 1e3, -1e3                   # garbage in the padding
    context2, alpha2 = A.additive_attention(query, keys2, values2, mask, v)
    torch.testing.assert_close(context2, context)
    torch.testing.assert_close(alpha2, alpha)
    # Row 1 (3 real positions) gives what it gives when cut to its real positions.
    c1, a1 = A.additive_attention(query[1:2], keys[1:2, :3], values[1:2, :3], mask[1:2, :3], v)
    torch.testing.assert_close(c1, context[1:2])
    torch.testing.assert_close(a1, alpha[1:2, :3])


def test_encoder_decoder_with_attention_ignores_source_padding():
    torch.manual_seed(0)
    vocab = data.Vocabulary("0123456789")
    model = A.AttentionEncoderDecoder(len(vocab), 8, 16).eval()
    short, lengths = vocab.encode(["123"])
    padded = torch.cat([short, torch.full((1, 4), data.PAD)], dim=1)   # the same string, more padding
    targets, _ = vocab.encode(["321"], add_eos=True)
    inputs = models.shift_right(targets)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, lengths, inputs), model(short, lengths, inputs))
        ids, alpha = model.decode_with_attention(padded, lengths, 5)
        ids_short, alpha_short = model.decode_with_attention(short, lengths, 5)
    assert torch.equal(ids, ids_short)
    assert (alpha[..., 3:] == 0).all()
    torch.testing.assert_close(alpha[..., :3], alpha_short)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(alpha.shape[:2]))


def test_encoder_decoder_with_attention_trains_through_the_core_recipe():
    vocab = data.Vocabulary("0123456789")
    sources, targets = data.reversal_pairs(64, 2, 3, seed=0)
    torch.manual_seed(0)
    model = A.AttentionEncoderDecoder(len(vocab), 8, 16)
    history = models.train_encoder_decoder(model, vocab, sources, targets, steps=5, batch_size=8)
    assert len(history["step_loss"]) == 5 and all(math.isfinite(v) for v in history["step_loss"])
    accuracy, predicted = models.decode_and_score(model, vocab, sources[:4], targets[:4])
    assert 0.0 <= accuracy <= 1.0 and len(predicted) == 4


def test_attention_errors_name_the_problem():
    query, keys, values, mask, v = attention_inputs()
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        A.additive_attention(query, keys, values, mask.float(), v)
    with pytest.raises(ValueError, match="query must be"):
        A.additive_attention(query[:, :2], keys, values, mask, v)
    with pytest.raises(ValueError, match="values and mask must start with"):
        A.additive_attention(query, keys, values[:, :2], mask, v)
    mask[2] = False
    with pytest.raises(ValueError, match="at least one source position"):
        A.additive_attention(query, keys, values, mask, v)
    with pytest.raises(TypeError, match="must share one dtype, got query torch.float32, keys torch.float64"):
        A.additive_attention(query, keys.double(), values, mask, v)
    with pytest.raises(ValueError, match="hidden_size must be even"):
        A.AttentionEncoderDecoder(13, 8, 15)
    with pytest.raises(ValueError, match="attention_size must be >= 1, got 0"):
        A.AttentionEncoderDecoder(13, 8, 16, attention_size=0)
    assert A.AttentionEncoderDecoder(13, 8, 16).v.shape == (16,)    # None: hidden_size
    model = A.AttentionEncoderDecoder(13, 8, 16)
    with pytest.raises(TypeError, match="source must be a torch.Tensor, got list"):
        model([[4, 5]], torch.tensor([2]), torch.tensor([[1, 4]]))
    with pytest.raises(ValueError, match="source must not be empty"):
        model.encode(torch.zeros(0, 2, dtype=torch.long), torch.tensor([2]))
    with pytest.raises(ValueError, match="weights, sources and outputs must pair up"):
        A.plot_attention([torch.rand(2, 2)], ["12", "34"], ["21"])
    with pytest.raises(ValueError, match="titles must give one title per map"):
        A.plot_attention([torch.rand(2, 2)], ["12"], ["21"], titles=["a", "b"])
    with pytest.raises(ValueError, match=r"marks must give one output step \(or None\) per map"):
        A.plot_attention([torch.rand(2, 2)], ["12"], ["21"], marks=[0, 1])
    with pytest.raises(ValueError, match="each mark must be at most 2, got 3"):
        A.plot_attention([torch.rand(3, 2)], ["12"], ["21"], marks=[3])


def test_plot_attention_outlines_the_marked_step():
    fig = A.plot_attention([torch.rand(3, 2), torch.rand(3, 2)], ["12", "34"], ["21", "43"],
                           marks=[1, None])
    first, second = fig.axes[:2]
    outlined = [p for p in first.patches if isinstance(p, Rectangle)]
    assert len(outlined) == 1 and outlined[0].get_y() == 0.5      # around row 1
    assert not [p for p in second.patches if isinstance(p, Rectangle)]
    assert first.get_yticklabels()[1].get_fontweight() == "bold"
    plt.close(fig)


# ---------------------------------------------------------------- drivers


def test_drivers_train_and_report():
    run = A.train_adding("mingru", 10, hidden_size=4, train_steps=3, batch_size=8, n_eval=16,
                         test=True)
    assert run["parameters"] == models.count_parameters(run["model"])
    assert math.isfinite(run["validation_mse"]) and math.isfinite(run["test_mse"])
    assert "test_mse" not in A.train_adding("gru", 10, hidden_size=4, train_steps=2, n_eval=4)
    windows = [(torch.randint(0, 96, (2, 5)), torch.randint(0, 96, (2, 5))) for _ in range(2)]
    run = A.train_char_model("minlstm", windows, windows, hidden_size=8, mode="loop")
    assert 0 < run["validation_bpc"] < 10 and len(run["history"]["step_loss"]) == 2
    assert run["model"].recurrent.mode == "loop"
    rows = A.time_scans([4, 8], batch_size=1, hidden_size=3, repeats=1)
    assert [r["T"] for r in rows] == [4, 8]
    assert all(r[k] > 0 for r in rows for k in ("loop", "Hillis-Steele", "log-space"))


def test_adding_recipe_is_chapter_5s_and_its_start_is_the_mean():
    run = A.train_adding("lstm", 10, hidden_size=4, train_steps=1, lr=1e-9, n_eval=8)
    head = run["model"].head
    assert torch.all(head.weight.abs() < 1e-6) and abs(head.bias.item() - 1) < 1e-6
    default = A.train_adding("lstm", 10, hidden_size=4, train_steps=1, lr=1e-9, n_eval=8,
                             head_at_mean=False)
    assert default["model"].head.weight.abs().sum() > 0.01
    # The same seed gives the same model and score, and leaves the caller's generator alone.
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    again = A.train_adding("lstm", 10, hidden_size=4, train_steps=1, lr=1e-9, n_eval=8)
    assert again["validation_mse"] == run["validation_mse"] and torch.rand(1) == before


def test_driver_errors_name_the_problem():
    with pytest.raises(ValueError, match="kind must be one of"):
        A.train_adding("rnn", 10)
    with pytest.raises(ValueError, match="steps must be >= 3"):
        A.train_adding("gru", 1, train_steps=1)
    with pytest.raises(ValueError, match="schedule must be one of"):
        A.train_adding("gru", 10, schedule="linear")
    with pytest.raises(TypeError, match="fresh must be True or False, got int"):
        A.train_adding("gru", 10, fresh=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        A.train_adding("mingru", 10, mode="tree")
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        A.train_adding("gru", 10, clip_norm=0.0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time\)"):
        A.CharModel("gru", 10)(torch.randn(2, 3, 4))
    with pytest.raises(TypeError, match="lengths must be a non-empty list"):
        A.time_scans(64)
    with pytest.raises(ValueError, match="each length must be >= 1"):
        A.time_scans([0])
    with pytest.raises(ValueError, match="timings must hold at least one setting"):
        A.plot_timings({})
    with pytest.raises(ValueError, match="must be a non-empty list of rows"):
        A.plot_timings({"a": [{"T": 4}]})
    with pytest.raises(TypeError, match="device must be str or device, got int"):
        A.train_adding("gru", 4, train_steps=1, device=0)
    with pytest.raises(TypeError, match="train_windows must be list, got NoneType"):
        A.train_char_model("gru", None, [])
    with pytest.raises(ValueError, match="validation_windows must hold at least one"):
        A.train_char_model("gru", [(torch.zeros(1, 2, dtype=torch.long),) * 2], [])
    with pytest.raises(TypeError, match="fast must be str, got NoneType"):
        A.crossover([{"T": 1, "a": 1.0, "b": 2.0}], None, "b")
    with pytest.raises(ValueError, match="reference must not be all zeros"):
        A.max_relative_error(torch.ones(3), torch.zeros(3))
    with pytest.raises(TypeError, match="estimate must be a floating-point tensor"):
        A.max_relative_error(torch.ones(3, dtype=torch.long), torch.ones(3))


# ---------------------------------------------------------------- matched comparisons


def test_match_width_finds_the_nearest_parameter_count():
    build = lambda w: nn.Linear(10, w)                    # noqa: E731  11 w parameters
    assert A.match_width(build, 110) == 10
    assert A.match_width(build, 116) == 11 and A.match_width(build, 114) == 10
    assert A.match_width(build, 1) == 1
    assert A.match_width(build, 220, step=4) == 20
    with pytest.raises(TypeError, match="build must be a function of the width"):
        A.match_width(3, 100)
    with pytest.raises(ValueError, match="target must be >= 1"):
        A.match_width(build, 0)
    with pytest.raises(ValueError, match="build must grow with the width"):
        A.match_width(lambda w: nn.Linear(2, 2), 100)


def test_the_compared_models_have_matched_parameter_counts():
    V = len(data.Vocabulary(A.DIGITS))
    counts = {kind: models.count_parameters(A.REVERSERS[kind](V, 32, width))
              for kind, width in A.REVERSAL_WIDTHS.items()}
    target = counts["attention"]
    assert A.REVERSAL_WIDTHS["no attention"] == A.match_width(
        lambda w: models.EncoderDecoder(V, 32, w), target)
    assert A.REVERSAL_WIDTHS["bidirectional, no attention"] == A.match_width(
        lambda w: A.BidirectionalEncoderDecoder(V, 32, w), target, step=2)
    assert all(abs(c - target) <= 0.02 * target for c in counts.values()), counts
    regressor = lambda k, w: models.SequenceRegressor(A.make_layer(k, 2, w), w)  # noqa: E731
    sizes = {k: models.count_parameters(regressor(k, w)) for k, w in A.ADDING_WIDTHS.items()}
    assert all(abs(c - sizes["gru"]) <= 0.04 * sizes["gru"] for c in sizes.values()), sizes
    char = lambda k, w: A.CharModel(k, 96, hidden_size=w)  # noqa: E731
    sizes = {k: models.count_parameters(char(k, w)) for k, w in A.TEXT_WIDTHS.items()}
    assert all(abs(c - sizes["gru"]) <= 0.02 * sizes["gru"] for c in sizes.values()), sizes


def test_bidirectional_control_is_the_attention_model_without_attention():
    V = len(data.Vocabulary(A.DIGITS))
    control = A.BidirectionalEncoderDecoder(V, 8, 16)
    assert control.encoder.bidirectional and control.encoder.hidden_size == 8
    assert isinstance(control.decoder, nn.GRU) and control.decoder.hidden_size == 16
    assert isinstance(A.AttentionEncoderDecoder(V, 8, 16), A.BidirectionalEncoderDecoder)
    vocab = data.Vocabulary(A.DIGITS)
    source, lengths = vocab.encode(["123", "45"])
    summary = control.encode(source, lengths)
    states, _, _ = control.encode_all(source, lengths)
    assert summary.shape == (1, 2, 16)
    # Forward half: the state after the last real digit; backward half: after reading digit 0.
    torch.testing.assert_close(summary[0, 1, :8], states[1, 1, :8])
    torch.testing.assert_close(summary[0, 1, 8:], states[1, 0, 8:])
    with pytest.raises(ValueError, match="hidden_size must be even"):
        A.BidirectionalEncoderDecoder(V, 8, 15)


def test_reverser_drivers_train_score_and_name_their_errors():
    splits = {"train": data.reversal_pairs(64, 3, 4, seed=0)}
    run = A.train_reverser("bidirectional, no attention", splits, lr=1e-2, seed=1)
    assert run["parameters"] == models.count_parameters(run["model"])
    assert run["model"].encoder.hidden_size == A.REVERSAL_WIDTHS["bidirectional, no attention"] // 2
    sources, targets = data.reversal_pairs(20, 9, 10, seed=4)
    scores = A.exact_match_by_length(run["model"], sources, targets)
    assert set(scores) == {"all", "9", "10"} and all(0 <= v <= 1 for v in scores.values())
    loss = A.reversal_loss(run["model"], sources, targets)
    assert 0 < loss < 10 and run["model"].training
    with pytest.raises(ValueError, match="kind must be one of"):
        A.train_reverser("transformer", splits, lr=1e-2)
    with pytest.raises(ValueError, match="splits must hold a 'train' pair"):
        A.train_reverser("attention", {}, lr=1e-2)
    with pytest.raises(ValueError, match="lr must be > 0"):
        A.train_reverser("attention", splits, lr=0.0)
    with pytest.raises(TypeError, match="model must be EncoderDecoder"):
        A.reversal_loss(nn.GRU(2, 2), sources, targets)
    with pytest.raises(ValueError, match="sources and targets must pair up"):
        A.exact_match_by_length(run["model"], sources, targets[:3])
    with pytest.raises(TypeError, match="sources must be a non-empty list"):
        A.reversal_loss(run["model"], "123", targets)


def test_reversal_splits_share_no_string():
    splits = A.reversal_splits()
    sets = {name: set(sources) for name, (sources, _) in splits.items()}
    assert len(splits["train"][0]) == A.REVERSAL_RECIPE["train"]
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not sets[a] & sets[b], (a, b)
    assert {len(s) for s in sets["long"]} == {9, 10, 11, 12}
    assert all(t == s[::-1] for s, t in zip(*splits["validation"]))


@pytest.mark.parametrize("kind", ["gru", "lstm", "mingru"])
def test_char_model_checks_the_state_it_is_given(kind):
    model = A.CharModel(kind, 10, 3, 4)
    x = torch.randint(0, 10, (2, 5))
    _, state = model(x)
    model(x, state)                                       # the state it returned is fine
    with pytest.raises(ValueError, match="x must not be empty"):
        model(x[:, :0])
    with pytest.raises((TypeError, ValueError), match="state"):
        model(x, "state")
    h = state[0] if kind == "lstm" else state
    bad = (h[:, :1], state[1]) if kind == "lstm" else h[:, :1]
    with pytest.raises(ValueError, match=r"state.* must have shape \(1, 2, 4\), got \(1, 1, 4\)"):
        model(x, bad)
    bad = (h.double(), state[1]) if kind == "lstm" else h.double()
    with pytest.raises(TypeError, match="must have the dtype of the CharModel's weights"):
        model(x, bad)


# ---------------------------------------------------------------- results over seeds


def test_seed_summary_and_paired_wins_read_per_seed_rows():
    rows = [{"seed": s, "model": m, "test": s + (0.5 if m == "b" else 0.0)}
            for m in ("a", "b") for s in range(5)]
    rows[0]["test"] = 9.0                                  # seed 0: a loses once
    table = A.seed_summary(rows, "model", ["test"], digits=2)
    assert list(table.index) == ["a", "b"] and list(table["seeds"]) == [5, 5]
    assert table.loc["b", "test"] == "2.50 ± 1.58"
    assert A.paired_wins(rows, "a", "b") == 4 and A.paired_wins(rows, "b", "a") == 1
    with pytest.raises(ValueError, match=r"rows must be dicts with 'model' and \['accuracy'\], got"):
        A.seed_summary(rows, "model", ["accuracy"])
    with pytest.raises(TypeError, match="values must be a non-empty list"):
        A.seed_summary(rows, "model", "test")
    with pytest.raises(ValueError, match="no seed has runs of both 'a' and 'c'"):
        A.paired_wins(rows, "a", "c")
    with pytest.raises(ValueError, match="rows must be dicts with 'model', 'seed' and 'loss'"):
        A.paired_wins(rows, "a", "b", value="loss")


def test_combine_names_bad_pairs():
    pair = (torch.rand(2, 3), torch.randn(2, 3))
    with pytest.raises(TypeError, match="first must be a pair"):
        A.combine(torch.rand(2, 3), pair)
    with pytest.raises(ValueError, match="must have one shape"):
        A.combine(pair, (torch.rand(2, 3), torch.randn(3, 2)))
    with pytest.raises(TypeError, match="second's b must be a floating-point tensor"):
        A.combine(pair, (torch.rand(2, 3), torch.ones(2, 3, dtype=torch.long)))
