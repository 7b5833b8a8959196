"""Elman RNN language model (tanh): the simplest recurrent network, and the hardest to train."""

from __future__ import annotations

from torch import nn

from studio.core.architectures import RecurrentConfig
from studio.core.models.recurrent import RecurrentLM


class RNNLanguageModel(RecurrentLM):
    def _make_rnn(self, c: RecurrentConfig) -> nn.RNNBase:
        return nn.RNN(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            nonlinearity="tanh",
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
