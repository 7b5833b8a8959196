"""Greedy continuations of many prompts at once, for scoring tasks (translation, summarization,
generative QA) on whole validation and test splits."""

from __future__ import annotations

import torch
from torch import Tensor

from studio.core.data.special_tokens import EOS_ID
from studio.core.decoding.sampling import ban_specials
from studio.core.models.base import LanguageModel


@torch.no_grad()
def batched_greedy(model: LanguageModel, prompts: list[list[int]], max_new_tokens: int, batch_size: int = 64,
                   use_cache: bool = True) -> list[list[int]]:
    """Greedy continuations of ``prompts``, a batch at a time; each row stops at <eos> and leaves
    the batch. The model's own decoder reads the ragged prompts once and writes one token per
    row per step (``use_cache=False``: re-read the context every step instead, which the tests use
    to show the shortcut changes nothing)."""
    was_training = model.training
    model.eval()
    ctx = model.config.context_length
    out: list[list[int]] = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = [p[-ctx:] or [EOS_ID] for p in prompts[i : i + batch_size]]
            out.extend(_greedy(model, chunk, max_new_tokens, use_cache))
    finally:
        model.train(was_training)
    return out


def _greedy(model: LanguageModel, prompts: list[list[int]], max_new: int, use_cache: bool) -> list[list[int]]:
    decoder = model.make_decoder(use_cache)
    limit = max_new if decoder.max_new is None else min(max_new, decoder.max_new)
    device = next(model.parameters()).device
    new: list[list[int]] = [[] for _ in prompts]
    if limit <= 0:
        return new
    logits = decoder.begin(prompts)
    rows = torch.arange(len(prompts), device=device)  # which prompt each batch row is
    for step in range(limit):
        tokens, keep = _pick(logits, rows, new)
        if keep.numel() == 0 or step == limit - 1:
            break
        if keep.numel() < rows.numel():
            decoder.keep(keep)
            rows, tokens = rows[keep], tokens[keep]
        logits = decoder.step(tokens)
    return new


def _pick(logits: Tensor, rows: Tensor, new: list[list[int]]) -> tuple[Tensor, Tensor]:
    """The greedy token of each live batch row, added to its prompt's output unless it is <eos>;
    and the batch rows that go on."""
    tokens = ban_specials(logits.float()).argmax(-1)
    for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
        if token != EOS_ID:
            new[row].append(token)
    return tokens, (tokens != EOS_ID).nonzero().flatten()
