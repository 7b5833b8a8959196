"""Search page: hyperparameter search (grid, random, TPE, CMA-ES or a Gaussian process) with
pruning and k-fold cross-validation, resumable; a live leaderboard, what mattered (parameter
importance, parallel coordinates, a scatter of any parameter against the metric, the best trial's
curve against the median trial's), and a button that promotes the best configuration to a full run.

The report behind the plots (``studio.core.runs.search_report``) opens the Optuna study and fits
fANOVA's forest, so it is read off the GUI thread (``SearchReportJob``) after every trial."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
import tomli_w
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.callbacks import describe
from studio.core.config import RunConfig
from studio.core.errors import ConfigError, StudioError
from studio.core.events import (
    Event,
    SearchFinished,
    StepLogged,
    TrialFinished,
    TrialPruned,
    TrialStarted,
)
from studio.core.i18n import N_, _, ngettext
from studio.core.runs.trials import TrialResult, leaderboard
from studio.gui.formatting import metric_name, number
from studio.gui.widgets.config_form import ChoiceCombo
from studio.gui.widgets.layout import wrapping_label
from studio.gui.widgets.metrics_plots import locale_axes
from studio.gui.workers.search_report_worker import SearchReportJob
from studio.gui.workers.training_worker import TrainingSession

if TYPE_CHECKING:
    from studio.core.runs.search_report import SearchReport

DEFAULT_PARAMS = [("train.lr", "3e-4 .. 1e-2 log"), ("model.n_layers", "1, 2, 4")]
# Translators: search strategies: trials drawn at random, every combination (a grid), or each trial chosen from
# the trials so far: TPE, CMA-ES and Gaussian process are the names of methods.
STRATEGIES = {"random": N_("random"), "grid": N_("grid"), "tpe": N_("TPE (Bayesian)"), "cmaes": N_("CMA-ES"),
              "gp": N_("Gaussian process")}
# Translators: pruners, which stop unpromising trials early: successive halving and Hyperband are the names of methods.
PRUNERS = {"median": N_("median"), "halving": N_("successive halving"), "hyperband": N_("Hyperband")}
METRICS = ("valid_loss", "accuracy", "f1", "bleu", "chrf", "exact_match", "rougeL")


def parse_values(text: str) -> Any:
    """"1e-3, 3e-3" -> a list; "1e-4 .. 1e-2 log" (or "int") -> a range table."""
    import tomllib

    text = text.strip()
    if ".." in text:
        low, _sep, rest = text.partition("..")
        words = rest.split()
        if not words:
            raise ValueError(_("{text}: a range looks like 1e-4 .. 1e-2 (optionally log, int)").format(text=repr(text)))
        table: dict[str, Any] = {"min": float(low), "max": float(words[0])}
        table["log"] = "log" in words[1:]
        table["int"] = "int" in words[1:]
        return table
    values = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            values.append(tomllib.loads(f"v = {part}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(part)
    if not values:
        raise ValueError(_("give values separated by commas, or a range such as 1e-4 .. 1e-2 log"))
    return values


CURRENT = "@current"  # the base combo's item for the settings on the other pages
ENDED = ("finished", "early_stopped", "pruned", "failed", "stopped")  # a trial's statuses once it has ended
MAX_LINES = 300  # parallel coordinates draw the best trials only: one plot item a line


class SearchPage(QWidget):
    promote_requested = Signal(object)  # RunConfig
    search_ended = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("searchPage")
        self.session = TrainingSession(self)
        self.session.event.connect(self.on_event)
        self.session.finished.connect(self._on_finished)
        self.trials: list[TrialResult] = []
        self.folder: Path | None = None
        self.spec: Any = None
        # The run the other pages describe; the main window sets it (the page has no session of its own).
        self.current_config: Callable[[], RunConfig] | None = None
        self.base_picked = False  # until a person picks a base, the default follows what is offered
        self._spec_file: Path | None = None
        self.report: SearchReport | None = None  # the latest report of the search shown
        self.last_status = ""  # how the page's last search ended: a stopped one can be resumed
        self.reports = SearchReportJob(self)
        self.search_number = 0  # which of the page's searches a report belongs to

        left = QWidget()
        col = QVBoxLayout(left)
        col.addWidget(self._build_spec())
        col.addWidget(self._build_params(), 1)
        col.addWidget(self._build_controls())
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self._build_results())
        split.setSizes([420, 860])
        QVBoxLayout(self).addWidget(split)
        self._connect()
        self._fill_presets()

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.resume_button.clicked.connect(lambda: self.resume())
        self.stop_button.clicked.connect(self.session.stop)
        self.promote_button.clicked.connect(self.promote)
        self.scatter_combo.currentTextChanged.connect(lambda _: self._draw_scatter())
        self.base_combo.activated.connect(lambda _: setattr(self, "base_picked", True))
        self.reports.done.connect(self._on_report)

    # ---- layout -------------------------------------------------------------------------------

    def _build_spec(self) -> QGroupBox:
        self.base_combo = QComboBox(objectName="searchBaseCombo")
        self.base_combo.setEditable(True)
        # An editable combo's line shows the end of a long choice ("…Model and Train pages)"):
        # show its start, and the whole of it on hover.
        self.base_combo.currentIndexChanged.connect(self._show_base_start)
        self.strategy_combo = QComboBox(objectName="searchStrategyCombo")
        for strategy, label in STRATEGIES.items():
            self.strategy_combo.addItem(_(label), strategy)
        self.trials_spin = QSpinBox(objectName="searchTrialsSpin", minimum=1, maximum=1000, value=6)
        self.metric_combo = ChoiceCombo(editable=True)  # a metric's name, or any other the task reports
        self.metric_combo.setObjectName("searchMetricCombo")
        self.metric_combo.setEditable(True)
        self.metric_combo.set_items([(m, metric_name(m)) for m in METRICS])
        self.metric_combo.set_value(METRICS[0])
        self.prune_check = QCheckBox(_("Prune unpromising trials"), objectName="searchPruneCheck")
        self.prune_check.setChecked(True)
        self.pruner_combo = QComboBox(objectName="searchPrunerCombo")
        for pruner, label in PRUNERS.items():
            self.pruner_combo.addItem(_(label), pruner)
        self.prune_startup_spin = QSpinBox(objectName="searchPruneStartupSpin", minimum=0, maximum=100, value=5)
        self.prune_startup_spin.setToolTip(_("finished trials before any trial is pruned"))
        self.prune_check.toggled.connect(self.pruner_combo.setEnabled)
        self.prune_check.toggled.connect(self.prune_startup_spin.setEnabled)
        self.folds_spin = QSpinBox(objectName="searchFoldsSpin", minimum=0, maximum=20)
        self.folds_spin.setToolTip(_("k-fold cross-validation for classification tasks; 0 turns it off"))
        self.set_edit = QLineEdit("train.steps=200; train.eval_interval=50; train.sample_tokens=0", objectName="searchSetEdit")
        self.set_edit.setCursorPosition(0)  # the first setting in view, not the end of the last
        box = QGroupBox(_("Search"))
        form = QFormLayout(box)
        # Translators: "Every trial" holds settings every trial gets (train.steps=200; ...).
        for label, widget in ((_("Start from"), self.base_combo), (_("Strategy"), self.strategy_combo),
                              (_("Trials (not grid)"), self.trials_spin), (_("Metric"), self.metric_combo), ("", self.prune_check),
                              (_("Pruner"), self.pruner_combo), (_("Prune after finished trials"), self.prune_startup_spin),
                              (_("Cross-validation folds"), self.folds_spin), (_("Every trial"), self.set_edit)):
            form.addRow(label, widget)
        return box

    def _build_params(self) -> QGroupBox:
        self.params_table = QTableWidget(0, 2, objectName="searchParamsTable")
        self.params_table.setHorizontalHeaderLabels([_("setting"), _("values")])
        self.params_table.horizontalHeader().setStretchLastSection(True)
        for key, values in DEFAULT_PARAMS:
            self.add_param(key, values)
        add = QPushButton(_("Add"), objectName="addParamButton")
        remove = QPushButton(_("Remove"), objectName="removeParamButton")
        add.clicked.connect(lambda: self.add_param("", ""))
        remove.clicked.connect(lambda: self.params_table.removeRow(self.params_table.currentRow()))
        box = QGroupBox(_("Parameters: a list (1, 2, 4) or a range (1e-4 .. 1e-2 log)"))
        col = QVBoxLayout(box)
        col.addWidget(self.params_table)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        col.addLayout(row)
        return box

    def _build_controls(self) -> QWidget:
        self.start_button = QPushButton(_("Start search"), objectName="startSearchButton")
        self.stop_button = QPushButton(_("Stop"), objectName="stopSearchButton")
        self.stop_button.setEnabled(False)
        self.resume_button = QPushButton(_("Resume…"), objectName="searchResumeButton")
        self.resume_button.setToolTip(_("Continue this page's stopped search, or choose a search folder; finished trials are not run again"))
        self.progress = QProgressBar(objectName="searchProgress")
        # Translators: the progress bar's text; Qt puts the current trial for %v and the number of trials for %m.
        self.progress.setFormat(_("trial %v / %m"))
        self.status = wrapping_label("", "searchStatusLabel")
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.stop_button)
        col.addLayout(buttons)
        col.addWidget(self.progress)
        col.addWidget(self.status)
        return box

    def _build_results(self) -> QWidget:
        self.board = QTableWidget(objectName="leaderboardTable")
        self.board.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.promote_steps = QSpinBox(objectName="promoteStepsSpin", minimum=1, maximum=10_000_000, value=2000)
        self.promote_button = QPushButton(_("Promote the best to a full run"), objectName="promoteButton")
        self.promote_button.setEnabled(False)
        self.log_view = QPlainTextEdit(objectName="searchLogView")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        promote_row = QHBoxLayout()
        promote_row.addWidget(QLabel(_("steps")))
        promote_row.addWidget(self.promote_steps)
        promote_row.addWidget(self.promote_button)
        right = QWidget()
        col = QVBoxLayout(right)
        col.addWidget(QLabel("<b>{}</b>".format(_("Leaderboard"))))
        # Shown instead of an empty grid until the first trial reports.
        self.board_hint = QLabel(_("No trials yet. Choose what to search and press Start; each trial appears here, best first."),
                                 objectName="leaderboardHint")
        self.board_hint.setWordWrap(True)
        col.addWidget(self.board_hint)
        col.addWidget(self.board, 2)
        col.addLayout(promote_row)
        col.addWidget(self._build_plots(), 2)
        col.addWidget(self.log_view, 1)
        return right

    def _build_plots(self) -> QTabWidget:
        self.plot_tabs = QTabWidget(objectName="searchPlotTabs")
        self.plot_tabs.addTab(self._build_scatter(), _("Parameter and metric"))
        self.importance_plot = _plot("importancePlot", _("Parameter importance (fANOVA)"))
        self.importance_plot.setMouseEnabled(x=False, y=False)
        self.plot_tabs.addTab(self.importance_plot, _("Importance"))
        self.parallel_plot = _plot("parallelPlot", _("Parallel coordinates (colour: the metric, yellow is best)"))
        self.parallel_plot.getAxis("left").setTicks([[(0.0, _("low")), (1.0, _("high"))]])
        self.plot_tabs.addTab(self.parallel_plot, _("Parallel coordinates"))
        self.best_median_plot = _plot("bestMedianPlot", _("The best trial against the median trial"))
        self.best_median_plot.setLabel("bottom", _("step"))
        self.best_median_plot.addLegend()
        self.plot_tabs.addTab(self.best_median_plot, _("Best and median"))
        self._note_empty_plots()
        return self.plot_tabs

    def _note_empty_plots(self) -> None:
        """Each plot says what will appear on it, rather than showing empty axes."""
        _empty_note(self.scatter, _("Each finished trial will be a point here: the chosen parameter against the metric."))
        _empty_note(self.importance_plot, _("Which parameters mattered, once a few trials have finished."))
        _empty_note(self.parallel_plot, _("One line per trial across its parameters and its metric."))
        _empty_note(self.best_median_plot, _("The best trial's curve against the median trial's, once trials have finished."))

    def _build_scatter(self) -> QWidget:
        self.scatter_combo = QComboBox(objectName="scatterParamCombo")
        self.scatter = pg.PlotWidget(title=_("Parameter against metric"), axisItems=locale_axes())
        self.scatter.setObjectName("searchScatterPlot")
        self.scatter.setBackground("w")
        self.trial_plot = pg.PlotWidget(title=_("Current trial: training loss"), axisItems=locale_axes())
        self.trial_plot.setObjectName("trialLossPlot")
        self.trial_plot.setBackground("w")
        self.trial_curve = self.trial_plot.plot(pen=pg.mkPen("#1f5fa8", width=1.5))
        self.trial_x: list[float] = []
        self.trial_y: list[float] = []
        scatter_row = QHBoxLayout()
        # Translators: the parameter on the scatter plot's x axis.
        scatter_row.addWidget(QLabel(_("x:")))
        scatter_row.addWidget(self.scatter_combo, 1)
        scatter = QVBoxLayout()
        scatter.addLayout(scatter_row)
        scatter.addWidget(self.scatter)
        plots = QWidget()
        row = QHBoxLayout(plots)
        row.setContentsMargins(0, 0, 0, 0)
        row.addLayout(scatter)
        row.addWidget(self.trial_plot)
        return plots

    def _fill_presets(self) -> None:
        """What a search can start from: the settings on the Data, Model and Train pages (your
        own corpus and model), any trained run's configuration, or a shipped preset. A path to a
        config file can also be typed."""
        from studio.core.resources import preset_names
        from studio.core.runs.index import list_runs

        typed = self.base_combo.currentText()
        chosen = self.base_combo.currentData()
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        if self.current_config is not None:
            self.base_combo.addItem(_("The current settings (Data, Model and Train pages)"), CURRENT)
        for run in list_runs():
            config = Path(run.path) / "config.toml"
            if run.task == "lm" and not run.search and config.is_file():
                self.base_combo.addItem(_("Run: {name}").format(name=run.label), str(config))
        for preset in preset_names():
            if not preset.startswith("finetune-"):
                self.base_combo.addItem(_("Preset: {name}").format(name=preset), preset)
        index = self.base_combo.findData(chosen) if chosen is not None and self.base_picked else -1
        if index >= 0:
            self.base_combo.setCurrentIndex(index)
        elif typed and self.base_combo.findText(typed) < 0:
            self.base_combo.setCurrentText(typed)  # a config path someone typed stays
        else:
            self.base_combo.setCurrentIndex(max(0, self.base_combo.findData(CURRENT if self.current_config else "demo-gpt")))
        self.base_combo.blockSignals(False)
        self._show_base_start()

    def _show_base_start(self, _index: int = 0) -> None:
        line = self.base_combo.lineEdit()
        if line is not None:
            line.setCursorPosition(0)
        self.base_combo.setToolTip(self.base_combo.currentText())

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        if not self.session.running:
            self._fill_presets()  # runs trained since appear

    def base_value(self) -> str:
        """The search's base: a preset name or a config file; the current settings are saved to
        a file of their own first, so the search reads exactly what the pages show."""
        index = self.base_combo.currentIndex()
        text = self.base_combo.currentText().strip()
        data = self.base_combo.itemData(index) if index >= 0 and self.base_combo.itemText(index) == text else None
        if data != CURRENT:
            return str(data) if data is not None else text
        assert self.current_config is not None
        config = self.current_config()  # ConfigError names the page and the setting that is wrong
        from studio.core.paths import data_dir

        path = data_dir() / "searches" / "bases" / f"{time.strftime('%Y%m%d-%H%M%S')}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        config.save(path)
        return str(path)

    def add_param(self, key: str, values: str) -> None:
        row = self.params_table.rowCount()
        self.params_table.insertRow(row)
        self.params_table.setItem(row, 0, QTableWidgetItem(key))
        self.params_table.setItem(row, 1, QTableWidgetItem(values))

    # ---- the spec ------------------------------------------------------------------------------

    def spec_table(self) -> dict[str, Any]:
        params = {}
        for row in range(self.params_table.rowCount()):
            key = (self.params_table.item(row, 0) or QTableWidgetItem("")).text().strip()
            text = (self.params_table.item(row, 1) or QTableWidgetItem("")).text()
            if key:
                try:
                    params[key] = parse_values(text)
                except ValueError as e:
                    raise ConfigError(f"params.{key}: {e}") from None
        return {
            "search": {
                "name": "gui", "base": self.base_value(), "strategy": self.strategy_combo.currentData(),
                "trials": self.trials_spin.value(), "metric": self.metric_combo.value(),
                "prune": self.prune_check.isChecked(), "prune_after": 1, "pruner": self.pruner_combo.currentData(),
                "prune_startup": self.prune_startup_spin.value(), "folds": self.folds_spin.value(),
                "set": [s.strip() for s in self.set_edit.text().split(";") if s.strip()],
            },
            "params": params,
        }

    def start(self) -> None:
        from studio.core.runs.trials import SearchSpec

        if self.session.running:
            return
        try:
            table = self.spec_table()
            spec = SearchSpec.from_dict(table)
            spec.base_config()
        except StudioError as e:
            self._say(str(e), error=True)
            return
        except OSError as e:  # the data folder cannot take the current settings' file
            from studio.core.fileio import describe_os_error

            self._say(describe_os_error(e), error=True)
            return
        self.spec = spec
        fd, name = tempfile.mkstemp(prefix="search-", suffix=".toml")
        import os

        os.close(fd)
        self._spec_file = Path(name)
        self._spec_file.write_text(tomli_w.dumps(table), encoding="utf-8")
        self.folder = None  # the search process names it; the first trial's run tells (see _on_report)
        self._begin(spec)
        self.session.start(None, search_spec=self._spec_file)

    def resume(self, folder: Path | None = None) -> None:
        """Continue a search: ``folder``, else this page's last stopped search, else one chosen
        in a folder dialog. Its finished trials stay; an interrupted one runs again."""
        from studio.core.paths import data_dir
        from studio.core.runs.trials import SearchSpec

        if self.session.running:
            return
        if folder is None and self.folder is not None and self.last_status == "stopped":
            folder = self.folder
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, _("Resume a search"), str(data_dir() / "searches"))
            if not chosen:
                return
            folder = Path(chosen)
        if not (folder / "study.db").is_file():
            self._say(_("{folder} holds no search to resume (no study.db)").format(folder=folder), error=True)
            return
        try:
            spec = SearchSpec.load(folder / "spec.toml")
        except StudioError as e:
            self._say(str(e), error=True)
            return
        self.folder = folder
        self._spec_file = None
        self._begin(spec)
        self.reports.load(folder, token=self.search_number)  # the trials it already has, on the board and plots at once
        self.session.start(None, search_folder=folder)

    def _begin(self, spec: Any) -> None:
        self.search_number += 1
        self.spec = spec
        self.trials = []
        self.report = None
        self.board.clear()
        self.board.setRowCount(0)
        self.board_hint.setVisible(True)
        for plot in (self.scatter, self.importance_plot, self.parallel_plot, self.best_median_plot):
            plot.clear()
        self._note_empty_plots()
        self.scatter_combo.clear()
        self.scatter_combo.addItems(list(spec.params))
        self.progress.setRange(0, spec.planned_trials)
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.promote_button.setEnabled(False)
        self._say(_("Starting the search process…"))

    # ---- events ----------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepLogged):
            self.trial_x.append(event.step)
            self.trial_y.append(event.loss)
            if event.step % 10 == 0 or event.step == event.total_steps:
                self.trial_curve.setData(self.trial_x, self.trial_y)
        elif isinstance(event, TrialStarted):
            shown = ", ".join(f"{k}={v}" for k, v in event.params)
            self.trial_x, self.trial_y = [], []
            self.trial_curve.setData([], [])
            # Translators: {params} is the trial's settings (train.lr=0.001, model.n_layers=2).
            self._say(_("Trial {trial} of {trials}: {params}").format(trial=event.trial, trials=event.trials, params=shown))
            self.log_view.appendPlainText(_("trial {trial}/{trials}: {params}").format(trial=event.trial, trials=event.trials, params=shown))
        elif isinstance(event, TrialFinished):
            params = {k: _typed(v) for k, v in event.params}
            self.trials.append(TrialResult(event.trial, params, event.status, event.value, event.steps, event.seconds,
                                           [event.run_dir], event.error))
            self.progress.setValue(len(self.trials))
            value = "—" if event.value is None else number(event.value, 4)
            # Translators: a trial's end in the search log: how it ended, its metric, its steps and time, any error.
            line = ngettext("{status}: {value} after {steps} step ({seconds} s) {error}", "{status}: {value} after {steps} steps ({seconds} s) {error}",
                            event.steps).format(status=_(event.status), value=value, steps=number(event.steps), seconds=number(event.seconds, 0),
                                                error=event.error)
            self.log_view.appendPlainText(f"  {line}".rstrip())
            self._fill_board()
            self._draw_scatter()
            self.reports.load(self.folder, event.run_dir, self.search_number)
        elif isinstance(event, SearchFinished):
            self.folder = Path(event.folder)
            self.promote_button.setEnabled(event.best_trial >= 0)
            self.reports.load(self.folder, token=self.search_number)
        elif isinstance(event, TrialPruned):
            self.log_view.appendPlainText("  " + (describe(event) or ""))

    def ranked(self) -> list[TrialResult]:
        return leaderboard(self.trials, self.spec.minimize if self.spec else True)

    def _fill_board(self) -> None:
        params = list(self.spec.params) if self.spec else []
        # Translators: the leaderboard's headings (the trial's parameters and its metric come between).
        metric = metric_name(self.spec.metric) if self.spec else _("value")
        headers = [_("rank"), _("trial"), *params, metric, _("status"), _("steps"), _("seconds")]
        self.board.setColumnCount(len(headers))
        self.board.setHorizontalHeaderLabels(headers)
        ranked = self.ranked()
        self.board_hint.setVisible(not ranked)
        self.board.setRowCount(len(ranked))
        for r, t in enumerate(ranked):
            values = [r + 1, t.trial, *(t.params.get(p, "") for p in params),
                      "—" if t.value is None else number(t.value, 4), _(t.status), number(t.steps), number(t.seconds, 0)]
            for c, v in enumerate(values):
                self.board.setItem(r, c, QTableWidgetItem(str(v)))
        self.board.resizeColumnsToContents()

    def _draw_scatter(self) -> None:
        self.scatter.clear()
        key = self.scatter_combo.currentText()
        points = []
        metric = metric_name(self.spec.metric) if self.spec else _("value")
        for t in self.trials:
            if t.value is None or key not in t.params:
                continue
            try:
                points.append((float(t.params[key]), float(t.value), self._tip(t, key)))
            except (TypeError, ValueError):
                continue
        if not points:
            _empty_note(self.scatter, _("Each finished trial will be a point here: the chosen parameter against the metric."))
            return
        xs, ys, tips = zip(*points, strict=True)
        self.scatter.enableAutoRange()  # the empty note had fixed the view at 0-1
        log_x = min(xs) > 0 and max(xs) / max(min(xs), 1e-12) > 20
        self.scatter.setLogMode(x=log_x, y=False)
        item = self.scatter.plot(list(xs), list(ys), pen=None, symbol="o", symbolSize=9, symbolBrush="#d35400", data=list(tips))
        item.scatter.opts.update(hoverable=True, tip=_tip_text)  # exact values on hover
        self.scatter.setLabel("bottom", key)
        self.scatter.setLabel("left", metric)

    def _tip(self, t: TrialResult, first: str = "") -> str:
        """A trial's exact values, for a tooltip: its number and status, its metric, its settings."""
        metric = metric_name(self.spec.metric) if self.spec else _("value")
        value = "—" if t.value is None else f"{t.value:.6g}"
        keys = sorted(t.params, key=lambda k: k != first)
        lines = [_("trial {trial} ({status})").format(trial=t.trial, status=_(t.status)), f"{metric} = {value}"]
        return "\n".join(lines + [f"{k} = {_shown(t.params[k])}" for k in keys])

    # ---- what mattered (the report, read off the GUI thread) ------------------------------------

    def _on_report(self, folder: Path | None, report: SearchReport | None, error: str, token: int) -> None:
        if token != self.search_number:
            return  # a late report of an earlier search
        if folder is not None and self.folder is None:
            self.folder = folder
        if report is None:
            if error:
                self.log_view.appendPlainText(_("The search's report cannot be read: {error}").format(error=error))
            return
        self.report = report
        merged = {t.trial: t for t in self.trials}
        merged.update({t.trial: t for t in report.trials if t.status in ENDED})
        self.trials = sorted(merged.values(), key=lambda t: t.trial)
        counted = sum(report.counts.get(k, 0) for k in ("finished", "pruned", "failed"))
        self.progress.setValue(min(self.progress.maximum(), max(self.progress.value(), counted)))
        self._fill_board()
        self._draw_scatter()
        self._draw_importance(report)
        self._draw_parallel(report)
        self._draw_best_median(report)

    def _draw_importance(self, report: SearchReport) -> None:
        plot = self.importance_plot
        plot.clear()
        if not report.importances:
            plot.addItem(pg.TextItem(report.importance_note, color="#555"))
            plot.setToolTip(report.importance_note)
            return
        names, shares = list(report.importances), list(report.importances.values())
        plot.addItem(pg.BarGraphItem(x=list(range(len(names))), height=shares, width=0.6, brush="#1f5fa8"))
        plot.getAxis("bottom").setTicks([list(enumerate(names))])
        plot.setYRange(0, max(shares) * 1.1, padding=0)
        plot.setXRange(-0.6, len(names) - 0.4, padding=0)
        plot.setLabel("left", _("share of the metric's variance"))
        plot.setToolTip("\n".join(_("{param}: {share} %").format(param=k, share=number(100 * v, 1)) for k, v in report.importances.items()))

    def _draw_parallel(self, report: SearchReport) -> None:
        """One polyline per trial across an axis per parameter and one for the metric; its colour
        is the metric (yellow best). Axes are scaled to the spec's ranges (choices evenly spaced)."""
        plot = self.parallel_plot
        plot.clear()
        values = [line.value for line in report.lines if line.value is not None and math.isfinite(line.value)]
        if not report.axes:
            _empty_note(plot, _("One line per trial across its parameters and its metric."))
            return
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        plot.enableAutoRange(axis="x")
        names = [a.name for a in report.axes] + [metric_name(report.spec.metric)]
        plot.getAxis("bottom").setTicks([list(enumerate(names))])
        for i, a in enumerate(report.axes):
            ends = (_shown(a.choices[0]), _shown(a.choices[-1])) if a.kind == "choice" and a.choices else (_shown(a.low), _shown(a.high))
            self._axis_marks(i, *ends)
        self._axis_marks(len(report.axes), f"{low:.4g}", f"{high:.4g}")
        colours = pg.colormap.get("viridis")
        trials = {t.trial: t for t in report.trials}
        ranked = sorted(report.lines, key=lambda ln: (ln.value is None, (ln.value or 0.0) * (1 if report.spec.minimize else -1)))
        xs_all: list[float] = []
        ys_all: list[float] = []
        tips: list[str] = []
        for line in reversed(ranked[:MAX_LINES]):  # the best drawn last, on top
            if line.value is not None and math.isfinite(line.value):
                where = 0.5 if high == low else (line.value - low) / (high - low)
                quality = 1.0 - where if report.spec.minimize else where
                pen = pg.mkPen(colours.map(quality, mode="qcolor"), width=2)
            else:
                where, pen = math.nan, pg.mkPen("#aaaaaa", width=1, style=Qt.PenStyle.DashLine)
            ys = [math.nan if p is None else p for p in line.positions] + [where]
            xs = [float(i) for i in range(len(ys))]
            plot.plot(xs, ys, pen=pen, connect="finite")
            tip = self._tip(trials[line.trial]) if line.trial in trials else _("trial {trial} ({status})").format(
                trial=line.trial, status=_(line.status))
            for x, y in zip(xs, ys, strict=True):
                if math.isfinite(y):
                    xs_all.append(x)
                    ys_all.append(y)
                    tips.append(tip)
        plot.addItem(pg.ScatterPlotItem(xs_all, ys_all, data=tips, size=6, brush="#333333", hoverable=True, tip=_tip_text))
        plot.setYRange(-0.08, 1.08, padding=0)

    def _axis_marks(self, x: int, low: str, high: str) -> None:
        plot = self.parallel_plot
        plot.addItem(pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen("#999999")))
        for text, y, anchor in ((low, 0.0, (0.5, 0.0)), (high, 1.0, (0.5, 1.0))):
            mark = pg.TextItem(text, color="#333", anchor=anchor)
            mark.setPos(x, y)
            plot.addItem(mark, ignoreBounds=True)

    def _draw_best_median(self, report: SearchReport) -> None:
        plot = self.best_median_plot
        plot.clear()
        plot.setLabel("left", metric_name(report.spec.metric))
        shown = []
        if report.best_curve is not None:
            shown.append((report.best_curve, _("best: trial {trial}"), pg.mkPen("#1f5fa8", width=2)))
        if report.median_curve is not None and (report.best_curve is None or report.median_curve.trial != report.best_curve.trial):
            shown.append((report.median_curve, _("median: trial {trial}"), pg.mkPen("#d35400", width=2, style=Qt.PenStyle.DashLine)))
        if not shown:
            _empty_note(plot, _("The best trial's curve against the median trial's, once trials have finished."))
        if shown:
            plot.enableAutoRange()
        for curve, label, pen in shown:
            name = label.format(trial=curve.trial)
            plot.plot(list(curve.steps), list(curve.values), pen=pen, name=name)
            tips = [f"{name}\n{_('step')} {number(s)}: {v:.6g}" for s, v in zip(curve.steps, curve.values, strict=True)]
            plot.addItem(pg.ScatterPlotItem(list(curve.steps), list(curve.values), data=tips, size=6, pen=pen, brush="w",
                                            hoverable=True, tip=_tip_text))

    def _on_finished(self, result: Any) -> None:
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.last_status = result.status
        if self.folder is None and result.run_dir and Path(result.run_dir).is_dir():
            self.folder = Path(result.run_dir)  # the search's folder, also when no trial got to finish
        if self._spec_file is not None:
            self._spec_file.unlink(missing_ok=True)
        if result.status == "failed":
            self._say(_("The search failed: {error}").format(error=result.error), error=True)
        else:
            best = self.ranked()[0] if self.trials and self.ranked()[0].value is not None else None
            n = len(self.trials)
            values = {"status": _(result.status), "n": number(n), "folder": result.run_dir}
            if best and self.spec and best.value is not None:
                # Translators: the end of a search: how it ended, its trials, the best trial's metric, where it is saved.
                text = ngettext("Search {status}: {n} trial; best: trial {best} with {metric} {value}. Saved in {folder}.",
                                "Search {status}: {n} trials; best: trial {best} with {metric} {value}. Saved in {folder}.", n).format(
                    best=best.trial, metric=metric_name(self.spec.metric), value=number(best.value, 4), **values)
            else:
                text = ngettext("Search {status}: {n} trial. Saved in {folder}.", "Search {status}: {n} trials. Saved in {folder}.", n).format(**values)
            self._say(text)
        self.search_ended.emit(result.status)

    def promote(self) -> None:
        from studio.core.runs.trials import promote

        ranked = self.ranked()
        if not ranked or ranked[0].value is None or self.spec is None:
            return
        try:
            config = promote(self.spec, ranked[0], [f"train.steps={self.promote_steps.value()}"])
        except StudioError as e:
            self._say(str(e), error=True)
            return
        self.promote_requested.emit(config)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")

    def shutdown(self) -> None:
        self.session.stop_and_wait()
        self.reports.cancel_and_wait()


def _plot(name: str, title: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title, axisItems=locale_axes())
    plot.setObjectName(name)
    plot.setBackground("w")
    return plot


def _empty_note(plot: pg.PlotWidget, text: str) -> None:
    """A grey sentence in the middle of an empty plot (placed in a fixed 0-1 view, which the
    first real data replaces when the plot is cleared and drawn)."""
    note = pg.TextItem(text, color="#777", anchor=(0.5, 0.5))
    note.setObjectName("emptyPlotNote")
    note.setPos(0.5, 0.5)
    plot.setLogMode(x=False, y=False)  # a previous search's log axis would move the note
    plot.addItem(note)
    plot.setXRange(0, 1, padding=0)
    plot.setYRange(0, 1, padding=0)


def _tip_text(x: float, y: float, data: Any) -> str:
    return str(data)  # each point carries its exact values as text (see SearchPage._tip)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _typed(text: str) -> Any:
    """Trial parameters travel as text in events; read numbers and booleans back."""
    import tomllib

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if not (isinstance(value, float) and math.isnan(value)) else text
