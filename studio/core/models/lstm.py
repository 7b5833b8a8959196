"""LSTM language model: gated memory cells carry information across long spans."""

from __future__ import annotations

from torch import nn

from studio.core.architectures import RecurrentConfig
from studio.core.models.recurrent import RecurrentLM


class LSTMLanguageModel(RecurrentLM):
    def _make_rnn(self, c: RecurrentConfig) -> nn.RNNBase:
        return nn.LSTM(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
