"""GPT-style decoder: pre-norm Transformer layers with causal self-attention, predicting the next token."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from studio.core.architectures import GPTConfig
from studio.core.models.base import LanguageModel, causal_lm_loss, init_weights
from studio.core.models.transformer_layers import (
    Block,
    KVCache,
    RotaryEmbedding,
    layer_norm,
    scale_residual_projections,
)


class GPT(LanguageModel):
    config: GPTConfig

    def __init__(self, config: GPTConfig, vocab_size: int):
        super().__init__(config, vocab_size)
        c = config
        self.tok_emb = nn.Embedding(vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model) if c.positions == "learned" else None
        rotary = RotaryEmbedding(c.d_model // c.n_heads, c.context_length) if c.positions == "rotary" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c, "causal", rotary) for _ in range(c.n_layers)])
        self.ln_f = layer_norm(c.d_model, c.bias)
        self.head = nn.Linear(c.d_model, vocab_size, bias=False)
        init_weights(self)
        scale_residual_projections(self, c.n_layers)
        if c.tie_embeddings:
            self.head.weight = self.tok_emb.weight

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        # Causal attention: padding at the end never influences the real tokens before it.
        return self.hidden(idx)

    def hidden(
        self,
        idx: Tensor,
        positions: Tensor | None = None,
        cache: KVCache | None = None,
        key_mask: Tensor | None = None,
    ) -> Tensor:
        """Final hidden states [B, T, d] of ``idx``. With a ``cache``, ``idx`` are new tokens at
        ``positions`` [B, T] after the cached ones, and ``key_mask`` [B, cached + T] marks the
        keys each row may see (False at padding)."""
        t = idx.size(1)
        if positions is None:
            if t > self.config.context_length:
                raise ValueError(f"sequence of {t} tokens is longer than the context ({self.config.context_length})")
            positions_or_range = torch.arange(t, device=idx.device)
        else:
            positions_or_range = positions
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions_or_range)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, key_mask=key_mask, positions=positions, cache=cache.layers[i] if cache is not None else None)
        return self.ln_f(x)

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(self.features(idx))

    @property
    def feature_size(self) -> int:
        return self.config.d_model

    def layer_groups(self) -> list[list[nn.Parameter]]:
        embeddings = [self.tok_emb.weight] + ([self.pos_emb.weight] if self.pos_emb is not None else [])
        return [embeddings, *[list(b.parameters()) for b in self.blocks], list(self.ln_f.parameters())]

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return causal_lm_loss(self(windows[:, :-1]), windows[:, 1:])

    # Decoding keeps every layer's keys and values, so a step computes one token. Learned
    # positions cannot slide, so once the text outgrows the context each step re-reads the last
    # context_length tokens instead (as training saw them).
    def start_decoding(self, prompt: Tensor) -> tuple[Tensor, Any]:
        window = prompt[:, -self.config.context_length :]
        cache = KVCache(len(self.blocks))
        logits = self.head(self.hidden(window, cache=cache)[:, -1, :])
        return logits, (window, cache)

    def continue_decoding(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        window, cache = state
        window = torch.cat([window, token.view(1, 1)], dim=1)
        ctx = self.config.context_length
        if cache is not None and window.size(1) <= ctx:
            positions = torch.full((1, 1), window.size(1) - 1, dtype=torch.long, device=window.device)
            return self.head(self.hidden(token.view(1, 1), positions, cache)[:, -1, :]), (window, cache)
        window = window[:, -ctx:]
        return self(window)[:, -1, :], (window, None)
