"""Thread-safe stop and pause flags shared between whoever runs long work and whoever watches it.

A busy worker thread has no event loop to receive queued messages, so the window (or the CLI's
Ctrl-C handler) sets these flags by direct call and the work checks them between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from studio.core.errors import StudioError
from studio.core.i18n import _


class Cancelled(StudioError):
    """Raised inside long work (data preparation, downloads) when a stop was requested."""

    def __init__(self, message: str | None = None):
        super().__init__(message if message is not None else _("cancelled"))


class RunControl:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()

    # ---- called from any thread -------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def request_pause(self) -> None:
        self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._running.is_set()

    # ---- called by the work -----------------------------------------------------------------

    def raise_if_stopped(self) -> None:
        if self._stop.is_set():
            raise Cancelled()

    def wait_while_paused(self, on_pause: Callable[[], None] = lambda: None, on_resume: Callable[[], None] = lambda: None) -> None:
        """Block while paused. Returns at once when running, or when a stop arrives."""
        if self._running.is_set():
            return
        on_pause()
        while not self._running.wait(timeout=0.1):
            pass
        if not self._stop.is_set():
            on_resume()
