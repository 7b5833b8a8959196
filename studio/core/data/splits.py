"""Assigning every line or row of a corpus to the train, valid or test split.

- ``tail``: the last share of each plain-text file (by line) is held out. Neighbouring lines of a
  text are strongly related, so a held-out tail measures generalisation honestly.
- ``shuffle``: whole documents (rows of a CSV/JSONL, or files of a folder) are shuffled with a seed
  and the shares cut off the front. Deterministic for a given seed.
- ``auto``: shuffle when there are at least 20 documents, else tail.

Assignment is a pure function of the record's position, so it streams: no corpus is ever loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from studio.core.data.corpus import Corpus, Record

SplitName = Literal["train", "valid", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "valid", "test")
_CODES: tuple[SplitName, ...] = ("train", "valid", "test")
SHUFFLE_MIN_DOCUMENTS = 20


@dataclass
class Splitter:
    corpus: Corpus
    valid_fraction: float
    test_fraction: float
    mode: Literal["auto", "tail", "shuffle"] = "auto"
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.mode == "auto":
            self.mode = "shuffle" if self.corpus.num_documents >= SHUFFLE_MIN_DOCUMENTS else "tail"
        self._assignment: np.ndarray | None = None
        if self.mode == "shuffle":
            n = self.corpus.num_documents
            n_valid = _share(n, self.valid_fraction)
            n_test = _share(n, self.test_fraction)
            order = np.random.default_rng(self.seed).permutation(n)
            codes = np.zeros(n, dtype=np.uint8)
            codes[order[:n_valid]] = 1
            codes[order[n_valid : n_valid + n_test]] = 2
            self._assignment = codes
        else:
            self._line_cuts: dict[object, tuple[float, float]] = {}
            for f in self.corpus.files:
                size = f.lines if f.format == "text" else f.units
                train_end = size * (1.0 - self.valid_fraction - self.test_fraction)
                valid_end = size * (1.0 - self.test_fraction)
                self._line_cuts[f.path] = (train_end, valid_end)
            self._row_offsets = {}
            offset = 0
            for f in self.corpus.files:
                if f.format != "text":
                    self._row_offsets[f.path] = offset
                offset += 1 if f.format == "text" else f.units

    def split_of(self, record: Record) -> SplitName:
        if self._assignment is not None:
            return _CODES[int(self._assignment[record.doc])]
        train_end, valid_end = self._line_cuts[record.path]
        position = record.line if record.path not in self._row_offsets else record.doc - self._row_offsets[record.path] + 1
        if position <= train_end:
            return "train"
        if position <= valid_end:
            return "valid"
        return "test"


def _share(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, round(n * fraction))
