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
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from studio.core.callbacks import Dispatcher, FunctionCallback
from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.errors import ConfigError
from studio.core.events import (
    EvalLogged,
    Event,
    RunEnded,
    SearchFinished,
    StepLogged,
    TrialFinished,
    TrialPruned,
    TrialStarted,
)
from studio.core.paths import data_dir
from studio.core.runs.trials import (
    MedianPruner,
    SearchSpec,
    TrialResult,
    leaderboard,
    metric_of,
    override_text,
    spec_toml,
)
from studio.core.runs.worker_protocol import WorkerClient, WorkerJob, ended
from studio.core.training.trainer import Trainer

Executor = Callable[[RunConfig, Callable[[Event], None], RunControl, int], RunEnded]


def run_in_process(config: RunConfig, on_event: Callable[[Event], None], control: RunControl, slot: int) -> RunEnded:
    result = Trainer(config).fit([FunctionCallback(on_event)], control)
    return ended(result.status, result.step, result.best_loss, result.run_dir, result.error)


def run_in_child(config: RunConfig, on_event: Callable[[Event], None], control: RunControl, slot: int) -> RunEnded:
    """The same run in a ``studio worker`` process pinned to GPU ``slot`` (parallel trials)."""
    env = dict(os.environ)
    if gpu_count() > 1:
        env["CUDA_VISIBLE_DEVICES"] = str(slot)
    client = WorkerClient(WorkerJob(config=config), env=env)
    stop_sent = False

    def forward(event: Event) -> None:
        nonlocal stop_sent
        on_event(event)
        if control.stop_requested and not stop_sent:
            stop_sent = True
            client.command("stop")

    return client.run(forward)


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_search(spec: SearchSpec, callbacks: Sequence[Any] = (), control: RunControl | None = None,
               out: Path | None = None, parallel: int = 0) -> tuple[list[TrialResult], Path]:
    """Run every trial; returns the leaderboard (best first) and the search folder.

    ``parallel``: trials at once. 0 means one per GPU when there are several GPUs, else one after
    another. Parallel trials each run in their own process, pinned to their GPU.
    """
    control = control or RunControl()
    lock = threading.RLock()
    dispatcher = Dispatcher(list(callbacks))

    def emit(event: Event) -> None:
        with lock:
            dispatcher(event)

    spec.base_config()  # fail early, with the key, if the base or fixed overrides are invalid
    folder = out or (data_dir() / "searches" / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(spec_toml(spec), encoding="utf-8")
    pruner = MedianPruner(spec.minimize, spec.prune_after)
    settings = spec.settings()
    results: list[TrialResult] = []
    workers = parallel or spec.parallel or (gpu_count() if gpu_count() > 1 else 1)
    executor: Executor = run_in_child if workers > 1 else run_in_process

    def run_trial(trial: int, params: dict[str, Any], slot: int) -> None:
        shown = tuple((k, str(v)) for k, v in params.items())
        emit(TrialStarted(trial, len(settings), shown))
        record = _run_trial(spec, folder.name, trial, params, slot, executor, emit, pruner, control, lock)
        with lock:
            results.append(record)
            with (folder / "trials.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record.__dict__, default=str) + "\n")
        emit(TrialFinished(trial, record.status, record.value, shown, record.run_dirs[-1] if record.run_dirs else "",
                           record.steps, record.seconds, record.error))

    if workers <= 1:
        for trial, params in enumerate(settings, start=1):  # trials are numbered from 1 everywhere
            if control.stop_requested:
                break
            run_trial(trial, params, 0)
    else:
        queue = list(enumerate(settings, start=1))

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


def _run_trial(spec: SearchSpec, search_id: str, trial: int, params: dict[str, Any], slot: int, executor: Executor, emit: Callable[[Event], None],
               pruner: MedianPruner, control: RunControl, lock: Any) -> TrialResult:
    started = time.perf_counter()
    folds = range(spec.folds) if spec.folds > 1 else [None]
    values: list[float] = []
    run_dirs: list[str] = []
    steps, status, error = 0, "finished", ""
    curve: dict[int, float] = {}
    for fold in folds:
        extra = [override_text(k, v) for k, v in params.items()]
        extra += [f"run.name={spec.name}-t{trial}" + (f"-f{fold}" if fold is not None else ""), f'run.tags=["search:{search_id}", "trial:{trial}"]']
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
                    emit(TrialPruned(trial, event.step, value, pruner.reference(event.step)))
                    pruned[0] = True
                    trial_control.request_stop()

        result = executor(config, on_event, trial_control, slot)
        run_dirs.append(result.run_dir)
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


def _write_leaderboard(path: Path, board: list[TrialResult], spec: SearchSpec) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "trial", *spec.params, spec.metric, "status", "steps", "seconds", "run"])
        for i, r in enumerate(board, start=1):
            writer.writerow([i, r.trial, *(r.params[k] for k in spec.params), "" if r.value is None else f"{r.value:.6g}",
                             r.status, r.steps, f"{r.seconds:.1f}", r.run_dirs[-1] if r.run_dirs else ""])


