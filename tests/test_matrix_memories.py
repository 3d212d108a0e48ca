"""Chapter 8's helpers: linear attention, the delta rule and the mLSTM in every form, checked
against each other and against loops written from the papers; the tasks, the models, the
drivers, and the errors their entry points raise."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch.nn import functional as F

from book_utils import matrix_memories as M

matplotlib.use("Agg")

TOLERANCE_64 = dict(rtol=1e-10, atol=1e-12)     # float64: only rounding separates the forms


def qkv(batch=3, time=29, d_k=6, d_v=5, *, dtype=torch.float64, seed=0, unit=False):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(batch, time, d_k, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(batch, time, d_v, generator=g, dtype=dtype)
    if unit:
        q, k = F.normalize(q, dim=2), F.normalize(k, dim=2)
    return q, k, v


def gates(batch=3, time=29, *, dtype=torch.float64, seed=1, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return high * torch.rand(batch, time, generator=g, dtype=dtype)


# ---------------------------------------------------------------- linear attention


@pytest.mark.parametrize("normalize", [True, False])
def test_linear_attention_parallel_recurrent_and_chunkwise_agree(normalize):
    q, k, v = qkv()
    parallel = M.linear_attention_parallel(q, k, v, normalize=normalize)
    torch.testing.assert_close(M.linear_attention_recurrent(q, k, v, normalize=normalize),
                               parallel, **TOLERANCE_64)
    for chunk in (1, 4, 29, 64):
        torch.testing.assert_close(M.linear_attention_chunkwise(q, k, v, chunk, normalize=normalize),
                                   parallel, **TOLERANCE_64)


def test_linear_attention_by_hand_on_two_steps():
    # phi(0) = 1, so with zero queries and keys every score is 1.
    q = k = torch.zeros(1, 2, 3, dtype=torch.float64)
    v = torch.tensor([[[2.0], [4.0]]], dtype=torch.float64)
    h = M.linear_attention_parallel(q, k, v, normalize=False)
    torch.testing.assert_close(h[0, :, 0], torch.tensor([6.0, 18.0], dtype=torch.float64))
    h = M.linear_attention_parallel(q, k, v)                  # the mean of the values so far
    torch.testing.assert_close(h[0, :, 0], torch.tensor([2.0, 3.0], dtype=torch.float64))


def test_elu_plus_one_is_positive_and_continuous():
    x = torch.linspace(-20, 5, 101, dtype=torch.float64)
    assert (M.elu_plus_one(x) > 0).all()
    torch.testing.assert_close(M.elu_plus_one(torch.tensor([0.0, 2.0])), torch.tensor([1.0, 3.0]))


def test_softmax_attention_matches_torch():
    q, k, v = qkv(dtype=torch.float32)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(M.softmax_attention(q, k, v), expected)


# ---------------------------------------------------------------- the delta rule


def paper_delta_loop(q, k, v, beta):
    return M.paper_gated_delta_loop(q, k, v, beta, torch.ones_like(beta))


def test_delta_rule_matches_the_papers_loop_with_and_without_decay():
    q, k, v = qkv(unit=True)
    beta, alpha = gates(high=2.0), gates(seed=2)
    torch.testing.assert_close(M.delta_rule_recurrent(q, k, v, beta),
                               paper_delta_loop(q, k, v, beta), **TOLERANCE_64)
    torch.testing.assert_close(M.delta_rule_recurrent(q, k, v, beta, alpha),
                               M.paper_gated_delta_loop(q, k, v, beta, alpha), **TOLERANCE_64)


def test_delta_rule_is_one_gradient_step_on_the_squared_error():
    g = torch.Generator().manual_seed(3)
    S = torch.randn(4, 3, dtype=torch.float64, generator=g).requires_grad_()
    k = F.normalize(torch.randn(4, dtype=torch.float64, generator=g), dim=0)
    v, beta = torch.randn(3, dtype=torch.float64, generator=g), 0.7
    (grad,) = torch.autograd.grad(0.5 * ((k @ S - v) ** 2).sum(), S)
    step = (S - beta * grad).detach()                 # one step of gradient descent on S
    S = S.detach()
    torch.testing.assert_close(S - beta * torch.outer(k, k @ S - v), step)   # the delta rule


def test_delta_rule_with_beta_one_stores_the_last_pair_exactly():
    q, k, v = qkv(unit=True)
    h = M.delta_rule_recurrent(k, k, v, torch.ones(k.shape[:2], dtype=k.dtype))
    torch.testing.assert_close(h, v, **TOLERANCE_64)          # read right after each write


@pytest.mark.parametrize("chunk", [1, 3, 8, 29, 64])
def test_chunkwise_delta_rule_equals_the_recurrent_one_in_values_and_gradients(chunk):
    q, k, v = qkv(unit=True)
    beta = gates(high=2.0)
    inputs = [t.clone().requires_grad_() for t in (q, k, v, beta)]
    others = [t.clone().requires_grad_() for t in (q, k, v, beta)]
    recurrent = M.delta_rule_recurrent(*inputs)
    chunkwise = M.delta_rule_chunkwise(*others, chunk)
    torch.testing.assert_close(chunkwise, recurrent, **TOLERANCE_64)
    (recurrent ** 2).sum().backward()
    (chunkwise ** 2).sum().backward()
    for a, b in zip(inputs, others):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-9, atol=1e-10)


def test_chunkwise_delta_rule_in_float32_stays_close_to_float64():
    q, k, v = qkv(2, 500, 16, 16, unit=True)
    beta = gates(2, 500)
    reference = M.delta_rule_recurrent(q, k, v, beta)
    chunkwise = M.delta_rule_chunkwise(q.float(), k.float(), v.float(), beta.float(), 64)
    assert (chunkwise.double() - reference).abs().max() < 1e-4


# ---------------------------------------------------------------- the mLSTM


def mlstm_inputs(time=29, *, dtype=torch.float64, offset=0.0):
    q, k, v = qkv(time=time, dtype=dtype)
    k = k / k.shape[2] ** 0.5
    g = torch.Generator().manual_seed(4)
    i_pre = offset + 3 * torch.randn(3, time, generator=g, dtype=dtype)
    f_pre = 3 * torch.randn(3, time, generator=g, dtype=dtype)
    return q, k, v, i_pre, f_pre


def test_mlstm_stabilised_unstabilised_and_the_papers_loop_agree():
    q, k, v, i_pre, f_pre = mlstm_inputs()
    log_f = F.logsigmoid(f_pre)
    stable = M.mlstm_recurrent(q, k, v, i_pre, log_f)
    torch.testing.assert_close(M.mlstm_recurrent(q, k, v, i_pre, log_f, stabilize=False), stable,
                               **TOLERANCE_64)
    torch.testing.assert_close(M.paper_mlstm_loop(q, k, v, i_pre, f_pre), stable, **TOLERANCE_64)


def test_only_the_unstabilised_mlstm_overflows_in_float32():
    q, k, v, i_pre, f_pre = mlstm_inputs(dtype=torch.float32, offset=100.0)   # exp(100) > 3.4e38
    log_f = F.logsigmoid(f_pre)
    assert not torch.isfinite(M.mlstm_recurrent(q, k, v, i_pre, log_f, stabilize=False)).all()
    stable = M.mlstm_recurrent(q, k, v, i_pre, log_f)
    assert torch.isfinite(stable).all()
    # Shifting every input-gate pre-activation by the same amount changes nothing (it cancels
    # in the normalised read-out) as long as the normaliser's floor of 1 is not reached.
    reference = M.mlstm_recurrent(*(t.double() for t in (q, k, v, i_pre, log_f)))
    torch.testing.assert_close(stable.double(), reference, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- memory as regression


def test_additive_error_grows_like_n_minus_one_over_d_k():
    keys, values = M.random_pairs(400, 40, 32, generator=torch.Generator().manual_seed(0))
    error = M.retrieval_error(M.write_pairs(keys, values, "additive"), keys, values).mean()
    assert abs(error.item() - 39 / 32) < 0.05


def test_delta_rule_overwrites_a_repeated_key_and_additive_adds_it():
    k = F.normalize(torch.randn(1, 1, 8, dtype=torch.float64), dim=2)
    keys = torch.cat([k, k], dim=1)
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    read = lambda S: (k[:, 0, None] @ S)[0, 0]                      # noqa: E731
    torch.testing.assert_close(read(M.write_pairs(keys, values, "delta")), values[0, 1])
    torch.testing.assert_close(read(M.write_pairs(keys, values, "additive")),
                               values[0, 0] + values[0, 1])


def test_retrieval_curves_rows_and_least_squares_floor():
    rows = M.retrieval_curves([4, 16, 32], [16], trials=3, seed=0)
    assert len(rows) == 3 * 3 * 3 and {r["rule"] for r in rows} == {"additive", "delta",
                                                                      "least squares"}
    best = {r["pairs"]: r["error"] for r in rows if r["rule"] == "least squares"}
    assert best[4] < 1e-20 and best[16] < 1e-15 and 0.3 < best[32] < 0.7   # 1 - 16/32 on average
    mean = lambda rule, n: sum(r["error"] for r in rows   # noqa: E731
                               if r["rule"] == rule and r["pairs"] == n) / 3
    assert mean("delta", 16) < mean("additive", 16)


# ---------------------------------------------------------------- tasks


def test_mqar_batch_asks_every_key_once_after_the_pairs():
    x, y = M.mqar_batch(20, [4, 9], generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (20, 64)
    for row_x, row_y in zip(x, y):
        queries = (row_y != -100).nonzero()[:, 0]
        n = len(queries)
        assert n in (4, 9)
        keys, values = row_x[0:2 * n:2], row_x[1:2 * n:2]
        assert len(set(keys.tolist())) == n and (keys >= 1).all() and (keys <= 31).all()
        assert (values >= 32).all() and (values <= 63).all()
        assert (queries >= 2 * n).all()
        answer = dict(zip(keys.tolist(), values.tolist()))
        assert sorted(row_x[queries].tolist()) == sorted(keys.tolist())
        assert all(answer[row_x[p].item()] == row_y[p].item() for p in queries)
        others = torch.ones(64, dtype=torch.bool)
        others[:2 * n], others[queries] = False, False
        assert (row_x[others] == M.FILLER).all()


def test_parity_batch_targets_are_prefix_parities():
    x, y = M.parity_batch(5, 12, generator=torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) <= {0, 1}
    for t in range(12):
        assert (y[:, t] == x[:, :t + 1].sum(dim=1) % 2).all()


def test_held_out_sets_are_fixed_and_differ_between_splits():
    first, again = M.held_out("mqar", "validation"), M.held_out("mqar", "validation")
    assert list(first) == M.MQAR_RECIPE["test_pairs"]
    assert all(torch.equal(first[n][0], again[n][0]) for n in first)
    test = M.held_out("mqar", "test")
    assert not torch.equal(first[4][0], test[4][0][:len(first[4][0])])
    (length,) = M.held_out("parity", "test")
    assert length == M.PARITY_RECIPE["test_length"]


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("kind", M.MODEL_KINDS)
def test_task_model_is_causal_and_has_the_stated_state(kind):
    torch.manual_seed(0)
    model = M.TaskModel(kind, 10, 3, d_model=8, d_key=4, hidden_size=8, head_size=8).double()
    x = torch.randint(10, (2, 20))
    changed = x.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % 10
    before, after = model(x), model(changed)
    assert before.shape == (2, 20, 3)
    torch.testing.assert_close(before[:, :12], after[:, :12])     # the past ignores the future
    assert not torch.allclose(before[:, 12:], after[:, 12:])
    expected = {"lstm": 16, "linear": 16, "delta": 16, "delta_neg": 16, "softmax": None}
    assert model.state_floats() == expected[kind]


def test_delta_layer_uses_beta_below_one_or_two():
    torch.manual_seed(0)
    for kind, high in (("delta", 1.0), ("delta_neg", 2.0)):
        layer = M.MatrixMemory(kind, 4, 3)
        layer.project.bias.data[-1] = 50.0                        # beta saturates at its top
        x = torch.zeros(1, 5, 4)
        q, k, v, rest = layer._split(layer.project(x))
        beta = torch.sigmoid(rest[..., 0]) * high
        torch.testing.assert_close(beta, torch.full_like(beta, high))
        expected = M.delta_rule_chunkwise(F.normalize(q, dim=2), F.normalize(k, dim=2), v,
                                          beta, 16)
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("task", ["mqar", "parity"])
def test_the_lstms_are_matched_at_equal_state_and_equal_parameters(task):
    recipe, models = M.TASKS[task]
    d_k = recipe["d_key"]
    sizes = {name: sum(p.numel() for p in M.make_model(task, name).parameters()) for name in models}
    assert M.make_model(task, "LSTM, equal state").state_floats() == d_k * d_k
    target = sizes["DeltaNet" if task == "mqar" else "DeltaNet, beta in (0, 1)"]
    hidden = models["LSTM, equal parameters"]["hidden_size"]

    def lstm_size(h):
        return sum(p.numel() for p in M.TaskModel(
            "lstm", *(2 * [M.MQAR_VOCAB if task == "mqar" else 2]), d_model=recipe["d_model"],
            hidden_size=h, head_size=recipe["head_size"]).parameters())

    assert all(abs(lstm_size(hidden) - target) <= abs(lstm_size(h) - target)
               for h in range(1, 4 * hidden)), "not the closest LSTM size"
    assert abs(sizes["LSTM, equal parameters"] - target) <= 0.1 * target


def test_train_task_reports_and_accuracies_refuse_non_finite_scores():
    run = M.train_task("parity", "DeltaNet, beta in (0, 2)", lr=3e-3, seed=0, steps=5)
    assert set(run) == {"model", "validation", "validation_loss", "losses", "diverged", "seconds",
                        "parameters", "state_floats"}
    assert len(run["losses"]) == 5 and not run["diverged"] and 0 <= run["validation"] <= 1
    test = M.accuracies("parity", run["model"], "test")
    assert list(test) == M.PARITY_RECIPE["test_positions"]
    with torch.no_grad():
        run["model"].head[2].bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="finite scores"):
        M.accuracies("parity", run["model"], "validation")


def test_unit_key_additive_layer_is_deltanets_layer_with_the_additive_rule():
    torch.manual_seed(0)
    delta = M.MatrixMemory("delta", 6, 4, 3).double()
    layer = M.UnitKeyAdditiveMemory(6, 4, 3).double()
    layer.load_state_dict(delta.state_dict())                  # the same weights fit
    assert layer.state_floats() == delta.state_floats() == 12
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    q, k, v, rest = layer._split(layer.project(x))
    q, k, beta = F.normalize(q, dim=2), F.normalize(k, dim=2), torch.sigmoid(rest[..., 0])
    S, expected = torch.zeros(2, 4, 3, dtype=torch.float64), []
    for t in range(9):                                         # S_t = S_t-1 + beta_t k_t^T v_t
        S = S + beta[:, t, None, None] * k[:, t, :, None] * v[:, t, None, :]
        expected.append((q[:, t, None] @ S)[:, 0])
    torch.testing.assert_close(layer(x), torch.stack(expected, dim=1), **TOLERANCE_64)
    assert not torch.allclose(layer(x), delta(x))              # only the rule differs
    assert "additive" in repr(layer)


def test_train_model_trains_a_given_model_as_train_task_does():
    table = M.train_task("mqar", "linear attention", lr=3e-3, seed=1, steps=3)
    torch.manual_seed(1)                                 # train_task's weights for seed 1
    given = M.make_model("mqar", "linear attention")
    run = M.train_model("mqar", given, lr=3e-3, seed=1, steps=3)
    assert run["model"] is given and set(run) == set(table)
    assert run["losses"] == table["losses"] and len(run["losses"]) == 3
    assert run["validation"] == table["validation"]


def test_train_task_is_repeatable():
    runs = [M.train_task("mqar", "linear attention", lr=3e-3, seed=1, steps=3) for _ in range(2)]
    assert runs[0]["losses"] == runs[1]["losses"]


# ---------------------------------------------------------------- timings and figures


def test_time_forms_rows_and_crossover():
    rows = M.time_forms([8, 40], repeats=2, max_parallel=16, d_key=4, batch_size=2)
    forms = {(r["T"], r["form"]) for r in rows}
    assert (40, "parallel, C = T") not in forms and (8, "parallel, C = T") in forms
    assert len(rows) == 2 * (len(M.FORMS) + len(M.FORMS) - 1)
    assert all(r["seconds"] > 0 for r in rows)
    fake = [{"T": T, "form": f, "seconds": s, "repeat": 0}
            for T, a, b in ((16, 1.0, 2.0), (64, 3.0, 2.0), (256, 1.0, 5.0), (1024, 1.0, 9.0))
            for f, s in (("a", a), ("b", b))]
    assert M.crossover(fake, "a", "b") == 256 and M.crossover(fake, "b", "a") is None
    assert M.median_seconds(fake)[64, "a"] == 3.0


def test_figures_label_their_axes():
    retrieval = M.retrieval_curves([4, 8], [4, 8], trials=2)
    recall = [{"model": m, "pairs": n, "accuracy": 0.5} for m in "ab" for n in (4, 8)]
    parity = [{"model": m, "length": n, "accuracy": 0.5} for m in "ab" for n in (16, 64)]
    timing = [{"T": T, "form": f, "seconds": 0.1} for T in (16, 64) for f in M.FORMS]
    for fig in (M.plot_retrieval(retrieval), M.plot_recall(recall), M.plot_parity(parity, 16),
                M.plot_form_timings(timing)):
        for ax in fig.axes:
            assert ax.get_xlabel()
        assert fig.axes[0].get_ylabel()
        matplotlib.pyplot.close(fig)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("call, error, message", [
    (lambda q, k, v, b: M.linear_attention_parallel(q[0], k, v), ValueError, "q must have shape"),
    (lambda q, k, v, b: M.linear_attention_recurrent(q, k[:, :3], v), ValueError, "same shape"),
    (lambda q, k, v, b: M.linear_attention_parallel(q, k, v[:1]), ValueError, "v must start with"),
    (lambda q, k, v, b: M.linear_attention_parallel(q, k, v.float()), TypeError, "share one dtype"),
    (lambda q, k, v, b: M.linear_attention_recurrent(q, k, v, normalize=1), TypeError,
     "normalize must be True or False"),
    (lambda q, k, v, b: M.linear_attention_chunkwise(q, k, v, 0), ValueError, "chunk must be >= 1"),
    (lambda q, k, v, b: M.softmax_attention(q.long(), k, v), TypeError, "floating-point"),
    (lambda q, k, v, b: M.delta_rule_recurrent(q, k, v, b[:, :2]), ValueError,
     "beta must have shape"),
    (lambda q, k, v, b: M.delta_rule_recurrent(q, k, v, 3 * b + 2.5), ValueError,
     "beta must be <= 2"),
    (lambda q, k, v, b: M.delta_rule_recurrent(q, k, v, b, alpha=-b), ValueError,
     "alpha must be >= 0"),
    (lambda q, k, v, b: M.delta_rule_chunkwise(q, k, v, b, 2.5), TypeError, "chunk must be an int"),
    (lambda q, k, v, b: M.delta_rule_chunkwise(q, k, v, b * float("nan"), 4), ValueError,
     "beta must hold finite"),
    (lambda q, k, v, b: M.mlstm_recurrent(q, k, v, b, b), ValueError, "log_f must be <= 0"),
    (lambda q, k, v, b: M.mlstm_recurrent(q, k, v, b, -b, stabilize="yes"), TypeError,
     "stabilize must be True or False"),
    (lambda q, k, v, b: M.paper_gated_delta_loop(q, k, v, b, b.float()), TypeError,
     "alpha must have the dtype of k"),
    (lambda q, k, v, b: M.paper_mlstm_loop(q, k, v, b, b[0]), ValueError, "f_pre must have shape"),
    (lambda q, k, v, b: M.elu_plus_one([1.0]), TypeError, "x must be a torch.Tensor"),
])
def test_memory_functions_name_the_bad_argument(call, error, message):
    q, k, v = qkv(2, 6, 4, 3, unit=True)
    with pytest.raises(error, match=message):
        call(q, k, v, gates(2, 6))


@pytest.mark.parametrize("call, error, message", [
    (lambda: M.write_pairs(torch.zeros(2, 3, 4), torch.zeros(2, 2, 4), "delta"), ValueError,
     "same \\(trials, pairs\\)"),
    (lambda: M.write_pairs(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "hebb"), ValueError,
     "rule must be one of"),
    (lambda: M.write_pairs(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "delta", 3.0), ValueError,
     "beta must be in \\[0, 2\\]"),
    (lambda: M.write_pairs(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "delta", "1"), TypeError,
     "beta must be a number"),
    (lambda: M.retrieval_error(torch.zeros(2, 4, 5), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)),
     ValueError, "S must have shape"),
    (lambda: M.retrieval_error(torch.full((2, 4, 4), float("nan")), torch.zeros(2, 3, 4),
                               torch.zeros(2, 3, 4)), ValueError, "S must hold finite numbers"),
    (lambda: M.random_pairs(0, 3, 4, generator=torch.Generator()), ValueError, "trials must be >= 1"),
    (lambda: M.random_pairs(10**6, 10**6, 4, generator=torch.Generator()), ValueError,
     "keys and values would hold"),
    (lambda: M.MatrixMemory("delta", 4, 2**40), ValueError, "d_key must be at most"),
    (lambda: M.random_pairs(1, 3, 4, generator=0), TypeError, "generator must be Generator"),
    (lambda: M.retrieval_curves(4, [8]), TypeError, "pair_counts must be a non-empty list"),
    (lambda: M.retrieval_curves([4], [0]), ValueError, "key_sizes must be >= 1"),
    (lambda: M.mqar_batch(2, 30, generator=torch.Generator()), ValueError, "pairs must be at most"),
    (lambda: M.mqar_batch(2, [], generator=torch.Generator()), TypeError, "pairs must be an int"),
    (lambda: M.mqar_batch(0, 4, generator=torch.Generator()), ValueError, "batch_size must be >= 1"),
    (lambda: M.parity_batch(2, 0, generator=torch.Generator()), ValueError, "length must be >= 1"),
    (lambda: M.MatrixMemory("gru", 4, 3), ValueError, "kind must be one of"),
    (lambda: M.MatrixMemory("delta", 4, 0), ValueError, "d_key must be >= 1"),
    (lambda: M.MatrixMemory("delta", 4, 3)(torch.zeros(1, 2, 5)), ValueError, "x must have 4 features"),
    (lambda: M.TaskModel("lstm", 5, 2)(torch.zeros(1, 3)), TypeError, "x must be an integer tensor"),
    (lambda: M.TaskModel("lstm", 5, 2)(torch.full((1, 3), 5)), ValueError, "token ids in \\[0, 4\\]"),
    (lambda: M.token_shift(torch.zeros(2, 3)), ValueError, "e must have shape"),
    (lambda: M.make_model("copy", "DeltaNet"), ValueError, "task must be one of"),
    (lambda: M.make_model("mqar", "GRU"), ValueError, "name must be one of"),
    (lambda: M.task_batch("parity", 2, generator=torch.Generator(), pairs=4), ValueError,
     "pairs applies to the task 'mqar' only"),
    (lambda: M.held_out("mqar", "train"), ValueError, "split must be one of"),
    (lambda: M.accuracies("mqar", torch.nn.Linear(2, 2), "test"), TypeError,
     "model must be TaskModel"),
    (lambda: M.train_task("mqar", "DeltaNet", lr=0.0, seed=0), ValueError, "lr must be > 0"),
    (lambda: M.train_task("mqar", "DeltaNet", lr=1e-3, seed=-1), ValueError, "seed must be >= 0"),
    (lambda: M.train_task("mqar", "DeltaNet", lr=1e-3, seed=0, device="tpu"), ValueError,
     "device must name a device"),
    (lambda: M.train_model("mqar", torch.nn.Linear(2, 2), lr=1e-3, seed=0), TypeError,
     "model must be TaskModel"),
    (lambda: M.train_model("copy", M.make_model("mqar", "DeltaNet"), lr=1e-3, seed=0),
     ValueError, "task must be one of"),
    (lambda: M.train_model("mqar", M.make_model("mqar", "DeltaNet"), lr=-1.0, seed=0),
     ValueError, "lr must be > 0"),
    (lambda: M.train_model("mqar", M.make_model("mqar", "DeltaNet"), lr=1e-3, seed=0, steps=0),
     ValueError, "steps must be >= 1"),
    (lambda: M.UnitKeyAdditiveMemory(4, 0), ValueError, "d_key must be >= 1"),
    (lambda: M.UnitKeyAdditiveMemory(4, 3)(torch.zeros(1, 2, 5)), ValueError,
     "x must have 4 features"),
    (lambda: M.UnitKeyAdditiveMemory(4, 3)(torch.zeros(1, 2, 4, dtype=torch.float64)),
     TypeError, "x must have the dtype"),
    (lambda: M.UnitKeyAdditiveMemory(4, 3)(torch.full((1, 2, 4), float("nan"))), ValueError,
     "x must hold finite"),
    (lambda: M.time_forms([]), TypeError, "lengths must be a non-empty list"),
    (lambda: M.time_forms([16], repeats=0), ValueError, "repeats must be >= 1"),
    (lambda: M.median_seconds([{"T": 1}]), ValueError, "every row must be a dict with the keys"),
    (lambda: M.crossover([{"T": 1, "form": "a", "seconds": 1.0}], "a", "b"), ValueError,
     "slow must be a form the rows time"),
    (lambda: M.plot_recall([]), ValueError, "rows must hold at least one row"),
    (lambda: M.plot_recall({"model": "a"}), TypeError, "rows must be a list of dicts"),
    (lambda: M.plot_parity([{"model": "a", "length": 4, "accuracy": 1.0}], 0), ValueError,
     "train_length must be >= 1"),
])
def test_task_and_model_entry_points_name_the_bad_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_every_public_callable_is_covered_by_an_error_test():
    # The list the bad-input census takes over; keep it in step with the module.
    public = sorted(name for name in dir(M) if not name.startswith("_")
                    and callable(getattr(M, name)) and getattr(getattr(M, name), "__module__", "")
                    == M.__name__)
    assert public == sorted([
        "MatrixMemory", "TaskModel", "accuracies", "crossover", "delta_rule_chunkwise",
        "delta_rule_recurrent", "elu_plus_one", "held_out", "linear_attention_chunkwise",
        "linear_attention_parallel", "linear_attention_recurrent", "make_model", "median_seconds",
        "mlstm_recurrent", "mqar_batch", "paper_gated_delta_loop", "paper_mlstm_loop",
        "parity_batch", "plot_parity", "plot_recall", "plot_retrieval", "plot_form_timings",
        "random_pairs", "retrieval_curves", "retrieval_error", "softmax_attention", "task_batch",
        "time_forms", "token_shift", "train_model", "train_task", "UnitKeyAdditiveMemory",
        "write_pairs"])
