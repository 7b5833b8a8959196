"""The terminal's view of a run: a tqdm progress bar with live loss, and one line per milestone."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from studio.core.callbacks import describe, describe_stage
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
            return
        if isinstance(event, StepLogged):
            if self.bar is not None and not self.bar.disable:
                self.bar.update(event.step - self.bar.n)
                self.bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.1e}", tok_s=f"{event.tokens_per_s:,.0f}", refresh=False)
            elif event.step - self._last_printed_step >= max(1, event.total_steps // 20) or event.step == event.total_steps:
                # Not a terminal (a log file, CI): a plain line every 5% instead of a bar.
                self._last_printed_step = event.step
                self._write(_("step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}  {speed:,.0f} tokens/s").format(
                    step=event.step, total=event.total_steps, loss=event.loss, lr=event.lr, speed=event.tokens_per_s
                ))
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
