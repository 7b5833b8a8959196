"""The shared body of the RNN, LSTM and GRU language models.

Each of ``rnn.py``, ``lstm.py`` and ``gru.py`` names its cell and gate count; everything else
(embedding, stacked recurrent layers, dropout, optional weight tying, decoding with a carried
hidden state) is the same and lives here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from studio.core.architectures import RecurrentConfig
from studio.core.models.base import Decoder, LanguageModel, RereadingDecoder, causal_lm_loss, right_padded


class RecurrentLM(LanguageModel):
    """Embedding -> stacked recurrent layers -> linear head. State is reset for every window."""

    config: RecurrentConfig

    def _make_rnn(self, c: RecurrentConfig) -> nn.RNNBase:
        raise NotImplementedError

    def __init__(self, config: RecurrentConfig, vocab_size: int):
        super().__init__(config, vocab_size)
        c = config
        self.embed = nn.Embedding(vocab_size, c.embedding_dim)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = self._make_rnn(c)
        # One LayerNorm on the last layer's output, not one between layers: the stack stays a
        # single fused nn.LSTM/GRU/RNN call (cuDNN runs every layer in one kernel; per-layer norms
        # would mean one call per layer) and the carried state keeps its [layers, B, hidden]
        # shape. It gives the tied output layer inputs of a steady scale, as a GPT's ln_f does.
        self.norm = nn.LayerNorm(c.hidden_size) if c.layer_norm else None
        self.head = nn.Linear(c.hidden_size, vocab_size)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        else:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def forward(self, idx: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = self.drop(self.embed(idx))
        out, state = self.rnn(x, state)
        return self.project(out), state

    def _normed(self, out: Tensor) -> Tensor:
        return out if self.norm is None else self.norm(out)

    def project(self, out: Tensor) -> Tensor:
        """Logits of the recurrent layers' outputs: the norm if any, dropout, the head."""
        return self.head(self.drop(self._normed(out)))

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        logits, _ = self(windows[:, :-1])
        return causal_lm_loss(logits, windows[:, 1:])

    @property
    def feature_size(self) -> int:
        return self.config.hidden_size

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        out, _ = self.rnn(self.drop(self.embed(idx)))
        return self._normed(out)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        groups: list[list[nn.Parameter]] = [[self.embed.weight]]  # type: ignore[list-item]  # an Embedding's weight is a Parameter
        for layer in range(self.config.num_layers):
            groups.append([p for name, p in self.rnn.named_parameters() if name.endswith(f"_l{layer}")])
        head = [p for name, p in self.head.named_parameters() if not (self.config.tie_weights and name == "weight")]
        groups.append([*(self.norm.parameters() if self.norm is not None else ()), *head])
        return groups

    def logits(self, idx: Tensor) -> Tensor:
        return self(idx)[0]

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        return _StateDecoder(self) if use_cache else RereadingDecoder(self)


class _StateDecoder(Decoder):
    """Carries each row's recurrent state, as the network does by nature: ragged prompts are read
    once as a packed batch (so each state stops at its own prompt's end), then each step feeds
    one token per row. There is no context limit to reach."""

    def __init__(self, model: RecurrentLM):
        self.model = model
        self.device = next(model.parameters()).device
        self.state: Any = None

    def begin(self, prompts: list[list[int]]) -> Tensor:
        idx, lengths = right_padded(prompts)
        packed = pack_padded_sequence(self.model.embed(idx.to(self.device)), lengths, batch_first=True, enforce_sorted=False)
        out, self.state = self.model.rnn(packed)
        hidden, _ = pad_packed_sequence(out, batch_first=True)
        return self.model.project(hidden[torch.arange(len(prompts), device=self.device), lengths.to(self.device) - 1])

    def step(self, tokens: Tensor) -> Tensor:
        logits, self.state = self.model(tokens.to(self.device)[:, None], self.state)
        return logits[:, -1, :]

    def keep(self, rows: Tensor) -> None:
        rows = rows.to(self.device)
        # The batch is dimension 1 of a recurrent state ([layers, B, hidden]; an LSTM has two).
        if isinstance(self.state, tuple):
            self.state = tuple(s.index_select(1, rows) for s in self.state)
        else:
            self.state = self.state.index_select(1, rows)
