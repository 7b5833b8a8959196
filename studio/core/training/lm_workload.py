"""Pre-training a language model: windows drawn from the token cache, validation loss on fixed
windows of the held-out split, and a text sample at each evaluation."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from studio.core.bits import bits_per_unit, units_per_token
from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.data.prepare import PreparedCorpus, prepare_corpus
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import generate_text
from studio.core.events import DataProgress, DataReady, LogMessage
from studio.core.i18n import _
from studio.core.models.base import LanguageModel
from studio.core.models.registry import build_model
from studio.core.training.batches import Windows, WindowSampler, eval_windows
from studio.core.training.workload import Batch, Emit, Evaluation, Workload


class LanguageModelWorkload(Workload):
    """Next-token (or masked, or continue-the-window) prediction on the token cache of [data]."""

    def __init__(self, config: RunConfig, emit: Emit, control: RunControl, tokenizer: Tokenizer | None,
                 base_model: LanguageModel | None = None, rank: int = 0):
        self.config = config
        self.emit = emit
        self.base_model = base_model
        emit(LogMessage("info", _("preparing data")))
        prepared = prepare_corpus(
            config.data, config.tokenizer, control=control, tokenizer=tokenizer,
            progress=lambda stage, done, total: emit(DataProgress(stage, done, total)),
        )
        self.prepared: PreparedCorpus = prepared
        self.tokenizer = prepared.tokenizer
        st = prepared.stats.splits
        emit(DataReady(
            cache_hit=prepared.cache_hit, seconds=prepared.seconds, vocab_size=prepared.tokenizer.vocab_size,
            tokenizer=prepared.tokenizer.describe(), train_tokens=st["train"].tokens, valid_tokens=st["valid"].tokens,
            test_tokens=st["test"].tokens, encodings=tuple(f["encoding"] for f in prepared.stats.files),
            valid_characters=st["valid"].characters, valid_bytes=st["valid"].bytes,
        ))
        # Counted exactly when the cache was built, so bits per character are exact, not estimated.
        # A masked model's loss covers only the masked tokens, a guess of a different kind.
        counts = config.model.objective != "masked"
        self.chars_per_token = units_per_token(st["valid"].characters, st["valid"].tokens) if counts else None
        self.bytes_per_token = units_per_token(st["valid"].bytes, st["valid"].tokens) if counts else None
        window = config.model.context_length + 1
        self.train_tokens = prepared.tokens("train")
        self.sampler = WindowSampler(self.train_tokens, window, config.train.batch_size, config.train.seed + 1000 * rank)
        self.mask_generator = torch.Generator().manual_seed(config.train.seed + 1)
        valid = prepared.tokens("valid")
        self.eval_windows = eval_windows(valid, window, config.train.eval_batches * config.train.batch_size) if len(valid) else None
        if self.eval_windows is None:
            emit(LogMessage("warning", _("there is no validation split: no validation loss, best checkpoint or early stopping")))

    def build_model(self) -> nn.Module:
        if self.base_model is not None:
            return self.base_model
        return build_model(self.config.model, self.tokenizer.vocab_size)

    def total_steps(self, config: RunConfig, world: int) -> int:
        if config.train.epochs > 0:
            per_step = config.train.batch_size * config.train.grad_accum_steps * config.model.context_length * world
            return max(1, math.ceil(config.train.epochs * len(self.train_tokens) / per_step))
        return config.train.steps

    def next_batch(self) -> Batch:
        return {"windows": self.sampler.sample()}

    def batch_tokens(self, batch: Batch) -> int:
        w = batch["windows"]
        return int(w.size(0) * (w.size(1) - 1))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model.training_loss(batch["windows"], self.mask_generator)  # type: ignore[operator]

    def evaluate(self, model: nn.Module, device: torch.device, autocast: Any, sample: bool, step: int) -> Evaluation | None:
        if self.eval_windows is None:
            return None
        cfg = self.config
        loss = evaluate_loss(model, self.eval_windows, cfg.train.batch_size, device, autocast, seed=cfg.train.seed + 2)  # type: ignore[arg-type]
        text = ""
        if sample and cfg.train.sample_tokens and cfg.model.objective != "masked":
            settings = DecodingSettings(max_new_tokens=cfg.train.sample_tokens, temperature=0.8, seed=cfg.train.seed + step)
            text = generate_text(model, self.tokenizer, cfg.train.sample_prompt, settings)  # type: ignore[arg-type]
        return Evaluation(loss, {}, text)

    def bits(self, loss: float) -> tuple[float | None, float | None]:
        return bits_per_unit(loss, self.chars_per_token), bits_per_unit(loss, self.bytes_per_token)

    def rng_states(self) -> dict[str, torch.Tensor]:
        return {"sampler": self.sampler.generator.get_state(), "mask": self.mask_generator.get_state()}

    def load_rng_states(self, states: dict[str, torch.Tensor]) -> None:
        self.sampler.generator.set_state(states["sampler"])
        self.mask_generator.set_state(states["mask"])


def evaluate_loss(model: LanguageModel, windows: Windows | torch.Tensor, batch_size: int, device: torch.device, autocast: Any = None, seed: int = 0) -> float:
    """Mean loss over ``windows`` in eval mode. Masked-LM masks come from a fixed seed, so repeated
    evaluations of the same model agree exactly. ``Windows`` are read one batch at a time."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    if isinstance(windows, Windows):
        batches: Iterable[torch.Tensor] = windows.batches(batch_size)
    else:
        batches = (windows[i : i + batch_size] for i in range(0, len(windows), batch_size))
    try:
        with torch.no_grad(), (autocast or contextlib.nullcontext()):
            for cpu_batch in batches:
                batch = cpu_batch.to(device)
                total += float(model.training_loss(batch, generator)) * len(batch)
                count += len(batch)
    finally:
        model.train(was_training)
    return total / max(1, count)
