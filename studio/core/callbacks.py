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

from studio.core.durations import format_duration
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
from studio.core.i18n import _


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
            # Translators: what was being done when the disk failed, put before a file's name ("writing run.json").
            reason = describe_os_error(error, _("writing"))
        else:
            reason = f"{type(error).__name__}: {error}"
        super().__init__(
            _("the run's records could not be written ({reason}); training stopped so nothing more is lost").format(reason=reason)
        )


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
                    # Translators: {callback} is a class name (TensorBoardWriter), {error} the error as Python writes it.
                    message = _("studio: a {callback} callback failed and was switched off: {error}")
                    print(message.format(callback=type(cb).__name__, error=repr(e)), file=sys.stderr)
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
            if event.resumed:
                # Translators: the start of the line "resuming at step 500: my-run (gpt, 1,234 parameters) on cpu, ...".
                how = _("resuming at step {step}").format(step=event.start_step)
            else:
                how = _("starting")
            # Translators: {how} is "starting" or "resuming at step N"; {name} the run's name, {arch} its
            # architecture (gpt, lstm), {device} where it trains (cpu, cuda:0), {memory} the memory estimate.
            line = _(
                "{how}: {name} ({arch}, {parameters:,} parameters) on {device}, "
                "{threads} CPU thread(s), {steps} steps. {memory}"
            ).format(how=how, name=event.name, arch=event.arch, parameters=event.parameters, device=event.device,
                     threads=event.threads, steps=event.total_steps, memory=event.memory_estimate)
            if event.time_budget_s:
                # Translators: put after the start line; {budget} is a duration (3m, 1h30m).
                line += _(" Time budget {budget}: training stops when it is used.").format(budget=format_duration(event.time_budget_s))
            return line
        case DataReady():
            src = _("token cache") if event.cache_hit else _("encoded")
            # Translators: {source} is "token cache" or "encoded", {tokenizer} describes the tokenizer, {encodings}
            # lists the text encodings of the files (UTF-8, GB18030).
            return _(
                "data ready ({source}, {seconds:.1f} s): {tokenizer}; tokens train {train:,}, "
                "valid {valid:,}, test {test:,}; encoding {encodings}"
            ).format(source=src, seconds=event.seconds, tokenizer=event.tokenizer, train=event.train_tokens,
                     valid=event.valid_tokens, test=event.test_tokens, encodings=", ".join(sorted(set(event.encodings))))
        case EvalLogged():
            best = _(" (best)") if event.is_best else ""
            # Translators: a task metric after the loss: ", accuracy 93.50" ({name} is the metric's name).
            metrics = "".join(_(", {name} {value:.2f}").format(name=name, value=value) for name, value in event.metrics)
            if metrics:
                # Translators: {metrics} is a list such as ", accuracy 93.50"; {best} is " (best)" or nothing.
                return _("step {step}: valid loss {loss:.4f}{metrics}{best}").format(
                    step=event.step, loss=event.loss, metrics=metrics, best=best
                )
            # Translators: {best} is " (best)" or nothing; {bits} is ", 1.842 bits/char, 1.790 bits/byte" or nothing.
            return _("step {step}: valid loss {loss:.4f}, perplexity {perplexity:.2f}{bits}{best}").format(
                step=event.step, loss=event.loss, perplexity=event.perplexity, bits=describe_bits(event.bits_per_char, event.bits_per_byte),
                best=best,
            )
        case MetricsReported():
            shown = ", ".join(_("{name} {value:.2f}").format(name=name, value=value) for name, value in event.metrics)
            # Translators: {split} is valid or test; {metrics} a list such as "accuracy 93.50, f1 91.20".
            return _("{split} ({examples:,} examples, {seconds:.1f} s): {metrics}").format(
                split=split_name(event.split), examples=event.examples, seconds=event.seconds, metrics=shown
            )
        case CheckpointSaved():
            if event.label == "best":
                return _("step {step}: saved best checkpoint").format(step=event.step)
            if event.label == "last":
                return _("step {step}: saved last checkpoint").format(step=event.step)
            if event.label == "snapshot":
                return None  # the Inspect page's weights-only copy, at every evaluation: not worth a log line
            # Translators: {label} is the checkpoint's name.
            return _("step {step}: saved {label} checkpoint").format(step=event.step, label=event.label)
        case RunPaused():
            return _("paused at step {step}").format(step=event.step)
        case RunResumed():
            return _("resumed at step {step}").format(step=event.step)
        case LogMessage():
            if event.level == "info":
                return event.text
            if event.level == "warning":
                return _("warning: {text}").format(text=event.text)
            return f"{event.level}: {event.text}"
        case RunFinished():
            words = {"finished": _("finished"), "stopped": _("stopped"), "early_stopped": _("stopped early")}[event.status]
            # Translators: put after "finished at step N after M s"; {loss} is the best validation loss.
            best = ""
            if math.isfinite(event.best_loss):
                # Translators: {bits} is ", 1.842 bits/char, 1.790 bits/byte" or nothing.
                best = _(", best valid loss {loss:.4f}{bits}").format(
                    loss=event.best_loss, bits=describe_bits(event.best_bits_per_char, event.best_bits_per_byte)
                )
            why = _(" ({reason})").format(reason=event.reason) if event.reason else ""
            # Translators: {outcome} is "finished", "stopped" or "stopped early"; {best} ", best valid loss 1.2345" or
            # nothing; {reason} " (why it stopped)" or nothing.
            return _("{outcome} at step {step} after {seconds:.0f} s{best}{reason}").format(
                outcome=words, step=event.step, seconds=event.elapsed_s, best=best, reason=why
            )
        case TrialPruned():
            # Translators: a search trial stopped early; {value} is its metric, {median} the other trials' median.
            return _("trial {trial}: {value:.4f} at step {step} is worse than the median of the other "
                     "trials there ({median:.4f}); pruned").format(
                trial=event.trial, value=event.value, step=event.step, median=event.reference
            )
        case RunFailed():
            saved = _(" Last good state saved to {checkpoint}.").format(checkpoint=event.checkpoint) if event.checkpoint else ""
            error = event.error.rstrip()
            if saved and not error.endswith((".", "!", "?", "。", "！", "？")):
                error += "."
            if event.step == 0 and not saved:  # refused by the pre-flight or the data: nothing trained
                # Translators: {error} says what went wrong, before any training happened.
                return _("FAILED before training started: {error}").format(error=error)
            # Translators: {error} says what went wrong; {saved} is " Last good state saved to <folder>." or nothing.
            return _("FAILED at step {step}: {error}{saved}").format(step=event.step, error=error, saved=saved)
    return None


def describe_bits(per_char: float | None, per_byte: float | None) -> str:
    """", 1.842 bits/char, 1.790 bits/byte" after a loss, or nothing when they are unknown."""
    out = ""
    if per_char is not None:
        # Translators: put after a loss: bits per character (the loss in bits, over the characters of the text).
        out += _(", {value:.3f} bits/char").format(value=per_char)
    if per_byte is not None:
        # Translators: put after a loss: bits per byte (over the UTF-8 bytes of the text).
        out += _(", {value:.3f} bits/byte").format(value=per_byte)
    return out


def describe_stage(stage: str) -> str:
    """A data-preparation stage as shown (``DataProgress.stage`` is a plain word: scan, tokenizer,
    encode, or "download <file>")."""
    if stage.startswith("download "):
        # Translators: a stage of data preparation; {file} is the file being downloaded.
        return _("download {file}").format(file=stage.removeprefix("download "))
    # Translators: stages of data preparation: reading the files, training the tokenizer, encoding the text.
    return {"scan": _("scan"), "tokenizer": _("tokenizer"), "encode": _("encode")}.get(stage, stage)


def split_name(split: str) -> str:
    """A split's name as shown (the event carries the plain ``valid`` or ``test``)."""
    return {"train": _("train"), "valid": _("valid"), "test": _("test")}.get(split, split)


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
            line: str | None = _(
                "step {step}/{total}: loss {loss:.4f}, lr {lr:.2e}, grad norm {grad_norm:.2f}, {speed:,.0f} tokens/s"
            ).format(step=event.step, total=event.total_steps, loss=event.loss, lr=event.lr,
                     grad_norm=event.grad_norm, speed=event.tokens_per_s)
        else:
            line = describe(event)
        if line is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp}  {line}\n")
            if isinstance(event, RunFailed) and event.detail:
                f.write(event.detail.rstrip() + "\n")
