"""Filling in masked tokens with a BERT-style (masked-language-model) encoder."""

from __future__ import annotations

import torch

from studio.core.data.special_tokens import MASK_ID, NUM_SPECIAL
from studio.core.data.tokenizers import Tokenizer
from studio.core.i18n import _
from studio.core.models.base import LanguageModel

MASK_MARK = "<mask>"


@torch.no_grad()
def fill_mask(model: LanguageModel, tokenizer: Tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``<mask>`` in ``text``, the ``top_k`` most likely tokens with their probabilities."""
    if model.config.objective != "masked":
        raise ValueError(_("filling in masks needs a BERT-style encoder"))
    parts = text.split(MASK_MARK)
    if len(parts) < 2:
        # Translators: {mask} is the marker <mask>, written as is.
        raise ValueError(_("write {mask} where the model should fill in a token").format(mask=MASK_MARK))
    ids: list[int] = []
    for i, part in enumerate(parts):
        if part:
            ids.extend(tokenizer.encode(part))
        if i < len(parts) - 1:
            ids.append(MASK_ID)
    ids = ids[-model.config.context_length :]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = model(torch.tensor([ids], device=device))[0].float()
    finally:
        model.train(was_training)
    out = []
    for pos in (i for i, t in enumerate(ids) if t == MASK_ID):
        probs = logits[pos].softmax(-1)
        probs[:NUM_SPECIAL] = 0
        top = torch.topk(probs, top_k)
        out.append([(tokenizer.id_to_token(int(i)), float(v)) for v, i in zip(top.values, top.indices, strict=True)])
    return out
