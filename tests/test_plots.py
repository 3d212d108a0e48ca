"""Figures: right content, labelled axes, clear errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from book_utils import plots, recurrent_neurons


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(epochs=3, accuracy=True):
    h = {"epoch": list(range(1, epochs + 1)), "train_loss": [1.0, 0.5, 0.25][:epochs],
         "val_loss": [1.1, 0.6, 0.4][:epochs]}
    if accuracy:
        h["train_accuracy"] = [0.5, 0.7, 0.9][:epochs]
        h["val_accuracy"] = [0.4, 0.6, 0.8][:epochs]
    return h


def test_palette_is_okabe_ito_and_style_uses_it():
    assert plots.PALETTE["blue"] == "#0072B2" and len(plots.CYCLE) == 7
    plots.use_book_style()
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"][0] == "#0072B2"


def test_plot_history_draws_loss_and_accuracy_with_labels():
    fig = plots.plot_history(history())
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "accuracy"
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() == "epoch"
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [0.4, 0.6, 0.8])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "held-out"]


def test_plot_history_without_accuracy_has_one_panel():
    fig = plots.plot_history(history(accuracy=False))
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "loss"


def test_plot_digit_rows_shows_image_and_transposed_sequence():
    image = torch.arange(28 * 28, dtype=torch.float32).reshape(28, 28)
    fig = recurrent_neurons.plot_digit_rows(image, label=7)
    left, right = fig.axes
    np.testing.assert_array_equal(left.images[0].get_array(), image.numpy())
    np.testing.assert_array_equal(right.images[0].get_array(), image.numpy().T)
    assert "label 7" in left.get_title()
    assert right.get_xlabel().startswith("time step") and left.get_ylabel().startswith("row")


def test_unrolled_rnn_diagram_has_one_node_per_step():
    fig = recurrent_neurons.draw_unrolled_rnn(steps=4, output="y")
    texts = [t.get_text() for t in fig.axes[0].texts]
    for t in range(4):
        assert f"$h_{{{t}}}$" in texts and f"$x_{{{t}}}$" in texts and f"$y_{{{t}}}$" in texts
    assert "$h_{4}$" not in texts


def test_plot_errors():
    with pytest.raises(TypeError, match="history must be dict, got list"):
        plots.plot_history([1, 2])
    with pytest.raises(ValueError, match=r"history must have keys 'epoch' and 'train_loss', missing \['train_loss'\]"):
        plots.plot_history({"epoch": [1]})
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_history({"epoch": [], "train_loss": []})
    with pytest.raises(ValueError, match=r"image must be 2-D, got shape \(1, 28, 28\)"):
        recurrent_neurons.plot_digit_rows(np.zeros((1, 28, 28)))
    with pytest.raises(TypeError, match="image must be a torch.Tensor or numpy.ndarray, got list"):
        recurrent_neurons.plot_digit_rows([[0.0]])
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        recurrent_neurons.draw_unrolled_rnn(steps=0)
    with pytest.raises(ValueError, match="steps must be at most 8 to stay readable, got 9"):
        recurrent_neurons.draw_unrolled_rnn(steps=9)
    fig, ax = plots.diagram_axes(2, 2)
    with pytest.raises(ValueError, match="role must be one of .* got 'edge'"):
        plots.draw_box(ax, (1, 1), "x", role="edge")


def test_book_style_as_a_context_manager_gives_the_settings_back():
    plt.rcParams["figure.dpi"] = 72
    before = dict(plt.rcParams)
    with plots.use_book_style():
        assert plt.rcParams["figure.dpi"] == 150 and plt.rcParams["axes.grid"]
        plt.rcParams["lines.linewidth"] = 5.0  # changed inside the block: given back too
    assert dict(plt.rcParams) == before
    plots.use_book_style()  # a plain call, as session.setup makes, keeps the style
    assert plt.rcParams["figure.dpi"] == 150
    plt.rcParams.update(before)


def test_diagram_part_errors():
    fig, ax = plots.diagram_axes(3, 2)
    with pytest.raises(ValueError, match="width must be > 0, got -1.0"):
        plots.diagram_axes(-1, 2)
    with pytest.raises(ValueError, match="height must be a finite number, got nan"):
        plots.diagram_axes(3, float("nan"))
    with pytest.raises(TypeError, match="figsize must be a pair of numbers, got 4"):
        plots.diagram_axes(3, 2, figsize=4)
    with pytest.raises(TypeError, match="ax must be Axes, got NoneType"):
        plots.draw_box(None, (1, 1), "h")
    with pytest.raises(TypeError, match=r"center must be a pair of numbers, got \(\)"):
        plots.draw_box(ax, (), "h")
    with pytest.raises(ValueError, match=r"size must be a pair of positive numbers, got \(0, 1\)"):
        plots.draw_box(ax, (1, 1), "h", size=(0, 1))
    with pytest.raises(TypeError, match="text must be str, got int"):
        plots.draw_box(ax, (1, 1), 3)
    with pytest.raises(ValueError, match=r"end must be a pair of finite numbers, got \(1, inf\)"):
        plots.draw_arrow(ax, (0, 0), (1, float("inf")))
    with pytest.raises(ValueError, match="curve must be a finite number, got nan"):
        plots.draw_arrow(ax, (0, 0), (1, 1), curve=float("nan"))
    with pytest.raises(TypeError, match=r"labels must be two strings \(training, held-out\), got 'ab'"):
        plots.plot_history(history(), labels="ab")
    with pytest.raises(ValueError, match="dim must be >= 0, got -1"):
        plots.as_numpy("x", np.zeros(3), dim=-1)
