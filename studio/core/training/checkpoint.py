"""Checkpoints with no pickle anywhere: a checkpoint folder can come from anyone and is safe to open.

Layout of ``<run>/checkpoints/<label>/``::

    model.safetensors           weights (tied tensors stored once)
    training_state.safetensors  optimizer tensors and RNG states      (resumable checkpoints only)
    state.json                  format version, step, counters, optimizer hyper-parameters
    config.toml                 the run configuration
    tokenizer/                  the tokenizer, so the folder stands alone
    commit.json                 written last: the step and every file's size (the commit marker)

Each checkpoint is a committed unit: see ``studio.core.training.checkpoint_commit`` for the
write, fsync, commit-marker and rename protocol, and for the recovery of interrupted saves.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from studio.core.architectures import human_bytes
from studio.core.config import RunConfig
from studio.core.data.tokenizers import Tokenizer, load_tokenizer
from studio.core.errors import CheckpointError, ConfigError
from studio.core.faults import fault_point
from studio.core.fileio import DIR_MODE, atomic_write_text, fsync_dir
from studio.core.i18n import _
from studio.core.tasks.model import build_task_model
from studio.core.training.checkpoint_commit import (
    COMMIT_FILE,
    MODEL_FILE,
    STATE_FILE,
    committed_checkpoint,
    file_sizes,
    fsync_tree,
    read_small_json,
)
from studio.core.training.preflight import available_memory

CHECKPOINT_FORMAT_VERSION = 2  # 2 added commit.json

TRAINING_FILE = "training_state.safetensors"


def save_checkpoint(
    directory: Path,
    *,
    model: nn.Module,
    config: RunConfig,
    tokenizer: Tokenizer,
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    rng: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a committed checkpoint to ``directory`` (see the commit protocol above)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        with _disk_errors_as_os_errors():
            _write_checkpoint_files(work, model, config, tokenizer, state, optimizer, rng)
        fault_point("checkpoint:files-written")
        fsync_tree(work)
        commit = {"format_version": CHECKPOINT_FORMAT_VERSION, "step": int(state.get("step", 0)), "files": file_sizes(work)}
        atomic_write_text(work / COMMIT_FILE, json.dumps(commit, indent=1))
        fault_point("checkpoint:committed")
        old = directory.with_name(f".{directory.name}-old")
        if old.exists():
            shutil.rmtree(old)
        if directory.exists():
            os.replace(directory, old)
        fault_point("checkpoint:between-renames")
        os.replace(work, directory)
        fsync_dir(directory.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return directory


def _write_checkpoint_files(work: Path, model: nn.Module, config: RunConfig, tokenizer: Tokenizer, state: dict[str, Any],
                            optimizer: torch.optim.Optimizer | None, rng: dict[str, torch.Tensor] | None) -> None:
    os.chmod(work, DIR_MODE)  # mkdtemp's folders are private; a checkpoint is not
    save_model(model, str(work / MODEL_FILE), metadata={"format": "studio", "arch": config.model.arch})
    full_state = {"format_version": CHECKPOINT_FORMAT_VERSION, "arch": config.model.arch, "vocab_size": tokenizer.vocab_size, **state}
    if optimizer is not None:
        tensors, extra = _flatten_optimizer(optimizer.state_dict())
        for name, t in (rng or {}).items():
            tensors[f"rng/{name}"] = t.detach().cpu().contiguous()
        save_file(tensors, str(work / TRAINING_FILE))
        full_state["optimizer"] = extra
        full_state["resumable"] = True
    else:
        full_state["resumable"] = False
    (work / STATE_FILE).write_text(json.dumps(full_state, indent=1), encoding="utf-8")
    config.save(work / "config.toml")
    tokenizer.save(work / "tokenizer")


@contextlib.contextmanager
def _disk_errors_as_os_errors() -> Iterator[None]:
    """safetensors reports a full disk as its own SafetensorError ("No space left on device (os
    error 28)"); as an OSError it gets the same plain message and handling as any other full disk.
    A snapshot's save ran into it when another program filled the disk mid-run."""
    try:
        yield
    except SafetensorError as e:
        text = str(e)
        for code in (errno.ENOSPC, errno.EDQUOT):
            if f"os error {code})" in text or os.strerror(code) in text:
                raise OSError(code, os.strerror(code)) from e
        raise


@dataclass
class Checkpoint:
    directory: Path
    config: RunConfig
    tokenizer: Tokenizer
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))

    @property
    def resumable(self) -> bool:
        return bool(self.state.get("resumable")) and (self.directory / TRAINING_FILE).exists()

    @property
    def labels(self) -> list[str]:
        return [str(x) for x in self.state.get("labels", [])]

    @property
    def max_target_tokens(self) -> int:
        """The target length the task was trained with (resolved when the config said 0, "auto")."""
        return int(self.state.get("max_target_tokens") or self.config.task.max_target_tokens or 64)

    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """The saved network: its language model, plus the task head and adapters it was trained with."""
        self.check_size(device)
        model = build_task_model(self.config, int(self.state["vocab_size"]), self.labels)
        self.load_weights(model)
        return model.to(device)

    def check_size(self, device: torch.device | str = "cpu") -> None:
        """Before allocating: the config must describe a model the weights file can actually hold
        (a config or state.json from a stranger could claim billions of parameters), and that
        model must fit in the memory available."""
        vocab = int(self.state["vocab_size"])
        declared = 4 * self.config.model.param_count(vocab)
        path = self.directory / MODEL_FILE
        try:
            size = path.stat().st_size
        except OSError:
            raise CheckpointError(_("{path} is missing").format(path=path)) from None
        if declared > size + (1 << 20):
            # Translators: {model} is an architecture's name (GPT-style decoder), {file} a file's name.
            raise CheckpointError(
                _("{folder} describes a {model} of {declared} "
                  "but {file} holds only {size}: the checkpoint is damaged or was edited").format(
                    folder=self.directory, model=_(self.config.model.label), declared=human_bytes(declared),
                    file=MODEL_FILE, size=human_bytes(size),
                )
            )
        dev = torch.device(device)
        free = available_memory(dev.type, dev.index)
        if free is not None and size > free:
            message = _("loading {folder} needs about {size} and only {free} is available")
            raise CheckpointError(message.format(folder=self.directory, size=human_bytes(size), free=human_bytes(free)))

    def load_weights(self, model: nn.Module) -> None:
        path = self.directory / MODEL_FILE
        try:
            missing, unexpected = load_model(model, str(path), strict=False, device=str(next(model.parameters()).device))
        except (SafetensorError, OSError, RuntimeError) as e:
            raise CheckpointError(_("{path} cannot be read as weights for this model: {reason}").format(path=path, reason=e)) from None
        if missing or unexpected:
            # Translators: {model} is an architecture's name; {missing} and {unexpected} list weight names.
            raise CheckpointError(
                _("{path} does not fit a {model} with this configuration "
                  "(missing {missing}, unexpected {unexpected})").format(
                    path=path, model=_(self.config.model.label), missing=sorted(missing)[:3], unexpected=sorted(unexpected)[:3]
                )
            )

    def load_training_state(self, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """Restore the optimizer in place; return the saved RNG states."""
        path = self.directory / TRAINING_FILE
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(_("{path} cannot be read: {reason}").format(path=path, reason=e)) from None
        rng = {k.removeprefix("rng/"): v for k, v in tensors.items() if k.startswith("rng/")}
        opt_tensors = {k: v for k, v in tensors.items() if not k.startswith("rng/")}
        try:
            optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, self.state["optimizer"]))
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise CheckpointError(_("{path}: optimizer state does not match this model ({reason})").format(path=path, reason=e)) from None
        return rng


def load_checkpoint(directory: Path) -> Checkpoint:
    directory = Path(directory)
    found = committed_checkpoint(directory)
    if found is None:
        if (directory / STATE_FILE).exists() or (directory / COMMIT_FILE).exists():
            raise CheckpointError(_("{folder} is incomplete or damaged: its files do not match its commit record").format(folder=directory))
        # Translators: {file} is a file's name (state.json).
        raise CheckpointError(_("{folder} is not a checkpoint ({file} is missing)").format(folder=directory, file=STATE_FILE))
    directory = found
    state_path = directory / STATE_FILE
    state = read_small_json(state_path)
    if not isinstance(state, dict):
        raise CheckpointError(_("{path} is damaged: not a JSON object").format(path=state_path))
    version = state.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(_("{path} has no format version").format(path=state_path))
    if version > CHECKPOINT_FORMAT_VERSION:
        message = _("{folder} was written by a newer Studio (checkpoint format {version}; this one reads up to {supported})")
        raise CheckpointError(message.format(folder=directory, version=version, supported=CHECKPOINT_FORMAT_VERSION))
    try:
        config = RunConfig.load(directory / "config.toml")
    except ConfigError as e:
        raise CheckpointError(_("{folder}: its configuration is invalid: {reason}").format(folder=directory, reason=e)) from None
    tokenizer = load_tokenizer(directory / "tokenizer")
    vocab = state.get("vocab_size")
    if not isinstance(vocab, int) or vocab != tokenizer.vocab_size:
        raise CheckpointError(
            _("{path} claims a vocabulary of {claimed} entries but its tokenizer has {entries:,}; "
              "the checkpoint is damaged or was edited").format(path=state_path, claimed=repr(vocab), entries=tokenizer.vocab_size)
        )
    return Checkpoint(directory, config, tokenizer, state)


# ---- optimizer state <-> (tensors, JSON) ------------------------------------------------------


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, slots in sd["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "plain_state": plain}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split("/", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, slots in extra.get("plain_state", {}).items():
        state.setdefault(int(idx), {}).update(slots)
    groups = []
    for g in extra["param_groups"]:
        g = dict(g)
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}
