"""Runs with a checkpoint, for pickers (base model, Try panel): read from the folders themselves,
so a run finished a moment ago is there without refreshing the library's index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.runs.index import record_from_folder
from studio.core.runs.run_dir import RunDir, run_roots
from studio.core.training.checkpoint_commit import committed_checkpoint


@dataclass(frozen=True)
class RunSummary:
    path: Path
    name: str
    arch: str
    task: str
    status: str
    step: int
    has_checkpoint: bool
    updated: float

    @property
    def label(self) -> str:
        task = "" if self.task == "lm" else f", {self.task}"
        return f"{self.name} ({self.arch}{task}, {self.status}, step {self.step})"


def summarize(path: Path) -> RunSummary | None:
    record = record_from_folder(path)
    if record is None:
        return None
    run = RunDir(path)
    has_ckpt = any(committed_checkpoint(run.checkpoint(label)) is not None for label in ("best", "last"))
    return RunSummary(Path(record["path"]), record["name"], record["arch"], record["task"], record["status"],
                      record["step"], has_ckpt, record["updated"])


def list_runs(root: Path | None = None, with_checkpoint: bool = False) -> list[RunSummary]:
    """Runs newest first."""
    out = []
    for folder in [root] if root is not None else run_roots():
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.is_dir():
                summary = summarize(path)
                if summary is not None and (summary.has_checkpoint or not with_checkpoint):
                    out.append(summary)
    return sorted(out, key=lambda s: -s.updated)
