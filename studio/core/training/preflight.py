"""Checks made before anything heavy: will this run fit in memory and on the disk, can its folder
be written, and is there data in every split it needs?

The same verdicts serve three places: the trainer refuses to start a run that cannot succeed
(before allocating the model, so a 50 GiB model is an explanation, not an allocator traceback),
the window shows them beside Start, and a running trainer checks the disk again before each save
so a filling disk stops the run cleanly while its last checkpoint is still whole.

Estimates are estimates: memory is refused only when the estimate exceeds what the operating
system reports as available (psutil), and warned about from 80% of it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
import torch

from studio.core.architectures import MemoryEstimate, human_bytes
from studio.core.errors import ResourceError
from studio.core.fileio import check_writable, describe_os_error
from studio.core.i18n import _

WARN_SHARE = 0.8
DISK_MARGIN = 8 << 20  # room for logs, metrics and the run index on top of the checkpoints


@dataclass(frozen=True)
class Verdict:
    level: Literal["ok", "warning", "error"]
    topic: Literal["memory", "disk", "folder", "data"]
    message: str  # in the current language


def available_memory(device_type: str = "cpu", index: int | None = None) -> int | None:
    """Bytes the device can still give, or None when it cannot tell."""
    if device_type == "cuda":
        free, _total = torch.cuda.mem_get_info(index or 0)
        return int(free)
    if device_type == "cpu":
        return int(psutil.virtual_memory().available)
    return None


def memory_verdict(estimate: MemoryEstimate, device_type: str = "cpu", index: int | None = None,
                   what: str | None = None) -> Verdict:
    """``what`` is the work being checked, already translated (default: "training this model")."""
    free = available_memory(device_type, index)
    need = estimate.total_bytes
    if what is None:
        # Translators: the work being checked, at the start of "training this model needs about 1.2 GiB".
        what = _("training this model")
    gpu = device_type == "cuda"
    if free is None:
        # Translators: {what} is the work being checked ("training this model").
        return Verdict("ok", "memory", _("{what} needs about {need}").format(what=what, need=human_bytes(need)))
    if gpu:
        # Translators: {what} is the work being checked ("training this model"); {estimate} its breakdown.
        detail = _("{what} needs about {need} ({estimate}), and {free} of GPU memory is available")
    else:
        # Translators: {what} is the work being checked ("training this model"); {estimate} its breakdown.
        detail = _("{what} needs about {need} ({estimate}), and {free} of memory is available")
    detail = detail.format(what=what, need=human_bytes(need), estimate=estimate.breakdown(), free=human_bytes(free))
    # Translators: the model.* and train.* words are setting names, kept as is.
    advice = _("Lower model width or depth (model.d_model, model.n_layers, model.hidden_size), train.batch_size "
               "(raise train.grad_accum_steps to keep the effective batch) or model.context_length")
    if need > free:
        # Translators: {detail} says what is needed and what is available; {advice} what to lower.
        return Verdict("error", "memory", _("{detail}. {advice}").format(detail=detail, advice=advice))
    if need > WARN_SHARE * free:
        return Verdict("warning", "memory", _("{detail}: close to the limit").format(detail=detail))
    if gpu:
        message = _("about {need} of {free} GPU memory available")
    else:
        message = _("about {need} of {free} memory available")
    return Verdict("ok", "memory", message.format(need=human_bytes(need), free=human_bytes(free)))


def checkpoint_bytes(params: int, resumable: bool = True) -> int:
    """fp32 weights, plus (for ``last``) gradients' worth of optimizer moments: Adam keeps two."""
    return 4 * params * (3 if resumable else 1)


def disk_needed(params: int) -> int:
    # last (weights + optimizer) and best (weights), plus a second last while a save swaps in.
    return 2 * checkpoint_bytes(params) + checkpoint_bytes(params, resumable=False) + DISK_MARGIN


def free_disk(path: Path) -> int:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_verdict(params: int, folder: Path) -> Verdict:
    need = disk_needed(params)
    free = free_disk(folder)
    detail = _("checkpoints need about {need} and {free} is free on the disk holding {folder}").format(
        need=human_bytes(need), free=human_bytes(free), folder=folder
    )
    if need > free:
        # Translators: {detail} says what the checkpoints need and what is free; --out is an option, kept as is.
        return Verdict("error", "disk", _("{detail}. Free some space, or train into another folder (--out)").format(detail=detail))
    if 2 * need > free:
        return Verdict("warning", "disk", _("{detail}: little room to spare").format(detail=detail))
    return Verdict("ok", "disk", _("{free} free for checkpoints of about {need}").format(free=human_bytes(free), need=human_bytes(need)))


def folder_verdict(folder: Path) -> Verdict:
    try:
        check_writable(folder)
    except OSError as e:
        # Translators: what was being done, put before a folder's name ("creating a file in /data/runs").
        return Verdict("error", "folder", describe_os_error(e, _("creating a file in")))
    return Verdict("ok", "folder", _("{folder} is writable").format(folder=folder))


def raise_for(verdicts: list[Verdict]) -> None:
    errors = [v.message for v in verdicts if v.level == "error"]
    if errors:
        raise ResourceError("; ".join(errors))


def check_save_room(folder: Path, params: int, resumable: bool) -> None:
    """Before a save: refuse while the previous checkpoint is still whole, rather than fill the disk."""
    need = checkpoint_bytes(params, resumable) + DISK_MARGIN // 8
    free = free_disk(folder)
    if free < need:
        raise ResourceError(
            _("the disk is full: {free} free on the disk holding {folder}, and a checkpoint needs about {need}; "
              "training stopped and the last saved checkpoint was kept. Free some space and resume").format(
                free=human_bytes(free), folder=folder, need=human_bytes(need)
            )
        )
