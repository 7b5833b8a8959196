"""Scoring a trained model on its run's validation and test splits: loss and perplexity for a
language model, the task's metric (accuracy, BLEU, ROUGE, SQuAD EM/F1) for a fine-tuned one.
``studio eval`` prints what this yields."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch

from studio.core.bits import bits_per_unit, units_per_token
from studio.core.callbacks import describe_bits, split_name
from studio.core.data.prepare import prepare_corpus
from studio.core.i18n import _
from studio.core.inference.loading import LoadedModel
from studio.core.models.base import LanguageModel
from studio.core.tasks.metrics import task_metrics
from studio.core.training.batches import sequential_windows
from studio.core.training.lm_workload import evaluate_loss
from studio.core.training.task_workload import TaskWorkload


@dataclass(frozen=True)
class SplitScore:
    split: str
    size: int  # examples (tasks) or tokens (language models); 0: the split is empty
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # loss and perplexity, or the task's

    def describe(self) -> str:
        split = split_name(self.split)
        if not self.size:
            if "loss" in self.metrics:
                return _("{split}: empty split").format(split=split)
            return _("{split}: no examples").format(split=split)
        if "loss" in self.metrics:
            bits = describe_bits(self.metrics.get("bits_per_char"), self.metrics.get("bits_per_byte"))
            # Translators: {split} is train, valid or test; {bits} is ", 1.842 bits/char, 1.790 bits/byte" or nothing.
            return _("{split}: loss {loss:.4f}  perplexity {perplexity:.2f}{bits}  ({tokens:,} tokens, {seconds:.1f} s)").format(
                split=split, loss=self.metrics["loss"], perplexity=self.metrics["perplexity"], bits=bits, tokens=self.size,
                seconds=self.seconds
            )
        shown = "  ".join(f"{k} {v:.2f}" for k, v in self.metrics.items())
        # Translators: {split} is valid or test; {metrics} the task's scores ("accuracy 93.50  f1 91.20").
        return _("{split}: {metrics}  ({examples:,} examples, {seconds:.1f} s)").format(
            split=split, metrics=shown, examples=self.size, seconds=self.seconds
        )


def evaluate(loaded: LoadedModel, splits: Iterable[str] = ("valid", "test")) -> Iterator[SplitScore]:
    """One score per split, as each is done."""
    cfg = loaded.config
    device = next(loaded.model.parameters()).device
    if cfg.task.kind != "lm":
        base = getattr(loaded.model, "base", loaded.model)
        assert isinstance(base, LanguageModel)
        workload = TaskWorkload(cfg, lambda e: None, base, loaded.tokenizer, loaded.checkpoint.labels)
        for split in splits:
            examples = workload.valid_examples if split == "valid" else workload.test_examples
            if not examples:
                yield SplitScore(split, 0, 0.0)
                continue
            t0 = time.perf_counter()
            metrics = task_metrics(cfg.task.kind, workload.predict(loaded.model, examples), [e.all_targets for e in examples])
            yield SplitScore(split, len(examples), time.perf_counter() - t0, metrics)
        return
    prepared = prepare_corpus(cfg.data, cfg.tokenizer, tokenizer=loaded.tokenizer)
    assert isinstance(loaded.model, LanguageModel)
    for split in splits:
        tokens = prepared.tokens(split)
        windows = sequential_windows(tokens, cfg.model.context_length + 1)
        if len(windows) == 0:
            yield SplitScore(split, 0, 0.0, {"loss": math.nan})
            continue
        t0 = time.perf_counter()
        loss = evaluate_loss(loaded.model, windows, cfg.train.batch_size * 4, torch.device(device), seed=cfg.train.seed + 2)
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 50))}
        st = prepared.stats.splits[split]
        if cfg.model.objective != "masked":  # (a masked model's loss covers the masked tokens only)
            for name, units in (("bits_per_char", st.characters), ("bits_per_byte", st.bytes)):
                value = bits_per_unit(loss, units_per_token(units, st.tokens))
                if value is not None:
                    metrics[name] = value
        yield SplitScore(split, len(tokens), time.perf_counter() - t0, metrics)
