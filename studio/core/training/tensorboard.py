"""TensorBoard event files beside a run's own metrics, for people who keep using TensorBoard.

Active only when the optional ``tensorboard`` extra is installed (``pip install studio-lm[tensorboard]``);
the run folder's ``metrics.jsonl`` stays the record Studio itself reads.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from studio.core.events import EvalLogged, Event, MetricsReported, RunFailed, RunFinished, StepLogged


def _quiet_writer_threads() -> None:
    """TensorBoard writes from a background thread, which on a full disk dies with a traceback
    printed to the terminal. The same error reaches this writer's next call, where the run's
    dispatcher switches TensorBoard off with one line; the thread's own traceback is noise."""
    previous = threading.excepthook
    if getattr(previous, "studio_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ == "_AsyncWriterThread":
            return
        previous(args)

    hook.studio_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardWriter:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._writer: Any = None

    def _open(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_writer_threads()
            self._writer = SummaryWriter(log_dir=str(self.folder))
        return self._writer

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepLogged):
            w = self._open()
            w.add_scalar("train/loss", event.loss, event.step)
            w.add_scalar("train/lr", event.lr, event.step)
            w.add_scalar("train/grad_norm", event.grad_norm, event.step)
            w.add_scalar("train/tokens_per_s", event.tokens_per_s, event.step)
        elif isinstance(event, EvalLogged):
            w = self._open()
            w.add_scalar("valid/loss", event.loss, event.step)
            w.add_scalar("valid/perplexity", event.perplexity, event.step)
            if event.bits_per_char is not None:
                w.add_scalar("valid/bits_per_char", event.bits_per_char, event.step)
            if event.bits_per_byte is not None:
                w.add_scalar("valid/bits_per_byte", event.bits_per_byte, event.step)
            for name, value in event.metrics:
                w.add_scalar(f"valid/{name}", value, event.step)
            if event.sample:
                w.add_text("sample", event.sample, event.step)
        elif isinstance(event, MetricsReported):
            w = self._open()
            for name, value in event.metrics:
                w.add_scalar(f"final_{event.split}/{name}", value, 0)
        elif isinstance(event, RunFinished | RunFailed) and self._writer is not None:
            self._writer.close()
            self._writer = None


def write_hparams(folder: Path, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """A search trial's settings and result in its run's TensorBoard folder, so TensorBoard's
    HParams dashboard lists the trials side by side (``tensorboard --logdir <runs folder>``).

    Written into the run's own folder (torch's ``add_hparams`` would make a sub-run per call), as
    one more event file beside the run's scalars: the metric tags name the session's metrics."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    # TensorBoard takes numbers, text and booleans; anything else is shown as text.
    values = {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in hparams.items()}
    experiment, start, end = hparams_summary(values, metrics)
    _quiet_writer_threads()
    with SummaryWriter(log_dir=str(folder)) as writer:
        writer.file_writer.add_summary(experiment)
        writer.file_writer.add_summary(start)
        writer.file_writer.add_summary(end)
        for name, value in metrics.items():
            writer.add_scalar(name, value)
