from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication

from studio.gui.main_window import MainWindow


def _running_threads(root: object) -> list[QThread]:
    from PySide6.QtCore import QObject

    assert isinstance(root, QObject)
    return [t for t in root.findChildren(QThread) if t.isRunning()]


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    """The real main window, offscreen, with PyTorch loaded. After the test it is closed, and no
    thread or timer of it may still be running."""
    monkeypatch.setattr(MainWindow, "confirm_close_during_run", lambda self: True)
    w = MainWindow(settings_path=tmp_path / "settings.ini")
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.engine_loaded, timeout=60_000):
        w.load_engine()
    yield w
    w.close()
    QApplication.processEvents()
    assert not w.train_page.training.running
    assert not w.data_page.build.running
    assert not _running_threads(w)
    active = [t.objectName() for t in w.findChildren(QTimer) if t.isActive()]
    assert not active, f"timers still running: {active}"
