"""Byte-level BPE learned from the corpus with Hugging Face ``tokenizers``.

Byte-level pre-tokenization means every string encodes (no <unk>) and decodes back exactly,
whitespace and Chinese included.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

# On two busy cores one rayon thread encoded faster than two (measured while training ran on the
# other core); one fewer than the cores in general. A user's own RAYON_NUM_THREADS is respected.
os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))

from tokenizers import Tokenizer as HFTokenizer  # noqa: E402
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

from studio.core.data.special_tokens import SPECIAL_TOKENS  # noqa: E402
from studio.core.data.tokenizers.base import Tokenizer  # noqa: E402
from studio.core.errors import CheckpointError  # noqa: E402
from studio.core.i18n import _  # noqa: E402

HF_FILE = "tokenizer.json"


class BPETokenizer(Tokenizer):
    kind: ClassVar[str] = "bpe"

    def __init__(self, hf: HFTokenizer, lowercase: bool = False):
        super().__init__(lowercase)
        self.hf = hf
        # Text that happens to spell "<eos>" or "<pad>" is text: without this, Hugging Face
        # matches the special tokens inside the corpus and a literal "<eos>" ends a document.
        self.hf.encode_special_tokens = True

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2, lowercase: bool = False, length: int | None = None
    ) -> BPETokenizer:
        hf = HFTokenizer(models.BPE())
        if lowercase:
            hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(_batched(texts), trainer, length=length)
        return cls(hf, lowercase)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def id_to_token(self, token_id: int) -> str:
        return self.decode([token_id], skip_special=False)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.hf.encode(text, add_special_tokens=False)
        return list(enc.ids), [tuple(o) for o in enc.offsets]  # type: ignore[misc]

    def pieces(self, text: str) -> list[tuple[str, int]]:
        enc = self.hf.encode(text, add_special_tokens=False)
        return [(text[a:b], i) for i, (a, b) in zip(enc.ids, enc.offsets, strict=True)]

    def _state(self) -> dict[str, Any]:
        return {"hf_file": HF_FILE, "hf_sha": _sha(self.hf.to_str())}

    def _save_extra(self, directory: Path) -> None:
        self.hf.save(str(directory / HF_FILE))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], directory: Path) -> BPETokenizer:
        path = Path(directory) / manifest.get("hf_file", HF_FILE)
        try:
            hf = HFTokenizer.from_file(str(path))
        except Exception as e:  # the library raises plain Exception for malformed files
            raise CheckpointError(_("{path} is not a readable tokenizer file: {reason}").format(path=path, reason=e)) from None
        return cls(hf, bool(manifest.get("lowercase", False)))


def _batched(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for t in texts:
        batch.append(t)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
