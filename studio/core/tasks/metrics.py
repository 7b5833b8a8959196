"""Task metrics, from the libraries the field uses to report them.

- classification: accuracy and macro-F1 (scikit-learn);
- translation: corpus BLEU and chrF (sacrebleu; its ``zh`` tokenizer for Chinese targets);
- summarization: ROUGE-1/2/L F-measure (Google's rouge-score; characters for Chinese, whose
  default tokenizer would drop every Chinese character);
- QA: SQuAD exact match and F1. These follow the official SQuAD v1.1 evaluation script's
  definition (lowercase, strip punctuation and English articles, token overlap; best over all gold
  answers). No maintained package ships it without pulling in a framework, so it is written out
  here and checked against hand-computed values in the tests. Chinese answers are compared by
  character, as CMRC 2018's evaluation does.

Every function returns percentages (0-100) in a plain dict.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def is_chinese(texts: Sequence[str]) -> bool:
    """True when CJK characters make up at least a third of the non-space characters."""
    joined = "".join(t for t in texts[:200]).replace(" ", "")
    return bool(joined) and len(_CJK.findall(joined)) >= len(joined) / 3


def classification_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    return {
        "accuracy": 100.0 * accuracy_score(labels, predictions),
        "f1": 100.0 * f1_score(labels, predictions, average="macro", zero_division=0),
    }


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    tokenize = "zh" if is_chinese(references) else "13a"
    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    exact = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references, strict=True))
    return {"bleu": bleu.score, "chrf": chrf.score, "exact_match": 100.0 * exact / max(1, len(hypotheses))}


class _CharTokenizer:
    """rouge-score tokenizer for Chinese: every non-space character is a token."""

    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in text if not ch.isspace()]


def summarization_metrics(summaries: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """ROUGE F-measures; with several references per example the best one counts (as rouge-score's
    ``score_multi`` does)."""
    flat = [r for refs in references for r in refs]
    tokenizer = _CharTokenizer() if is_chinese(flat) else None
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=tokenizer is None, tokenizer=tokenizer)
    totals: collections.Counter[str] = collections.Counter()
    for summary, refs in zip(summaries, references, strict=True):
        scores = scorer.score_multi(list(refs), summary)
        for name in ("rouge1", "rouge2", "rougeL"):
            totals[name] += scores[name].fmeasure
    n = max(1, len(summaries))
    return {"rouge1": 100 * totals["rouge1"] / n, "rouge2": 100 * totals["rouge2"] / n, "rougeL": 100 * totals["rougeL"] / n}


# ---- SQuAD ---------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_ZH_PUNCT = set("，。！？；：、“”‘’（）《》【】…—·「」『』〈〉﹏～")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str, chinese: bool) -> list[str]:
    if chinese:
        return [ch for ch in text.lower() if not ch.isspace() and ch not in _PUNCT and ch not in _ZH_PUNCT]
    return normalize_answer(text).split()


def squad_f1(prediction: str, truth: str, chinese: bool = False) -> float:
    pred, gold = _tokens(prediction, chinese), _tokens(truth, chinese)
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_exact(prediction: str, truth: str, chinese: bool = False) -> float:
    if chinese:
        return float(_tokens(prediction, True) == _tokens(truth, True))
    return float(normalize_answer(prediction) == normalize_answer(truth))


def qa_metrics(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    chinese = is_chinese([a for refs in answers for a in refs])
    em = f1 = 0.0
    for pred, golds in zip(predictions, answers, strict=True):
        em += max(squad_exact(pred, g, chinese) for g in golds)
        f1 += max(squad_f1(pred, g, chinese) for g in golds)
    n = max(1, len(predictions))
    return {"exact_match": 100 * em / n, "f1": 100 * f1 / n}


def task_metrics(kind: str, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    if kind == "classify":
        return classification_metrics(predictions, [r[0] for r in references])
    if kind == "translate":
        return translation_metrics(predictions, [r[0] for r in references])
    if kind == "summarize":
        return summarization_metrics(predictions, references)
    if kind == "qa":
        return qa_metrics(predictions, references)
    raise ValueError(kind)

