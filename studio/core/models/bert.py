"""BERT-style encoder: bidirectional self-attention, pre-trained with a masked-language-model objective.

The loss is cross-entropy on masked positions only (BERT uses no CRF: that is a tagging layer,
not a language model). Its pooled states feed classification heads when fine-tuning.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.architectures import BERTConfig
from studio.core.data.special_tokens import MASK_ID, NUM_SPECIAL, PAD_ID
from studio.core.i18n import _
from studio.core.models.base import IGNORE_INDEX, Decoder, LanguageModel, init_weights
from studio.core.models.transformer_layers import Block, norm_layer, scale_residual_projections


class BERT(LanguageModel):
    config: BERTConfig

    def __init__(self, config: BERTConfig, vocab_size: int):
        super().__init__(config, vocab_size)
        c = config
        self.tok_emb = nn.Embedding(vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model)
        self.emb_ln = norm_layer(c)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c, "bidirectional") for _ in range(c.n_layers)])
        self.ln_f = norm_layer(c)
        self.mlm_transform = nn.Linear(c.d_model, c.d_model)
        self.mlm_ln = norm_layer(c)
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        init_weights(self)
        scale_residual_projections(self, c.n_layers, zero=c.zero_init_proj)

    def encode(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Hidden states [B, T, d]. ``attention_mask`` is True (or 1) for real tokens."""
        t = idx.size(1)
        if t > self.config.context_length:
            message = _("sequence of {tokens} tokens is longer than the context ({context})")
            raise ValueError(message.format(tokens=t, context=self.config.context_length))
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device))
        x = self.drop(self.emb_ln(x))
        for block in self.blocks:
            x = block(x, key_mask=attention_mask)
        return self.ln_f(x)

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.encode(idx, attention_mask)

    @property
    def feature_size(self) -> int:
        return self.config.d_model

    def layer_groups(self) -> list[list[nn.Parameter]]:
        embeddings: list[nn.Parameter] = [self.tok_emb.weight, self.pos_emb.weight, *self.emb_ln.parameters()]  # type: ignore[list-item]
        head = [*self.mlm_transform.parameters(), *self.mlm_ln.parameters(), self.mlm_bias]
        return [embeddings, *[list(b.parameters()) for b in self.blocks], [*self.ln_f.parameters(), *head]]

    def pooled(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Mean of the hidden states over real tokens: the input to classification heads."""
        h = self.encode(idx, attention_mask)
        if attention_mask is None:
            return h.mean(dim=1)
        m = attention_mask.to(h.dtype).unsqueeze(-1)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)

    def mlm_logits(self, hidden: Tensor) -> Tensor:
        h = self.mlm_ln(F.gelu(self.mlm_transform(hidden)))
        return F.linear(h, self.tok_emb.weight, self.mlm_bias)

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        raise NotImplementedError(_("a BERT-style encoder fills in masked tokens rather than writing text token by token"))

    def forward(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.mlm_logits(self.encode(idx, attention_mask))

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        inputs, labels = mask_tokens(windows[:, :-1], self.config.mask_prob, self.vocab_size, generator)
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def mask_tokens(
    tokens: Tensor, mask_prob: float, vocab_size: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """BERT's corruption: choose ``mask_prob`` of the real tokens; of those 80% -> <mask>, 10% -> random, 10% kept.

    Randomness is drawn on the CPU from ``generator`` so that a seeded run (and a resumed one)
    masks the same positions.
    """
    cpu = tokens.detach().cpu()
    draw = torch.rand(cpu.shape, generator=generator)
    chosen = (draw < mask_prob) & (cpu >= NUM_SPECIAL)
    if not chosen.any():  # a tiny batch can draw nothing; always predict at least one token
        candidates = (cpu >= NUM_SPECIAL).nonzero()
        if len(candidates):
            pick = candidates[torch.randint(len(candidates), (1,), generator=generator)][0]
            chosen[pick[0], pick[1]] = True
    labels = torch.where(chosen, cpu, torch.full_like(cpu, IGNORE_INDEX))
    action = torch.rand(cpu.shape, generator=generator)
    random_ids = torch.randint(NUM_SPECIAL, max(vocab_size, NUM_SPECIAL + 1), cpu.shape, generator=generator)
    inputs = cpu.clone()
    inputs[chosen & (action < 0.8)] = MASK_ID
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    inputs[cpu == PAD_ID] = PAD_ID
    return inputs.to(tokens.device), labels.to(tokens.device)
