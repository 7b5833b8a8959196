"""Finding runs on disk for pickers (base model, Try panel): a quick scan of the runs folder that
reads only small JSON and TOML files, so it needs no engine."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from studio.core.paths import runs_dir
from studio.core.runs.run_dir import RunDir


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
    run = RunDir(path)
    if not run.config_path.exists():
        return None
    info = run.read_info()
    try:
        config = tomllib.loads(run.config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        config = {}
    has_ckpt = any((run.checkpoint(label) / "state.json").exists() for label in ("best", "last"))
    return RunSummary(
        path=path,
        name=str(info.get("name") or path.name),
        arch=str(config.get("model", {}).get("arch", info.get("arch", "?"))),
        task=str(config.get("task", {}).get("kind", "lm")),
        status=str(info.get("status", "unknown")),
        step=int(info.get("step", 0) or 0),
        has_checkpoint=has_ckpt,
        updated=float(info.get("updated", path.stat().st_mtime)),
    )


def list_runs(root: Path | None = None, with_checkpoint: bool = False) -> list[RunSummary]:
    """Runs newest first."""
    root = root or runs_dir()
    out = []
    for path in root.iterdir() if root.exists() else []:
        if path.is_dir():
            summary = summarize(path)
            if summary is not None and (summary.has_checkpoint or not with_checkpoint):
                out.append(summary)
    return sorted(out, key=lambda s: -s.updated)
