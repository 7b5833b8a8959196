"""GPT-style decoder: pre-norm Transformer layers with causal self-attention, predicting the next token."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from studio.core.architectures import GPTConfig
from studio.core.i18n import _
from studio.core.models.base import (
    Decoder,
    LanguageModel,
    RereadingDecoder,
    causal_lm_loss,
    init_weights,
    right_padded,
)
from studio.core.models.transformer_layers import (
    Block,
    KVCache,
    RotaryEmbedding,
    norm_layer,
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
        self.ln_f = norm_layer(c)
        self.head = nn.Linear(c.d_model, vocab_size, bias=False)
        init_weights(self)
        scale_residual_projections(self, c.n_layers, zero=c.zero_init_proj)
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
                message = _("sequence of {tokens} tokens is longer than the context ({context})")
                raise ValueError(message.format(tokens=t, context=self.config.context_length))
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

    def project(self, hidden: Tensor) -> Tensor:
        """Next-token logits of final hidden states: the head, then the soft-cap if there is one.
        Training and every decoder come through here, so sampling sees the distribution that
        training shaped."""
        logits = self.head(hidden)
        cap = self.config.logit_softcap
        if cap > 0:
            # In float32: tanh saturates early in bfloat16, and the loss reads float32 anyway.
            logits = cap * torch.tanh(logits.float() / cap)
        return logits

    def forward(self, idx: Tensor) -> Tensor:
        return self.project(self.features(idx))

    @property
    def feature_size(self) -> int:
        return self.config.d_model

    def layer_groups(self) -> list[list[nn.Parameter]]:
        embeddings: list[nn.Parameter] = [self.tok_emb.weight] + ([self.pos_emb.weight] if self.pos_emb is not None else [])  # type: ignore[assignment]
        return [embeddings, *[list(b.parameters()) for b in self.blocks], list(self.ln_f.parameters())]

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return causal_lm_loss(self(windows[:, :-1]), windows[:, 1:])

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        return _CachedDecoder(self) if use_cache else RereadingDecoder(self)


class _CachedDecoder(Decoder):
    """Keeps every layer's keys and values, so a step computes one token per row. Ragged prompts
    are read once, right-padded, with the padding masked out of every later step; each row then
    writes at its own position. Learned positions end at the context, so once any row reaches it
    the decoder turns into a re-reading one (each step reads the last context_length tokens, as
    training saw them)."""

    def __init__(self, model: GPT):
        self.model = model
        self.ctx = model.config.context_length
        self.device = next(model.parameters()).device
        self.cache = KVCache(len(model.blocks))
        self.seqs: list[list[int]] = []  # kept for the switch to re-reading
        self.rereading: RereadingDecoder | None = None

    def begin(self, prompts: list[list[int]]) -> Tensor:
        self.seqs = [list(p[-self.ctx :]) for p in prompts]
        idx, lengths = right_padded(self.seqs)
        lengths = lengths.to(self.device)
        self.key_mask = torch.arange(idx.size(1), device=self.device)[None, :] < lengths[:, None]
        hidden = self.model.hidden(idx.to(self.device), cache=self.cache, key_mask=self.key_mask)
        self.positions = lengths.clone()  # where each row's next token goes
        return self.model.project(hidden[torch.arange(len(prompts), device=self.device), lengths - 1])

    def step(self, tokens: Tensor) -> Tensor:
        if self.rereading is None:
            for seq, token in zip(self.seqs, tokens.tolist(), strict=True):
                seq.append(token)
            if int(self.positions.max()) >= self.ctx:
                self.rereading = RereadingDecoder(self.model, self.seqs)
                return self.rereading._read()
            self.key_mask = torch.cat([self.key_mask, torch.ones_like(self.key_mask[:, :1])], dim=1)
            hidden = self.model.hidden(tokens.to(self.device)[:, None], self.positions[:, None], self.cache, self.key_mask)
            self.positions = self.positions + 1
            return self.model.project(hidden[:, -1, :])
        return self.rereading.step(tokens)

    def keep(self, rows: Tensor) -> None:
        if self.rereading is not None:
            self.rereading.keep(rows)
            return
        rows = rows.to(self.device)
        self.cache.select(rows)
        self.key_mask, self.positions = self.key_mask[rows], self.positions[rows]
        self.seqs = [list(self.seqs[r]) for r in rows.tolist()]
