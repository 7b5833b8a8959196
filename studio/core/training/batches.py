"""Batches of token windows drawn from a memory-mapped token array.

Training draws windows at random offsets from a seeded ``torch.Generator`` whose state goes into
every checkpoint, so a resumed run sees exactly the batches the uninterrupted run would have.
Evaluation uses a fixed set of evenly spaced windows, so successive validation losses compare.

Evaluation windows are :class:`Windows`: a start rule and a count, materialised one batch at a
time by :meth:`Windows.batches`, so ``train.eval_batches = 100000000`` or a full pass over a large
split costs one batch of memory, not every window at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from studio.core.errors import DataError
from studio.core.i18n import _


class WindowSampler:
    def __init__(self, tokens: np.ndarray, window: int, batch_size: int, seed: int):
        if len(tokens) < window + 1:
            # Translators: model.context_length is a setting's name, kept as is.
            raise DataError(
                _("the training split has {tokens:,} tokens, fewer than one window of {window} "
                  "(model.context_length + 1); use more text or a shorter context").format(tokens=len(tokens), window=window)
            )
        self.tokens = tokens
        self.window = window
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> torch.Tensor:
        starts = torch.randint(len(self.tokens) - self.window + 1, (self.batch_size,), generator=self.generator)
        # One fancy index reads every window from the memmap at once: no Python loop of slices.
        index = starts.numpy()[:, None] + np.arange(self.window)
        return torch.from_numpy(np.asarray(self.tokens[index], dtype=np.int64))


StartsFn = Callable[[int, int], np.ndarray]  # (first, stop) -> start positions of windows first..stop-1


class Windows:
    """``count`` windows of ``window`` tokens, the i-th starting at ``starts(i, i + 1)[0]``.

    Nothing but the token array (usually a memmap) is held; windows are read when a batch is asked for.
    """

    def __init__(self, tokens: np.ndarray, window: int, count: int, starts: StartsFn):
        self.tokens = tokens
        self.window = window
        self.count = count
        self._starts = starts

    def __len__(self) -> int:
        return self.count

    def starts(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.count if stop is None else min(stop, self.count)
        return self._starts(first, stop) if stop > first else np.zeros(0, dtype=np.int64)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """The windows in order, ``batch_size`` at a time, as (batch, window) int64 tensors."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for first in range(0, self.count, batch_size):
            rows = [np.asarray(self.tokens[s : s + self.window], dtype=np.int64) for s in self.starts(first, first + batch_size)]
            yield torch.from_numpy(np.stack(rows))


def eval_windows(tokens: np.ndarray, window: int, count: int) -> Windows:
    """``count`` windows spread evenly over the split (overlapping if the split is short).

    The starts are ``np.linspace(0, len(tokens) - window, count)`` truncated to integers, computed a
    batch at a time, and never more windows than there are distinct starts (a short split used to
    repeat windows, which only cost time).
    """
    if len(tokens) < window + 1:
        # Translators: data.valid_fraction and model.context_length are setting names, kept as is.
        raise DataError(
            _("the validation split has {tokens:,} tokens, fewer than one window of {window}; "
              "raise data.valid_fraction, give validation files, or shorten model.context_length").format(
                tokens=len(tokens), window=window
            )
        )
    stop = len(tokens) - window
    count = max(0, min(int(count), stop + 1))
    return Windows(tokens, window, count, lambda first, end: linspace_starts(stop, count, first, end))


def linspace_starts(stop: int, num: int, first: int, end: int) -> np.ndarray:
    """``np.linspace(0, stop, num).astype(np.int64)[first:end]`` without building the whole array.

    Follows numpy's own arithmetic (index times step, the last point set to ``stop``), so the values
    are bit-for-bit those of the full call.
    """
    y = np.arange(first, end, dtype=np.float64)
    if num > 1:
        step = np.float64(stop) / (num - 1)
        if step == 0:
            y = y / (num - 1) * np.float64(stop)
        else:
            y *= step
        if end == num and end > first:
            y[-1] = stop
    else:
        y *= np.float64(stop)
    return y.astype(np.int64)


def sequential_windows(tokens: np.ndarray, window: int) -> Windows:
    """Non-overlapping windows covering the whole split (for a full evaluation)."""
    step = window - 1  # consecutive windows share one token: every token is predicted once
    n = max(0, (len(tokens) - 1) // step) if step > 0 else 0
    return Windows(tokens, window, n, lambda first, end: np.arange(first, end, dtype=np.int64) * step)
