"""What mattered in a search, as plain data the Search page can plot and the CLI can print:
parameter importance, parallel coordinates, a scatter of each parameter against the metric, and
the best trial's curve against the median trial's; plus a short text summary.

Importance is Optuna's fANOVA evaluator (``FanovaImportanceEvaluator``: a random forest fitted
to the finished trials, then the share of the metric's variance each parameter explains; its
forest is scikit-learn's, a dependency already). fANOVA rather than mean decrease in impurity
because it measures the metric's variance itself, not the forest's split bookkeeping, and with
the few trials of a typical search it is the steadier of the two; seeded, so a report reads the
same twice. Optuna 5's default, PED-ANOVA, compares the best quantile of trials with the rest
and needs more trials than most searches here have.

Curves are the metric at each evaluation, as every trial reported it to the study (for a
cross-validated trial, its first fold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from studio.core.durations import format_duration
from studio.core.errors import ConfigError
from studio.core.i18n import _, ngettext
from studio.core.runs.study import SearchStudy
from studio.core.runs.trials import Choice, SearchSpec, TrialResult, leaderboard

EVALUATOR = "fANOVA"


@dataclass(frozen=True)
class Axis:
    """One parameter's axis: a range (linear or log) or a list of choices (evenly spaced)."""

    name: str
    kind: str  # float | int | choice
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def position(self, value: Any) -> float | None:
        """Where ``value`` lies on the axis, 0 (low or first choice) to 1; None when it is not on it."""
        if self.kind == "choice":
            if value not in self.choices:
                return None
            return self.choices.index(value) / (len(self.choices) - 1) if len(self.choices) > 1 else 0.5
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        low, high, x = float(self.low), float(self.high), float(value)
        if self.log and low > 0 and x > 0:
            low, high, x = math.log(low), math.log(high), math.log(x)
        return 0.5 if high == low else min(1.0, max(0.0, (x - low) / (high - low)))


@dataclass(frozen=True)
class Line:
    """One trial across the parallel coordinates: its position on each axis, in axis order."""

    trial: int
    status: str
    value: float | None
    positions: tuple[float | None, ...]


@dataclass(frozen=True)
class Point:
    trial: int
    status: str
    x: Any  # the parameter's value (a choice may be text)
    value: float


@dataclass(frozen=True)
class Curve:
    trial: int
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclass
class SearchReport:
    folder: Path
    spec: SearchSpec
    trials: list[TrialResult]  # every trial that ended, best first (the leaderboard)
    counts: dict[str, int]  # finished, pruned, failed, stopped, running
    wall_s: float
    importances: dict[str, float] = field(default_factory=dict)  # parameter -> share of the variance; sums to 1
    importance_note: str = ""  # why there are none, when there are none
    axes: list[Axis] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    scatter: dict[str, list[Point]] = field(default_factory=dict)
    best_curve: Curve | None = None
    median_curve: Curve | None = None
    evaluator: str = EVALUATOR

    @property
    def best(self) -> TrialResult | None:
        return self.trials[0] if self.trials and self.trials[0].value is not None else None


def axes_of(spec: SearchSpec) -> list[Axis]:
    out = []
    for name, p in spec.params.items():
        if isinstance(p, Choice):
            out.append(Axis(name, "choice", 0.0, float(max(0, len(p.values) - 1)), False, p.values))
        else:
            out.append(Axis(name, "int" if p.integer else "float", p.low, p.high, p.log))
    return out


def load_report(folder: Path | str, importance: bool = True) -> SearchReport:
    """The report of the search in ``folder`` (it may still be running). ``importance``: fit the
    fANOVA forest too (a second or two; the rest is instant)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(_("{folder} is not a search folder").format(folder=folder))
    spec = SearchSpec.load(folder / "spec.toml")
    book = SearchStudy(folder, spec, create=False)
    try:
        return _report(folder, spec, book, importance)
    except (OSError, ValueError, TypeError, KeyError) as e:  # a study readable at first, damaged further in
        raise book.damaged(e) from None
    except Exception as e:
        # Deferred: SQLAlchemy's exceptions module alone takes ~0.35 s to import, and Optuna loads
        # SQLAlchemy only when a study is opened; a search that never failed never needs it.
        import sqlalchemy.exc

        if isinstance(e, sqlalchemy.exc.SQLAlchemyError):
            raise book.damaged(e) from None
        raise
    finally:
        book.close()


def _report(folder: Path, spec: SearchSpec, book: SearchStudy, importance: bool) -> SearchReport:
    results = book.results()
    board = leaderboard(results, spec.minimize)
    counts = {"finished": 0, "pruned": 0, "failed": 0, "stopped": 0}
    for r in results:
        key = "finished" if r.status == "early_stopped" else r.status
        counts[key] = counts.get(key, 0) + 1
    counts["running"] = len(book.frozen((TrialState.RUNNING,)))
    report = SearchReport(folder, spec, board, counts, book.elapsed_s or sum(r.seconds for r in results))
    report.axes = axes_of(spec)
    with_value = [r for r in results if r.value is not None and math.isfinite(r.value)]
    report.lines = [Line(r.trial, r.status, r.value, tuple(a.position(r.params.get(a.name)) for a in report.axes)) for r in results]
    report.scatter = {a.name: [Point(r.trial, r.status, r.params.get(a.name), r.value) for r in with_value  # type: ignore[arg-type]
                               if r.params.get(a.name) is not None] for a in report.axes}
    curves = {ft.number + 1: ft.intermediate_values for ft in book.frozen((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))}
    finished = [r for r in board if r.status in ("finished", "early_stopped") and r.value is not None]

    def curve(trial: int) -> Curve | None:
        points = sorted(curves.get(trial, {}).items())
        return Curve(trial, tuple(s for s, _v in points), tuple(v for _s, v in points)) if points else None

    if report.best is not None:
        report.best_curve = curve(report.best.trial)
    if len(finished) >= 2:
        report.median_curve = curve(finished[len(finished) // 2].trial)
    if importance:
        report.importances, report.importance_note = _importances(book, spec, len(finished))
    return report


def _importances(book: SearchStudy, spec: SearchSpec, finished: int) -> tuple[dict[str, float], str]:
    if len(spec.params) < 2:
        return {k: 1.0 for k in spec.params}, ""  # one parameter explains everything it can
    complete = book.frozen((optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, _("importance needs at least 2 finished trials")
    values = [ft.value for ft in complete]
    if len(set(values)) < 2:
        return {}, _("the finished trials all reached the same value: no parameter made a difference")
    try:
        raw = optuna.importance.get_param_importances(
            book.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=list(spec.params), normalize=True,
        )
    except (ValueError, RuntimeError) as e:  # e.g. a parameter that never varied
        # Translators: {reason} is Optuna's own words (in English).
        return {}, _("importance could not be computed: {reason}").format(reason=e)
    shares = {k: float(raw.get(k, 0.0)) for k in spec.params}
    total = sum(shares.values())
    if not math.isfinite(total) or total <= 0:
        return {}, _("the finished trials all reached the same value: no parameter made a difference")
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}, ""


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_report(report: SearchReport) -> str:
    """A short text summary: counts and wall time, the best trial and its settings, importances."""
    spec, c = report.spec, report.counts
    ended = sum(v for k, v in c.items() if k != "running")
    lines = [ngettext("search {folder}: {n} trial in {time}", "search {folder}: {n} trials in {time}", ended).format(
        folder=report.folder.name, n=ended, time=format_duration(report.wall_s))]
    # Translators: how the trials ended; {running} is "" or ", 1 running" (a search still going, or killed).
    lines.append(_("  {finished} finished, {pruned} pruned, {failed} failed, {stopped} stopped{running}").format(
        finished=c.get("finished", 0), pruned=c.get("pruned", 0), failed=c.get("failed", 0), stopped=c.get("stopped", 0),
        running=_(", {n} running").format(n=c["running"]) if c.get("running") else ""))
    best = report.best
    if best is None:
        lines.append(_("no trial reached a value yet"))
    else:
        direction = _("lower is better") if spec.minimize else _("higher is better")
        # Translators: {metric} is the metric's name (valid_loss), {direction} "lower is better" or "higher is better".
        lines.append(_("best: trial {trial}, {metric} {value:.4f} ({direction})").format(
            trial=best.trial, metric=spec.metric, value=best.value, direction=direction))
        width = max(len(k) for k in best.params)
        lines += [f"  {k:<{width}}  {_shown(v)}" for k, v in best.params.items()]
    if report.importances:
        n = c.get("finished", 0)
        # Translators: {evaluator} is fANOVA, a method's name.
        lines.append(ngettext("importance ({evaluator}, over {n} finished trial):", "importance ({evaluator}, over {n} finished trials):",
                              n).format(evaluator=report.evaluator, n=n))
        width = max(len(k) for k in report.importances)
        for k, share in report.importances.items():
            lines.append(f"  {k:<{width}}  {share:5.1%}  {'#' * round(share * 30)}")
    elif report.importance_note:
        lines.append(_("importance: {note}").format(note=report.importance_note))
    if report.best_curve is not None and report.median_curve is not None and report.median_curve.trial != report.best_curve.trial:
        b, m = report.best_curve, report.median_curve
        # Translators: {best} and {median} are trial numbers; the values are the metric at its last evaluation, at step {b_step}, {m_step}.
        lines.append(_("curves: the best trial, {best}, reached {b_value:.4f} at step {b_step}; the median trial, {median}, "
                       "{m_value:.4f} at step {m_step}").format(best=b.trial, b_value=b.values[-1], b_step=b.steps[-1],
                                                                median=m.trial, m_value=m.values[-1], m_step=m.steps[-1]))
    return "\n".join(lines)
