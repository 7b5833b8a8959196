"""Building the network a run trains: a language model, with a task head and adapters if asked."""

from __future__ import annotations

from torch import nn

from studio.core.config import RunConfig
from studio.core.models.base import LanguageModel
from studio.core.models.registry import build_model
from studio.core.tasks.heads import ClassifierModel, SpanQAModel
from studio.core.tasks.lora import LoRALinear, apply_lora, freeze_first_layers, merge_lora


def wants_head(config: RunConfig) -> str:
    if config.task.kind == "classify":
        return "classifier"
    if config.task.kind == "qa" and config.task.qa_mode == "extractive":
        return "span"
    return ""


def wrap_for_task(base: LanguageModel, config: RunConfig, labels: list[str]) -> nn.Module:
    """Add the task head and apply the fine-tuning method (freezing, LoRA) to ``base``."""
    head = wants_head(config)
    model: nn.Module = base
    if head == "classifier":
        model = ClassifierModel(base, max(1, len(labels)))
    elif head == "span":
        model = SpanQAModel(base)
    ft = config.finetune
    if ft.method == "lora":
        apply_lora(base, ft.lora_targets, ft.lora_rank, ft.lora_alpha, ft.lora_dropout)
    elif ft.method == "freeze" and ft.freeze_layers:
        freeze_first_layers(base, base.layer_groups(), ft.freeze_layers)
    return model


def build_task_model(config: RunConfig, vocab_size: int, labels: list[str]) -> nn.Module:
    """The network with the same structure as a saved one, ready for its weights."""
    return wrap_for_task(build_model(config.model, vocab_size), config, labels)


def language_model_of(model: nn.Module) -> LanguageModel:
    """The language model inside a task model, with any adapters merged into it (used when a
    fine-tuned run is itself the base of another)."""
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        merge_lora(model)
    base = getattr(model, "base", model)
    assert isinstance(base, LanguageModel)
    for p in base.parameters():
        p.requires_grad_(True)
    return base


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all, trainable), counting tied tensors once."""
    seen: set[int] = set()
    total = trainable = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable
