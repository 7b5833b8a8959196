"""Elman RNN language model (tanh): the simplest recurrent network, and the hardest to train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from studio.core.models.recurrent import RecurrentConfig, RecurrentLM


@dataclass
class RNNConfig(RecurrentConfig):
    arch: ClassVar[str] = "rnn"
    label: ClassVar[str] = "RNN (tanh)"
    gates: ClassVar[int] = 1


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
