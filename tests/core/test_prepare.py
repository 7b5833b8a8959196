from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.control import Cancelled, RunControl
from studio.core.data.prepare import prepare_corpus
from studio.core.data.special_tokens import EOS_ID


def test_second_run_is_a_cache_hit(tiny_corpus: Path) -> None:
    data = DataConfig(paths=[str(tiny_corpus)])
    first = prepare_corpus(data, TokenizerConfig(kind="char"))
    second = prepare_corpus(data, TokenizerConfig(kind="char"))
    assert not first.cache_hit and second.cache_hit
    assert second.directory == first.directory
    assert np.array_equal(first.tokens("train"), second.tokens("train"))
    assert isinstance(second.tokens("train"), np.memmap)
    # A different tokenizer is a different cache entry.
    third = prepare_corpus(data, TokenizerConfig(kind="bpe", vocab_size=400))
    assert not third.cache_hit and third.directory != first.directory


def test_tokens_decode_back_to_the_corpus(tiny_corpus: Path) -> None:
    prepared = prepare_corpus(DataConfig(paths=[str(tiny_corpus)], valid_fraction=0.1), TokenizerConfig(kind="char"))
    text = tiny_corpus.read_text(encoding="utf-8")
    train = prepared.tokenizer.decode(prepared.tokens("train"))
    valid = prepared.tokenizer.decode(prepared.tokens("valid"))
    assert train + valid == text  # nothing lost, nothing duplicated; the held-out part is the tail
    assert prepared.tokens("train")[-1] == EOS_ID


def test_statistics(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = ["ab", "abc", "abcd", "zzzz"] * 10
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    prepared = prepare_corpus(
        DataConfig(paths=[str(path)], valid_fraction=0.1), TokenizerConfig(kind="char")
    )
    total = prepared.stats.total
    assert total.records == 40 and total.characters == sum(map(len, rows))
    assert total.records == 40 and prepared.stats.splits["valid"].records == 4  # rows shuffled 90/10
    assert total.length_counts[2] == 10 and total.length_counts[3] == 10 and total.length_counts[4] == 20
    edges, counts = total.histogram(bins=5)
    assert counts.sum() == 40 and len(edges) == 6
    assert prepared.stats.files[0]["encoding"] == "UTF-8"


def test_unknown_rate(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("aaaa\n" * 50 + "q\n")
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.0), TokenizerConfig(kind="char", min_frequency=2))
    st = prepared.stats.splits["train"]
    assert st.unknown == 1 and 0 < st.unknown_rate < 0.01


def test_given_validation_files(tmp_path: Path) -> None:
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("hello world\n" * 30)
    valid.write_text("hello world\n" * 3)
    prepared = prepare_corpus(DataConfig(paths=[str(train)], valid_paths=[str(valid)]), TokenizerConfig(kind="char"))
    assert prepared.tokenizer.decode(prepared.tokens("valid")) == "hello world\n" * 3
    assert prepared.stats.splits["valid"].records == 3
    assert prepared.stats.splits["train"].records == 30


def test_cancel_leaves_no_half_built_cache(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    control.request_stop()
    with pytest.raises(Cancelled):
        prepare_corpus(DataConfig(paths=[str(tiny_corpus)]), TokenizerConfig(kind="char"), control=control, cache_root=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]
