"""Tokenizers: character, word (spaCy) and BPE (Hugging Face ``tokenizers``), trained and reloaded alike."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from studio.core.config import TokenizerConfig
from studio.core.data.tokenizers.base import Tokenizer, read_manifest
from studio.core.data.tokenizers.bpe import BPETokenizer
from studio.core.data.tokenizers.char import CharTokenizer
from studio.core.data.tokenizers.word import WordTokenizer
from studio.core.errors import CheckpointError
from studio.core.i18n import _


def train_tokenizer(config: TokenizerConfig, texts: Iterable[str], length: int | None = None) -> Tokenizer:
    """Learn a vocabulary from ``texts`` (the training split only, so validation stays unseen)."""
    if config.kind == "char":
        return CharTokenizer.train(texts, config.vocab_size, config.min_frequency, config.lowercase)
    if config.kind == "word":
        return WordTokenizer.train(texts, config.vocab_size, config.min_frequency, config.language, config.lowercase)
    if config.kind == "bpe":
        return BPETokenizer.train(texts, config.vocab_size, max(config.min_frequency, 2), config.lowercase, length)
    raise ValueError(config.kind)


def load_tokenizer(directory: Path) -> Tokenizer:
    manifest = read_manifest(directory)
    kind = manifest["kind"]
    if kind == "char":
        return CharTokenizer.from_manifest(manifest)
    if kind == "word":
        return WordTokenizer.from_manifest(manifest)
    if kind == "bpe":
        return BPETokenizer.from_manifest(manifest, Path(directory))
    raise CheckpointError(_("{folder}: unknown tokenizer kind {kind}").format(folder=directory, kind=repr(kind)))


__all__ = ["Tokenizer", "load_tokenizer", "train_tokenizer"]
