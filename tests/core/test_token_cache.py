"""The token cache is keyed by what the tokens depend on: the corpus bytes, the split settings and
the tokenizer settings. Change any of them and the corpus is encoded again; change none (even if
the file was touched or copied) and the cached tokens are used as they are."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.data.corpus import split_lines
from studio.core.data.prepare import PreparedCorpus, prepare_corpus
from studio.core.errors import DataError

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


# ---- the block path builds the same cache as line-by-line records -----------------------------

# Unknown characters (the vocabulary is capped below), "\r\n" and a lone "\r", blank and
# whitespace-only lines (U+3000 and U+001C are whitespace to str.strip), Chinese, an emoji,
# capital sigmas that lowercase by what follows them, a U+FEFF inside the text, a line far longer
# than a read and one longer than a record (PIECE_CHARS, below), short lines for the split cuts to
# fall among (inside blocks of several lines), and no newline at the end.
SAMPLE = (
    "\ufeffFirst line of the file.\r\n"
    "ΟΔΟΣ ΑΣ. ΣΑΣ\n"
    "\n"
    "   \t\n"
    "\u3000\x1c\n"
    "中文的句子，还有标点。😀 And English after it.\n"
    "a lone \r carriage return\n"
    "a zero-width \ufeff no-break space\n"
    + "a long line of words, " * 40 + "\n"
    + "长" * 700 + "\n"
    + "".join(f"short line {i}: {'ΣΑΣ' if i % 3 else '中文'} {'x' * (i % 7)}\n" for i in range(40))  # where the cuts fall
    + "the end without a newline"
)


def build_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, paths: list[Path], tok: TokenizerConfig,
               **data: object) -> tuple[PreparedCorpus, PreparedCorpus]:
    """The cache built record by record (each line its own record, as Studio always did) and the
    one built from blocks of lines, in two empty cache folders."""
    from studio.core.data import prepare as prepare_module

    built = []
    for blocks in (False, True):
        monkeypatch.setattr(prepare_module, "READ_IN_BLOCKS", blocks)
        config = DataConfig(paths=[str(p) for p in paths], **data)  # type: ignore[arg-type]
        built.append(prepare_corpus(config, tok, cache_root=tmp_path / f"cache-{blocks}"))
    return built[0], built[1]


def assert_same_files(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert "train.bin" in {n.name for n in names}
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize(
    ("tok", "read_block"),
    [
        (TokenizerConfig(kind="char", vocab_size=40), 64),  # reads end inside characters and lines
        (TokenizerConfig(kind="char", vocab_size=40, lowercase=True), 7),
        (TokenizerConfig(kind="char"), 1 << 20),
        (TokenizerConfig(kind="bpe", vocab_size=320), 64),
    ],
    ids=["char", "char-lowercase", "char-one-read", "bpe"],
)
def test_blocks_build_byte_for_byte_the_cache_that_lines_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tok: TokenizerConfig, read_block: int
) -> None:
    from studio.core.data import corpus as corpus_module
    from studio.core.data.special_tokens import EOS_ID, UNK_ID

    monkeypatch.setattr(corpus_module, "READ_BLOCK", read_block)
    monkeypatch.setattr(corpus_module, "PIECE_CHARS", 600)  # the 700-character line is a long line (in pieces)
    monkeypatch.setattr(corpus_module, "CUT_WINDOW", 100)
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_bytes(SAMPLE.encode("utf-8"))
    (folder / "b.txt").write_bytes(SAMPLE[::-1].replace("\ufeff", "").encode("utf-8"))  # a second document
    lines, blocks = build_both(monkeypatch, tmp_path, [folder], tok, valid_fraction=0.2, test_fraction=0.1, split_mode="tail")
    assert not lines.cache_hit and not blocks.cache_hit
    assert_same_files(lines.directory, blocks.directory)
    st = blocks.stats.splits
    assert st["valid"].tokens and st["test"].tokens and st["train"].records > 10
    if tok.kind == "char":
        # ... and what encoding the text one character at a time gives (one file, no split).
        lines, blocks = build_both(monkeypatch, tmp_path / "whole", [folder / "a.txt"], tok, valid_fraction=0.0)
        assert_same_files(lines.directory, blocks.directory)
        text = SAMPLE.removeprefix("\ufeff").replace("\r\n", "\n")
        text = "".join(line.lower() for line in split_lines(text)) if tok.lowercase else text
        by_char = [i for ch in text for i in blocks.tokenizer.encode(ch)]
        assert blocks.tokens("train").tolist() == by_char + [EOS_ID]
        assert (UNK_ID in by_char) == (tok.vocab_size < 100)  # the capped vocabulary leaves characters out


def test_blocks_equal_lines_on_random_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random texts over an alphabet of the awkward cases, random read sizes and split settings."""
    import random

    from studio.core.data import corpus as corpus_module

    alphabet = ["a", "b", "Σ", "ς", " ", "\t", "\n", "\n", "\r\n", "\r", "中", "é", "\u3000", ".", "😀", "\ufeff", "word " * 30]
    rng = random.Random(7)
    for case in range(25):
        monkeypatch.setattr(corpus_module, "READ_BLOCK", rng.choice([1, 3, 16, 1 << 20]))
        monkeypatch.setattr(corpus_module, "PIECE_CHARS", rng.choice([40, 1 << 20]))
        monkeypatch.setattr(corpus_module, "CUT_WINDOW", 10)
        path = tmp_path / f"t{case}.txt"
        path.write_bytes("".join(rng.choice(alphabet) for _ in range(rng.randint(20, 300))).encode("utf-8"))
        tok = TokenizerConfig(kind="char", vocab_size=rng.choice([12, 1000]), lowercase=rng.random() < 0.5)
        settings = {"valid_fraction": rng.choice([0.1, 0.3]), "test_fraction": rng.choice([0.0, 0.1]), "split_mode": "tail"}
        try:
            lines, blocks = build_both(monkeypatch, tmp_path / f"c{case}", [path], tok, **settings)
        except DataError as e:  # too little text for a share: both paths must say so alike
            assert "split is empty" in str(e)
            continue
        assert_same_files(lines.directory, blocks.directory)


@pytest.mark.parametrize("lowercase", [False, True])
def test_blocks_of_a_large_file_count_characters_as_lines_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lowercase: bool) -> None:
    """Reads of a MiB: the character counts of a whole block (numpy, ASCII or not) decide the capped
    vocabulary exactly as counting line by line does, and a file of ASCII only as well."""
    import random

    rng = random.Random(3)
    rare = "".join(chr(c) for c in range(0x4E00, 0x4E40))  # each a few times: the cap falls among them
    lines = [" ".join(rng.choice(["the", "cat", "Σ", "ΑΣ", "x1", rng.choice(rare)]) for _ in range(rng.randint(1, 12))) for _ in range(4000)]
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ascii_only = tmp_path / "ascii.txt"
    punctuation = "!#$%&()*+-/:;<=>?@[]^_{|}~0123456789"
    ascii_only.write_text("\n".join("".join(c if c.isascii() else rng.choice(punctuation) for c in line) for line in lines),
                          encoding="utf-8")
    for path in (mixed, ascii_only):
        tok = TokenizerConfig(kind="char", vocab_size=30, lowercase=lowercase)
        lines_built, blocks_built = build_both(monkeypatch, tmp_path / path.stem, [path], tok, split_mode="tail")
        assert_same_files(lines_built.directory, blocks_built.directory)
        assert blocks_built.stats.splits["train"].unknown > 0  # the cap mattered
