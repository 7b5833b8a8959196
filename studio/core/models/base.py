"""What every architecture provides to the trainer, the generators and the forms.

A model turns a batch of contiguous token windows (shape ``[B, T+1]``) into its own training loss,
so the trainer never needs to know whether it is driving an LSTM, a GPT, a masked-LM encoder or an
encoder-decoder. Causal models also expose an incremental decoding interface used for streaming
generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.config import ModelConfig

IGNORE_INDEX = -100

# Bytes of optimizer state per parameter, in units of the parameter itself.
_OPTIMIZER_SLOTS = {"adamw": 2, "adam": 2, "sgd": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """Training memory, estimated from the config before anything is allocated."""

    params: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes + self.activation_bytes

    def describe(self) -> str:
        return (
            f"{self.params:,} parameters; about {human_bytes(self.total_bytes)} to train "
            f"(weights {human_bytes(self.param_bytes)}, gradients {human_bytes(self.grad_bytes)}, "
            f"optimizer {human_bytes(self.optimizer_bytes)}, activations {human_bytes(self.activation_bytes)})"
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def estimate_training_memory(
    config: ModelConfig, vocab_size: int, batch_size: int, seq_len: int | None = None, optimizer: str = "adamw"
) -> MemoryEstimate:
    """Weights + gradients + optimizer state + activations kept for backward, all fp32."""
    seq_len = seq_len or config.context_length
    params = config.param_count(vocab_size)
    return MemoryEstimate(
        params=params,
        param_bytes=4 * params,
        grad_bytes=4 * params,
        optimizer_bytes=4 * params * _OPTIMIZER_SLOTS.get(optimizer, 2),
        activation_bytes=config.activation_bytes(batch_size, seq_len, vocab_size),
    )


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
