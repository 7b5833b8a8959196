"""What every architecture provides to the trainer, the generators and the forms.

A model turns a batch of contiguous token windows (shape ``[B, T+1]``) into its own training loss,
so the trainer never needs to know whether it is driving an LSTM, a GPT, a masked-LM encoder or an
encoder-decoder. Causal models also expose an incremental decoding interface used for streaming
generation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.settings import ModelConfig

IGNORE_INDEX = -100

class LanguageModel(nn.Module):
    """Base class: holds the config and vocabulary size, and answers size questions."""

    config: ModelConfig

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size

    def num_parameters(self) -> int:
        # Tied weights are one tensor, so unique storage is what counts.
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mean loss over a batch of windows of ``context_length + 1`` tokens."""
        raise NotImplementedError

    # ---- for task heads (classification, extractive QA) -----------------------------------

    @property
    def feature_size(self) -> int:
        """Width of the vectors ``features`` returns."""
        raise NotImplementedError

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Per-token hidden states [B, T, feature_size] (True or 1 in the mask = a real token)."""
        raise NotImplementedError

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters from the input upwards: embeddings first, then one group per layer. Freezing
        "the first N layers" freezes the first N + 1 groups."""
        raise NotImplementedError

    # ---- incremental decoding (causal models) ----------------------------------------------

    def start_decoding(self, prompt: Tensor) -> tuple[Tensor, Any]:
        """Feed a prompt of shape [1, L]; return logits for the next token [1, V] and a state."""
        raise NotImplementedError(f"{self.config.label} models do not generate text token by token")

    def continue_decoding(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Feed one token of shape [1]; return next-token logits [1, V] and the new state."""
        raise NotImplementedError


def causal_lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 style: normal(0, 0.02) for linear and embedding weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=std)
