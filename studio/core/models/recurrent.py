"""The shared body of the RNN, LSTM and GRU language models.

Each of ``rnn.py``, ``lstm.py`` and ``gru.py`` names its cell and gate count; everything else
(embedding, stacked recurrent layers, dropout, optional weight tying, decoding with a carried
hidden state) is the same and lives here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from studio.core.architectures import RecurrentConfig
from studio.core.models.base import LanguageModel, causal_lm_loss


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
        return self.head(self.drop(out)), state

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        logits, _ = self(windows[:, :-1])
        return causal_lm_loss(logits, windows[:, 1:])

    @property
    def feature_size(self) -> int:
        return self.config.hidden_size

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        out, _ = self.rnn(self.drop(self.embed(idx)))
        return out

    def layer_groups(self) -> list[list[nn.Parameter]]:
        groups: list[list[nn.Parameter]] = [[self.embed.weight]]
        for layer in range(self.config.num_layers):
            groups.append([p for name, p in self.rnn.named_parameters() if name.endswith(f"_l{layer}")])
        groups.append([p for name, p in self.head.named_parameters() if not (self.config.tie_weights and name == "weight")])
        return groups

    def start_decoding(self, prompt: Tensor) -> tuple[Tensor, Any]:
        logits, state = self(prompt)
        return logits[:, -1, :], state

    def continue_decoding(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        logits, state = self(token.view(1, 1), state)
        return logits[:, -1, :], state
