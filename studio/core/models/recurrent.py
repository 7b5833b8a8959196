"""The shared body of the RNN, LSTM and GRU language models.

Each of ``rnn.py``, ``lstm.py`` and ``gru.py`` names its cell and gate count; everything else
(embedding, stacked recurrent layers, dropout, optional weight tying, decoding with a carried
hidden state) is the same and lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from studio.core.config import ModelConfig, setting
from studio.core.errors import ConfigIssue
from studio.core.models.base import LanguageModel, causal_lm_loss

_RECURRENT_PRESETS = {
    "tiny": {"embedding_dim": 64, "hidden_size": 128, "num_layers": 1, "context_length": 64},
    "small": {"embedding_dim": 224, "hidden_size": 224, "num_layers": 2, "context_length": 64},
    "medium": {"embedding_dim": 512, "hidden_size": 512, "num_layers": 3, "context_length": 128},
}


@dataclass
class RecurrentConfig(ModelConfig):
    gates: ClassVar[int] = 1
    presets: ClassVar[dict[str, dict[str, Any]]] = _RECURRENT_PRESETS

    embedding_dim: int = setting(224, label="Embedding size", help="Width of each token's vector.", min=1, max=65536)
    hidden_size: int = setting(224, label="Hidden size", help="Width of the recurrent state.", min=1, max=65536)
    num_layers: int = setting(2, label="Layers", help="Stacked recurrent layers.", min=1, max=64)
    tie_weights: bool = setting(
        True, label="Tie weights", help="Share the input embedding with the output layer (needs embedding size = hidden size)."
    )

    def check(self) -> list[ConfigIssue]:
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            return [
                ConfigIssue(
                    "model.tie_weights",
                    f"model.tie_weights=true needs model.embedding_dim ({self.embedding_dim}) "
                    f"= model.hidden_size ({self.hidden_size})",
                )
            ]
        return []

    def param_count(self, vocab_size: int) -> int:
        g, h = self.gates, self.hidden_size
        total = vocab_size * self.embedding_dim
        for layer in range(self.num_layers):
            inp = self.embedding_dim if layer == 0 else h
            total += g * h * (inp + h) + 2 * g * h
        total += vocab_size  # output bias
        if not self.tie_weights:
            total += vocab_size * h
        return total

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        bt = batch_size * seq_len
        per_layer = bt * self.hidden_size * (2 * self.gates + 2)
        logits = 3 * bt * vocab_size  # logits, their softmax and its gradient
        return 4 * (bt * self.embedding_dim + self.num_layers * per_layer + logits)


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
