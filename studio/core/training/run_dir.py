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
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from studio.core.bits import bits_per_unit, units_per_token
from studio.core.config import RunConfig
from studio.core.errors import CheckpointError
from studio.core.events import (
    CheckpointSaved,
    DataReady,
    EvalLogged,
    Event,
    LayerStatsLogged,
    RunFailed,
    RunFinished,
    RunStarted,
    StepLogged,
    event_from_dict,
)
from studio.core.fileio import atomic_write_text
from studio.core.i18n import _
from studio.core.paths import data_dir, runs_dir
from studio.core.training.checkpoint_commit import STATE_FILE, committed_checkpoint

RUN_FORMAT_VERSION = 1
# Reading a long metrics.jsonl is pure Python for a second or more, and the window does it on a
# worker thread (Compare). Without a pause, the GUI thread waited for the interpreter lock
# 60-190 ms at a time (10 runs of 5,000 steps); a zero sleep every few hundred lines hands it over.
YIELD_EVERY = 200
ACTIVE = ("running", "preparing")  # statuses that claim a live process
LOCK_FILE = "run.lock"
INFO_LOCK_FILE = ".run.json.lock"
ROOTS_FILE = "run-roots.json"
MAX_INFO_BYTES = 16 << 20


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

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, label: str = "last") -> Path:
        return self.checkpoints / label

    @property
    def snapshots(self) -> Path:
        """Weights-only checkpoints for the Inspect page, one folder per step (``step-00000500``),
        kept apart from ``checkpoints/`` so that nothing resumes from them."""
        return self.path / "snapshots"

    def drop_snapshots_after(self, step: int) -> None:
        """A resume from ``step``: the snapshots an interrupted attempt took later are of a
        history that no longer happened, and so are the leftovers of a save it was cut off in."""
        if not self.snapshots.is_dir():
            return
        for folder in self.snapshots.iterdir():
            number = folder.name.removeprefix("step-")
            if folder.name.startswith(".") or (number.isdigit() and int(number) > step):
                shutil.rmtree(folder, ignore_errors=True)

    def snapshot_steps(self) -> list[tuple[int, Path]]:
        """The snapshots whose save was completed, by step."""
        found = []
        for folder in self.snapshots.glob("step-*") if self.snapshots.is_dir() else ():
            number = folder.name.removeprefix("step-")
            if number.isdigit() and committed_checkpoint(folder) == folder:
                found.append((int(number), folder))
        return sorted(found)

    @property
    def name(self) -> str:
        return self.path.name

    # ---- creation and lookup ----------------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, out: Path | None = None) -> RunDir:
        base = Path(out).expanduser().resolve() if out else runs_dir()
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
        try:
            config.save(run.config_path)
            run.write_info(
                format_version=RUN_FORMAT_VERSION,
                name=config.run.name or path.name,
                arch=config.model.arch,
                status="created",
                created=time.time(),
                tags=list(config.run.tags),
            )
        except BaseException:
            # A folder without its config would show up as a broken run: leave nothing behind.
            shutil.rmtree(path, ignore_errors=True)
            raise
        if out:
            remember_root(base)
        return run

    @classmethod
    def open(cls, ref: str | Path) -> RunDir:
        """A run by folder path, or by (part of) its folder name in any known runs folder."""
        p = Path(ref).expanduser()
        candidates = [p] if p.is_absolute() or p.exists() else [p] + [root / str(ref) for root in run_roots()]
        for c in candidates:
            if (c / "config.toml").exists():
                return cls(c.resolve())
        if not p.is_absolute():
            matches = sorted({m for root in run_roots() for m in root.glob(f"*{ref}*") if (m / "config.toml").exists()})
            if len(matches) == 1:
                return cls(matches[0])
            if len(matches) > 1:
                names = ", ".join(m.name for m in matches[:5])
                # Translators: {ref} is what the person typed, {names} the runs it matches.
                message = _("{ref} matches {count} runs ({names}); give more of the name, or the folder")
                raise CheckpointError(message.format(ref=repr(ref), count=len(matches), names=names))
        roots = ", ".join(str(r) for r in run_roots())
        # Translators: config.toml is a file's name; {roots} lists the folders searched.
        message = _("no run found at {ref} (looked for a folder with a config.toml, also in {roots})")
        raise CheckpointError(message.format(ref=repr(ref), roots=roots))

    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    # ---- run.json ---------------------------------------------------------------------------

    def _read_info_file(self) -> dict[str, Any]:
        try:
            if self.info_path.stat().st_size > MAX_INFO_BYTES:
                return {}
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return info if isinstance(info, dict) else {}

    def read_info(self) -> dict[str, Any]:
        info = self._read_info_file()
        if info.get("status") in ACTIVE and not _alive(self.path, info):
            info["status"] = "interrupted"
        return info

    def write_info(self, **fields: Any) -> None:
        """Update run.json in place. The trainer and the window may both write it (progress, tags),
        so each update reads, changes and replaces the file under a lock, atomically."""
        with FileLock(self.path / INFO_LOCK_FILE, timeout=30, thread_local=False):
            info = self._read_info_file()
            info.update(fields, updated=time.time())
            atomic_write_text(self.info_path, json.dumps(info, indent=1, ensure_ascii=False), durable=False)

    # ---- events -----------------------------------------------------------------------------

    def read_events(self) -> list[Event]:
        """The run's metrics.jsonl as events, as one curve: a resume restarts from its checkpoint's
        step, so the steps logged after that checkpoint by the interrupted attempt are dropped."""
        out: list[Event] = []
        if not self.metrics_path.exists():
            return out
        with self.metrics_path.open("r", encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f):
                if number % YIELD_EVERY == 0:
                    time.sleep(0)  # see YIELD_EVERY
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash or a full disk
                event = event_from_dict(data) if isinstance(data, dict) else None
                if event is None:
                    continue
                if isinstance(event, RunStarted) and event.resumed:
                    restart = event.start_step
                    out = [e for e in out
                           if not (isinstance(e, StepLogged | EvalLogged | CheckpointSaved | LayerStatsLogged) and e.step > restart)]
                out.append(event)
        return out


def resolve_checkpoint(ref: str | Path, label: str = "auto") -> tuple[Path, RunDir | None]:
    """``label``: best, last, or auto (best when there is one, else last)."""
    p = Path(ref).expanduser()
    if (p / STATE_FILE).exists() or (p.parent.name == "checkpoints" and committed_checkpoint(p) is not None):
        return p, None
    run = RunDir.open(ref)
    labels = ["best", "last"] if label == "auto" else [label]
    for name in labels:
        if committed_checkpoint(run.checkpoint(name)) is not None:
            return run.checkpoint(name), run
    if label == "best":
        raise CheckpointError(_("run {name} has no best checkpoint yet").format(name=run.name))
    if label == "last":
        raise CheckpointError(_("run {name} has no last checkpoint yet").format(name=run.name))
    if label == "auto":
        raise CheckpointError(_("run {name} has no checkpoint yet").format(name=run.name))
    # Translators: {label} is a checkpoint's name.
    raise CheckpointError(_("run {name} has no {label} checkpoint yet").format(name=run.name, label=label))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


# ---- where runs live ------------------------------------------------------------------------


def run_roots() -> list[Path]:
    """The user's runs folder, then every folder a run was created in with ``--out`` (remembered
    so that ``studio runs``, resume by name and the Runs page find those runs too)."""
    roots = [runs_dir()]
    try:
        extra = json.loads((data_dir() / ROOTS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        extra = []
    for item in extra if isinstance(extra, list) else []:
        p = Path(str(item))
        if p not in roots and p.is_dir():
            roots.append(p)
    return roots


def remember_root(folder: Path) -> None:
    folder = Path(folder).resolve()
    if folder == runs_dir().resolve():
        return
    path = data_dir() / ROOTS_FILE
    with FileLock(data_dir() / f".{ROOTS_FILE}.lock", timeout=30, thread_local=False):
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            known = []
        known = [str(k) for k in known] if isinstance(known, list) else []
        if str(folder) not in known:
            atomic_write_text(path, json.dumps([*known, str(folder)], indent=1, ensure_ascii=False), durable=False)


# ---- the run lock ---------------------------------------------------------------------------


def _alive(run_path: Path, info: dict[str, Any]) -> bool:
    """Is the process that owns this run still there? A running trainer holds an exclusive OS lock
    on ``run.lock`` (filelock: flock on POSIX, msvcrt on Windows), which the OS drops when the
    process dies however it dies, so a reused process id cannot fool it."""
    if info.get("host") not in (None, socket.gethostname()):
        return True  # another machine's run: nothing here can tell
    lock_path = run_path / LOCK_FILE
    if not lock_path.exists():
        return False
    probe = FileLock(lock_path, timeout=0, thread_local=False)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:
        return False
    probe.release()
    return False


def hold_run_lock(run_path: Path) -> FileLock:
    """Take the run's lock for this process; keep the returned lock until the run ends."""
    lock = FileLock(Path(run_path) / LOCK_FILE, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        message = _("{path} is being trained by another process; wait for it to end or stop it first")
        raise CheckpointError(message.format(path=run_path)) from None
    return lock


def release_run_lock(lock: FileLock | None) -> None:
    if lock is not None:
        lock.release()


class RunInfoWriter:
    """Keeps ``run.json`` current: status, step, best loss, and which process owns the run."""

    essential = True

    def __init__(self, run: RunDir):
        self.run = run
        self._last_write = 0.0
        self._per_token: tuple[float | None, float | None] = (None, None)

    def on_event(self, event: Event) -> None:
        r = self.run
        if isinstance(event, RunStarted):
            r.write_info(
                status="running", pid=os.getpid(), host=socket.gethostname(), started=event.time,
                parameters=event.parameters, total_steps=event.total_steps, step=event.start_step, device=event.device,
            )
        elif isinstance(event, StepLogged):
            if event.time - self._last_write > 5.0 or event.step == event.total_steps:
                self._last_write = event.time
                r.write_info(step=event.step, train_loss=event.loss, elapsed_s=event.elapsed_s, tokens_seen=event.tokens_seen)
        elif isinstance(event, DataReady):
            # The validation split's characters and bytes per token: what turns any of its losses into
            # bits per character or byte (studio.core.bits), for the library and the model card.
            self._per_token = (units_per_token(event.valid_characters, event.valid_tokens),
                               units_per_token(event.valid_bytes, event.valid_tokens))
            r.write_info(valid_chars_per_token=self._per_token[0], valid_bytes_per_token=self._per_token[1])
        elif isinstance(event, EvalLogged):
            bits = {}
            if event.bits_per_char is not None or event.bits_per_byte is not None:  # a language model's loss
                chars, byte_count = self._per_token
                bits = {"valid_bits_per_char": event.bits_per_char, "valid_bits_per_byte": event.bits_per_byte,
                        "best_valid_bits_per_char": bits_per_unit(event.best_loss, chars),
                        "best_valid_bits_per_byte": bits_per_unit(event.best_loss, byte_count)}
            r.write_info(step=event.step, valid_loss=event.loss, best_valid_loss=event.best_loss, **bits)
        elif isinstance(event, CheckpointSaved) and event.label != "snapshot":  # nothing resumes from a snapshot
            # Each save brings the step up to date, so an interrupted run shows where it can resume.
            r.write_info(step=event.step, **{f"{event.label}_checkpoint_step": event.step})
        elif isinstance(event, RunFinished):
            r.write_info(status=event.status, step=event.step, finished=event.time, elapsed_s=event.elapsed_s, reason=event.reason)
        elif isinstance(event, RunFailed):
            r.write_info(status="failed", step=event.step, finished=event.time, error=event.error)
