"""The runs to compare, read off the GUI thread: each run's metrics.jsonl is parsed event by event
(ten runs of 5,000 steps took over a second), and the GUI thread may spend at most 100 ms."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from studio.gui.workers.thread_job import LatestOnlyJob


class CompareLoadWorker(QObject):
    done = Signal(object, object, object, str, int)  # runs, curves, configs, an error, the token

    def __init__(self, runs: list[Path], token: int):
        super().__init__()
        self.runs = runs
        self.token = token

    @Slot()
    def run(self) -> None:
        from studio.core.runs.compare import load_curves, run_config_table

        try:
            curves = [load_curves(r) for r in self.runs]
            configs = [run_config_table(r) for r in self.runs]
        except Exception as e:  # noqa: BLE001 - a run that cannot be read is reported, never a crash
            self.done.emit(self.runs, [], [], str(e) or type(e).__name__, self.token)
            return
        self.done.emit(self.runs, curves, configs, "", self.token)


class CompareLoadJob(LatestOnlyJob):
    """The runs to compare, the latest choice only. ``token`` comes back with the result, so the
    view can drop the answer to an earlier choice."""

    done = Signal(object, object, object, str, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__("compareLoadThread", parent)

    def load(self, runs: list[Path], token: int) -> None:
        self._request(lambda: CompareLoadWorker(runs, token))
