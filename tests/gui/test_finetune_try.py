"""Fine-tune from a run by clicks, then get an answer in every Try tab."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from studio.core.config import RunConfig
from studio.core.inference.decode_process import BATCH_S
from studio.core.tasks.demo import write_demo_task
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from studio.core.training.trainer import Trainer
from studio.gui.main_window import MainWindow
from studio.gui.pages.try_page import TryPage
from tests.gui.conftest import answer_close_dialog
from tests.gui.test_training_flow import click

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (SIGSTOP freezes the decoding process)")


@pytest.fixture
def base_run(tmp_path: Path, tiny_corpus: Path, isolated_user_dirs: Path) -> Path:
    """A tiny character-level GPT whose vocabulary covers the demo tasks."""
    from studio.core.data.demo import demo_corpus_path

    config = RunConfig().with_overrides([
        "model.arch=gpt", "model.n_layers=1", "model.n_heads=2", "model.d_model=32", "model.context_length=128",
        f'data.paths=["{demo_corpus_path()}"]', "train.steps=10", "train.batch_size=8", "train.sample_tokens=0",
        "run.name=tiny-base",
    ])
    return Trainer(config).fit().run_dir  # in the user runs folder, where the pickers look


def set_up_fine_tune(qtbot, w: MainWindow, kind: str, files: dict[str, Path], steps: int = 15) -> None:
    page = w.finetune_page
    w.show_page("Fine-tune")
    page.set_task(kind)
    for name, split in (("paths", "train"), ("valid_paths", "valid"), ("test_paths", "test")):
        edit = page.task_form.editors[name].line_edit
        edit.setText(str(files[split]))
        edit.editingFinished.emit()  # as when typed: files chosen, so the demo data is not used
    assert page.task_form.value("dataset") == ""
    page.train_form.set_values({"steps": steps, "eval_interval": steps, "batch_size": 8})
    click(qtbot, page.preview_button)
    assert page.preview_table.rowCount() > 0, page.preview_status.text()
    assert page.monitor.start_button.isEnabled(), page.monitor.blocked_label.text()
    qtbot.waitUntil(lambda: not page.coverage.running, timeout=30_000)
    assert page.coverage_label.text() == ""  # the tiny base's characters cover the demo tasks


def fine_tune(qtbot, w: MainWindow, kind: str, files: dict[str, Path], steps: int = 15) -> Path:
    set_up_fine_tune(qtbot, w, kind, files, steps)
    monitor = w.finetune_page.monitor
    with qtbot.waitSignal(monitor.run_ended, timeout=120_000) as ended:
        click(qtbot, monitor.start_button)
    assert ended.args == ["finished"], monitor.status_label.text()
    assert monitor.results_table.rowCount() == 2  # valid and test
    return monitor.run_dir


def ask(qtbot, w: MainWindow, model: Path, tab: str, **inputs: str) -> tuple[str, str]:
    page = w.try_page
    w.show_page("Try")
    page.set_model(model)
    page.tabs.setCurrentIndex([t for t, _ in __import__("studio.gui.pages.try_page", fromlist=["TABS"]).TABS].index(tab))
    for name, value in inputs.items():
        widget = page.inputs[tab][name]
        widget.setPlainText(value) if hasattr(widget, "setPlainText") else widget.setText(value)
    with qtbot.waitSignal(page.answered, timeout=60_000):
        click(qtbot, page.run_button)
    return page.outputs[0].text(), page.status_labels[0].text()


def test_finetune_then_every_try_tab(qtbot, window: MainWindow, base_run: Path, tmp_path: Path) -> None:
    combo = window.finetune_page.base_form.editors["base"].combo
    window.finetune_page.refresh_bases()
    listed = [combo.itemData(i) for i in range(combo.count())]
    assert str(base_run) in listed  # found in the user's runs folder, not typed in
    window.finetune_page.set_base(base_run)
    assert combo.currentData() == str(base_run) and combo.count() == len(listed)
    sizes = {"train": 60, "valid": 6, "test": 6}
    runs = {}
    for kind, name in (("classify", "demo-sentiment"), ("translate", "demo-translate"), ("qa", "demo-qa"), ("summarize", "demo-summarize")):
        files = write_demo_task(name, tmp_path / name, sizes=sizes)
        runs[kind] = fine_tune(qtbot, window, kind, files)

    text, status = ask(qtbot, window, runs["classify"], "classify", text="The film was wonderful and the ending was moving.")
    assert text in ("positive", "negative") and "done" in status
    hover = window.try_page.outputs[0].token_at(0)
    assert hover is not None and 0.0 <= hover[0] <= 1.0  # the probability shown on hover

    window.try_page.mode_combo.setCurrentText("sample")
    window.try_page.seed_spin.setValue(3)  # a seeded sample: the same text every time
    window.try_page.max_tokens_spin.setValue(40)
    text, status = ask(qtbot, window, runs["translate"], "translate", text="the red fox sees a small bird")
    assert "done" in status and text.strip()
    window.try_page.mode_combo.setCurrentText("greedy")

    text, status = ask(qtbot, window, runs["qa"], "ask", context="Mira lives in Pine Hill. Mira works as a baker.", question="Where does Mira live?")
    assert "done" in status and text.strip()

    window.try_page.mode_combo.setCurrentText("sample")
    text, status = ask(qtbot, window, runs["summarize"], "summarize",
                       text="On Monday, the council of Riverton met to discuss the new bridge. Members voted to approve the new bridge.")
    assert "done" in status and text.strip()

    text, status = ask(qtbot, window, base_run, "generate", text="One morning")
    assert "done" in status and text.strip()

    # Compare two checkpoints side by side on the same input.
    window.try_page.compare_check.setChecked(True)
    window.try_page.set_model(runs["summarize"], pane=1)
    window.try_page.model_combos[0].setCurrentIndex(window.try_page.model_combos[0].findData(str(base_run)))
    with qtbot.waitSignal(window.try_page.answered, timeout=60_000):
        click(qtbot, window.try_page.run_button)
    assert window.try_page.outputs[0].text().strip() and window.try_page.outputs[1].text().strip()
    assert "done" in window.try_page.status_labels[1].text()
    window.try_page.compare_check.setChecked(False)

    # A model asked to do what it was not trained for says so and points to the Fine-tune page.
    window.try_page.mode_combo.setCurrentText("greedy")
    text, status = ask(qtbot, window, runs["classify"], "translate", text="the cat sees a dog")
    assert text == "" and "trained for classification, not translation" in status
    assert window.try_page.finetune_buttons[0].isVisibleTo(window.try_page)
    click(qtbot, window.try_page.finetune_buttons[0])
    assert window.stack.currentWidget() is window.finetune_page


@POSIX
def test_try_output_streams_and_can_be_cancelled(qtbot, window: MainWindow, base_run: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens arrive one by one and Cancel stops the stream. Made exact rather than a race: the
    seed is fixed (one whose first tokens are not <eos>, which would end the text by itself), and
    the decoding process freezes itself (SIGSTOP, at a fault point) after its third token, so the
    answer is cancelled with exactly three tokens shown, however fast or loaded the machine."""
    page = window.try_page
    window.show_page("Try")
    page.tabs.setCurrentIndex(4)  # Generate
    page.max_tokens_spin.setValue(4000)
    choose_a_seed_that_writes(page, base_run, 4)
    process = start_frozen_decoding(page, monkeypatch, after_tokens=3)
    page.set_model(base_run)
    click(qtbot, page.run_button)
    qtbot.waitUntil(lambda: len(page.outputs[0].spans) == 3, timeout=60_000)  # tokens arrive one by one
    with qtbot.waitSignal(page.answered, timeout=30_000):
        click(qtbot, page.cancel_button)
    os.kill(process.pid, signal.SIGCONT)  # thawed, it reads the cancel and waits for the next request
    assert "cancelled" in page.status_labels[0].text()
    assert len(page.outputs[0].spans) == 3
    assert page.run_button.isEnabled() and not page.cancel_button.isEnabled()


def choose_a_seed_that_writes(page: TryPage, base_run: Path, tokens: int) -> None:
    """Sampling, with the first seed whose first ``tokens`` tokens hold no <eos> (which would end
    the text by itself before a test could cancel it)."""
    from studio.core.decoding.options import DecodingSettings
    from studio.core.inference.loading import load_model
    from studio.core.inference.runner import TaskRunner

    page.mode_combo.setCurrentText("sample")
    runner = TaskRunner(load_model(base_run))

    def first_tokens(seed: int) -> int:
        decoding = DecodingSettings("sample", page.temperature_spin.value(), page.top_k_spin.value(), page.top_p_spin.value(),
                                    page.beam_spin.value(), max_new_tokens=tokens, seed=seed)
        return len(list(runner.stream("generate", decoding)))

    page.seed_spin.setValue(next(s for s in itertools.count(1) if first_tokens(s) == tokens))


def start_frozen_decoding(page: TryPage, monkeypatch: pytest.MonkeyPatch, after_tokens: int) -> subprocess.Popen[str]:
    """Start the Try page's decoding process so that it freezes itself (SIGSTOP) once it has
    written ``after_tokens`` tokens: until a test sends it SIGCONT, the window stands exactly there."""
    page.job.client.close()  # a process started earlier would not have the fault point
    monkeypatch.setenv("STUDIO_FAULT", f"decode:token@{after_tokens}=stop")
    page.job.client.start()  # the child reads STUDIO_FAULT as it starts
    monkeypatch.delenv("STUDIO_FAULT")
    assert page.job.client.process is not None
    return page.job.client.process


def test_a_fast_stream_wakes_the_window_a_few_times_not_per_token(qtbot, window: MainWindow, base_run: Path) -> None:
    """The worker signals only when the token queue was empty, and the page takes the queue
    DRAIN_MS later: one cross-thread event per token had slowed generation in the window."""
    page = window.try_page
    window.show_page("Try")
    page.set_model(base_run)
    page.tabs.setCurrentIndex(4)  # Generate
    page.mode_combo.setCurrentText("greedy")
    page.max_tokens_spin.setValue(300)
    page.inputs["generate"]["text"].setPlainText("One")
    wakes = []
    page.job.tokens_ready.connect(lambda: wakes.append(1))
    started = time.monotonic()
    with qtbot.waitSignal(page.answered, timeout=120_000):
        click(qtbot, page.run_button)
    seconds = time.monotonic() - started
    tokens = len(page.outputs[0].spans)
    assert tokens >= 100, page.status_labels[0].text()
    # The decoding process writes a batch at most every BATCH_S, and the window is woken only for
    # a batch that finds the queue empty: however fast or slow the machine, at most one wake per
    # BATCH_S (a wake per token, before: 300 for 300 tokens), and never more than the tokens.
    assert 1 <= len(wakes) <= min(tokens, seconds / BATCH_S + 2), f"{len(wakes)} signals for {tokens} tokens in {seconds:.2f} s"


def test_closing_during_a_fine_tune_stops_and_saves_it(qtbot, window: MainWindow, base_run: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    window.finetune_page.set_base(base_run)
    files = write_demo_task("demo-sentiment", tmp_path / "sent", sizes={"train": 60, "valid": 6, "test": 6})
    set_up_fine_tune(qtbot, window, "classify", files, steps=100_000)
    monitor = window.finetune_page.monitor
    click(qtbot, monitor.start_button)
    qtbot.waitUntil(lambda: monitor.plots.steps.size >= 3, timeout=120_000)
    asked = answer_close_dialog(monkeypatch, QMessageBox.StandardButton.Yes)
    assert window.close()
    assert asked == ["Training is running"]  # a fine-tune is a run like any other
    assert not monitor.training.running
    info = RunDir(monitor.run_dir).read_info()
    assert info["status"] == "stopped" and info["step"] >= 3
    ckpt = load_checkpoint(monitor.run_dir / "checkpoints" / "last")
    assert ckpt.step == info["step"] and ckpt.resumable and ckpt.config.task.kind == "classify"


@POSIX
def test_cancel_in_compare_mode_ends_both_panes(qtbot, window: MainWindow, base_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel while the first model answers: the second pane, whose turn never came, used to say
    "Loading the model…" for good."""
    page = window.try_page
    window.show_page("Try")
    process = start_frozen_decoding(page, monkeypatch, after_tokens=1)
    page.set_model(base_run)
    page.compare_check.setChecked(True)
    page.set_model(base_run, pane=1)
    page.tabs.setCurrentIndex(4)  # Generate
    page.max_tokens_spin.setValue(50)
    choose_a_seed_that_writes(page, base_run, 2)
    click(qtbot, page.run_button)
    qtbot.waitUntil(lambda: len(page.outputs[0].spans) == 1, timeout=60_000)
    with qtbot.waitSignal(page.answered, timeout=30_000):
        click(qtbot, page.cancel_button)
    os.kill(process.pid, signal.SIGCONT)
    assert "cancelled" in page.status_labels[0].text()
    assert page.status_labels[1].text() == "Cancelled before the model answered."
    assert page.run_button.isEnabled() and not page.cancel_button.isEnabled()


def test_a_base_that_cannot_write_the_task_is_warned_about_before_start(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """A Chinese character base fine-tuned on an English translation task gave BLEU 0 after a run,
    with only a log line about unknown tokens. The form now says so before Start, with the share."""
    corpus = tmp_path / "zh.txt"
    corpus.write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n" * 40, encoding="utf-8")
    config = RunConfig().with_overrides([
        "model.arch=gpt", "model.n_layers=1", "model.n_heads=2", "model.d_model=16", "model.context_length=32",
        f'data.paths=["{corpus}"]', "train.steps=2", "train.batch_size=4", "train.sample_tokens=0", "run.name=zh-base",
    ])
    base = Trainer(config).fit().run_dir
    page = window.finetune_page
    window.show_page("Fine-tune")
    page.set_base(base)
    page.set_task("translate")
    qtbot.waitUntil(lambda: page.coverage_label.isVisible(), timeout=30_000)
    warning = page.coverage_label.text()
    assert "% of the task's tokens are unknown" in warning
    share = float(warning.split("%")[0])
    assert share > 50  # English targets, Chinese characters only
    assert page.monitor.start_button.isEnabled()  # a warning, not a refusal
    assert warning in page.monitor.blocked_label.text()
