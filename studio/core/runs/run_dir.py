"""A run's folder: everything about one training run, readable without Studio.

::

    <runs>/<YYYYmmdd-HHMMSS>-<name>/
        config.toml        the configuration, with help comments
        run.json           status, progress and summary (kept current while the run goes)
        metrics.jsonl      every event, one JSON object per line
        samples.jsonl      the text sampled at each evaluation
        log.txt            a readable log
        results.json       task metrics of the best checkpoint (fine-tuning runs)
        checkpoints/last/  the latest state (resumable)
        checkpoints/best/  the weights with the best validation loss
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.config import RunConfig
from studio.core.errors import CheckpointError
from studio.core.events import (
    CheckpointSaved,
    EvalLogged,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    StepLogged,
)
from studio.core.paths import runs_dir

RUN_FORMAT_VERSION = 1
ACTIVE = "running"
LOCK_FILE = "run.lock"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    def checkpoint(self, label: str = "last") -> Path:
        return self.path / "checkpoints" / label

    @property
    def name(self) -> str:
        return self.path.name

    # ---- creation and lookup ----------------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, out: Path | None = None) -> RunDir:
        base = Path(out) if out else runs_dir()
        base.mkdir(parents=True, exist_ok=True)
        label = _slug(config.run.name or config.model.arch)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = base / f"{stamp}-{label}"
        n = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
                path = base / f"{stamp}-{label}-{n}"
        run = cls(path)
        config.save(run.config_path)
        run.write_info(
            format_version=RUN_FORMAT_VERSION,
            name=config.run.name or path.name,
            arch=config.model.arch,
            status="created",
            created=time.time(),
            tags=list(config.run.tags),
        )
        return run

    @classmethod
    def open(cls, ref: str | Path) -> RunDir:
        """A run by folder path, or by folder name under the runs folder."""
        p = Path(ref).expanduser()
        candidates = [p] if p.is_absolute() or p.exists() else [p, runs_dir() / str(ref)]
        for c in candidates:
            if (c / "config.toml").exists():
                return cls(c.resolve())
        if not p.is_absolute():
            matches = sorted(runs_dir().glob(f"*{ref}*"))
            matches = [m for m in matches if (m / "config.toml").exists()]
            if len(matches) == 1:
                return cls(matches[0])
            if len(matches) > 1:
                names = ", ".join(m.name for m in matches[:5])
                raise CheckpointError(f"{ref!r} matches several runs ({names}); give the full name")
        raise CheckpointError(f"no run found at {ref!r} (looked for a folder with a config.toml, also under {runs_dir()})")

    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    # ---- run.json ---------------------------------------------------------------------------

    def read_info(self) -> dict[str, Any]:
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        if info.get("status") == ACTIVE and not _alive(self.path, info):
            info["status"] = "interrupted"
        return info

    def write_info(self, **fields: Any) -> None:
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            info = {}
        info.update(fields, updated=time.time())
        tmp = self.info_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.info_path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def _alive(run_path: Path, info: dict[str, Any]) -> bool:
    """Is the process that owns this run still there? A running trainer holds an exclusive lock on
    ``run.lock``, which the OS drops when the process dies however it dies (pid reuse cannot fool it)."""
    if info.get("host") not in (None, socket.gethostname()):
        return True  # another machine's run: nothing here can tell
    lock_path = run_path / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # Windows: fall back to the process id
        pid = info.get("pid")
        try:
            os.kill(pid, 0) if isinstance(pid, int) else None
        except OSError:
            return False
        return isinstance(pid, int)
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def hold_run_lock(run_path: Path) -> int | None:
    """Take the run's lock for this process; returns the descriptor to keep open (None on Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(run_path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CheckpointError(f"{run_path} is being trained by another process") from None
    return fd


def release_run_lock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


class RunInfoWriter:
    """Keeps ``run.json`` current: status, step, best loss, and which process owns the run."""

    def __init__(self, run: RunDir):
        self.run = run
        self._last_write = 0.0

    def on_event(self, event: Event) -> None:
        r = self.run
        if isinstance(event, RunStarted):
            r.write_info(
                status=ACTIVE, pid=os.getpid(), host=socket.gethostname(), started=event.time,
                parameters=event.parameters, total_steps=event.total_steps, step=event.start_step, device=event.device,
            )
        elif isinstance(event, StepLogged):
            if event.time - self._last_write > 5.0 or event.step == event.total_steps:
                self._last_write = event.time
                r.write_info(step=event.step, train_loss=event.loss, elapsed_s=event.elapsed_s, tokens_seen=event.tokens_seen)
        elif isinstance(event, EvalLogged):
            r.write_info(step=event.step, valid_loss=event.loss, best_valid_loss=event.best_loss)
        elif isinstance(event, CheckpointSaved):
            # Each save brings the step up to date, so an interrupted run shows where it can resume.
            r.write_info(step=event.step, **{f"{event.label}_checkpoint_step": event.step})
        elif isinstance(event, RunFinished):
            r.write_info(status=event.status, step=event.step, finished=event.time, elapsed_s=event.elapsed_s, reason=event.reason)
        elif isinstance(event, RunFailed):
            r.write_info(status="failed", step=event.step, finished=event.time, error=event.error)
