"""Training off the GUI thread.

``TrainingWorker`` is a QObject moved to a QThread; its ``run`` slot calls the engine's
``Trainer.fit`` (the same loop the CLI uses). Engine events arrive through ``QtEventBridge``, a
callback that re-emits each event as a Qt signal from the worker thread; Qt queues it to the GUI
thread. Stop and pause are ``RunControl`` flags that the window sets by direct call: the busy
worker has no event loop to receive a queued request.

``TrainingSession`` lives on the GUI thread and owns the thread's lifetime, so no QThread is ever
left running.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.events import Event


class QtEventBridge(QObject):
    """An engine callback that turns events into a signal (emitted on the worker thread)."""

    event = Signal(object)

    def on_event(self, event: Event) -> None:
        self.event.emit(event)


class TrainingWorker(QObject):
    finished = Signal(object)  # RunResult

    def __init__(self, config: RunConfig | None, control: RunControl, bridge: QtEventBridge, *, out: Path | None = None, resume_run: Path | None = None):
        super().__init__()
        self.config = config
        self.control = control
        self.bridge = bridge
        self.out = out
        self.resume_run = resume_run

    @Slot()
    def run(self) -> None:
        from studio.core.training.trainer import RunResult, Trainer

        try:
            if self.resume_run is not None:
                trainer = Trainer.resume(self.resume_run)
            else:
                assert self.config is not None
                trainer = Trainer(self.config, out=self.out)
            result = trainer.fit([self.bridge], self.control)
        except Exception as e:  # noqa: BLE001 - e.g. a run folder that cannot be created
            result = RunResult("failed", 0, float("inf"), Path(), f"{type(e).__name__}: {e}")
        self.finished.emit(result)


class TrainingSession(QObject):
    """Starts one run on its own QThread and relays its events; lives on the GUI thread."""

    event = Signal(object)
    finished = Signal(object)  # RunResult

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.control = RunControl()
        self.thread: QThread | None = None
        self.worker: TrainingWorker | None = None
        self.bridge: QtEventBridge | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, config: RunConfig | None, *, out: Path | None = None, resume_run: Path | None = None) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        self.control = RunControl()
        self.bridge = QtEventBridge()
        self.bridge.event.connect(self.event)
        self.thread = QThread()
        self.thread.setObjectName("trainingThread")
        self.worker = TrainingWorker(config, self.control, self.bridge, out=out, resume_run=resume_run)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        # The thread ends itself as soon as the work returns (quit() is thread-safe), so the GUI
        # thread can wait for it without waiting for its own event loop.
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.worker.finished.connect(self._on_finished)
        self.thread.start()

    def pause(self) -> None:
        self.control.request_pause()

    def resume(self) -> None:
        self.control.request_resume()

    def stop(self) -> None:
        self.control.request_stop()

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        thread = self.thread
        if thread is not None:
            thread.wait()
        self.thread = None
        self.worker = None
        self.bridge = None
        self.finished.emit(result)

    def stop_and_wait(self, timeout_ms: int = 120_000) -> bool:
        """Stop, and block until the worker has saved and ended (used when the window closes)."""
        thread = self.thread
        if thread is None:
            return True
        self.stop()
        ended = thread.wait(timeout_ms)
        QCoreApplication.processEvents()  # deliver the queued finished signal
        return ended
