"""Callbacks receive every event of a run. The CLI's progress bar, the run folder's metrics and
log files, and the GUI's signal bridge are all just callbacks: the engine knows none of them."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from studio.core.errors import StudioError
from studio.core.events import (
    CheckpointSaved,
    DataProgress,
    DataReady,
    EvalLogged,
    Event,
    LogMessage,
    MetricsReported,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
    TrialPruned,
)
from studio.core.faults import fault_point
from studio.core.fileio import describe_os_error


@runtime_checkable
class Callback(Protocol):
    def on_event(self, event: Event) -> None: ...


class FunctionCallback:
    """Wrap a plain function as a callback."""

    def __init__(self, fn: Callable[[Event], None]):
        self.fn = fn

    def on_event(self, event: Event) -> None:
        self.fn(event)


class SinkFailed(StudioError):
    """A sink the run cannot go on without (its metrics, log or run.json) could not write."""

    def __init__(self, sink: object, error: BaseException):
        self.error = error
        if isinstance(error, OSError):
            reason = describe_os_error(error, "writing")
        else:
            reason = f"{type(error).__name__}: {error}"
        super().__init__(f"the run's records could not be written ({reason}); training stopped so nothing more is lost")


class Dispatcher:
    """Sends each event to every callback.

    Sinks marked ``essential`` (the run folder's metrics, log, samples and run.json writers) are
    the run's record: if one cannot write (a full disk), training must not go on blind, so the
    error is raised to the trainer, which stops and keeps its last checkpoint. Any other failing
    callback (a progress bar, a plot, TensorBoard) is reported once and switched off: a broken
    display must not kill a four-hour run. After ``strict`` is cleared (while reporting a failure)
    nothing is raised at all.
    """

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)
        self._broken: set[int] = set()  # ids of switched-off callbacks (the list may grow)
        self.strict = True

    def __call__(self, event: Event) -> None:
        failure: SinkFailed | None = None
        for cb in list(self.callbacks):
            if id(cb) in self._broken:
                continue
            try:
                cb.on_event(event)
            except Exception as e:  # noqa: BLE001 - isolate sinks from the run
                self._broken.add(id(cb))
                if getattr(cb, "essential", False):
                    if self.strict:
                        failure = failure or SinkFailed(cb, e)
                    continue  # not strict: the run is already failing for this reason
                try:
                    print(f"studio: a {type(cb).__name__} callback failed and was switched off: {e!r}", file=sys.stderr)
                except OSError:
                    pass  # stderr itself is gone (a closed pipe): nothing more to say
        if failure is not None:
            raise failure


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class MetricsWriter:
    """Appends every event except data progress to ``metrics.jsonl``, one JSON object per line.

    Each line is written with one call and flushed. If an earlier process died mid-line (a kill,
    a full disk), the cut line is ended first, so the next event starts on a line of its own and
    readers skip only the damaged one."""

    essential = True

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: TextIO | None = None

    def _open(self) -> TextIO:
        ends_cleanly = True
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as raw:
                raw.seek(-1, 2)
                ends_cleanly = raw.read(1) == b"\n"
        f = self.path.open("a", encoding="utf-8")
        if not ends_cleanly:
            f.write("\n")
        return f

    def on_event(self, event: Event) -> None:
        if isinstance(event, DataProgress):
            return
        if self._file is None:
            self._file = self._open()
        data = {k: (_finite(v) if isinstance(v, float) else v) for k, v in event.to_dict().items()}
        fault_point("metrics:write")
        self._file.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._file.flush()
        if isinstance(event, RunFinished | RunFailed):
            self.close()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # the disk filled: what was flushed is kept, the rest cannot be
            self._file = None


class SamplesWriter:
    """Keeps the text sampled at each evaluation in ``samples.jsonl`` (step, valid loss, text)."""

    essential = True

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_event(self, event: Event) -> None:
        if isinstance(event, EvalLogged) and event.sample:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": event.step, "valid_loss": _finite(event.loss), "sample": event.sample}, ensure_ascii=False) + "\n")


def describe(event: Event) -> str | None:
    """One human line per event, shared by the log file, the CLI and the GUI's log view."""
    match event:
        case RunStarted():
            how = f"resuming at step {event.start_step}" if event.resumed else "starting"
            return (
                f"{how}: {event.name} ({event.arch}, {event.parameters:,} parameters) on {event.device}, "
                f"{event.threads} CPU thread(s), {event.total_steps} steps. {event.memory_estimate}"
            )
        case DataReady():
            src = "token cache" if event.cache_hit else "encoded"
            return (
                f"data ready ({src}, {event.seconds:.1f} s): {event.tokenizer}; tokens train {event.train_tokens:,}, "
                f"valid {event.valid_tokens:,}, test {event.test_tokens:,}; encoding {', '.join(sorted(set(event.encodings)))}"
            )
        case EvalLogged():
            best = " (best)" if event.is_best else ""
            metrics = "".join(f", {name} {value:.2f}" for name, value in event.metrics)
            if metrics:
                return f"step {event.step}: valid loss {event.loss:.4f}{metrics}{best}"
            return f"step {event.step}: valid loss {event.loss:.4f}, perplexity {event.perplexity:.2f}{best}"
        case MetricsReported():
            shown = ", ".join(f"{name} {value:.2f}" for name, value in event.metrics)
            return f"{event.split} ({event.examples:,} examples, {event.seconds:.1f} s): {shown}"
        case CheckpointSaved():
            return f"step {event.step}: saved {event.label} checkpoint"
        case RunPaused():
            return f"paused at step {event.step}"
        case RunResumed():
            return f"resumed at step {event.step}"
        case LogMessage():
            return f"{event.level}: {event.text}" if event.level != "info" else event.text
        case RunFinished():
            words = {"finished": "finished", "stopped": "stopped", "early_stopped": "stopped early"}[event.status]
            best = f", best valid loss {event.best_loss:.4f}" if math.isfinite(event.best_loss) else ""
            why = f" ({event.reason})" if event.reason else ""
            return f"{words} at step {event.step} after {event.elapsed_s:.0f} s{best}{why}"
        case TrialPruned():
            return (f"trial {event.trial}: {event.value:.4f} at step {event.step} is worse than the median of the other "
                    f"trials there ({event.reference:.4f}); pruned")
        case RunFailed():
            saved = f" Last good state saved to {event.checkpoint}." if event.checkpoint else ""
            error = event.error.rstrip()
            if saved and not error.endswith((".", "!", "?")):
                error += "."
            return f"FAILED at step {event.step}: {error}{saved}"
    return None


class LogWriter:
    """A readable ``log.txt``: one line per event, every 50th training step, and failure tracebacks."""

    essential = True

    def __init__(self, path: Path, step_every: int = 50):
        self.path = Path(path)
        self.step_every = step_every

    def on_event(self, event: Event) -> None:
        if isinstance(event, DataProgress):
            return
        if isinstance(event, StepLogged):
            if event.step % self.step_every and event.step != event.total_steps:
                return
            line: str | None = (f"step {event.step}/{event.total_steps}: loss {event.loss:.4f}, lr {event.lr:.2e}, "
                                f"grad norm {event.grad_norm:.2f}, {event.tokens_per_s:,.0f} tokens/s")
        else:
            line = describe(event)
        if line is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp}  {line}\n")
            if isinstance(event, RunFailed) and event.detail:
                f.write(event.detail.rstrip() + "\n")
