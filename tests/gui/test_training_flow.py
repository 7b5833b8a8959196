"""The whole flow by clicks, offscreen: corpus -> tokenizer -> model -> Start -> Pause -> Resume -> Stop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from studio.core.events import EvalLogged, RunPaused, RunResumed, StepLogged
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from studio.gui.main_window import MainWindow
from tests.gui.conftest import answer_close_dialog

TINY_FIELDS = {
    "gpt": {"n_layers": 1, "n_heads": 2, "d_model": 32, "context_length": 32},
    "lstm": {"embedding_dim": 32, "hidden_size": 32, "num_layers": 1, "context_length": 32},
}


def click(qtbot, widget) -> None:
    assert widget.isEnabled(), f"{widget.objectName()} is disabled"
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def set_form(form, values: dict) -> None:
    form.set_values(values)


def load_corpus_and_build(qtbot, w: MainWindow, corpus: Path) -> None:
    page = w.data_page
    w.nav.setCurrentRow(0)
    paths = page.corpus_form.editors["paths"].line_edit
    paths.setText(str(corpus))
    paths.editingFinished.emit()
    assert "UTF-8" in page.encoding_label.text()
    assert page.raw_preview.toPlainText().startswith("One morning")
    kind = page.tokenizer_form.editors["kind"]
    kind.setCurrentIndex(kind.findData("char"))
    with qtbot.waitSignal(page.corpus_built, timeout=60_000):
        click(qtbot, page.build_button)
    assert page.chips.chips and page.chips.chips[0].toolTip().startswith("id ")
    assert page.stats_table.item(2, 1).text() != "0"


def choose_model(qtbot, w: MainWindow, arch: str) -> None:
    w.nav.setCurrentRow(1)
    w.model_page.set_architecture(arch)
    set_form(w.model_page.form, TINY_FIELDS[arch])
    assert "(vocabulary" in w.model_page.param_label.text() and "from the built data" in w.model_page.param_label.text()


def run_flow(qtbot, w: MainWindow, tmp_path: Path, corpus: Path, arch: str) -> None:
    load_corpus_and_build(qtbot, w, corpus)
    choose_model(qtbot, w, arch)
    page = w.train_page
    w.nav.setCurrentRow(2)
    page.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 10, "eval_batches": 2, "sample_tokens": 20})
    page.forms["run"].set_values({"name": f"gui-{arch}"})
    assert page.monitor.start_button.isEnabled(), page.monitor.blocked_label.text()
    click(qtbot, page.monitor.start_button)

    plots = page.monitor.plots
    qtbot.waitUntil(lambda: plots.point_count() >= 5, timeout=60_000)  # the loss curve receives points

    click(qtbot, page.monitor.pause_button)
    qtbot.waitUntil(lambda: page.state == "paused", timeout=30_000)
    paused_points = plots.steps.size
    assert "Paused at step" in page.monitor.status_label.text()
    assert not page.monitor.pause_button.isEnabled() and page.monitor.resume_button.isEnabled()

    click(qtbot, page.monitor.resume_button)
    qtbot.waitUntil(lambda: plots.point_count() > paused_points + 3, timeout=60_000)  # drawn again
    qtbot.waitUntil(lambda: plots.evals.size >= 1, timeout=60_000)  # an evaluation, with its sample

    with qtbot.waitSignal(page.monitor.run_ended, timeout=60_000) as ended:
        click(qtbot, page.monitor.stop_button)
    assert ended.args == ["stopped"]
    assert page.monitor.status_label.text().startswith("Stopped at step")
    ckpt = load_checkpoint(page.run_dir / "checkpoints" / "last")
    assert ckpt.resumable and ckpt.step >= paused_points
    assert page.monitor.log_view.toPlainText().count("paused at step") == 1
    assert "Run:" in w.run_status.text() and "stopped" in w.run_status.text()

    # The child's own record, in order: no step between the pause and the resume, and the first
    # step after it is the next one (nothing lost, nothing run twice).
    events = RunDir(page.run_dir).read_events()
    kinds = [type(e) for e in events]
    paused, resumed = kinds.index(RunPaused), kinds.index(RunResumed)
    assert StepLogged not in kinds[paused:resumed]
    after = next(e for e in events[resumed:] if isinstance(e, StepLogged))
    assert after.step == events[paused].step + 1 == paused_points + 1
    # Every evaluation's sample is shown on the page.
    evals = [e for e in events if isinstance(e, EvalLogged)]
    assert evals and all(e.sample.strip() in page.monitor.samples_view.toPlainText() for e in evals)
    assert plots.evals.size == len(evals)


def test_gpt_flow_by_clicks(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "gpt")


def test_lstm_flow_by_clicks(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "lstm")


def test_resume_a_stopped_run_from_disk(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "lstm")
    page = window.train_page
    run_dir = page.run_dir
    step_before = load_checkpoint(run_dir / "checkpoints" / "last").step
    window.load_run(run_dir)
    assert page.monitor.plots.point_count() >= step_before
    assert page.monitor.resume_button.isEnabled()
    click(qtbot, page.monitor.resume_button)
    # Stop only once the resumed run has taken steps of its own: a stop that arrived before its
    # first step would leave the checkpoint where it was.
    qtbot.waitUntil(lambda: page.state == "running" and page.monitor.plots.steps.size and page.monitor.plots.steps.column("step")[-1] >= step_before + 3,
                    timeout=60_000)
    with qtbot.waitSignal(page.monitor.run_ended, timeout=60_000) as ended:
        click(qtbot, page.monitor.stop_button)
    assert ended.args == ["stopped"]
    step_after = load_checkpoint(run_dir / "checkpoints" / "last").step
    assert step_after >= step_before + 3
    steps = page.monitor.plots.steps.column("step")
    assert list(steps) == list(range(1, step_after + 1))  # one curve: the old steps, then the new ones


def test_closing_during_a_run_asks_and_no_keeps_it_going(qtbot, window: MainWindow, tiny_corpus: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    load_corpus_and_build(qtbot, window, tiny_corpus)
    choose_model(qtbot, window, "gpt")
    page = window.train_page
    page.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 1000})
    click(qtbot, page.monitor.start_button)
    qtbot.waitUntil(lambda: page.monitor.plots.steps.size >= 3, timeout=60_000)

    asked = answer_close_dialog(monkeypatch, QMessageBox.StandardButton.No)
    assert not window.close()  # "No": the window stays, and so does the run
    assert asked == ["Training is running"]
    assert window.isVisible() and page.monitor.training.running
    seen = page.monitor.plots.steps.size
    qtbot.waitUntil(lambda: page.monitor.plots.steps.size >= seen + 3, timeout=60_000)  # still training
    assert page.state == "running"

    asked = answer_close_dialog(monkeypatch, QMessageBox.StandardButton.Yes)
    assert window.close()
    assert asked == ["Training is running"]
    assert not page.monitor.training.running
    info = RunDir(page.run_dir).read_info()
    assert info["status"] == "stopped"
    assert load_checkpoint(page.run_dir / "checkpoints" / "last").step == info["step"] >= seen + 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_dead_training_process_is_reported_and_a_hung_one_killed(qtbot, window: MainWindow, tiny_corpus: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's two bad endings, with real child processes. One dies (SIGKILL right after
    step 4, by the fault hook, before that step's save): the page says the process ended
    unexpectedly. Then its resume hangs (frozen after its third step, 5, as a deadlocked process
    would be): the window's shutdown stops waiting and kills it. Both times the run keeps its last
    checkpoint and shows as interrupted."""
    load_corpus_and_build(qtbot, window, tiny_corpus)
    choose_model(qtbot, window, "gpt")
    page = window.train_page
    window.nav.setCurrentRow(2)
    page.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 1000, "checkpoint_interval": 2})
    monkeypatch.setenv("STUDIO_FAULT", "train:step@4")  # the child reads it; this process never reaches that point
    with qtbot.waitSignal(page.monitor.run_ended, timeout=60_000) as ended:
        click(qtbot, page.monitor.start_button)
    assert ended.args == ["failed"]
    status = page.monitor.status_label.text()
    assert "the training process ended unexpectedly (exit code -9)" in status, status
    run_dir = page.run_dir
    assert RunDir(run_dir).read_info()["status"] == "interrupted"
    assert load_checkpoint(run_dir / "checkpoints" / "last").step == 2
    assert page.monitor.start_button.isEnabled()  # the window is unharmed

    monkeypatch.setenv("STUDIO_FAULT", "train:step@3=stop")
    window.load_run(run_dir)
    click(qtbot, page.monitor.resume_button)
    qtbot.waitUntil(lambda: page.monitor.plots.steps.size and page.monitor.plots.steps.column("step")[-1] == 5, timeout=60_000)
    with qtbot.waitSignal(page.monitor.run_ended, timeout=60_000) as ended:
        assert not page.shutdown(timeout_ms=1_000)  # it did not end by itself: it was killed
    assert ended.args == ["failed"]
    assert "ended unexpectedly (exit code -9)" in page.monitor.status_label.text()
    assert not page.monitor.training.running
    assert RunDir(run_dir).read_info()["status"] == "interrupted"
    assert load_checkpoint(run_dir / "checkpoints" / "last").step == 4  # the resumed run's own save, before the freeze


def test_invalid_model_blocks_start_with_the_reason(qtbot, window: MainWindow) -> None:
    window.nav.setCurrentRow(1)
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values({"d_model": 130, "n_heads": 4})
    error = window.model_page.form.error_labels["d_model"]
    assert error.isVisibleTo(window.model_page.form) and "not divisible by model.n_heads=4" in error.text()
    assert not window.train_page.monitor.start_button.isEnabled()
    assert "not divisible" in window.train_page.monitor.blocked_label.text()
    window.model_page.form.set_values({"d_model": 128})
    assert window.train_page.monitor.start_button.isEnabled()


def test_failed_run_says_failed(qtbot, window: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken}\n')
    window.data_page.set_paths([str(bad)])
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values(TINY_FIELDS["gpt"])
    page = window.train_page
    with qtbot.waitSignal(page.monitor.run_ended, timeout=60_000) as ended:
        click(qtbot, page.monitor.start_button)
    assert ended.args == ["failed"]
    assert "Failed" in page.monitor.status_label.text() and "bad.jsonl, line 2" in page.monitor.status_label.text()


def test_window_shows_before_torch_is_imported() -> None:
    import subprocess

    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen';"
        "from PySide6.QtWidgets import QApplication; app=QApplication([]);"
        "from studio.gui.main_window import MainWindow; w=MainWindow(); w.show(); app.processEvents();"
        "print('torch' in sys.modules, 'spacy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stdout + out.stderr


@pytest.mark.parametrize("mode", ["tokens", "time"])
def test_axis_and_log_scale(qtbot, window: MainWindow, mode: str) -> None:
    from studio.core.events import StepLogged

    window.nav.setCurrentRow(2)  # hidden plots do not redraw
    plots = window.train_page.monitor.plots
    for i in range(1, 30):
        plots.add_step(StepLogged(i, 30, 4.0 / i, 1e-3, 1.0, 1000.0, i * 100, i * 0.5))
    window.train_page.monitor.x_axis_combo.setCurrentText(mode)
    x, _ = plots.train_raw.getOriginalDataset()
    assert x[-1] == (2900 if mode == "tokens" else 14.5)
    window.train_page.monitor.log_check.setChecked(True)
    assert plots.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()


def test_eta_ignores_a_pause_and_pause_shows_the_step_reached(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a pause the ETA grew (the clock ran on while nothing trained), and Pause reported
    step 252 while the bar, which skips repaints, still showed 251."""
    from studio.core.config import RunConfig

    monitor = window.train_page.monitor
    monkeypatch.setattr(monitor.training, "start", lambda *a, **k: None)
    monitor.start(RunConfig())
    window.nav.setCurrentRow(2)

    def step(i: int, elapsed: float) -> None:
        monitor.training.event.emit(StepLogged(i, 1000, 2.0, 1e-3, 1.0, 1000.0, i * 100, elapsed))

    step(1, 0.0)
    monitor._last_widget_update = 0.0  # as if a tenth of a second had passed: this one repaints
    step(101, 25.0)  # 0.25 s per step: 899 steps left take 224.75 s
    assert "ETA 3:44" in monitor.time_label.text(), monitor.time_label.text()
    step(102, 25.25)  # within the repaint interval: the bar is not updated
    assert monitor.progress.value() == 101
    monitor.training.event.emit(RunPaused(102))
    assert monitor.progress.value() == 102 and "102" in monitor.status_label.text()
    qtbot.wait(300)  # paused; the engine's training time does not advance
    monitor.training.event.emit(RunResumed(102))
    monitor._last_widget_update = 0.0
    step(201, 50.0)  # still 0.25 s per step of training: 799 left take 199.75 s
    assert monitor.progress.value() == 201
    assert "ETA 3:19" in monitor.time_label.text(), monitor.time_label.text()


def test_the_train_page_shows_tokens_per_second_and_mfu(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.core.config import RunConfig

    monitor = window.train_page.monitor
    monkeypatch.setattr(monitor.training, "start", lambda *a, **k: None)
    monitor.start(RunConfig())
    label = window.findChild(QLabel, "speedLabel")
    assert label is monitor.speed_label
    monitor._last_widget_update = 0.0
    monitor.training.event.emit(StepLogged(5, 1000, 2.0, 1e-3, 1.0, 23456.0, 500, 1.0, mfu=0.418))
    assert label.text() == "23,456 tokens/s · MFU 42%"
    monitor._last_widget_update = 0.0
    monitor.training.event.emit(StepLogged(6, 1000, 2.0, 1e-3, 1.0, 900.0, 600, 1.2))  # no probe (MPS): speed only
    assert label.text() == "900 tokens/s"


def test_a_log_axis_inside_one_decade_still_has_labels(qtbot, window: MainWindow) -> None:
    """A validation perplexity from 11 to 13 on a log axis had no label at all (no 1, 2, ... 9
    times a power of ten falls inside): round values in between are labelled instead."""
    import math

    axis = window.train_page.monitor.plots.perplexity_plot.getAxis("left")
    axis.setLogMode(False, True)
    levels = axis.tickValues(math.log10(11), math.log10(13.5), 140)
    values = [v for _spacing, level in levels for v in level]
    assert axis.logTickStrings(values, 1.0, 1.0) == ["11", "12", "13"]
    levels = axis.tickValues(math.log10(9000), math.log10(16_000), 140)
    assert axis.logTickStrings([v for _s, level in levels for v in level], 1.0, 1.0) == ["10,000", "12,000", "14,000", "16,000"]


def test_log_axis_labels_do_not_overlap_in_a_small_plot(qtbot, window: MainWindow) -> None:
    """pyqtgraph labels 0.5, 0.6, ... 0.9, 1, 2, 3, 4 on a log loss axis: nine labels in a plot
    140 px high overlapped. At most one label per 28 px is kept, the roundest values first."""
    import math

    axis = window.train_page.monitor.plots.loss_plot.getAxis("left")
    axis.setLogMode(False, True)
    levels = axis.tickValues(math.log10(0.5), math.log10(4.5), 140)
    values = [v for _spacing, level in levels for v in level]
    assert 2 <= len(values) <= 140 // 28
    assert math.log10(1) in values  # the decade is always labelled
    gaps = [(b - a) / (math.log10(4.5) - math.log10(0.5)) * 140 for a, b in zip(values, values[1:], strict=False)]
    assert min(gaps) >= 20, gaps
