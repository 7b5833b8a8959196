"""Batches of token windows drawn from a memory-mapped token array.

Training draws windows at random offsets from a seeded ``torch.Generator`` whose state goes into
every checkpoint, so a resumed run sees exactly the batches the uninterrupted run would have.
Evaluation uses a fixed set of evenly spaced windows, so successive validation losses compare.
"""

from __future__ import annotations

import numpy as np
import torch

from studio.core.errors import DataError


class WindowSampler:
    def __init__(self, tokens: np.ndarray, window: int, batch_size: int, seed: int):
        if len(tokens) < window + 1:
            raise DataError(
                f"the training split has {len(tokens):,} tokens, fewer than one window of {window} "
                "(model.context_length + 1); use more text or a shorter context"
            )
        self.tokens = tokens
        self.window = window
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> torch.Tensor:
        starts = torch.randint(len(self.tokens) - self.window + 1, (self.batch_size,), generator=self.generator)
        rows = [np.asarray(self.tokens[s : s + self.window], dtype=np.int64) for s in starts.tolist()]
        return torch.from_numpy(np.stack(rows))


def eval_windows(tokens: np.ndarray, window: int, count: int) -> torch.Tensor:
    """``count`` windows spread evenly over the split (overlapping if the split is short)."""
    if len(tokens) < window + 1:
        raise DataError(
            f"the validation split has {len(tokens):,} tokens, fewer than one window of {window}; "
            "raise data.valid_fraction, give validation files, or shorten model.context_length"
        )
    starts = np.linspace(0, len(tokens) - window, num=count).astype(np.int64)
    return torch.from_numpy(np.stack([np.asarray(tokens[s : s + window], dtype=np.int64) for s in starts]))


def sequential_windows(tokens: np.ndarray, window: int) -> torch.Tensor:
    """Non-overlapping windows covering the whole split (for a full evaluation)."""
    step = window - 1  # consecutive windows share one token: every token is predicted once
    n = max(0, (len(tokens) - 1) // step)
    if n == 0:
        return torch.zeros((0, window), dtype=torch.long)
    return torch.from_numpy(np.stack([np.asarray(tokens[i * step : i * step + window], dtype=np.int64) for i in range(n)]))
