"""A search's Optuna study: samplers, pruners and the record of every trial, in ``study.db``.

The study is an SQLite file in the search's folder (Optuna's RDBStorage), beside ``spec.toml``,
``trials.jsonl`` and ``leaderboard.csv``; those two are derived from it after every trial. Each
Optuna trial is one Studio trial (its number + 1, since Studio counts from 1); its user
attributes keep what Optuna does not: Studio's status (finished, early_stopped, pruned, failed,
stopped), the value, steps, seconds, run folders and error.

A trial that a stop interrupted (or a killed process left running) is failed in the study with
status ``stopped`` and, when the search is resumed, queued again with the same parameters (its
``retry_of``): it is never counted as finished, and no finished trial runs twice.

Grid and random searches know their trials in advance: all of them are queued at creation, in
order, so a grid runs in the order of the spec and a resumed random search does not draw the
same points again. The model-based samplers (TPE, CMA-ES, GP) are reseeded on resume with the
spec's seed plus the trials so far, for the same reason, and stay repeatable.

The study file is untrusted input: a damaged one is a ``StudyError`` with the reason, never a
traceback.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from studio.core.errors import StudioError
from studio.core.i18n import _
from studio.core.runs.trials import PLANNED, Choice, SearchSpec, TrialResult

STUDY_FILE = "study.db"
STUDY_NAME = "studio"
# Trials that used up a place in the trial budget; ``stopped`` ones are run again on resume.
COUNTED = ("finished", "early_stopped", "pruned", "failed")


class StudyError(StudioError):
    """The study file cannot be opened or read (damaged, of another version, not a study)."""


def _damage() -> tuple[type[BaseException], ...]:
    # Deferred: SQLAlchemy's exceptions module alone takes ~0.35 s to import, and Optuna loads
    # SQLAlchemy only when a study is opened; a search that never failed never needs it.
    import sqlalchemy.exc

    return (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError, sqlite3.Error, RuntimeError, KeyError, ValueError,
            TypeError, AttributeError)


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; Studio reports trials itself."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def distributions(spec: SearchSpec) -> dict[str, BaseDistribution]:
    space: dict[str, BaseDistribution] = {}
    for key, p in spec.params.items():
        if isinstance(p, Choice):
            space[key] = CategoricalDistribution(list(p.values))
        elif p.integer:
            space[key] = IntDistribution(int(round(p.low)), int(round(p.high)), log=p.log)
        else:
            space[key] = FloatDistribution(p.low, p.high, log=p.log)
    return space


def make_sampler(spec: SearchSpec, seed: int, workers: int = 1) -> optuna.samplers.BaseSampler:
    """The strategy's sampler. Grid and random trials are queued in the study beforehand, so their
    sampler only ever fills a parameter that was not queued."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.strategy == "tpe":
            # multivariate: learns how parameters work together (lr with depth); constant_liar: parallel
            # trials do not all pick the same promising point.
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials, multivariate=True,
                                              constant_liar=workers > 1)
        if spec.strategy == "cmaes":
            integer = any(not isinstance(p, Choice) and p.integer for p in spec.params.values())
            return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=spec.startup_trials, with_margin=integer)
        if spec.strategy == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=spec.startup_trials)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: SearchSpec, steps: int, eval_interval: int) -> optuna.pruners.BasePruner:
    """The spec's pruner. Steps are optimizer steps (trials report their metric at each
    evaluation); halving and Hyperband start their first rung at ``prune_warmup``, or at the
    first evaluation."""
    if not spec.prune:
        return optuna.pruners.NopPruner()
    first = max(1, spec.prune_warmup or eval_interval)
    if spec.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=max(steps, first * 3), reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=spec.prune_startup, n_warmup_steps=spec.prune_warmup)


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def result_of(ft: FrozenTrial, spec: SearchSpec) -> TrialResult:
    """One study trial as Studio's record of it (attributes read defensively: the file is input)."""
    attrs = ft.user_attrs
    status = _text(attrs.get("status"))
    if not status:  # a trial Studio did not get to tell (the process was killed)
        status = {TrialState.COMPLETE: "finished", TrialState.PRUNED: "pruned", TrialState.RUNNING: "running",
                  TrialState.WAITING: "waiting"}.get(ft.state, "failed")
    value = _number(attrs.get("value"))
    if value is None and "value" not in attrs and ft.state == TrialState.COMPLETE:
        value = ft.value
    run_dirs = attrs.get("run_dirs")
    steps = _number(attrs.get("steps"))
    seconds = _number(attrs.get("seconds"))
    if seconds is None and ft.datetime_start is not None and ft.datetime_complete is not None:
        seconds = (ft.datetime_complete - ft.datetime_start).total_seconds()
    retry_of = _number(attrs.get("retry_of"))
    return TrialResult(
        trial=ft.number + 1, params={k: ft.params.get(k) for k in spec.params}, status=status, value=value,
        steps=int(steps or 0), seconds=float(seconds or 0.0),
        run_dirs=[d for d in run_dirs if isinstance(d, str)] if isinstance(run_dirs, list) else [],
        error=_text(attrs.get("error")), retry_of=int(retry_of or 0),
    )


class SearchStudy:
    """The study of one search folder, opened (``create``: made) for ``spec``."""

    def __init__(self, folder: Path, spec: SearchSpec, create: bool, workers: int = 1, steps: int = 0, eval_interval: int = 1):
        quiet_optuna()
        self.folder = Path(folder)
        self.spec = spec
        self.path = self.folder / STUDY_FILE
        if not create and not self.path.is_file():
            # Translators: {folder} is a search folder, {file} the study's file name (study.db).
            raise StudyError(_("{folder} holds no search study ({file}): start the search anew, without --resume").format(
                folder=self.folder, file=STUDY_FILE))
        self.storage: Any = None
        try:
            if not create:
                self._check_sqlite()
            self.storage = optuna.storages.RDBStorage(f"sqlite:///{self.path.resolve()}",
                                                      engine_kwargs={"connect_args": {"timeout": 30}})
            direction: Literal["minimize", "maximize"] = "minimize" if spec.minimize else "maximize"
            if create:
                self.study = optuna.create_study(storage=self.storage, study_name=STUDY_NAME, direction=direction)
            else:
                self.study = optuna.load_study(study_name=STUDY_NAME, storage=self.storage)
                if self.study.direction.name.lower() != direction:
                    # Translators: {metric} is the metric's name; {direction} minimize or maximize, kept as is.
                    raise StudyError(_("{path} was made to {direction} another metric than {metric}").format(
                        path=self.path, direction=self.study.direction.name.lower(), metric=spec.metric))
            self.study_id = self.storage.get_study_id_from_name(STUDY_NAME)
            self.study.sampler = make_sampler(spec, spec.seed + len(self.study.get_trials(deepcopy=False)), workers)
            self.study.pruner = make_pruner(spec, steps, eval_interval)
            if create and spec.strategy in PLANNED:
                for params in spec.settings():
                    self.study.enqueue_trial(params)
        except StudyError:
            self.close()
            raise
        except _damage() as e:
            self.close()
            if create:
                # Translators: {path} is the study file to be made, {reason} what went wrong (often in English, from SQLite).
                raise StudyError(_("{path}: the search study cannot be made ({reason})").format(
                    path=self.path, reason=str(e).splitlines()[0] if str(e) else type(e).__name__)) from None
            raise self.damaged(e) from None

    def _check_sqlite(self) -> None:
        """SQLite's own check, read-only, before Optuna (which would try to migrate) touches the file."""
        try:
            db = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True)
            try:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                # Every page, quickly (milliseconds for a study): a torn file fails here, not mid-search.
                problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            finally:
                db.close()
        except sqlite3.Error as e:
            raise self.damaged(e) from None
        if problems != ["ok"]:
            raise self.damaged(ValueError(str(problems[0]) if problems else "quick_check"))
        if not {"studies", "trials"} <= tables:
            raise self.damaged(ValueError(_("it has no Optuna study tables")))

    def damaged(self, error: BaseException) -> StudyError:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        # Translators: {path} is the study file, {reason} what went wrong (often in English, from SQLite).
        return StudyError(_("{path} cannot be read as a search study ({reason}); it may be damaged. Start the search anew "
                            "(its trials' runs stay in the library)").format(path=self.path, reason=reason))

    def close(self) -> None:
        engine = getattr(self.storage, "engine", None)
        if engine is not None:
            engine.dispose()  # no connection keeps the file open (Windows cannot move an open file)

    # ---- reading ------------------------------------------------------------------------------

    def frozen(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=tuple(states) if states is not None else None)

    def results(self) -> list[TrialResult]:
        """Every trial that started and ended, in trial order."""
        return [result_of(ft, self.spec) for ft in self.frozen((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))]

    def counted(self) -> int:
        return sum(r.status in COUNTED for r in self.results())

    def waiting(self) -> int:
        return len(self.frozen((TrialState.WAITING,)))

    def completed(self) -> int:
        return len(self.frozen((TrialState.COMPLETE,)))

    def median_at(self, step: int, exclude: int) -> float:
        """The median of the finished trials' values at ``step`` (what the median pruner compares with)."""
        values = [ft.intermediate_values[step] for ft in self.frozen((TrialState.COMPLETE,))
                  if ft.number != exclude and step in ft.intermediate_values]
        return statistics.median(values) if values else math.nan

    @property
    def elapsed_s(self) -> float:
        return _number(self.study.user_attrs.get("elapsed_s")) or 0.0

    def set_elapsed(self, seconds: float) -> None:
        """The search's wall time over all its sessions (what ``time_budget`` counts)."""
        self.study.set_user_attr("elapsed_s", seconds)

    # ---- writing ------------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Fail what a killed process left running and queue every interrupted trial again, once.
        Returns the trials (Studio's numbers) queued again."""
        for ft in self.frozen((TrialState.RUNNING,)):
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, ft.number)
            self.storage.set_trial_user_attr(trial_id, "status", "stopped")
            self.storage.set_trial_user_attr(trial_id, "error", _("interrupted"))
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        results = self.results()
        retried = {r.retry_of for r in results} | {
            int(v) for ft in self.frozen((TrialState.WAITING, TrialState.RUNNING))
            if isinstance(v := ft.user_attrs.get("retry_of"), int)}
        again = []
        for r in results:
            if r.status == "stopped" and r.trial not in retried and None not in r.params.values():
                self.study.enqueue_trial(r.params, user_attrs={"retry_of": r.trial})
                again.append(r.trial)
        return again

    def extend_plan(self) -> int:
        """A random search resumed with more trials: queue the draws after those queued before (the
        same seed draws the same first points, so those are skipped). Returns how many were queued."""
        queued = sum(not isinstance(ft.user_attrs.get("retry_of"), int) for ft in self.frozen())
        more = self.spec.settings()[queued:]
        for params in more:
            self.study.enqueue_trial(params)
        return len(more)

    def ask(self) -> optuna.Trial:
        return self.study.ask(distributions(self.spec))

    def tell(self, trial: optuna.Trial, record: TrialResult) -> None:
        for key in ("status", "value", "steps", "seconds", "run_dirs", "error"):
            trial.set_user_attr(key, getattr(record, key))
        value = record.value
        if record.status in ("finished", "early_stopped") and value is not None and math.isfinite(value):
            self.study.tell(trial, value)
        elif record.status == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)  # Optuna keeps its last reported value
        else:  # failed, stopped, or no value to learn from
            self.study.tell(trial, state=TrialState.FAIL)
