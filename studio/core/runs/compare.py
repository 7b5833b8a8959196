"""Comparing runs: their curves on shared axes, and the settings that differ between them."""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.events import EvalLogged, StepLogged
from studio.core.fileio import atomic_write_text
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


METRIC_PREFIX = "metric:"
TRAIN_METRICS = ("lr", "grad_norm", "tokens_per_s")


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
    # Logged with every training step (learning rate, gradient norm, throughput).
    train_metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def x(self, mode: str, evaluation: bool = False) -> np.ndarray:
        """``mode``: steps, tokens, time, or ``metric:NAME`` (a training-step column such as lr, or
        an evaluation metric); a metric recorded at the other kind of point is interpolated over
        steps, NaN outside the range it was recorded over."""
        if mode.startswith(METRIC_PREFIX):
            return self._metric_x(mode[len(METRIC_PREFIX):], evaluation)
        prefix = "eval_" if evaluation else ""
        return getattr(self, prefix + {"steps": "step", "tokens": "tokens", "time": "time"}[mode])

    def _metric_x(self, name: str, evaluation: bool) -> np.ndarray:
        at = self.eval_step if evaluation else self.step
        own = self.metrics if evaluation else self.train_metrics
        other, where = (self.train_metrics, self.step) if evaluation else (self.metrics, self.eval_step)
        if name in own:
            return own[name]
        if name in other and len(where):
            return np.interp(at, where, other[name], left=np.nan, right=np.nan)
        return np.full(len(at), np.nan)

    def metric_names(self) -> list[str]:
        return sorted({*self.train_metrics, *self.metrics})


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
        train_metrics={n: np.array([getattr(e, n) for e in steps], dtype=float) for n in TRAIN_METRICS},
    )


# ---- smoothing, grouping, bands, hover and export (the Compare view's numbers) --------------

SMOOTHING_METHODS = ("none", "ema", "mean", "gaussian")
BAND_KINDS = ("none", "minmax", "std")
MAX_WINDOW = 100  # running-average points at full strength
MAX_SIGMA = 20.0  # Gaussian kernel width (points) at full strength
MAX_EMA_WEIGHT = 0.99


def smooth(values: np.ndarray, method: str = "ema", strength: float = 0.6) -> np.ndarray:
    """Smooth a curve over its points, NaN-safe (gaps stay gaps, neighbours ignore them).

    ``strength`` runs from 0 (unchanged) to 1: the EMA's weight on the past (as TensorBoard's
    slider, debiased so the start is not pulled towards 0), the trailing running average's window
    (1 to ``MAX_WINDOW`` points) or the centred Gaussian's sigma (0 to ``MAX_SIGMA`` points)."""
    y = np.asarray(values, dtype=float)
    strength = float(min(max(strength, 0.0), 1.0))
    if method == "none" or strength == 0 or len(y) == 0:
        return y.copy()
    finite = np.isfinite(y)
    filled = np.where(finite, y, 0.0)
    if method == "ema":
        w = min(strength, MAX_EMA_WEIGHT)
        out = np.full(len(y), np.nan)
        out[finite] = _ema(filled[finite], w)  # a gap holds the state: the recurrence runs over finite points
        return out
    if method == "mean":
        window = max(1, round(strength * MAX_WINDOW))
        sums = np.concatenate([[0.0], np.cumsum(filled)])
        counts = np.concatenate([[0], np.cumsum(finite)])
        hi = np.arange(1, len(y) + 1)
        lo = np.maximum(hi - window, 0)
        n = counts[hi] - counts[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (sums[hi] - sums[lo]) / n
        out[~finite] = np.nan
        return out
    if method == "gaussian":
        sigma = strength * MAX_SIGMA
        half = max(1, int(np.ceil(3 * sigma)))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        # full convolution, then the centred part: "same" mode is wrong when the kernel is longer
        num = np.convolve(filled, k)[half:half + len(y)]
        den = np.convolve(finite.astype(float), k)[half:half + len(y)]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        out[~finite] = np.nan
        return out
    raise ValueError(f"unknown smoothing method {method!r}")


def _ema(v: np.ndarray, w: float) -> np.ndarray:
    """ema[k] = w * ema[k-1] + (1 - w) * v[k] from 0, debiased by its total weight 1 - w ** (k + 1).

    In closed form over chunks: within a chunk, ema[j] = w ** (j+1) * carry + (1 - w) * w ** j *
    cumsum(v[i] * w ** -i). The chunk is as long as w ** -length stays far below float64's
    range. A Python loop over the points took 5 ms per 5,000 (half the first draw of ten runs in
    Compare), and scipy's lfilter, which does it in C, costs seconds to import."""
    if len(v) == 0:
        return v.astype(float)
    length = int(min(4096, max(1, 250 / max(-np.log10(w), 1e-12)))) if w > 0 else len(v)
    out = np.empty(len(v))
    carry = 0.0
    for start in range(0, len(v), length):
        chunk = v[start:start + length]
        j = np.arange(len(chunk), dtype=float)
        if w > 0:
            rising = np.power(w, -j)
            values = np.power(w, j) * (w * carry + (1 - w) * np.cumsum(chunk * rising))
        else:
            values = chunk.astype(float)
        out[start:start + len(chunk)] = values
        carry = float(values[-1])
    k = np.arange(1, len(v) + 1, dtype=float)
    return out / (1 - np.power(w, k))


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The settings (dotted keys) whose values are not all equal: what one can group by."""
    return [key for key, _values in config_diff(configs)]


def group_runs(configs: list[dict[str, Any]], key: str) -> dict[str, list[int]]:
    """Indices of the runs per value of ``key`` (as text, "—" where a run lacks it), in order of
    first appearance."""
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        value = flatten(config).get(key)
        groups.setdefault("—" if value is None else str(value), []).append(i)
    return groups


def _clean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite points sorted by x (np.interp needs increasing x; a metric x-axis need not be)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order]


def common_grid(xs: list[np.ndarray], max_points: int = 2000) -> np.ndarray:
    """One x grid for several runs: their own when they all share it, else evenly spaced over the
    union of their ranges with as many points as the longest run (at most ``max_points``)."""
    cleaned = [np.asarray(x, dtype=float)[np.isfinite(x)] for x in xs]
    cleaned = [x for x in cleaned if len(x)]
    if not cleaned:
        return np.empty(0)
    if all(len(x) == len(cleaned[0]) and np.array_equal(x, cleaned[0]) for x in cleaned[1:]):
        return cleaned[0].copy()
    lo = min(float(x.min()) for x in cleaned)
    hi = max(float(x.max()) for x in cleaned)
    n = min(max(len(x) for x in cleaned), max_points)
    return np.linspace(lo, hi, max(n, 2)) if hi > lo else np.array([lo])


def on_grid(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` over ``x`` linearly interpolated onto ``grid``; NaN outside the run's own range."""
    x, y = _clean(x, y)
    if len(x) == 0:
        return np.full(len(grid), np.nan)
    return np.interp(grid, x, y, left=np.nan, right=np.nan)


@dataclass
class Band:
    """A group's mean curve over ``x`` and its spread (``lo`` to ``hi``)."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    runs: int


def group_band(label: str, series: list[tuple[np.ndarray, np.ndarray]], kind: str = "minmax") -> Band:
    """Mean of the runs' curves on a common grid, with the min–max or mean ± one (population)
    standard deviation band; at each x only the runs that reach it count."""
    grid = common_grid([x for x, _y in series])
    ys = np.array([on_grid(grid, x, y) for x, y in series]).reshape(len(series), len(grid))
    counts = np.isfinite(ys).sum(axis=0)
    some = counts > 0
    mean = np.full(len(grid), np.nan)
    lo, hi = mean.copy(), mean.copy()
    if some.any():
        part = ys[:, some]
        mean[some] = np.nanmean(part, axis=0)
        if kind == "minmax":
            lo[some], hi[some] = np.nanmin(part, axis=0), np.nanmax(part, axis=0)
        elif kind == "std":
            std = np.nanstd(part, axis=0)
            lo[some], hi[some] = mean[some] - std, mean[some] + std
        else:
            lo, hi = mean.copy(), mean.copy()
    return Band(label, grid, mean, lo, hi, len(series))


def nearest_value(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, float] | None:
    """The finite point of a curve whose x is nearest ``at`` (what hover shows), or None."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if not len(keep):
        return None
    i = keep[np.argmin(np.abs(x[keep] - at))]
    return float(x[i]), float(y[i])


def csv_rows(series: list[tuple[str, np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Long-format rows (series, x, y) of every finite point, with ``repr`` precision."""
    rows: list[list[str]] = []
    for name, x, y in series:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        xs, ys = [repr(v) for v in x[keep].tolist()], [repr(v) for v in y[keep].tolist()]  # fastest to-text
        rows.extend([name, a, b] for a, b in zip(xs, ys, strict=True))
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a CSV atomically (a crash never leaves half a file where the old one was)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(Path(path), buf.getvalue())


def runs_table(runs: list[Path], configs: list[dict[str, Any]], curves: list[Curves]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the Compare runs table: name, every setting that differs, the best
    validation loss, and each evaluation metric's last value (numbers stay numbers, for sorting)."""
    keys = [k for k in differing_keys(configs) if k != "run.name"]
    metric_names = sorted({n for c in curves for n in c.metrics})
    header = ["name", *keys, "best_valid_loss", *metric_names]
    rows: list[list[Any]] = []
    for run, config, c in zip(runs, configs, curves, strict=True):
        flat = flatten(config)
        best = RunDir(Path(run)).read_info().get("best_valid_loss")
        if best is None and len(c.eval_loss) and np.isfinite(c.eval_loss).any():
            best = float(np.nanmin(c.eval_loss))
        last = [float(c.metrics[n][-1]) if n in c.metrics and len(c.metrics[n]) else None for n in metric_names]
        rows.append([c.name, *(flat.get(k) for k in keys), best, *last])
    return header, rows
