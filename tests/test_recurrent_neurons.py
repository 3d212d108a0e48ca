"""Tests for Chapter 1's module: the classifier's recipe, and the figures (unrolled diagram,
a digit as rows, overlaid learning curves)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from book_utils import data, recurrent_neurons  # noqa: E402
from book_utils.recurrent_neurons import RECIPE, VARIANTS  # noqa: E402


def history(shift: float) -> dict:
    return {"epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9],
            "train_accuracy": [0.5 + shift, 0.7, 0.9], "val_accuracy": [0.4, 0.6, 0.8]}


def test_learning_curves_overlay_every_run_on_two_panels():
    fig = recurrent_neurons.plot_compared_runs({"a": history(0.0), "b": history(0.05)})
    try:
        loss, accuracy = fig.axes
        assert [ax.get_ylabel() for ax in fig.axes] == ["cross-entropy loss (log scale)",
                                                         "accuracy"]
        assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
        labels = [line.get_label() for line in accuracy.lines]
        assert labels == ["a, training", "a, validation", "b, training", "b, validation"]
        (legend,) = fig.legends                      # one legend, shared by both panels
        assert [t.get_text() for t in legend.get_texts()] == labels
        assert loss.get_legend() is None and accuracy.get_legend() is None
        assert [tuple(line.get_ydata()) for line in accuracy.lines][3] == (0.4, 0.6, 0.8)
        assert accuracy.lines[0].get_color() != accuracy.lines[2].get_color()  # one colour per run
        assert accuracy.lines[0].get_linestyle() == "-" and accuracy.lines[1].get_linestyle() == "--"
        assert loss.get_yscale() == "log"
        fig.canvas.draw()        # accuracy in percent, as the chapter's tables give it
        assert accuracy.yaxis.get_major_formatter()(0.9, 0) == "90%"
    finally:
        plt.close(fig)


def test_learning_curves_reject_bad_arguments():
    with pytest.raises(TypeError, match="histories must be dict, got list"):
        recurrent_neurons.plot_compared_runs([history(0.0)])
    with pytest.raises(ValueError, match="histories must name at least one run, got an empty dict"):
        recurrent_neurons.plot_compared_runs({})
    no_validation = {**history(0.0), "val_loss": [], "val_accuracy": []}
    with pytest.raises(ValueError, match=r"histories\['a'\] must record .* missing or empty: "
                                         r"\['val_loss', 'val_accuracy'\]"):
        recurrent_neurons.plot_compared_runs({"a": no_validation})


def test_digit_rows_and_unrolled_diagram():
    fig = recurrent_neurons.plot_digit_rows(torch.rand(28, 28), label=3)
    assert fig.axes[0].get_title() == "the image (label 3)"
    plt.close(fig)
    with pytest.raises(ValueError, match="steps must be at most 8 to stay readable, got 9"):
        recurrent_neurons.draw_unrolled_rnn(9)
    with pytest.raises(TypeError, match="output must be str, got int"):
        recurrent_neurons.draw_unrolled_rnn(2, output=1)


def test_unrolled_diagram_labels_the_shared_weights_on_every_copy():
    fig = recurrent_neurons.draw_unrolled_rnn(3, output="o")
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        # the folded cell and each of the three copies
        assert texts.count("$W_{xh}$") == 4 and texts.count("$W_{hy}$") == 4
        assert texts.count("$W_{hh}$") == 4            # the loop, and each arrow into a copy
        assert "$h_{-1}$" in texts and "$o_{2}$" in texts
    finally:
        plt.close(fig)
    fig = recurrent_neurons.draw_unrolled_rnn(2)
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "$W_{hy}$" not in texts and texts.count("$W_{xh}$") == 3
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- the recipe


def tiny_mnist(n: int = 48) -> data.MNIST:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 28, 28, generator=g), torch.arange(n) % 10
    return data.MNIST(x, y, x[:10].clone(), y[:10].clone(), source="test",
                      x_val=x[:16].clone(), y_val=y[:16].clone())


def test_every_variant_changes_known_entries_of_the_recipe():
    assert VARIANTS["recipe"] == {}
    for name, changes in VARIANTS.items():
        assert set(changes) <= set(RECIPE), name
        assert all(RECIPE[k] != v for k, v in changes.items()), f"{name} changes nothing"
    assert len(VARIANTS["none of them"]) == 5
    assert RECIPE["lr"] in recurrent_neurons.LR_GRID


def test_make_mnist_rnn_starts_orthogonal_only_when_the_recipe_says_so():
    torch.manual_seed(0)
    model = recurrent_neurons.make_mnist_rnn("rnn")
    W_hh = model.recurrent.weight_hh_l0.detach()
    torch.testing.assert_close(W_hh @ W_hh.T, torch.eye(128), atol=1e-5, rtol=0)
    scratch = recurrent_neurons.make_mnist_rnn("scratch_rnn", {**RECIPE, "hidden_size": 16})
    W = scratch.recurrent.cell.W_hh.detach()
    torch.testing.assert_close(W.T @ W, torch.eye(16), atol=1e-5, rtol=0)
    plain = recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "orthogonal": False})
    W = plain.recurrent.weight_hh_l0.detach()
    assert (W @ W.T - torch.eye(128)).abs().max() > 0.5
    assert W.abs().max() <= 128 ** -0.5                 # PyTorch's uniform initialisation


@pytest.mark.parametrize("changes", [{}, {"schedule": None, "clip_norm": None,
                                          "optimizer": "adam", "max_shift": 0}])
def test_train_mnist_rnn_follows_the_recipe_and_is_repeatable(changes):
    recipe = {**RECIPE, "hidden_size": 8, "epochs": 2, "batch_size": 16, **changes}
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = recurrent_neurons.make_mnist_rnn("rnn", recipe)
        history = recurrent_neurons.train_mnist_rnn(model, tiny_mnist(), recipe, seed=3)
        runs.append((history, model.head.weight.detach().clone()))
    (history, weights), (_, again) = runs
    assert history["epoch"] == [1, 2] and len(history["val_accuracy"]) == 2
    assert len(history["step_loss"]) == 2 * 3          # 48 digits in batches of 16
    torch.testing.assert_close(weights, again, atol=0, rtol=0)
    final = recurrent_neurons.train_mnist_rnn(
        recurrent_neurons.make_mnist_rnn("rnn", recipe), tiny_mnist().for_final_training(),
        recipe)
    assert final["val_accuracy"] == []                  # no validation split to score


@pytest.mark.parametrize("call, error, match", [
    (lambda: recurrent_neurons.make_mnist_rnn("lstm"), ValueError,
     r"kind must be one of \('rnn', 'scratch_rnn'\), got 'lstm'"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {"lr": 1.0}), ValueError,
     r"recipe must have the keys of RECIPE, got missing \['batch_size'"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", [1]), TypeError,
     "recipe must be dict, got list"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "lr": 0.0}), ValueError,
     r"recipe\['lr'\] must be > 0.0, got 0.0"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "schedule": "step"}),
     ValueError, r"recipe\['schedule'\] must be one of \('onecycle', 'cosine'\), got 'step'"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "optimizer": "sgd"}),
     ValueError, r"recipe\['optimizer'\] must be one of \('adam', 'rmsprop'\), got 'sgd'"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "max_shift": -1}),
     ValueError, r"recipe\['max_shift'\] must be >= 0, got -1"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "orthogonal": 1}),
     TypeError, r"recipe\['orthogonal'\] must be True or False, got int"),
    (lambda: recurrent_neurons.make_mnist_rnn("rnn", {**RECIPE, "clip_norm": -1.0}),
     ValueError, r"recipe\['clip_norm'\] must be > 0.0, got -1.0"),
    (lambda: recurrent_neurons.train_mnist_rnn("model", tiny_mnist()), TypeError,
     "model must be Module, got str"),
    (lambda: recurrent_neurons.train_mnist_rnn(recurrent_neurons.make_mnist_rnn(), "digits"),
     TypeError, "split must be MNIST, got str"),
    (lambda: recurrent_neurons.train_mnist_rnn(recurrent_neurons.make_mnist_rnn(),
                                               tiny_mnist(), seed=-1),
     ValueError, "seed must be >= 0, got -1"),
    (lambda: recurrent_neurons.train_mnist_rnn(recurrent_neurons.make_mnist_rnn(),
                                               tiny_mnist(), verbose="yes"),
     TypeError, "verbose must be True or False, got str"),
])
def test_recipe_functions_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def ablation_rows() -> list[dict]:
    scores = {"recipe": [0.96, 0.97, 0.95], "no shifts": [0.95, 0.95, 0.96],
              "same": [0.96, 0.97, 0.95]}
    return [{"variant": v, "seed": seed, "val": score}
            for v, values in scores.items() for seed, score in zip((3, 4, 5), values)]


def test_paired_differences_pair_runs_by_seed():
    table = recurrent_neurons.paired_differences(ablation_rows(), "recipe")
    assert [row["variant"] for row in table] == ["no shifts", "same"]
    shifts, same = table
    # differences 0.01, 0.02, -0.01: mean 0.00667, sd 0.01528, t = 0.756
    assert shifts["n"] == 3 and shifts["ahead"] == 2
    assert shifts["mean"] == pytest.approx(0.02 / 3)
    assert shifts["std"] == pytest.approx(0.0152753, rel=1e-5)
    assert shifts["t"] == pytest.approx(0.7559289, rel=1e-5)
    assert same["mean"] == 0 and same["t"] == 0 and same["ahead"] == 0
    shuffled = list(reversed(ablation_rows()))            # row order does not matter
    assert recurrent_neurons.paired_differences(shuffled, "recipe")[1]["mean"] == shifts["mean"]


def test_paired_differences_of_a_constant_gap_have_infinite_t():
    rows = [{"variant": v, "seed": s, "acc": base + s / 100}
            for v, base in (("a", 0.9), ("b", 0.8)) for s in range(3)]
    (row,) = recurrent_neurons.paired_differences(rows, "a", value="acc")
    assert row["mean"] == pytest.approx(0.1) and row["t"] == float("inf")


@pytest.mark.parametrize("rows, kwargs, error, match", [
    ("rows", {}, TypeError, "rows must be list, got str"),
    ([], {}, ValueError, r"rows must be a non-empty list of dicts with keys \['seed', 'val', "
                         r"'variant'\], got 0 rows"),
    ([{"variant": "recipe", "val": 0.9}], {}, ValueError, r"rows \[0\] without them"),
    (ablation_rows(), {"baseline": "Adam"}, ValueError,
     r"baseline must be one of the rows' variant values .*got 'Adam'"),
    (ablation_rows()[:-1], {}, ValueError,
     r"every variant must have the baseline's seeds \[3, 4, 5\] to be paired, got \[3, 4\] "
     r"for 'same'"),
    (ablation_rows() + [ablation_rows()[0]], {}, ValueError,
     r"one run per seed and variant, got seeds \[3, 3, 4, 5\] for 'recipe'"),
    ([r for r in ablation_rows() if r["seed"] == 3], {}, ValueError,
     "at least 2 seeds per variant for a spread, got 1"),
    (ablation_rows(), {"baseline": 1}, TypeError, "baseline must be str, got int"),
    (ablation_rows(), {"value": "test"}, ValueError, r"keys \['seed', 'test', 'variant'\]"),
])
def test_paired_differences_reject_bad_arguments(rows, kwargs, error, match):
    with pytest.raises(error, match=match):
        recurrent_neurons.paired_differences(rows, **{"baseline": "recipe", **kwargs})
