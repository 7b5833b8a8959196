"""What the one training loop trains on: a workload supplies data, loss and evaluation.

``Trainer.fit`` owns everything every run shares (device, optimizer, schedule, pause/stop,
checkpoints, events); a workload owns what differs between pre-training a language model and
fine-tuning it for a task:

- ``LanguageModelWorkload`` (``lm_workload``): windows from the token cache; validation loss and a
  text sample.
- ``TaskWorkload`` (``task_workload``): labelled examples in padded batches; validation loss plus
  the task's metric (accuracy, BLEU, ROUGE, SQuAD F1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from studio.core.config import RunConfig
from studio.core.data.tokenizers import Tokenizer
from studio.core.events import Event

Batch = dict[str, torch.Tensor]
Emit = Callable[[Event], None]


@dataclass
class Evaluation:
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    sample: str = ""


class Workload:
    """The interface ``Trainer.fit`` drives. Batches are built on the CPU from seeded generators
    whose states go into checkpoints, so resuming is exact."""

    tokenizer: Tokenizer

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def total_steps(self, config: RunConfig, world: int) -> int:
        raise NotImplementedError

    def next_batch(self) -> Batch:
        raise NotImplementedError

    def batch_tokens(self, batch: Batch) -> int:
        return int(next(iter(batch.values())).numel())

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, device: torch.device, autocast: Any, sample: bool, step: int) -> Evaluation | None:
        raise NotImplementedError

    def final_results(self, model: nn.Module, device: torch.device, emit: Emit) -> dict[str, dict[str, float]]:
        """Metrics on the whole validation and test splits after training (tasks only)."""
        return {}

    def rng_states(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_rng_states(self, states: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def bits(self, loss: float) -> tuple[float | None, float | None]:
        """A validation loss as (bits per character, bits per byte); None where it means neither
        (a task's loss over its targets)."""
        return None, None

    def checkpoint_extra(self) -> dict[str, Any]:
        """Facts a checkpoint needs to rebuild the model (e.g. the label names)."""
        return {}
