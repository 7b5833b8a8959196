"""LSTM language model: gated memory cells carry information across long spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from studio.core.models.recurrent import RecurrentConfig, RecurrentLM


@dataclass
class LSTMConfig(RecurrentConfig):
    arch: ClassVar[str] = "lstm"
    label: ClassVar[str] = "LSTM"
    gates: ClassVar[int] = 4


class LSTMLanguageModel(RecurrentLM):
    def _make_rnn(self, c: RecurrentConfig) -> nn.RNNBase:
        return nn.LSTM(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
