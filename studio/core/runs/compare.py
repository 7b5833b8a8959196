"""Comparing runs: their curves on shared axes, and the settings that differ between them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.events import EvalLogged, StepLogged
from studio.core.training.run_dir import RunDir


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def config_diff(configs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(key, value per config) for exactly the keys whose values are not all equal; a key missing
    from a config counts as a difference and shows as None."""
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, values))
    return rows


def run_config_table(run: Path) -> dict[str, Any]:
    return tomllib.loads((Path(run) / "config.toml").read_text(encoding="utf-8"))


@dataclass
class Curves:
    """A run's recorded curves, each as numpy arrays over steps, tokens and time."""

    name: str
    step: np.ndarray
    tokens: np.ndarray
    time: np.ndarray
    loss: np.ndarray
    eval_step: np.ndarray
    eval_tokens: np.ndarray
    eval_time: np.ndarray
    eval_loss: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def x(self, mode: str, evaluation: bool = False) -> np.ndarray:
        prefix = "eval_" if evaluation else ""
        return getattr(self, prefix + {"steps": "step", "tokens": "tokens", "time": "time"}[mode])


def load_curves(run_path: Path) -> Curves:
    run = RunDir(Path(run_path))
    events = run.read_events()
    steps = [e for e in events if isinstance(e, StepLogged)]
    evals = [e for e in events if isinstance(e, EvalLogged)]
    names = sorted({name for e in evals for name, _ in e.metrics})
    info = run.read_info()
    return Curves(
        name=str(info.get("name") or run.name),
        step=np.array([e.step for e in steps], dtype=float),
        tokens=np.array([e.tokens_seen for e in steps], dtype=float),
        time=np.array([e.elapsed_s for e in steps], dtype=float),
        loss=np.array([e.loss for e in steps], dtype=float),
        eval_step=np.array([e.step for e in evals], dtype=float),
        eval_tokens=np.array([e.tokens_seen for e in evals], dtype=float),
        eval_time=np.array([e.elapsed_s for e in evals], dtype=float),
        eval_loss=np.array([e.loss for e in evals], dtype=float),
        metrics={n: np.array([dict(e.metrics).get(n, np.nan) for e in evals], dtype=float) for n in names},
    )
