"""Properties checked on generated inputs (hypothesis): corpus reading and encoding detection,
the tokenizers' round trips, long-line pieces, evaluation windows, and config parsing.

Each test sets its own ``settings`` (a few seconds each); no profile is configured here.
"""

from __future__ import annotations

import codecs
import functools
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from studio.core.config import SECTION_ORDER, SECTIONS, DataConfig, RunConfig, TokenizerConfig
from studio.core.data.corpus import WHITESPACE, scan_corpus, split_text
from studio.core.data.prepare import prepare_corpus
from studio.core.data.tokenizers.char import CharTokenizer
from studio.core.errors import ConfigError, DataError
from studio.core.training.batches import linspace_starts
from tests.core.test_charsets import LEGACY

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Arbitrary text, with the characters that break readers and tokenizers mixed in on purpose.
AWKWARD = ["\n", "\r\n", "\r", "\x00", "\t", " ", "  ", "\u3000", "\u2028", "\x85", "\x1c", "😀", "👩‍👩‍👧", "中文", "日本語",
           "한국어", "e\u0301", "\u0301", "ﬁ", "İ", "ß", "\ufeff", "\U0010ffff", "'s", "don't", "U.S.", "—", "\\", '"', ","]
TEXT = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(AWKWARD)), max_size=40).map("".join)


def _read(path: Path, **options: Any) -> str:
    return "".join(r.text for r in scan_corpus([path], **options).records())


def _binary_by_rule(data: bytes) -> bool:
    """What charsets.py calls binary (NUL bytes without a UTF-16 pattern, or mostly control bytes)."""
    head = data[:8192]
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return b"\x00" in data or control > 0.1 * min(len(data), 8192)


# ---- corpus loading and encoding detection -------------------------------------------------------


@QUICK
@given(text=TEXT, codec=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom"]))
def test_text_in_a_unicode_encoding_reads_back_or_is_a_clear_error(text: str, codec: str) -> None:
    assume(not text.startswith("\ufeff"))  # one leading U+FEFF is taken for a byte-order mark, by design
    data = codecs.BOM_UTF16_BE + text.encode("utf-16-be") if codec == "utf-16-be-bom" else text.encode(codec)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_bytes(data)
        try:
            corpus = scan_corpus([path])
            got = "".join(r.text for r in corpus.records())
        except DataError as e:
            assert str(e).startswith(str(path))
            blank = not text.strip()
            assert blank or (codec == "utf-8" and _binary_by_rule(data)), str(e)
            return
    if codec == "utf-8" and b"\x00" in data and corpus.files[0].encoding.codec.startswith("utf-16"):
        return  # NUL bytes at alternating places: UTF-16 without a BOM is the right reading of these bytes
    assert got == text.replace("\r\n", "\n")


LATIN = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=200)


@QUICK
@given(text=LATIN, codec=st.sampled_from(["utf-16-le", "utf-16-be"]))
def test_utf16_without_a_bom_is_found_by_its_nul_bytes(text: str, codec: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_bytes(text.encode(codec))
        try:
            corpus = scan_corpus([path])
        except DataError as e:
            assert str(e).startswith(str(path)) and not text.strip(), str(e)
            return
        assert corpus.files[0].encoding.codec == codec
        assert "".join(r.text for r in corpus.records()) == text.replace("\r\n", "\n")


def _alphabet(codec: str) -> str:
    chars = {chr(c) for c in range(32, 127)} | set("\n\r\t")
    for _lang, c, text in LEGACY:
        if codecs.lookup(c).name == codecs.lookup(codec).name:
            chars |= set(text)
    if codec in ("cp1252", "cp1251", "koi8-r", "latin-1", "cp1253"):
        chars |= set(bytes(range(0x80, 0x100)).decode(codec, errors="ignore"))
    return "".join(sorted(c for c in chars if c != "\ufeff"))


LEGACY_CODECS = ["cp1252", "cp1251", "koi8-r", "latin-1", "cp1253", "gb18030", "big5", "shift_jis", "euc-jp", "euc-kr"]


@QUICK
@given(data=st.data(), codec=st.sampled_from(LEGACY_CODECS))
def test_text_in_a_declared_legacy_encoding_reads_back(data: st.DataObject, codec: str) -> None:
    text = data.draw(st.text(alphabet=_alphabet(codec), max_size=300))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_bytes(text.encode(codec))
        try:
            got = _read(path, encoding=codec)
        except DataError as e:
            assert str(e).startswith(str(path)) and not text.strip(), str(e)
            return
    assert got == text.replace("\r\n", "\n")


CHUNKS = [b'"', b",", b"\t", b"\n", b"\r\n", b"{", b"}", b"[", b'"text"', b":", b"\xc3", b"\xa9", b"\xe2\x80", b"\x00",
          b"\xff\xfe", b"\xef\xbb\xbf", b"text,id\n", b'{"text": "', b"\\", b"1e999", b"\x1b", b" "]
HOSTILE_BYTES = st.one_of(st.binary(max_size=600), st.lists(st.one_of(st.sampled_from(CHUNKS), st.binary(max_size=8)),
                                                            max_size=80).map(b"".join))


@SLOW
@given(data=HOSTILE_BYTES, fmt=st.sampled_from(["text", "csv", "tsv", "jsonl"]), skip=st.booleans())
def test_arbitrary_bytes_are_read_or_a_data_error_naming_the_file(data: bytes, fmt: str, skip: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x.{fmt}"
        path.write_bytes(data)
        try:
            corpus = scan_corpus([path], skip_bad_rows=skip)
            for _record in corpus.records():
                pass
        except DataError as e:
            assert str(e).startswith(str(path)), str(e)
            return
        try:
            prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.0, skip_bad_rows=skip), TokenizerConfig(kind="char"),
                           cache_root=Path(tmp) / "cache")
        except DataError:
            pass  # for example "the training split is empty"


# ---- long lines in pieces ----------------------------------------------------------------------


def _safe_cut(text: str, p: int) -> bool:
    """A cut before ``text[p]`` that leaves BPE tokens unchanged (see corpus.py)."""
    ws = set(WHITESPACE.replace("\u2000-\u200a", "".join(chr(c) for c in range(0x2000, 0x200B))))
    if text[p] in ws and p + 1 < len(text) and text[p + 1] not in ws:
        return True
    before, at = text[p - 1], text[p]
    return (before.isalnum()) and not (at.isalnum() or at == "_" or at in ws)


@functools.cache
def _bpe() -> Any:
    from studio.core.data.tokenizers.bpe import BPETokenizer

    corpus = [" ".join(AWKWARD) + " The quick brown fox jumps over the lazy dog, 12 times. " * 3] * 20
    return BPETokenizer.train(corpus, 600)


@QUICK
@given(text=TEXT, limit=st.integers(4, 40), window=st.integers(1, 40))
def test_pieces_join_to_the_text_and_keep_bpe_tokens(text: str, limit: int, window: int) -> None:
    pieces = list(split_text(text, limit, window))
    assert "".join(p for p, _, _ in pieces) == text
    assert all(len(p) <= limit for p, _, _ in pieces)
    assert pieces[0][1] and pieces[-1][2] and sum(first for _, first, _ in pieces) == 1
    cuts = list(np.cumsum([len(p) for p, _, _ in pieces])[:-1])
    if all(_safe_cut(text, int(c)) for c in cuts):
        bpe = _bpe()
        assert [i for p, _, _ in pieces for i in bpe.encode(p)] == bpe.encode(text)


@QUICK
@given(text=TEXT, valid=st.sampled_from([0.0, 0.05, 0.1, 0.3]), test=st.sampled_from([0.0, 0.1, 0.2]),
       piece=st.integers(3, 50))
def test_the_tail_split_keeps_every_character_once_and_in_order(text: str, valid: float, test: float, piece: int) -> None:
    from studio.core.data import corpus as corpus_module
    from studio.core.data.splits import Splitter

    assume(not text.startswith("\ufeff") and "\x00" not in text)  # encoding detection is tested above
    saved = corpus_module.PIECE_CHARS, corpus_module.CUT_WINDOW
    corpus_module.PIECE_CHARS, corpus_module.CUT_WINDOW = piece, piece
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.txt"
            path.write_text(text, encoding="utf-8", newline="")
            try:
                corpus = scan_corpus([path])
            except DataError:
                return
            routed = [(split, part) for record in corpus.records() for split, part in Splitter(corpus, valid, test, "tail").route(record)]
    finally:
        corpus_module.PIECE_CHARS, corpus_module.CUT_WINDOW = saved
    order = ["train", "valid", "test"]
    assert [order.index(split) for split, _ in routed] == sorted(order.index(split) for split, _ in routed)
    assert "".join(part.text for _, part in routed) == text.replace("\r\n", "\n")
    assert all(part.text for _, part in routed[1:])
    assert [part.offset for _, part in routed] == list(np.cumsum([0] + [len(p.text) for _, p in routed])[:-1])


# ---- tokenizers ----------------------------------------------------------------------------------


@QUICK
@given(text=TEXT, other=TEXT)
def test_char_tokenizer_round_trips_known_characters(text: str, other: str) -> None:
    tok = CharTokenizer.train([text], 1_000_000)
    assert tok.decode(tok.encode(text)) == text
    ids = tok.encode(other)  # unknown characters become <unk>, never an error
    assert len(ids) == len(other) and all(0 <= i < tok.vocab_size for i in ids)


@SLOW
@given(text=TEXT)
def test_bpe_round_trips_any_text(text: str) -> None:
    tok = _bpe()
    assert tok.decode(tok.encode(text)) == text
    ids, offsets = tok.encode_with_offsets(text)
    assert len(ids) == len(offsets)
    tok.pieces(text)


def test_bpe_text_that_spells_a_special_token_round_trips() -> None:
    tok = _bpe()
    assert tok.decode(tok.encode("a <eos> b <pad>")) == "a <eos> b <pad>"
    assert 3 not in tok.encode("a <eos> b")  # the text is text, not the end-of-sequence id


@functools.cache
def _nlp() -> Any:
    from studio.core.data.tokenizers.word import spacy_tokenizer

    return spacy_tokenizer("en")


@SLOW
@given(text=TEXT, other=TEXT)
def test_word_tokenizer_round_trips_as_words_joined_by_spaces(text: str, other: str) -> None:
    from studio.core.data.tokenizers.word import WordTokenizer

    tok = WordTokenizer.train([text], 1_000_000, 1, "en")
    expected = "\n".join(" ".join(t.text for t in _nlp()(line) if not t.is_space) for line in text.split("\n"))
    assert tok.decode(tok.encode(text)) == expected
    assert tok.encode_batch([text, other])[0] == tok.encode(text)
    tok.pieces(other)
    tok.encode_with_offsets(other)


def test_word_tokenizer_takes_a_piece_longer_than_spacy_max_length() -> None:
    """Pieces are up to 1 MiB; spaCy's nlp.max_length (1,000,000) applies to pipelines, not to the
    bare tokenizer that word.py uses."""
    from studio.core.data.tokenizers.word import WordTokenizer

    text = "word " * 220_000  # 1,100,000 characters
    tok = WordTokenizer.train([text], 100, 1, "en")
    assert len(tok.encode(text)) == 220_000


# ---- evaluation windows ----------------------------------------------------------------------------


@QUICK
@given(stop=st.integers(0, 10**9), num=st.integers(1, 3000), data=st.data())
def test_lazy_eval_starts_equal_numpy_linspace(stop: int, num: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, num))
    end = data.draw(st.integers(first, num))
    expected = np.linspace(0, stop, num=num).astype(np.int64)
    assert np.array_equal(linspace_starts(stop, num, first, end), expected[first:end])


# ---- config parsing -------------------------------------------------------------------------------

TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=12),
              st.sampled_from(["auto", "gpt", "lstm", "char", "bpe", "rot13", "utf-8", "", "tail", "lora"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
FIELD_NAMES = sorted({s.name for cls in SECTIONS.values() for s in cls.field_specs()} | {"arch", "d_model", "n_heads"})


def _section() -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
    return st.one_of(st.dictionaries(keys, TOML_VALUES, max_size=6), TOML_VALUES)


CONFIG_TABLES = st.dictionaries(
    st.one_of(st.sampled_from([*SECTION_ORDER, "format_version"]), st.text(max_size=8)),
    st.one_of(_section(), st.integers(0, 3)),
    max_size=6,
)


@SLOW
@given(table=CONFIG_TABLES)
def test_config_parsing_returns_a_config_or_a_config_error(table: dict[str, Any]) -> None:
    try:
        config = RunConfig.from_dict(table)
    except ConfigError as e:
        assert e.issues and all(isinstance(i.key, str) for i in e.issues)
        return
    assert isinstance(config, RunConfig)
    json.dumps(config.to_dict(), allow_nan=True)  # what was accepted can be written back
    assert not any(isinstance(v, float) and math.isnan(v) for v in config.to_dict()["train"].values())


def test_a_model_section_that_is_not_a_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model: expected a table"):
        RunConfig.from_dict({"model": "gpt"})
    with pytest.raises(ConfigError, match="format_version"):
        RunConfig.from_dict({"format_version": True})
