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


class TokenQueue:
    """Generated tokens on their way from the worker's thread to the GUI thread, coalesced.

    The worker signals only when it puts a token into an empty queue; the GUI thread takes
    everything queued when it next draws (TryPage.DRAIN_MS later). One signal per token had meant
    a cross-thread event, a wake of the GUI thread and a GIL hand-over for every token, taken from
    the thread that generates: on 2 cores the window wrote 150 Chinese tokens 1.2-1.5x slower than
    `studio generate`, even with the drawing already batched (benchmarks/gui_responsiveness.py)."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int, str, float]] = []  # pane, id, text, probability
        self._lock = threading.Lock()

    def put(self, item: tuple[int, int, str, float]) -> bool:
        """Queue a token; True when the queue was empty (the GUI thread must be told)."""
        with self._lock:
            self._items.append(item)
            return len(self._items) == 1

    def take(self) -> list[tuple[int, int, str, float]]:
        with self._lock:
            items, self._items = self._items, []
            return items


class InferenceWorker(QObject):
    started = Signal(int, str)  # pane, model label
    tokens_ready = Signal()  # tokens wait in the queue (sent when it was empty)
    unsupported = Signal(int, str)  # pane, why
    pane_done = Signal(int, str)  # pane, how it ended
    failed = Signal(int, str)
    finished = Signal()

    def __init__(self, requests: list[TryRequest], cache: ModelCache, queue: TokenQueue):
        super().__init__()
        self.requests = requests
        self.cache = cache
        self.queue = queue
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        import torch

        from studio.core.inference.runner import TaskRunner
        from studio.core.training.cpu_threads import usable_cores

        # One core is left to the window's own thread. Decoding from this thread with as many
        # OpenMP threads as cores ran 1.3-1.5x slower than `studio generate` on 2 cores (the GUI
        # thread wakes to draw and takes a core a worker thread waits on); with one thread the
        # window matched it (150 Chinese tokens, benchmarks/gui_responsiveness.py). Beam search
        # with every core was tried: 1.44x the CLI instead of 1.37x, and the GUI thread, which
        # then had no core, stalled 333 ms.
        torch.set_num_threads(max(1, usable_cores() - 1))

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
                    if self.queue.put((request.pane, step.token_id, step.text, step.probability)):
                        self.tokens_ready.emit()
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
    tokens_ready = Signal()
    unsupported = Signal(int, str)
    pane_done = Signal(int, str)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__("inferenceThread", parent)
        self.cache = ModelCache()
        self.queue = TokenQueue()

    def start(self, requests: list[TryRequest]) -> None:
        if self.running:
            return
        self.queue = TokenQueue()  # nothing left over from an earlier request
        worker = InferenceWorker(requests, self.cache, self.queue)
        self._launch(worker, [worker.finished], ["started", "tokens_ready", "unsupported", "pane_done", "failed"])

    def take_tokens(self) -> list[tuple[int, int, str, float]]:
        """The tokens generated since the last call, in order: (pane, id, text, probability)."""
        return self.queue.take()

    def cancel(self) -> None:
        if isinstance(self.worker, InferenceWorker):
            self.worker.cancel_event.set()
