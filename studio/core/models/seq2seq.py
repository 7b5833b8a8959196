"""Encoder-decoder Transformer ("Attention Is All You Need", with pre-norm layers).

For sequence-to-sequence tasks (translation, summarization) the encoder reads the source and the
decoder writes the target, attending to the encoder through cross-attention. Pre-trained on a
plain corpus it learns to continue text: the encoder reads the first half of each window and the
decoder writes the second half.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from studio.core.architectures import Seq2SeqConfig
from studio.core.data.special_tokens import BOS_ID, PAD_ID
from studio.core.i18n import _
from studio.core.models.base import Decoder, LanguageModel, causal_lm_loss, init_weights, right_padded
from studio.core.models.transformer_layers import Block, KVCache, norm_layer, scale_residual_projections


class Seq2SeqTransformer(LanguageModel):
    config: Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig, vocab_size: int):
        super().__init__(config, vocab_size)
        c = config
        self.tok_emb = nn.Embedding(vocab_size, c.d_model)
        self.src_pos = nn.Embedding(c.context_length, c.d_model)
        self.tgt_pos = nn.Embedding(c.context_length, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList([Block(c, "bidirectional") for _ in range(c.n_encoder_layers)])
        self.enc_ln = norm_layer(c)
        self.decoder = nn.ModuleList([Block(c, "decoder") for _ in range(c.n_decoder_layers)])
        self.dec_ln = norm_layer(c)
        init_weights(self)
        scale_residual_projections(self, c.n_encoder_layers + c.n_decoder_layers, zero=c.zero_init_proj)

    def _check_len(self, t: int, what: str) -> None:
        if t > self.config.context_length:
            if what == "source":
                message = _("source of {tokens} tokens is longer than the context ({context})")
            else:
                message = _("target of {tokens} tokens is longer than the context ({context})")
            raise ValueError(message.format(tokens=t, context=self.config.context_length))

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        self._check_len(src.size(1), "source")
        x = self.drop(self.tok_emb(src) + self.src_pos(torch.arange(src.size(1), device=src.device)))
        for block in self.encoder:
            x = block(x, key_mask=src_mask)
        return self.enc_ln(x)

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """Logits [B, T, V] for each next target token, given the decoder input so far. With a
        ``cache`` (from ``new_cache``), ``tgt_in`` holds only the tokens after the cached ones."""
        past = cache.length if cache is not None else 0
        t = tgt_in.size(1)
        self._check_len(past + t, "target")
        x = self.drop(self.tok_emb(tgt_in) + self.tgt_pos(torch.arange(past, past + t, device=tgt_in.device)))
        for i, block in enumerate(self.decoder):
            x = block(x, memory=memory, memory_mask=src_mask, cache=cache.layers[i] if cache is not None else None)
        return self.dec_ln(x) @ self.tok_emb.weight.t()

    def new_cache(self) -> KVCache:
        return KVCache(len(self.decoder))

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        return self.encode(idx, attention_mask)

    @property
    def feature_size(self) -> int:
        return self.config.d_model

    def layer_groups(self) -> list[list[nn.Parameter]]:
        embeddings = [self.tok_emb.weight, self.src_pos.weight, self.tgt_pos.weight]
        layers = [list(b.parameters()) for b in (*self.encoder, *self.decoder)]
        return [embeddings, *layers, [*self.enc_ln.parameters(), *self.dec_ln.parameters()]]

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None) -> Tensor:
        if src_mask is None:
            src_mask = src != PAD_ID
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask)

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        # Continue the text: read the first half of the window, write the second half.
        half = (windows.size(1) - 1) // 2
        src, target = windows[:, :half], windows[:, half:]
        target = target[:, : self.config.context_length]
        bos = torch.full((target.size(0), 1), BOS_ID, dtype=target.dtype, device=target.device)
        tgt_in = torch.cat([bos, target[:, :-1]], dim=1)
        return causal_lm_loss(self(src, tgt_in), target)

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        return _Seq2SeqDecoder(self, use_cache)


class _Seq2SeqDecoder(Decoder):
    """Each prompt is a source, encoded once; the decoder writes from <bos>, keeping its keys and
    values (and the encoder's, for cross-attention). A target longer than the context re-reads its
    last context_length tokens each step (free generation); tasks never write more than
    ``max_new`` = context - 1 tokens, the longest target training saw."""

    def __init__(self, model: Seq2SeqTransformer, use_cache: bool):
        self.model = model
        self.ctx = model.config.context_length
        self.max_new = self.ctx - 1
        self.device = next(model.parameters()).device
        self.cache: KVCache | None = model.new_cache() if use_cache else None

    def begin(self, prompts: list[list[int]]) -> Tensor:
        src = right_padded([p[-self.ctx :] or [PAD_ID] for p in prompts], PAD_ID)[0].to(self.device)
        self.src_mask = src != PAD_ID
        self.memory = self.model.encode(src, self.src_mask)
        self.tgt = torch.full((len(prompts), 1), BOS_ID, dtype=torch.long, device=self.device)
        return self.model.decode(self.tgt, self.memory, self.src_mask, self.cache)[:, -1, :]

    def step(self, tokens: Tensor) -> Tensor:
        tokens = tokens.to(self.device)[:, None]
        self.tgt = torch.cat([self.tgt, tokens], dim=1)
        if self.cache is not None and self.tgt.size(1) <= self.ctx:
            return self.model.decode(tokens, self.memory, self.src_mask, self.cache)[:, -1, :]
        self.cache = None
        return self.model.decode(self.tgt[:, -self.ctx :], self.memory, self.src_mask)[:, -1, :]

    def keep(self, rows: Tensor) -> None:
        rows = rows.to(self.device)
        self.memory, self.src_mask, self.tgt = self.memory[rows], self.src_mask[rows], self.tgt[rows]
        if self.cache is not None:
            self.cache.select(rows)
