"""Building blocks shared by the three Transformer architectures (GPT, BERT, encoder-decoder).

Attention goes through ``torch.nn.functional.scaled_dot_product_attention`` so each device picks
its fastest kernel (flash or memory-efficient on GPUs, a fused CPU kernel otherwise). Those kernels
never return the attention weights, so an attention module keeps them only when asked
(``keep_attention``, set by ``studio.core.inference.insight``): it then also computes them from
its own queries and keys, with the same mask, and training never pays for it.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.architectures import TransformerConfig


def layer_norm(d: int, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(d, bias=bias)


def norm_layer(c: TransformerConfig) -> nn.Module:
    """The config's normalization over d_model: LayerNorm (biased if ``c.bias``) or RMSNorm."""
    return nn.RMSNorm(c.d_model) if c.norm == "rms" else layer_norm(c.d_model, c.bias)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE): rotates pairs of q/k features by a position-dependent angle."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        self.cos: Tensor
        self.sin: Tensor
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        # x: [B, H, T, head_dim]; first and second halves form the rotated pairs. ``positions``
        # [B, T] places each token when it does not start at 0 (decoding with a key-value cache).
        if positions is None:
            t = x.size(-2)
            cos, sin = self.cos[:t], self.sin[:t]
        else:
            cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class LayerCache:
    """One layer's keys and values for the tokens already decoded, [B, H, S, head_dim], and in a
    decoder, the keys and values of the encoder's output (the same at every step)."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self.memory_k: Tensor | None = None
        self.memory_v: Tensor | None = None


class KVCache:
    """Keys and values of every layer, so each decoding step computes only the new token.

    Without it a step re-runs the whole context, which made decoding cost grow with the square of
    the text's length (most of the time spent scoring summarization was that)."""

    def __init__(self, n_layers: int):
        self.layers = [LayerCache() for _ in range(n_layers)]

    @property
    def length(self) -> int:
        k = self.layers[0].k
        return 0 if k is None else k.size(-2)

    def select(self, rows: Tensor) -> None:
        """Keep (and reorder, or repeat) the batch rows ``rows``: finished sequences leave the
        batch, beam search follows the beams it keeps."""
        for layer in self.layers:
            for name in ("k", "v", "memory_k", "memory_v"):
                value = getattr(layer, name)
                if value is not None:
                    setattr(layer, name, value.index_select(0, rows))


class SelfAttention(nn.Module):
    # Inspection only: when True, forward also keeps the attention probabilities [B, H, T, S] in
    # ``attention``, from the very q and k it attends with (after QK-norm and RoPE) and the same
    # mask. Off (a class default, one attribute read per call), training stays on SDPA's kernels.
    keep_attention: bool = False
    attention: Tensor | None = None

    def __init__(
        self, d: int, n_heads: int, dropout: float, bias: bool, rotary: RotaryEmbedding | None = None, qk_norm: bool = False
    ):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        # QK-norm: each head's queries and keys scaled to unit RMS (one learned scale per feature,
        # shared by the heads), so attention logits cannot grow without bound at high rates.
        self.q_norm = nn.RMSNorm(d // n_heads) if qk_norm else None
        self.k_norm = nn.RMSNorm(d // n_heads) if qk_norm else None
        self.proj = nn.Linear(d, d, bias=bias)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)
        self.rotary = rotary

    def forward(
        self,
        x: Tensor,
        causal: bool,
        key_mask: Tensor | None = None,
        positions: Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> Tensor:
        """``key_mask`` covers every key, cached ones first; ``positions`` are the new tokens'."""
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # before the rotation, which keeps their norm anyway
        if self.rotary is not None:
            q, k = self.rotary(q, positions), self.rotary(k, positions)
        past = 0
        if cache is not None:
            if cache.k is not None and cache.v is not None:
                past = cache.k.size(-2)
                k, v = torch.cat([cache.k, k], dim=-2), torch.cat([cache.v, v], dim=-2)
            cache.k, cache.v = k, v
        if self.keep_attention:
            self.attention = attention_probabilities(q, k, causal, key_mask, past).detach()
        y = _attend(q, k, v, causal, key_mask, self.dropout if self.training else 0.0, past)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class CrossAttention(nn.Module):
    keep_attention: bool = False  # as in SelfAttention: inspection only
    attention: Tensor | None = None

    def __init__(self, d: int, n_heads: int, dropout: float, bias: bool, qk_norm: bool = False):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d, d, bias=bias)
        self.kv = nn.Linear(d, 2 * d, bias=bias)
        self.q_norm = nn.RMSNorm(d // n_heads) if qk_norm else None
        self.k_norm = nn.RMSNorm(d // n_heads) if qk_norm else None
        self.proj = nn.Linear(d, d, bias=bias)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None, cache: LayerCache | None = None) -> Tensor:
        b, t, c = x.shape
        s = memory.size(1)
        h, hd = self.n_heads, c // self.n_heads
        q = self.q(x).view(b, t, h, hd).transpose(1, 2)
        if self.q_norm is not None:
            q = self.q_norm(q)
        if cache is not None and cache.memory_k is not None and cache.memory_v is not None:
            k, v = cache.memory_k, cache.memory_v  # normalized before they were kept
        else:
            k, v = (z.view(b, s, h, hd).transpose(1, 2) for z in self.kv(memory).split(c, dim=2))
            if self.k_norm is not None:
                k = self.k_norm(k)
            if cache is not None:
                cache.memory_k, cache.memory_v = k, v
        if self.keep_attention:
            self.attention = attention_probabilities(q, k, False, memory_mask).detach()
        y = _attend(q, k, v, False, memory_mask, self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


def _attend(
    q: Tensor, k: Tensor, v: Tensor, causal: bool, key_mask: Tensor | None, dropout: float, past: int = 0
) -> Tensor:
    t, s = q.size(-2), k.size(-2)
    # One new query after the cached keys sees all of them: causality holds with no mask.
    causal = causal and t > 1
    if key_mask is None and past == 0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal)
    mask = allowed_keys(t, s, causal, key_mask, past, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


def allowed_keys(t: int, s: int, causal: bool, key_mask: Tensor | None, past: int, device: torch.device) -> Tensor:
    """[B or 1, 1, T, S], True where query i may attend key j: the mask ``_attend`` hands SDPA
    (and, with no padding and no cache, what SDPA's own ``is_causal`` means)."""
    mask = torch.ones(1, 1, t, s, dtype=torch.bool, device=device)
    if key_mask is not None:
        mask = mask & key_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, S]: True = may attend
    if causal:
        # Query i is token past + i, so it may see keys up to past + i (sdpa's own is_causal
        # aligns the corner the other way when there are more keys than queries).
        mask = mask & torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=past)
    return mask


def attention_probabilities(q: Tensor, k: Tensor, causal: bool, key_mask: Tensor | None, past: int = 0) -> Tensor:
    """softmax(q k^T / sqrt(head_dim)) under ``_attend``'s mask, in float32: the weights SDPA
    computes inside its kernel and never returns. [B, H, T, S]; each row sums to 1."""
    t, s = q.size(-2), k.size(-2)
    scores = (q.float() @ k.float().transpose(-2, -1)) * q.size(-1) ** -0.5
    scores = scores.masked_fill(~allowed_keys(t, s, causal and t > 1, key_mask, past, q.device), float("-inf"))
    # A row with no key to see (a batch row of padding only) would be 0/0: it attends nowhere.
    return scores.softmax(dim=-1).nan_to_num(0.0)


class MLP(nn.Module):
    def __init__(self, d: int, ff: int, dropout: float, bias: bool, activation: Literal["gelu", "relu2"] = "gelu"):
        super().__init__()
        self.fc = nn.Linear(d, ff, bias=bias)
        self.out = nn.Linear(ff, d, bias=bias)
        self.drop = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        h = F.relu(h).square() if self.activation == "relu2" else F.gelu(h)
        return self.drop(self.out(h))


class Block(nn.Module):
    """Pre-norm Transformer layer: self-attention, optional cross-attention, MLP."""

    def __init__(
        self,
        c: TransformerConfig,
        kind: Literal["causal", "bidirectional", "decoder"],
        rotary: RotaryEmbedding | None = None,
    ):
        super().__init__()
        d = c.d_model
        self.causal = kind in ("causal", "decoder")
        self.ln1 = norm_layer(c)
        self.attn = SelfAttention(d, c.n_heads, c.dropout, c.bias, rotary, c.qk_norm)
        self.cross: CrossAttention | None = None
        if kind == "decoder":
            self.ln_cross = norm_layer(c)
            self.cross = CrossAttention(d, c.n_heads, c.dropout, c.bias, c.qk_norm)
        self.ln2 = norm_layer(c)
        self.mlp = MLP(d, c.ff_width, c.dropout, c.bias, c.activation)

    def forward(
        self,
        x: Tensor,
        key_mask: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        positions: Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> Tensor:
        x = x + self.attn(self.ln1(x), self.causal, key_mask, positions, cache)
        if self.cross is not None:
            assert memory is not None
            x = x + self.cross(self.ln_cross(x), memory, memory_mask, cache)
        return x + self.mlp(self.ln2(x))


def scale_residual_projections(module: nn.Module, n_layers: int, zero: bool = False) -> None:
    """GPT-2's trick: shrink the init of layers that write into the residual stream by 1/sqrt(2L).
    With ``zero`` (``zero_init_proj``) they start at zero instead, so each layer begins as the
    identity and the residual stream carries the embedding unchanged; their gradients are not
    zero (they see the layer's input), so they grow from the first step."""
    std = 0.02 / (2 * n_layers) ** 0.5
    for name, p in module.named_parameters():
        if name.endswith(("proj.weight", "out.weight")):
            if zero:
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, mean=0.0, std=std)
