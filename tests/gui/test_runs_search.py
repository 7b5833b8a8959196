"""Runs page (library, compare, edits, delete) and Search page, by clicks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.config import RunConfig
from studio.core.events import Event, RunStarted, StepLogged, TrialFinished, TrialStarted
from studio.core.runs.index import RunIndex
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from studio.core.training.trainer import Trainer
from studio.gui.main_window import MainWindow
from tests.core.test_models import tiny_config
from tests.gui.conftest import answer_close_dialog
from tests.gui.test_training_flow import click


def make_runs(corpus: Path) -> list[Path]:
    return [
        Trainer(tiny_config("gpt", corpus, "train.steps=8", "train.eval_interval=4", "train.sample_tokens=0", f"run.name={name}", f"train.lr={lr}")).fit().run_dir
        for name, lr in (("first", 1e-3), ("second", 3e-3))
    ]


def test_select_two_runs_and_compare(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    make_runs(tiny_corpus)
    page = window.runs_page
    window.show_page("Runs")
    assert page.model.rowCount() == 2
    assert page.timer.isActive()  # new runs from elsewhere appear by themselves while the page is shown
    page.table.selectAll()
    # The one-run fields are emptied, not left showing the last run, and the panel names the selection.
    assert page.name_edit.text() == "" and not page.name_edit.isEnabled()
    text = page.path_label.text()
    assert text.startswith("2 runs selected: ") and set(text.removeprefix("2 runs selected: ").split(", ")) == {"first", "second"}
    assert page.action_buttons["delete"].isEnabled() and not page.action_buttons["open"].isEnabled()
    with qtbot.waitSignal(page.compare.loaded, timeout=30_000):  # the runs are read off the GUI thread
        click(qtbot, page.action_buttons["compare"])
    assert page.tabs.currentWidget() is page.compare
    assert page.compare.curve_count() == 2
    names = {item.name() for item in page.compare.plot.listDataItems() if item.name()}
    assert names == {"first", "second"}
    rows = [page.compare.diff_table.item(r, 0) for r in range(page.compare.diff_table.rowCount())]
    assert {item.data(Qt.ItemDataRole.UserRole) for item in rows} == {"run.name", "train.lr"}
    assert {item.text() for item in rows} == {"Run name", "Learning rate"}  # the forms' words; the key on hover
    assert {item.toolTip() for item in rows} == {"run.name", "train.lr"}
    page.compare.x_combo.setCurrentText("tokens")
    assert page.compare.curve_count() == 2


def test_edit_sort_filter_delete_and_actions(qtbot, window: MainWindow, tiny_corpus: Path, monkeypatch) -> None:
    runs = make_runs(tiny_corpus)
    page = window.runs_page
    window.show_page("Runs")
    page.select_paths([str(runs[0])])
    page.name_edit.setText("renamed")
    page.tags_edit.setText("keep, baseline")
    click(qtbot, page.save_button)
    assert RunIndex().get(runs[0]).name == "renamed"
    page.filter_edit.setText("baseline")
    assert page.proxy.rowCount() == 1
    page.filter_edit.setText("")
    page.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert page.proxy.index(0, 0).data() == "renamed"

    page.select_paths([str(runs[1])])
    click(qtbot, page.action_buttons["try"])
    assert window.stack.currentWidget() is window.try_page
    assert window.try_page.model_combos[0].currentData() == str(runs[1])
    window.show_page("Runs")
    page.select_paths([str(runs[1])])
    click(qtbot, page.action_buttons["finetune"])
    assert window.finetune_page.base_form.value("base") == str(runs[1])
    window.show_page("Runs")
    page.select_paths([str(runs[1])])
    click(qtbot, page.action_buttons["open"])
    assert window.train_page.monitor.plots.steps.size == 8

    window.show_page("Runs")
    asked = []
    monkeypatch.setattr(type(page), "confirm_delete", lambda self, names, size: asked.append((names, size)) or True)
    page.select_paths([str(runs[1])])
    click(qtbot, page.action_buttons["delete"])
    assert asked and asked[0][0] == ["second"] and asked[0][1] > 0
    assert not runs[1].exists() and page.model.rowCount() == 1
    assert "MB freed" in page.message.text()


def test_search_page_runs_trials_and_promotes(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    base = tiny_corpus.parent / "search-base.toml"
    tiny_config("gpt", tiny_corpus, "train.sample_tokens=0").save(base)
    page = window.search_page
    window.show_page("Search")
    page.base_combo.setCurrentText(str(base))
    page.strategy_combo.setCurrentText("grid")
    page.set_edit.setText("train.steps=6; train.eval_interval=3")
    page.params_table.setRowCount(0)
    page.add_param("train.lr", "1e-3, 3e-3")

    def notes(plot) -> list[str]:  # noqa: ANN001 - a pyqtgraph PlotWidget
        return [i.toPlainText() for i in plot.getPlotItem().items if i.objectName() == "emptyPlotNote"]

    # Before any trial, the leaderboard and each plot say what will appear there.
    assert page.board_hint.isVisibleTo(page) and page.board.rowCount() == 0
    assert all(notes(p) for p in (page.scatter, page.parallel_plot, page.best_median_plot, page.importance_plot))
    with qtbot.waitSignal(page.search_ended, timeout=180_000) as ended:
        click(qtbot, page.start_button)
    assert ended.args == ["finished"], page.status.text()
    assert page.board.rowCount() == 2 and not page.board_hint.isVisibleTo(page)
    assert page.scatter.listDataItems() and not notes(page.scatter) and not notes(page.best_median_plot)
    # ... and the data are in view: the note's fixed 0-1 range gave way to the data's.
    (_x0, _x1), (y0, y1) = page.scatter.getPlotItem().viewRange()
    values = [t.value for t in page.trials if t.value is not None]
    assert y0 <= min(values) and max(values) <= y1, ((y0, y1), values)
    assert page.promote_button.isEnabled()
    page.promote_steps.setValue(5)
    with qtbot.waitSignal(window.train_page.monitor.run_ended, timeout=120_000):
        click(qtbot, page.promote_button)
    assert window.stack.currentWidget() is window.train_page
    assert window.train_page.monitor.run_dir.name.endswith("gui-best")


def test_closing_during_a_search_stops_the_trial_and_saves_it(qtbot, window: MainWindow, tiny_corpus: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    base = tiny_corpus.parent / "search-close-base.toml"
    tiny_config("gpt", tiny_corpus, "train.sample_tokens=0").save(base)
    page = window.search_page
    window.show_page("Search")
    page.base_combo.setCurrentText(str(base))
    page.strategy_combo.setCurrentText("grid")
    page.set_edit.setText("train.steps=100000; train.eval_interval=1000")
    page.params_table.setRowCount(0)
    page.add_param("train.lr", "1e-3, 3e-3")
    events: list[Event] = []
    page.session.event.connect(events.append)
    ended: list[str] = []
    page.search_ended.connect(ended.append)
    click(qtbot, page.start_button)
    qtbot.waitUntil(lambda: sum(isinstance(e, StepLogged) for e in events) >= 3, timeout=120_000)

    asked = answer_close_dialog(monkeypatch, QMessageBox.StandardButton.Yes)
    assert window.close()
    assert asked == ["Training is running"]  # a search counts as a run in progress
    assert not page.session.running and ended == ["stopped"]
    (started,) = [e for e in events if isinstance(e, RunStarted)]  # the second trial never began
    run = Path(started.run_dir)
    info = RunDir(run).read_info()
    assert info["status"] == "stopped"
    assert load_checkpoint(run / "checkpoints" / "last").step == info["step"] >= 3
    trials = [json.loads(line) for line in (page.folder / "trials.jsonl").read_text().splitlines()]
    assert [(t["trial"], t["status"]) for t in trials] == [(1, "stopped")]


def test_a_search_starts_from_the_current_settings_and_its_trials_are_grouped(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    """"Start from" offered only shipped presets, so a search could not use your own corpus and
    model; and its trials filled the library as gui-t1, gui-t2, ... beside your own runs."""
    make_runs(tiny_corpus)  # two runs of one's own, beside the search
    window.data_page.set_paths([str(tiny_corpus)])
    window.show_page("Model")
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values({"n_layers": 1, "n_heads": 2, "d_model": 16, "context_length": 16})
    window.train_page.forms["train"].set_values({"batch_size": 4})
    page = window.search_page
    window.show_page("Search")
    assert page.base_combo.currentData() == "@current"
    assert any(page.base_combo.itemText(i).startswith("Run: first") for i in range(page.base_combo.count()))
    page.strategy_combo.setCurrentText("grid")
    page.set_edit.setText("train.steps=4; train.eval_interval=2; train.sample_tokens=0")
    page.params_table.setRowCount(0)
    page.add_param("train.lr", "1e-3, 3e-3")
    with qtbot.waitSignal(page.search_ended, timeout=180_000) as ended:
        click(qtbot, page.start_button)
    assert ended.args == ["finished"], page.status.text()
    trial = RunConfig.load(Path(page.trials[0].run_dirs[0]) / "config.toml")
    assert trial.data.paths == [str(tiny_corpus)] and trial.model.d_model == 16  # what the pages showed

    runs = window.runs_page
    window.show_page("Runs")
    top = [runs.proxy.index(r, 0) for r in range(runs.proxy.rowCount())]
    assert len(top) == 3  # first, second, and one row for the search
    search = next(i for i in top if runs.proxy.rowCount(i))
    assert search.data().startswith("search ") and runs.proxy.rowCount(search) == 2
    runs.table.selectionModel().select(search, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert sorted(runs.selected_paths()) == sorted(d for t in page.trials for d in t.run_dirs)  # the row stands for its trials
    assert runs.action_buttons["compare"].isEnabled()
    runs.table.setExpanded(search, True)
    runs.refresh()  # the page refreshes every few seconds: an opened search stays open
    search = next(runs.proxy.index(r, 0) for r in range(runs.proxy.rowCount()) if runs.proxy.rowCount(runs.proxy.index(r, 0)))
    assert runs.table.isExpanded(search)


def _search_from_own_run(window: MainWindow, tiny_corpus: Path, strategy: str, trials: int, every: str):
    """The Search page set to start from the run "first" (the user's own corpus), with a learning
    rate range and a depth list."""
    make_runs(tiny_corpus)
    page = window.search_page
    window.show_page("Search")
    index = next(i for i in range(page.base_combo.count()) if page.base_combo.itemText(i).startswith("Run: first"))
    page.base_combo.setCurrentIndex(index)
    page.strategy_combo.setCurrentIndex(page.strategy_combo.findData(strategy))
    page.trials_spin.setValue(trials)
    page.set_edit.setText(every)
    page.params_table.setRowCount(0)
    page.add_param("train.lr", "1e-4 .. 3e-2 log")
    page.add_param("model.n_layers", "1, 2")
    return page


def _report_of(qtbot, page, trials: int):
    qtbot.waitUntil(lambda: page.report is not None and len(page.report.trials) == trials and not page.reports.running, timeout=60_000)
    return page.report


def test_a_tpe_search_from_an_own_run_shows_what_mattered(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    import pyqtgraph as pg

    page = _search_from_own_run(window, tiny_corpus, "tpe", 4, "train.steps=4; train.eval_interval=2; train.sample_tokens=0")
    page.pruner_combo.setCurrentIndex(page.pruner_combo.findData("hyperband"))
    assert page.spec_table()["search"]["pruner"] == "hyperband" and page.spec_table()["search"]["strategy"] == "tpe"
    with qtbot.waitSignal(page.search_ended, timeout=300_000) as ended:
        click(qtbot, page.start_button)
    assert ended.args == ["finished"], page.status.text()
    assert page.progress.maximum() == 4 and page.progress.value() == 4
    assert page.board.rowCount() == 4
    trial = RunConfig.load(Path(page.trials[0].run_dirs[0]) / "config.toml")
    assert trial.data.paths == [str(tiny_corpus)]  # the run's own corpus
    report = _report_of(qtbot, page, 4)
    assert page.folder is not None and report.folder == page.folder

    bars = [i for i in page.importance_plot.listDataItems() if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1 and set(report.importances) == {"train.lr", "model.n_layers"}
    assert abs(sum(bars[0].opts["height"]) - 1.0) < 1e-6
    lines = [i for i in page.parallel_plot.listDataItems() if isinstance(i, pg.PlotDataItem)]
    assert len(lines) == 4  # one polyline a trial
    assert all(len(line.getData()[0]) == 3 for line in lines)  # two parameters and the metric
    ticks = [name for _x, name in page.parallel_plot.getAxis("bottom")._tickLevels[0]]
    assert sorted(ticks[:2]) == ["model.n_layers", "train.lr"] and ticks[2] == "valid_loss"  # an axis a parameter, and the metric
    curves = [i.name() for i in page.best_median_plot.listDataItems() if isinstance(i, pg.PlotDataItem)]
    assert f"best: trial {report.best.trial}" in curves and any(c.startswith("median: trial") for c in curves)
    scatter = next(i for i in page.scatter.listDataItems() if isinstance(i, pg.PlotDataItem))
    assert scatter.scatter.opts["hoverable"]  # exact values on hover
    assert any("trial" in str(p.data()) and "train.lr" in str(p.data()) for p in scatter.scatter.points())


def test_a_stopped_search_resumes_without_rerunning_finished_trials(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    page = _search_from_own_run(window, tiny_corpus, "tpe", 3, "train.steps=40; train.eval_interval=20; train.sample_tokens=0")
    events: list[Event] = []
    page.session.event.connect(events.append)
    ended: list[str] = []
    page.search_ended.connect(ended.append)
    click(qtbot, page.start_button)
    qtbot.waitUntil(lambda: any(isinstance(e, TrialFinished) for e in events), timeout=180_000)
    click(qtbot, page.stop_button)
    qtbot.waitUntil(lambda: ended == ["stopped"], timeout=180_000)
    finished_before = {e.trial for e in events if isinstance(e, TrialFinished) and e.status == "finished"}
    assert finished_before and page.folder is not None
    folder = page.folder
    events.clear()

    assert page.resume_button.isEnabled()
    with qtbot.waitSignal(page.search_ended, timeout=300_000) as resumed:
        click(qtbot, page.resume_button)  # the page's stopped search: no folder dialog
    assert resumed.args == ["finished"], page.status.text()
    started = {e.trial for e in events if isinstance(e, TrialStarted)}
    assert started and not started & finished_before  # no finished trial ran again
    report = _report_of(qtbot, page, len(page.trials))
    assert report.folder == folder and report.counts["finished"] == 3
    assert page.board.rowCount() == len(report.trials)  # the trials before the stop too
    assert page.progress.value() == 3
