"""Running a model for the Try panel off the GUI thread: token by token, cancellable.

Models are loaded in the worker (loading reads weights from disk) and kept in a small cache, so
a second question to the same model answers at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.decoding.options import DecodingSettings
from studio.core.errors import StudioError
from studio.core.i18n import _, ngettext
from studio.gui.workers.thread_job import ThreadJob


@dataclass(frozen=True)
class TryRequest:
    pane: int  # 0: left, 1: right (compare)
    model_ref: str  # a run folder or checkpoint folder
    tab: str  # translate, ask, summarize, classify, generate
    text: str
    context: str
    question: str
    decoding: DecodingSettings


class ModelCache:
    """Loaded models by folder; shared by the Try panel's workers (inference only reads them)."""

    def __init__(self) -> None:
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, ref: str) -> object:
        from studio.core.inference.loading import load_model
        from studio.core.inference.runner import TaskRunner

        with self._lock:
            if ref not in self._models:
                self._models[ref] = TaskRunner(load_model(Path(ref)))
            return self._models[ref]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


class InferenceWorker(QObject):
    started = Signal(int, str)  # pane, model label
    token = Signal(int, int, str, float)  # pane, id, text, probability
    unsupported = Signal(int, str)  # pane, why
    pane_done = Signal(int, str)  # pane, how it ended
    failed = Signal(int, str)
    finished = Signal()

    def __init__(self, requests: list[TryRequest], cache: ModelCache):
        super().__init__()
        self.requests = requests
        self.cache = cache
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        from studio.core.inference.runner import TaskRunner

        for request in self.requests:
            if self.cancel_event.is_set():
                # A pane whose turn never came says so, rather than "Loading the model…" for good.
                self.pane_done.emit(request.pane, _("cancelled"))
                continue
            try:
                runner = self.cache.get(request.model_ref)
                assert isinstance(runner, TaskRunner)
                ok, why = runner.supports(request.tab)  # type: ignore[arg-type]
                if not ok:
                    self.unsupported.emit(request.pane, why)
                    continue
                self.started.emit(request.pane, runner.loaded.label)
                stream = runner.stream(request.tab, request.decoding, text=request.text,  # type: ignore[arg-type]
                                       context=request.context, question=request.question)
                count = 0
                for step in stream:
                    if self.cancel_event.is_set():
                        self.pane_done.emit(request.pane, _("cancelled"))
                        break
                    self.token.emit(request.pane, step.token_id, step.text, step.probability)
                    count += 1
                else:
                    self.pane_done.emit(request.pane, ngettext("done ({n} token)", "done ({n} tokens)", count).format(n=count))
            except StudioError as e:
                self.failed.emit(request.pane, str(e))
            except Exception as e:  # noqa: BLE001 - shown in the pane, never a crash
                self.failed.emit(request.pane, f"{type(e).__name__}: {e}")
        self.finished.emit()


class TryJob(ThreadJob):
    """One Try request (one or two panes) on its own thread; lives on the GUI thread."""

    started = Signal(int, str)
    token = Signal(int, int, str, float)
    unsupported = Signal(int, str)
    pane_done = Signal(int, str)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__("inferenceThread", parent)
        self.cache = ModelCache()

    def start(self, requests: list[TryRequest]) -> None:
        if self.running:
            return
        worker = InferenceWorker(requests, self.cache)
        self._launch(worker, [worker.finished], ["started", "token", "unsupported", "pane_done", "failed"])

    def cancel(self) -> None:
        if isinstance(self.worker, InferenceWorker):
            self.worker.cancel_event.set()
