"""Tests for Chapter 1's figures: the unrolled diagram, a digit as rows, overlaid learning curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from book_utils import recurrent_neurons  # noqa: E402


def history(shift: float) -> dict:
    return {"epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9],
            "train_accuracy": [0.5 + shift, 0.7, 0.9], "val_accuracy": [0.4, 0.6, 0.8]}


def test_learning_curves_overlay_every_run_on_two_panels():
    fig = recurrent_neurons.plot_compared_runs({"a": history(0.0), "b": history(0.05)})
    try:
        loss, accuracy = fig.axes
        assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
        assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
        labels = [line.get_label() for line in accuracy.lines]
        assert labels == ["a, training", "a, validation", "b, training", "b, validation"]
        assert [tuple(line.get_ydata()) for line in accuracy.lines][3] == (0.4, 0.6, 0.8)
        assert accuracy.lines[0].get_color() != accuracy.lines[2].get_color()  # one colour per run
        assert accuracy.lines[0].get_linestyle() == "-" and accuracy.lines[1].get_linestyle() == "--"
        assert loss.get_yscale() == "log"
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
