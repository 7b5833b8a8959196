from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from studio.core.config import TokenizerConfig
from studio.core.data.special_tokens import EOS_ID, SPECIAL_TOKENS, UNK_ID
from studio.core.data.tokenizers import load_tokenizer, train_tokenizer
from studio.core.data.tokenizers.bpe import BPETokenizer
from studio.core.data.tokenizers.char import CharTokenizer

TRAIN = [
    "The quick brown fox jumps over the lazy dog.\n",
    "  Indented line\twith a tab, and trailing spaces   \n",
    "中文也要能往返：滚滚长江东逝水。\n",
    "Émile a mangé une crème brûlée. ¿Qué tal? Ünïcödé!\n",
]
ALPHABET = "".join(sorted(set("".join(TRAIN))))
CHAR = CharTokenizer.train(TRAIN, vocab_size=10_000)
BPE = BPETokenizer.train(TRAIN * 20, vocab_size=400)


def test_special_tokens_have_fixed_ids() -> None:
    word = train_tokenizer(TokenizerConfig(kind="word", vocab_size=200), TRAIN)
    for tok in (CHAR, BPE, word):
        # The same id for each special token in every kind: checkpoints and task heads rely on it.
        assert [tok.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS), tok.kind
        assert tok.vocab_size > len(SPECIAL_TOKENS)
        assert all(tok.id_to_token(i) not in SPECIAL_TOKENS for i in range(len(SPECIAL_TOKENS), tok.vocab_size)), tok.kind
    assert CHAR.id_to_token(EOS_ID) == "<eos>"
    assert [BPE.hf.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert BPE.hf.token_to_id("<eos>") == EOS_ID and BPE.hf.token_to_id("<pad>") == 0


# Examples and seed come from the Hypothesis profile (tests/conftest.py): derandomized in CI.
@given(st.text(alphabet=ALPHABET, max_size=200))
def test_char_round_trip(text: str) -> None:
    assert CHAR.decode(CHAR.encode(text)) == text


@given(st.text(max_size=200).filter(lambda s: "<" not in s))
def test_bpe_round_trip_any_unicode(text: str) -> None:
    # Byte-level BPE covers every byte, so even characters never seen in training round-trip.
    assert BPE.decode(BPE.encode(text)) == text


def test_char_unknown_characters_become_unk() -> None:
    ids = CHAR.encode("fox☃")
    assert ids[-1] == UNK_ID
    assert CHAR.decode(ids) == "fox\ufffd"


def test_char_vocabulary_limits() -> None:
    tok = CharTokenizer.train(["aaaabbbc"], vocab_size=len(SPECIAL_TOKENS) + 2)
    assert tok.chars == ["a", "b"]
    tok = CharTokenizer.train(["aaaabbbc"], vocab_size=100, min_frequency=3)
    assert tok.chars == ["a", "b"]


def test_word_tokenizer_uses_spacy_rules() -> None:
    tok = train_tokenizer(TokenizerConfig(kind="word", language="en", vocab_size=100), ["Don't stop.\nIt's fine!\n"] * 3)
    pieces = [p for p, _ in tok.pieces("Don't stop.")]
    assert pieces == ["Do", "n't", "stop", "."]  # spaCy's English exceptions, not str.split
    ids = tok.encode("Don't stop.\nunseenword\n")
    assert ids.count(EOS_ID) == 2 and UNK_ID in ids
    assert tok.decode(tok.encode("Don't stop.")) == "Do n't stop ."


def test_chinese_word_tokenizer_without_jieba_splits_characters() -> None:
    tok = train_tokenizer(TokenizerConfig(kind="word", language="zh", vocab_size=100), ["我们喜欢学习。"])
    assert tok.vocab_size > len(SPECIAL_TOKENS)
    assert UNK_ID not in tok.encode("我们喜欢学习。")


def test_save_and_reload_every_kind(tmp_path: Path) -> None:
    word = train_tokenizer(TokenizerConfig(kind="word", vocab_size=200), TRAIN)
    for tok in (CHAR, BPE, word):
        folder = tmp_path / tok.kind
        tok.save(folder)
        again = load_tokenizer(folder)
        assert type(again) is type(tok)
        assert again.fingerprint() == tok.fingerprint()
        sample = TRAIN[0] + TRAIN[2]
        assert again.encode(sample) == tok.encode(sample)


def test_pieces_show_surface_text() -> None:
    pieces = BPE.pieces("The quick fox")
    assert "".join(p for p, _ in pieces) == "The quick fox"
    assert all(isinstance(i, int) for _, i in pieces)
