"""Both ends of the window's decoding process, ``studio decode-worker``: the Try panel's models
load and write there, each on the main thread of a process of its own, exactly as in
`studio generate`.

Why a process: PyTorch decoding from a second thread of the window's process was 1.2-1.5x slower
than the same decoding on the CLI's main thread, for the same settings and threads (beam search,
150 Chinese tokens, benchmarks/gui_responsiveness.py), and on one thread of two (to leave the GUI
thread a core) 1.5x. In a process of its own it has every core and its own interpreter lock, and
the window only draws what arrives.

The protocol, one JSON object per line:

- to the child (stdin): ``{"op": "decode", "id": N, "model": FOLDER, "tab": ..., "text": ...,
  "context": ..., "question": ..., "decoding": {DecodingSettings fields}}``; ``{"op": "cancel",
  "id": N}``; ``{"op": "forget"}`` (drop the loaded models: a run may have new weights). End of
  input (the window is gone) ends the child.
- from the child (stdout): ``{"kind": "ready"}`` once PyTorch is imported, then per request
  ``started`` (with the model's ``label``), ``tokens`` (``tokens``: [token id, text,
  probability] for each token since the last such reply), and one of ``done`` (``count``), ``cancelled``, ``unsupported`` (``why``) or ``failed``
  (``message``). Anything else the child prints goes to stderr; the client keeps its last lines to
  explain a child that died.

:class:`DecodeClient` is the window's side, :func:`serve_decoding` the child's.
"""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from studio.core.decoding.options import DecodingSettings
from studio.core.errors import StudioError
from studio.core.faults import fault_point
from studio.core.fileio import describe_os_error
from studio.core.i18n import _
from studio.core.paths import studio_command

END_KINDS = ("done", "cancelled", "unsupported", "failed")
# Tokens are written to the window in batches at most this far apart (the first one at once).
# A line per token woke the window's reader thread 150 times for 150 tokens, and each wake took a
# core from the child's two PyTorch threads: sampling ran 1.1-1.3x slower than `studio generate`.
# The window draws every 40 ms, so nothing shows later than it would have.
BATCH_S = 0.02


@dataclass(frozen=True)
class DecodeRequest:
    model: str  # a run folder or checkpoint folder
    tab: str  # translate, ask, summarize, classify, generate
    text: str
    context: str
    question: str
    decoding: DecodingSettings


# ---- the window's side -------------------------------------------------------------------------


class DecodeClient:
    """One ``studio decode-worker``, started on first use (or by ``start``, ahead of time, so its
    PyTorch import overlaps with the person typing) and kept for later requests. Requests run one
    at a time; ``decode`` blocks its caller (a worker thread), so call it off the GUI thread.
    A child that died is started again by the next request."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # which process, its replies and its stderr
        self._write_lock = threading.Lock()  # writes to its stdin (never held with _lock)
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=30)
        self._next_id = 0

    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        # Each child has its own replies and stderr: nothing from one that died reaches the next.
        self._replies, self._stderr = queue.Queue(), deque(maxlen=30)
        process = subprocess.Popen(studio_command("decode-worker"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
                                   env=dict(os.environ if self.env is None else self.env))
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        threading.Thread(target=self._read_replies, args=(process.stdout, self._replies), name="decode-replies",
                         daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(process.stderr, self._stderr), name="decode-stderr",
                         daemon=True).start()

    @staticmethod
    def _read_replies(stream: IO[str], replies: queue.Queue[dict[str, Any]]) -> None:
        for line in stream:
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # not the protocol (it never is: the child's stdout is the protocol's alone)
            if isinstance(reply, dict):
                replies.put(reply)
        replies.put({"kind": "gone"})

    @staticmethod
    def _read_stderr(stream: IO[str], lines: deque[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def _send(self, process: subprocess.Popen[str] | None, message: dict[str, Any]) -> bool:
        """Write one line to ``process``; False when it has gone. The child reads its input from
        the moment it starts, so a write waits at most for it to drain the pipe."""
        if process is None or process.stdin is None:
            return False
        with self._write_lock:
            try:
                process.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
                process.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def decode(self, request: DecodeRequest, on_reply: Callable[[dict[str, Any]], None],
               cancelled: threading.Event) -> None:
        """Run ``request``, calling ``on_reply`` with each reply, up to and including its last
        (``kind`` in END_KINDS). Once ``cancelled`` is set (checked between replies and every 50 ms)
        the request ends at once with "cancelled", and the child is told to stop."""
        with self._lock:
            self._start_locked()
            self._next_id += 1
            number = self._next_id
            process, replies, stderr = self.process, self._replies, self._stderr
        sent = self._send(process, {"op": "decode", "id": number, "model": request.model, "tab": request.tab,
                                    "text": request.text, "context": request.context, "question": request.question,
                                    "decoding": asdict(request.decoding)})
        while True:
            if cancelled.is_set():
                # The request ends here and now; the child stops at its next token, and whatever it
                # still writes for this request is passed over by the next one (its id differs).
                self._send(process, {"op": "cancel", "id": number})
                on_reply({"id": number, "kind": "cancelled"})
                return
            try:
                reply = replies.get(timeout=0.05) if sent else {"kind": "gone"}
            except queue.Empty:
                continue
            if reply.get("kind") == "gone":
                on_reply({"kind": "failed", "message": self._died_message(process, stderr)})
                return
            if reply.get("id") != number:
                continue  # the end of an earlier request that was given up on
            on_reply(reply)
            if reply.get("kind") in END_KINDS:
                return

    @staticmethod
    def _died_message(process: subprocess.Popen[str] | None, stderr: deque[str]) -> str:
        code: int | None = None
        if process is not None:
            try:
                code = process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # its output closed but it lingers: say what is known
                code = process.poll()
        tail = "\n".join(list(stderr)[-5:])
        # Translators: {code} is the process's exit status (a number).
        message = _("The decoding process ended unexpectedly (exit status {code}).").format(code=code)
        return f"{message}\n{tail}" if tail else message

    def forget(self) -> None:
        """Drop the loaded models (the next request loads its model again)."""
        with self._lock:
            process = self.process
        if process is not None and process.poll() is None:
            self._send(process, {"op": "forget"})

    def close(self, timeout: float = 0.5) -> None:
        """End the child: end of input, then a kill if it is still there after ``timeout`` seconds
        (it holds nothing worth waiting for: the models are on disk)."""
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- the child's side --------------------------------------------------------------------------


class _TokenBatch:
    """Tokens on their way to the window: the first at once, then at most BATCH_S apart."""

    def __init__(self, number: int, reply: Callable[[dict[str, Any]], None]):
        self.number = number
        self.reply = reply
        self.tokens: list[list[Any]] = []
        self.written = time.monotonic()

    def add(self, token: list[Any], at_once: bool) -> None:
        self.tokens.append(token)
        if at_once or time.monotonic() - self.written >= BATCH_S:
            self.write()

    def write(self) -> None:
        if self.tokens:
            self.reply({"id": self.number, "kind": "tokens", "tokens": self.tokens})
            self.tokens = []
        self.written = time.monotonic()


def serve_decoding() -> int:
    """The body of ``studio decode-worker``: answer decode requests from stdin until it ends."""
    # backslashreplace: a lone surrogate in a message (an undecodable file name) must not end the child.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace", buffering=1)
    os.dup2(2, 1)  # fd 1 becomes stderr for everyone else: the protocol's channel stays clean
    sys.stdout = sys.stderr
    # Imported here, in the child only: the window imports this module at start-up.
    from studio.core.runs.worker_protocol import EventWriter

    # The training worker's line writer; the window gone (the pipe closed), there is nothing to keep.
    reply = EventWriter(protocol, on_gone=lambda: os._exit(0)).write

    work: queue.Queue[dict[str, Any]] = queue.Queue()
    cancelled: set[int] = set()
    # UTF-8 whatever the system's code page (Windows gives a pipe the ANSI one); a bad byte is
    # replaced rather than ending the reader.
    requests = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")

    def read_requests() -> None:
        for line in requests:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("op") == "cancel":
                cancelled.add(int(message.get("id", 0)))
            else:
                work.put(message)
        os._exit(0)  # the window is gone (or closed us): nothing here is worth finishing

    # Reading starts before the slow imports, so the window's writes never wait on them and its
    # close is seen at once.
    threading.Thread(target=read_requests, name="decode-requests", daemon=True).start()

    import torch  # noqa: F401 - imported before "ready", so a request never waits on it

    from studio.core.inference.loading import load_model
    from studio.core.inference.runner import TaskRunner

    reply({"kind": "ready"})
    runners: dict[str, TaskRunner] = {}
    while True:
        message = work.get()
        if message.get("op") == "forget":
            runners.clear()
            continue
        number = int(message.get("id", 0))
        if number in cancelled:  # given up on before its turn came: not even its model is loaded
            cancelled.discard(number)
            continue
        try:
            model = str(message["model"])
            if model not in runners:
                runners[model] = TaskRunner(load_model(Path(model)))
            runner = runners[model]
            tab = message["tab"]
            ok, why = runner.supports(tab)
            if not ok:
                reply({"id": number, "kind": "unsupported", "why": why})
                continue
            reply({"id": number, "kind": "started", "label": runner.loaded.label})
            count = 0
            batch = _TokenBatch(number, reply)
            armed = bool(os.environ.get("STUDIO_FAULT"))  # a test's fault point: see below
            for step in runner.stream(tab, DecodingSettings(**message["decoding"]), text=message.get("text", ""),
                                      context=message.get("context", ""), question=message.get("question", "")):
                if number in cancelled:
                    batch.write()
                    reply({"id": number, "kind": "cancelled"})
                    break
                count += 1
                # With a fault armed, every token is written before the point, so a test knows
                # exactly what the window has when the process freezes there.
                batch.add([step.token_id, step.text, step.probability], at_once=count == 1 or armed)
                fault_point("decode:token")
            else:
                batch.write()
                reply({"id": number, "kind": "done", "count": count})
        except StudioError as e:
            reply({"id": number, "kind": "failed", "message": str(e)})
        except OSError as e:
            reply({"id": number, "kind": "failed", "message": describe_os_error(e)})
        except Exception as e:  # noqa: BLE001 - shown in the pane, never a crash of the process
            reply({"id": number, "kind": "failed", "message": f"{type(e).__name__}: {e}"})
        finally:
            cancelled.discard(number)
