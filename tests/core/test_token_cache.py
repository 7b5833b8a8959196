"""The token cache is keyed by what the tokens depend on: the corpus bytes, the split settings and
the tokenizer settings. Change any of them and the corpus is encoded again; change none (even if
the file was touched or copied) and the cached tokens are used as they are."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.data.prepare import PreparedCorpus, prepare_corpus

# Rows of a JSONL file are the documents a shuffled split moves whole.
LINES = [json.dumps({"text": f"row {i:03d} of the story, where the {'fox' if i % 2 else 'cat'} walks on."}) + "\n" for i in range(200)]


def prepare(path: Path, cache: Path, **data: object) -> PreparedCorpus:
    return prepare_corpus(DataConfig(paths=[str(path)], **data), TokenizerConfig(kind="char"), cache_root=cache)  # type: ignore[arg-type]


def text_of(prepared: PreparedCorpus, split: str) -> str:
    return prepared.tokenizer.decode(np.asarray(prepared.tokens(split)).tolist())


def test_changed_bytes_are_encoded_again_and_unchanged_bytes_are_not(tmp_path: Path) -> None:
    corpus = tmp_path / "stories.jsonl"
    corpus.write_text("".join(LINES), encoding="utf-8")
    cache = tmp_path / "cache"
    first = prepare(corpus, cache)
    assert not first.cache_hit
    again = prepare(corpus, cache)
    assert again.cache_hit and again.directory == first.directory

    def written() -> tuple[int, int]:  # which file holds the tokens, and when it was written
        st = (first.directory / "train.bin").stat()
        return st.st_ino, st.st_mtime_ns

    tokens_file = written()
    # Touched (a new modification time) but the same bytes: the file is read again to hash it, and
    # the content key finds the tokens already there; nothing is encoded again.
    stat = corpus.stat()
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = prepare(corpus, cache)
    assert touched.directory == first.directory and written() == tokens_file
    # The same bytes under another name: the same tokens.
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(corpus, copy)
    copied = prepare(copy, cache)
    assert copied.directory == first.directory and written() == tokens_file

    # One word changed, the file's size kept: encoded again, and the new tokens hold the edit.
    edited = "".join(LINES).replace("row 000 of the story, where the cat", "row 000 of the story, where the dog")
    assert len(edited) == len("".join(LINES))
    corpus.write_text(edited, encoding="utf-8")
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))  # as an editor's save would
    changed = prepare(corpus, cache)
    assert not changed.cache_hit and changed.directory != first.directory
    everything = "".join(text_of(changed, split) for split in ("train", "valid", "test"))
    assert "where the dog" in everything and "where the dog" not in "".join(text_of(first, s) for s in ("train", "valid", "test"))


def test_changed_split_settings_are_encoded_again(tmp_path: Path) -> None:
    corpus = tmp_path / "stories.jsonl"
    corpus.write_text("".join(LINES), encoding="utf-8")
    cache = tmp_path / "cache"
    base = prepare(corpus, cache, split_mode="shuffle", valid_fraction=0.1, split_seed=1)
    assert not base.cache_hit

    share = prepare(corpus, cache, split_mode="shuffle", valid_fraction=0.2, split_seed=1)
    assert not share.cache_hit and share.directory != base.directory
    assert len(share.tokens("valid")) > 1.5 * len(base.tokens("valid"))

    seed = prepare(corpus, cache, split_mode="shuffle", valid_fraction=0.1, split_seed=2)
    assert not seed.cache_hit and seed.directory != base.directory
    assert text_of(seed, "valid") != text_of(base, "valid")  # other rows held out

    mode = prepare(corpus, cache, split_mode="tail", valid_fraction=0.1, split_seed=1)
    assert not mode.cache_hit and mode.directory != base.directory

    test_share = prepare(corpus, cache, split_mode="shuffle", valid_fraction=0.1, test_fraction=0.1, split_seed=1)
    assert not test_share.cache_hit and len(test_share.tokens("test")) > 0 == len(base.tokens("test"))

    # Back to the first settings: their tokens are still cached.
    back = prepare(corpus, cache, split_mode="shuffle", valid_fraction=0.1, split_seed=1)
    assert back.cache_hit and back.directory == base.directory
    assert text_of(back, "valid") == text_of(base, "valid")


def test_changed_tokenizer_settings_are_encoded_again(tmp_path: Path) -> None:
    corpus = tmp_path / "stories.jsonl"
    corpus.write_text("".join(LINES), encoding="utf-8")
    cache = tmp_path / "cache"
    data = DataConfig(paths=[str(corpus)])
    full = prepare_corpus(data, TokenizerConfig(kind="char"), cache_root=cache)
    small = prepare_corpus(data, TokenizerConfig(kind="char", vocab_size=12), cache_root=cache)
    assert not small.cache_hit and small.directory != full.directory
    assert small.tokenizer.vocab_size == 12 < full.tokenizer.vocab_size
    assert prepare_corpus(data, TokenizerConfig(kind="char"), cache_root=cache).cache_hit
