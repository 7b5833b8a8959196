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

from studio.core.callbacks import describe, describe_stage, split_name
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
from studio.core.i18n import N_, _, ngettext
from studio.core.preferences import Preferences
from studio.gui.formatting import metric_name, number
from studio.gui.widgets.metrics_plots import X_MODE_CHOICES, MetricsPlotsWidget
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
        self.run_preferences = Preferences()  # the window sets the person's (device, CPU threads)
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
        self.x_axis_combo.currentIndexChanged.connect(lambda _index: self.plots.set_x_mode(self.x_axis_combo.currentData()))
        self.log_check.toggled.connect(self.plots.set_log_y)
        self.update_buttons()

    # ---- layout -----------------------------------------------------------------------------

    def _build_controls(self) -> QHBoxLayout:
        icon = self.style().standardIcon
        self.start_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPlay), _("Start"), objectName=self._name("startButton"))
        self.pause_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPause), _("Pause"), objectName=self._name("pauseButton"))
        self.resume_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSeekForward), _("Resume"), objectName=self._name("resumeButton"))
        self.stop_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaStop), _("Stop"), objectName=self._name("stopButton"))
        self.progress = QProgressBar(objectName=self._name("trainProgress"))
        # Translators: the progress bar's text; Qt puts the current step for %v and the last for %m.
        self.progress.setFormat(_("step %v / %m"))
        self.time_label = QLabel("", objectName=self._name("timeLabel"))
        self.speed_label = QLabel("", objectName=self._name("speedLabel"))
        controls = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            controls.addWidget(b)
        controls.addWidget(self.progress, 1)
        return controls  # the time and speed labels sit above the plots (see _build_plots)

    def _build_status(self) -> QHBoxLayout:
        self.status_label = QLabel(_("Not started"), objectName=self._name("runStatusLabel"))
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
        for mode, label in X_MODE_CHOICES.items():
            self.x_axis_combo.addItem(_(label), mode)
        self.log_check = QCheckBox(_("Log scale"), objectName=self._name("logScaleCheck"))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(_("x-axis")))
        bar.addWidget(self.x_axis_combo)
        bar.addWidget(self.log_check)
        bar.addStretch(1)
        # Here rather than beside the progress bar: there the growing text ("elapsed … · ETA … ·
        # tokens/s · MFU") squeezed the bar and pushed the window past a 1280-px screen.
        bar.addWidget(self.time_label)
        bar.addWidget(self.speed_label)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(bar)
        col.addWidget(self.plots, 1)
        return box

    def _build_tabs(self) -> QTabWidget:
        self.samples_view = QPlainTextEdit(objectName=self._name("samplesView"))
        self.samples_view.setReadOnly(True)
        self.samples_view.setPlaceholderText(_("Text sampled from the model (or its answers to validation examples) appears here at each evaluation."))
        self.log_view = QPlainTextEdit(objectName=self._name("logView"))
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.results_table = QTableWidget(objectName=self._name("resultsTable"))
        self.results_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.tabs = QTabWidget(objectName=self._name("trainTabs"))
        self.tabs.addTab(self.samples_view, _("Samples"))
        self.tabs.addTab(self.log_view, _("Log"))
        self.tabs.addTab(self.results_table, _("Results"))
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
            self.blocked_label.setText(_("Cannot start: {reason}").format(reason=reason))
        elif self.start_warning and self.idle:
            self.blocked_label.setStyleSheet("color: #b9770e;")
            self.blocked_label.setText(_("Note: {warning}").format(warning=self.start_warning))
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
        # The device and CPU threads from Preferences, where the run leaves them to Studio: they
        # reach the training process in the configuration it is given.
        self.training.start(self.run_preferences.apply_to_run(config))

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
        self._set_status("running", _("Starting the training process…"))
        self.progress.setRange(0, 0)
        self.plots.start_live()
        self.update_buttons()

    def pause(self) -> None:
        if self.state == "running":
            self.training.pause()
            self.pause_button.setEnabled(False)
            self._set_status("paused", _("Pausing after this step…"))

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
            self._set_status("stopped", _("Stopping after this step and saving a checkpoint…"))

    # ---- engine events ----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, DataProgress):
            if event.total:
                # Translators: {stage} is a stage of data preparation (scan, tokenizer, encode), {percent} a number.
                self._set_status("running", _("Preparing data: {stage} {percent}%").format(
                    stage=describe_stage(event.stage), percent=f"{100 * event.done / event.total:.0f}"))
            return
        line = describe(event)
        if line and not isinstance(event, StepLogged):
            self.log_view.appendPlainText(time.strftime("%H:%M:%S  ") + line)
        if isinstance(event, StepLogged):
            self._on_step(event)
        elif isinstance(event, EvalLogged):
            self.plots.add_eval(event)
            if event.sample:
                heading = _("— step {step}, valid loss {loss} —").format(step=number(event.step), loss=number(event.loss, 3))
                if event.bits_per_char is not None:
                    # Translators: the heading of a text sample, with the validation loss in bits per character.
                    heading = _("— step {step}, valid loss {loss}, {bits} bits/char —").format(
                        step=number(event.step), loss=number(event.loss, 3), bits=number(event.bits_per_char, 3))
                self.samples_view.appendPlainText(f"{heading}\n{event.sample.strip()}\n")
        elif isinstance(event, MetricsReported):
            self._add_result(event)
        elif isinstance(event, RunStarted):
            if event.resumed:
                self.plots.truncate_after(event.start_step)
            self.state = "running"
            self.run_dir = Path(event.run_dir)
            self.progress.setRange(0, event.total_steps)
            self.progress.setValue(event.start_step)
            # Translators: {device} is where it trains, as PyTorch names it (cpu, cuda:0).
            self._set_status("running", _("Running: {name} · {parameters} parameters · {device}").format(
                name=event.name, parameters=number(event.parameters), device=event.device))
            self.run_started.emit(event.run_dir)
            self.update_buttons()
        elif isinstance(event, RunPaused):
            self.state = "paused"
            self.progress.setValue(event.step)  # the bar may lag by the repaints it skipped
            self._set_status("paused", _("Paused at step {step}. Resume continues from here.").format(step=number(event.step)))
            self.update_buttons()
        elif isinstance(event, RunResumed):
            self.state = "running"
            self._set_status("running", _("Running (resumed at step {step})").format(step=number(event.step)))
            self.update_buttons()
        elif isinstance(event, RunFinished):
            step = number(event.step)
            texts = {
                "finished": ngettext("Finished: {step} step, best valid loss {loss}", "Finished: {step} steps, best valid loss {loss}",
                                     event.step).format(step=step, loss=number(event.best_loss, 4)),
                "stopped": _("Stopped at step {step}; checkpoint saved. Resume continues from there.").format(step=step),
                # Translators: {reason} says why (the validation loss stopped improving...), from the engine.
                "early_stopped": _("Stopped early at step {step}: {reason}").format(step=step, reason=event.reason),
            }
            finished = _("Finished: {reason}").format(reason=event.reason) if event.reason else ""
            text = finished if event.status == "finished" and event.reason else texts[event.status]
            if event.status == "finished" and event.best_bits_per_char is not None:
                # Translators: put after the "Finished: ..." status; bits per character make runs with different
                # tokenizers comparable.
                text += _(" ({value} bits per character)").format(value=number(event.best_bits_per_char, 3))
            self._set_status(event.status, text)
        elif isinstance(event, RunFailed):
            if event.checkpoint:
                # Translators: {error} is the engine's message; {checkpoint} the folder of the last good checkpoint.
                text = _("Failed at step {step}: {error}. Last good state: {checkpoint}").format(
                    step=number(event.step), error=event.error, checkpoint=event.checkpoint)
            else:
                text = _("Failed at step {step}: {error}.").format(step=number(event.step), error=event.error)
            self._set_status("failed", text)

    def _on_step(self, e: StepLogged) -> None:
        self.plots.add_step(e)
        now = time.monotonic()
        # The engine's training time, not the clock: a pause does not count, so the ETA stays put.
        self._step_times.append((e.elapsed_s, e.step))
        # Widgets repaint at most ~10 times a second however fast the steps come.
        if now - self._last_widget_update < 0.1 and e.step != e.total_steps:
            return
        self._last_widget_update = now
        self.progress.setValue(e.step)
        self._step_times = self._step_times[-50:]
        elapsed = format_duration(e.elapsed_s)
        (t0, s0), (t1, s1) = self._step_times[0], self._step_times[-1]
        if s1 > s0:
            eta = format_duration((e.total_steps - e.step) * (t1 - t0) / (s1 - s0))
            # Translators: the time a run has trained, and the estimated time left (ETA).
            self.time_label.setText(_("elapsed {elapsed} · ETA {eta}").format(elapsed=elapsed, eta=eta))
        else:
            self.time_label.setText(_("elapsed {elapsed}").format(elapsed=elapsed))
        speed = _("{n} tokens/s").format(n=number(e.tokens_per_s, 0))
        if e.mfu is not None:
            # Translators: put after the speed; MFU is model FLOPs utilisation, the share of this machine's
            # measured peak arithmetic speed that training uses (kept as is, or the usual abbreviation).
            speed += _(" · MFU {percent}%").format(percent=number(100 * e.mfu, 0))
        self.speed_label.setText(speed)
        self.throughput.emit(e.tokens_per_s)

    def _add_result(self, e: MetricsReported) -> None:
        names = [name for name, _ in e.metrics]
        # Translators: headings of the results table: the data split, then each metric, the examples scored, the time taken.
        headers = [_("split"), *(metric_name(n) for n in names), _("examples"), _("seconds")]
        # Every time, not only when the count changes: clearing the table for a new run also drops
        # its header items, and a run with as many metrics would otherwise show "1 2 3 4 5 6".
        self.results_table.setColumnCount(len(headers))
        self.results_table.setHorizontalHeaderLabels(headers)
        row = self.results_table.rowCount()
        self.results_table.insertRow(row)
        values = [split_name(e.split), *(number(v, 2) for _name, v in e.metrics), number(e.examples), number(e.seconds, 1)]
        for col, value in enumerate(values):
            self.results_table.setItem(row, col, QTableWidgetItem(value))
        self.results_table.resizeColumnsToContents()
        self.tabs.setCurrentWidget(self.results_table)

    def _on_finished(self, result: Any) -> None:
        self.plots.stop_live()
        if result.status == "failed" and self.status_label.property("state") != "failed":
            self._set_status("failed", _("Failed: {error}").format(error=result.error))
        self.state = "ended"
        self.loaded_run = Path(result.run_dir) if result.status in ("stopped", "failed") and result.run_dir else None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.update_buttons()
        self.run_ended.emit(result.status)

    def refuse_start(self, reason: str) -> None:
        """Say why a Start that was clicked cannot go ahead (the settings changed under it)."""
        self._set_status("failed", _("Cannot start: {reason}").format(reason=reason))

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
                    heading = _("— step {step} —").format(step=number(event.step))
                    self.samples_view.appendPlainText(f"{heading}\n{event.sample.strip()}\n")
            elif isinstance(event, MetricsReported):
                self._add_result(event)
        self.plots.dirty = True
        self.plots.redraw()
        info = run.read_info()
        status = info.get("status", N_("unknown"))
        self.loaded_run = run.path if status in ("stopped", "interrupted", "failed") and run.checkpoint("last").exists() else None
        self.run_dir = run.path
        self.state = "ended"
        step, total = int(info.get("step", 0)), int(info.get("total_steps", 0) or 0)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(step)
        # Translators: a run opened from disk: its name, its status (finished, stopped, ...) and its last step.
        text = (_("{name}: {status} at step {step} (Resume continues it)") if self.loaded_run else _("{name}: {status} at step {step}"))
        self._set_status(status if status in STATUS_COLORS else "idle", text.format(name=run.name, status=_(status), step=number(step)))
        self.update_buttons()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a running run, wait for its checkpoint, and stop timers (window closing)."""
        ok = self.training.stop_and_wait(timeout_ms)
        self.plots.stop_live()
        return ok
