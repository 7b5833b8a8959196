"""Train page: the optimizer, schedule, training and run settings beside the run monitor
(controls, live curves, samples, log) that the Fine-tune page shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QSplitter, QVBoxLayout, QWidget

from studio.core.config import OptimizerConfig, RunSection, ScheduleConfig, TrainConfig
from studio.core.errors import ConfigError, ConfigIssue, StudioError
from studio.core.i18n import _
from studio.gui.session import StudioSession
from studio.gui.widgets.config_form import ConfigForm
from studio.gui.widgets.layout import VerticalScrollWidget
from studio.gui.widgets.run_monitor import RunMonitorWidget


class TrainPage(QWidget):
    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainPage")
        self.session = session
        self.monitor = RunMonitorWidget()
        m = self.monitor

        saved = StudioSession.saved_tables()
        self.forms: dict[str, ConfigForm] = {}
        forms_box = QWidget()
        fl = QVBoxLayout(forms_box)
        # Translators: group boxes of the Train page; "Run" holds the run's name, device and threads.
        for cls, title in ((TrainConfig, _("Training")), (OptimizerConfig, _("Optimizer")), (ScheduleConfig, _("Learning-rate schedule")),
                           (RunSection, _("Run"))):
            try:
                values = cls.from_dict(saved.get(cls.section, {})).to_dict()
            except StudioError:
                values = cls().to_dict()
            form = ConfigForm(cls, values)
            form.changed.connect(self._on_form_changed)
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(form)
            fl.addWidget(box)
            self.forms[cls.section] = form
        fl.addStretch(1)
        forms_scroll = VerticalScrollWidget(forms_box)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(forms_scroll)
        body.addWidget(m)
        body.setStretchFactor(1, 1)
        body.setSizes([370, 890])
        QVBoxLayout(self).addWidget(body)

        m.start_requested.connect(self.start)
        session.changed.connect(self._on_session_changed)
        self._on_form_changed()

    # Live state, read from the monitor.
    @property
    def state(self) -> str:
        return self.monitor.state

    @property
    def run_dir(self) -> Path | None:
        return self.monitor.run_dir

    @property
    def loaded_run(self) -> Path | None:
        return self.monitor.loaded_run

    def _on_form_changed(self) -> None:
        tables: dict[str, dict[str, Any]] = {}
        issues: list[ConfigIssue] = []
        for name, form in self.forms.items():
            tables[name], found = form.raw_values()
            issues.extend(found)
        self.session.set_tables(tables, issues)

    def _on_session_changed(self) -> None:
        for form in self.forms.values():
            form.show_issues(self.session.issues)
        reason = self.session.blocking_reason()
        self.monitor.set_blocking_reason(reason, "" if reason else self.session.preflight_warnings())

    def start(self) -> None:
        try:
            config = self.session.run_config()  # built now, from the forms as they are
        except ConfigError as e:
            for form in self.forms.values():
                form.show_issues(e.issues)
            self.monitor.refuse_start(str(e))
            return
        self.session.save()
        self.monitor.start(config)

    def pause(self) -> None:
        self.monitor.pause()

    def resume(self) -> None:
        self.monitor.resume()

    def stop(self) -> None:
        self.monitor.stop()

    def show_run(self, run_dir: Path) -> None:
        self.monitor.show_run(run_dir)

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        return self.monitor.shutdown(timeout_ms)
