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

WARN_SHARE = 0.8
DISK_MARGIN = 8 << 20  # room for logs, metrics and the run index on top of the checkpoints


@dataclass(frozen=True)
class Verdict:
    level: Literal["ok", "warning", "error"]
    topic: Literal["memory", "disk", "folder", "data"]
    message: str


def available_memory(device_type: str = "cpu", index: int | None = None) -> int | None:
    """Bytes the device can still give, or None when it cannot tell."""
    if device_type == "cuda":
        free, _total = torch.cuda.mem_get_info(index or 0)
        return int(free)
    if device_type == "cpu":
        return int(psutil.virtual_memory().available)
    return None


def memory_verdict(estimate: MemoryEstimate, device_type: str = "cpu", index: int | None = None,
                   what: str = "training this model") -> Verdict:
    free = available_memory(device_type, index)
    need = estimate.total_bytes
    where = "GPU memory" if device_type == "cuda" else "memory"
    if free is None:
        return Verdict("ok", "memory", f"{what} needs about {human_bytes(need)}")
    detail = (f"{what} needs about {human_bytes(need)} ({estimate.describe()}), and {human_bytes(free)} of "
              f"{where} is available")
    advice = ("Lower model width or depth (model.d_model, model.n_layers, model.hidden_size), train.batch_size "
              "(raise train.grad_accum_steps to keep the effective batch) or model.context_length")
    if need > free:
        return Verdict("error", "memory", f"{detail}. {advice}")
    if need > WARN_SHARE * free:
        return Verdict("warning", "memory", f"{detail}: close to the limit")
    return Verdict("ok", "memory", f"about {human_bytes(need)} of {human_bytes(free)} {where} available")


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
    detail = f"checkpoints need about {human_bytes(need)} and {human_bytes(free)} is free on the disk holding {folder}"
    if need > free:
        return Verdict("error", "disk", f"{detail}. Free some space, or train into another folder (--out)")
    if 2 * need > free:
        return Verdict("warning", "disk", f"{detail}: little room to spare")
    return Verdict("ok", "disk", f"{human_bytes(free)} free for checkpoints of about {human_bytes(need)}")


def folder_verdict(folder: Path) -> Verdict:
    try:
        check_writable(folder)
    except OSError as e:
        return Verdict("error", "folder", describe_os_error(e, "creating a file in"))
    return Verdict("ok", "folder", f"{folder} is writable")


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
            f"the disk is full: {human_bytes(free)} free on the disk holding {folder}, and a checkpoint needs about {human_bytes(need)}; "
            "training stopped and the last saved checkpoint was kept. Free some space and resume"
        )
