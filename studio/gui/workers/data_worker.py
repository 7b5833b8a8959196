"""Building a corpus (download, scan, tokenizer, token cache) off the GUI thread, cancellable."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.control import Cancelled, RunControl
from studio.core.errors import StudioError


class DataBuildWorker(QObject):
    progress = Signal(str, int, int)  # stage, done, total
    succeeded = Signal(object)  # PreparedCorpus
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, data: DataConfig, tokenizer: TokenizerConfig, control: RunControl):
        super().__init__()
        self.data = data
        self.tokenizer = tokenizer
        self.control = control

    @Slot()
    def run(self) -> None:
        from studio.core.data.prepare import prepare_corpus

        try:
            prepared = prepare_corpus(self.data, self.tokenizer, progress=self.progress.emit, control=self.control)
        except Cancelled:
            self.cancelled.emit()
        except StudioError as e:
            self.failed.emit(str(e))
        except Exception as e:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(f"{type(e).__name__}: {e}")
        else:
            self.succeeded.emit(prepared)


class DataBuild(QObject):
    """Owns one build's thread (GUI thread side)."""

    progress = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    ended = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread: QThread | None = None
        self.worker: DataBuildWorker | None = None
        self.control = RunControl()

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, data: DataConfig, tokenizer: TokenizerConfig) -> None:
        if self.running:
            return
        self.control = RunControl()
        self.thread = QThread()
        self.thread.setObjectName("dataBuildThread")
        self.worker = DataBuildWorker(data, tokenizer, self.control)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        for signal in (self.worker.succeeded, self.worker.failed, self.worker.cancelled):
            # Direct: the thread ends itself, so waiting for it never needs the GUI loop.
            signal.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.worker.progress.connect(self.progress)
        self.worker.succeeded.connect(self.succeeded)
        self.worker.failed.connect(self.failed)
        self.worker.cancelled.connect(self.cancelled)
        self.thread.finished.connect(self._cleanup)
        self.thread.start()

    def cancel(self) -> None:
        self.control.request_stop()

    def cancel_and_wait(self) -> None:
        if self.thread is not None:
            self.cancel()
            self.thread.wait()
            self._cleanup()

    @Slot()
    def _cleanup(self) -> None:
        if self.thread is not None:
            self.thread.wait()
            self.thread.deleteLater()
        self.thread = None
        self.worker = None
        self.ended.emit()
