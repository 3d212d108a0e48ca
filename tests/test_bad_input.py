"""The bad-input census: every public function, class and method of book_utils fails clearly.

Discovery. :func:`public_api` finds by introspection every public function and class of every
``book_utils`` module, and every public method of those classes, inherited ones included
(``MinGRU.forward`` comes from a private base class): ``"module.name"`` and
``"module.Class.method"``. Figures, file I/O, the displayed equation functions (their checks
run through ``@checked_by``) and ``book_utils.results`` are driven like everything else.
``test_every_public_callable_is_driven_or_excused`` fails when a public callable has neither
a valid call in :data:`SPECS` nor a written reason in :data:`EXCUSED`, and when an entry names
nothing public.

The battery. Each valid call in SPECS is made again with one argument replaced by a bad value
(:func:`battery`): None, a wrong type, a float for an int, a negative, zero or huge size
(2**63; 2**32 for a seed), NaN, inf or 1e300 for a number, a tensor with a wrong shape, dtype
or no rows, NaN or inf inside it, ids and labels out of range, one row fewer than the other
arguments have (a batch mismatch), a Linear layer for a module, another model's optimizer.
Functions with ``lengths`` also get NaN and inf in their padding, which must change nothing.
Outcomes:

- ``clear``: a ValueError or TypeError raised by book_utils itself, naming the argument (or
  its alias in :data:`ALIASES`) with "got" in the message, or our FloatingPointError;
- ``vague``: a ValueError or TypeError of ours without that;
- ``obscure``: any error raised inside torch, numpy, matplotlib or Python (even a ValueError);
- ``garbage``: a result for a value that is plainly invalid, a hang, NaN or inf returned from
  finite inputs, a finite score from NaN scores (:data:`METRICS`), or a result that NaN in the
  padding changed;
- ``accepted``: a result for a value that may be valid (a numpy int, a float64 tensor, a
  list, an empty batch...) or that :data:`KNOWN_VALID` lists for that argument.

``test_census`` runs the whole battery and fails on any vague, obscure or garbage outcome;
the hypothesis test draws further bad values.

Adding a module (say ``book_utils.matrix_memories`` for chapter 8): the census fails and
lists its public callables. Give each a line in SPECS, under a ``# --- chapter N`` comment::

    "matrix_memories.retrieve": lambda: (matrix_memories.retrieve, dict(
        memory=torch.randn(2, 4, 4), key=torch.randn(2, 4))),

that is ``"module.name"`` (or ``"module.Class.method"``, called on a fresh instance) mapped
to a function returning (the callable, a dict of valid keyword arguments, all of them). Run
the census; where a bad value is in fact valid for an argument, add it to KNOWN_VALID with
the reason; where a function scores (an accuracy, a loss), add it to METRICS. Only a callable
that cannot be called here (none today) goes to EXCUSED, with its reason.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import importlib
import inspect
import io
import math
import numbers
import pkgutil
import signal
import tempfile
import threading
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import book_utils  # noqa: E402
from book_utils import (  # noqa: E402
    attention_and_scans as scans,
    bptt,
    cells,
    data,
    language_model as lm,
    lstm_gates,
    matrix_memories,
    memory_cells,
    models,
    plots,
    recurrent_neurons,
    results,
    sequence_shapes as shapes,
    session,
    text,
    training,
)

MODULES = sorted(m.name for m in pkgutil.iter_modules(book_utils.__path__) if m.name[0] != "_")
PACKAGE = str(Path(book_utils.__file__).parent)


def public_api() -> list[str]:
    """'module.name' for every public function and class, 'module.Class.method' for methods.

    A class's methods are those of the class and of its book_utils bases (the first
    definition along the method resolution order wins), not torch's.
    """
    names = []
    for module_name in MODULES:
        module = importlib.import_module(f"book_utils.{module_name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                names.append(f"{module_name}.{name}")
            elif inspect.isclass(obj):
                names.append(f"{module_name}.{name}")
                methods = {}
                for base in obj.__mro__:
                    if base.__module__.startswith("book_utils."):
                        for method, f in vars(base).items():
                            if inspect.isfunction(f) and method[0] != "_":
                                methods.setdefault(method, f)
                names += [f"{module_name}.{name}.{method}" for method in methods]
    return names


# ------------------------------------------------------------------ a sandbox for the calls

SANDBOX = Path(tempfile.mkdtemp(prefix="census-"))
BLOB = b"census"


class _Blob(http.server.BaseHTTPRequestHandler):
    """Serves BLOB at every path, so download() has something valid to fetch."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module", autouse=True)
def sandbox():
    """A local server for download(), a results folder and an MNIST cache of our own, offline."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blob)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "RESULTS", SANDBOX / "results")
        patch.setenv("RNN_BOOK_OFFLINE", "1")
        patch.setenv("RNN_BOOK_DATA", str(SANDBOX / "mnist"))
        patch.setenv("no_proxy", "*")
        for name in ("RNN_BOOK_STRICT", "RNN_BOOK_MNIST_CHECKSUMS"):
            patch.delenv(name, raising=False)
        patch.setattr(_Server, "url", f"http://127.0.0.1:{server.server_address[1]}/blob")
        results.save("census", _rows(), sources=["benchmarks/lstm.py"], command="true")
        yield
    server.shutdown()
    server.server_close()
    thread.join()


class _Server:
    url = "http://127.0.0.1:9/blob"  # set by the sandbox fixture


def _rows() -> list[dict]:
    return [{"seed": seed, "model": "a", "accuracy": 0.5 + seed / 100} for seed in range(5)]


def _file(payload: bytes) -> Path:
    path = SANDBOX / hashlib.md5(payload).hexdigest()
    path.write_bytes(payload)
    return path


IDX = bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])  # an IDX file of three unsigned bytes


# ------------------------------------------------------------------ valid calls



def _mnist(n: int = 8) -> data.MNIST:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 28, 28, generator=g), torch.arange(n) % 10
    return data.MNIST(x, y, x.clone(), y.clone(), source="test", x_val=x.clone(), y_val=y.clone())


def _loader(n: int = 8, features: int = 3, classes: int = 2) -> list:
    return [(torch.randn(4, 5, features), torch.arange(4) % classes) for _ in range(n // 4)]


def _mnist_rows() -> list:
    return [(torch.rand(4, 28, 28), torch.arange(4))]


def _classifier(kind: str = "rnn", features: int = 3, hidden: int = 4, classes: int = 2):
    return models.make_classifier(kind, features, hidden, classes)


def _windows(vocab_size: int = 5) -> list:
    ids = torch.arange(60) % vocab_size
    return text.stream_batches(ids, 2, 6)


VOCAB = text.CharVocabulary("ab c.\n")
PASSAGE = "ab ca. ba cab.\nab ca ba ca ba. " * 2


def _history() -> dict:
    return {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}


def _bptt_params(features: int = 3, hidden: int = 4, classes: int = 2) -> dict:
    return bptt.classifier_parameters(_classifier("rnn", features, hidden, classes))


def _bptt_cache():
    x, y = torch.randn(2, 3, 3), torch.tensor([0, 1])
    return bptt.forward(x, y, _bptt_params())[1]


def _graph():
    w = torch.randn(2, requires_grad=True)
    return (w.tanh() * 2).sum(), {"w": w}


def _encdec_args() -> dict:
    return dict(source=torch.tensor([[4, 5, 6], [5, 6, 0]]), lengths=torch.tensor([3, 2]))




def _small_recall() -> dict:
    return dict(memory_cells.RECALL, seq_len=5, n_symbols=3, hidden_size=4, n_train=8, n_test=4,
                n_val=4, batch_size=4, epochs=1)


def _small_mnist_recipe() -> dict:
    return dict(recurrent_neurons.RECIPE, hidden_size=4, batch_size=4, epochs=1)


def _full_history() -> dict:
    return {"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_accuracy": [0.5, 0.6],
            "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.5], "step_loss": [1.0, 0.9, 0.8],
            "step_grad_norm": [1.0, 2.0, 1.5], "seconds_per_step": [0.01]}


def _step_spec():
    model = scans.AttentionEncoderDecoder(8, 3, 4)
    states, d, mask = model.encode_all(**_encdec_args())
    return model.step, dict(token=torch.tensor([1, 1]), d=d.detach(), states=states.detach(),
                            keys=model.W_k(states).detach(), mask=mask)


def _step_weights(blocks: int, biases: tuple[str, ...]) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(x_t=torch.randn(2, 3, generator=g), h_prev=torch.randn(2, 4, generator=g),
                W_x=torch.randn(3, 4 * blocks, generator=g),
                W_h=torch.randn(4, 4 * blocks, generator=g),
                **{b: torch.randn(4 * blocks, generator=g) for b in biases})


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _qkv(d_v: int = 4) -> dict:
    g = _gen()
    q, k = (torch.nn.functional.normalize(torch.randn(2, 5, 3, generator=g), dim=2)
            for _ in range(2))
    return dict(q=q, k=k, v=torch.randn(2, 5, d_v, generator=g))


def _gate(low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(2, 5, generator=_gen())


def _pairs() -> dict:
    keys, values = matrix_memories.random_pairs(2, 3, 4, d_value=5, generator=_gen())
    return dict(keys=keys, values=values)


def _timing_rows() -> list:
    return [{"T": T, "form": form, "repeat": r, "seconds": s * T * (1 + r / 10)}
            for T in (4, 8) for form, s in (("recurrent", 1.0), ("chunkwise, C = 16", 0.5))
            for r in range(2)]


def _accuracy_rows(x: str, values: tuple) -> list:
    return [{"model": m, x: v, "seed": s, "accuracy": 0.5 + s / 10}
            for m in ("a", "b") for v in values for s in range(2)]


SPECS: dict[str, Callable[[], tuple[Callable, dict]]] = {
    # --- cells
    "cells.torch_parameters": lambda: (cells.torch_parameters, dict(
        module=nn.RNN(3, 4), layer=0, input_size=3, hidden_size=4)),
    "cells.chrono_time_scales": lambda: (cells.chrono_time_scales, dict(
        hidden_size=4, max_lag=10, seed=0)),
    "cells.gate_rows": lambda: (cells.gate_rows, dict(module=nn.LSTM(3, 4), gate="f")),
    "cells.RNNCell": lambda: (cells.RNNCell, dict(input_size=3, hidden_size=4, nonlinearity="tanh")),
    "cells.RNNCell.forward": lambda: (cells.RNNCell(3, 4).forward, dict(
        x_t=torch.randn(2, 3), h_prev=torch.randn(2, 4))),
    "cells.RNNCell.copy_to": lambda: (cells.RNNCell(3, 4).copy_to, dict(module=nn.RNN(3, 4))),
    "cells.RNNCell.copy_from": lambda: (cells.RNNCell(3, 4).copy_from, dict(module=nn.RNNCell(3, 4))),
    "cells.unroll": lambda: (cells.unroll, dict(
        cell=cells.RNNCell(3, 4), x=torch.randn(2, 5, 3), state=torch.randn(2, 4))),
    "cells.one_layer_state": lambda: (cells.one_layer_state, dict(
        name="h0", value=torch.randn(1, 2, 4))),
    "cells.CellLayer": lambda: (cells.CellLayer, dict(cell=cells.RNNCell(3, 4))),
    "cells.CellLayer.forward": lambda: (cells.CellLayer(cells.RNNCell(3, 4)).forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.randn(1, 2, 4))),
    "cells.ScratchRNN": lambda: (cells.ScratchRNN, dict(input_size=3, hidden_size=4,
                                                        nonlinearity="relu")),
    "cells.state_gradient_norms": lambda: (cells.state_gradient_norms, dict(
        cell=cells.RNNCell(3, 4), x=torch.randn(2, 5, 3), loss_fn=lambda out: out[:, -1].sum(),
        state=torch.randn(2, 4))),
    # --- models
    "models.make_recurrent": lambda: (models.make_recurrent, dict(
        kind="scratch_rnn", input_size=3, hidden_size=4, nonlinearity="tanh")),
    "models.SequenceClassifier": lambda: (models.SequenceClassifier, dict(
        recurrent=nn.RNN(3, 4, batch_first=True), hidden_size=4, n_classes=2)),
    "models.SequenceClassifier.forward": lambda: (_classifier().forward, dict(x=torch.randn(2, 5, 3))),
    "models.make_classifier": lambda: (models.make_classifier, dict(
        kind="gru", input_size=3, hidden_size=4, n_classes=2, nonlinearity="tanh")),
    "models.count_parameters": lambda: (models.count_parameters, dict(model=nn.Linear(2, 3))),
    "models.SequenceRegressor": lambda: (models.SequenceRegressor, dict(
        recurrent=nn.LSTM(3, 4, batch_first=True), hidden_size=4)),
    "models.SequenceRegressor.forward": lambda: (models.SequenceRegressor(
        nn.GRU(3, 4, batch_first=True), 4).forward, dict(x=torch.randn(2, 5, 3))),
    "models.shift_right": lambda: (models.shift_right, dict(targets=torch.tensor([[4, 5, 2]]), start=1)),
    "models.EncoderDecoder": lambda: (models.EncoderDecoder, dict(
        vocab_size=8, embedding_size=3, hidden_size=4)),
    "models.EncoderDecoder.encode": lambda: (models.EncoderDecoder(8, 3, 4).encode, _encdec_args()),
    "models.EncoderDecoder.forward": lambda: (models.EncoderDecoder(8, 3, 4).forward, dict(
        _encdec_args(), decoder_inputs=torch.tensor([[1, 4], [1, 5]]))),
    "models.EncoderDecoder.greedy_decode": lambda: (models.EncoderDecoder(8, 3, 4).greedy_decode,
                                                    dict(_encdec_args(), max_steps=3)),
    "models.exact_match": lambda: (models.exact_match, dict(predicted=["12", "3"], expected=["12", "4"])),
    "models.train_encoder_decoder": lambda: (models.train_encoder_decoder, dict(
        model=models.EncoderDecoder(13, 3, 4), vocab=data.Vocabulary(), sources=["12", "3"],
        targets=["21", "3"], steps=1, lr=0.01, batch_size=2, clip_norm=1.0, seed=0)),
    "models.decode_and_score": lambda: (models.decode_and_score, dict(
        model=models.EncoderDecoder(13, 3, 4), vocab=data.Vocabulary(), sources=["12", "3"],
        targets=["21", "3"])),
    # --- training
    "training.model_device": lambda: (training.model_device, dict(model=nn.Linear(2, 2))),
    "training.update": lambda: _update_spec(),
    "training.evaluate": lambda: (training.evaluate, dict(model=_classifier(), loader=_loader())),
    "training.fit": lambda: _fit_spec(),
    "training.random_batches": lambda: (training.random_batches, dict(
        tensors=(torch.randn(6, 2), torch.arange(6)), batch_size=2, seed=0)),
    "training.make_optimizer": lambda: (training.make_optimizer, dict(
        model=nn.Linear(2, 2), lr=0.1, total_steps=3, optimizer="rmsprop", schedule="cosine")),
    "training.train_classifier": lambda: (training.train_classifier, dict(
        model=_classifier(), train_loader=_loader(), epochs=1, lr=0.01, optimizer="adam",
        schedule="cosine", val_loader=_loader(), clip_norm=1.0, device="cpu", verbose=False)),
    "training.masked_mean": lambda: (training.masked_mean, dict(
        values=torch.rand(2, 3), lengths=torch.tensor([3, 1]))),
    "training.masked_cross_entropy": lambda: (training.masked_cross_entropy, dict(
        logits=torch.randn(2, 3, 5), targets=torch.tensor([[1, 2, 3], [4, 0, 0]]),
        lengths=torch.tensor([3, 1]))),
    # --- plots
    "plots.use_book_style": lambda: (plots.use_book_style, {}),
    "plots.as_numpy": lambda: (plots.as_numpy, dict(name="x", value=torch.rand(2, 3), dim=2)),
    "plots.plot_history": lambda: (plots.plot_history, dict(
        history=_history(), title="t", labels=("a", "b"))),
    "plots.diagram_axes": lambda: (plots.diagram_axes, dict(width=3.0, height=2.0, figsize=(2.0, 1.0))),
    "plots.draw_box": lambda: (plots.draw_box, dict(
        ax=plots.diagram_axes(3, 2)[1], center=(1.0, 1.0), text="h", role="state", size=(0.9, 0.6),
        round=True)),
    "plots.draw_arrow": lambda: (plots.draw_arrow, dict(
        ax=plots.diagram_axes(3, 2)[1], start=(0.5, 0.5), end=(2.0, 1.0), text="W", curve=0.2)),
    # --- session
    "session.seed_everything": lambda: (session.seed_everything, dict(seed=0, deterministic=False)),
    "session.pick_device": lambda: (session.pick_device, dict(prefer="cpu")),
    "session.setup": lambda: (session.setup, dict(
        seed=0, threads=1, device="cpu", deterministic=False, verbose=False)),
    "session.glue": lambda: (session.glue, dict(name="x", value=1.5, display=False)),
    "session.show_source": lambda: (session.show_source, dict(obj=cells.rnn_step)),
    # --- data
    "data.data_dir": lambda: (data.data_dir, {}),
    "data.network_allowed": lambda: (data.network_allowed, {}),
    "data.strict_mode": lambda: (data.strict_mode, {}),
    "data.expected_files": lambda: (data.expected_files, {}),
    "data.MNIST": lambda: (data.MNIST, dict(
        x_train=torch.rand(4, 28, 28), y_train=torch.arange(4), x_test=torch.rand(2, 28, 28),
        y_test=torch.arange(2), source="test")),
    "data.MNIST.describe": lambda: (_mnist().describe, {}),
    "data.MNIST.for_final_training": lambda: (_mnist().for_final_training, {}),
    "data.MNISTUnavailable": lambda: (data.MNISTUnavailable, dict(reason="r", summary="s")),
    "data.make_loader": lambda: (data.make_loader, dict(
        x=torch.rand(6, 2, 3), y=torch.arange(6), batch_size=4, shuffle=True, seed=0,
        drop_last=False)),
    "data.mnist_loader": lambda: (data.mnist_loader, dict(data=_mnist(), split="validation",
                                                          batch_size=4, seed=0)),
    "data.mnist_loaders": lambda: (data.mnist_loaders, dict(data=_mnist(), batch_size=4, seed=0)),
    "data.RandomShifts": lambda: (data.RandomShifts, dict(
        loader=data.make_loader(torch.rand(4, 28, 28), torch.arange(4)), max_shift=2, seed=0)),
    "data.shift_images": lambda: (data.shift_images, dict(
        x=torch.rand(2, 28, 28), max_shift=2, generator=torch.Generator().manual_seed(0))),
    "data.standardize": lambda: (data.standardize, dict(data=_mnist())),
    "data.reversal_pairs": lambda: (data.reversal_pairs, dict(
        n=3, min_length=2, max_length=4, seed=0, exclude=("12",))),
    "data.adding_problem": lambda: (data.adding_problem, dict(n=3, steps=4, seed=0)),
    "data.Vocabulary": lambda: (data.Vocabulary, dict(symbols="0123")),
    "data.Vocabulary.encode": lambda: (data.Vocabulary().encode, dict(texts=["12", "3"], add_eos=True)),
    "data.Vocabulary.decode": lambda: (data.Vocabulary().decode, dict(
        ids=torch.tensor([[4, 5, 2], [6, 0, 0]]))),
    "data.length_mask": lambda: (data.length_mask, dict(lengths=torch.tensor([2, 3]), max_length=4)),
    "data.stream_windows": lambda: (data.stream_windows, dict(
        x=torch.randn(2, 6, 3), y=torch.zeros(2, 6, dtype=torch.long), window=3)),
    # --- text
    "text.normalise": lambda: (text.normalise, dict(text="Caf\u00e9 \u2014 ok")),
    "text.split_text": lambda: (text.split_text, dict(text="ab cd\n\nef gh\n\nij kl\n\nmn op\n\n" * 3, fractions=(0.8, 0.1, 0.1))),
    "text.Corpus": lambda: (text.Corpus, dict(train="ab", validation="c", test="d", source="s",
                                              dropped={})),
    "text.Corpus.describe": lambda: (text.Corpus("ab", "c", "d", "s", {}).describe, {}),
    "text.load_corpus": lambda: (text.load_corpus, dict(fractions=(0.8, 0.1, 0.1))),
    "text.CharVocabulary": lambda: (text.CharVocabulary, dict(symbols="abc")),
    "text.CharVocabulary.encode": lambda: (VOCAB.encode, dict(text="ab c")),
    "text.CharVocabulary.decode": lambda: (VOCAB.decode, dict(ids=torch.tensor([0, 1, 2]))),
    "text.streams": lambda: (text.streams, dict(ids=torch.arange(20) % 5, batch_size=2)),
    "text.stream_batches": lambda: (text.stream_batches, dict(
        ids=torch.arange(20) % 5, batch_size=2, window=3)),
    "text.bits_per_char": lambda: (text.bits_per_char, dict(loss_nats=1.0)),
    "text.kneser_ney_discounts": lambda: (text.kneser_ney_discounts, dict(
        counts={"ab": 1, "bc": 2, "cd": 3, "de": 4, "ef": 1, "fa": 2})),
    "text.kneser_ney_prob": lambda: (text.kneser_ney_prob, dict(
        model=text.KneserNey(PASSAGE, 3, VOCAB), history="ab", ch="c", order=3)),
    "text.KneserNey": lambda: (text.KneserNey, dict(text=PASSAGE, max_order=3, vocab=VOCAB)),
    "text.KneserNey.discounts": lambda: (text.KneserNey(PASSAGE, 3, VOCAB).discounts, dict(order=2)),
    "text.KneserNey.prob": lambda: (text.KneserNey(PASSAGE, 3, VOCAB).prob, dict(
        history="ab", ch="c", order=2)),
    "text.KneserNey.distribution": lambda: (text.KneserNey(PASSAGE, 3, VOCAB).distribution, dict(
        history="ab", order=3)),
    "text.KneserNey.bits_per_char": lambda: (text.KneserNey(PASSAGE, 3, VOCAB).bits_per_char, dict(
        text="ab ca.", order=3)),
    # --- chapter 3: memory_cells
    "memory_cells.make_recall_task": lambda: (memory_cells.make_recall_task, dict(
        n=4, seq_len=5, lag=2, n_symbols=3, seed=0)),
    "memory_cells.LastStepClassifier": lambda: (memory_cells.LastStepClassifier, dict(
        input_size=3, hidden_size=4, n_classes=2)),
    "memory_cells.LastStepClassifier.forward": lambda: (
        memory_cells.LastStepClassifier(3, 4, 2).forward, dict(x=torch.randn(2, 5, 3))),
    "memory_cells.ReadoutRNN": lambda: (memory_cells.ReadoutRNN, dict(
        input_size=3, hidden_size=4, output_size=2)),
    "memory_cells.ReadoutRNN.forward": lambda: (memory_cells.ReadoutRNN(3, 4, 2).forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.randn(1, 2, 4))),
    "memory_cells.perturbation_effect": lambda: (memory_cells.perturbation_effect, dict(
        recurrent=nn.RNN(3, 4, batch_first=True), x=torch.randn(2, 5, 3), delta=torch.randn(3),
        step=0)),
    "memory_cells.StateTrace": lambda: (memory_cells.StateTrace, dict(
        states=torch.randn(2, 5, 4), probabilities=torch.rand(2, 5, 2))),
    "memory_cells.record_states": lambda: (memory_cells.record_states, dict(
        model=_classifier(), x=torch.randn(2, 5, 3))),
    "memory_cells.PCA": lambda: (memory_cells.PCA, dict(
        mean=torch.zeros(3), components=torch.eye(3)[:2], explained_variance_ratio=torch.rand(2))),
    "memory_cells.PCA.transform": lambda: (memory_cells.pca(torch.randn(10, 3)).transform, dict(
        points=torch.randn(4, 3))),
    "memory_cells.pca": lambda: (memory_cells.pca, dict(points=torch.randn(10, 3), n_components=2)),
    "memory_cells.cell_from_layer": lambda: (memory_cells.cell_from_layer, dict(
        layer=nn.RNN(3, 4, num_layers=2), layer_index=1)),
    "memory_cells.run_in_chunks": lambda: (memory_cells.run_in_chunks, dict(
        recurrent=nn.GRU(3, 4, batch_first=True), x=torch.randn(2, 6, 3), chunk_len=2,
        state=torch.randn(1, 2, 4), detach=True)),
    "memory_cells.linear_probe_accuracy": lambda: (memory_cells.linear_probe_accuracy, dict(
        train_states=torch.randn(8, 3, 4), train_labels=torch.arange(8) % 2,
        test_states=torch.randn(4, 3, 4), test_labels=torch.arange(4) % 2, ridge=0.001)),
    "memory_cells.train_recall": lambda: (memory_cells.train_recall, dict(
        model=memory_cells.LastStepClassifier(3, 4, 3), lag=1, recipe=_small_recall(), seed=0,
        device="cpu")),
    "memory_cells.best_rate_table": lambda: (memory_cells.best_rate_table, dict(
        rows=[{"seed": seed, "lag": 1, "lr": lr, "test": [0.5, 0.6], "validation": [0.4, 0.7]}
              for seed in (0, 1) for lr in (0.01, 0.1)], epochs=[1, 2])),
    "memory_cells.with_spectral_radius": lambda: (memory_cells.with_spectral_radius, dict(
        layer=nn.RNN(3, 4, batch_first=True), rho=0.9)),
    "memory_cells.fade_rate": lambda: (memory_cells.fade_rate, dict(
        recurrent=nn.RNN(3, 4, batch_first=True), x=torch.randn(2, 5, 3), delta=torch.randn(3),
        start=1, stop=4)),
    # --- chapter 1: recurrent_neurons
    "recurrent_neurons.paired_differences": lambda: (recurrent_neurons.paired_differences, dict(
        rows=[{"seed": s, "variant": v, "val": 0.9 + s / 100 - (v == "b") * (s + 1) / 50}
              for s in range(3) for v in "ab"], baseline="a", value="val", by="variant")),
    "recurrent_neurons.make_mnist_rnn": lambda: (recurrent_neurons.make_mnist_rnn, dict(
        kind="scratch_rnn", recipe=_small_mnist_recipe())),
    "recurrent_neurons.train_mnist_rnn": lambda: (recurrent_neurons.train_mnist_rnn, dict(
        model=recurrent_neurons.make_mnist_rnn("rnn", _small_mnist_recipe()), split=_mnist(),
        recipe=_small_mnist_recipe(), seed=0, device="cpu", verbose=False)),
    # --- chapter 4: bptt
    "bptt.BPTTCache": lambda: (bptt.BPTTCache, dict(
        x=torch.randn(2, 3, 3), h=torch.randn(2, 4, 4), probs=torch.rand(2, 2), y=torch.tensor([0, 1]))),
    "bptt.forward": lambda: (bptt.forward, dict(
        x=torch.randn(2, 3, 3), y=torch.tensor([0, 1]), params=_bptt_params(), h0=torch.randn(2, 4))),
    "bptt.backward": lambda: (bptt.backward, dict(
        cache=_bptt_cache(), params=_bptt_params(), keep_state_grads=True)),
    "bptt.classifier_parameters": lambda: (bptt.classifier_parameters, dict(model=_classifier())),
    "bptt.relative_error": lambda: (bptt.relative_error, dict(a=torch.randn(3), b=torch.randn(3))),
    "bptt.autograd_graph": lambda: (bptt.autograd_graph, dict(zip(("output", "names"), _graph()))),
    "bptt.SavedTensorMeter": lambda: (bptt.SavedTensorMeter, dict(exclude=[torch.zeros(2)])),
    "bptt.stream_accuracy": lambda: (bptt.stream_accuracy, dict(
        model=bptt.make_step_classifier("rnn", 2, 4, 2), x=bptt.echo_stream(2, 6, lag=1)[0],
        y=bptt.echo_stream(2, 6, lag=1)[1])),
    "bptt.train_truncated": lambda: _truncated_spec(),
    "bptt.echo_stream": lambda: (bptt.echo_stream, dict(n_streams=2, length=6, lag=1, n_symbols=2,
                                                        seed=0)),
    "bptt.StepClassifier": lambda: (bptt.StepClassifier, dict(
        recurrent=nn.RNN(2, 4, batch_first=True), hidden_size=4, n_classes=2)),
    "bptt.StepClassifier.forward": lambda: (bptt.make_step_classifier("gru", 2, 4, 2).forward, dict(
        x=torch.randn(2, 5, 2), state=torch.randn(1, 2, 4))),
    "bptt.train_mnist_rnn": lambda: (bptt.train_mnist_rnn, dict(
        digits=_mnist(), hidden_size=4, epochs=1, lr=0.01, batch_size=4, max_shift=1,
        val_loader=_mnist_rows(), seed=0, device="cpu", verbose=False)),
    "bptt.make_step_classifier": lambda: (bptt.make_step_classifier, dict(
        kind="lstm", input_size=2, hidden_size=4, n_classes=2, nonlinearity="tanh")),
    "bptt.train_exploding_rnn": lambda: (bptt.train_exploding_rnn, dict(
        zip(("x", "y"), bptt.echo_stream(8, 6, lag=1, n_symbols=4)), lr=0.01, clip_norm=1.0,
        seed=0, device="cpu", optimizer="adam")),
    # --- chapter 5: lstm_gates
    "lstm_gates.LSTMCell": lambda: (lstm_gates.LSTMCell, dict(input_size=3, hidden_size=4)),
    "lstm_gates.LSTMCell.forward": lambda: (lstm_gates.LSTMCell(3, 4).forward, dict(
        x_t=torch.randn(2, 3), state=(torch.randn(2, 4), torch.randn(2, 4)), return_gates=True)),
    "lstm_gates.LSTMCell.copy_to": lambda: (lstm_gates.LSTMCell(3, 4).copy_to, dict(
        module=nn.LSTM(3, 4))),
    "lstm_gates.LSTMCell.copy_from": lambda: (lstm_gates.LSTMCell(3, 4).copy_from, dict(
        module=nn.LSTMCell(3, 4))),
    "lstm_gates.GRUCell": lambda: (lstm_gates.GRUCell, dict(input_size=3, hidden_size=4)),
    "lstm_gates.GRUCell.forward": lambda: (lstm_gates.GRUCell(3, 4).forward, dict(
        x_t=torch.randn(2, 3), h_prev=torch.randn(2, 4), return_gates=True)),
    "lstm_gates.GRUCell.copy_to": lambda: (lstm_gates.GRUCell(3, 4).copy_to, dict(module=nn.GRU(3, 4))),
    "lstm_gates.GRUCell.copy_from": lambda: (lstm_gates.GRUCell(3, 4).copy_from, dict(
        module=nn.GRUCell(3, 4))),
    "lstm_gates.ScratchLSTM": lambda: (lstm_gates.ScratchLSTM, dict(input_size=3, hidden_size=4)),
    "lstm_gates.ScratchLSTM.forward": lambda: (lstm_gates.ScratchLSTM(3, 4).forward, dict(
        x=torch.randn(2, 5, 3), state=(torch.randn(1, 2, 4), torch.randn(1, 2, 4)))),
    "lstm_gates.ScratchGRU": lambda: (lstm_gates.ScratchGRU, dict(input_size=3, hidden_size=4)),
    "lstm_gates.set_gate_bias": lambda: (lstm_gates.set_gate_bias, dict(
        module=nn.LSTM(3, 4), gate="f", value=1.0)),
    "lstm_gates.long_memory_init": lambda: (lstm_gates.long_memory_init, dict(
        module=nn.GRU(3, 4), max_lag=10, seed=0)),
    "lstm_gates.record_gates": lambda: (lstm_gates.record_gates, dict(
        module=nn.LSTM(3, 4, batch_first=True), x=torch.randn(2, 5, 3))),
    "lstm_gates.train_mnist_classifier": lambda: (lstm_gates.train_mnist_classifier, dict(
        kind="gru", digits=_mnist(), hidden_size=4, epochs=1, lr=0.01, batch_size=4, max_shift=1,
        val_loader=_mnist_rows(), seed=0, device="cpu", verbose=False)),
    "lstm_gates.distort_images": lambda: (lstm_gates.distort_images, dict(
        x=torch.rand(2, 28, 28), max_shift=1, max_rotation=5.0, max_scale=0.1,
        generator=torch.Generator().manual_seed(0))),
    "lstm_gates.RandomDistortions": lambda: (lstm_gates.RandomDistortions, dict(
        loader=data.make_loader(torch.rand(4, 28, 28), torch.arange(4)), max_shift=2,
        max_rotation=10.0, max_scale=0.1, seed=0)),
    "lstm_gates.make_adding_model": lambda: (lstm_gates.make_adding_model, dict(
        kind="lstm", hidden_size=4, steps=5, seed=0, max_lag=3, input_bias=0.0)),
    "lstm_gates.best_setting": lambda: (lstm_gates.best_setting, dict(
        rows=[{"T": 50, "lr": lr, "seed": k, "mse": lr * (k + 1)} for lr in (0.01, 0.1)
              for k in range(2)], by=["T"], setting="lr", score="mse", minimize=True)),
    "lstm_gates.gate_variance_shares": lambda: (lstm_gates.gate_variance_shares, dict(
        gate=torch.rand(2, 4, 3), ink=torch.tensor([[True, False, True, False]] * 2))),
    "lstm_gates.run_adding_problem": lambda: (lstm_gates.run_adding_problem, dict(
        kind="gru", steps=4, hidden_size=4, train_steps=1, batch_size=2, lr=0.01, clip_norm=1.0,
        seed=0, n_test=4, keep_bias=1.0, device="cpu")),
    # --- chapter 6: sequence_shapes
    "sequence_shapes.noisy_sines": lambda: (shapes.noisy_sines, dict(
        n=3, length=10, components=2, noise=0.1, seed=0)),
    "sequence_shapes.waves_from_parameters": lambda: (shapes.waves_from_parameters, dict(
        n=3, length=10, seed=0)),
    "sequence_shapes.random_crops": lambda: (shapes.random_crops, dict(
        x=torch.randn(3, 8, 2), min_length=2, max_length=5, seed=0)),
    "sequence_shapes.horizon_targets": lambda: (shapes.horizon_targets, dict(
        series=torch.randn(2, 10), horizon=3)),
    "sequence_shapes.naive_forecast": lambda: (shapes.naive_forecast, dict(
        context=torch.randn(2, 6), horizon=3)),
    "sequence_shapes.RecurrentForecaster": lambda: (shapes.RecurrentForecaster, dict(
        hidden_size=4, horizon=2)),
    "sequence_shapes.RecurrentForecaster.forward": lambda: (shapes.RecurrentForecaster(4, 2).forward,
                                                            dict(x=torch.randn(2, 6, 1),
                                                                 h0=torch.randn(1, 2, 4))),
    "sequence_shapes.RecurrentForecaster.forecast": lambda: (
        shapes.RecurrentForecaster(4, 2).forecast, dict(context=torch.randn(2, 6))),
    "sequence_shapes.RecurrentForecaster.rollout": lambda: (
        shapes.RecurrentForecaster(4, 1).rollout, dict(context=torch.randn(2, 6), steps=3)),
    "sequence_shapes.LinearForecaster": lambda: (shapes.LinearForecaster, dict(
        window=3, horizon=2, ridge=1e-6)),
    "sequence_shapes.LinearForecaster.fit": lambda: (shapes.LinearForecaster(3, 2).fit, dict(
        series=torch.randn(4, 12))),
    "sequence_shapes.LinearForecaster.forward": lambda: (
        shapes.LinearForecaster(3, 2).fit(torch.randn(4, 12)).forward, dict(series=torch.randn(2, 8))),
    "sequence_shapes.LinearForecaster.forecast": lambda: (
        shapes.LinearForecaster(3, 2).fit(torch.randn(4, 12)).forecast, dict(context=torch.randn(2, 8))),
    "sequence_shapes.train_forecaster": lambda: (shapes.train_forecaster, dict(
        model=shapes.RecurrentForecaster(4, 2), series=torch.randn(4, 12), steps=1, lr=0.01,
        batch_size=2, clip_norm=1.0, seed=0)),
    "sequence_shapes.last_valid_step": lambda: (shapes.last_valid_step, dict(
        outputs=torch.randn(2, 5, 3), lengths=torch.tensor([5, 2]))),
    "sequence_shapes.PerStepClassifier": lambda: (shapes.PerStepClassifier, dict(
        input_size=3, hidden_size=4, n_classes=2)),
    "sequence_shapes.PerStepClassifier.forward": lambda: (shapes.PerStepClassifier(3, 4, 2).forward,
                                                          dict(x=torch.randn(2, 5, 3),
                                                               lengths=torch.tensor([5, 2]))),
    "sequence_shapes.VectorToSequence": lambda: (shapes.VectorToSequence, dict(
        vector_size=3, hidden_size=4, output_size=2, steps=5)),
    "sequence_shapes.VectorToSequence.forward": lambda: (shapes.VectorToSequence(3, 4, 2, 5).forward,
                                                         dict(v=torch.randn(2, 3))),
    "sequence_shapes.last_step_accuracy": lambda: (shapes.last_step_accuracy, dict(
        logits=torch.randn(2, 5, 3), lengths=torch.tensor([5, 2]), labels=torch.tensor([0, 2]))),
    "sequence_shapes.reversal_pairs_by_length": lambda: (shapes.reversal_pairs_by_length, dict(
        per_length=3, min_length=2, max_length=4, exclude=["12"], seed=0)),
    "sequence_shapes.CroppedBatches": lambda: (shapes.CroppedBatches, dict(
        x=torch.randn(4, 5, 3), lengths=torch.tensor([5, 2, 3, 1]), y=torch.arange(4) % 2,
        batch_size=2, shuffle=True, seed=0)),
    # --- chapter 7: language_model
    "language_model.interpolated_prob": lambda: (lm.interpolated_prob, dict(
        model=lm.NGramModel(PASSAGE, 2, VOCAB), history="ab", ch="c", order=2)),
    "language_model.NGramModel": lambda: (lm.NGramModel, dict(
        text=PASSAGE, max_order=2, vocab=VOCAB, discount=0.75)),
    "language_model.NGramModel.prob": lambda: (lm.NGramModel(PASSAGE, 2, VOCAB).prob, dict(
        history="ab", ch="c", order=1)),
    "language_model.NGramModel.distribution": lambda: (lm.NGramModel(PASSAGE, 2, VOCAB).distribution,
                                                       dict(history="ab", order=2)),
    "language_model.NGramModel.bits_per_char": lambda: (
        lm.NGramModel(PASSAGE, 2, VOCAB).bits_per_char, dict(text="ab ca.", order=2)),
    "language_model.CharLM": lambda: (lm.CharLM, dict(
        vocab_size=6, kind="gru", embedding_size=3, hidden_size=4, num_layers=2, dropout=0.1)),
    "language_model.CharLM.forward": lambda: (lm.CharLM(6, "lstm", embedding_size=3,
                                                        hidden_size=4).forward,
                                              dict(x=torch.tensor([[0, 1, 2], [3, 4, 5]]))),
    "language_model.make_language_model": lambda: (lm.make_language_model, dict(
        kind="rnn", vocab_size=6, parameters=300, embedding_size=3, num_layers=1, dropout=0.0)),
    "language_model.train_for_steps": lambda: (lm.train_for_steps, dict(
        model=lm.CharLM(5, "gru", embedding_size=3, hidden_size=4), windows=_windows(),
        steps=2, lr=0.01, state="carry", clip_norm=1.0, device="cpu")),
    "language_model.held_out_bits": lambda: (lm.held_out_bits, dict(
        model=lm.CharLM(5, "gru", embedding_size=3, hidden_size=4), windows=_windows(), device="cpu")),
    "language_model.next_char_probs": lambda: (lm.next_char_probs, dict(
        logits=torch.randn(6), temperature=0.8, top_k=3)),
    "language_model.sample": lambda: (lm.sample, dict(
        model=lm.CharLM(6, "gru", embedding_size=3, hidden_size=4), vocab=VOCAB, prompt="ab",
        length=4, temperature=1.0, top_k=3, seed=0)),
    "language_model.known_word_share": lambda: (lm.known_word_share, dict(
        generated="ab ca zz", reference=PASSAGE)),
    "language_model.text_features": lambda: (lm.text_features, dict(text="a (b) \"c\" d.\n")),
    "language_model.hidden_states": lambda: (lm.hidden_states, dict(
        model=lm.CharLM(6, "gru", embedding_size=3, hidden_size=4), vocab=VOCAB, text="ab c")),
    "language_model.pearson": lambda: (lm.pearson, dict(states=torch.randn(10, 4),
                                                        feature=torch.randn(10))),
    "language_model.unit_correlations": lambda: (lm.unit_correlations, dict(
        states=torch.randn(10, 4), features={"f": torch.randn(10)})),
    "language_model.units_above": lambda: (lm.units_above, dict(
        correlations={"f": torch.tensor([0.1, -0.6, 0.7])}, threshold=0.5)),
    "language_model.char_bits": lambda: (lm.char_bits, dict(
        model=lm.CharLM(5, "gru", embedding_size=3, hidden_size=4), windows=_windows(), device="cpu")),
    "language_model.ngram_char_bits": lambda: (lm.ngram_char_bits, dict(
        model=text.KneserNey(PASSAGE, 2, VOCAB), text="ab ca.", order=2)),
    "language_model.copied_mask": lambda: (lm.copied_mask, dict(
        text="ab ca.", reference=PASSAGE, length=3)),
    "language_model.cell_states": lambda: (lm.cell_states, dict(
        model=lm.CharLM(6, "lstm", embedding_size=3, hidden_size=4), vocab=VOCAB, text="ab c")),
    "language_model.train_recipe": lambda: (lm.train_recipe, dict(
        name="GRU", vocab_size=5, windows=_windows(), lr=0.01, seed=0, dropout=0.0,
        state="carry", val_windows=_windows(), steps=2, device="cpu")),
    "language_model.bits_by_position": lambda: (lm.bits_by_position, dict(
        model=lm.CharLM(5, "gru", embedding_size=3, hidden_size=4), windows=_windows(),
        state="reset", device="cpu")),
    "language_model.sample_ngram": lambda: (lm.sample_ngram, dict(
        model=text.KneserNey(PASSAGE, 3, VOCAB), prompt="ab", length=5, order=2, seed=0)),
    # --- chapter 12: attention_and_scans
    "attention_and_scans.linear_recurrence_loop": lambda: (scans.linear_recurrence_loop, dict(
        a=torch.rand(2, 5, 3), b=torch.randn(2, 5, 3), h0=torch.randn(2, 3))),
    "attention_and_scans.naive_scan": lambda: (scans.naive_scan, dict(
        a=torch.rand(2, 5, 3) + 0.5, b=torch.randn(2, 5, 3), h0=torch.randn(2, 3))),
    "attention_and_scans.log_scan": lambda: (scans.log_scan, dict(
        log_a=-torch.rand(2, 5, 3), log_b=torch.randn(2, 5, 3), log_h0=torch.randn(2, 3))),
    "attention_and_scans.chunked_log_scan": lambda: (scans.chunked_log_scan, dict(
        log_a=-torch.rand(2, 5, 3), log_b=torch.randn(2, 5, 3), log_h0=torch.randn(2, 3), chunk=2)),
    "attention_and_scans.parallel_scan": lambda: (scans.parallel_scan, dict(
        a=torch.rand(2, 5, 3) + 0.1, b=torch.randn(2, 5, 3), h0=torch.randn(2, 3), chunk=2)),
    "attention_and_scans.max_relative_error": lambda: (scans.max_relative_error, dict(
        estimate=torch.randn(2, 3), reference=torch.randn(2, 3))),
    "attention_and_scans.log_g": lambda: (scans.log_g, dict(x=torch.randn(2, 3))),
    "attention_and_scans.MinGRU": lambda: (scans.MinGRU, dict(input_size=3, hidden_size=4, mode="loop")),
    "attention_and_scans.MinGRU.coefficients": lambda: (scans.MinGRU(3, 4).coefficients, dict(
        x=torch.randn(2, 5, 3))),
    "attention_and_scans.MinLSTM": lambda: (scans.MinLSTM, dict(input_size=3, hidden_size=4,
                                                                mode="scan")),
    "attention_and_scans.MinLSTM.coefficients": lambda: (scans.MinLSTM(3, 4).coefficients, dict(
        x=torch.randn(2, 5, 3))),
    "attention_and_scans.additive_attention": lambda: (scans.additive_attention, dict(
        query=torch.randn(2, 4), keys=torch.randn(2, 3, 4), values=torch.randn(2, 3, 5),
        mask=torch.tensor([[True, True, False], [True, True, True]]), v=torch.randn(4))),
    "attention_and_scans.AttentionEncoderDecoder": lambda: (scans.AttentionEncoderDecoder, dict(
        vocab_size=8, embedding_size=3, hidden_size=4, attention_size=5)),
    "attention_and_scans.BidirectionalEncoderDecoder": lambda: (
        scans.BidirectionalEncoderDecoder, dict(vocab_size=8, embedding_size=3, hidden_size=4)),
    "attention_and_scans.BidirectionalEncoderDecoder.encode_all": lambda: (
        scans.BidirectionalEncoderDecoder(8, 3, 4).encode_all, _encdec_args()),
    "attention_and_scans.BidirectionalEncoderDecoder.encode": lambda: (
        scans.BidirectionalEncoderDecoder(8, 3, 4).encode, _encdec_args()),
    "attention_and_scans.combine": lambda: (scans.combine, dict(
        first=(torch.rand(2, 3), torch.randn(2, 3)), second=(torch.rand(2, 3), torch.randn(2, 3)))),
    "attention_and_scans.hillis_steele_scan": lambda: (scans.hillis_steele_scan, dict(
        a=torch.rand(2, 5, 3), b=torch.randn(2, 5, 3), h0=torch.randn(2, 3))),
    "attention_and_scans.scan_schedule": lambda: (scans.scan_schedule, dict(T=8)),
    "attention_and_scans.time_scans": lambda: (scans.time_scans, dict(
        lengths=[2, 3], batch_size=2, hidden_size=4, repeats=1)),
    "attention_and_scans.match_width": lambda: (scans.match_width, dict(
        build=lambda w: nn.Linear(3, w), target=40, step=1)),
    "attention_and_scans.reversal_splits": lambda: (scans.reversal_splits, {}),
    "attention_and_scans.reversal_loss": lambda: (scans.reversal_loss, dict(
        model=scans.BidirectionalEncoderDecoder(13, 3, 4), sources=["123", "45"],
        targets=["321", "54"])),
    "attention_and_scans.exact_match_by_length": lambda: (scans.exact_match_by_length, dict(
        model=scans.BidirectionalEncoderDecoder(13, 3, 4), sources=["123", "45"],
        targets=["321", "54"])),
    "attention_and_scans.paired_wins": lambda: (scans.paired_wins, dict(
        rows=[{"seed": s, "model": m, "test": s + (m == "a")} for s in range(3) for m in "ab"],
        first="a", second="b", value="test")),
    "attention_and_scans.seed_summary": lambda: (scans.seed_summary, dict(
        rows=[{"seed": s, "model": "a", "x": float(s)} for s in range(3)], by="model",
        values=["x"], digits=2)),
    "attention_and_scans.AttentionEncoderDecoder.forward": lambda: (
        scans.AttentionEncoderDecoder(8, 3, 4).forward,
        dict(_encdec_args(), decoder_inputs=torch.tensor([[1, 4], [1, 5]]))),
    "attention_and_scans.AttentionEncoderDecoder.decode_with_attention": lambda: (
        scans.AttentionEncoderDecoder(8, 3, 4).decode_with_attention, dict(_encdec_args(), max_steps=3)),
    "attention_and_scans.AttentionEncoderDecoder.greedy_decode": lambda: (
        scans.AttentionEncoderDecoder(8, 3, 4).greedy_decode, dict(_encdec_args(), max_steps=3)),
    "attention_and_scans.BidirectionalEncoderDecoder.forward": lambda: (
        scans.BidirectionalEncoderDecoder(8, 3, 4).forward,
        dict(_encdec_args(), decoder_inputs=torch.tensor([[1, 4], [1, 5]]))),
    "attention_and_scans.BidirectionalEncoderDecoder.greedy_decode": lambda: (
        scans.BidirectionalEncoderDecoder(8, 3, 4).greedy_decode, dict(_encdec_args(), max_steps=3)),
    "attention_and_scans.AttentionEncoderDecoder.encode_all": lambda: (
        scans.AttentionEncoderDecoder(8, 3, 4).encode_all, _encdec_args()),
    "attention_and_scans.AttentionEncoderDecoder.encode": lambda: (
        scans.AttentionEncoderDecoder(8, 3, 4).encode, _encdec_args()),
    "attention_and_scans.train_reverser": lambda: (scans.train_reverser, dict(
        kind="attention", splits={"train": (["123", "4567"], ["321", "7654"])}, lr=0.01, seed=0,
        steps=2, device="cpu")),
    "attention_and_scans.make_layer": lambda: (scans.make_layer, dict(
        kind="minlstm", input_size=3, hidden_size=4)),
    "attention_and_scans.chrono_init": lambda: (scans.chrono_init, dict(
        layer=scans.MinGRU(3, 4), max_lag=10, seed=0)),
    "attention_and_scans.train_adding": lambda: (scans.train_adding, dict(
        kind="mingru", steps=4, hidden_size=4, train_steps=1, batch_size=2, lr=0.01,
        clip_norm=1.0, schedule="cosine", head_at_mean=True, fresh=False, mode="loop", seed=0,
        n_eval=4, test=True, device="cpu")),
    "attention_and_scans.CharModel": lambda: (scans.CharModel, dict(
        kind="mingru", vocab_size=6, embedding_size=3, hidden_size=4, mode="loop")),
    "attention_and_scans.CharModel.forward": lambda: (scans.CharModel("gru", 6, 3, 4).forward, dict(
        x=torch.tensor([[0, 1, 2], [3, 4, 5]]), state=torch.randn(1, 2, 4))),
    "attention_and_scans.train_char_model": lambda: (scans.train_char_model, dict(
        kind="mingru", train_windows=_windows(), validation_windows=_windows(), hidden_size=4,
        epochs=1, lr=0.01, mode="loop", seed=0, device="cpu")),
    "attention_and_scans.crossover": lambda: (scans.crossover, dict(
        rows=[{"T": 1, "a": 2.0, "b": 1.0}, {"T": 2, "a": 1.0, "b": 2.0}], fast="a", slow="b")),
    # --- chapter 8: matrix_memories
    "matrix_memories.elu_plus_one": lambda: (matrix_memories.elu_plus_one, dict(
        x=torch.randn(2, 3))),
    "matrix_memories.linear_attention_parallel": lambda: (
        matrix_memories.linear_attention_parallel, dict(_qkv(), normalize=True)),
    "matrix_memories.linear_attention_recurrent": lambda: (
        matrix_memories.linear_attention_recurrent, dict(_qkv(), normalize=True)),
    "matrix_memories.softmax_attention": lambda: (matrix_memories.softmax_attention, _qkv()),
    "matrix_memories.linear_attention_chunkwise": lambda: (
        matrix_memories.linear_attention_chunkwise, dict(_qkv(), chunk=2, normalize=True)),
    "matrix_memories.delta_rule_recurrent": lambda: (matrix_memories.delta_rule_recurrent, dict(
        _qkv(), beta=_gate(0.0, 2.0), alpha=_gate())),
    "matrix_memories.delta_rule_chunkwise": lambda: (matrix_memories.delta_rule_chunkwise, dict(
        _qkv(), beta=_gate(), chunk=2)),
    "matrix_memories.write_pairs": lambda: (matrix_memories.write_pairs, dict(
        _pairs(), rule="delta", beta=1.0)),
    "matrix_memories.retrieval_error": lambda: (matrix_memories.retrieval_error, dict(
        S=matrix_memories.write_pairs(**_pairs(), rule="additive"), **_pairs())),
    "matrix_memories.random_pairs": lambda: (matrix_memories.random_pairs, dict(
        trials=2, pairs=3, d_key=4, d_value=5, generator=_gen())),
    "matrix_memories.retrieval_curves": lambda: (matrix_memories.retrieval_curves, dict(
        pair_counts=[2, 4], key_sizes=[2, 4], trials=2, seed=0)),
    "matrix_memories.mlstm_recurrent": lambda: (matrix_memories.mlstm_recurrent, dict(
        _qkv(), log_i=torch.randn(2, 5), log_f=-_gate(), stabilize=True)),
    "matrix_memories.paper_gated_delta_loop": lambda: (matrix_memories.paper_gated_delta_loop,
                                                       dict(_qkv(), beta=_gate(), alpha=_gate())),
    "matrix_memories.paper_mlstm_loop": lambda: (matrix_memories.paper_mlstm_loop, dict(
        _qkv(), i_pre=torch.randn(2, 5), f_pre=torch.randn(2, 5))),
    "matrix_memories.mqar_batch": lambda: (matrix_memories.mqar_batch, dict(
        batch_size=2, pairs=[2, 3], length=12, generator=_gen())),
    "matrix_memories.parity_batch": lambda: (matrix_memories.parity_batch, dict(
        batch_size=2, length=5, generator=_gen())),
    "matrix_memories.MatrixMemory": lambda: (matrix_memories.MatrixMemory, dict(
        kind="delta", input_size=3, d_key=4, d_value=5, chunk=2)),
    "matrix_memories.MatrixMemory.forward": lambda: (
        matrix_memories.MatrixMemory("delta_neg", 3, 4, chunk=2).forward, dict(
            x=torch.randn(2, 5, 3))),
    "matrix_memories.MatrixMemory.state_floats": lambda: (
        matrix_memories.MatrixMemory("linear", 3, 4).state_floats, {}),
    "matrix_memories.MatrixMemory.extra_repr": lambda: (
        matrix_memories.MatrixMemory("softmax", 3, 4).extra_repr, {}),
    "matrix_memories.token_shift": lambda: (matrix_memories.token_shift, dict(
        e=torch.randn(2, 5, 3))),
    "matrix_memories.TaskModel": lambda: (matrix_memories.TaskModel, dict(
        kind="delta", vocab_size=6, n_classes=3, d_model=4, d_key=4, hidden_size=4,
        head_size=4)),
    "matrix_memories.TaskModel.forward": lambda: (matrix_memories.TaskModel(
        "lstm", 6, 3, d_model=4, hidden_size=4, head_size=4).forward, dict(
            x=torch.tensor([[0, 1, 2], [3, 4, 5]]))),
    "matrix_memories.TaskModel.state_floats": lambda: (matrix_memories.TaskModel(
        "lstm", 6, 3, d_model=4, hidden_size=4, head_size=4).state_floats, {}),
    "matrix_memories.make_model": lambda: (matrix_memories.make_model, dict(
        task="parity", name="DeltaNet, beta in (0, 2)")),
    "matrix_memories.task_batch": lambda: (matrix_memories.task_batch, dict(
        task="mqar", batch_size=2, split="train", generator=_gen(), pairs=4)),
    "matrix_memories.held_out": lambda: (matrix_memories.held_out, dict(
        task="parity", split="validation")),
    "matrix_memories.accuracies": lambda: (matrix_memories.accuracies, dict(
        task="parity", model=matrix_memories.make_model("parity", "linear attention"),
        split="validation", device="cpu")),
    "matrix_memories.train_task": lambda: (matrix_memories.train_task, dict(
        task="parity", name="linear attention", lr=0.01, seed=0, steps=2, device="cpu")),
    "matrix_memories.train_model": lambda: (matrix_memories.train_model, dict(
        task="parity", model=matrix_memories.make_model("parity", "linear attention"),
        lr=0.01, seed=0, steps=2, device="cpu")),
    "matrix_memories.UnitKeyAdditiveMemory": lambda: (matrix_memories.UnitKeyAdditiveMemory,
                                                      dict(input_size=3, d_key=4, d_value=5)),
    "matrix_memories.UnitKeyAdditiveMemory.forward": lambda: (
        matrix_memories.UnitKeyAdditiveMemory(3, 4).forward, dict(x=torch.randn(2, 5, 3))),
    "matrix_memories.UnitKeyAdditiveMemory.state_floats": lambda: (
        matrix_memories.UnitKeyAdditiveMemory(3, 4).state_floats, {}),
    "matrix_memories.UnitKeyAdditiveMemory.extra_repr": lambda: (
        matrix_memories.UnitKeyAdditiveMemory(3, 4).extra_repr, {}),
    "matrix_memories.time_forms": lambda: (matrix_memories.time_forms, dict(
        lengths=[4, 8], batch_size=2, d_key=4, repeats=1, max_parallel=4, seed=0)),
    "matrix_memories.median_seconds": lambda: (matrix_memories.median_seconds, dict(
        rows=_timing_rows())),
    "matrix_memories.crossover": lambda: (matrix_memories.crossover, dict(
        rows=_timing_rows(), fast="chunkwise, C = 16", slow="recurrent")),
    "matrix_memories.plot_retrieval": lambda: (matrix_memories.plot_retrieval, dict(
        rows=matrix_memories.retrieval_curves([2, 4], [2], trials=2))),
    "matrix_memories.plot_recall": lambda: (matrix_memories.plot_recall, dict(
        rows=_accuracy_rows("pairs", (4, 8)))),
    "matrix_memories.plot_parity": lambda: (matrix_memories.plot_parity, dict(
        rows=_accuracy_rows("length", (16, 32)), train_length=16)),
    "matrix_memories.plot_form_timings": lambda: (matrix_memories.plot_form_timings, dict(
        rows=_timing_rows())),
    # --- displayed equations (their checks run through @checked_by)
    "cells.rnn_step": lambda: (cells.rnn_step, dict(
        x_t=torch.randn(2, 3), h_prev=torch.randn(2, 4), W_xh=torch.randn(3, 4),
        W_hh=torch.randn(4, 4), b_h=torch.randn(4), phi=torch.tanh)),
    "lstm_gates.lstm_gates": lambda: (lstm_gates.lstm_gates, _step_weights(4, ("b",))),
    "lstm_gates.lstm_step": lambda: (lstm_gates.lstm_step, dict(
        _step_weights(4, ("b",)), c_prev=torch.randn(2, 4))),
    "lstm_gates.gru_gates": lambda: (lstm_gates.gru_gates, _step_weights(3, ("b_x", "b_h"))),
    "lstm_gates.gru_step": lambda: (lstm_gates.gru_step, _step_weights(3, ("b_x", "b_h"))),
    "attention_and_scans.AttentionEncoderDecoder.step": _step_spec,
    # --- inherited methods, and the ones without arguments
    "cells.RNNCell.reset_parameters": lambda: (cells.RNNCell(3, 4).reset_parameters, {}),
    "cells.RNNCell.extra_repr": lambda: (cells.RNNCell(3, 4).extra_repr, {}),
    "cells.ScratchRNN.forward": lambda: (cells.ScratchRNN(3, 4).forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.randn(1, 2, 4))),
    "lstm_gates.ScratchGRU.forward": lambda: (lstm_gates.ScratchGRU(3, 4).forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.randn(1, 2, 4))),
    "lstm_gates.LSTMCell.gate_slice": lambda: (lstm_gates.LSTMCell(3, 4).gate_slice, dict(
        gate="f")),
    "lstm_gates.LSTMCell.reset_parameters": lambda: (
        lstm_gates.LSTMCell(3, 4).reset_parameters, {}),
    "lstm_gates.LSTMCell.extra_repr": lambda: (lstm_gates.LSTMCell(3, 4).extra_repr, {}),
    "lstm_gates.GRUCell.gate_slice": lambda: (lstm_gates.GRUCell(3, 4).gate_slice, dict(gate="z")),
    "lstm_gates.GRUCell.reset_parameters": lambda: (lstm_gates.GRUCell(3, 4).reset_parameters, {}),
    "lstm_gates.GRUCell.extra_repr": lambda: (lstm_gates.GRUCell(3, 4).extra_repr, {}),
    "attention_and_scans.MinGRU.forward": lambda: (scans.MinGRU(3, 4).forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.rand(1, 2, 4))),
    "attention_and_scans.MinGRU.extra_repr": lambda: (scans.MinGRU(3, 4).extra_repr, {}),
    "attention_and_scans.MinLSTM.forward": lambda: (scans.MinLSTM(3, 4, mode="loop").forward, dict(
        x=torch.randn(2, 5, 3), h0=torch.rand(1, 2, 4))),
    "attention_and_scans.MinLSTM.extra_repr": lambda: (scans.MinLSTM(3, 4).extra_repr, {}),
    # --- files and the network (a server on 127.0.0.1, a cache and a results folder of our own)
    "data.md5sum": lambda: (data.md5sum, dict(path=_file(b"abc"))),
    "data.read_idx": lambda: (data.read_idx, dict(path=_file(IDX))),
    "data.download": lambda: (data.download, dict(
        url=_Server.url, dest=SANDBOX / "download" / "blob", md5=hashlib.md5(BLOB).hexdigest(),
        size=len(BLOB), timeout=2.0, deadline=4.0, progress=False)),
    "data.load_mnist": lambda: (data.load_mnist, dict(
        root=SANDBOX / "mnist", offline=True, strict=False, verbose=False, test_fraction=0.2,
        validation_fraction=0.125, device="cpu", seed=0)),
    "results.source_text": lambda: (results.source_text, dict(source="book_utils.training.fit")),
    "results.fingerprint": lambda: (results.fingerprint, dict(
        sources=["book_utils.training.fit", "benchmarks/lstm.py"])),
    "results.save": lambda: (results.save, dict(
        name="census_case", rows=_rows(), sources=["book_utils.training.fit"], command="true",
        seed_key="seed", notes="a note")),
    "results.load": lambda: (results.load, dict(name="census")),
    "results.is_current": lambda: (results.is_current, dict(record=results.load("census"))),
    "results.summarize": lambda: (results.summarize, dict(
        rows=_rows(), by=["model"], value="accuracy")),
    # --- figures
    "recurrent_neurons.draw_unrolled_rnn": lambda: (recurrent_neurons.draw_unrolled_rnn, dict(
        steps=3, state="h", output="y")),
    "recurrent_neurons.plot_digit_rows": lambda: (recurrent_neurons.plot_digit_rows, dict(
        image=torch.rand(28, 28), label=3)),
    "recurrent_neurons.plot_compared_runs": lambda: (recurrent_neurons.plot_compared_runs, dict(
        histories={"a": _full_history()})),
    "bptt.draw_unrolled_classifier": lambda: (bptt.draw_unrolled_classifier, dict(
        steps=3, backward=True)),
    "bptt.draw_autograd_graph": lambda: (bptt.draw_autograd_graph, dict(zip(
        ("nodes", "edges"), bptt.autograd_graph(*_graph())))),
    "bptt.plot_state_gradients": lambda: (bptt.plot_state_gradients, dict(
        curves={"h": torch.rand(5) + 0.1}, title="t", ax=None, ylabel="y")),
    "bptt.plot_step_history": lambda: (bptt.plot_step_history, dict(
        histories={"a": _full_history()}, title="t", loss_max=5.0)),
    "lstm_gates.draw_lstm_cell": lambda: (lstm_gates.draw_lstm_cell, {}),
    "lstm_gates.draw_gru_cell": lambda: (lstm_gates.draw_gru_cell, {}),
    "lstm_gates.plot_gates_on_digit": lambda: (lstm_gates.plot_gates_on_digit, dict(
        image=torch.rand(6, 6), gates={"f": torch.rand(6, 3), "i": torch.rand(6, 3)},
        roles={"f": "forget", "i": "input"})),
    "memory_cells.draw_cell_with_output": lambda: (memory_cells.draw_cell_with_output, dict(
        steps=3, state="h", output="y")),
    "memory_cells.plot_state_trajectories": lambda: (memory_cells.plot_state_trajectories, dict(
        trajectories=torch.randn(4, 5, 2), labels=torch.tensor([0, 1, 0, 1]), classes=[0, 1],
        per_class=2, explained=torch.tensor([0.5, 0.3]))),
    "sequence_shapes.draw_sequence_shapes": lambda: (shapes.draw_sequence_shapes, {}),
    "language_model.plot_learning_curves": lambda: (lm.plot_learning_curves, dict(
        run={"step_loss": [2.0, 1.5, 1.2, 1.0], "val_loss": [1.4, 1.1], "val_steps": [2, 4]},
        seeds={"a": [([2, 4], [2.0, 1.6])] * 2}, baseline=1.5, smooth=2)),
    "language_model.plot_unit_activity": lambda: (lm.plot_unit_activity, dict(
        passage="ab c\nde", panels={"u": torch.randn(7)}, width=10)),
    "attention_and_scans.plot_timings": lambda: (scans.plot_timings, dict(
        timings={"cpu": [{"T": 1, "loop": 0.1, "scan": 0.2, "nn.GRU": 0.1},
                         {"T": 2, "loop": 0.2, "scan": 0.2, "nn.GRU": 0.1}]})),
    "attention_and_scans.plot_attention": lambda: (scans.plot_attention, dict(
        weights=[torch.rand(3, 2)], sources=["12"], outputs=["21"], titles=["a title"],
        marks=[1])),
    "attention_and_scans.draw_scan_tree": lambda: (scans.draw_scan_tree, dict(T=8)),
    "attention_and_scans.draw_attention_decoder": lambda: (scans.draw_attention_decoder, {}),
}


def _update_spec():
    model = nn.Linear(2, 1)
    loss = model(torch.randn(3, 2)).pow(2).mean()
    return training.update, dict(model=model, loss=loss, optimizer=torch.optim.SGD(
        model.parameters(), lr=0.1), clip_norm=1.0, scheduler=None, allow_nonfinite=False, step=1)


def _fit_spec():
    model = _classifier()
    return training.fit, dict(
        model=model, batches=_loader(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1, val_loader=_loader(), clip_norm=1.0, device="cpu", verbose=False)


def _truncated_spec():
    model = bptt.make_step_classifier("rnn", 2, 4, 2)
    x, y = bptt.echo_stream(2, 6, lag=1)
    return bptt.train_truncated, dict(model=model, x=x, y=y, window=3, epochs=1,
                                      optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


# Why a public callable is not driven here: none today. "module.name" -> the reason.
EXCUSED: dict[str, str] = {}

# Functions that score or compare: NaN in a scored tensor must raise, never give a number.
METRICS = {
    "training.masked_mean", "training.masked_cross_entropy", "sequence_shapes.last_step_accuracy",
    "bptt.stream_accuracy", "bptt.relative_error", "memory_cells.linear_probe_accuracy",
    "attention_and_scans.max_relative_error", "language_model.pearson",
    "language_model.unit_correlations", "matrix_memories.retrieval_error",
    "matrix_memories.accuracies",
}


# ------------------------------------------------------------------ the battery

SIZE_WORDS = ("size", "steps", "n", "length", "window", "horizon", "chunk", "classes", "lag",
              "epochs", "repeats", "components", "order", "symbols", "top_k", "threads")
NAN, INF = float("nan"), float("inf")
HUGE = 2**63
HANG_SECONDS = 20  # a call that takes longer is a hang: the valid ones take milliseconds
# Values a function may legitimately accept; all others must be refused.
MAY_ACCEPT = {"numpy int", "float64", "float32", "list", "tuple", "numpy array", "nan tensor",
              "inf tensor", "extra dim", "fewer dims", "empty", "fewer rows"}


def _is_size(name: str) -> bool:
    return any(name == w or name.endswith("_" + w) or name.startswith(w + "_") for w in SIZE_WORDS)


def _others(kwargs: dict, name: str) -> list:
    return [v for k, v in kwargs.items() if k != name]


def battery(api: str, name: str, value: Any, default: Any, others: list) -> list[tuple[str, Any]]:
    """(kind, bad value) pairs for argument ``name`` of ``api`` whose valid value is ``value``.

    ``others`` are the call's other argument values: a tensor that shares its first
    dimension with one of them gets a row fewer as a batch mismatch.
    """
    cases: list[tuple[str, Any]] = []
    if default is not None:
        cases.append(("None", None))
    if isinstance(value, bool):
        cases.append(("wrong type", "yes"))
    elif isinstance(value, numbers.Integral):
        cases += [("wrong type", str(value)), ("float for int", value + 0.5), ("negative", -1),
                  ("numpy int", np.int64(value)), ("huge", HUGE)]
        if value >= 1 and _is_size(name):
            cases.append(("zero", 0))
        if "seed" in name:
            cases.append(("seed 2**32", 2**32))
    elif isinstance(value, float):
        cases += [("wrong type", str(value)), ("nan", NAN), ("inf", INF), ("-inf", -INF),
                  ("1e300", 1e300)]
    elif isinstance(value, str):
        cases.append(("wrong type", 3))
    elif isinstance(value, torch.Tensor):
        cases += _tensor_cases(api, value, others)
    elif isinstance(value, nn.Module):
        cases += [("wrong type", "module"), ("wrong module", nn.Linear(3, 3))]
    elif isinstance(value, torch.optim.Optimizer):
        cases += [("wrong type", "optimizer"),
                  ("other optimizer", torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))]
    elif isinstance(value, (list, tuple)):
        cases.append(("empty", type(value)()))
        if value and all(isinstance(v, str) for v in value):
            cases.append(("str for list", "12"))
        else:
            cases.append(("wrong type", 3))
        cases.append(("list of None", type(value)([None] * max(1, len(value)))))
    elif isinstance(value, dict):
        cases += [("empty", {}), ("wrong type", list(value))]
        if value:
            cases.append(("dict of None", dict.fromkeys(value)))
    elif callable(value):
        cases.append(("wrong type", "function"))
    else:
        cases.append(("wrong type", 3.5))
    return cases


def _tensor_cases(api: str, value: torch.Tensor, others: list) -> list[tuple[str, Any]]:
    value = value.detach() if not value.requires_grad else value
    cases = [("wrong type", "tensor"), ("list", value.tolist()), ("extra dim", value[None])]
    if value.dim() >= 1:
        cases.append(("fewer dims", value[0] if len(value) else value.sum(0)))
        if len(value):
            cases.append(("empty", value[:0]))
        if len(value) >= 2:
            rows = len(value)
            shared = any(isinstance(o, torch.Tensor) and o.dim() >= 1 and len(o) == rows
                         for o in others)
            cases.append(("batch mismatch" if shared else "fewer rows", value[1:]))
    if value.is_floating_point():
        cases += [("integer dtype", value.round().long()),
                  ("float64" if value.dtype == torch.float32 else "float32",
                   value.double() if value.dtype == torch.float32 else value.float())]
        if value.numel():
            cases += [("nan tensor", _poke(value, NAN)), ("inf tensor", _poke(value, INF))]
            if api in METRICS:
                cases.append(("all nan", torch.full_like(value, NAN)))
    elif value.dtype != torch.bool:
        cases.append(("float dtype", value.float()))
        if value.numel():
            cases += [("id out of range", _poke(value, int(value.max()) + 1000)),
                      ("negative id", _poke(value, -5))]
    return cases


def _poke(value: torch.Tensor, number) -> torch.Tensor:
    """A copy of ``value`` with its first element set to ``number``."""
    poked = value.detach().clone()
    poked.view(-1)[0] = number
    return poked


def _padding_cases(api: str, kwargs: dict) -> list[tuple[str, str]]:
    """(param, kind) for each float tensor of a call with ``lengths`` whose padding can hold NaN."""
    lengths = kwargs.get("lengths")
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or not len(lengths):
        return []
    cases = []
    for name, value in kwargs.items():
        if (isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() >= 2
                and value.shape[0] == len(lengths) and int(lengths.min()) < value.shape[1]):
            cases += [(name, "nan in padding"), (name, "inf in padding")]
    return cases


def _pad_with(value: torch.Tensor, lengths: torch.Tensor, number: float) -> torch.Tensor:
    padded = value.detach().clone()
    for b, n in enumerate(lengths.tolist()):
        padded[b, n:] = number
    return padded


def _parameters(function: Callable) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(function).parameters)


def _call(function: Callable, kwargs: dict):
    args, rest = [], dict(kwargs)
    for name, p in _parameters(function).items():
        if p.kind is p.VAR_POSITIONAL and name in rest:
            args = list(rest.pop(name))
    return function(*args, **rest)


def _finite(result: Any, depth: int = 0) -> bool:
    """False when ``result`` holds a NaN or an infinity anywhere (a few levels deep)."""
    if depth > 3:
        return True
    if isinstance(result, torch.Tensor):
        return not result.is_floating_point() or bool(torch.isfinite(result).all())
    if isinstance(result, np.ndarray):
        return result.dtype.kind != "f" or bool(np.isfinite(result).all())
    if isinstance(result, float):
        return math.isfinite(result)
    if isinstance(result, dict):
        return all(_finite(v, depth + 1) for v in result.values())
    if isinstance(result, (list, tuple)):
        return all(_finite(v, depth + 1) for v in list(result)[:50])
    if hasattr(result, "__dataclass_fields__"):
        return all(_finite(getattr(result, f), depth + 1) for f in result.__dataclass_fields__)
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal numbers and tensors, a few levels deep; other objects count as equal."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@contextlib.contextmanager
def _quietly():
    """No output, no warnings, the caller's RNG and plot style kept, and a limit on the time."""
    sink = io.StringIO()
    saved = dict(plt.rcParams)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink), torch.random.fork_rng():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        plt.rcParams.update(saved)
        plt.close("all")


def _ours(err: BaseException) -> bool:
    """Raised by book_utils itself, not inside torch, numpy, matplotlib or Python."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(PACKAGE)


# Kinds that break a relation between arguments (their batch sizes): the message may name
# either side of it.
RELATIONAL = {"batch mismatch", "fewer rows", "empty"}


def _judge_error(api: str, param: str | None, kind: str, names: list[str],
                 err: BaseException) -> tuple[str, str]:
    detail = f"{type(err).__name__}: {str(err)[:200]}"
    if isinstance(err, _Hang):
        return "garbage", f"no answer within {HANG_SECONDS} s (a hang)"
    if not _ours(err):
        return "obscure", detail
    if isinstance(err, FloatingPointError):  # the package's own error for NaN or inf numbers
        return "clear", detail
    if isinstance(err, (ValueError, TypeError)):
        message = str(err)
        sides = names if kind in RELATIONAL else [param]
        candidates = sides + [ALIASES[f"{api}:{s}"] for s in sides if f"{api}:{s}" in ALIASES]
        named = param is None or any(name in message for name in candidates)
        return ("clear" if named and "got" in message.lower() else "vague"), detail
    return "obscure", detail


def run_case(api_name: str, param: str, kind: str, make_bad: Callable[[Any, dict], Any]
             ) -> tuple[str, str]:
    """Call ``api_name`` with ``param`` replaced; return (outcome, detail)."""
    function, kwargs = SPECS[api_name]()
    if kind.endswith("in padding"):
        return _run_padding_case(api_name, param, kind, function, kwargs)
    if _parameters(function)[param].kind is inspect.Parameter.VAR_POSITIONAL:
        bad = (make_bad(kwargs[param][0], kwargs),) + tuple(kwargs[param][1:])
    else:
        bad = make_bad(kwargs[param], kwargs)
    kwargs[param] = bad
    try:
        with _quietly():
            result = _call(function, kwargs)
    except BaseException as err:  # noqa: BLE001 - the census sorts every failure
        if isinstance(err, KeyboardInterrupt):
            raise
        return _judge_error(api_name, param, kind, list(kwargs), err)
    known = kind in KNOWN_VALID.get(f"{api_name}:{param}", ())
    if kind == "all nan":
        if known:
            return "accepted", ""
        return "garbage", f"scored NaN input: returned {type(result).__name__}"
    if kind not in ("nan tensor", "inf tensor") and not _finite(result):
        return "garbage", "returned NaN/inf from finite inputs"
    if kind in MAY_ACCEPT or known:
        return "accepted", ""
    return "garbage", f"returned {type(result).__name__} for {kind}"


def _run_padding_case(api: str, param: str, kind: str, function: Callable, kwargs: dict
                      ) -> tuple[str, str]:
    """NaN or inf past each sequence's length must leave the result as it was."""
    number = NAN if kind.startswith("nan") else INF
    try:
        with _quietly():
            clean = _call(function, dict(kwargs))
        with _quietly():
            poisoned = _call(function, {**kwargs, param: _pad_with(kwargs[param],
                                                                    kwargs["lengths"], number)})
    except BaseException as err:  # noqa: BLE001
        if isinstance(err, KeyboardInterrupt):
            raise
        return "garbage", f"padding was read: {type(err).__name__}: {str(err)[:150]}"
    if not _finite(poisoned) or not _same(clean, poisoned):
        return "garbage", "padding changed the result"
    return "accepted", ""


# Values of the battery that are valid for one argument: "api:param" -> kinds, with the reason.
KNOWN_VALID: dict[str, set[str]] = {
    "cells.one_layer_state:value": {"None"},          # no initial state: the cell starts at zero
    "plots.as_numpy:value": {"integer dtype"},         # an image of ints is fine to plot
    "session.glue:value": {"None", "wrong type", "1e300"},  # any finite value can be glued
    "training.random_batches:tensors": {"integer dtype", "id out of range", "negative id"},
    "training.train_classifier:clip_norm": {"None"},   # no clipping
    "language_model.train_for_steps:clip_norm": {"None"},
    "lstm_gates.run_adding_problem:clip_norm": {"None"},
    # order 0 is the uniform guess over the vocabulary, the base of the interpolation
    "language_model.interpolated_prob:order": {"zero"},
    "language_model.NGramModel.prob:order": {"zero"},
    "language_model.NGramModel.distribution:order": {"zero"},
    "language_model.NGramModel.bits_per_char:order": {"zero"},
    "language_model.sample_ngram:order": {"zero"},
    "language_model.ngram_char_bits:order": {"zero"},
    "text.kneser_ney_prob:order": {"zero"},
    "text.KneserNey.prob:order": {"zero"},
    "text.KneserNey.distribution:order": {"zero"},
    "text.KneserNey.bits_per_char:order": {"zero"},
    "bptt.echo_stream:lag": {"zero"},                  # echo the current symbol: no memory needed
    "bptt.train_exploding_rnn:clip_norm": {"None"},  # None: the unclipped control run
    "bptt.plot_step_history:loss_max": {"None"},  # None: the loss axis is not cut
    "memory_cells.make_recall_task:lag": {"zero"},     # recall the last symbol
    "memory_cells.train_recall:lag": {"zero"},
    # a general loader and stream windows carry token ids as inputs, any numbers as targets
    "data.make_loader:x": {"integer dtype"},
    "data.make_loader:y": {"float dtype", "id out of range", "negative id"},
    "data.stream_windows:x": {"integer dtype"},
    "data.stream_windows:y": {"float dtype", "id out of range", "negative id"},
    # an estimate that overflowed has an infinite error: that is the answer, not a score
    "attention_and_scans.max_relative_error:estimate": {"all nan"},
    # a map with no step to outline: None is what marks holds for it
    "attention_and_scans.plot_attention:marks": {"list of None"},
    # any module has parameters to count, a device and parameters to optimise
    "models.count_parameters:model": {"wrong module"},
    "training.model_device:model": {"wrong module"},
    "training.make_optimizer:model": {"wrong module"},
    "training.update:step": {"huge"},                  # a counter, only shown in a message
    # ids and labels of a vocabulary or a label set these functions do not know
    "models.shift_right:targets": {"id out of range"},
    "text.streams:ids": {"id out of range"},
    "text.stream_batches:ids": {"id out of range"},
    "sequence_shapes.CroppedBatches:y": {"id out of range", "negative id"},
    "memory_cells.linear_probe_accuracy:train_labels": {"id out of range"},  # the probe's classes
    "memory_cells.linear_probe_accuracy:test_labels": {"id out of range"},   # are its labels
    "memory_cells.plot_state_trajectories:labels": {"id out of range", "negative id"},
    "recurrent_neurons.plot_digit_rows:image": {"integer dtype"},  # pixels as ints plot fine
    "matrix_memories.mqar_batch:pairs": {"wrong type"},  # an int is one count for every sequence
}
# Arguments that some messages call by another name: "api:param" -> that name.
ALIASES = {
    "cells.one_layer_state:value": "h0",               # the name it is given
    "plots.as_numpy:value": "x",
    "attention_and_scans.time_scans:lengths": "each length",
    "matrix_memories.time_forms:lengths": "each length",
    "data.Vocabulary.encode:texts": "each text",
    "lstm_gates.LSTMCell.forward:state": "h",          # state is (h, c)
    "training.train_classifier:train_loader": "batches",  # fit's name for it
}


def all_cases() -> list[tuple[str, str | None, str, Callable]]:
    """Every (api, param, kind, make_bad) of the battery, from the valid calls in SPECS."""
    cases = []
    for api_name in sorted(SPECS):
        try:
            function, kwargs = SPECS[api_name]()
        except Exception:  # noqa: BLE001 - a stale spec: test_valid_call_works names it
            continue
        plt.close("all")
        parameters = _parameters(function)
        for param, value in kwargs.items():
            default = parameters[param].default
            if parameters[param].kind is inspect.Parameter.VAR_POSITIONAL:
                value, default = value[0], inspect.Parameter.empty
            others = _others(kwargs, param)
            for i, (kind, _) in enumerate(battery(api_name, param, value, default, others)):
                # Made afresh from each call's own valid value (a loss keeps its graph).
                cases.append((api_name, param, kind, functools.partial(
                    _nth_bad, api_name, param, default, i)))
        cases += [(api_name, param, kind, None) for param, kind in _padding_cases(api_name, kwargs)]
    return cases


def _nth_bad(api: str, param: str, default: Any, i: int, valid: Any, kwargs: dict) -> Any:
    return battery(api, param, valid, default, _others(kwargs, param))[i][1]


# ------------------------------------------------------------------ tests


def test_every_public_callable_is_driven_or_excused():
    api = public_api()
    missing = [name for name in api if name not in SPECS and name not in EXCUSED]
    assert not missing, ("give each a valid call in SPECS (see the module's docstring), or a "
                         f"reason in EXCUSED: {missing}")
    stale = [name for name in list(SPECS) + list(EXCUSED) if name not in api]
    assert not stale, f"no longer public: {stale}"
    assert all(reason.strip() for reason in EXCUSED.values())


@pytest.mark.parametrize("api_name", sorted(SPECS))
def test_valid_call_works(api_name):
    function, kwargs = SPECS[api_name]()
    with _quietly():
        result = _call(function, kwargs)
    assert _finite(result), f"{api_name} returned NaN or inf from its valid call"


def census() -> tuple[Counter, dict[str, list[str]]]:
    """Run the whole battery: outcome counts, and each non-clear case by outcome."""
    counts: Counter = Counter()
    cases: dict[str, list[str]] = {}
    for api_name, param, kind, make_bad in all_cases():
        outcome, detail = run_case(api_name, param, kind, make_bad)
        counts[outcome] += 1
        cases.setdefault(outcome, []).append(f"{api_name}:{param}:{kind} -> {detail}")
    return counts, cases


def test_census():
    counts, cases = census()
    total = sum(counts.values())
    print(f"\n{total} bad calls on {len(SPECS)} public callables ({len(EXCUSED)} excused): "
          + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in counts.most_common()))
    faults = [line for outcome in ("vague", "obscure", "garbage")
              for line in cases.get(outcome, [])]
    for line in faults:
        print("  " + line)
    assert not faults, "vague errors, obscure crashes or silent garbage:\n" + "\n".join(faults)


# ------------------------------------------------------------------ property-based


def _constant(kind: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return values.map(lambda bad: (kind, lambda _valid, _kwargs, bad=bad: bad))


def bad_values(value: Any, default: Any) -> st.SearchStrategy:
    """(kind, make_bad) pairs: make_bad(valid value, valid kwargs) -> a bad value of that kind."""
    options = [_constant("wrong type", st.builds(object))]
    if default is not None:
        options.append(_constant("None", st.none()))
    text_values = st.text(max_size=3)
    if isinstance(value, bool):
        options.append(_constant("wrong type", text_values))
    elif isinstance(value, numbers.Integral):
        options += [_constant("negative", st.integers(-10**6, -1)),
                    _constant("huge", st.integers(2**40, 2**70)),
                    _constant("wrong type", text_values),
                    _constant("float for int", st.floats(-100, 100).filter(
                        lambda f: not f.is_integer()))]
    elif isinstance(value, float):
        options += [_constant("nan", st.just(NAN)), _constant("inf", st.just(INF)),
                    _constant("-inf", st.just(-INF)), _constant("wrong type", text_values),
                    _constant("1e300", st.floats(1e39, 1e308))]
    elif isinstance(value, str):
        options.append(_constant("wrong type", st.integers() | st.floats()))
    elif isinstance(value, torch.Tensor):
        d = value.dim()
        options.append(st.integers(0, d).map(
            lambda i: ("extra dim", lambda v, _k, i=i: v.unsqueeze(i))))
        if d:
            options.append(st.integers(0, d - 1).map(
                lambda i: ("fewer dims",
                           lambda v, _k, i=i: v.select(i, 0) if v.shape[i] else v.sum(i))))
            options.append(st.integers(0, d - 1).map(
                lambda i: ("empty", lambda v, _k, i=i: v.narrow(i, 0, 0))))
        if value.is_floating_point():
            options.append(st.sampled_from([torch.int64, torch.int32]).map(
                lambda t: ("integer dtype", lambda v, _k, t=t: v.round().to(t))))
            if value.numel():
                options.append(st.tuples(st.sampled_from([NAN, INF, -INF]),
                                         st.integers(0, value.numel() - 1)).map(
                    lambda p: ("nan tensor" if math.isnan(p[0]) else "inf tensor",
                               lambda v, _k, p=p: v.detach().clone().flatten().index_fill(
                                   0, torch.tensor(p[1]), p[0]).view_as(v))))
        elif value.dtype != torch.bool:
            options.append(st.sampled_from([torch.float32, torch.float64]).map(
                lambda t: ("float dtype", lambda v, _k, t=t: v.to(t))))
            if value.numel():
                options.append(st.integers(10**3, 10**9).map(
                    lambda n: ("id out of range", lambda v, _k, n=n: _poke(v, int(v.max()) + n))))
    elif isinstance(value, nn.Module):
        options.append(st.sampled_from([lambda: nn.Linear(3, 3), lambda: nn.Conv1d(3, 3, 1)]).map(
            lambda make: ("wrong module", lambda _v, _k, make=make: make())))
    elif isinstance(value, (list, tuple, dict)):
        options.append(_constant("empty", st.just(type(value)())))
    return st.one_of(options)


def _args(spec: Callable) -> dict:
    try:
        return spec()[1]
    except Exception:  # noqa: BLE001 - a stale spec: test_valid_call_works names it
        return {}


@st.composite
def bad_calls(draw):
    api_name = draw(st.sampled_from(sorted(name for name, spec in SPECS.items() if _args(spec))))
    function, kwargs = SPECS[api_name]()
    plt.close("all")
    param = draw(st.sampled_from(sorted(kwargs)))
    p = _parameters(function)[param]
    value, default = kwargs[param], p.default
    if p.kind is p.VAR_POSITIONAL:
        value, default = value[0], inspect.Parameter.empty
    kind, make_bad = draw(bad_values(value, default))
    return api_name, param, kind, make_bad


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(bad_calls())
def test_any_bad_argument_fails_clearly_or_is_handled(call):
    api_name, param, kind, make_bad = call
    outcome, detail = run_case(api_name, param, kind, make_bad)
    assert outcome in ("clear", "accepted"), f"{outcome}: {api_name}:{param}:{kind} -> {detail}"
