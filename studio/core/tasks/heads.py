"""Task heads on top of any architecture's per-token features.

- ``ClassifierModel``: mean of the real tokens' states, dropout, a linear layer to the labels.
- ``SpanQAModel``: start and end scores for every token (extractive question answering).

Generation tasks need no head: a decoder-only model continues a prompt, an encoder-decoder
writes the target.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from studio.core.models.base import LanguageModel


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(states.dtype).unsqueeze(-1)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class ClassifierModel(nn.Module):
    def __init__(self, base: LanguageModel, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.base = base
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(base.feature_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, idx: Tensor, mask: Tensor) -> Tensor:
        return self.classifier(self.drop(mean_pool(self.base.features(idx, mask), mask)))


class SpanQAModel(nn.Module):
    def __init__(self, base: LanguageModel):
        super().__init__()
        self.base = base
        self.span = nn.Linear(base.feature_size, 2)
        nn.init.normal_(self.span.weight, std=0.02)
        nn.init.zeros_(self.span.bias)

    def forward(self, idx: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Start and end scores [B, T]; padding scores -inf."""
        logits = self.span(self.base.features(idx, mask)).float()
        start, end = logits.unbind(dim=-1)
        blocked = ~mask.bool()
        return start.masked_fill(blocked, float("-inf")), end.masked_fill(blocked, float("-inf"))


def best_span(start: Tensor, end: Tensor, allowed: Tensor, max_len: int = 30) -> tuple[int, int]:
    """The (start, end) token pair with the highest summed score, end >= start, within ``allowed``."""
    s = start.masked_fill(~allowed, float("-inf"))
    e = end.masked_fill(~allowed, float("-inf"))
    scores = s[:, None] + e[None, :]
    n = scores.size(0)
    band = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu().tril(max_len - 1)
    scores = scores.masked_fill(~band, float("-inf"))
    flat = int(scores.argmax())
    return divmod(flat, n)
