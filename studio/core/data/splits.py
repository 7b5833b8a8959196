"""Assigning every line or row of a corpus to the train, valid or test split.

- ``tail``: the last share of each plain-text file is held out, measured in characters (so a file
  that is one long line, with no newline at all, splits too). Neighbouring lines of a text are
  strongly related, so a held-out tail measures generalisation honestly. CSV/JSONL files are cut
  by row. A record (a line, or a piece of a long line, see ``corpus``) that straddles a cut:

  - if it is a short complete line (under ``SHORT_LINE`` characters, and not the whole file) it
    goes whole to the split before the cut, so ordinary multi-line files are still cut between
    lines. The exception: when the line holds the whole of the next split's share of its file,
    and is not the file's first line, it goes to that split instead, so the last line of a file of
    a few lines is still held out rather than leaving the share empty;
  - otherwise it is cut in two at the last whitespace before the cut (just before a whitespace
    character that is followed by a non-space, where BPE and word tokens start anyway), or at
    the cut itself when the record has no whitespace before it.

- ``shuffle``: whole documents (rows of a CSV/JSONL, or files of a folder) are shuffled with a seed
  and the shares cut off the front. Deterministic for a given seed.
- ``auto``: shuffle when there are at least 20 documents, else tail.

Assignment is a pure function of the record (its position, length and whether it is a whole
line), so it streams: no corpus is ever loaded, and the same corpus always splits the same way.
:meth:`Splitter.route` yields the parts of a record with their splits; :meth:`Splitter.why_empty`
explains a split that came out empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from studio.core.data.corpus import Corpus, Lines, Record, last_whitespace_cut
from studio.core.i18n import _, ngettext

SplitName = Literal["train", "valid", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "valid", "test")
_CODES: tuple[SplitName, ...] = ("train", "valid", "test")
SHUFFLE_MIN_DOCUMENTS = 20
SHORT_LINE = 2000  # a straddling line shorter than this moves whole instead of being cut


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
            # Per file: the positions where valid and test start (characters for plain text,
            # rows for CSV/JSONL) and the file's size in the same unit.
            self._cuts: dict[Path, tuple[int, int, int]] = {}
            for f in self.corpus.files:
                size = f.chars if f.format == "text" else f.units
                # floor keeps the row cuts of earlier versions: row n (1-based) trains if n <= size * share.
                train_end = math.floor(size * (1.0 - self.valid_fraction - self.test_fraction))
                valid_end = max(train_end, math.floor(size * (1.0 - self.test_fraction)))
                self._cuts[f.path] = (train_end, valid_end, size)
            self._row_offsets = {}
            offset = 0
            for f in self.corpus.files:
                if f.format != "text":
                    self._row_offsets[f.path] = offset
                offset += 1 if f.format == "text" else f.units

    def route(self, record: Record) -> Iterator[tuple[SplitName, Record]]:
        """The record, or its parts when it straddles a cut, each with the split it belongs to."""
        if self._assignment is not None:
            yield _CODES[int(self._assignment[record.doc])], record
            return
        train_end, valid_end, size = self._cuts[record.path]
        if record.path in self._row_offsets:
            row = record.doc - self._row_offsets[record.path]  # 0-based row of its file
            yield _CODES[_index_of(row, train_end, valid_end)], record
            return
        start, end = record.offset, record.offset + len(record.text)
        k = _index_of(start, train_end, valid_end)
        # Cuts strictly inside the record, each with the split that begins there.
        inside = [(c, j) for c, j in _boundaries(train_end, valid_end, size) if start < c < end]
        if not inside:
            yield _CODES[k], record
            return
        if isinstance(record, Lines):
            yield from self._route_lines(record, [c for c, _j in inside], train_end, valid_end)
            return
        if record.whole and len(record.text) < SHORT_LINE and not (start == 0 and end == size):
            ranges = dict(_ranges(train_end, valid_end, size))
            choice = k
            for _cut, j in inside:
                lo, hi = ranges[j]
                if start > 0 and lo < hi <= end:  # the line holds all of split j's share
                    choice = j
                    break
            yield _CODES[choice], record
            return
        text = record.text
        prev = 0
        current = k
        for c, j in inside:
            at = _cut_before(text, prev, c - start)
            if at > prev:
                yield _CODES[current], _part(record, prev, at)
                prev = at
            current = j
        yield _CODES[current], _part(record, prev, len(text))

    def _route_lines(self, block: Lines, cuts: list[int], train_end: int, valid_end: int) -> Iterator[tuple[SplitName, Record]]:
        """A block of whole lines with cuts inside, routed as its lines would be one by one: the
        lines before and after a cut stay together, and a line a cut falls inside is routed alone."""
        text, start = block.text, block.offset
        pos = 0  # of ``text``, routed so far
        for c in cuts:
            at = c - start
            if at < pos:  # inside the line routed just before
                continue
            line_start = text.rfind("\n", 0, at) + 1
            if line_start > pos:
                yield _CODES[_index_of(start + pos, train_end, valid_end)], _lines_part(block, pos, line_start)
                pos = line_start
            if line_start == at:  # the cut falls between two lines
                continue
            line_end = text.find("\n", at) + 1 or len(text)
            line = Record(text[line_start:line_end], block.path, block.line + text.count("\n", 0, line_start), block.doc,
                          start + line_start)
            yield from self.route(line)
            pos = line_end
        if pos < len(text):
            yield _CODES[_index_of(start + pos, train_end, valid_end)], _lines_part(block, pos, len(text))

    def split_of(self, record: Record) -> SplitName:
        """The split of a record that straddles no cut (of its first part if it does)."""
        return next(self.route(record))[0]

    def why_empty(self, split: SplitName) -> str:
        """Why ``split`` received no text, and what to set: for the error message."""
        files = self.corpus.files
        text_files = [f for f in files if f.format == "text"]
        if split == "train":
            share = _("{share:.0%} held out for validation and testing").format(share=self.valid_fraction + self.test_fraction)
        elif split == "valid":
            share = _("a {share:.0%} validation share").format(share=self.valid_fraction)
        else:
            share = _("a {share:.0%} test share").format(share=self.test_fraction)
        if self.mode == "shuffle":
            n = self.corpus.num_documents
            what = ngettext("the corpus holds {count:,} document (rows, or files of a folder)",
                            "the corpus holds {count:,} documents (rows, or files of a folder)", n).format(count=n)
        elif len(files) == 1:
            f = files[0]
            if f.format == "text":
                amount = _("{count:,} characters").format(count=f.chars)
            else:
                amount = ngettext("{count:,} row", "{count:,} rows", f.units).format(count=f.units)
            # Translators: {file} is a file's name, {amount} "N characters" or "N rows".
            what = _("{file} holds {amount}").format(file=f.path.name, amount=amount)
        elif text_files and len(text_files) == len(files):
            what = _("the {count} files hold {chars:,} characters in all").format(count=len(files), chars=sum(f.chars for f in files))
        else:
            what = _("the {count} files hold too little text").format(count=len(files))
        if split == "train":
            # Translators: data.valid_fraction and data.test_fraction are setting names, kept as is.
            fix = _("lower data.valid_fraction and data.test_fraction, or use more text")
        elif split == "valid":
            # Translators: {paths} and {key} are setting names (data.valid_paths, data.valid_fraction), kept as is.
            fix = _("use more text, give validation files in {paths}, or set {key} = 0").format(
                paths="data.valid_paths", key="data.valid_fraction"
            )
        else:
            # Translators: {paths} and {key} are setting names (data.test_paths, data.test_fraction), kept as is.
            fix = _("use more text, give test files in {paths}, or set {key} = 0").format(
                paths="data.test_paths", key="data.test_fraction"
            )
        if self.mode == "tail" and text_files and split != "train":
            detail = _(" (a short line is never cut between two splits, and this share falls inside one)")
        else:
            detail = ""
        # Translators: {what} says how much text there is, {share} what was asked of it, {detail} an
        # explanation in parentheses or nothing, {fix} what to change.
        return _("{what}, too few for {share}{detail}; {fix}").format(what=what, share=share, detail=detail, fix=fix)


def _index_of(position: int, train_end: int, valid_end: int) -> int:
    if position < train_end:
        return 0
    if position < valid_end:
        return 1
    return 2


def _ranges(train_end: int, valid_end: int, size: int) -> list[tuple[int, tuple[int, int]]]:
    return [(0, (0, train_end)), (1, (train_end, valid_end)), (2, (valid_end, size))]


def _boundaries(train_end: int, valid_end: int, size: int) -> list[tuple[int, int]]:
    """(position, split that begins there), skipping splits whose share is empty."""
    out: list[tuple[int, int]] = []
    for j, (lo, hi) in _ranges(train_end, valid_end, size)[1:]:
        if lo < hi:
            out.append((lo, j))
    return out


def _cut_before(text: str, lo: int, cut: int) -> int:
    """Index in [lo, cut] to cut ``text`` at: just before the last whitespace followed by text, or at
    ``cut`` itself when there is none (``lo``: nothing of this stretch stays before the cut)."""
    best = last_whitespace_cut(text, lo, cut)
    return best if best >= lo else cut


def _lines_part(block: Lines, a: int, b: int) -> Lines:
    return replace(block, text=block.text[a:b], offset=block.offset + a, line=block.line + block.text.count("\n", 0, a))


def _part(record: Record, a: int, b: int) -> Record:
    return replace(
        record,
        text=record.text[a:b],
        offset=record.offset + a,
        first=record.first and a == 0,
        last=record.last and b == len(record.text),
    )


def _share(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, round(n * fraction))
