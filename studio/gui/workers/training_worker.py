"""Training for the window, in a child process supervised from a QThread.

``TrainingWorker`` (a QObject moved to a QThread) starts ``studio worker``, which runs the
engine's ``Trainer.fit`` (the same loop the CLI uses) and writes every event as a JSON line. The
worker turns each line back into the event record and emits it as a Qt signal, which Qt queues to
the GUI thread. Pause, resume and stop are written to the child's stdin by direct call from the
GUI thread.

Why not train in the QThread itself: measured on 2 cores, the window's redraws and the trainer's
Python code contended for the GIL and in-process training ran at 0.81-0.92 of headless speed; a
child process has its own GIL. It also isolates crashes both ways and can be killed if it hangs.
The cost is the child's PyTorch import, about 2.5 s at the start of each run.

``TrainingSession`` lives on the GUI thread and owns the thread and process lifetimes, so no
QThread or process is ever left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections import deque
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from studio.core.config import RunConfig
from studio.core.events import RunFailed, RunFinished, event_from_dict
from studio.core.paths import cache_dir, studio_command


class TrainingWorker(QObject):
    event = Signal(object)  # an engine Event
    finished = Signal(object)  # RunResult

    def __init__(self, config: RunConfig | None, *, out: Path | None = None, resume_run: Path | None = None,
                 search_spec: Path | None = None):
        super().__init__()
        self.config = config
        self.out = out
        self.resume_run = resume_run
        self.search_spec = search_spec
        self.process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []  # commands given before the process existed

    def command(self, text: str) -> None:
        """Send pause/resume/stop to the training process (any thread)."""
        with self._lock:
            proc = self.process
            if proc is None:
                self._pending.append(text)
                return
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(text + "\n")
                    proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it has just ended; its result is on the way

    def kill(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()

    @Slot()
    def run(self) -> None:
        from studio.core.training.trainer import RunResult

        config_file: Path | None = None
        args = studio_command("worker")
        if self.resume_run is not None:
            args += ["--resume", str(self.resume_run)]
        elif self.search_spec is not None:
            args += ["--search", str(self.search_spec)]
        else:
            assert self.config is not None
            fd, name = tempfile.mkstemp(prefix="run-", suffix=".toml", dir=cache_dir())
            os.close(fd)
            config_file = Path(name)
            self.config.save(config_file)
            args += ["--config", str(config_file)]
        if self.out is not None:
            args += ["--out", str(self.out)]

        stderr_tail: deque[str] = deque(maxlen=30)
        result: RunResult | None = None
        ended = False
        last_step = 0
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", bufsize=1,
            )
        except OSError as e:
            self.finished.emit(RunResult("failed", 0, float("inf"), Path(), f"could not start the training process: {e}"))
            return
        with self._lock:
            self.process = proc
            pending, self._pending = self._pending, []
        for text in pending:
            self.command(text)
        drain = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr or []), daemon=True)
        drain.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                stderr_tail.append(line)
                continue
            if data.get("event") == "result":
                result = RunResult(
                    data["status"], int(data.get("step") or 0), float(data.get("best_loss") or float("inf")),
                    Path(data["run_dir"]) if data.get("run_dir") else Path(), data.get("error", ""),
                )
                continue
            event = event_from_dict(data)
            if event is None:
                continue
            last_step = getattr(event, "step", last_step)
            ended = ended or isinstance(event, RunFinished | RunFailed)
            self.event.emit(event)
        code = proc.wait()
        drain.join(timeout=5)
        if config_file is not None:
            config_file.unlink(missing_ok=True)
        if result is None:
            detail = "".join(stderr_tail).strip().splitlines()[-1:] or [""]
            reason = f"the training process ended unexpectedly (exit code {code}). {detail[0]}".strip()
            result = RunResult("failed", last_step, float("inf"), Path(), reason)
            if not ended:
                self.event.emit(RunFailed(last_step, reason, "".join(stderr_tail)))
        self.finished.emit(result)


class TrainingSession(QObject):
    """Starts one run on its own QThread and relays its events; lives on the GUI thread."""

    event = Signal(object)
    finished = Signal(object)  # RunResult

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread: QThread | None = None
        self.worker: TrainingWorker | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, config: RunConfig | None, *, out: Path | None = None, resume_run: Path | None = None,
              search_spec: Path | None = None) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        self.thread = QThread()
        self.thread.setObjectName("trainingThread")
        self.worker = TrainingWorker(config, out=out, resume_run=resume_run, search_spec=search_spec)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.event.connect(self.event)
        # The thread ends itself as soon as the work returns (quit() is thread-safe), so the GUI
        # thread can wait for it without needing its own event loop.
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.worker.finished.connect(self._on_finished)
        self.thread.start()

    def pause(self) -> None:
        if self.worker is not None:
            self.worker.command("pause")

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.command("resume")

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.command("stop")

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        thread = self.thread
        if thread is not None:
            thread.wait()
        self.thread = None
        self.worker = None
        self.finished.emit(result)

    def stop_and_wait(self, timeout_ms: int = 120_000) -> bool:
        """Stop, and block until the run has saved and ended (used when the window closes)."""
        thread, worker = self.thread, self.worker
        if thread is None or worker is None:
            return True
        self.stop()
        ended = thread.wait(timeout_ms)
        if not ended:  # hung: end it the hard way rather than hang the window too
            worker.kill()
            thread.wait()
        QCoreApplication.processEvents()  # deliver the queued finished signal
        return ended
