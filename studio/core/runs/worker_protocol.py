"""Both ends of the protocol between a supervisor (the window, a search running trials in parallel)
and ``studio worker``, the child process that runs ``Trainer.fit`` or a whole search.

The protocol, all text lines:

- the child's stdout: one JSON object per engine event (``Event.to_dict()``), the last of them a
  ``RunEnded`` event saying how the run ended. Nothing else is written there: the child points
  its own stdout at stderr before any library can print.
- the child's stdin: the commands ``pause``, ``resume`` and ``stop``. End of input (the supervisor
  is gone) means stop: the run saves a checkpoint and ends as "stopped".
- the child's stderr: anything else (library warnings); the supervisor keeps its last lines to
  explain a child that died.

Why a child process at all: the README's window section gives the measurements (the window's
redraws and an in-process trainer shared one interpreter lock); a child has its own interpreter, a
native crash on either side leaves the other standing, and a hung child can be killed. It costs
the child's PyTorch import, about 2.5 s per run.

:class:`WorkerClient` is the supervisor's side, :func:`serve` the child's.
"""

from __future__ import annotations

import io
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.errors import StudioError
from studio.core.events import Event, RunEnded, RunFailed, RunFinished, event_from_dict
from studio.core.fileio import describe_os_error
from studio.core.i18n import _
from studio.core.paths import cache_dir, studio_command
from studio.core.training.cpu_threads import quiet_openmp_environment

COMMANDS = ("pause", "resume", "stop")


# ---- the supervisor's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """What the child is to do: train ``config`` (into ``out``), resume ``resume_run``, run the
    search in ``search_spec``, or resume the search in ``search_folder`` (``search_spec`` then
    may raise its budgets: see ``studio.core.runs.search.resume_spec``)."""

    config: RunConfig | None = None
    out: Path | None = None
    resume_run: Path | None = None
    search_spec: Path | None = None
    search_folder: Path | None = None


def child_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The training child's environment: ``env`` (or this process's) with OpenMP's idle threads
    told to sleep rather than spin, since the window shares the cores (``cpu_threads``)."""
    child = dict(os.environ if env is None else env)
    child.update(quiet_openmp_environment(child))
    return child


class WorkerClient:
    """Starts one ``studio worker`` and reads its events. ``command`` and ``kill`` may be called
    from any thread, also before the child has started (commands are then sent once it has)."""

    def __init__(self, job: WorkerJob, env: dict[str, str] | None = None, line_timeout: float | None = None):
        self.job = job
        self.env = env
        self.line_timeout = line_timeout  # for a supervisor that must not wait forever on a silent child
        self.process: subprocess.Popen[str] | None = None
        self.result: RunEnded | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._stderr: deque[str] = deque(maxlen=30)
        self._config_file: Path | None = None

    def command(self, text: str) -> None:
        if text not in COMMANDS:
            raise ValueError(f"unknown worker command {text!r}")
        with self._lock:
            proc = self.process
            if proc is None:
                self._pending.append(text)
                return
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(text + "\n")
                    proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # it has just ended; its result is on the way

    def kill(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()

    def _args(self) -> list[str]:
        job = self.job
        args = studio_command("worker")
        if job.resume_run is not None:
            args += ["--resume", str(job.resume_run)]
        elif job.search_folder is not None:
            args += ["--search-folder", str(job.search_folder)]
            if job.search_spec is not None:
                args += ["--search", str(job.search_spec)]
        elif job.search_spec is not None:
            args += ["--search", str(job.search_spec)]
        else:
            if job.config is None:
                raise ValueError("a worker job needs a config, a run to resume or a search spec")
            fd, name = tempfile.mkstemp(prefix="run-", suffix=".toml", dir=cache_dir())
            os.close(fd)
            self._config_file = Path(name)
            job.config.save(self._config_file)
            args += ["--config", str(self._config_file)]
        if job.out is not None:
            args += ["--out", str(job.out)]
        return args

    def events(self) -> Iterator[Event]:
        """Start the child and yield its events; the last one is always a ``RunEnded`` (made here
        if the child died without one, after a ``RunFailed`` that says so)."""
        last_step = 0
        ended = False
        try:
            try:
                proc = subprocess.Popen(
                    self._args(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, encoding="utf-8", bufsize=1, env=child_environment(self.env),
                )
            except OSError as e:
                message = _("could not start the training process: {reason}").format(reason=e)
                self.result = RunEnded("failed", 0, None, "", message)
                yield self.result
                return
            with self._lock:
                self.process = proc
                pending, self._pending = self._pending, []
            for text in pending:
                self.command(text)
            drain = threading.Thread(target=lambda: self._stderr.extend(proc.stderr or []), name="worker-stderr", daemon=True)
            drain.start()
            assert proc.stdout is not None
            for line in _lines(proc.stdout, self.line_timeout, self.kill):
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    self._stderr.append(line)
                    continue
                event = event_from_dict(data) if isinstance(data, dict) else None
                if event is None:
                    continue
                if isinstance(event, RunEnded):
                    self.result = event
                    continue
                last_step = getattr(event, "step", last_step)
                ended = ended or isinstance(event, RunFinished | RunFailed)
                yield event
            code = proc.wait()
            drain.join(timeout=5)
            if self.result is None:
                detail = "".join(self._stderr).strip().splitlines()[-1:] or [""]
                # Translators: {detail} is the last line the process wrote (often a Python error, in English).
                reason = _("the training process ended unexpectedly (exit code {code}). {detail}").format(code=code, detail=detail[0]).strip()
                if not ended:
                    yield RunFailed(last_step, reason, "".join(self._stderr))
                self.result = RunEnded("failed", last_step, None, "", reason)
            yield self.result
        finally:
            if self._config_file is not None:
                self._config_file.unlink(missing_ok=True)

    def run(self, on_event: Callable[[Event], None]) -> RunEnded:
        """Run to the end, handing every event but the last to ``on_event``."""
        for event in self.events():
            if not isinstance(event, RunEnded):
                on_event(event)
        assert self.result is not None
        return self.result


def _lines(stream: IO[str], timeout: float | None, on_timeout: Callable[[], None]) -> Iterator[str]:
    """The stream's lines; with a timeout, a child silent for that long is killed (a hang)."""
    if timeout is None:
        yield from stream
        return
    box: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            box.put(line)
        box.put(None)

    threading.Thread(target=pump, name="worker-stdout", daemon=True).start()
    while True:
        try:
            line = box.get(timeout=timeout)
        except queue.Empty:
            on_timeout()
            continue
        if line is None:
            return
        yield line


# ---- the child's side --------------------------------------------------------------------------


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

    def on_event(self, event: Event) -> None:
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


Work = Callable[[list[Any], RunControl], RunEnded]  # (callbacks, control) -> how it ended


def ended(status: str, step: int, best_loss: float, run_dir: Path, error: str = "") -> RunEnded:
    """A ``RunEnded`` from a trainer's or search's outcome."""
    return RunEnded(status, step, best_loss if math.isfinite(best_loss) else None,
                    str(run_dir) if run_dir != Path() else "", error)


def serve(work: Work) -> int:
    """The body of ``studio worker``: run ``work`` (a training run or a search, chosen by the
    CLI), reporting every event on stdout and obeying the commands on stdin."""
    # Keep the protocol channel clean: fd 1 becomes stderr for everyone else.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stderr = _QuietStream(sys.__stderr__ or sys.stderr)
    sys.stdout = sys.stderr

    control = RunControl()
    writer = EventWriter(protocol, control.request_stop)
    # SIGTERM (a logout, a service manager) and SIGHUP stop and save like the window's Stop.
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
    try:
        result = work([writer], control)
    except StudioError as e:
        result = RunEnded("failed", 0, None, "", str(e))
    except OSError as e:
        result = RunEnded("failed", 0, None, "", describe_os_error(e))
    writer.on_event(result)
    return 0 if result.status != "failed" else 1
