"""Shared pytest setup."""

import torch

# The models under test are tiny: one thread is fastest, and steady on a busy machine.
torch.set_num_threads(1)
