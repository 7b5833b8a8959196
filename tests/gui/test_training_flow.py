"""The whole flow by clicks, offscreen: corpus -> tokenizer -> model -> Start -> Pause -> Resume -> Stop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.core.training.checkpoint import load_checkpoint
from studio.gui.main_window import MainWindow

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
    page.path_edit.setText(str(corpus))
    page.path_edit.editingFinished.emit()
    assert "UTF-8" in page.encoding_label.text()
    assert page.raw_preview.toPlainText().startswith("One morning")
    page.tokenizer_combo.setCurrentIndex(page.tokenizer_combo.findData("char"))
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
    page.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 25, "eval_batches": 2, "sample_tokens": 20})
    page.forms["run"].set_values({"name": f"gui-{arch}"})
    assert page.start_button.isEnabled(), page.blocked_label.text()
    click(qtbot, page.start_button)

    plots = page.plots
    qtbot.waitUntil(lambda: plots.point_count() >= 5, timeout=60_000)  # the loss curve receives points

    click(qtbot, page.pause_button)
    qtbot.waitUntil(lambda: page.state == "paused", timeout=30_000)
    paused_points = plots.steps.size
    qtbot.wait(700)
    assert plots.steps.size == paused_points  # no new points while paused
    assert "Paused at step" in page.status_label.text()

    click(qtbot, page.resume_button)
    qtbot.waitUntil(lambda: plots.point_count() > paused_points + 3, timeout=60_000)  # drawn again

    with qtbot.waitSignal(page.run_ended, timeout=60_000) as ended:
        click(qtbot, page.stop_button)
    assert ended.args == ["stopped"]
    assert page.status_label.text().startswith("Stopped at step")
    ckpt = load_checkpoint(page.run_dir / "checkpoints" / "last")
    assert ckpt.resumable and ckpt.step >= paused_points
    assert page.log_view.toPlainText().count("paused at step") == 1
    assert "Run:" in w.run_status.text() and "stopped" in w.run_status.text()


def test_gpt_flow_by_clicks(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "gpt")
    assert window.train_page.samples_view.toPlainText() or window.train_page.plots.evals.size == 0


def test_lstm_flow_by_clicks(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "lstm")


def test_resume_a_stopped_run_from_disk(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    run_flow(qtbot, window, tmp_path, tiny_corpus, "lstm")
    page = window.train_page
    run_dir = page.run_dir
    step_before = load_checkpoint(run_dir / "checkpoints" / "last").step
    window.load_run(run_dir)
    assert page.plots.point_count() >= step_before
    assert page.resume_button.isEnabled()
    click(qtbot, page.resume_button)
    qtbot.waitUntil(lambda: page.state == "running", timeout=60_000)
    with qtbot.waitSignal(page.run_ended, timeout=60_000):
        click(qtbot, page.stop_button)
    assert load_checkpoint(run_dir / "checkpoints" / "last").step > step_before


def test_closing_during_a_run_stops_and_saves(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    load_corpus_and_build(qtbot, window, tiny_corpus)
    choose_model(qtbot, window, "gpt")
    page = window.train_page
    page.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 1000})
    click(qtbot, page.start_button)
    qtbot.waitUntil(lambda: page.plots.steps.size >= 3, timeout=60_000)
    window.close()
    assert not page.training.running
    assert load_checkpoint(page.run_dir / "checkpoints" / "last").step >= 3


def test_invalid_model_blocks_start_with_the_reason(qtbot, window: MainWindow) -> None:
    window.nav.setCurrentRow(1)
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values({"d_model": 130, "n_heads": 4})
    error = window.model_page.form.error_labels["d_model"]
    assert error.isVisibleTo(window.model_page.form) and "not divisible by model.n_heads=4" in error.text()
    assert not window.train_page.start_button.isEnabled()
    assert "not divisible" in window.train_page.blocked_label.text()
    window.model_page.form.set_values({"d_model": 128})
    assert window.train_page.start_button.isEnabled()


def test_failed_run_says_failed(qtbot, window: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken}\n')
    window.data_page.set_paths([str(bad)])
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values(TINY_FIELDS["gpt"])
    page = window.train_page
    with qtbot.waitSignal(page.run_ended, timeout=60_000) as ended:
        click(qtbot, page.start_button)
    assert ended.args == ["failed"]
    assert "Failed" in page.status_label.text() and "bad.jsonl, line 2" in page.status_label.text()


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
    plots = window.train_page.plots
    for i in range(1, 30):
        plots.add_step(StepLogged(i, 30, 4.0 / i, 1e-3, 1.0, 1000.0, i * 100, i * 0.5))
    window.train_page.x_axis_combo.setCurrentText(mode)
    x, _ = plots.train_raw.getOriginalDataset()
    assert x[-1] == (2900 if mode == "tokens" else 14.5)
    window.train_page.log_check.setChecked(True)
    assert plots.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
