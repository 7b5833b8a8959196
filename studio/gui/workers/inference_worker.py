"""Running a model for the Try panel off the GUI thread: token by token, cancellable.

The models load and decode in the decoding process (``studio.core.inference.decode_process``,
which says why a process), which keeps them loaded, so a second question to the same model
answers at once. The worker here only relays its replies to the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.fileio import describe_os_error
from studio.core.i18n import _, ngettext
from studio.core.inference.decode_process import DecodeClient, DecodeRequest
from studio.gui.workers.thread_job import ThreadJob


@dataclass(frozen=True)
class TryRequest:
    pane: int  # 0: left, 1: right (compare)
    decode: DecodeRequest


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

    def put_all(self, items: list[tuple[int, int, str, float]]) -> bool:
        """Queue tokens; True when the queue was empty (the GUI thread must be told)."""
        with self._lock:
            was_empty = not self._items
            self._items.extend(items)
            return was_empty and bool(items)

    def take(self) -> list[tuple[int, int, str, float]]:
        with self._lock:
            items, self._items = self._items, []
            return items


class InferenceWorker(QObject):
    """Sends the requests, one after another, to the decoding process and relays its replies."""

    started = Signal(int, str)  # pane, model label
    tokens_ready = Signal()  # tokens wait in the queue (sent when it was empty)
    unsupported = Signal(int, str)  # pane, why
    pane_done = Signal(int, str)  # pane, how it ended
    failed = Signal(int, str)
    finished = Signal()

    def __init__(self, requests: list[TryRequest], client: DecodeClient, queue: TokenQueue):
        super().__init__()
        self.requests = requests
        self.client = client
        self.queue = queue
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        for request in self.requests:
            if self.cancel_event.is_set():
                # A pane whose turn never came says so, rather than "Loading the model…" for good.
                self.pane_done.emit(request.pane, _("cancelled"))
                continue
            pane = request.pane

            def on_reply(reply: dict[str, Any], pane: int = pane) -> None:
                kind = reply.get("kind")
                if kind == "tokens":
                    if self.queue.put_all([(pane, int(token), str(text), float(p)) for token, text, p in reply["tokens"]]):
                        self.tokens_ready.emit()
                elif kind == "started":
                    self.started.emit(pane, str(reply.get("label", "")))
                elif kind == "done":
                    count = int(reply.get("count", 0))
                    self.pane_done.emit(pane, ngettext("done ({n} token)", "done ({n} tokens)", count).format(n=count))
                elif kind == "cancelled":
                    self.pane_done.emit(pane, _("cancelled"))
                elif kind == "unsupported":
                    self.unsupported.emit(pane, str(reply.get("why", "")))
                elif kind == "failed":
                    self.failed.emit(pane, str(reply.get("message", "")))

            try:
                self.client.decode(request.decode, on_reply, self.cancel_event)
            except OSError as e:  # the decoding process could not be started
                self.failed.emit(pane, describe_os_error(e))
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
        self.client = DecodeClient()
        self.queue = TokenQueue()

    def start(self, requests: list[TryRequest]) -> None:
        if self.running:
            return
        self.queue = TokenQueue()  # nothing left over from an earlier request
        worker = InferenceWorker(requests, self.client, self.queue)
        self._launch(worker, [worker.finished], ["started", "tokens_ready", "unsupported", "pane_done", "failed"])

    def take_tokens(self) -> list[tuple[int, int, str, float]]:
        """The tokens generated since the last call, in order: (pane, id, text, probability)."""
        return self.queue.take()

    def cancel(self) -> None:
        if isinstance(self.worker, InferenceWorker):
            self.worker.cancel_event.set()

    def forget_models(self) -> None:
        """The decoding process loads each model again at its next request (new weights)."""
        self.client.forget()

    def close(self) -> None:
        """Cancel and wait for any request, then end the decoding process."""
        self.cancel_and_wait()
        self.client.close()
