"""Train page: optimizer, schedule and training settings; Start, Pause, Resume and Stop; live curves,
samples and the log; and a final status that says exactly how the run ended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.callbacks import describe
from studio.core.config import OptimizerConfig, RunSection, ScheduleConfig, TrainConfig
from studio.core.errors import ConfigError, StudioError
from studio.core.events import (
    DataProgress,
    EvalLogged,
    Event,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.gui.session import StudioSession
from studio.gui.widgets.config_form import ConfigForm
from studio.gui.widgets.metrics_plots import MetricsPlotsWidget
from studio.gui.workers.training_worker import TrainingSession

STATUS_COLORS = {"running": "#1f5fa8", "paused": "#b7950b", "finished": "#1e8449", "stopped": "#b7950b",
                 "early_stopped": "#1e8449", "failed": "#c0392b", "idle": "palette(text)"}


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainPage(QWidget):
    run_started = Signal(str)  # run folder
    throughput = Signal(float)
    run_ended = Signal(str)  # final status

    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainPage")
        self.session = session
        self.training = TrainingSession(self)
        self.training.event.connect(self.on_event)
        self.training.finished.connect(self._on_finished)
        self.state = "idle"
        self.run_dir: Path | None = None
        self.loaded_run: Path | None = None  # a stopped run opened from disk, for Resume
        self.total_steps = 0
        self._started_at = 0.0
        self._step_times: list[tuple[float, int]] = []
        self._stop_requested = False
        self._last_widget_update = 0.0

        style = self.style()
        self.start_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start", objectName="startButton")
        self.pause_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Pause", objectName="pauseButton")
        self.resume_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Resume", objectName="resumeButton")
        self.stop_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", objectName="stopButton")
        self.progress = QProgressBar(objectName="trainProgress")
        self.progress.setFormat("step %v / %m")
        self.time_label = QLabel("", objectName="timeLabel")
        self.status_label = QLabel("Not started", objectName="runStatusLabel")
        self.status_label.setWordWrap(True)
        self.blocked_label = QLabel(objectName="startBlockedLabel")
        self.blocked_label.setStyleSheet("color: #c0392b;")
        self.blocked_label.setWordWrap(True)

        controls = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            controls.addWidget(b)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.time_label)

        # ---- settings forms -----------------------------------------------------------------
        saved = StudioSession.saved_tables()
        self.forms: dict[str, ConfigForm] = {}
        forms_box = QWidget()
        fl = QVBoxLayout(forms_box)
        for cls, title in ((TrainConfig, "Training"), (OptimizerConfig, "Optimizer"), (ScheduleConfig, "Learning-rate schedule"), (RunSection, "Run")):
            defaults = cls().to_dict()
            try:
                values = cls.from_dict(saved.get(cls.section, {})).to_dict()
            except StudioError:
                values = defaults
            form = ConfigForm(cls, values)
            form.changed.connect(self._on_form_changed)
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(form)
            fl.addWidget(box)
            self.forms[cls.section] = form
        fl.addStretch(1)
        forms_scroll = QScrollArea()
        forms_scroll.setWidgetResizable(True)
        forms_scroll.setWidget(forms_box)
        forms_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        forms_scroll.setMinimumWidth(360)

        # ---- curves, samples, log -----------------------------------------------------------
        self.plots = MetricsPlotsWidget()
        self.x_axis_combo = QComboBox(objectName="xAxisCombo")
        self.x_axis_combo.addItems(["steps", "tokens", "time"])
        self.log_check = QCheckBox("Log scale", objectName="logScaleCheck")
        plot_bar = QHBoxLayout()
        plot_bar.addWidget(QLabel("x-axis"))
        plot_bar.addWidget(self.x_axis_combo)
        plot_bar.addWidget(self.log_check)
        plot_bar.addStretch(1)
        plot_box = QWidget()
        pl = QVBoxLayout(plot_box)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addLayout(plot_bar)
        pl.addWidget(self.plots, 1)

        self.samples_view = QPlainTextEdit(objectName="samplesView")
        self.samples_view.setReadOnly(True)
        self.samples_view.setPlaceholderText("Text sampled from the model appears here at each evaluation.")
        self.log_view = QPlainTextEdit(objectName="logView")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.tabs = QTabWidget(objectName="trainTabs")
        self.tabs.addTab(self.samples_view, "Samples")
        self.tabs.addTab(self.log_view, "Log")

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(plot_box)
        right.addWidget(self.tabs)
        right.setSizes([520, 180])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(forms_scroll)
        body.addWidget(right)
        body.setStretchFactor(1, 1)
        body.setSizes([370, 890])

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.blocked_label, 1)
        layout.addLayout(status_row)
        layout.addWidget(body, 1)

        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.x_axis_combo.currentTextChanged.connect(self.plots.set_x_mode)
        self.log_check.toggled.connect(self.plots.set_log_y)
        session.changed.connect(self._update_buttons)
        self._on_form_changed()

    # ---- settings ---------------------------------------------------------------------------

    def _on_form_changed(self) -> None:
        parts: dict[str, Any] = {}
        issues = []
        for name, form in self.forms.items():
            section, found = form.parse()
            issues.extend(found)
            if section is not None:
                parts[name] = section
        if issues:
            self.session.update("Train", issues)
        else:
            self.session.update("Train", [], optimizer=parts["optimizer"], schedule=parts["schedule"], train=parts["train"], run=parts["run"])

    def _update_buttons(self) -> None:
        reason = self.session.blocking_reason()
        idle = self.state in ("idle", "ended")
        self.start_button.setEnabled(idle and not reason)
        self.blocked_label.setText(f"Cannot start: {reason}" if (reason and idle) else "")
        self.pause_button.setEnabled(self.state == "running")
        self.resume_button.setEnabled(self.state == "paused" or (idle and self.loaded_run is not None))
        self.stop_button.setEnabled(self.state in ("running", "paused", "preparing"))

    # ---- actions ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.training.running:
            return
        try:
            config = self.session.run_config()
        except ConfigError as e:
            self._set_status("failed", f"Cannot start: {e}")
            return
        self.session.save()
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
        self.state = "preparing"
        self._stop_requested = False
        self._step_times = []
        self._set_status("running", "Preparing data…")
        self.progress.setRange(0, 0)
        self.plots.start_live()
        self._update_buttons()

    def pause(self) -> None:
        if self.state == "running":
            self.training.pause()
            self.pause_button.setEnabled(False)
            self._set_status("paused", "Pausing after this step…")

    def resume(self) -> None:
        if self.state == "paused":
            self.training.resume()
        elif self.state in ("idle", "ended") and self.loaded_run is not None:
            self.resume_run(self.loaded_run)

    def stop(self) -> None:
        if self.training.running:
            self._stop_requested = True
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
        elif isinstance(event, RunStarted):
            self.state = "running"
            self.run_dir = Path(event.run_dir)
            self.total_steps = event.total_steps
            self.progress.setRange(0, event.total_steps)
            self.progress.setValue(event.start_step)
            self._started_at = time.monotonic()
            self._set_status("running", f"Running: {event.name} · {event.parameters:,} parameters · {event.device}")
            self.run_started.emit(event.run_dir)
            self._update_buttons()
        elif isinstance(event, RunPaused):
            self.state = "paused"
            self._set_status("paused", f"Paused at step {event.step}. Resume continues from here.")
            self._update_buttons()
        elif isinstance(event, RunResumed):
            self.state = "running"
            self._set_status("running", f"Running (resumed at step {event.step})")
            self._update_buttons()
        elif isinstance(event, RunFinished):
            texts = {
                "finished": f"Finished: {event.step} steps, best valid loss {event.best_loss:.4f}",
                "stopped": f"Stopped at step {event.step}; checkpoint saved. Resume continues from there.",
                "early_stopped": f"Stopped early at step {event.step}: {event.reason}",
            }
            text = texts[event.status]
            if event.status == "finished" and event.reason:
                text = f"Finished: {event.reason}"
            self._set_status(event.status, text)
        elif isinstance(event, RunFailed):
            saved = f" Last good state: {event.checkpoint}" if event.checkpoint else ""
            self._set_status("failed", f"Failed at step {event.step}: {event.error}.{saved}")

    def _on_step(self, e: StepLogged) -> None:
        self.plots.add_step(e)
        now = time.monotonic()
        # Widgets repaint at most ~10 times a second however fast the steps come.
        if now - self._last_widget_update < 0.1 and e.step != e.total_steps:
            self._step_times.append((now, e.step))
            return
        self._last_widget_update = now
        self.progress.setValue(e.step)
        self._step_times.append((now, e.step))
        self._step_times = self._step_times[-50:]
        eta = ""
        if len(self._step_times) > 1:
            (t0, s0), (t1, s1) = self._step_times[0], self._step_times[-1]
            if s1 > s0:
                eta = f" · ETA {format_duration((e.total_steps - e.step) * (t1 - t0) / (s1 - s0))}"
        self.time_label.setText(f"elapsed {format_duration(e.elapsed_s)}{eta}")
        self.throughput.emit(e.tokens_per_s)

    def _on_finished(self, result: Any) -> None:
        self.plots.stop_live()
        if result.status == "failed" and self.status_label.property("state") != "failed":
            self._set_status("failed", f"Failed: {result.error}")
        self.state = "ended"
        self.loaded_run = result.run_dir if result.status in ("stopped", "failed") and result.run_dir != Path() else None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._update_buttons()
        self.run_ended.emit(result.status)

    def _set_status(self, state: str, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("state", state)
        self.status_label.setStyleSheet(f"color: {STATUS_COLORS.get(state, 'palette(text)')}; font-weight: bold;")

    # ---- a finished run from disk -----------------------------------------------------------

    def show_run(self, run_dir: Path) -> None:
        """Show a run's recorded curves; a stopped or interrupted one can then be resumed."""
        from studio.core.runs.run_dir import RunDir
        from studio.core.training.trainer import run_events_of

        run = RunDir(Path(run_dir))
        self.plots.clear()
        self.samples_view.clear()
        for event in run_events_of(run):
            if isinstance(event, StepLogged):
                self.plots.add_step(event)
            elif isinstance(event, EvalLogged):
                self.plots.add_eval(event)
                if event.sample:
                    self.samples_view.appendPlainText(f"— step {event.step} —\n{event.sample.strip()}\n")
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
        self._set_status(status if status in STATUS_COLORS else "idle", f"{run.name}: {status} at step {step}" + (" (Resume continues it)" if self.loaded_run else ""))
        self._update_buttons()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a running run, wait for its checkpoint, and stop timers (window closing)."""
        ok = self.training.stop_and_wait(timeout_ms)
        self.plots.stop_live()
        return ok
