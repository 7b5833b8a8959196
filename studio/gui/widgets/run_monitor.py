"""Everything a page shows about a run while it trains, shared by the Train and Fine-tune pages:
Start, Pause, Resume and Stop; progress with elapsed time and ETA; live curves; samples; the log;
task results; and a final status that says exactly how the run ended.

The page owns the settings; when Start is clicked the monitor asks it for a configuration
(``start_requested``) and the page calls :meth:`RunMonitorWidget.start`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.callbacks import describe
from studio.core.config import RunConfig
from studio.core.events import (
    DataProgress,
    EvalLogged,
    Event,
    MetricsReported,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.gui.widgets.metrics_plots import MetricsPlotsWidget
from studio.gui.workers.training_worker import TrainingSession

STATUS_COLORS = {"running": "#1f5fa8", "paused": "#b7950b", "finished": "#1e8449", "stopped": "#b7950b",
                 "early_stopped": "#1e8449", "failed": "#c0392b", "idle": "palette(text)"}


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunMonitorWidget(QWidget):
    start_requested = Signal()
    run_started = Signal(str)  # run folder
    throughput = Signal(float)
    run_ended = Signal(str)  # final status
    state_changed = Signal()

    def __init__(self, name_prefix: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._prefix = name_prefix
        self.setObjectName(self._name("runMonitor"))
        self.training = TrainingSession(self)
        self.training.event.connect(self.on_event)
        self.training.finished.connect(self._on_finished)
        self.state = "idle"
        self.blocking_reason = ""
        self.start_warning = ""
        self.run_dir: Path | None = None
        self.loaded_run: Path | None = None  # a stopped run opened from disk, for Resume
        self._step_times: list[tuple[float, int]] = []
        self._last_widget_update = 0.0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_controls())
        layout.addLayout(self._build_status())
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self._build_plots())
        body.addWidget(self._build_tabs())
        body.setSizes([520, 180])
        layout.addWidget(body, 1)

        self.start_button.clicked.connect(self.start_requested)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.x_axis_combo.currentTextChanged.connect(self.plots.set_x_mode)
        self.log_check.toggled.connect(self.plots.set_log_y)
        self.update_buttons()

    # ---- layout -----------------------------------------------------------------------------

    def _build_controls(self) -> QHBoxLayout:
        icon = self.style().standardIcon
        self.start_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPlay), "Start", objectName=self._name("startButton"))
        self.pause_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPause), "Pause", objectName=self._name("pauseButton"))
        self.resume_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSeekForward), "Resume", objectName=self._name("resumeButton"))
        self.stop_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaStop), "Stop", objectName=self._name("stopButton"))
        self.progress = QProgressBar(objectName=self._name("trainProgress"))
        self.progress.setFormat("step %v / %m")
        self.time_label = QLabel("", objectName=self._name("timeLabel"))
        controls = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            controls.addWidget(b)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.time_label)
        return controls

    def _build_status(self) -> QHBoxLayout:
        self.status_label = QLabel("Not started", objectName=self._name("runStatusLabel"))
        self.status_label.setWordWrap(True)
        self.blocked_label = QLabel(objectName=self._name("startBlockedLabel"))
        self.blocked_label.setStyleSheet("color: #c0392b;")
        self.blocked_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.status_label, 1)
        row.addWidget(self.blocked_label, 1)
        return row

    def _build_plots(self) -> QWidget:
        self.plots = MetricsPlotsWidget(name_prefix=self._prefix)
        self.x_axis_combo = QComboBox(objectName=self._name("xAxisCombo"))
        self.x_axis_combo.addItems(["steps", "tokens", "time"])
        self.log_check = QCheckBox("Log scale", objectName=self._name("logScaleCheck"))
        bar = QHBoxLayout()
        bar.addWidget(QLabel("x-axis"))
        bar.addWidget(self.x_axis_combo)
        bar.addWidget(self.log_check)
        bar.addStretch(1)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(bar)
        col.addWidget(self.plots, 1)
        return box

    def _build_tabs(self) -> QTabWidget:
        self.samples_view = QPlainTextEdit(objectName=self._name("samplesView"))
        self.samples_view.setReadOnly(True)
        self.samples_view.setPlaceholderText("Text sampled from the model (or its answers to validation examples) appears here at each evaluation.")
        self.log_view = QPlainTextEdit(objectName=self._name("logView"))
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.results_table = QTableWidget(objectName=self._name("resultsTable"))
        self.results_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.tabs = QTabWidget(objectName=self._name("trainTabs"))
        self.tabs.addTab(self.samples_view, "Samples")
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.addTab(self.results_table, "Results")
        return self.tabs

    def _name(self, base: str) -> str:
        return base if not self._prefix else self._prefix + base[0].upper() + base[1:]

    # ---- buttons ----------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self.state in ("idle", "ended")

    def set_blocking_reason(self, reason: str, warning: str = "") -> None:
        """``reason``: why Start is refused ('' if it is not); ``warning``: a pre-flight caution
        shown beside an enabled Start (memory or disk close to the limit)."""
        self.blocking_reason = reason
        self.start_warning = warning
        self.update_buttons()

    def update_buttons(self) -> None:
        reason = self.blocking_reason
        self.start_button.setEnabled(self.idle and not reason)
        if reason and self.idle:
            self.blocked_label.setStyleSheet("color: #c0392b;")
            self.blocked_label.setText(f"Cannot start: {reason}")
        elif self.start_warning and self.idle:
            self.blocked_label.setStyleSheet("color: #b9770e;")
            self.blocked_label.setText(f"Note: {self.start_warning}")
        else:
            self.blocked_label.setText("")
        self.pause_button.setEnabled(self.state == "running")
        self.resume_button.setEnabled(self.state == "paused" or (self.idle and self.loaded_run is not None))
        self.stop_button.setEnabled(self.state in ("running", "paused", "preparing"))
        self.state_changed.emit()

    # ---- actions ----------------------------------------------------------------------------

    def start(self, config: RunConfig) -> None:
        if self.training.running:
            return
        self._begin()
        self.training.start(config)

    def resume_run(self, run_dir: Path) -> None:
        """Continue a stopped or interrupted run from its last checkpoint."""
        if self.training.running:
            return
        self._begin(keep_curves=True)
        self.training.start(None, resume_run=run_dir)

    def _begin(self, keep_curves: bool = False) -> None:
        if not keep_curves:
            self.plots.clear()
            self.samples_view.clear()
            self.results_table.clear()
            self.results_table.setRowCount(0)
        self.state = "preparing"
        self._step_times = []
        self._set_status("running", "Starting the training process…")
        self.progress.setRange(0, 0)
        self.plots.start_live()
        self.update_buttons()

    def pause(self) -> None:
        if self.state == "running":
            self.training.pause()
            self.pause_button.setEnabled(False)
            self._set_status("paused", "Pausing after this step…")

    def resume(self) -> None:
        if self.state == "paused":
            self.training.resume()
        elif self.idle and self.loaded_run is not None:
            self.resume_run(self.loaded_run)

    def stop(self) -> None:
        if self.training.running:
            self.training.stop()
            self.stop_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            self._set_status("stopped", "Stopping after this step and saving a checkpoint…")

    # ---- engine events ----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, DataProgress):
            if event.total:
                self._set_status("running", f"Preparing data: {event.stage} {100 * event.done / event.total:.0f}%")
            return
        line = describe(event)
        if line and not isinstance(event, StepLogged):
            self.log_view.appendPlainText(time.strftime("%H:%M:%S  ") + line)
        if isinstance(event, StepLogged):
            self._on_step(event)
        elif isinstance(event, EvalLogged):
            self.plots.add_eval(event)
            if event.sample:
                self.samples_view.appendPlainText(f"— step {event.step}, valid loss {event.loss:.3f} —\n{event.sample.strip()}\n")
        elif isinstance(event, MetricsReported):
            self._add_result(event)
        elif isinstance(event, RunStarted):
            if event.resumed:
                self.plots.truncate_after(event.start_step)
            self.state = "running"
            self.run_dir = Path(event.run_dir)
            self.progress.setRange(0, event.total_steps)
            self.progress.setValue(event.start_step)
            self._set_status("running", f"Running: {event.name} · {event.parameters:,} parameters · {event.device}")
            self.run_started.emit(event.run_dir)
            self.update_buttons()
        elif isinstance(event, RunPaused):
            self.state = "paused"
            self._set_status("paused", f"Paused at step {event.step}. Resume continues from here.")
            self.update_buttons()
        elif isinstance(event, RunResumed):
            self.state = "running"
            self._set_status("running", f"Running (resumed at step {event.step})")
            self.update_buttons()
        elif isinstance(event, RunFinished):
            texts = {
                "finished": f"Finished: {event.step} steps, best valid loss {event.best_loss:.4f}",
                "stopped": f"Stopped at step {event.step}; checkpoint saved. Resume continues from there.",
                "early_stopped": f"Stopped early at step {event.step}: {event.reason}",
            }
            text = f"Finished: {event.reason}" if event.status == "finished" and event.reason else texts[event.status]
            self._set_status(event.status, text)
        elif isinstance(event, RunFailed):
            saved = f" Last good state: {event.checkpoint}" if event.checkpoint else ""
            self._set_status("failed", f"Failed at step {event.step}: {event.error}.{saved}")

    def _on_step(self, e: StepLogged) -> None:
        self.plots.add_step(e)
        now = time.monotonic()
        self._step_times.append((now, e.step))
        # Widgets repaint at most ~10 times a second however fast the steps come.
        if now - self._last_widget_update < 0.1 and e.step != e.total_steps:
            return
        self._last_widget_update = now
        self.progress.setValue(e.step)
        self._step_times = self._step_times[-50:]
        eta = ""
        (t0, s0), (t1, s1) = self._step_times[0], self._step_times[-1]
        if s1 > s0:
            eta = f" · ETA {format_duration((e.total_steps - e.step) * (t1 - t0) / (s1 - s0))}"
        self.time_label.setText(f"elapsed {format_duration(e.elapsed_s)}{eta}")
        self.throughput.emit(e.tokens_per_s)

    def _add_result(self, e: MetricsReported) -> None:
        names = [name for name, _ in e.metrics]
        headers = ["split", *names, "examples", "seconds"]
        # Every time, not only when the count changes: clearing the table for a new run also drops
        # its header items, and a run with as many metrics would otherwise show "1 2 3 4 5 6".
        self.results_table.setColumnCount(len(headers))
        self.results_table.setHorizontalHeaderLabels(headers)
        row = self.results_table.rowCount()
        self.results_table.insertRow(row)
        values = [e.split, *(f"{v:.2f}" for _, v in e.metrics), f"{e.examples:,}", f"{e.seconds:.1f}"]
        for col, value in enumerate(values):
            self.results_table.setItem(row, col, QTableWidgetItem(value))
        self.results_table.resizeColumnsToContents()
        self.tabs.setCurrentWidget(self.results_table)

    def _on_finished(self, result: Any) -> None:
        self.plots.stop_live()
        if result.status == "failed" and self.status_label.property("state") != "failed":
            self._set_status("failed", f"Failed: {result.error}")
        self.state = "ended"
        self.loaded_run = Path(result.run_dir) if result.status in ("stopped", "failed") and result.run_dir else None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.update_buttons()
        self.run_ended.emit(result.status)

    def refuse_start(self, reason: str) -> None:
        """Say why a Start that was clicked cannot go ahead (the settings changed under it)."""
        self._set_status("failed", f"Cannot start: {reason}")

    def _set_status(self, state: str, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("state", state)
        self.status_label.setStyleSheet(f"color: {STATUS_COLORS.get(state, 'palette(text)')}; font-weight: bold;")

    # ---- a run from disk ----------------------------------------------------------------------

    def show_run(self, run_dir: Path) -> None:
        """Show a run's recorded curves; a stopped or interrupted one can then be resumed."""
        from studio.core.training.run_dir import RunDir

        run = RunDir(Path(run_dir))
        self.plots.clear()
        self.samples_view.clear()
        self.results_table.setRowCount(0)
        for event in run.read_events():
            if isinstance(event, StepLogged):
                self.plots.add_step(event)
            elif isinstance(event, EvalLogged):
                self.plots.add_eval(event)
                if event.sample:
                    self.samples_view.appendPlainText(f"— step {event.step} —\n{event.sample.strip()}\n")
            elif isinstance(event, MetricsReported):
                self._add_result(event)
        self.plots.dirty = True
        self.plots.redraw()
        info = run.read_info()
        status = info.get("status", "unknown")
        self.loaded_run = run.path if status in ("stopped", "interrupted", "failed") and run.checkpoint("last").exists() else None
        self.run_dir = run.path
        self.state = "ended"
        step, total = int(info.get("step", 0)), int(info.get("total_steps", 0) or 0)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(step)
        resumable = " (Resume continues it)" if self.loaded_run else ""
        self._set_status(status if status in STATUS_COLORS else "idle", f"{run.name}: {status} at step {step}{resumable}")
        self.update_buttons()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a running run, wait for its checkpoint, and stop timers (window closing)."""
        ok = self.training.stop_and_wait(timeout_ms)
        self.plots.stop_live()
        return ok
