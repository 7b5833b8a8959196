"""A search's plan and its results, without running anything: the spec (read from TOML), the
trial parameters it yields, the leaderboard and promotion of the best trial.

No torch or Optuna at import, so the window's Search page can read and rank trials instantly;
running the trials is ``studio.core.runs.search``, their Optuna study ``studio.core.runs.study``.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from studio.core.config import RunConfig
from studio.core.durations import parse_duration
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.events import EvalLogged
from studio.core.i18n import _
from studio.core.resources import find_config

LOWER_IS_BETTER = {"valid_loss", "loss", "perplexity", "bits_per_char", "bits_per_byte"}


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


STRATEGIES = ("grid", "random", "tpe", "cmaes", "gp")
PRUNERS = ("median", "halving", "hyperband")
# Strategies whose trials are all known before the first runs (they are queued in the study at once).
PLANNED = ("grid", "random")


@dataclass
class SearchSpec:
    name: str
    base: str
    params: dict[str, Choice | Range]
    overrides: list[str] = field(default_factory=list)
    strategy: Literal["grid", "random", "tpe", "cmaes", "gp"] = "random"
    trials: int = 6
    seed: int = 0
    metric: str = "valid_loss"
    prune: bool = False
    pruner: Literal["median", "halving", "hyperband"] = "median"
    prune_after: int = 1  # evaluations a trial makes before it may be pruned
    prune_startup: int = 5  # finished trials before any trial is pruned (Optuna's n_startup_trials)
    prune_warmup: int = 0  # steps before a trial may be pruned; halving/hyperband: their first rung (0: the eval interval)
    startup: int = 0  # tpe, cmaes, gp: random trials before the model takes over; 0: a third of the trials (2 to 10)
    time_budget: str = ""  # the whole search's wall time ("10m"); no trial starts once it is used
    trial_steps: int = 0  # per trial: train.steps (0: the base's)
    trial_time: str = ""  # per trial: train.time_budget ("" : the base's)
    folds: int = 0
    parallel: int = 0  # trials at once; 0: one per GPU when there are several, else 1

    @property
    def minimize(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @property
    def planned_trials(self) -> int:
        """How many trials the search runs (a grid: every combination)."""
        if self.strategy == "grid":
            return math.prod(len(p.values) for p in self.params.values() if isinstance(p, Choice))
        return self.trials

    @property
    def startup_trials(self) -> int:
        return self.startup or max(2, min(10, self.trials // 3))

    @classmethod
    def load(cls, path: Path | str) -> SearchSpec:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(_("{path} does not exist").format(path=path)) from None
        except (IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
            raise ConfigError(_("{path} is not a search spec (a .toml file)").format(path=path)) from None
        except tomllib.TOMLDecodeError as e:
            # Translators: {reason} is the TOML reader's own words (in English).
            raise ConfigError(_("{path} is not valid TOML: {reason}").format(path=path, reason=e)) from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> SearchSpec:
        issues: list[ConfigIssue] = []
        s = dict(data.get("search", {}))
        known = {"name", "base", "set", "strategy", "trials", "seed", "metric", "prune", "pruner", "prune_after", "prune_startup",
                 "prune_warmup", "startup", "time_budget", "trial_steps", "trial_time", "folds", "parallel"}
        for key in s:
            if key not in known:
                # Translators: {known} lists the setting names of this section, kept as is.
                message = _("unknown setting (known: {known})").format(known=", ".join(sorted(known)))
                issues.append(ConfigIssue(f"search.{key}", message))
        for key in data:
            if key not in ("search", "params"):
                # Translators: search and params are section names of a search file, kept as is.
                issues.append(ConfigIssue(key, _("unknown section (known: search, params)")))

        def number(key: str, default: int, minimum: int) -> int:
            value = s.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                # Translators: {minimum} is a whole number.
                issues.append(ConfigIssue(f"search.{key}", _("must be a whole number of at least {minimum}").format(minimum=minimum)))
                return default
            return value

        def duration(key: str) -> str:
            value = s.get(key, "")
            try:
                parse_duration(str(value))
            except ValueError:
                # Translators: 90s, 10m and 1h30m are values, kept as is.
                issues.append(ConfigIssue(f"search.{key}", _("{value} is not a duration such as 90s, 10m or 1h30m").format(value=repr(value))))
                return ""
            return str(value)

        params: dict[str, Choice | Range] = {}
        for key, value in data.get("params", {}).items():
            if key.count(".") != 1:
                issues.append(ConfigIssue(f"params.{key}", _("a parameter is a setting such as train.lr")))
            elif isinstance(value, list) and value:
                if not all(isinstance(v, str | int | float | bool) for v in value):
                    issues.append(ConfigIssue(f"params.{key}", _("list values must be numbers, text or true/false")))
                else:
                    params[key] = Choice(tuple(value))
            elif isinstance(value, dict) and {"min", "max"} <= set(value):
                try:
                    low, high = float(value["min"]), float(value["max"])
                except (TypeError, ValueError):
                    issues.append(ConfigIssue(f"params.{key}", _("min and max must be numbers")))
                    continue
                integer, log = bool(value.get("int", False)), bool(value.get("log", False))
                params[key] = Range(low, high, log, integer)
                if low > high:
                    issues.append(ConfigIssue(f"params.{key}", _("min must not be larger than max")))
                if log and low <= 0:
                    # Translators: min is a key of the range, kept as is.
                    issues.append(ConfigIssue(f"params.{key}", _("a log range needs min > 0")))
                elif log and integer and low < 1:
                    # Translators: min is a key of the range, kept as is.
                    issues.append(ConfigIssue(f"params.{key}", _("a whole-number log range needs min >= 1")))
            else:
                # Translators: "{min, max}" is written as in the file, kept as is (it is not a placeholder).
                issues.append(ConfigIssue(f"params.{key}", _("give a list of values or a table {min, max}")))
        strategy = s.get("strategy", "random")
        if strategy not in STRATEGIES:
            # Translators: {known} lists the strategies' names (grid, random, tpe, ...), kept as is.
            message = _("must be one of {known} (got {strategy})").format(known=", ".join(STRATEGIES), strategy=repr(strategy))
            issues.append(ConfigIssue("search.strategy", message))
        if strategy == "grid" and any(isinstance(p, Range) for p in params.values()):
            issues.append(ConfigIssue("search.strategy", _("a grid needs lists of values, not ranges")))
        lists = [k for k, p in params.items() if isinstance(p, Choice)]
        if strategy == "cmaes" and lists:
            # CMA-ES moves a normal distribution over numbers; Optuna would quietly draw lists at random.
            # Translators: CMA-ES is a name; "{{min, max}}" (shown as {min, max}) and "int = true" are written as in the file.
            message = _("CMA-ES searches ranges only; give {{min, max}} (int = true for whole numbers) instead of a list for: {params}")
            issues.append(ConfigIssue("search.strategy", message.format(params=", ".join(lists))))
        pruner = s.get("pruner", "median")
        if pruner not in PRUNERS:
            # Translators: {known} lists the pruners' names (median, halving, hyperband), kept as is.
            message = _("must be one of {known} (got {pruner})").format(known=", ".join(PRUNERS), pruner=repr(pruner))
            issues.append(ConfigIssue("search.pruner", message))
        if not params:
            # Translators: [params] is a section of the search file, kept as is.
            issues.append(ConfigIssue("params", _("nothing to search: add [params]")))
        if "base" not in s:
            issues.append(ConfigIssue("search.base", _("name the preset or config file the trials start from")))
        spec = cls(
            name=str(s.get("name", "search")), base=str(s.get("base", "")), params=params, overrides=[str(o) for o in s.get("set", [])],
            strategy=strategy, trials=number("trials", 6, 1), seed=number("seed", 0, 0), metric=str(s.get("metric", "valid_loss")),
            prune=bool(s.get("prune", "pruner" in s)), pruner=pruner, prune_after=number("prune_after", 1, 1),
            prune_startup=number("prune_startup", 5, 0), prune_warmup=number("prune_warmup", 0, 0), startup=number("startup", 0, 0),
            time_budget=duration("time_budget"), trial_steps=number("trial_steps", 0, 0), trial_time=duration("trial_time"),
            folds=number("folds", 0, 0), parallel=number("parallel", 0, 0),
        )
        if issues:
            raise ConfigError(issues, source)
        return spec

    def trial_overrides(self) -> list[str]:
        """The fixed overrides of every trial: ``set``, then the per-trial budgets."""
        extra = list(self.overrides)
        if self.trial_steps:
            extra.append(f"train.steps={self.trial_steps}")
        if self.trial_time:
            extra.append(override_text("train.time_budget", self.trial_time))
        return extra

    def base_config(self, extra: Sequence[str] = ()) -> RunConfig:
        return RunConfig.load(find_config(self.base), [*self.trial_overrides(), *extra])

    def settings(self) -> list[dict[str, Any]]:
        """The trials' parameter values, in the order they will run (grid and random only: the
        other strategies choose each trial from the results before it)."""
        keys = list(self.params)
        if self.strategy == "grid":
            grids = [self.params[k].values for k in keys]  # type: ignore[union-attr]
            return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grids)]
        if self.strategy != "random":
            # Translators: {strategy} is tpe, cmaes or gp, kept as is.
            raise ConfigError(_("{strategy} chooses each trial from the results so far; its trials are not known in advance").format(
                strategy=self.strategy))
        # Deferred: Optuna (and SQLAlchemy under it) takes a second to import, and the Search page
        # reads specs and ranks trials without it. The draws are Optuna's, as the search makes them.
        import optuna

        from studio.core.runs.study import distributions, quiet_optuna

        quiet_optuna()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=self.seed))
        space = distributions(self)
        return [dict(study.ask(space).params) for _trial in range(self.trials)]


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
    retry_of: int = 0  # a rerun of this trial, which a stop interrupted (0: none)


def metric_of(event: EvalLogged, metric: str) -> float | None:
    if metric in ("valid_loss", "loss"):
        return event.loss
    if metric == "perplexity":
        return event.perplexity
    if metric == "bits_per_char":  # (compares trials whose tokenizers differ)
        return event.bits_per_char
    if metric == "bits_per_byte":
        return event.bits_per_byte
    return dict(event.metrics).get(metric)


def leaderboard(results: list[TrialResult], minimize: bool) -> list[TrialResult]:
    """Completed trials best first (pruned ones by the value they reached), failed ones last."""
    rank = {"finished": 0, "early_stopped": 0, "pruned": 1, "stopped": 2, "failed": 3}

    def key(r: TrialResult) -> tuple[int, int, float]:
        if r.value is None:
            return (1, rank.get(r.status, 3), 0.0)
        return (0, rank.get(r.status, 3), r.value if minimize else -r.value)

    return sorted(results, key=key)


def spec_toml(spec: SearchSpec) -> str:
    params: dict[str, Any] = {}
    for k, p in spec.params.items():
        params[k] = list(p.values) if isinstance(p, Choice) else {"min": p.low, "max": p.high, "log": p.log, "int": p.integer}
    search = {"name": spec.name, "base": spec.base, "set": spec.overrides, "strategy": spec.strategy, "trials": spec.trials,
              "seed": spec.seed, "metric": spec.metric, "prune": spec.prune, "pruner": spec.pruner, "prune_after": spec.prune_after,
              "prune_startup": spec.prune_startup, "prune_warmup": spec.prune_warmup, "startup": spec.startup,
              "time_budget": spec.time_budget, "trial_steps": spec.trial_steps, "trial_time": spec.trial_time, "folds": spec.folds,
              "parallel": spec.parallel}
    return tomli_w.dumps({"search": search, "params": params})


def promote(spec: SearchSpec, best: TrialResult, extra: Sequence[str] = ()) -> RunConfig:
    """The best trial's configuration as a full run (``extra``: e.g. more steps)."""
    overrides = [override_text(k, v) for k, v in best.params.items()] + [f"run.name={spec.name}-best", *extra]
    return spec.base_config(overrides)
