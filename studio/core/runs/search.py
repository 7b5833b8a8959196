"""Hyperparameter search: grid or random trials, median pruning, optional k-fold cross-validation.

A search spec is TOML::

    [search]
    name = "lr-and-depth"
    base = "demo-gpt"                 # a preset or a config file
    set = ["train.steps=300"]         # fixed overrides for every trial
    strategy = "random"               # grid | random
    trials = 6                        # random: how many
    seed = 0
    metric = "valid_loss"             # or a task metric: accuracy, bleu, rougeL, f1, ...
    prune = true                      # stop a trial whose value at an evaluation is worse than the median
    prune_after = 1                   # ... of earlier trials at the same step, from this evaluation on
    folds = 0                         # k-fold cross-validation (classification): k runs per trial

    [params]
    "train.lr" = [1e-3, 3e-3, 1e-2]                           # a list: choose among these
    "model.n_layers" = [2, 4]
    "optimizer.weight_decay" = { min = 0.0, max = 0.2 }       # a range (random search only)
    "train.batch_size" = { min = 8, max = 32, log = true, int = true }

Trials run one after another, each a normal run in the run library (tagged with the search), so
they can be opened, compared, resumed or promoted like any other.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import statistics
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from studio.core.callbacks import Dispatcher
from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.events import (
    EvalLogged,
    Event,
    LogMessage,
    SearchFinished,
    StepLogged,
    TrialFinished,
    TrialStarted,
)
from studio.core.paths import data_dir, studio_command
from studio.core.resources import find_config

LOWER_IS_BETTER = {"valid_loss", "loss", "perplexity"}


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def sample(self, rng: random.Random) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else value


@dataclass
class SearchSpec:
    name: str
    base: str
    params: dict[str, Choice | Range]
    overrides: list[str] = field(default_factory=list)
    strategy: Literal["grid", "random"] = "random"
    trials: int = 6
    seed: int = 0
    metric: str = "valid_loss"
    prune: bool = False
    prune_after: int = 1
    folds: int = 0
    parallel: int = 0  # trials at once; 0: one per GPU when there are several, else 1

    @property
    def minimize(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @classmethod
    def load(cls, path: Path | str) -> SearchSpec:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> SearchSpec:
        issues: list[ConfigIssue] = []
        s = dict(data.get("search", {}))
        known = {"name", "base", "set", "strategy", "trials", "seed", "metric", "prune", "prune_after", "folds", "parallel"}
        for key in s:
            if key not in known:
                issues.append(ConfigIssue(f"search.{key}", f"unknown setting (known: {', '.join(sorted(known))})"))
        for key in data:
            if key not in ("search", "params"):
                issues.append(ConfigIssue(key, "unknown section (known: search, params)"))
        params: dict[str, Choice | Range] = {}
        for key, value in data.get("params", {}).items():
            if key.count(".") != 1:
                issues.append(ConfigIssue(f"params.{key}", "a parameter is a setting such as train.lr"))
            elif isinstance(value, list) and value:
                params[key] = Choice(tuple(value))
            elif isinstance(value, dict) and {"min", "max"} <= set(value):
                params[key] = Range(float(value["min"]), float(value["max"]), bool(value.get("log", False)), bool(value.get("int", False)))
                if value.get("log") and float(value["min"]) <= 0:
                    issues.append(ConfigIssue(f"params.{key}", "a log range needs min > 0"))
            else:
                issues.append(ConfigIssue(f"params.{key}", "give a list of values or a table {min, max}"))
        strategy = s.get("strategy", "random")
        if strategy not in ("grid", "random"):
            issues.append(ConfigIssue("search.strategy", f"must be grid or random (got {strategy!r})"))
        if strategy == "grid" and any(isinstance(p, Range) for p in params.values()):
            issues.append(ConfigIssue("search.strategy", "a grid needs lists of values, not ranges"))
        if not params:
            issues.append(ConfigIssue("params", "nothing to search: add [params]"))
        if "base" not in s:
            issues.append(ConfigIssue("search.base", "name the preset or config file the trials start from"))
        if issues:
            raise ConfigError(issues, source)
        return cls(
            name=str(s.get("name", "search")), base=str(s["base"]), params=params, overrides=list(s.get("set", [])),
            strategy=strategy, trials=int(s.get("trials", 6)), seed=int(s.get("seed", 0)), metric=str(s.get("metric", "valid_loss")),
            prune=bool(s.get("prune", False)), prune_after=int(s.get("prune_after", 1)), folds=int(s.get("folds", 0)),
            parallel=int(s.get("parallel", 0)),
        )

    def base_config(self, extra: Sequence[str] = ()) -> RunConfig:
        return RunConfig.load(find_config(self.base), [*self.overrides, *extra])

    def settings(self) -> list[dict[str, Any]]:
        """The trials' parameter values, in the order they will run."""
        keys = list(self.params)
        if self.strategy == "grid":
            grids = [self.params[k].values for k in keys]  # type: ignore[union-attr]
            return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grids)]
        rng = random.Random(self.seed)
        out = []
        for _ in range(self.trials):
            out.append({k: (rng.choice(p.values) if isinstance(p, Choice) else p.sample(rng)) for k, p in self.params.items()})
        return out


def override_text(key: str, value: Any) -> str:
    return f"{key}={tomli_w.dumps({'v': value}).split('=', 1)[1].strip()}"


@dataclass
class TrialResult:
    trial: int
    params: dict[str, Any]
    status: str  # finished, early_stopped, pruned, failed, stopped
    value: float | None
    steps: int
    seconds: float
    run_dirs: list[str]
    error: str = ""


class MedianPruner:
    """Stop a trial whose value at an evaluation is worse than the median of the earlier trials'
    values at that same step (from the ``after``-th evaluation on)."""

    def __init__(self, minimize: bool, after: int):
        self.minimize = minimize
        self.after = after
        self.history: list[dict[int, float]] = []  # one curve (step -> value) per completed trial

    def should_prune(self, curve: dict[int, float], step: int) -> bool:
        if len(curve) < self.after:
            return False
        others = [h[step] for h in self.history if step in h]
        if len(others) < 1:
            return False
        median = statistics.median(others)
        value = curve[step]
        return value > median if self.minimize else value < median


def metric_of(event: EvalLogged, metric: str) -> float | None:
    if metric in ("valid_loss", "loss"):
        return event.loss
    if metric == "perplexity":
        return event.perplexity
    return dict(event.metrics).get(metric)


Executor = Callable[[RunConfig, Callable[[Event], None], RunControl, int], Any]


def run_in_process(config: RunConfig, on_event: Callable[[Event], None], control: RunControl, slot: int) -> Any:
    from studio.core.training.trainer import Trainer

    return Trainer(config).fit([_Forward(on_event)], control)


def run_in_child(config: RunConfig, on_event: Callable[[Event], None], control: RunControl, slot: int) -> Any:
    """The same run in a ``studio worker`` process pinned to GPU ``slot`` (parallel trials)."""
    import os
    import subprocess
    import tempfile

    from studio.core.events import event_from_dict
    from studio.core.training.trainer import RunResult

    fd, name = tempfile.mkstemp(prefix="trial-", suffix=".toml")
    os.close(fd)
    path = Path(name)
    config.save(path)
    env = dict(os.environ)
    if gpu_count() > 1:
        env["CUDA_VISIBLE_DEVICES"] = str(slot)
    proc = subprocess.Popen([*studio_command("worker"), "--config", str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, bufsize=1)
    result = RunResult("failed", 0, math.inf, Path(), "the trial's process ended without a result")
    stop_sent = False
    assert proc.stdout is not None and proc.stdin is not None
    try:
        for line in proc.stdout:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if data.get("event") == "result":
                result = RunResult(data["status"], int(data.get("step") or 0), float(data.get("best_loss") or math.inf),
                                   Path(data["run_dir"]) if data.get("run_dir") else Path(), data.get("error", ""))
                continue
            event = event_from_dict(data)
            if event is not None:
                on_event(event)
            if control.stop_requested and not stop_sent:
                stop_sent = True
                proc.stdin.write("stop\n")
                proc.stdin.flush()
    finally:
        proc.wait()
        path.unlink(missing_ok=True)
    return result


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def run_search(spec: SearchSpec, callbacks: Sequence[Any] = (), control: RunControl | None = None,
               out: Path | None = None, parallel: int = 0) -> tuple[list[TrialResult], Path]:
    """Run every trial; returns the leaderboard (best first) and the search folder.

    ``parallel``: trials at once. 0 means one per GPU when there are several GPUs, else one after
    another. Parallel trials each run in their own process, pinned to their GPU.
    """
    import threading

    control = control or RunControl()
    lock = threading.RLock()
    dispatcher = Dispatcher(list(callbacks))

    def emit(event: Event) -> None:
        with lock:
            dispatcher(event)

    spec.base_config()  # fail early, with the key, if the base or fixed overrides are invalid
    folder = out or (data_dir() / "searches" / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(_spec_toml(spec), encoding="utf-8")
    pruner = MedianPruner(spec.minimize, spec.prune_after)
    settings = spec.settings()
    results: list[TrialResult] = []
    workers = parallel or spec.parallel or (gpu_count() if gpu_count() > 1 else 1)
    executor: Executor = run_in_child if workers > 1 else run_in_process

    def run_trial(trial: int, params: dict[str, Any], slot: int) -> None:
        shown = tuple((k, str(v)) for k, v in params.items())
        emit(TrialStarted(trial, len(settings), shown))
        record = _run_trial(spec, trial, params, slot, executor, emit, pruner, control, lock)
        with lock:
            results.append(record)
            with (folder / "trials.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record.__dict__, default=str) + "\n")
        emit(TrialFinished(trial, record.status, record.value, shown, record.run_dirs[-1] if record.run_dirs else "",
                           record.steps, record.seconds, record.error))

    if workers <= 1:
        for trial, params in enumerate(settings):
            if control.stop_requested:
                break
            run_trial(trial, params, 0)
    else:
        queue = list(enumerate(settings))

        def worker(slot: int) -> None:
            while not control.stop_requested:
                with lock:
                    if not queue:
                        return
                    trial, params = queue.pop(0)
                run_trial(trial, params, slot)

        threads = [threading.Thread(target=worker, args=(slot,), name=f"trial-slot-{slot}") for slot in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    board = leaderboard(results, spec.minimize)
    _write_leaderboard(folder / "leaderboard.csv", board, spec)
    emit(SearchFinished(str(folder), board[0].trial if board and board[0].value is not None else -1, len(results)))
    return board, folder


def _run_trial(spec: SearchSpec, trial: int, params: dict[str, Any], slot: int, executor: Executor, emit: Callable[[Event], None],
               pruner: MedianPruner, control: RunControl, lock: Any) -> TrialResult:
    started = time.perf_counter()
    folds = range(spec.folds) if spec.folds > 1 else [None]
    values: list[float] = []
    run_dirs: list[str] = []
    steps, status, error = 0, "finished", ""
    curve: dict[int, float] = {}
    for fold in folds:
        extra = [override_text(k, v) for k, v in params.items()]
        extra += [f"run.name={spec.name}-t{trial}" + (f"-f{fold}" if fold is not None else ""), f'run.tags=["search:{spec.name}", "trial:{trial}"]']
        if fold is not None:
            extra += [f"task.cv_folds={spec.folds}", f"task.cv_fold={fold}"]
        try:
            config = spec.base_config(extra)
        except ConfigError as e:
            status, error = "failed", str(e)
            break
        trial_control = RunControl()
        best: list[float] = []
        pruned = [False]
        total = [0]

        def on_event(event: Event, fold: int | None = fold, best: list[float] = best, trial_control: RunControl = trial_control,
                     pruned: list[bool] = pruned, total: list[int] = total) -> None:
            emit(event)
            if control.stop_requested:
                trial_control.request_stop()
            if isinstance(event, StepLogged):
                total[0] = event.total_steps
            if not isinstance(event, EvalLogged):
                return
            value = metric_of(event, spec.metric)
            if value is None:
                return
            best.append(value)
            if fold in (None, 0):
                curve[event.step] = value
                with lock:
                    # The last evaluation ends the trial anyway: a finished trial is never "pruned".
                    prune = spec.prune and event.step < total[0] and pruner.should_prune(curve, event.step)
                if prune:
                    emit(LogMessage("info", f"trial {trial}: {spec.metric} {value:.4f} at step {event.step} is worse than the median; pruned"))
                    pruned[0] = True
                    trial_control.request_stop()

        result = executor(config, on_event, trial_control, slot)
        run_dirs.append(str(result.run_dir))
        steps += result.step
        if result.status == "failed":
            status, error = "failed", result.error
            break
        if pruned[0]:
            status = "pruned"
        elif result.status == "stopped":
            status = "stopped"
        if best:
            values.append(min(best) if spec.minimize else max(best))
        if status in ("pruned", "stopped"):
            break
    value = statistics.mean(values) if values and status in ("finished", "pruned") else None
    if status != "failed" and curve:
        with lock:
            pruner.history.append(dict(curve))
    return TrialResult(trial, params, status, value, steps, time.perf_counter() - started, run_dirs, error)


class _Forward:
    def __init__(self, fn: Callable[[Event], None]):
        self.fn = fn

    def on_event(self, event: Event) -> None:
        self.fn(event)


def leaderboard(results: list[TrialResult], minimize: bool) -> list[TrialResult]:
    """Completed trials best first (pruned ones by the value they reached), failed ones last."""
    rank = {"finished": 0, "early_stopped": 0, "pruned": 1, "stopped": 2, "failed": 3}

    def key(r: TrialResult) -> tuple[int, int, float]:
        if r.value is None:
            return (1, rank.get(r.status, 3), 0.0)
        return (0, rank.get(r.status, 3), r.value if minimize else -r.value)

    return sorted(results, key=key)


def _write_leaderboard(path: Path, board: list[TrialResult], spec: SearchSpec) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "trial", *spec.params, spec.metric, "status", "steps", "seconds", "run"])
        for i, r in enumerate(board, start=1):
            writer.writerow([i, r.trial, *(r.params[k] for k in spec.params), "" if r.value is None else f"{r.value:.6g}",
                             r.status, r.steps, f"{r.seconds:.1f}", r.run_dirs[-1] if r.run_dirs else ""])


def _spec_toml(spec: SearchSpec) -> str:
    params: dict[str, Any] = {}
    for k, p in spec.params.items():
        params[k] = list(p.values) if isinstance(p, Choice) else {"min": p.low, "max": p.high, "log": p.log, "int": p.integer}
    search = {"name": spec.name, "base": spec.base, "set": spec.overrides, "strategy": spec.strategy, "trials": spec.trials,
              "seed": spec.seed, "metric": spec.metric, "prune": spec.prune, "prune_after": spec.prune_after, "folds": spec.folds,
              "parallel": spec.parallel}
    return tomli_w.dumps({"search": search, "params": params})


def promote(spec: SearchSpec, best: TrialResult, extra: Sequence[str] = ()) -> RunConfig:
    """The best trial's configuration as a full run (``extra``: e.g. more steps)."""
    overrides = [override_text(k, v) for k, v in best.params.items()] + [f"run.name={spec.name}-best", *extra]
    return spec.base_config(overrides)
