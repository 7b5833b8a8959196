"""Character-level tokenizer: one id per Unicode character. Exact round trip for known characters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from studio.core.data.special_tokens import NUM_SPECIAL, SPECIAL_TOKENS, UNK_ID
from studio.core.data.tokenizers.base import Tokenizer, keep_most_frequent


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

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 1, lowercase: bool = False) -> CharTokenizer:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text.lower() if lowercase else text)
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
