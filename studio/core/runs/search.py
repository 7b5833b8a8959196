"""Hyperparameter search on Optuna: grid, random, TPE, CMA-ES or GP trials, median, successive
halving or Hyperband pruning, optional k-fold cross-validation, and resuming (docs/search.md).

A search spec is TOML::

    [search]
    name = "lr-and-depth"
    base = "demo-gpt"                 # a preset or a config file
    set = ["train.steps=300"]         # fixed overrides for every trial
    strategy = "tpe"                  # grid | random | tpe | cmaes | gp
    trials = 20                       # how many (a grid: every combination)
    seed = 0                          # the same seed, the same trials
    metric = "valid_loss"             # or a task metric: accuracy, bleu, rougeL, f1, ...
    pruner = "median"                 # median | halving | hyperband (prune = true: median)
    prune_startup = 5                 # ... only once this many trials have finished
    time_budget = "30m"               # the whole search; per trial: trial_steps = 300, trial_time = "2m"
    folds = 0                         # k-fold cross-validation (classification, stratified): k runs per trial

    [params]
    "train.lr" = { min = 1e-4, max = 1e-2, log = true }        # a range
    "model.n_layers" = [2, 4]                                  # a list: choose among these
    "train.batch_size" = { min = 8, max = 32, log = true, int = true }

Each trial is a normal run in the run library through ``Trainer.fit`` (tagged with the search),
so it can be opened, compared, resumed or promoted like any other; it reports its metric to
the study at every evaluation, and a pruned trial is stopped through the ``TrialPruned`` event.
The study (``study.db`` in the search folder, ``studio.core.runs.study``) is the record:
``--resume`` continues from it, and ``trials.jsonl`` and ``leaderboard.csv`` are derived from it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import torch
from filelock import FileLock, Timeout

from studio.core.callbacks import Dispatcher, FunctionCallback
from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.durations import parse_duration
from studio.core.errors import ConfigError, StudioError
from studio.core.events import (
    EvalLogged,
    Event,
    LogMessage,
    RunEnded,
    SearchFinished,
    StepLogged,
    TrialFinished,
    TrialPruned,
    TrialStarted,
)
from studio.core.fileio import atomic_write_text
from studio.core.i18n import _
from studio.core.paths import data_dir
from studio.core.runs.study import COUNTED, STUDY_FILE, SearchStudy
from studio.core.runs.trials import (
    PLANNED,
    SearchSpec,
    TrialResult,
    leaderboard,
    metric_of,
    override_text,
    spec_toml,
)
from studio.core.runs.worker_protocol import WorkerClient, WorkerJob, ended
from studio.core.training import tensorboard
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


def new_search_folder(name: str) -> Path:
    root = data_dir() / "searches"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = root / f"{stamp}-{name}", 2
    while folder.exists():  # two searches of one name in one second stay apart
        folder, n = root / f"{stamp}-{name}-{n}", n + 1
    return folder


def find_search(name: str) -> Path | None:
    """The newest search folder of the spec called ``name`` that holds a study."""
    root = data_dir() / "searches"
    pattern = re.compile(rf"\d{{8}}-\d{{6}}-{re.escape(name)}(-\d+)?")
    found = [p for p in root.glob("*") if pattern.fullmatch(p.name) and (p / STUDY_FILE).is_file()]
    return max(found, key=lambda p: (p.name[:15], p.stat().st_mtime)) if found else None


RESUMABLE_CHANGES = ("trials", "time_budget", "parallel")


def resume_spec(folder: Path, given: SearchSpec | None = None) -> SearchSpec:
    """The spec a search folder was started with. ``given`` (the spec file named again) may change
    its budgets, ``RESUMABLE_CHANGES``, but nothing that would make the trials incomparable."""
    saved = SearchSpec.load(Path(folder) / "spec.toml")
    if given is None:
        return saved
    differ = [f.name for f in dataclasses.fields(SearchSpec) if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(given, f.name)]
    if differ:
        # Translators: {keys} lists settings of the search spec; {allowed} those that may change (trials, time_budget, parallel).
        message = _("this spec differs from the one the search in {folder} was started with ({keys}); on resume only {allowed} may change")
        raise ConfigError(message.format(folder=folder, keys=", ".join(differ), allowed=", ".join(RESUMABLE_CHANGES)))
    return dataclasses.replace(saved, trials=given.trials, time_budget=given.time_budget, parallel=given.parallel)


@contextmanager
def _search_lock(folder: Path) -> Iterator[None]:
    """One process at a time runs a search folder (a second --resume would run trials twice)."""
    lock = FileLock(folder / "search.lock", timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise StudioError(_("the search in {folder} is running in another process").format(folder=folder)) from None
    try:
        yield
    finally:
        lock.release()


def run_search(spec: SearchSpec, callbacks: Sequence[Any] = (), control: RunControl | None = None,
               out: Path | None = None, parallel: int = 0, resume: bool = False) -> tuple[list[TrialResult], Path]:
    """Run the search's trials; returns the leaderboard of every trial in its study (best first)
    and the search folder.

    ``out``: the search folder (default: a new one under the data folder's ``searches/``).
    ``resume``: continue the search in ``out`` (see ``resume_spec``): finished trials stay, an
    interrupted one runs again. ``parallel``: trials at once. 0 means one per GPU when there are
    several GPUs, else one after another. Parallel trials each run in their own process, pinned
    to their GPU.
    """
    control = control or RunControl()
    base = spec.base_config()  # fail early, with the key, if the base or fixed overrides are invalid
    if resume and out is None:
        raise ConfigError(_("name the search folder to resume"))
    folder = Path(out) if out is not None else new_search_folder(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    workers = parallel or spec.parallel or (gpu_count() if gpu_count() > 1 else 1)
    with _search_lock(folder):
        if not resume and (folder / STUDY_FILE).exists():
            raise ConfigError(_("{folder} already holds a search; continue it with --resume").format(folder=folder))
        book = SearchStudy(folder, spec, create=not resume, workers=workers, steps=base.train.steps,
                           eval_interval=base.train.eval_interval)
        try:
            atomic_write_text(folder / "spec.toml", spec_toml(spec))
            return _search(spec, folder, book, list(callbacks), control, workers, resume)
        except _storage_errors() as e:
            raise book.damaged(e) from None
        finally:
            book.close()


def _search(spec: SearchSpec, folder: Path, book: SearchStudy, callbacks: list[Any], control: RunControl, workers: int,
            resume: bool) -> tuple[list[TrialResult], Path]:
    lock = threading.RLock()  # one thread at a time in the study and the callbacks
    dispatcher = Dispatcher(callbacks)

    def emit(event: Event) -> None:
        with lock:
            dispatcher(event)

    executor: Executor = run_in_child if workers > 1 else run_in_process
    budget = parse_duration(spec.time_budget)
    started, before = time.perf_counter(), book.elapsed_s
    target = spec.planned_trials
    if resume:
        for trial in book.recover():
            emit(LogMessage("info", _("trial {trial} was interrupted; it runs again with the same settings").format(trial=trial)))
        if spec.strategy == "random":
            book.extend_plan()
    state = {"done": book.counted(), "running": 0, "budget_noted": 0}
    # Trial numbers run on past interrupted ones (their reruns get new numbers): "trial 4/4", not "4/3".
    shown_total = target + sum(r.status == "stopped" for r in book.results())

    def used() -> float:
        return before + time.perf_counter() - started

    def next_trial() -> optuna.Trial | None:
        with lock:
            if control.stop_requested or state["done"] + state["running"] >= target:
                return None
            if budget is not None and used() >= budget:
                if not state["budget_noted"]:
                    state["budget_noted"] = 1
                    # Translators: {budget} is a duration as written in the spec (10m); time_budget is a setting's name.
                    emit(LogMessage("info", _("the search's time budget ({budget}) is used up; no more trials start "
                                              "(raise time_budget and resume to go on)").format(budget=spec.time_budget)))
                return None
            if spec.strategy in PLANNED and not book.waiting():
                return None
            state["running"] += 1
            return book.ask()

    def finish(otrial: optuna.Trial, record: TrialResult) -> None:
        with lock:
            retry_of = otrial.user_attrs.get("retry_of")
            record.retry_of = retry_of if isinstance(retry_of, int) else 0
            book.tell(otrial, record)
            book.set_elapsed(used())
            state["running"] -= 1
            state["done"] += record.status in COUNTED
            _write_outputs(folder, book.results(), spec)

    def run_trial(otrial: optuna.Trial, slot: int) -> None:
        trial = otrial.number + 1  # trials are numbered from 1 everywhere
        params = {k: otrial.params[k] for k in spec.params}
        shown = tuple((k, str(v)) for k, v in params.items())
        emit(TrialStarted(trial, shown_total, shown))
        try:
            record = _run_trial(spec, folder.name, trial, params, slot, executor, emit, book, otrial, control, lock)
        except BaseException as e:  # the study must hear how every trial it gave out ended
            status = "stopped" if isinstance(e, KeyboardInterrupt) else "failed"
            finish(otrial, TrialResult(trial, params, status, None, 0, 0.0, [], str(e) or type(e).__name__))
            raise
        finish(otrial, record)
        emit(TrialFinished(trial, record.status, record.value, shown, record.run_dirs[-1] if record.run_dirs else "",
                           record.steps, record.seconds, record.error))

    def worker(slot: int) -> None:
        while (otrial := next_trial()) is not None:
            run_trial(otrial, slot)

    if workers <= 1:
        worker(0)
    else:
        threads = [threading.Thread(target=worker, args=(slot,), name=f"trial-slot-{slot}") for slot in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with lock:
        book.set_elapsed(used())
        results = book.results()
    board = leaderboard(results, spec.minimize)
    _write_outputs(folder, results, spec)
    emit(SearchFinished(str(folder), board[0].trial if board and board[0].value is not None else -1, len(results)))
    return board, folder


def _run_trial(spec: SearchSpec, search_id: str, trial: int, params: dict[str, Any], slot: int, executor: Executor,
               emit: Callable[[Event], None], book: SearchStudy, otrial: optuna.Trial, control: RunControl, lock: Any) -> TrialResult:
    started = time.perf_counter()
    folds = range(spec.folds) if spec.folds > 1 else [None]
    values: list[float] = []
    run_dirs: list[str] = []
    steps, status, error = 0, "finished", ""
    reported: set[int] = set()  # steps told to the study (fold 0's curve)
    study_broken: list[str] = []
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
        budget = parse_duration(config.train.time_budget)  # trials at equal cost: trial_time = "2m"

        def on_event(event: Event, fold: int | None = fold, best: list[float] = best, trial_control: RunControl = trial_control,
                     pruned: list[bool] = pruned, total: list[int] = total, budget: float | None = budget) -> None:
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
            if fold not in (None, 0) or not math.isfinite(value) or event.step in reported:
                return
            prune, reference = False, math.nan
            with lock:
                reported.add(event.step)
                # The last evaluation ends the trial anyway: a finished trial is never "pruned". (Under a time
                # budget the last one is the evaluation made once the budget is used.)
                last = event.step >= total[0] or (budget is not None and event.elapsed_s >= budget)
                try:
                    otrial.report(value, event.step)  # every evaluation: the pruners' and the report's curves
                    # No pruning on the evidence of too few: spec.prune_startup finished trials first, for every pruner.
                    prune = (spec.prune and not last and len(reported) >= spec.prune_after and not study_broken
                             and book.completed() >= spec.prune_startup and otrial.should_prune())
                    if prune:
                        reference = book.median_at(event.step, otrial.number)
                except _storage_errors() as e:
                    if not study_broken:
                        study_broken.append(str(e))
                        # Translators: {error} is the database's own words (in English).
                        emit(LogMessage("warning", _("the search's study cannot be written ({error}); this trial runs without "
                                                     "pruning").format(error=str(e).splitlines()[0])))
            if prune:
                emit(TrialPruned(trial, event.step, value, reference))
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
            if status != "stopped" and result.run_dir:
                _write_hparams(Path(result.run_dir), params, fold, status, spec.metric, values[-1], emit)
        if status in ("pruned", "stopped"):
            break
    value = statistics.mean(values) if values and status in ("finished", "pruned") else None
    return TrialResult(trial, params, status, value, steps, time.perf_counter() - started, run_dirs, error)


def _write_hparams(run_dir: Path, params: dict[str, Any], fold: int | None, status: str, metric: str, value: float,
                   emit: Callable[[Event], None]) -> None:
    """The trial's settings and result in its run's TensorBoard folder, for the HParams dashboard."""
    if not tensorboard.available():
        return
    hparams: dict[str, Any] = dict(params)
    if fold is not None:
        hparams["fold"] = fold
    hparams["status"] = status
    try:
        tensorboard.write_hparams(run_dir / "tensorboard", hparams, {f"hparam/{metric}": value})
    except Exception as e:  # noqa: BLE001 - TensorBoard is a view; the search goes on without it
        # Translators: {error} is the error as Python writes it.
        emit(LogMessage("warning", _("TensorBoard hparams not written: {error}").format(error=e)))


def _storage_errors() -> tuple[type[BaseException], ...]:
    # Deferred: SQLAlchemy's exceptions module alone takes ~0.35 s to import, and Optuna loads
    # SQLAlchemy only when a study is opened; a search that never failed never needs it.
    import sqlalchemy.exc

    return (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError)


def _write_outputs(folder: Path, results: list[TrialResult], spec: SearchSpec) -> None:
    """trials.jsonl (trial order) and leaderboard.csv (best first), both derived from the study."""
    atomic_write_text(folder / "trials.jsonl", "".join(json.dumps(r.__dict__, default=str) + "\n" for r in results), durable=False)
    _write_leaderboard(folder / "leaderboard.csv", leaderboard(results, spec.minimize), spec)


def _write_leaderboard(path: Path, board: list[TrialResult], spec: SearchSpec) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["rank", "trial", *spec.params, spec.metric, "status", "steps", "seconds", "run"])
    for i, r in enumerate(board, start=1):
        writer.writerow([i, r.trial, *(r.params.get(k) for k in spec.params), "" if r.value is None else f"{r.value:.6g}",
                         r.status, r.steps, f"{r.seconds:.1f}", r.run_dirs[-1] if r.run_dirs else ""])
    atomic_write_text(path, out.getvalue(), durable=False)
