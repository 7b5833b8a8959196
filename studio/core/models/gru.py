"""GRU language model: an LSTM's gating with fewer parameters and no separate cell state."""

from __future__ import annotations

from torch import nn

from studio.core.architectures import RecurrentConfig
from studio.core.models.recurrent import RecurrentLM


class GRULanguageModel(RecurrentLM):
    def _make_rnn(self, c: RecurrentConfig) -> nn.RNNBase:
        return nn.GRU(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
