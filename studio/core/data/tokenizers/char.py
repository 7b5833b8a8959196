"""Character-level tokenizer: one id per Unicode character. Exact round trip for known characters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from studio.core.data.special_tokens import NUM_SPECIAL, SPECIAL_TOKENS, UNK_ID
from studio.core.data.tokenizers.base import Tokenizer, keep_most_frequent

CODE_POINTS = 0x110000
# A text at least this long is counted with numpy (a bincount of its code points) instead of a
# Counter: the same counts, twenty times faster on the blocks of lines the token cache reads.
BINCOUNT_CHARS = 4096


class CharTokenizer(Tokenizer):
    kind: ClassVar[str] = "char"

    def __init__(self, chars: list[str], lowercase: bool = False):
        super().__init__(lowercase)
        self.chars = list(chars)
        self._itos = list(SPECIAL_TOKENS) + self.chars
        self._stoi = {ch: i + NUM_SPECIAL for i, ch in enumerate(self.chars)}
        top = max((ord(c) for c in self.chars), default=0)
        # A dense code-point table makes encoding a single numpy gather instead of a Python loop.
        self._table = np.full(top + 2, UNK_ID, dtype=np.int64)
        for ch, i in self._stoi.items():
            self._table[ord(ch)] = i
        self._full_tables: dict[str, np.ndarray] = {}  # by dtype, made on first use (encode_lines)
        # When every ASCII character's id fits in a byte, bytes.translate encodes ASCII text.
        ascii_ids = np.full(256, UNK_ID, dtype=np.int64)  # translate wants all 256 bytes; text has the first 128
        for ch, i in self._stoi.items():
            if ord(ch) < 128:
                ascii_ids[ord(ch)] = i
        self._ascii_bytes = bytes(ascii_ids.astype(np.uint8)) if ascii_ids.max() < 256 else None

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 1, lowercase: bool = False) -> CharTokenizer:
        counts: Counter[str] = Counter()
        totals = np.zeros(0, dtype=np.int64)  # counts by code point, of the long texts
        for text in texts:
            text = text.lower() if lowercase else text
            if len(text) < BINCOUNT_CHARS:
                counts.update(text)
                continue
            found = _byte_counts(text.encode("ascii")) if text.isascii() else np.bincount(_code_points(text))
            if len(found) > len(totals):
                found[: len(totals)] += totals
                totals = found
            else:
                totals[: len(found)] += found
        for code in np.flatnonzero(totals):
            counts[chr(code)] += int(totals[code])
        chars = sorted(keep_most_frequent(counts, vocab_size, min_frequency))
        return cls(chars, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode_array(self, text: str) -> np.ndarray:
        if self.lowercase:
            text = text.lower()
        if not text:
            return np.zeros(0, dtype=np.int64)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        codes = np.minimum(codes, len(self._table) - 1)  # the last slot is always <unk>
        return self._table[codes]

    def encode_lines(self, text: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """The ids of ``text`` as ``dtype``, and how many of them each of its lines has: the same ids
        as ``encode`` (lowercasing whole lines equals lowercasing each, as each ends in "\n")."""
        if self.lowercase:
            text = text.lower()
        dtype = np.dtype(dtype)
        table = self._full_table(dtype)
        if text.isascii():  # (a flag of the string, no scan) one byte a character
            raw = text.encode("ascii")
            codes = np.frombuffer(raw, dtype=np.uint8)
            if self._ascii_bytes is not None:
                ids = np.frombuffer(raw.translate(self._ascii_bytes), dtype=np.uint8).astype(dtype)
            else:
                ids = np.take(table[:128], codes)
        else:
            codes = _code_points(text)
            ids = np.take(table, codes)
        ends = np.flatnonzero(codes == 10)
        lengths = np.diff(ends, prepend=-1)
        if len(codes) and (not len(ends) or ends[-1] != len(codes) - 1):  # a last line without "\n"
            lengths = np.append(lengths, len(codes) - 1 - (ends[-1] if len(ends) else -1))
        return ids, lengths

    def _full_table(self, dtype: np.dtype) -> np.ndarray:
        """Id by code point for every code point, in ``dtype`` (no clipping, no conversion after)."""
        tables = self._full_tables
        if dtype.str not in tables:
            table = np.full(CODE_POINTS, UNK_ID, dtype=dtype)
            for ch, i in self._stoi.items():
                table[ord(ch)] = i
            tables[dtype.str] = table
        return tables[dtype.str]

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i >= NUM_SPECIAL:
                out.append(self._itos[i] if i < len(self._itos) else "\ufffd")
            elif i == UNK_ID:
                out.append("\ufffd")
            elif not skip_special:
                out.append(SPECIAL_TOKENS[i])
        return "".join(out)

    def id_to_token(self, token_id: int) -> str:
        return self._itos[token_id] if 0 <= token_id < len(self._itos) else "\ufffd"

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids = self.encode(text)
        return ids, [(i, i + 1) for i in range(len(ids))]

    def pieces(self, text: str) -> list[tuple[str, int]]:
        return list(zip(text, self.encode(text), strict=True))

    def _state(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> CharTokenizer:
        return cls(list(manifest["chars"]), bool(manifest.get("lowercase", False)))


def _byte_counts(raw: bytes) -> np.ndarray:
    """How often each byte value occurs: a bincount of byte pairs (as uint16), folded, which is
    twice as fast as one of the bytes themselves."""
    even = len(raw) // 2 * 2
    pairs = np.bincount(np.frombuffer(raw, dtype="<u2", count=even // 2), minlength=1 << 16).reshape(256, 256)
    counts = pairs.sum(axis=0) + pairs.sum(axis=1)  # [high byte, low byte]: each byte once, as one or the other
    if even < len(raw):
        counts[raw[-1]] += 1
    return counts


def _code_points(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate (JSON allows them) is a code point like any other.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
