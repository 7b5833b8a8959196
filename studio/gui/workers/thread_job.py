"""One worker QObject on its own QThread, owned from the GUI thread.

The thread quits itself the moment the work reports it is done (a direct connection, since
``QThread.quit`` is thread-safe), so the GUI thread can always wait for it without needing its
own event loop, and no thread outlives its job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Qt, QThread, Signal, SignalInstance, Slot


class ThreadJob(QObject):
    ended = Signal()

    def __init__(self, thread_name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.thread_name = thread_name
        self.thread: QThread | None = None
        self.worker: QObject | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def _launch(self, worker: QObject, done: Sequence[SignalInstance], relay: Sequence[str]) -> None:
        """Start ``worker.run`` on a new thread; ``done`` signals end it; ``relay`` names worker
        signals re-emitted by this job's signals of the same name."""
        self.thread = QThread()
        self.thread.setObjectName(self.thread_name)
        self.worker = worker
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)  # type: ignore[attr-defined]
        for signal in done:
            signal.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        for name in relay:
            getattr(worker, name).connect(getattr(self, name))
        self.thread.finished.connect(self._cleanup)
        self.thread.start()

    def cancel(self) -> None:
        raise NotImplementedError

    def cancel_and_wait(self) -> None:
        if self.thread is not None:
            self.cancel()
            self.thread.wait()
            self._cleanup()

    @Slot()
    def _cleanup(self) -> None:
        if self.thread is None:
            return
        self.thread.wait()
        self.thread.deleteLater()
        self.thread = None
        self.worker = None
        self.ended.emit()


class LatestOnlyJob(ThreadJob):
    """Reads that only the newest answer matters for (a report, the runs to compare): one worker
    at a time, and a request made meanwhile waits; a newer request replaces a waiting one, whose
    answer would be stale before it came. The worker must have a ``done`` signal, relayed as this
    job's own ``done``, which a subclass declares with the worker's signature."""

    def __init__(self, thread_name: str, parent: QObject | None = None):
        super().__init__(thread_name, parent)
        self._pending: Callable[[], QObject] | None = None  # makes the waiting request's worker
        self.ended.connect(self._next)

    def _request(self, make_worker: Callable[[], QObject]) -> None:
        if self.running:
            self._pending = make_worker
            return
        worker = make_worker()
        self._launch(worker, [worker.done], ["done"])  # type: ignore[attr-defined]

    def _next(self) -> None:
        if self._pending is not None:
            make_worker, self._pending = self._pending, None
            self._request(make_worker)

    def cancel(self) -> None:
        self._pending = None  # the read in progress only reads, and ends within seconds
