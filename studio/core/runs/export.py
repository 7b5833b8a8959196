"""Exporting a run's model: a self-contained folder (or zip) that Studio, or anyone with
safetensors, can load, with a model card and the metrics as CSV."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from studio.core.callbacks import split_name
from studio.core.config import RunConfig
from studio.core.errors import StudioError
from studio.core.events import EvalLogged, StepLogged
from studio.core.i18n import _
from studio.core.tasks.lora import merge_lora
from studio.core.tasks.model import count_parameters
from studio.core.training.checkpoint import load_checkpoint, save_checkpoint
from studio.core.training.run_dir import RunDir, resolve_checkpoint


def export_target(out: Path, as_zip: bool) -> Path:
    """Where an export lands: ``out`` itself, or with ``as_zip`` the archive ``out`` (if it ends in
    .zip) or ``out`` + ".zip" (so ``my.model`` becomes ``my.model.zip``, not ``my.zip``)."""
    out = Path(out).expanduser()
    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    return out


def export_run(ref: str | Path, out: Path, label: str = "auto", merge_lora: bool = False, as_zip: bool = False,
               overwrite: bool = False) -> Path:
    """Write the run's model to ``out`` (a folder, or a zip with ``as_zip``). An existing target is
    refused unless ``overwrite``; it is replaced only once the new export is complete."""
    target = export_target(out, as_zip)
    if target.exists() and not overwrite:
        # Translators: "studio export ... --force" is a command, kept as is.
        raise ExportError(_("{target} already exists; choose another name, or replace it (studio export ... --force)").format(target=target))
    if target.exists() and target.is_dir() != (not as_zip):
        if target.is_dir():
            raise ExportError(_("{target} already exists and is a folder; choose another name").format(target=target))
        raise ExportError(_("{target} already exists and is a file; choose another name").format(target=target))
    target.parent.mkdir(parents=True, exist_ok=True)
    path, run = resolve_checkpoint(ref, label)
    ckpt = load_checkpoint(path)
    model = ckpt.build_model("cpu")
    config = ckpt.config
    merged = 0
    if merge_lora and config.finetune.method == "lora":
        merged = _merge(model)
        config = config.replace(finetune=dataclasses.replace(config.finetune, method="full"))
    # Built beside the target (same disk, so the final rename is atomic), then swapped in.
    work = Path(tempfile.mkdtemp(prefix=".studio-export-", dir=target.parent))
    try:
        name = target.stem if as_zip else target.name
        folder = work / name
        state = {k: v for k, v in ckpt.state.items() if k in ("step", "tokens_seen", "elapsed_s", "best_loss", "best_step", "labels")}
        save_checkpoint(folder / "model", model=model, config=config, tokenizer=ckpt.tokenizer, state=state)
        if run is not None:
            _metrics_csv(run, folder / "metrics.csv")
        (folder / "README.md").write_text(_model_card(config, model, ckpt.step, run, merged), encoding="utf-8")
        built = Path(shutil.make_archive(str(work / name), "zip", root_dir=work, base_dir=name)) if as_zip else folder
        if target.is_dir():
            old = work / ".replaced"
            os.replace(target, old)
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


class ExportError(StudioError):
    """The export cannot be written where asked."""


def _merge(model: nn.Module) -> int:
    return merge_lora(model)


def _metrics_csv(run: RunDir, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "tokens", "time_s", "train_loss", "lr", "grad_norm", "tokens_per_s", "valid_loss", "valid_perplexity", "metrics",
                         "valid_bits_per_char", "valid_bits_per_byte"])
        for e in run.read_events():
            if isinstance(e, StepLogged):
                writer.writerow([e.step, e.tokens_seen, f"{e.elapsed_s:.3f}", e.loss, e.lr, e.grad_norm, f"{e.tokens_per_s:.1f}", "", "", "", "", ""])
            elif isinstance(e, EvalLogged):
                metrics = ";".join(f"{k}={v:.4f}" for k, v in e.metrics)
                bits = ["" if b is None else f"{b:.4f}" for b in (e.bits_per_char, e.bits_per_byte)]
                writer.writerow([e.step, e.tokens_seen, f"{e.elapsed_s:.3f}", "", "", "", "", e.loss, e.perplexity, metrics, *bits])


def _model_card(config: RunConfig, model: nn.Module, step: int, run: RunDir | None, merged: int) -> str:
    """The export's README.md, in the current language (Markdown: keep the "- " and "## " marks)."""
    total, _trainable = count_parameters(model)
    # Translators: {name} is a built-in dataset's name (tinyshakespeare).
    data = ", ".join(config.data.paths) or _("built-in dataset {name}").format(name=config.data.dataset)
    task = config.task
    if task.kind != "lm":
        # Translators: {name} is a demo task's name (demo-translate).
        data = ", ".join(task.paths) or _("demo task {name}").format(name=task.dataset)
    results = ""
    if run is not None and (run.path / "results.json").exists():
        scores = json.loads((run.path / "results.json").read_text())
        results = "\n".join(f"- {split_name(split)}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()) for split, m in scores.items())
    elif run is not None:
        info = run.read_info()
        if info.get("best_valid_loss") is not None:
            results = _("- best validation loss {loss:.4f}").format(loss=info["best_valid_loss"])
            if info.get("best_valid_bits_per_char") is not None and info.get("best_valid_bits_per_byte") is not None:
                # Translators: a line of the model card (Markdown), after the best validation loss: the same loss
                # over the text's characters and UTF-8 bytes, which makes runs with different tokenizers comparable.
                results += "\n" + _("- {bpc:.3f} bits per character, {bpb:.3f} bits per byte").format(
                    bpc=info["best_valid_bits_per_char"], bpb=info["best_valid_bits_per_byte"]
                )
    task_text = task.kind + (f" ({task.qa_mode})" if task.kind == "qa" else "")
    if task.template:
        # Translators: put after the task's kind in the model card; {template} is the prompt template, kept as is.
        task_text += _(", template `{template}`").format(template=task.template)
    finetune: str = config.finetune.method
    if config.finetune.base:
        # Translators: put after the fine-tuning method (full, freeze, lora); {base} is the base run.
        finetune += _(" from {base}").format(base=config.finetune.base)
    if merged:
        finetune += _("; {count} LoRA adapters merged into the weights").format(count=merged)
    title = config.run.name or (run.name if run else _("Studio model"))
    lines = [
        f"# {title}",
        "",
        # Translators: a line of the exported model card (Markdown); {label} is the architecture's name,
        # {arch} its short name, kept as is.
        _("- Architecture: {label} (`{arch}`), {parameters:,} parameters").format(
            label=_(config.model.label), arch=config.model.arch, parameters=total
        ),
        # Translators: {task} is the task's kind as the setting writes it (lm, classify, translate, ...).
        _("- Task: {task}").format(task=task_text),
        # Translators: {kind} is the tokenizer's kind (char, word, bpe), kept as is.
        _("- Tokenizer: {kind}").format(kind=config.tokenizer.kind),
        # Translators: {data} lists the training files or names the built-in data.
        _("- Trained for {steps} steps on: {data}").format(steps=step, data=data),
        # Translators: {method} is the fine-tuning method (full, freeze, lora) and where it started from.
        _("- Fine-tuning: {method}").format(method=finetune),
        "",
        _("## Metrics"),
        results or _("- none recorded"),
        "",
        _("## Files"),
        # Translators: the file and folder names in backquotes stay as they are.
        _("- `model/model.safetensors`: weights (safetensors)"),
        _("- `model/config.toml`: the full configuration; `model/tokenizer/`: the tokenizer"),
        _("- `metrics.csv`: training and validation curves"),
        "",
        _("## Reproduce"),
        "```",
        "studio train model/config.toml",
        "```",
        "",
    ]
    return "\n".join(lines)
