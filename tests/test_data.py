"""Tests for book_utils.data: IDX parsing, downloads under faults, the MNIST routes and loaders.

Nothing here touches the internet: downloads go to HTTP servers on 127.0.0.1
(some of them misbehave on purpose), and every test runs with the mirrors
pointed at a closed local port by default. Deadlines are made small through
parameters, and every misbehaving server stops on its own after at most ~20 s,
so a test that failed to give up would show as a failure, not as a hang.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import importlib.util
import io
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils import data

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_FILES = dict(data.MNIST_FILES)
NAMES = [name for name, _, _ in OFFICIAL_FILES.values()]
TRAIN_IMAGES = OFFICIAL_FILES["train_images"][0]
SLACK = 2.0  # seconds on top of a bound: the machine is busy, the faults would take >= 10 s
PROGRESS = re.compile(r"\S+\.gz( \[[#-]{20}\] +\d+% [\d.]+/[\d.]+ MB| [\d.]+ MB)")


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


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write_checksums(path: Path, folder: Path) -> Path:
    """The checksum hook's JSON for the four files in ``folder``."""
    table = {name: {"md5": data.md5sum(folder / name), "bytes": (folder / name).stat().st_size}
             for name in NAMES}
    path.write_text(json.dumps(table))
    return path


def fallback_line(out: str) -> str:
    """The one line a reader sees about the fallback; anything before it is a progress bar."""
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("MNIST:")] == lines[-1:], out
    assert all(PROGRESS.fullmatch(line) for line in lines[:-1]), out
    assert "Errno" not in lines[-1] and "Traceback" not in out
    return lines[-1]


FRIENDLY = "MNIST: embedded sample of 5,000 real digits ({}) — 4,000 train / 1,000 test"


@pytest.fixture(autouse=True)
def no_internet_no_home_cache(monkeypatch, tmp_path):
    """Keep every test away from the real mirrors, the user's cache and the user's settings."""
    monkeypatch.setattr(data, "MIRRORS", [f"http://127.0.0.1:{closed_port()}/"])
    monkeypatch.setenv("RNN_BOOK_DATA", str(tmp_path / "default-cache"))
    for name in ("RNN_BOOK_OFFLINE", "RNN_BOOK_STRICT", "RNN_BOOK_MNIST_CHECKSUMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not see these requests


class FaultHandler(http.server.SimpleHTTPRequestHandler):
    """Serves its folder at ``/NAME``, and misbehaves at ``/MODE/NAME``.

    trickle: announces the file's length, then sends one byte every 50 ms.
    endless: no Content-Length, a stream of zeros.
    truncated: announces the file's length, sends half of it and hangs up.
    stall: announces the file's length, sends 10 bytes, then nothing.
    slow-headers: sends the headers one byte every 50 ms, never finishing them.
    Every loop is bounded (at most ~20 s) and stops when the test ends.
    """

    stop: threading.Event
    sent: dict

    def log_message(self, *args):  # the default writes every request to stderr
        pass

    def do_GET(self):
        mode, _, name = self.path.lstrip("/").partition("/")
        serve = getattr(self, "serve_" + mode.replace("-", "_"), None)
        try:
            if serve is None:
                super().do_GET()
            else:
                serve((Path(self.directory) / name).read_bytes(), mode)
        except ConnectionError:  # the client hung up: that is how these requests end
            pass

    def send(self, payload: bytes, mode: str) -> None:
        self.wfile.write(payload)
        self.wfile.flush()
        self.sent[mode] = self.sent.get(mode, 0) + len(payload)

    def serve_trickle(self, body, mode):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body[:400]:
            if self.stop.wait(0.05):
                return
            self.send(bytes([byte]), mode)

    def serve_endless(self, body, mode):
        self.send_response(200)
        self.end_headers()
        for _ in range(400):  # 400 x 256 KiB = 100 MiB at most
            if self.stop.is_set():
                return
            self.send(b"\0" * (1 << 18), mode)

    def serve_truncated(self, body, mode):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.send(body[: len(body) // 2], mode)

    def serve_stall(self, body, mode):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.send(body[:10], mode)
        self.stop.wait(20)

    def serve_slow_headers(self, body, mode):
        self.wfile.write(b"HTTP/1.0 200 OK\r\n")
        for _ in range(400):
            if self.stop.wait(0.05):
                return
            self.send(b"X", mode)


@pytest.fixture
def sent() -> dict:
    """Bytes written by each misbehaving mode of ``server``, by mode."""
    return {}


@pytest.fixture
def server(tmp_path, sent):
    """An HTTP server on 127.0.0.1 serving ``served``; yields (folder, base url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    stop = threading.Event()
    handler_class = type("Handler", (FaultHandler,), {"stop": stop, "sent": sent})
    handler = functools.partial(handler_class, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def written(monkeypatch) -> list[int]:
    """Sizes of the ``.part`` files that downloads removed: the bytes a failed download wrote."""
    sizes = []
    unlink = Path.unlink

    def spy(self, missing_ok=False):
        if self.name.endswith(".part") and self.exists():
            sizes.append(self.stat().st_size)
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", spy)
    return sizes


@pytest.fixture
def silent_resolver(monkeypatch):
    """Name lookups of ``*.invalid`` hosts never answer (until the test ends, at most 20 s)."""
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            release.wait(20)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    release.set()


def tiny_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(30, 28, 28)).astype(np.uint8),
        "train_labels": rng.integers(0, 10, size=30).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(10, 28, 28)).astype(np.uint8),
        "test_labels": rng.integers(0, 10, size=10).astype(np.uint8),
    }
    arrays["train_images"][0, 0, 0], arrays["train_images"][0, 0, 1] = 0, 255
    return arrays


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A folder with four tiny official-format files, and the checksum hook set to their sums."""
    arrays = tiny_arrays()
    folder = tmp_path / "cache"
    folder.mkdir()
    for key, (name, _, _) in OFFICIAL_FILES.items():
        write(folder / name, gzip.compress(idx_bytes(arrays[key])))
    hook = write_checksums(tmp_path / "checksums.json", folder)
    monkeypatch.setenv("RNN_BOOK_MNIST_CHECKSUMS", str(hook))
    return folder, arrays


@pytest.fixture
def mirror_files(tiny_mnist, server):
    """``server`` serves copies of the tiny files; returns (cache folder, base url)."""
    folder, _ = tiny_mnist
    served, url = server
    for name in NAMES:
        write(served / name, (folder / name).read_bytes())
    return folder, url


@pytest.fixture
def fast(monkeypatch):
    """Small bounds for load_mnist's downloads: 0.5 s per step, 1 s per file and mirror."""
    monkeypatch.setattr(data, "TIMEOUT", 0.5)
    monkeypatch.setattr(data, "DEADLINE", 1.0)
    return 0.5, 1.0


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


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_download_files_follow_the_umask(server, tmp_path, umask):
    """A shared cache must be readable by the group (and others, with umask 022), not 0600."""
    folder, url = server
    write(folder / "blob.bin", b"shared")
    old = os.umask(umask)
    try:
        dest = data.download(url + "blob.bin", tmp_path / "new" / "blob.bin", progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o777 & ~umask


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


# ---------------------------------------------------------------- download: faults, each bounded


def test_download_trickle_ends_at_the_deadline(server, sent, written, tmp_path):
    """One byte every 50 ms never trips the read timeout; the rate floor ends it before the deadline."""
    folder, url = server
    write(folder / "blob.bin", b"z" * 100_000)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"download too slow: \d+ of 100,000 bytes .* 1 s deadline"):
        data.download(url + "trickle/blob.bin", tmp_path / "blob.bin", timeout=0.5, deadline=1,
                      progress=False)
    elapsed = time.monotonic() - start
    assert elapsed < 1 + 0.5 + SLACK  # deadline + one read timeout; unbounded it takes 20 s
    # (+ 1: the server counts a byte after sending it, the client may have written it already)
    assert len(written) == 1 and 0 < written[0] <= sent["trickle"] + 1 < 400
    assert only_files(tmp_path) == ["served"]


def test_download_without_content_length_stops_at_the_size(server, sent, written, tmp_path):
    """An endless body without Content-Length: no more than ``size`` bytes reach the disk."""
    folder, url = server
    write(folder / "blob.bin", b"")
    with pytest.raises(ValueError, match=r"download too large: .* more than the 300,000 bytes"):
        data.download(url + "endless/blob.bin", tmp_path / "blob.bin", size=300_000, timeout=1,
                      progress=False)
    # The cap holds: the error says more than 300,000 bytes came, and no more reached the disk.
    # (The server's own count can lag: it counts a chunk after sending it.)
    assert len(written) == 1 and written[0] <= 300_000
    assert only_files(tmp_path) == ["served"]


def test_download_announced_size_mismatch_is_rejected_before_writing(server, written, tmp_path):
    folder, url = server
    write(folder / "blob.bin", b"q" * 5_000)
    with pytest.raises(ValueError, match=r"announces 5,000 bytes, expected 4,000"):
        data.download(url + "blob.bin", tmp_path / "blob.bin", size=4_000, progress=False)
    assert written == [] and only_files(tmp_path) == ["served"]


def test_download_truncated_body_is_not_an_md5_mismatch(server, written, tmp_path):
    folder, url = server
    payload = b"t" * 10_000
    write(folder / "blob.bin", payload)
    md5 = hashlib.md5(payload).hexdigest()
    with pytest.raises(ValueError, match=r"^download truncated: got 5,000 of 10,000 bytes from http"):
        data.download(url + "truncated/blob.bin", tmp_path / "blob.bin", md5, timeout=2,
                      progress=False)
    assert written == [5_000] and only_files(tmp_path) == ["served"]


def test_download_slow_headers_end_within_the_timeout(server, sent, tmp_path):
    """Headers sent a byte at a time: the connection phase is bounded as a whole."""
    folder, url = server
    write(folder / "blob.bin", b"h" * 100)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer from 127\.0\.0\.1 within 0\.5 s"):
        data.download(url + "slow-headers/blob.bin", tmp_path / "blob.bin", timeout=0.5)
    assert time.monotonic() - start < 0.5 + SLACK
    assert 0 < sent["slow-headers"] < 400
    assert only_files(tmp_path) == ["served"]


def test_download_silent_resolver_ends_within_the_timeout(silent_resolver, tmp_path):
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer from mirror\.invalid within 0\.5 s"):
        data.download("https://mirror.invalid/x.gz", tmp_path / "x.gz", timeout=0.5)
    assert time.monotonic() - start < 0.5 + SLACK
    assert only_files(tmp_path) == []


def test_download_reports_a_stalled_read_plainly(server, sent, written, tmp_path):
    folder, url = server
    write(folder / "blob.bin", b"s" * 100)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no data from http\S+ for 0\.5 s"):
        data.download(url + "stall/blob.bin", tmp_path / "blob.bin", timeout=0.5, progress=False)
    assert time.monotonic() - start < 0.5 + SLACK
    assert written == [10] and only_files(tmp_path) == ["served"]


@pytest.mark.parametrize("nested", [False, True], ids=["file", "file-above"])
def test_download_cache_path_that_is_a_file(tmp_path, nested):
    blocker = write(tmp_path / "cache", b"not a folder")
    dest = (blocker / "sub" if nested else blocker) / "x.gz"
    message = rf"^cache path {re.escape(str(blocker))} is a file, not a folder$"
    with pytest.raises(NotADirectoryError, match=message):
        data.download("http://127.0.0.1:1/x.gz", dest)
    assert blocker.read_bytes() == b"not a folder"


# ---------------------------------------------------------------- .part files left by a killed download


KILLED_DOWNLOAD = """
import sys
from book_utils import data
data.download(sys.argv[1], sys.argv[2], timeout=5, deadline=60, progress=False)
"""


def test_part_file_of_a_killed_download_is_removed_by_a_later_load(server, tmp_path):
    folder, url = server
    write(folder / TRAIN_IMAGES, b"k" * 1_000)
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD,
                              url + "trickle/" + TRAIN_IMAGES, str(cache / TRAIN_IMAGES)])
    try:
        for _ in range(600):  # importing torch may take a while on a busy machine
            parts = list(cache.glob("*.part")) if cache.is_dir() else []
            if parts or child.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(parts) == 1  # SIGKILL gives no chance to clean up: the fault is real

    data.load_mnist(cache, offline=True, verbose=False)
    assert only_files(cache) == [parts[0].name]  # may still be a live download: kept

    old = time.time() - data._STALE_PART_SECONDS - 1
    os.utime(parts[0], (old, old))
    data.load_mnist(cache, offline=True, verbose=False)
    assert only_files(cache) == []


def test_stale_part_cleanup_spares_other_files(tmp_path):
    old = time.time() - 3600
    keep = [write(tmp_path / "notes.txt", b"mine"), write(tmp_path / ".other.gz.1.part", b"x")]
    stale = write(tmp_path / f".{NAMES[3]}.abc.part", b"x")
    for path in [*keep, stale]:
        os.utime(path, (old, old))
    data.load_mnist(tmp_path, offline=True, verbose=False)
    assert only_files(tmp_path) == sorted(p.name for p in keep)


# ---------------------------------------------------------------- load_mnist: official route


def test_load_mnist_official_from_cache(tiny_mnist, capsys):
    folder, arrays = tiny_mnist
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "official" and mnist.fallback_reason == ""
    assert mnist.x_train.shape == (30, 28, 28) and mnist.x_test.shape == (10, 28, 28)
    assert mnist.y_train.shape == (30,) and mnist.y_test.shape == (10,)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.x_train.min().item() == 0.0 and mnist.x_train.max().item() == 1.0
    torch.testing.assert_close(
        mnist.x_train, torch.from_numpy(arrays["train_images"]).float() / 255
    )
    assert mnist.y_test.tolist() == arrays["test_labels"].tolist()
    out, err = capsys.readouterr()
    hook = os.environ["RNN_BOOK_MNIST_CHECKSUMS"]
    # The checksum hook is named: these files must never pass for MNIST.
    assert out == (f"MNIST: official-format files in {folder}, checksums from {hook} "
                   "— 30 train / 10 test\n")
    assert err == ""
    assert str(mnist) == mnist.describe() == out.strip()


def test_load_mnist_official_line_without_the_hook(tiny_mnist, monkeypatch, capsys):
    folder, _ = tiny_mnist
    files = data.expected_files()
    monkeypatch.delenv("RNN_BOOK_MNIST_CHECKSUMS")
    monkeypatch.setattr(data, "MNIST_FILES", files)  # as if these were the published sums
    data.load_mnist(folder, offline=True)
    assert capsys.readouterr().out == f"MNIST: official files in {folder} — 30 train / 10 test\n"


def test_load_mnist_uses_rnn_book_data_by_default(tiny_mnist, monkeypatch):
    folder, _ = tiny_mnist
    monkeypatch.setenv("RNN_BOOK_DATA", str(folder))
    monkeypatch.setenv("RNN_BOOK_OFFLINE", "1")
    assert data.load_mnist(verbose=False).source == "official"


def test_load_mnist_refetches_corrupt_cached_file(mirror_files, monkeypatch, capsys):
    folder, url = mirror_files
    md5 = data.expected_files()["train_images"][1]
    write(folder / TRAIN_IMAGES, b"not the right bytes")
    # The first mirror is down, so the second one must be tried.
    monkeypatch.setattr(data, "MIRRORS", [f"http://127.0.0.1:{closed_port()}/", url])

    mnist = data.load_mnist(folder, offline=False)
    assert mnist.source == "official"
    torch.testing.assert_close(
        mnist.x_train, torch.from_numpy(tiny_arrays()["train_images"]).float() / 255
    )
    assert data.md5sum(folder / TRAIN_IMAGES) == md5
    out = capsys.readouterr().out
    assert f"MNIST: cached {folder / TRAIN_IMAGES} is corrupt" in out
    assert "fetching it again" in out
    assert out.splitlines()[-1].startswith("MNIST: official-format files in")


def test_load_mnist_downloads_missing_files(mirror_files, monkeypatch, tmp_path):
    _, url = mirror_files
    monkeypatch.setattr(data, "MIRRORS", [url])
    empty = tmp_path / "fresh"
    mnist = data.load_mnist(empty, offline=False, verbose=False)
    assert mnist.source == "official"
    assert mnist.y_train.tolist() == tiny_arrays()["train_labels"].tolist()
    assert only_files(empty) == sorted(NAMES)


def test_load_mnist_moves_to_the_mirror_that_works(mirror_files, fast, monkeypatch, tmp_path):
    """A trickling first mirror costs one deadline, not one per file."""
    _, url = mirror_files
    monkeypatch.setattr(data, "MIRRORS", [url + "trickle/", url])
    start = time.monotonic()
    mnist = data.load_mnist(tmp_path / "fresh", offline=False, verbose=False)
    elapsed = time.monotonic() - start
    assert mnist.source == "official"
    timeout, deadline = fast
    assert elapsed < deadline + timeout + SLACK  # four files from the trickle: 4 s or more
    assert only_files(tmp_path / "fresh") == sorted(NAMES)


def test_load_mnist_offline_never_uses_corrupt_cache(tiny_mnist, capsys):
    folder, _ = tiny_mnist
    name = NAMES[3]
    write(folder / name, b"corrupt")
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "embedded"
    line = fallback_line(capsys.readouterr().out)
    assert line == FRIENDLY.format("cached official files are corrupt, network off")
    assert f"cached {folder / name} is corrupt (md5 " in mnist.fallback_reason
    assert mnist.fallback_reason.endswith("network off")


def test_load_mnist_falls_back_when_download_fails(tmp_path, capsys):
    mnist = data.load_mnist(tmp_path / "empty", offline=False)
    assert mnist.source == "embedded"
    line = fallback_line(capsys.readouterr().out)
    assert line == FRIENDLY.format("official files could not be downloaded")
    assert mnist.fallback_reason.startswith(f"download of {TRAIN_IMAGES} failed on 1 mirror(s): ")
    assert "Connection refused" in mnist.fallback_reason


def test_load_mnist_falls_back_on_mismatched_counts(tiny_mnist, tmp_path, capsys):
    folder, _ = tiny_mnist
    write(folder / data.MNIST_FILES["train_labels"][0], gzip.compress(idx_bytes(np.zeros(29))))
    write_checksums(Path(os.environ["RNN_BOOK_MNIST_CHECKSUMS"]), folder)
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "embedded"
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format("official files unusable")
    assert "30 images but train-labels-idx1-ubyte.gz has 29 labels" in mnist.fallback_reason


# ---------------------------------------------------------------- load_mnist: faults on the mirrors


FAULTS = {
    # mirror mode: (reason in fallback_reason, bound in units of (timeout, deadline) per mirror)
    "trickle": (r"download too slow: \d+ of [\d,]+ bytes", (1, 1)),
    "endless": (r"download too large: \S+ sent more than the [\d,]+ bytes expected", (1, 0)),
    "truncated": (r"download truncated: got [\d,]+ of [\d,]+ bytes", (1, 0)),
    "slow-headers": (r"no answer from 127\.0\.0\.1 within 0\.5 s", (1, 0)),
    "stall": (r"no data from \S+ for 0\.5 s", (2, 0)),
}


@pytest.mark.parametrize("mode", FAULTS)
def test_load_mnist_faulty_mirrors_fall_back_in_bounded_time(
    mode, mirror_files, fast, sent, written, monkeypatch, tmp_path, capsys
):
    """Both mirrors misbehave: each ends within its bound, one clear line, nothing in the cache."""
    _, url = mirror_files
    monkeypatch.setattr(data, "MIRRORS", [url + mode + "/", url + mode + "/"])
    cache = tmp_path / "fresh"
    start = time.monotonic()
    mnist = data.load_mnist(cache, offline=False)
    elapsed = time.monotonic() - start

    reason, (timeouts, deadlines) = FAULTS[mode]
    timeout, deadline = fast
    assert elapsed < 2 * (timeouts * timeout + deadlines * deadline) + SLACK
    assert mnist.source == "embedded"
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format(
        "official files could not be downloaded")
    assert len(re.findall(reason, mnist.fallback_reason)) == 2, mnist.fallback_reason
    size = data.expected_files()["train_images"][2]
    assert all(n <= size for n in written)  # never more than the file's size on disk
    assert only_files(cache) == []


def _download_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == data._THREAD_NAME and t.is_alive()]


def test_load_mnist_gives_up_on_dripping_mirrors_within_one_bound(mirror_files, sent,
                                                                  monkeypatch, tmp_path, capsys):
    """Two mirrors that drip, one its headers and one its body: load_mnist gives up on both
    within FALLBACK_SECONDS, the one bound for every file and mirror together (3 s here,
    60 s for a reader), and leaves no file and no download thread behind."""
    _, url = mirror_files
    monkeypatch.setattr(data, "MIRRORS", [url + "slow-headers/", url + "trickle/"])
    monkeypatch.setattr(data, "TIMEOUT", 0.5)
    monkeypatch.setattr(data, "FALLBACK_SECONDS", 3.0)
    cache = tmp_path / "fresh"
    data._embedded_sample()  # parsed once per process (2 s): time the downloads alone
    start = time.monotonic()
    mnist = data.load_mnist(cache, offline=False)
    elapsed = time.monotonic() - start
    assert elapsed < data.FALLBACK_SECONDS  # the rate floor leaves the trickle long before
    assert mnist.source == "embedded"
    assert "no answer from 127.0.0.1 within 0.5 s" in mnist.fallback_reason
    assert re.search(r"download too slow: \d+ of [\d,]+ bytes .* at [\d.]+ kB/s the rest would "
                     r"arrive after the [\d.]+ s deadline", mnist.fallback_reason)
    assert 0 < sent["slow-headers"] < 400 and 0 < sent["trickle"] < 400  # both were cut short
    assert only_files(cache) == []
    assert _download_threads() == []  # the header drip's thread ended with its socket
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format(
        "official files could not be downloaded")


def test_load_mnist_budget_spans_every_mirror(mirror_files, monkeypatch, tmp_path):
    """A mirror that stalls uses up the budget: the next one is not even tried."""
    _, url = mirror_files
    monkeypatch.setattr(data, "MIRRORS", [url + "stall/", url])
    monkeypatch.setattr(data, "TIMEOUT", 0.5)
    monkeypatch.setattr(data, "FALLBACK_SECONDS", 1.0)  # 0.5 s to start downloads in
    start = time.monotonic()
    mnist = data.load_mnist(tmp_path / "fresh", offline=False)
    assert time.monotonic() - start < 1.0 + SLACK
    assert mnist.source == "embedded"
    assert re.search(r"stall/\S+: no data from \S+ for 0\.5 s", mnist.fallback_reason)
    assert f"{url}{TRAIN_IMAGES}: not tried, the 1 s for all downloads were spent" in \
        mnist.fallback_reason
    assert _download_threads() == []


def test_load_mnist_silent_resolver_falls_back_in_bounded_time(silent_resolver, fast, monkeypatch,
                                                               tmp_path, capsys):
    monkeypatch.setattr(data, "MIRRORS", ["https://one.invalid/", "https://two.invalid/"])
    start = time.monotonic()
    mnist = data.load_mnist(tmp_path / "fresh", offline=False)
    assert time.monotonic() - start < 2 * fast[0] + SLACK
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format(
        "official files could not be downloaded")
    assert "no answer from one.invalid within 0.5 s" in mnist.fallback_reason
    assert "no answer from two.invalid within 0.5 s" in mnist.fallback_reason
    assert only_files(tmp_path / "fresh") == []


@pytest.mark.parametrize("nested", [False, True], ids=["file", "file-above"])
def test_load_mnist_cache_path_that_is_a_file(tmp_path, capsys, nested):
    blocker = write(tmp_path / "cache", b"not a folder")
    mnist = data.load_mnist(blocker / "sub" if nested else blocker, offline=False)
    message = f"cache path {blocker} is a file, not a folder"
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format(message)
    assert mnist.fallback_reason == message
    with pytest.raises(data.MNISTUnavailable, match=re.escape(message)):
        data.load_mnist(blocker, strict=True)


# ---------------------------------------------------------------- load_mnist: embedded fallback


def test_load_mnist_embedded_fallback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_BOOK_OFFLINE", "1")
    monkeypatch.setenv("RNN_BOOK_DATA", str(tmp_path))
    mnist = data.load_mnist()
    out, err = capsys.readouterr()
    assert err == ""
    assert out == FRIENDLY.format("official files not available offline") + "\n"
    assert mnist.fallback_reason == f"{TRAIN_IMAGES} not in {tmp_path}, network off"

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


def test_standardize_keeps_the_fallback_reason(tmp_path):
    mnist = data.load_mnist(tmp_path, offline=True, verbose=False)
    assert data.standardize(mnist).fallback_reason == mnist.fallback_reason != ""


# ---------------------------------------------------------------- strict mode


@pytest.mark.parametrize(
    "value, strict",
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), (None, False)],
)
def test_strict_mode_follows_environment(monkeypatch, value, strict):
    if value is not None:
        monkeypatch.setenv("RNN_BOOK_STRICT", value)
    assert data.strict_mode() is strict


def test_strict_mode_raises_with_the_reason_instead_of_falling_back(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_BOOK_STRICT", "1")
    with pytest.raises(data.MNISTUnavailable) as info:
        data.load_mnist(tmp_path, offline=True)
    assert str(info.value) == ("strict mode (RNN_BOOK_STRICT) needs the official MNIST files: "
                               f"{TRAIN_IMAGES} not in {tmp_path}, network off")
    assert info.value.summary == "official files not available offline"
    assert capsys.readouterr().out == ""  # no fallback line: nothing was loaded
    assert data.load_mnist(tmp_path, offline=True, strict=False, verbose=False).source == "embedded"


def test_strict_mode_reports_download_failures(tmp_path):
    with pytest.raises(data.MNISTUnavailable, match=r"download of \S+ failed on 1 mirror\(s\)"):
        data.load_mnist(tmp_path, offline=False, strict=True, verbose=False)


def test_strict_mode_reports_unusable_files(tiny_mnist):
    folder, _ = tiny_mnist
    write(folder / TRAIN_IMAGES, gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 8))
    write_checksums(Path(os.environ["RNN_BOOK_MNIST_CHECKSUMS"]), folder)
    with pytest.raises(data.MNISTUnavailable, match=r"unusable: .*truncated header"):
        data.load_mnist(folder, offline=True, strict=True, verbose=False)


def test_strict_mode_loads_official_files(tiny_mnist, monkeypatch):
    monkeypatch.setenv("RNN_BOOK_STRICT", "1")
    assert data.load_mnist(tiny_mnist[0], offline=True, verbose=False).source == "official"


# ---------------------------------------------------------------- the checksum hook


def test_expected_files_default_to_the_published_checksums():
    assert data.expected_files() == OFFICIAL_FILES
    assert OFFICIAL_FILES["train_images"] == (
        "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read the checksum file"),
        ("{not json", "cannot read the checksum file"),
        ("[]", r'expected "train-images-idx3-ubyte.gz": \{"md5": 32 hex digits'),
        ('{"train-images-idx3-ubyte.gz": {"md5": "abc", "bytes": 1}}', r"got \{'md5': 'abc'"),
    ],
    ids=["missing", "not-json", "not-a-table", "bad-md5"],
)
def test_broken_checksum_hook_is_an_error_not_a_fallback(tmp_path, monkeypatch, content, message):
    hook = tmp_path / "sums.json"
    if content is not None:
        hook.write_text(content)
    monkeypatch.setenv("RNN_BOOK_MNIST_CHECKSUMS", str(hook))
    with pytest.raises(ValueError, match=message):
        data.load_mnist(tmp_path, offline=True, verbose=False)


# ---------------------------------------------------------------- full size, without the network


@pytest.fixture(scope="session")
def full_size(tmp_path_factory):
    """Official-format files of full size (60,000 + 10,000), generated once per session."""
    spec = importlib.util.spec_from_file_location("make_fake_mnist", ROOT / "scripts" / "make_fake_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("full-size")
    return folder, module.write_fake_mnist(folder)


def test_full_size_fakes_keep_every_digit_whole():
    """The fakes move each digit without cutting or wrapping its strokes, even at the border."""
    spec = importlib.util.spec_from_file_location("make_fake_mnist", ROOT / "scripts" / "make_fake_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = np.zeros((3, 28, 28), dtype=np.uint8)
    x[0, 0:5, 0:4] = 200     # touches the top and left borders
    x[1, 23:28, 24:28] = 90  # touches the bottom and right borders
    x[2, 10:15, 12:16] = 255
    y = np.arange(3, dtype=np.uint8)
    images, labels = module.shifted_digits(x, y, 600, np.random.default_rng(0))
    source = x[labels]
    assert (images.reshape(600, -1).sum(1) == source.reshape(600, -1).sum(1)).all()  # no ink lost
    ink = images > 0
    assert ink[:, :, 0].any() and ink[:, 0, :].any() and ink[:, -1, :].any()         # borders reached
    moved = [(np.argwhere(im)[0] - np.argwhere(s)[0]) for im, s in zip(images, source)]
    assert np.abs(np.array(moved)).max() <= module.MAX_SHIFT and np.any(np.array(moved))


def test_full_size_files_load_through_the_checksum_hook(full_size, monkeypatch, capsys):
    folder, checksums = full_size
    monkeypatch.setenv("RNN_BOOK_MNIST_CHECKSUMS", str(checksums))
    mnist = data.load_mnist(folder, offline=True, strict=True)
    assert mnist.source == "official"
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.y_train.shape == (60_000,) and mnist.y_test.shape == (10_000,)
    assert mnist.x_train.dtype == torch.float32 and 0 <= mnist.x_train.min() < mnist.x_train.max() <= 1
    assert torch.bincount(mnist.y_train, minlength=10).min() > 5_000
    assert torch.bincount(mnist.y_test, minlength=10).min() > 800
    assert capsys.readouterr().out == (f"MNIST: official-format files in {folder}, checksums from "
                                       f"{checksums} — 60,000 train / 10,000 test\n")


def test_production_checksums_reject_the_full_size_fakes(full_size, capsys):
    folder, _ = full_size
    mnist = data.load_mnist(folder, offline=True)
    assert mnist.source == "embedded"
    assert fallback_line(capsys.readouterr().out) == FRIENDLY.format(
        "cached official files are corrupt, network off")
    assert f"expected {OFFICIAL_FILES['train_images'][1]}" in mnist.fallback_reason
    with pytest.raises(data.MNISTUnavailable, match="expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        data.load_mnist(folder, offline=True, strict=True, verbose=False)
    assert sorted(NAMES) == sorted(n for n in only_files(folder) if n.endswith(".gz"))  # untouched


def test_production_sizes_reject_the_full_size_fakes_on_download(full_size, server, written,
                                                                 monkeypatch, tmp_path):
    folder, _ = full_size
    served, url = server
    (served / TRAIN_IMAGES).symlink_to(folder / TRAIN_IMAGES)
    monkeypatch.setattr(data, "MIRRORS", [url])
    with pytest.raises(data.MNISTUnavailable, match=r"announces [\d,]+ bytes, expected 9,912,422"):
        data.load_mnist(tmp_path / "fresh", offline=False, strict=True, verbose=False)
    assert written == [] and only_files(tmp_path / "fresh") == []


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
    (data.download, (OK_URL, "d"), {"timeout": float("inf")}, ValueError, "timeout must be a finite number, got inf"),
    (data.download, (OK_URL, "d"), {"timeout": float("nan")}, ValueError, "timeout must be a finite number, got nan"),
    (data.download, (OK_URL, "d"), {"deadline": float("inf")}, ValueError, "deadline must be a finite number, got inf"),
    (data.download, (OK_URL, "d"), {"deadline": -1}, ValueError, r"deadline must be > 0.0, got -1.0"),
    (data.download, (OK_URL, "d"), {"deadline": None}, TypeError, "deadline must be a number, got NoneType"),
    (data.download, (OK_URL, "d"), {"size": 0}, ValueError, "size must be >= 1, got 0"),
    (data.download, (OK_URL, "d"), {"size": 1e6}, TypeError, "size must be an int, got float"),
    (data.download, (OK_URL, "d"), {"progress": 1}, TypeError, "progress must be bool, got int"),
    (data.load_mnist, (3,), {}, TypeError, "root must be str or PathLike or NoneType, got int"),
    (data.load_mnist, (), {"offline": "yes"}, TypeError, "offline must be bool or NoneType, got str"),
    (data.load_mnist, (), {"strict": "1"}, TypeError, "strict must be bool or NoneType, got str"),
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


def test_mnist_checks_its_fields():
    x, y = torch.rand(4, 28, 28), torch.arange(4)
    with pytest.raises(TypeError, match="x_train must be a torch.Tensor, got NoneType"):
        data.MNIST(None, y, x, y, "test")
    with pytest.raises(TypeError, match="x_test must be a floating-point tensor, got dtype torch.int64"):
        data.MNIST(x, y, x.long(), y, "test")
    with pytest.raises(TypeError, match="y_train must be an integer tensor, got dtype torch.float32"):
        data.MNIST(x, y.float(), x, y, "test")
    with pytest.raises(ValueError, match=r"y_test must hold one label per image of x_test \(4\), got 3"):
        data.MNIST(x, y, x, y[:3], "test")
    with pytest.raises(ValueError, match="x_val and y_val must be given together, got Tensor and NoneType"):
        data.MNIST(x, y, x, y, "test", x_val=x)
    with pytest.raises(TypeError, match="source must be str, got NoneType"):
        data.MNIST(x, y, x, y, None)
    mnist = data.MNIST(x, y, x, y, "test", x_val=x, y_val=y)
    assert mnist.for_final_training().y_val is None  # dataclasses.replace runs the checks again


def test_mnist_unavailable_checks_its_text():
    with pytest.raises(TypeError, match="reason must be str, got NoneType"):
        data.MNISTUnavailable(None, "short")
    with pytest.raises(TypeError, match="summary must be str, got int"):
        data.MNISTUnavailable("reason", 3)
    assert data.MNISTUnavailable("reason", "short").summary == "short"


def test_shift_images_checks_its_arguments():
    x, g = torch.rand(2, 28, 28), torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="max_shift must be >= 0, got -1"):
        data.shift_images(x, -1, g)
    with pytest.raises(TypeError, match="max_shift must be an int, got float"):
        data.shift_images(x, 1.5, g)
    with pytest.raises(TypeError, match="generator must be Generator, got NoneType"):
        data.shift_images(x, 2, None)
    with pytest.raises(ValueError, match=r"x must not be empty .*got shape \(0, 28, 28\)"):
        data.shift_images(x[:0], 2, g)
