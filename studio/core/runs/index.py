"""The run library's index: an SQLite table over the run folders, for listing, filtering, sorting.

The folders are the truth (``run.json``, ``config.toml``, ``results.json``); the index is a cache
rebuilt from them by :meth:`RunIndex.refresh`, so a run started from the CLI, by another window or
on another day appears as soon as anyone refreshes, and a crashed writer can never leave the two
disagreeing for long. Edits made in the library (name, tags, notes) are written to the run's
``run.json`` first, then to the index.

A run whose process died shows as ``interrupted`` (see ``RunDir.read_info``), never ``running``.
The schema carries a version in ``PRAGMA user_version`` and older files are migrated in place.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.config import PRIMARY_METRIC
from studio.core.i18n import N_, _
from studio.core.paths import data_dir
from studio.core.training.checkpoint_commit import committed_checkpoint
from studio.core.training.run_dir import RunDir, run_roots

SCHEMA_VERSION = 5

# Each entry upgrades the schema from version N to N + 1.
MIGRATIONS: dict[int, list[str]] = {
    0: [
        """CREATE TABLE IF NOT EXISTS runs (
            path TEXT PRIMARY KEY, name TEXT, arch TEXT, task TEXT, parameters INTEGER, corpus TEXT,
            status TEXT, best_valid_loss REAL, metric_name TEXT, metric REAL, started REAL, finished REAL,
            duration_s REAL, step INTEGER, total_steps INTEGER, updated REAL)""",
    ],
    1: [
        "ALTER TABLE runs ADD COLUMN tags TEXT DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN notes TEXT DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS runs_started ON runs(started)",
    ],
    2: [
        "ALTER TABLE runs ADD COLUMN has_checkpoint INTEGER DEFAULT 0",
    ],
    3: [
        "ALTER TABLE runs ADD COLUMN search TEXT DEFAULT ''",
    ],
    4: [  # the best validation loss in bits per character and per byte (studio.core.bits)
        "ALTER TABLE runs ADD COLUMN best_valid_bpc REAL",
        "ALTER TABLE runs ADD COLUMN best_valid_bpb REAL",
    ],
}
COLUMNS = ("path", "name", "arch", "task", "parameters", "corpus", "status", "best_valid_loss", "metric_name", "metric",
           "started", "finished", "duration_s", "step", "total_steps", "updated", "tags", "notes", "has_checkpoint", "search",
           "best_valid_bpc", "best_valid_bpb")


# A run's status as run.json stores it (these words stay English there); marked so that a view can
# show it as _(status).
# Translators: a run's status in the run library; early_stopped means stopped early (no more improvement).
STATUS_WORDS = (N_("created"), N_("preparing"), N_("running"), N_("finished"), N_("stopped"), N_("early_stopped"),
                N_("failed"), N_("interrupted"))


@dataclass(frozen=True)
class RunRecord:
    path: str
    name: str
    arch: str
    task: str
    parameters: int
    corpus: str
    status: str
    best_valid_loss: float | None
    metric_name: str
    metric: float | None
    started: float | None
    finished: float | None
    duration_s: float | None
    step: int
    total_steps: int
    updated: float
    tags: str
    notes: str
    has_checkpoint: bool = False
    search: str = ""  # the search this run is a trial of ('' for a run of its own), for grouping
    best_valid_bpc: float | None = None  # the best validation loss in bits per character (language models)
    best_valid_bpb: float | None = None  # ... and per UTF-8 byte

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]

    @property
    def label(self) -> str:
        """How pickers (the base model, the Try panel) show the run."""
        task = "" if self.task == "lm" else f", {self.task}"
        # Translators: {name} is the run's name, {arch} its architecture (gpt, lstm), {task} ", <task kind>" or
        # nothing, {status} its status (finished, stopped, ...).
        return _("{name} ({arch}{task}, {status}, step {step})").format(
            name=self.name, arch=self.arch, task=task, status=_(self.status), step=self.step
        )

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        data = dict(row)
        data["has_checkpoint"] = bool(data.get("has_checkpoint"))
        return cls(**data)


def record_from_folder(path: Path) -> dict[str, Any] | None:
    run = RunDir(path)
    if not run.config_path.exists():
        return None
    info = run.read_info()
    try:
        config = tomllib.loads(run.config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        config = {}
    task = config.get("task", {}).get("kind", "lm")
    data = config.get("data", {})
    task_table = config.get("task", {})
    if task != "lm":
        corpus = task_table.get("dataset") or ", ".join(Path(p).name for p in task_table.get("paths", []))
    else:
        corpus = ", ".join(Path(p).name for p in data.get("paths", [])) or data.get("dataset", "")
    metric_name, metric = "", None
    results_path = path / "results.json"
    if task != "lm" and results_path.exists():
        try:
            results = json.loads(results_path.read_text())
            split = results.get("test") or results.get("valid") or {}
            metric_name = PRIMARY_METRIC.get(task, "")
            metric = split.get(metric_name)
        except (json.JSONDecodeError, OSError):
            pass
    started = info.get("started") or info.get("created")
    finished = info.get("finished")
    return {
        "path": str(path), "name": str(info.get("name") or path.name), "arch": config.get("model", {}).get("arch", info.get("arch", "")),
        "task": task, "parameters": int(info.get("parameters") or 0), "corpus": corpus, "status": str(info.get("status", "unknown")),
        "best_valid_loss": info.get("best_valid_loss"), "metric_name": metric_name, "metric": metric, "started": started,
        "finished": finished, "duration_s": info.get("elapsed_s"), "step": int(info.get("step") or 0),
        "total_steps": int(info.get("total_steps") or 0), "updated": float(info.get("updated") or path.stat().st_mtime),
        "tags": ",".join(info.get("tags", [])), "notes": str(info.get("notes", "")),
        "has_checkpoint": any(committed_checkpoint(run.checkpoint(label)) is not None for label in ("best", "last")),
        "search": next((t.removeprefix("search:") for t in info.get("tags", []) if str(t).startswith("search:")), ""),
        "best_valid_bpc": _number(info.get("best_valid_bits_per_char")),
        "best_valid_bpb": _number(info.get("best_valid_bits_per_byte")),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class RunIndex:
    def __init__(self, db_path: Path | None = None, root: Path | None = None):
        self.db_path = Path(db_path) if db_path else data_dir() / "runs.sqlite"
        self.root = Path(root) if root else None  # None: the runs folder and every --out folder used
        with self._connect() as db:
            migrate(db)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: all or nothing
                yield db
        finally:
            db.close()

    def refresh(self) -> int:
        """Bring the index in line with the run folders; returns how many runs it lists."""
        seen = []
        rows = []
        roots = [self.root] if self.root is not None else run_roots()
        for root in roots:
            for path in sorted(root.iterdir()) if root.is_dir() else []:
                if path.is_dir():
                    record = record_from_folder(path)
                    if record is not None:
                        rows.append(record)
                        seen.append(record["path"])
        with self._connect() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                [tuple(r[c] for c in COLUMNS) for r in rows],
            )
            known = [row["path"] for row in db.execute("SELECT path FROM runs")]
            gone = [p for p in known if p not in set(seen) and Path(p).parent in roots]
            db.executemany("DELETE FROM runs WHERE path = ?", [(p,) for p in gone])
        return len(rows)

    def list(self, *, text: str = "", status: str = "", order_by: str = "started", descending: bool = True) -> list[RunRecord]:
        if order_by not in COLUMNS:
            raise ValueError(f"cannot sort by {order_by!r}")
        where, args = [], []
        if text:
            where.append("(name LIKE ? OR arch LIKE ? OR corpus LIKE ? OR tags LIKE ? OR notes LIKE ? OR task LIKE ?)")
            args += [f"%{text}%"] * 6
        if status:
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {', '.join(COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_by} IS NULL, {order_by} {'DESC' if descending else 'ASC'}"
        with self._connect() as db:
            return [RunRecord.from_row(row) for row in db.execute(sql, args)]

    def get(self, path: Path | str) -> RunRecord | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs WHERE path = ?", (str(path),)).fetchone()
        return RunRecord.from_row(row) if row else None

    # ---- edits: the folder first, then the index ----------------------------------------------

    def _edit(self, path: Path | str, **fields: Any) -> None:
        RunDir(Path(path)).write_info(**fields)
        record = record_from_folder(Path(path))
        if record is not None:
            with self._connect() as db:
                db.execute(
                    f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                    tuple(record[c] for c in COLUMNS),
                )

    def rename(self, path: Path | str, name: str) -> None:
        self._edit(path, name=name.strip() or Path(path).name)

    def set_tags(self, path: Path | str, tags: Sequence[str]) -> None:
        self._edit(path, tags=sorted({t.strip() for t in tags if t.strip() and "," not in t}))

    def set_notes(self, path: Path | str, notes: str) -> None:
        self._edit(path, notes=notes)

    def delete(self, path: Path | str) -> int:
        """Remove a run folder and its row; returns the bytes freed. Refuses a running run."""
        run = RunDir(Path(path))
        if run.read_info().get("status") == "running":
            raise PermissionError(_("{name} is still running; stop it first").format(name=run.name))
        freed = folder_size(run.path)
        shutil.rmtree(run.path)
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE path = ?", (str(path),))
        return freed


def list_runs(root: Path | None = None, with_checkpoint: bool = False) -> list[RunRecord]:
    """Runs newest first, read from the folders themselves (not the index), so a run that finished
    a moment ago is in the pickers without a refresh."""
    out = []
    for folder in [root] if root is not None else run_roots():
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.is_dir():
                record = record_from_folder(path)
                if record is not None and (record["has_checkpoint"] or not with_checkpoint):
                    out.append(RunRecord(**record))
    return sorted(out, key=lambda r: -r.updated)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(_("the run index was written by a newer Studio (schema {version})").format(version=version))
    while version < SCHEMA_VERSION:
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        version += 1
        db.execute(f"PRAGMA user_version = {version}")


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))
