"""Helpers for the RNN book.

Core modules hold what two or more chapters use: :mod:`~book_utils.data`,
:mod:`~book_utils.text`, :mod:`~book_utils.cells`, :mod:`~book_utils.models`,
:mod:`~book_utils.training`, :mod:`~book_utils.plots` and :mod:`~book_utils.session`
(whose :func:`setup` starts every chapter). Each chapter has one module of its own,
named like its notebook: ``chapters/04_bptt.ipynb`` imports ``book_utils.bptt``.
"""

__version__ = "0.4.0"

from .session import glue, pick_device, seed_everything, setup, show_source  # noqa: E402

__all__ = ["glue", "pick_device", "seed_everything", "setup", "show_source", "__version__"]
