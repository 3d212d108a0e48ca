"""Shared pytest setup, and the chapters that the notebook checks run over."""

from pathlib import Path

import pytest
import torch

# The models under test are tiny: one thread is fastest, and steady on a busy machine.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request) -> Path:
    """Each chapter notebook in turn."""
    return request.param
