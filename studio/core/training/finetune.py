"""What a fine-tuning run inherits from its base, decided in one place for the CLI and the window.

A run with ``finetune.base`` set takes from the base checkpoint:

- the model settings (the architecture and its shape: the weights must fit);
- the tokenizer settings (the vocabulary is the base's; the checkpoint's own tokenizer is used);
- for a task other than ``lm``, the base's data settings (a task brings its own examples; the
  corpus settings only describe where the base came from);
- the base itself, recorded as its absolute folder, so the run resumes from anywhere;
- a name, when none is given: the base run's name without its time stamp, then the task
  (``demo-gpt`` → ``demo-gpt-translate``).

No torch here: the window composes a fine-tuning config as the person fills in the form.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from studio.core.config import RunConfig
from studio.core.data.special_tokens import UNK_ID
from studio.core.data.tokenizers import load_tokenizer
from studio.core.errors import CheckpointError, ConfigError, ConfigIssue
from studio.core.i18n import _
from studio.core.tasks.demo import demo_task_paths
from studio.core.tasks.examples import load_examples
from studio.core.training.run_dir import RunDir, resolve_checkpoint

_STAMP = re.compile(r"^[0-9]{8}-[0-9]{6}-")


def base_name(run: RunDir | None, checkpoint: Path) -> str:
    """The base's name as a person would say it: its run name, without the folder's time stamp."""
    if run is not None:
        name = str(run.read_info().get("name") or run.name)
    else:
        name = checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.name
    return _STAMP.sub("", name) or name


def inherit_base(config: RunConfig) -> RunConfig:
    """``config`` with what it inherits from ``finetune.base`` (see the module docstring)."""
    ft = config.finetune
    if not ft.base:
        return config
    try:
        path, run = resolve_checkpoint(ft.base, ft.base_checkpoint)
    except CheckpointError as e:
        raise ConfigError(ConfigIssue("finetune.base", str(e))) from None
    try:
        base = RunConfig.load(path / "config.toml")
    except ConfigError as e:
        message = _("the base's configuration is invalid: {reason}").format(reason=e)
        raise ConfigError(ConfigIssue("finetune.base", message)) from None
    where = str(run.path if run is not None else Path(path).resolve())
    name = config.run.name or f"{base_name(run, Path(path))}-{config.task.kind}"[-60:]
    data = config.data if config.task.kind == "lm" else base.data
    return config.replace(
        run=dataclasses.replace(config.run, name=name),
        model=base.model,
        tokenizer=base.tokenizer,
        data=data,
        finetune=dataclasses.replace(ft, base=where),
    )


@dataclass(frozen=True)
class Coverage:
    """How much of a task's text the base model's vocabulary can write (or read)."""

    unknown_share: float  # of the tokens, 0..1
    tokens: int
    examples: int
    missing: tuple[str, ...]  # a few characters or words the vocabulary lacks

    def warning(self) -> str:
        """A sentence for the form when the vocabulary misses much of the task, else ''."""
        if self.unknown_share < 0.05:
            return ""
        shown = " ".join(self.missing[:12])
        return _("{share} of the task's tokens are unknown to the base model's vocabulary{example}: it cannot learn to "
                 "write them, and the result will be poor. Choose a base trained on text like the task's.").format(
            share=f"{self.unknown_share:.1%}", example=_(" (for example {chars})").format(chars=shown) if shown else "")


def vocabulary_coverage(config: RunConfig, limit: int = 500) -> Coverage | None:
    """Share of the task's target text (the input text, for classification and extractive QA)
    that the base's tokenizer turns into <unk>, over the first ``limit`` training examples. None
    when there is no base or no task. A Chinese character model asked to translate English writes
    nothing useful: this says so before Start, rather than after a run with BLEU 0."""
    ft, task = config.finetune, config.task
    if not ft.base or task.kind == "lm":
        return None
    path, _run = resolve_checkpoint(ft.base, ft.base_checkpoint)
    tokenizer = load_tokenizer(path / "tokenizer")
    paths = [demo_task_paths(task.dataset)["train"]] if task.dataset else [Path(p) for p in task.paths]
    examples = load_examples(task.kind, paths, task.format, task.fields, limit=limit)
    reads_input = task.kind == "classify" or (task.kind == "qa" and task.qa_mode == "extractive")
    texts = [e.source if reads_input else e.target for e in examples]
    total = unknown = 0
    missing: list[str] = []
    for text in texts:
        ids = tokenizer.encode(text)
        total += len(ids)
        unknown += sum(1 for i in ids if i == UNK_ID)
        if len(missing) < 12 and UNK_ID in ids:
            for piece, token in tokenizer.pieces(text):
                if token == UNK_ID and piece.strip() and piece not in missing:
                    missing.append(piece)
                    if len(missing) >= 12:
                        break
    return Coverage(unknown / total if total else 0.0, total, len(examples), tuple(missing))
