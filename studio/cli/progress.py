"""The terminal's view of a run: a tqdm progress bar with live loss, and one line per milestone."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from studio.core.callbacks import describe, describe_stage
from studio.core.durations import format_duration
from studio.core.events import (
    DataProgress,
    DataReady,
    EvalLogged,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    StepLogged,
)
from studio.core.i18n import _


class TerminalProgress:
    def __init__(self, stream: TextIO | None = None, show_samples: bool = True):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.show_samples = show_samples
        self.bar: tqdm | None = None
        self.data_bar: tqdm | None = None
        self._data_stage = ""
        self._last_printed_step = 0
        self._budget: float | None = None  # seconds of train.time_budget, if the run has one
        self._last_printed_time = 0.0

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def on_event(self, event: Event) -> None:
        if isinstance(event, DataProgress):
            self._data(event)
            return
        if isinstance(event, DataReady) and self.data_bar is not None:
            self.data_bar.close()
            self.data_bar = None
        if isinstance(event, RunStarted):
            self._write(describe(event) or "")
            self.bar = tqdm(
                # Translators: the progress bar's unit (it shows "step/s").
                total=event.total_steps, initial=event.start_step, unit=_("step"), file=self.stream,
                dynamic_ncols=True, disable=not self.interactive, mininterval=0.25,
            )
            self._last_printed_step = event.start_step
            self._budget = event.time_budget_s
            self._last_printed_time = 0.0
            return
        if isinstance(event, StepLogged):
            left = max(0.0, self._budget - event.elapsed_s) if self._budget else None
            if self.bar is not None and not self.bar.disable:
                self.bar.update(event.step - self.bar.n)
                extra = {} if left is None else {_("left"): format_duration(left)}
                if event.mfu is not None:
                    extra["MFU"] = f"{event.mfu:.0%}"
                self.bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.1e}", tok_s=f"{event.tokens_per_s:,.0f}", **extra,
                                     refresh=False)
            elif self._plain_line_due(event, left):
                # Not a terminal (a log file, CI): a plain line every 5% instead of a bar.
                self._last_printed_step = event.step
                self._last_printed_time = event.elapsed_s
                line = _("step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}  {speed:,.0f} tokens/s").format(
                    step=event.step, total=event.total_steps, loss=event.loss, lr=event.lr, speed=event.tokens_per_s
                )
                if event.mfu is not None:
                    # Translators: put after the progress line; MFU is model FLOPs utilisation, the share of this
                    # machine's measured peak arithmetic speed that training uses (kept as is, or the usual abbreviation).
                    line += _("  MFU {percent}%").format(percent=f"{100 * event.mfu:.0f}")
                if left is not None:
                    # Translators: put after the progress line; {left} and {budget} are durations (1m30s, 3m).
                    line += _("  {left} of {budget} left").format(left=format_duration(left), budget=format_duration(self._budget or 0.0))
                self._write(line)
            return
        if isinstance(event, RunFinished | RunFailed) and self.bar is not None:
            self.bar.close()
            self.bar = None
        line = describe(event)
        if line:
            self._write(line)
        if isinstance(event, EvalLogged) and event.sample and self.show_samples:
            shown = event.sample.strip().splitlines()[:4]
            self._write("\n".join("    | " + s[:120] for s in shown))

    def _plain_line_due(self, event: StepLogged, left: float | None) -> bool:
        """Every 5% of the steps, or of the time budget (which may end the run long before the steps)."""
        if event.step - self._last_printed_step >= max(1, event.total_steps // 20) or event.step == event.total_steps:
            return True
        if self._budget and left is not None:
            used_up = left == 0.0 and self._last_printed_time < self._budget  # once, as the budget ends
            return event.elapsed_s - self._last_printed_time >= self._budget / 20 or used_up
        return False

    def _data(self, event: DataProgress) -> None:
        if not self.interactive:
            return
        if self.data_bar is None or event.stage != self._data_stage:
            if self.data_bar is not None:
                self.data_bar.close()
            self._data_stage = event.stage
            self.data_bar = tqdm(total=event.total or None, desc=describe_stage(event.stage), file=self.stream, leave=False,
                                 dynamic_ncols=True)
        self.data_bar.update(event.done - self.data_bar.n)
