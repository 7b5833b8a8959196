from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QThread, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from studio.core.preferences import Preferences, save_preferences
from studio.gui.main_window import EngineLoadWorker, MainWindow
from studio.gui.workers.data_worker import DataBuildWorker
from studio.gui.workers.inference_worker import InferenceWorker
from studio.gui.workers.training_worker import TrainingWorker


def _trace_qthreads() -> None:
    """Coverage follows Python's own threads (``concurrency = ["thread"]``) but not QThreads, whose
    code starts from C++ with no tracer: the training supervisor and the data, inference and
    engine workers showed as untested although every GUI test runs them. When coverage is
    measuring, each worker's ``run`` (always the first Python frame of its QThread) installs the
    tracer that coverage gives new threads. Without coverage nothing is touched."""
    try:
        import coverage
    except ImportError:
        return
    if coverage.Coverage.current() is None:
        return
    for cls in (EngineLoadWorker, DataBuildWorker, InferenceWorker, TrainingWorker):
        run: Callable[..., Any] = cls.run

        @functools.wraps(run)
        def traced(self: QObject, *args: Any, _run: Callable[..., Any] = run, **kwargs: Any) -> Any:
            hook = threading.gettrace()
            # Only in a thread coverage has not seen: on the GUI thread the tracer is already there.
            if hook is not None and sys.gettrace() is None and threading.current_thread() is not threading.main_thread():
                sys.settrace(hook)
            return _run(self, *args, **kwargs)

        cls.run = traced  # type: ignore[method-assign]


_trace_qthreads()


def _running_threads(root: object) -> list[QThread]:
    assert isinstance(root, QObject)
    return [t for t in root.findChildren(QThread) if t.isRunning()]


@pytest.fixture(autouse=True)
def no_unanswered_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offscreen, a modal dialog waits for a click nobody makes and the test hangs. A test that
    expects a dialog patches that one static call to give its answer; any other dialog fails the
    test at once, saying which it was."""

    def unexpected(kind: str) -> Callable[..., Any]:
        def show(parent: object, title: str = "", text: str = "", *args: object, **kwargs: object) -> Any:
            raise AssertionError(f"unexpected dialog {kind}({title!r}, {text!r}): patch it in the test that expects it")

        return staticmethod(show)

    for kind in ("question", "warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, kind, unexpected(f"QMessageBox.{kind}"))
    for kind in ("getOpenFileNames", "getOpenFileName", "getExistingDirectory", "getSaveFileName"):
        monkeypatch.setattr(QFileDialog, kind, unexpected(f"QFileDialog.{kind}"))


def answer_close_dialog(monkeypatch: pytest.MonkeyPatch, answer: QMessageBox.StandardButton) -> list[str]:
    """Make the real "Training is running" question return ``answer``; returns the titles asked."""
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object, **kwargs: object) -> QMessageBox.StandardButton:
        asked.append(title)
        return answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_unanswered_dialogs: None) -> Iterator[MainWindow]:
    """The real main window, offscreen, with PyTorch loaded. After the test it is closed, and no
    thread or timer of it may still be running. Tests that close it during a run answer the
    question themselves (``answer_close_dialog``); a test that leaves a run going fails, after
    its run has been stopped as "Yes" would (so one failing test leaves no process or thread
    behind for the next). The welcome screen is marked seen, as after a first launch:
    ``tests/gui/test_welcome_preferences.py`` opens it on purpose."""
    save_preferences(Preferences(show_welcome=False))
    w = MainWindow(settings_path=tmp_path / "settings.ini")
    left_running: list[str] = []

    def before_close(w: MainWindow) -> None:  # pytest-qt closes the window first, then this fixture ends
        left_running.extend(name for name, busy in (("training", w.train_page.monitor.training.running),
                                                    ("fine-tuning", w.finetune_page.monitor.training.running),
                                                    ("search", w.search_page.session.running)) if busy)
        if left_running:
            answer_close_dialog(monkeypatch, QMessageBox.StandardButton.Yes)

    qtbot.addWidget(w, before_close_func=before_close)
    w.show()
    with qtbot.waitSignal(w.engine_loaded, timeout=60_000):
        w.load_engine()
    yield w
    w.close()
    QApplication.processEvents()
    assert not left_running, f"the test left a run going ({', '.join(left_running)})"
    assert not w.train_page.monitor.training.running
    assert not w.data_page.build.running
    assert not _running_threads(w)
    active = [t.objectName() for t in w.findChildren(QTimer) if t.isActive()]
    assert not active, f"timers still running: {active}"
