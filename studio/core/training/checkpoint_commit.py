"""The commit protocol that makes each checkpoint folder a unit: wholly there, or not there at all.

No torch here, so listing runs and resolving checkpoints stays instant in the window.

**Commit protocol.** A checkpoint is a unit that is either wholly there or not there at all, in the
manner of torch.distributed.checkpoint's ``.metadata`` rename:

1. Every file is written into a fresh work folder ``.<label>-XXXX`` beside the target and flushed
   to the disk (``fsync``).
2. ``commit.json`` is written last, flushed, and the work folder itself is flushed. From here on the
   work folder is a complete checkpoint, even if the process dies before step 3.
3. The current ``<label>`` (if any) is renamed to ``.<label>-old``, the work folder is renamed to
   ``<label>``, and ``.<label>-old`` is deleted. (A folder cannot be renamed over a non-empty one, so
   the swap takes two renames.)

A kill or a power cut can stop this at any point. :func:`recover_checkpoints` (run by the trainer,
which holds the run's lock, before it reads or writes a checkpoint) repairs what is left: if
``<label>`` is committed, leftovers are deleted; if it is missing (killed between the two renames)
or incomplete, the newest committed leftover is renamed into place. Readers that do not hold the
lock (``generate``, the Try panel) never rename anything: :func:`committed_checkpoint` just points
them at the newest committed folder. Checkpoints of format 1 (before the marker existed) are read
as committed, since they were only ever renamed into place complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from studio.core.errors import CheckpointError
from studio.core.fileio import fsync_dir
from studio.core.i18n import _

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"
COMMIT_FILE = "commit.json"
MAX_STATE_BYTES = 64 << 20  # state.json and commit.json are small; a huge one is not ours


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_file():
            _fsync_file(path)
        else:
            fsync_dir(path)
    fsync_dir(folder)


def file_sizes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != COMMIT_FILE}


def read_small_json(path: Path) -> Any:
    if path.stat().st_size > MAX_STATE_BYTES:
        message = _("{path} is {size:,} bytes, far larger than any checkpoint manifest")
        raise CheckpointError(message.format(path=path, size=path.stat().st_size))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(_("{path} is damaged: {reason}").format(path=path, reason=e)) from None


def commit_status(folder: Path) -> tuple[bool, int]:
    """(is this folder a complete checkpoint?, its step). Never raises."""
    folder = Path(folder)
    marker = folder / COMMIT_FILE
    try:
        if marker.exists():
            commit = read_small_json(marker)
            files = commit.get("files", {}) if isinstance(commit, dict) else None
            if not isinstance(files, dict) or not files:
                return False, 0
            for name, size in files.items():
                p = folder / name
                if not p.is_file() or p.stat().st_size != size:
                    return False, 0
            return True, int(commit.get("step", 0))
        state_path = folder / STATE_FILE
        if state_path.is_file():  # format 1: no marker, renamed into place complete
            state = read_small_json(state_path)
            if isinstance(state, dict) and state.get("format_version") == 1 and (folder / MODEL_FILE).is_file():
                return True, int(state.get("step", 0))
    except (OSError, CheckpointError, ValueError, TypeError):
        return False, 0
    return False, 0


def _leftovers(directory: Path) -> list[Path]:
    parent = directory.parent
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and p.name.startswith(f".{directory.name}-"))


def committed_checkpoint(directory: Path) -> Path | None:
    """The folder to read for checkpoint ``directory`` (``.../checkpoints/last``): the folder itself
    when it is committed, else the newest committed leftover of an interrupted save, else None.
    Renames nothing, so it is safe while another process trains."""
    directory = Path(directory)
    ok, _ = commit_status(directory)
    if ok:
        return directory
    candidates = [(step, p) for p in _leftovers(directory) for ok, step in [commit_status(p)] if ok]
    return max(candidates)[1] if candidates else None


def recover_checkpoints(checkpoints: Path) -> list[str]:
    """Repair what an interrupted save left in ``checkpoints/`` (call with the run's lock held).
    Returns a line per repair, for the log."""
    checkpoints = Path(checkpoints)
    if not checkpoints.is_dir():
        return []
    notes = []
    labels = {p.name for p in checkpoints.iterdir() if p.is_dir() and not p.name.startswith(".")}
    labels |= {p.name[1:].rsplit("-", 1)[0] for p in checkpoints.iterdir() if p.is_dir() and p.name.startswith(".") and "-" in p.name}
    for label in sorted(labels):
        target = checkpoints / label
        leftovers = _leftovers(target)
        ok, _step = commit_status(target)
        if not ok:
            candidates = [(step, p) for p in leftovers for good, step in [commit_status(p)] if good]
            if candidates:
                step, best = max(candidates)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(best, target)
                fsync_dir(checkpoints)
                leftovers.remove(best)
                if label == "best":
                    note = _("recovered the best checkpoint of step {step} from an interrupted save")
                elif label == "last":
                    note = _("recovered the last checkpoint of step {step} from an interrupted save")
                else:
                    # Translators: {label} is a checkpoint's folder name.
                    note = _("recovered the {label} checkpoint of step {step} from an interrupted save")
                notes.append(note.format(label=label, step=step))
        for p in leftovers:
            shutil.rmtree(p, ignore_errors=True)
            # Translators: {name} is a folder's name.
            notes.append(_("removed {name}, left by an interrupted save").format(name=p.name))
    return notes


