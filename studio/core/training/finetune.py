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
from pathlib import Path

from studio.core.config import RunConfig
from studio.core.errors import CheckpointError, ConfigError, ConfigIssue
from studio.core.i18n import _
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
