"""The interface every tokenizer offers, and how tokenizers are saved beside a model."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from studio.core.data.special_tokens import NUM_SPECIAL, SPECIAL_TOKENS
from studio.core.errors import CheckpointError
from studio.core.i18n import N_, _

MANIFEST = "studio_tokenizer.json"
TOKENIZER_FORMAT_VERSION = 1


class Tokenizer(ABC):
    """Text <-> ids. Ids 0-6 are always the special tokens in ``special_tokens.SPECIAL_TOKENS``."""

    kind: ClassVar[str]

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    @abstractmethod
    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str: ...

    @abstractmethod
    def id_to_token(self, token_id: int) -> str: ...

    @abstractmethod
    def pieces(self, text: str) -> list[tuple[str, int]]:
        """(surface text, id) per token: what the Data page shows as chips."""

    @abstractmethod
    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and, for each, the (start, end) characters of ``text`` it covers (extractive QA)."""

    # ---- persistence ------------------------------------------------------------------------

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """JSON-safe contents, written to the manifest."""

    def _save_extra(self, directory: Path) -> None:  # noqa: B027 - an optional hook, not abstract
        """Files beyond the manifest (BPE writes its tokenizer.json)."""

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_extra(directory)
        manifest = {
            "format_version": TOKENIZER_FORMAT_VERSION,
            "kind": self.kind,
            "lowercase": self.lowercase,
            "special_tokens": list(SPECIAL_TOKENS),
            **self._state(),
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self._state(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def describe(self) -> str:
        # Translators: {kind} is the tokenizer's kind: "character", "word" or "BPE".
        kind = _(KIND_NAMES[self.kind]) if self.kind in KIND_NAMES else self.kind
        return _("{kind} tokenizer, {entries:,} entries").format(kind=kind, entries=self.vocab_size)


# The kinds as a sentence names them ("character tokenizer", 字符分词器), not as a setting writes them.
# Translators: the kinds of tokenizer, put before "tokenizer".
KIND_NAMES = {"char": N_("character"), "word": N_("word"), "bpe": N_("BPE")}


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        # Translators: {file} is a file's name (tokenizer.json).
        raise CheckpointError(_("{folder} holds no tokenizer ({file} is missing)").format(folder=directory, file=MANIFEST)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(_("{path} is damaged: {reason}").format(path=path, reason=e)) from None
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise CheckpointError(_("{path} is not a Studio tokenizer manifest").format(path=path))
    version = manifest.get("format_version", 1)
    if not isinstance(version, int) or version > TOKENIZER_FORMAT_VERSION:
        raise CheckpointError(_("{path} was written by a newer Studio (tokenizer format {version})").format(path=path, version=version))
    if manifest.get("special_tokens", list(SPECIAL_TOKENS)) != list(SPECIAL_TOKENS):
        raise CheckpointError(_("{path} uses different special tokens than this Studio").format(path=path))
    return manifest


def keep_most_frequent(counts: dict[str, int], vocab_size: int, min_frequency: int) -> list[str]:
    """Entries by descending count (ties by text), at least ``min_frequency``, up to the size limit."""
    ranked = sorted((item for item in counts.items() if item[1] >= min_frequency), key=lambda kv: (-kv[1], kv[0]))
    return [token for token, _ in ranked[: max(0, vocab_size - NUM_SPECIAL)]]
