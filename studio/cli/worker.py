"""``studio worker``: run ``Trainer.fit`` for a supervising process (the window).

Protocol, all text lines:

- stdout: one JSON object per engine event (``Event.to_dict()``), then a final
  ``{"event": "result", ...}`` line. Nothing else is written there: stray prints from libraries
  are redirected to stderr before training starts.
- stdin: commands ``pause``, ``resume`` and ``stop``. End of input (the supervisor has gone)
  means stop: the run saves a checkpoint and ends cleanly.

Why a separate process: in a 2-core machine the window's plotting and the trainer's Python code
fought over the GIL, costing up to a third of the training speed; a child process has its own
interpreter, survives nothing-to-do-with-it crashes in the window (and the window survives a
native crash in the trainer), and can be killed outright if it hangs.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


class EventWriter:
    """Writes each event as one JSON line; safe to call from any thread.

    If the supervisor has gone (the window was killed: the pipe is closed), writing fails. That
    is not the run's failure: ``on_gone`` is called (the worker asks the run to stop, which saves a
    checkpoint) and later writes are dropped."""

    def __init__(self, stream: TextIO, on_gone: Callable[[], None] = lambda: None):
        self.stream = stream
        self.lock = threading.Lock()
        self.on_gone = on_gone
        self.gone = False

    def write(self, data: dict[str, Any]) -> None:
        # NaN and infinity are written as JSON's common extension (NaN, Infinity), which json.loads reads back.
        line = json.dumps(data, ensure_ascii=False)
        with self.lock:
            if self.gone:
                return
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # BrokenPipeError, or the stream closed under us
                self.gone = True
        if self.gone:
            self.on_gone()

    def on_event(self, event: Any) -> None:
        self.write(event.to_dict())


class _QuietStream(io.TextIOBase):
    """stderr that swallows write errors: with the supervisor gone, a warning printed by a library
    must not turn into a BrokenPipeError that fails the run."""

    def __init__(self, inner: TextIO):
        self.inner = inner

    def write(self, text: str) -> int:
        try:
            self.inner.write(text)
            self.inner.flush()
        except (OSError, ValueError):
            pass
        return len(text)

    def flush(self) -> None:
        try:
            self.inner.flush()
        except (OSError, ValueError):
            pass


def run_worker(config_path: Path | None, out: Path | None, resume: Path | None, search: Path | None = None) -> int:
    # Keep the protocol channel clean: fd 1 becomes stderr for everyone else.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stderr = _QuietStream(sys.__stderr__ or sys.stderr)  # type: ignore[assignment]
    sys.stdout = sys.stderr

    from studio.core.config import RunConfig
    from studio.core.control import RunControl
    from studio.core.errors import StudioError
    from studio.core.training.trainer import Trainer

    control = RunControl()
    writer = EventWriter(protocol, control.request_stop)
    # SIGTERM (a session logout, a service manager) stops and saves like the window's Stop.
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, lambda *_: control.request_stop())

    def read_commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "pause":
                control.request_pause()
            elif command == "resume":
                control.request_resume()
            elif command == "stop":
                control.request_stop()
        control.request_stop()  # the supervisor is gone: save and end

    threading.Thread(target=read_commands, name="commands", daemon=True).start()
    if search is not None:
        from studio.core.runs.search import SearchSpec, run_search

        try:
            board, folder = run_search(SearchSpec.load(search), [writer], control)
        except StudioError as e:
            writer.write({"event": "result", "status": "failed", "step": 0, "best_loss": None, "run_dir": "", "error": str(e)})
            return 1
        status = "stopped" if control.stop_requested else "finished"
        writer.write({"event": "result", "status": status, "step": len(board), "best_loss": None, "run_dir": str(folder), "error": ""})
        return 0
    try:
        if resume is not None:
            trainer = Trainer.resume(resume)
        else:
            assert config_path is not None
            trainer = Trainer(RunConfig.load(config_path), out=out)
        result = trainer.fit([writer], control)
    except (StudioError, OSError) as e:
        writer.write({"event": "result", "status": "failed", "step": 0, "best_loss": None, "run_dir": "", "error": str(e)})
        return 1
    writer.write(
        {"event": "result", "status": result.status, "step": result.step, "best_loss": result.best_loss,
         "run_dir": str(result.run_dir) if str(result.run_dir) != "." else "", "error": result.error}
    )
    return 0 if result.status != "failed" else 1
