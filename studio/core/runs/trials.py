"""A search's plan and its results, without running anything: the spec (read from TOML), the
trial parameters it yields, the median pruner, the leaderboard and promotion of the best trial.

No torch here, so the window's Search page can read and rank trials instantly; running the
trials is ``studio.core.runs.search``.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from studio.core.config import RunConfig
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.events import EvalLogged
from studio.core.i18n import _
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
            raise ConfigError(_("{path} does not exist").format(path=path)) from None
        except tomllib.TOMLDecodeError as e:
            # Translators: {reason} is the TOML reader's own words (in English).
            raise ConfigError(_("{path} is not valid TOML: {reason}").format(path=path, reason=e)) from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> SearchSpec:
        issues: list[ConfigIssue] = []
        s = dict(data.get("search", {}))
        known = {"name", "base", "set", "strategy", "trials", "seed", "metric", "prune", "prune_after", "folds", "parallel"}
        for key in s:
            if key not in known:
                # Translators: {known} lists the setting names of this section, kept as is.
                message = _("unknown setting (known: {known})").format(known=", ".join(sorted(known)))
                issues.append(ConfigIssue(f"search.{key}", message))
        for key in data:
            if key not in ("search", "params"):
                # Translators: search and params are section names of a search file, kept as is.
                issues.append(ConfigIssue(key, _("unknown section (known: search, params)")))
        params: dict[str, Choice | Range] = {}
        for key, value in data.get("params", {}).items():
            if key.count(".") != 1:
                issues.append(ConfigIssue(f"params.{key}", _("a parameter is a setting such as train.lr")))
            elif isinstance(value, list) and value:
                params[key] = Choice(tuple(value))
            elif isinstance(value, dict) and {"min", "max"} <= set(value):
                params[key] = Range(float(value["min"]), float(value["max"]), bool(value.get("log", False)), bool(value.get("int", False)))
                if value.get("log") and float(value["min"]) <= 0:
                    # Translators: min is a key of the range, kept as is.
                    issues.append(ConfigIssue(f"params.{key}", _("a log range needs min > 0")))
            else:
                # Translators: "{min, max}" is written as in the file, kept as is (it is not a placeholder).
                issues.append(ConfigIssue(f"params.{key}", _("give a list of values or a table {min, max}")))
        strategy = s.get("strategy", "random")
        if strategy not in ("grid", "random"):
            # Translators: grid and random are the strategies' names, kept as is.
            issues.append(ConfigIssue("search.strategy", _("must be grid or random (got {strategy})").format(strategy=repr(strategy))))
        if strategy == "grid" and any(isinstance(p, Range) for p in params.values()):
            issues.append(ConfigIssue("search.strategy", _("a grid needs lists of values, not ranges")))
        if not params:
            # Translators: [params] is a section of the search file, kept as is.
            issues.append(ConfigIssue("params", _("nothing to search: add [params]")))
        if "base" not in s:
            issues.append(ConfigIssue("search.base", _("name the preset or config file the trials start from")))
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
        for _trial in range(self.trials):
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

    def reference(self, step: int) -> float:
        """The median of the other trials' values at ``step`` (what a pruned trial lost to)."""
        others = [h[step] for h in self.history if step in h]
        return statistics.median(others) if others else math.nan


def metric_of(event: EvalLogged, metric: str) -> float | None:
    if metric in ("valid_loss", "loss"):
        return event.loss
    if metric == "perplexity":
        return event.perplexity
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
              "seed": spec.seed, "metric": spec.metric, "prune": spec.prune, "prune_after": spec.prune_after, "folds": spec.folds,
              "parallel": spec.parallel}
    return tomli_w.dumps({"search": search, "params": params})


def promote(spec: SearchSpec, best: TrialResult, extra: Sequence[str] = ()) -> RunConfig:
    """The best trial's configuration as a full run (``extra``: e.g. more steps)."""
    overrides = [override_text(k, v) for k, v in best.params.items()] + [f"run.name={spec.name}-best", *extra]
    return spec.base_config(overrides)
