"""Turning task inputs into token ids the same way for training, scoring and the Try panel."""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.core.data.special_tokens import EOS_ID, SEP_ID
from studio.core.data.tokenizers import Tokenizer
from studio.core.tasks.templates import INPUT_ROLES, TARGET_ROLE, template_for

_PLACEHOLDER = re.compile(r"(\{[a-z]+\})")


def prompt_ids(tokenizer: Tokenizer, kind: str, template: str, inputs: dict[str, str], budget: int) -> list[int]:
    """The template up to its target marker, with inputs filled in, at most ``budget`` tokens.

    Literal text and each input are encoded separately, so when the prompt is too long only the
    longest input is cut (from its end) and the template's own words always survive.
    """
    template = template_for(kind, template)
    prefix = template.rstrip()[: -len("{" + TARGET_ROLE[kind] + "}")]
    parts: list[tuple[str, list[int]]] = []
    for piece in _PLACEHOLDER.split(prefix):
        if not piece:
            continue
        name = piece[1:-1] if _PLACEHOLDER.fullmatch(piece) else ""
        parts.append((name, tokenizer.encode(inputs.get(name, "") if name else piece)))
    total = sum(len(ids) for _, ids in parts)
    while total > budget:
        name, longest = max((p for p in parts if p[0]), key=lambda p: len(p[1]), default=("", []))
        if not longest:
            break
        cut = min(len(longest), total - budget)
        del longest[len(longest) - cut :]
        total -= cut
    return [i for _, ids in parts for i in ids][:budget]


def inputs_of(kind: str, source: str, question: str = "") -> dict[str, str]:
    if kind == "qa":
        return {"context": source, "question": question}
    return {INPUT_ROLES[kind][0]: source}


def target_ids(tokenizer: Tokenizer, text: str, limit: int) -> list[int]:
    """The target followed by <eos> (which teaches the model to stop), at most ``limit`` tokens."""
    return (tokenizer.encode(text)[: max(0, limit - 1)]) + [EOS_ID]


@dataclass
class QAWindow:
    ids: list[int]
    context_start: int  # index in ids of the first context token
    offsets: list[tuple[int, int]]  # character span in the context of each context token


def qa_windows(tokenizer: Tokenizer, context: str, question: str, ctx: int, stride: int | None = None) -> list[QAWindow]:
    """[question] <sep> [a stretch of the context], for overlapping stretches covering the context."""
    q = tokenizer.encode(question)[: max(1, ctx // 3)]
    c_ids, c_offsets = tokenizer.encode_with_offsets(context)
    room = max(1, ctx - len(q) - 1)
    stride = stride or max(1, room // 2)
    windows = []
    start = 0
    while True:
        ids = q + [SEP_ID] + c_ids[start : start + room]
        windows.append(QAWindow(ids, len(q) + 1, c_offsets[start : start + room]))
        if start + room >= len(c_ids):
            break
        start += stride
    return windows


def answer_token_span(window: QAWindow, char_start: int, char_end: int) -> tuple[int, int] | None:
    """Token positions (in window.ids) of the answer's characters, or None if it is not all inside."""
    first = last = None
    for k, (a, b) in enumerate(window.offsets):
        if b > char_start and a < char_end:
            if first is None:
                first = k
            last = k
    if first is None or last is None:
        return None
    if window.offsets[first][0] > char_start or window.offsets[last][1] < char_end:
        return None  # cut by the window's edge
    return window.context_start + first, window.context_start + last


def locate_answer(context: str, answer: str, start: int) -> int:
    """The answer's start in the context: the given offset if it matches, else the nearest occurrence."""
    if 0 <= start and context[start : start + len(answer)] == answer:
        return start
    found = [m.start() for m in re.finditer(re.escape(answer), context)] if answer else []
    if not found:
        return -1
    return min(found, key=lambda s: abs(s - start)) if start >= 0 else found[0]
