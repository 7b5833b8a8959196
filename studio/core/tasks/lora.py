"""Low-rank adapters (LoRA) and layer freezing.

LoRA wraps a linear layer ``W`` as ``W x + (alpha / r) * B A dropout(x)`` with ``A`` (r x in)
random and ``B`` (out x r) zero, so training starts exactly at the base model. Only ``A`` and
``B`` (and any task head) learn. ``merge_lora`` folds ``B A`` into ``W`` for export.

Written here rather than taken from PEFT: PEFT targets Hugging Face models and brings
``transformers`` and ``accelerate`` with it; on Studio's own modules the whole technique is the
forty lines below.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from studio.core.errors import ConfigError, ConfigIssue
from studio.core.i18n import _


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        self.drop = nn.Dropout(dropout)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (self.drop(x) @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        with torch.no_grad():
            self.base.weight += (self.lora_b @ self.lora_a) * self.scale
        for p in self.base.parameters():
            p.requires_grad_(True)
        return self.base


def apply_lora(model: nn.Module, targets: list[str], rank: int, alpha: float, dropout: float) -> int:
    """Freeze everything, then wrap the named linear layers with adapters. Returns how many."""
    for p in model.parameters():
        p.requires_grad_(False)
    wanted = set(targets)
    swaps = []
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Linear) and child_name in wanted:
                swaps.append((module, child_name, child))
    for parent, child_name, child in swaps:
        setattr(parent, child_name, LoRALinear(child, rank, alpha, dropout))
    if not swaps:
        # Translators: {names} are layer names (qkv, fc), kept as is.
        message = _("no linear layer is named {names} in this model").format(names=", ".join(targets))
        raise ConfigError(ConfigIssue("finetune.lora_targets", message))
    return len(swaps)


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its base layer, in place. Returns how many were merged."""
    merged = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, child_name, child.merged())
                merged += 1
    return merged


def freeze_first_layers(model: nn.Module, groups: list[list[nn.Parameter]], n: int) -> int:
    """Freeze the embeddings and the first ``n`` layers; returns the parameters frozen."""
    frozen = 0
    for group in groups[: n + 1]:
        for p in group:
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen
