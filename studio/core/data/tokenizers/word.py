"""Word-level tokenizer built on spaCy's rule-based tokenizer for one language.

``spacy.blank(lang)`` needs no model download. Each line becomes its words followed by <eos>
(the WikiText convention), and words outside the vocabulary become <unk>. Chinese splits into
characters unless ``jieba`` is installed, in which case spaCy segments words with it.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from studio.core.data.special_tokens import EOS_ID, NUM_SPECIAL, SPECIAL_TOKENS, UNK, UNK_ID
from studio.core.data.tokenizers.base import Tokenizer, keep_most_frequent
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.i18n import _

_NLP_CACHE: dict[str, Any] = {}


def spacy_tokenizer(language: str) -> Any:
    """spaCy's tokenizer for ``language``, loaded once per process (spaCy's import takes seconds)."""
    if language not in _NLP_CACHE:
        # Deferred: importing spaCy takes about 3.5 s (it pulls in thinc), and every training
        # process imports this module, most of them for char or BPE tokenizers that never need it.
        import spacy

        try:
            if language == "zh" and _has_jieba():
                nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
            else:
                nlp = spacy.blank(language)
        except (ImportError, KeyError, ValueError) as e:
            message = _("spaCy has no language {language} ({reason})").format(language=repr(language), reason=e)
            raise ConfigError(ConfigIssue("tokenizer.language", message)) from None
        _NLP_CACHE[language] = nlp.tokenizer
    return _NLP_CACHE[language]


def segmentation_note(language: str) -> str:
    """What a form should say when Chinese words cannot be segmented ('' when they can). Asks
    whether jieba is installed without importing it, so a form can call this as a person types."""
    if language == "zh" and importlib.util.find_spec("jieba") is None:
        return _("jieba is not installed, so Chinese \"words\" are single characters, the same as the character "
                 "tokenizer. Install it for word segmentation: pip install jieba")
    return ""


def _has_jieba() -> bool:
    try:  # optional: Chinese word segmentation, when installed
        import jieba  # noqa: F401
    except ImportError:
        return False
    return True


class WordTokenizer(Tokenizer):
    kind: ClassVar[str] = "word"

    def __init__(self, words: list[str], language: str, lowercase: bool = False):
        super().__init__(lowercase)
        self.language = language
        self.words = list(words)
        self._itos = list(SPECIAL_TOKENS) + self.words
        self._stoi = {w: i + NUM_SPECIAL for i, w in enumerate(self.words)}

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 1, language: str = "en", lowercase: bool = False
    ) -> WordTokenizer:
        tok = cls([], language, lowercase)
        counts: Counter[str] = Counter()
        for words in tok._line_words(texts):
            counts.update(words)
        return cls(keep_most_frequent(counts, vocab_size, min_frequency), language, lowercase)

    def _line_words(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Words of every line of every text, in order (one list per line)."""
        nlp = spacy_tokenizer(self.language)

        def lines() -> Iterator[str]:
            for text in texts:
                yield from (text.lower() if self.lowercase else text).split("\n")

        for doc in nlp.pipe(lines(), batch_size=2000):
            yield [t.text for t in doc if not t.is_space]

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # One spaCy pipe over every line of every text: per-call overhead dominates short lines.
        line_counts = [t.count("\n") + 1 for t in texts]
        all_words = self._line_words(texts)
        out = []
        for n_lines in line_counts:
            ids: list[int] = []
            for k in range(n_lines):
                ids.extend(self._stoi.get(w, UNK_ID) for w in next(all_words))
                if k < n_lines - 1:
                    ids.append(EOS_ID)  # one per newline
            out.append(ids)
        return out

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        lines: list[list[str]] = [[]]
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                lines.append([])
            elif i >= NUM_SPECIAL:
                lines[-1].append(self._itos[i] if i < len(self._itos) else UNK)
            elif i == UNK_ID or not skip_special:
                lines[-1].append(SPECIAL_TOKENS[i])
        return "\n".join(" ".join(words) for words in lines)

    def id_to_token(self, token_id: int) -> str:
        return self._itos[token_id] if 0 <= token_id < len(self._itos) else UNK

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        nlp = spacy_tokenizer(self.language)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for t in nlp(text.lower() if self.lowercase else text):
            if t.is_space:
                for k, ch in enumerate(t.text):
                    if ch == "\n":
                        ids.append(EOS_ID)
                        offsets.append((t.idx + k, t.idx + k + 1))
            else:
                ids.append(self._stoi.get(t.text, UNK_ID))
                offsets.append((t.idx, t.idx + len(t.text)))
        return ids, offsets

    def pieces(self, text: str) -> list[tuple[str, int]]:
        nlp = spacy_tokenizer(self.language)
        out = []
        for t in nlp(text.lower() if self.lowercase else text):
            if t.text == "\n" or "\n" in t.text and t.is_space:
                out.append(("\n", EOS_ID))
            elif not t.is_space:
                out.append((t.text, self._stoi.get(t.text, UNK_ID)))
        return out

    def _state(self) -> dict[str, Any]:
        return {"language": self.language, "words": self.words}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> WordTokenizer:
        return cls(list(manifest["words"]), str(manifest.get("language", "en")), bool(manifest.get("lowercase", False)))
