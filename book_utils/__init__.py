"""Helpers for the RNN book: data, from-scratch cells, models, training and plots.

Each module has one job; chapters import what they need, for example
``from book_utils import cells, data, training``.
"""

__version__ = "0.1.0"
