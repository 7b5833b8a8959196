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

from studio.core.config import RunConfig
from studio.core.errors import StudioError
from studio.core.events import EvalLogged, StepLogged
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
        raise ExportError(f"{target} already exists; choose another name, or replace it (studio export ... --force)")
    if target.exists() and target.is_dir() != (not as_zip):
        raise ExportError(f"{target} already exists and is a {'folder' if target.is_dir() else 'file'}; choose another name")
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
        writer.writerow(["step", "tokens", "time_s", "train_loss", "lr", "grad_norm", "tokens_per_s", "valid_loss", "valid_perplexity", "metrics"])
        for e in run.read_events():
            if isinstance(e, StepLogged):
                writer.writerow([e.step, e.tokens_seen, f"{e.elapsed_s:.3f}", e.loss, e.lr, e.grad_norm, f"{e.tokens_per_s:.1f}", "", "", ""])
            elif isinstance(e, EvalLogged):
                metrics = ";".join(f"{k}={v:.4f}" for k, v in e.metrics)
                writer.writerow([e.step, e.tokens_seen, f"{e.elapsed_s:.3f}", "", "", "", "", e.loss, e.perplexity, metrics])


def _model_card(config: RunConfig, model: nn.Module, step: int, run: RunDir | None, merged: int) -> str:
    total, _ = count_parameters(model)
    data = ", ".join(config.data.paths) or f"built-in dataset {config.data.dataset}"
    task = config.task
    if task.kind != "lm":
        data = ", ".join(task.paths) or f"demo task {task.dataset}"
    results = ""
    if run is not None and (run.path / "results.json").exists():
        results = json.loads((run.path / "results.json").read_text())
        results = "\n".join(f"- {split}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items()) for split, m in results.items())
    elif run is not None:
        info = run.read_info()
        if info.get("best_valid_loss") is not None:
            results = f"- best validation loss {info['best_valid_loss']:.4f}"
    return f"""# {config.run.name or (run.name if run else 'Studio model')}

- Architecture: {config.model.label} (`{config.model.arch}`), {total:,} parameters
- Task: {task.kind}{' (' + task.qa_mode + ')' if task.kind == 'qa' else ''}{', template `' + task.template + '`' if task.template else ''}
- Tokenizer: {config.tokenizer.kind}
- Trained for {step} steps on: {data}
- Fine-tuning: {config.finetune.method}{f' from {config.finetune.base}' if config.finetune.base else ''}{f'; {merged} LoRA adapters merged into the weights' if merged else ''}

## Metrics
{results or '- none recorded'}

## Files
- `model/model.safetensors`: weights (safetensors)
- `model/config.toml`: the full configuration; `model/tokenizer/`: the tokenizer
- `metrics.csv`: training and validation curves

## Reproduce
```
studio train model/config.toml
```
"""
