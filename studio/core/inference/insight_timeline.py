"""A run across time, for the Inspect page: the checkpoints its time scrubber moves through, the
per-layer statistics training recorded, and every view's data as CSV or JSON rows.

``insight`` computes what one checkpoint does on one text; this module knows the run around it.
No Qt here: the page lays these out, and tests read them directly.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.events import LayerStatsLogged
from studio.core.inference.insight import AttentionMap, EmbeddingMap, Predictions, RecurrentStates
from studio.core.training.checkpoint_commit import STATE_FILE, commit_status, committed_checkpoint
from studio.core.training.run_dir import RunDir


@dataclass(frozen=True)
class TimePoint:
    step: int
    label: str  # "snapshot", "best", "last", or "checkpoint" (a checkpoint folder inspected on its own)
    path: Path


def time_points(run: Path) -> list[TimePoint]:
    """The saved states of a run (or the one of a checkpoint folder), by step. A run's: its snapshots (weights only, spread over the run), then
    ``best`` and ``last``. Where two share a step, one point stands for them (``last`` first,
    then ``best``): the scrubber shows each moment once. Reads only the commit records (a few
    small files), so a page can look again every few seconds while the run trains."""
    if (Path(run) / STATE_FILE).is_file():  # a checkpoint folder of its own: one moment
        ok, step = commit_status(Path(run))
        return [TimePoint(step, "checkpoint", Path(run))] if ok else []
    r = RunDir(Path(run))
    by_step: dict[int, TimePoint] = {}
    for step, folder in r.snapshot_steps():
        by_step[step] = TimePoint(step, "snapshot", folder)
    for label in ("best", "last"):
        found = committed_checkpoint(r.checkpoint(label))
        if found is None:
            continue
        ok, step = commit_status(found)
        if ok:
            by_step[step] = TimePoint(step, label, found)
    return [by_step[s] for s in sorted(by_step)]


@dataclass(frozen=True)
class LayerSeries:
    """Per layer group, over the recorded steps: what the layer-statistics view plots."""

    steps: list[int]
    layers: list[str]  # "embeddings", "1", ..., "output"
    grad_norms: dict[str, list[float]]
    update_ratios: dict[str, list[float]]


_SERIES_CACHE: dict[str, tuple[tuple[int, int], LayerSeries]] = {}


def layer_series(run: Path) -> LayerSeries:
    """The run's LayerStatsLogged records as curves. Read again only when metrics.jsonl has
    changed (the page asks at every move of the scrubber, and a long run's file is tens of MB).
    A malformed record (lengths that disagree, values that are not finite) is left out, not fatal:
    the file is the user's, and may have been edited or cut short."""
    metrics = RunDir(Path(run)).metrics_path
    try:
        stat = metrics.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        return LayerSeries([], [], {}, {})
    cached = _SERIES_CACHE.get(str(metrics))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    series = _read_series(run)
    _SERIES_CACHE[str(metrics)] = (stamp, series)
    return series


def _well_formed(e: LayerStatsLogged) -> bool:
    try:
        return (len(e.layers) == len(e.grad_norms) == len(e.update_ratios)
                and all(isinstance(n, str) for n in e.layers)
                and all(isinstance(v, int | float) for v in (*e.grad_norms, *e.update_ratios)))
    except TypeError:
        return False


def _read_series(run: Path) -> LayerSeries:
    events = [e for e in RunDir(Path(run)).read_events() if isinstance(e, LayerStatsLogged) and _well_formed(e)]
    layers: list[str] = []
    for e in events:
        for name in e.layers:
            if name not in layers:
                layers.append(name)
    grads: dict[str, list[float]] = {n: [] for n in layers}
    ratios: dict[str, list[float]] = {n: [] for n in layers}
    for e in events:
        values = dict(zip(e.layers, zip(e.grad_norms, e.update_ratios, strict=True), strict=True))
        for n in layers:
            g, u = values.get(n, (math.nan, math.nan))
            grads[n].append(float(g) if math.isfinite(g) else math.nan)
            ratios[n].append(float(u) if math.isfinite(u) else math.nan)
    return LayerSeries([e.step for e in events], layers, grads, ratios)


# ---- the data of each view, as rows ----------------------------------------------------------


def prediction_rows(p: Predictions) -> list[dict[str, Any]]:
    rows = []
    for pos in p.positions:
        row: dict[str, Any] = {
            "position": pos.index,
            "token": pos.actual.text if pos.actual else "",
            "surprisal_bits": pos.surprisal,
            "probability": pos.actual.model_probability if pos.actual else None,
        }
        for rank, c in enumerate(pos.candidates, start=1):
            row[f"candidate_{rank}"] = c.text
            row[f"candidate_{rank}_probability"] = c.probability
        rows.append(row)
    return rows


def attention_rows(maps: list[AttentionMap], head: int | None = None) -> list[dict[str, Any]]:
    """One row per (query, key) weight; of one head (``head`` from 0), of the heads' mean (-1), or
    of every head (None: heads x tokens² rows, which for a long text is millions)."""
    rows = []
    for m in maps:
        if head is not None and head < 0:
            mean = m.weights.mean(dim=0)
            for q, query in enumerate(m.queries):
                for k, key in enumerate(m.keys):
                    rows.append({"stack": m.stack, "kind": m.kind, "layer": m.layer + 1, "head": "mean", "query_position": q,
                                 "query": query, "key_position": k, "key": key, "weight": float(mean[q, k])})
            continue
        for h in range(m.weights.size(0)) if head is None else [head]:
            head_ = h
            for q, query in enumerate(m.queries):
                for k, key in enumerate(m.keys):
                    rows.append({"stack": m.stack, "kind": m.kind, "layer": m.layer + 1, "head": head_ + 1, "query_position": q,
                                 "query": query, "key_position": k, "key": key, "weight": float(m.weights[head_, q, k])})
    return rows


def recurrent_rows(states: RecurrentStates) -> list[dict[str, Any]]:
    rows = []
    for layer in states.layers:
        for t, label in enumerate(states.labels):
            row: dict[str, Any] = {"layer": layer.layer + 1, "position": t, "input": label, "hidden_norm": float(layer.hidden_norm[t])}
            if layer.cell_norm is not None:
                row["cell_norm"] = float(layer.cell_norm[t])
            for name, values in layer.gates.items():
                row[f"{name}_gate_mean"] = float(values[t].mean())
            rows.append(row)
    return rows


def embedding_rows(m: EmbeddingMap) -> list[dict[str, Any]]:
    return [{"token_id": i, "token": label, "x": float(m.coords[i, 0]), "y": float(m.coords[i, 1])} for i, label in enumerate(m.labels)]


def layer_rows(s: LayerSeries) -> list[dict[str, Any]]:
    return [{"step": step, "layer": n, "grad_norm": s.grad_norms[n][i], "update_ratio": s.update_ratios[n][i]}
            for i, step in enumerate(s.steps) for n in s.layers]


def rows_text(rows: list[dict[str, Any]], fmt: str) -> str:
    """``rows`` as CSV (a header of every key, in first-seen order) or as a JSON array."""
    if fmt == "json":  # NaN and infinity are not JSON: null
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()} for row in rows]
        return json.dumps(clean, ensure_ascii=False, indent=1)
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
