"""The validation split, the CPU training budget and shifted digits (book_utils.data)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from book_utils import data


@pytest.fixture(scope="module")
def mnist() -> data.MNIST:
    return data.load_mnist(offline=True, strict=False, verbose=False, validation_fraction=0.125)


def test_validation_is_carved_from_training_stratified_and_disjoint(mnist):
    plain = data.load_mnist(offline=True, strict=False, verbose=False)
    assert len(mnist.y_train) + len(mnist.y_val) == len(plain.y_train)
    assert torch.equal(mnist.x_test, plain.x_test), "the test split is untouched"
    assert torch.equal(mnist.y_val.bincount(), torch.full((10,), len(mnist.y_val) // 10))
    train_rows = {tuple(r) for r in mnist.x_train.flatten(1)[:, ::7].tolist()}
    assert not any(tuple(r) in train_rows for r in mnist.x_val.flatten(1)[:, ::7].tolist())
    again = data.load_mnist(offline=True, strict=False, verbose=False, validation_fraction=0.125)
    assert torch.equal(again.y_val, mnist.y_val), "seeded: the same split every time"
    assert "/ 500 validation /" in mnist.describe()


def test_final_training_joins_train_and_validation(mnist):
    final = mnist.for_final_training()
    assert len(final.y_train) == len(mnist.y_train) + len(mnist.y_val)
    assert final.y_val is None and torch.equal(final.y_test, mnist.y_test)


def test_cpu_budget_caps_training_and_validation():
    big = data.MNIST(torch.rand(9000, 28, 28), torch.arange(9000) % 10, torch.rand(100, 28, 28),
                     torch.arange(100) % 10, "official", "fake")
    capped = data._carve_validation(big, 0.125, 0, torch.device("cpu"))
    assert len(capped.y_train) == data.CPU_TRAIN_DIGITS
    assert len(capped.y_val) == data.CPU_VALIDATION_DIGITS
    assert "CPU budget: 3,500 of 7,880 training digits" in capped.describe()
    uncapped = data._carve_validation(big, 0.125, 0, None)
    assert len(uncapped.y_train) == 7880 and uncapped.budget == ""


def test_standardize_uses_training_statistics_for_every_split(mnist):
    s = data.standardize(mnist)
    assert abs(s.x_train.mean().item()) < 1e-4
    mean, std = mnist.x_train.mean(), mnist.x_train.std()
    torch.testing.assert_close(s.x_val, (mnist.x_val - mean) / std)


def test_split_loaders_and_their_errors(mnist):
    val = data.mnist_loader(mnist, "validation", batch_size=100)
    assert sum(len(y) for _, y in val) == len(mnist.y_val)
    with pytest.raises(ValueError, match="split must be 'train', 'validation' or 'test', got 'dev'"):
        data.mnist_loader(mnist, "dev")
    with pytest.raises(ValueError, match="data has no validation split"):
        data.mnist_loader(dataclasses.replace(mnist, x_val=None, y_val=None), "validation")
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 0.5\), got 0.7"):
        data.load_mnist(offline=True, verbose=False, validation_fraction=0.7)
    with pytest.raises(TypeError, match="device must be str or device, got int"):
        data.load_mnist(offline=True, verbose=False, device=0)


def test_random_shifts_move_whole_digits_and_keep_the_loader_length():
    x = torch.zeros(64, 28, 28)
    x[:, 10:18, 10:18] = 1.0
    loader = data.make_loader(x, torch.zeros(64, dtype=torch.long), batch_size=16)
    shifted = data.RandomShifts(loader, max_shift=2, seed=0)
    assert len(shifted) == len(loader) == 4
    batches = [xb for xb, _ in shifted]
    moved = torch.cat(batches)
    assert torch.equal(moved.sum(dim=(1, 2)), x.sum(dim=(1, 2))), "nothing is cut off"
    assert not torch.equal(moved, x) and (moved != x).any(dim=(1, 2)).float().mean() > 0.5
    assert torch.equal(data.shift_images(x, 0, torch.Generator()), x)
    with pytest.raises(TypeError, match="loader must be a DataLoader"):
        data.RandomShifts(iter([]), 2)
    with pytest.raises(ValueError, match="max_shift must be >= 0, got -1"):
        data.RandomShifts(loader, -1)
