"""Open a trained model for use: from a run (by folder or name) or a checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from studio.core.config import RunConfig
from studio.core.data.tokenizers import Tokenizer
from studio.core.i18n import N_, _
from studio.core.training.checkpoint import Checkpoint, load_checkpoint
from studio.core.training.run_dir import RunDir, resolve_checkpoint


@dataclass
class LoadedModel:
    model: nn.Module  # the network as trained: a language model, or one with a task head
    tokenizer: Tokenizer
    config: RunConfig
    checkpoint: Checkpoint
    run: RunDir | None

    @property
    def label(self) -> str:
        where = self.run.name if self.run else str(self.checkpoint.directory)
        name = self.checkpoint.directory.name
        # Translators: {run} is a run's name, {checkpoint} the checkpoint ("best", "last", or a folder's name).
        return _("{run} ({checkpoint}, step {step})").format(run=where, checkpoint=_(CHECKPOINT_NAMES[name]) if name in CHECKPOINT_NAMES else name,
                                                            step=self.checkpoint.step)


# Translators: the two checkpoints a run keeps: the one with the best validation loss, the latest.
CHECKPOINT_NAMES = {"best": N_("best"), "last": N_("last")}


def load_model(ref: str | Path, label: str = "auto", device: str | torch.device = "cpu") -> LoadedModel:
    path, run = resolve_checkpoint(ref, label)
    ckpt = load_checkpoint(path)
    model = ckpt.build_model(device)
    model.eval()
    return LoadedModel(model, ckpt.tokenizer, ckpt.config, ckpt, run)
