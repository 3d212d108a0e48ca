"""One call to start a chapter: plot style, seeds, threads, exact float32, the device.

Every chapter's first code cell ends with ``device = book_utils.setup(seed=0)``,
which prints one line saying what the chapter runs on. :func:`show_source`
displays the code of a ``book_utils`` function in the chapter, from its one home
in the package.
"""

from __future__ import annotations

import inspect
import math
import numbers
import random
import textwrap

import numpy as np
import torch

from ._checks import check_int, check_type


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated.

    ``deterministic=True`` also asks PyTorch for deterministic kernels, which makes
    GPU runs repeatable at some cost in speed (CPU runs already are).
    """
    seed = check_int("seed", seed, minimum=0)  # a numpy integer becomes an int for torch
    check_type("deterministic", deterministic, bool)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when a GPU is present, else the CPU; ``prefer="cpu"`` forces the CPU."""
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_type("prefer", prefer, str)
    if prefer not in ("cpu", "cuda"):
        raise ValueError(f"prefer must be 'cpu', 'cuda' or None, got {prefer!r}")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise ValueError("prefer='cuda' was asked for, but no CUDA device is available")
    return torch.device(prefer)


def setup(
    seed: int = 0,
    *,
    threads: int = 1,
    device: str | None = None,
    deterministic: bool = False,
    verbose: bool = True,
) -> torch.device:
    """Prepare a chapter's session and return the device it should use.

    - the book's plot style (:func:`book_utils.plots.use_book_style`);
    - seeds for Python, NumPy and PyTorch (:func:`seed_everything`);
    - ``threads`` CPU threads: the book's models are small, and one thread is the
      fastest choice for them, far faster when the machine is busy;
    - TF32 off, so the chapters' exact checks against cuDNN hold on any GPU;
    - the device: a GPU when there is one, else the CPU (``device`` forces one).
    """
    from . import __version__, plots  # plots imports matplotlib; keep session light

    threads = check_int("threads", threads, minimum=1)
    check_type("verbose", verbose, bool)
    if device is not None and device not in ("cpu", "cuda"):
        raise (ValueError if isinstance(device, str) else TypeError)(
            f"device must be 'cpu', 'cuda' or None, got {device!r}")
    chosen = pick_device(device)
    seed_everything(seed, deterministic=deterministic)
    plots.use_book_style()
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if verbose:
        where = torch.cuda.get_device_name(chosen) if chosen.type == "cuda" else "CPU"
        print(f"book_utils {__version__}, torch {torch.__version__}, device {chosen} ({where}), "
              f"{threads} thread{'s' if threads > 1 else ''}, seed {seed}")
    return chosen


def show_source(obj) -> None:
    """Display the source of a ``book_utils`` function or class as a code block."""
    from IPython.display import Markdown, display

    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        raise TypeError(f"obj must be a function, method or class, got {type(obj).__name__}")
    lines = textwrap.dedent(inspect.getsource(obj)).rstrip().splitlines()
    # The argument checks run in a decorator; the reader sees the idea alone.
    source = "\n".join(line for line in lines if not line.lstrip().startswith("@checked_by("))
    display(Markdown(f"```python\n{source}\n```"))


def glue(name: str, value, display: bool = False) -> None:
    """Hand a computed value to the book's prose (MyST-NB's ``glue``).

    On the website, ``{glue:text}`name``` in the text shows ``value``; the prose
    can then never drift from the run it describes. Where MyST-NB is not installed
    (Colab), the value is simply kept in the notebook and nothing is glued.
    """
    check_type("name", name, str)
    check_type("display", display, bool)
    # A NumPy or 0-d torch number prints as "np.float64(...)", which a format spec cannot read.
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.dim() == 0):
        value = value.item()
    if (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not math.isfinite(value)):
        raise ValueError(f"value must be finite to appear in the text, got {value} for {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)
