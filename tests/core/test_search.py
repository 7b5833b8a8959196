"""Search on Optuna: a TPE search with pruning stopped midway and resumed; the pruners' warm-up;
seeded samplers; what mattered (importance, parallel coordinates, curves); TensorBoard hparams;
stratified folds; a damaged study."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import optuna
import pytest

from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.errors import ConfigError
from studio.core.events import Event, StepLogged, TrialFinished, TrialPruned, TrialStarted
from studio.core.runs.search import resume_spec, run_search
from studio.core.runs.search_report import load_report
from studio.core.runs.study import COUNTED, STUDY_FILE, STUDY_NAME, SearchStudy, StudyError
from studio.core.runs.trials import SearchSpec, TrialResult, spec_toml
from tests.core.test_runs import _tiny_base_file


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def test_a_tpe_search_with_pruning_stops_midway_and_resumes_without_running_a_finished_trial_twice(tiny_corpus: Path) -> None:
    spec = SearchSpec.from_dict({
        "search": {"name": "tpe", "base": str(_tiny_base_file(tiny_corpus)), "strategy": "tpe", "trials": 6, "seed": 1,
                   "startup": 2, "pruner": "median", "prune_startup": 2, "set": ["train.steps=12", "train.eval_interval=3"]},
        "params": {"train.lr": {"min": 1e-4, "max": 3e-2, "log": True}, "model.n_layers": {"min": 1, "max": 2, "int": True}},
    })
    assert spec.prune and spec.planned_trials == 6
    control = RunControl()
    first = Recorder()

    class StopInTheFourthTrial(Recorder):
        def on_event(self, event: Event) -> None:
            first.on_event(event)
            if isinstance(event, StepLogged) and len(first.of(TrialStarted)) == 4 and event.step >= 4:
                control.request_stop()  # what Ctrl-C does: the running trial stops after this step

    board, folder = run_search(spec, [StopInTheFourthTrial()], control)
    before = {r.trial: r for r in board}
    assert sorted(before) == [1, 2, 3, 4]
    assert all(before[t].status in ("finished", "pruned") for t in (1, 2, 3))
    stopped = before[4]
    assert stopped.status == "stopped" and stopped.value is None and 4 <= stopped.steps < 12

    second = Recorder()
    board, same = run_search(resume_spec(folder), [second], out=folder, resume=True)
    assert same == folder
    # The interrupted trial runs again first, with its settings; then the budget's last two. None of 1-3 again.
    assert [e.trial for e in second.of(TrialStarted)] == [5, 6, 7]
    after = {r.trial: r for r in board}
    assert sorted(after) == [1, 2, 3, 4, 5, 6, 7]
    assert after[5].retry_of == 4 and after[5].params == stopped.params and after[5].status in ("finished", "pruned")
    assert {t: after[t] for t in (1, 2, 3, 4)} == before  # the first session's trials are as they were
    assert sum(r.status in COUNTED for r in board) == 6  # the trial budget; the interrupted run is not one of them
    run_dirs = [d for r in board for d in r.run_dirs]
    assert len(run_dirs) == len(set(run_dirs)) == 7  # every run trained once
    assert {json.loads((Path(d) / "run.json").read_text())["name"] for d in run_dirs} == {f"tpe-t{t}" for t in range(1, 8)}

    # The study holds every trial, each with the curve it reported at its evaluations.
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{folder / STUDY_FILE}")
    assert [t.number for t in study.trials] == list(range(7))
    assert study.trials[3].state == optuna.trial.TrialState.FAIL  # interrupted: never counted as finished
    assert all(set(t.intermediate_values) <= {3, 6, 9, 12} and t.intermediate_values for t in study.trials)
    assert [json.loads(line)["trial"] for line in (folder / "trials.jsonl").read_text().splitlines()] == list(range(1, 8))
    assert len((folder / "leaderboard.csv").read_text().splitlines()) == 8

    # A finished search resumed again runs nothing more.
    third = Recorder()
    run_search(resume_spec(folder), [third], out=folder, resume=True)
    assert not third.of(TrialStarted)

    report = load_report(folder)
    assert set(report.importances) == {"train.lr", "model.n_layers"}
    assert sum(report.importances.values()) == pytest.approx(1.0) and all(v >= 0 for v in report.importances.values())
    finished = [r for r in board if r.status == "finished"]
    assert report.counts == {"finished": len(finished), "pruned": 6 - len(finished), "failed": 0, "stopped": 1, "running": 0}
    assert report.best is not None and report.best.trial == board[0].trial and report.best_curve is not None
    assert report.best_curve.trial == board[0].trial and report.best_curve.steps[0] == 3
    assert len(report.lines) == 7 and all(p is not None and 0 <= p <= 1 for line in report.lines for p in line.positions)
    assert {p.trial for p in report.scatter["train.lr"]} == {r.trial for r in board if r.value is not None}
    assert report.wall_s > 0


def test_the_median_pruner_prunes_nothing_before_its_startup_trials_have_finished(tiny_corpus: Path) -> None:
    assert SearchSpec.from_dict({"search": {"base": "demo-gpt", "prune": True}, "params": {"train.lr": [1e-3]}}).prune_startup == 5
    # lr 0 and 1e-9 never learn: trial 1 is as bad as trials 4 and 5, but it runs before 3 trials have finished.
    spec = SearchSpec.from_dict({
        "search": {"name": "warm", "base": str(_tiny_base_file(tiny_corpus)), "strategy": "grid", "prune": True,
                   "prune_startup": 3, "set": ["train.steps=12", "train.eval_interval=3"]},
        "params": {"train.lr": [0.0, 3e-3, 1e-2, 1e-9, 2e-9]},
    })
    seen = Recorder()
    board, folder = run_search(spec, [seen])
    by = {r.trial: r for r in board}
    assert [by[t].status for t in (1, 2, 3)] == ["finished"] * 3
    assert by[4].status == by[5].status == "pruned" and by[4].steps < 12
    finished_so_far = 0
    for event in seen.events:
        if isinstance(event, TrialFinished) and event.status == "finished":
            finished_so_far += 1
        if isinstance(event, TrialPruned):
            assert finished_so_far >= 3 and math.isfinite(event.reference) and event.value > event.reference

    # TensorBoard's HParams dashboard: each trial's run holds its settings and result.
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(by[2].run_dirs[0]) / "tensorboard"))
    acc.Reload()
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
    (logged,) = acc.Scalars("hparam/valid_loss")
    assert logged.value == pytest.approx(by[2].value, rel=1e-5)


def _synthetic(spec: SearchSpec, folder: Path, n: int) -> list[dict]:
    """n trials of a search on a made-up objective, through Studio's study (no training)."""
    folder.mkdir()
    book = SearchStudy(folder, spec, create=True)
    try:
        for _ in range(n):
            trial = book.ask()
            x = {k: float(v) for k, v in trial.params.items()}
            value = (math.log10(x["train.lr"]) + 2.5) ** 2 + 0.1 * x["model.n_layers"]
            book.tell(trial, TrialResult(trial.number + 1, dict(trial.params), "finished", value, 1, 0.0, []))
        return [dict(ft.params) for ft in book.frozen()]
    finally:
        book.close()


@pytest.mark.parametrize("strategy", ["tpe", "cmaes", "gp"])
def test_model_based_samplers_are_seeded(tmp_path: Path, strategy: str) -> None:
    table = {"search": {"base": "demo-gpt", "strategy": strategy, "trials": 8, "seed": 7, "startup": 3},
             "params": {"train.lr": {"min": 1e-4, "max": 1e-1, "log": True}, "model.n_layers": {"min": 1, "max": 4, "int": True}}}
    spec = SearchSpec.from_dict(table)
    a, b = _synthetic(spec, tmp_path / "a", 5), _synthetic(spec, tmp_path / "b", 5)
    assert a == b and len({p["train.lr"] for p in a}) == 5  # the same seed, the same trials; each a new point
    if strategy == "tpe":
        other = SearchSpec.from_dict({**table, "search": {**table["search"], "seed": 8}})
        assert _synthetic(other, tmp_path / "c", 5) != a
    assert all(isinstance(p["model.n_layers"], int) and 1 <= p["model.n_layers"] <= 4 for p in a)


def test_the_spec_names_what_a_strategy_cannot_take() -> None:
    with pytest.raises(ConfigError, match=r"CMA-ES searches ranges only.*model\.n_layers"):
        SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "cmaes"},
                              "params": {"train.lr": {"min": 1e-4, "max": 1e-2}, "model.n_layers": [1, 2]}})
    with pytest.raises(ConfigError, match="must be one of median, halving, hyperband"):
        SearchSpec.from_dict({"search": {"base": "demo-gpt", "pruner": "bogus"}, "params": {"train.lr": [1e-3]}})
    with pytest.raises(ConfigError, match="not a duration"):
        SearchSpec.from_dict({"search": {"base": "demo-gpt", "time_budget": "soon"}, "params": {"train.lr": [1e-3]}})
    with pytest.raises(ConfigError, match="tpe chooses each trial"):
        SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "tpe"}, "params": {"train.lr": [1e-3]}}).settings()
    from studio.core.runs.study import make_pruner

    halving = SearchSpec.from_dict({"search": {"base": "demo-gpt", "pruner": "halving"}, "params": {"train.lr": [1e-3]}})
    hyperband = SearchSpec.from_dict({"search": {"base": "demo-gpt", "pruner": "hyperband"}, "params": {"train.lr": [1e-3]}})
    assert halving.prune and isinstance(make_pruner(halving, 300, 50), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner(hyperband, 300, 50), optuna.pruners.HyperbandPruner)


def test_a_search_with_a_time_budget_starts_no_trial_once_it_is_used(tiny_corpus: Path) -> None:
    spec = SearchSpec.from_dict({
        "search": {"name": "budget", "base": str(_tiny_base_file(tiny_corpus)), "strategy": "random", "trials": 5,
                   "time_budget": "1s", "trial_steps": 4, "set": ["train.eval_interval=2"]},
        "params": {"train.lr": {"min": 1e-3, "max": 1e-2, "log": True}},
    })
    class SlowAfterEachTrial(Recorder):
        def on_event(self, event: Event) -> None:
            super().on_event(event)
            if isinstance(event, TrialFinished):
                time.sleep(1.1)  # the budget is used up however fast the trial was

    seen = SlowAfterEachTrial()
    board, _ = run_search(spec, [seen])
    assert len(board) == 1 and board[0].status == "finished" and board[0].steps == 4  # trial_steps: train.steps
    assert board[0].params == spec.settings()[0]  # random trials are the seeded draws, in order
    assert any("time budget (1s) is used up" in e.text for e in seen.events if type(e).__name__ == "LogMessage")


def test_cross_validation_folds_are_stratified_for_classification(tmp_path: Path) -> None:
    from studio.core.training.task_workload import resolve_examples

    data = tmp_path / "labels.tsv"
    labels = ["common"] * 30 + ["rare"] * 6 + ["rarest"] * 3
    data.write_text("".join(f"example number {i}\t{label}\n" for i, label in enumerate(labels)), encoding="utf-8")
    seen = []
    for fold in range(3):
        config = RunConfig().with_overrides(["task.kind=classify", f'task.paths=["{data}"]', "task.cv_folds=3", f"task.cv_fold={fold}"])
        train, valid, _ = resolve_examples(config)
        counts = {label: sum(e.target == label for e in valid) for label in set(labels)}
        assert counts == {"common": 10, "rare": 2, "rarest": 1}  # each label in every fold, in its share
        assert len(train) + len(valid) == 39 and not {e.source for e in train} & {e.source for e in valid}
        order = [e.target for e in valid]
        assert order != sorted(order)  # the shuffled order kept: a validation set cut to eval_batches is still mixed
        seen += [e.source for e in valid]
    assert sorted(seen) == sorted(f"example number {i}" for i in range(39))  # the folds partition the examples


def test_a_damaged_study_is_a_clear_error(tmp_path: Path) -> None:
    spec = SearchSpec.from_dict({"search": {"base": "demo-gpt"}, "params": {"train.lr": [1e-3, 3e-3]}})
    folder = tmp_path / "search"
    folder.mkdir()
    SearchStudy(folder, spec, create=True).close()
    (folder / "spec.toml").write_text(spec_toml(spec), encoding="utf-8")
    good = (folder / STUDY_FILE).read_bytes()
    for damage in (b"this is not a database" * 50, good[: len(good) // 2], good[:100] + b"\0" * (len(good) - 100)):
        (folder / STUDY_FILE).write_bytes(damage)
        with pytest.raises(StudyError, match="cannot be read as a search study"):
            load_report(folder)
        with pytest.raises(StudyError, match="cannot be read as a search study"):
            run_search(spec, out=folder, resume=True)
    (folder / STUDY_FILE).unlink()
    with pytest.raises(StudyError, match="holds no search study"):
        run_search(spec, out=folder, resume=True)


def test_a_trial_left_running_by_a_killed_process_is_run_again_not_counted(tmp_path: Path) -> None:
    spec = SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "random", "trials": 3},
                                 "params": {"train.lr": {"min": 1e-4, "max": 1e-2, "log": True}}})
    folder = tmp_path / "killed"
    folder.mkdir()
    book = SearchStudy(folder, spec, create=True)
    done = book.ask()
    book.tell(done, TrialResult(1, dict(done.params), "finished", 1.5, 10, 1.0, ["run-1"]))
    running = book.ask()  # ... and the process dies here: the study still says RUNNING
    book.close()
    book = SearchStudy(folder, spec, create=False)
    try:
        assert book.recover() == [2]
        assert book.recover() == []  # queued again once, not on every resume
        assert [(r.trial, r.status) for r in book.results()] == [(1, "finished"), (2, "stopped")]
        assert book.counted() == 1
        waiting = book.frozen((optuna.trial.TrialState.WAITING,))
        assert [ft.user_attrs.get("retry_of") for ft in waiting] == [None, 2]  # trial 3's draw, then the rerun
        book.ask()  # trial 3
        assert book.ask().params == running.params  # the rerun: the interrupted trial's settings
    finally:
        book.close()
