"""Training for the window: a ``studio worker`` child process, supervised from a QThread.

``TrainingWorker`` (a QObject moved to a QThread) runs the engine's ``WorkerClient``, which starts
the child (the same ``Trainer.fit`` the CLI uses) and reads its events; the worker emits each as a
Qt signal, which Qt queues to the GUI thread. Pause, resume and stop go to the child by direct
call from the GUI thread. Why a child process, and the protocol: ``studio.core.runs.worker_protocol``.

``TrainingSession`` lives on the GUI thread and owns the thread (``ThreadJob``) and so the
process's lifetime: no QThread or child is ever left running.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot

from studio.core.config import RunConfig
from studio.core.events import RunEnded
from studio.core.i18n import _
from studio.core.runs.worker_protocol import WorkerClient, WorkerJob
from studio.gui.workers.thread_job import ThreadJob


class TrainingWorker(QObject):
    event = Signal(object)  # an engine Event
    finished = Signal(object)  # RunEnded

    def __init__(self, job: WorkerJob):
        super().__init__()
        self.client = WorkerClient(job)

    def command(self, text: str) -> None:
        """Send pause/resume/stop to the training process (any thread)."""
        self.client.command(text)

    def kill(self) -> None:
        self.client.kill()

    @Slot()
    def run(self) -> None:
        self.finished.emit(self.client.run(self.event.emit))


class TrainingSession(ThreadJob):
    """Starts one run on its own QThread and relays its events; lives on the GUI thread.
    ``finished`` comes once the thread has ended, so ``running`` is already False then."""

    event = Signal(object)
    finished = Signal(object)  # RunEnded

    def __init__(self, parent: QObject | None = None):
        super().__init__("trainingThread", parent)
        self._result: RunEnded | None = None
        self.ended.connect(self._emit_finished)

    def start(self, config: RunConfig | None, *, out: Path | None = None, resume_run: Path | None = None,
              search_spec: Path | None = None, search_folder: Path | None = None) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        self._result = None
        worker = TrainingWorker(WorkerJob(config, out, resume_run, search_spec, search_folder))
        # Kept from the worker's thread as it ends (a direct call), handed on once the thread is gone.
        worker.finished.connect(self._keep_result, Qt.ConnectionType.DirectConnection)
        self._launch(worker, [worker.finished], ["event"])

    def _keep_result(self, result: RunEnded) -> None:
        self._result = result

    @Slot()
    def _emit_finished(self) -> None:
        result = self._result or RunEnded("failed", 0, None, "", _("the training thread ended without a result"))
        self._result = None
        self.finished.emit(result)

    @property
    def _worker(self) -> TrainingWorker | None:
        return self.worker if isinstance(self.worker, TrainingWorker) else None

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.command("pause")

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.command("resume")

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.command("stop")

    def cancel(self) -> None:
        self.stop()

    def stop_and_wait(self, timeout_ms: int = 120_000) -> bool:
        """Stop, and block until the run has saved and ended (used when the window closes)."""
        thread, worker = self.thread, self._worker
        if thread is None or worker is None:
            return True
        self.stop()
        done = thread.wait(timeout_ms)
        if not done:  # hung: end it the hard way rather than hang the window too
            worker.kill()
            thread.wait()
        self._cleanup()
        QCoreApplication.processEvents()  # deliver what the thread queued before it ended
        return done
