"""How much of a fine-tuning task the base model's vocabulary can write, checked off the GUI
thread: it loads the base's tokenizer (spaCy for a word tokenizer, seconds) and reads up to 500
examples, far more than the 100 ms the GUI thread may spend."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.config import RunConfig
from studio.core.errors import StudioError
from studio.gui.workers.thread_job import ThreadJob


class CoverageWorker(QObject):
    done = Signal(str, str)  # the settings' key, the warning sentence ('' when coverage is fine)

    def __init__(self, key: str, config: RunConfig):
        super().__init__()
        self.key = key
        self.config = config

    @Slot()
    def run(self) -> None:
        from studio.core.training.finetune import vocabulary_coverage

        try:
            coverage = vocabulary_coverage(self.config)
            warning = coverage.warning() if coverage is not None else ""
        except (StudioError, OSError):
            warning = ""  # the form already says what is wrong with the base or the task files
        except Exception:  # noqa: BLE001 - a check that cannot run must not take the window down
            warning = ""
        self.done.emit(self.key, warning)


class CoverageCheck(ThreadJob):
    """One coverage check at a time; asking again while one runs checks the latest settings next."""

    done = Signal(str, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__("coverageThread", parent)
        self._pending: tuple[str, RunConfig] | None = None
        self.ended.connect(self._next)

    def check(self, key: str, config: RunConfig) -> None:
        if self.running:
            self._pending = (key, config)
            return
        worker = CoverageWorker(key, config)
        self._launch(worker, [worker.done], ["done"])

    def _next(self) -> None:
        if self._pending is not None:
            key, config = self._pending
            self._pending = None
            self.check(key, config)

    def cancel(self) -> None:
        self._pending = None  # the check itself is short and reads nothing it could leave half-done
