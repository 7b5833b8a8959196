"""Building a corpus (download, scan, tokenizer, token cache) off the GUI thread, cancellable."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.control import Cancelled, RunControl
from studio.core.errors import StudioError
from studio.gui.workers.thread_job import ThreadJob


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


class DataBuild(ThreadJob):
    """Owns one build's thread (GUI thread side)."""

    progress = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__("dataBuildThread", parent)
        self.control = RunControl()

    def start(self, data: DataConfig, tokenizer: TokenizerConfig) -> None:
        if self.running:
            return
        self.control = RunControl()
        worker = DataBuildWorker(data, tokenizer, self.control)
        self._launch(worker, [worker.succeeded, worker.failed, worker.cancelled], ["progress", "succeeded", "failed", "cancelled"])

    def cancel(self) -> None:
        self.control.request_stop()
