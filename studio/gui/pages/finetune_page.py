"""Fine-tune page: a trained run as the base, a task and its examples, a method (full, frozen
layers, LoRA), a preview of the examples as the model will see them, and the same run monitor as
the Train page.

The settings are forms generated from ``FinetuneConfig``, ``TaskConfig`` and ``TrainConfig`` (and,
for continued language modelling, ``DataConfig``'s files); the run's configuration is built from
them in one ``RunConfig.from_dict`` and then takes what it inherits from its base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.config import DataConfig, FinetuneConfig, RunConfig, TaskConfig, TrainConfig
from studio.core.errors import ConfigError, ConfigIssue, StudioError
from studio.core.i18n import N_, _, ngettext
from studio.core.tasks.demo import DEMO_TASKS
from studio.core.tasks.templates import DEFAULT_TEMPLATES
from studio.core.training.finetune import inherit_base
from studio.gui.formatting import number
from studio.gui.session import StudioSession, build_run_config
from studio.gui.widgets.config_form import ConfigForm, PathChoiceEdit
from studio.gui.widgets.layout import VerticalScrollWidget, wrapping_label
from studio.gui.widgets.run_monitor import RunMonitorWidget
from studio.gui.workers.coverage_worker import CoverageCheck

DEMOS = {kind: name for name, (kind, _) in DEMO_TASKS.items()}  # each task's own demo data
FILES_CHOICE = ("", N_("None: the files below"))
FINETUNE_DEFAULTS = {"lr": 1e-3, "steps": 600, "eval_interval": 200, "batch_size": 16, "sample_tokens": 0}
BASE_FIELDS = ("base", "base_checkpoint")
METHOD_FIELDS = ("method", "freeze_layers", "lora_rank", "lora_alpha", "lora_dropout", "lora_targets")
PREVIEW_ROWS = 30


def _group(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    col = QVBoxLayout(box)
    for w in widgets:
        col.addWidget(w)
    return box


def example_rows(kind: str, examples: list[Any], template: str, extractive: bool) -> tuple[list[str], list[list[str]]]:
    """Headers and rows showing the first examples as the model sees them: the input after the
    template, and the target."""
    from studio.core.tasks.templates import prompt_text

    # Translators: headings of the example preview: an example's parts, and the text the model reads (after the template).
    if kind == "classify":
        return [_("text"), _("label")], [[e.source, e.target] for e in examples]
    if extractive:
        return [_("question"), _("context"), _("answer")], [[e.question, e.source, e.target] for e in examples]
    return [_("model input"), _("target")], [[prompt_text(kind, template, e), e.target] for e in examples]


class FinetunePage(QWidget):
    run_ended = Signal(str)

    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("finetunePage")
        self.session = session
        self.monitor = RunMonitorWidget("finetune")
        self.run_ended = self.monitor.run_ended

        self.right_tabs = QTabWidget(objectName="finetuneTabs")
        self.right_tabs.addTab(self.monitor, _("Run"))
        self.right_tabs.addTab(self._build_preview(), _("Preview"))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(VerticalScrollWidget(self._build_settings()))
        splitter.addWidget(self.right_tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([490, 790])
        QVBoxLayout(self).addWidget(splitter)

        self._connect()
        self.refresh_bases()
        self._on_task_kind()

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.refresh_bases()

    # ---- layout -------------------------------------------------------------------------------

    def _build_settings(self) -> QWidget:
        # Explanations in tooltips, as on the Data page; the training settings keep theirs, as on the Train page.
        self.base_form = ConfigForm(FinetuneConfig, fields=BASE_FIELDS, object_name="finetuneBaseForm", hints=False)
        base_edit = self.base_form.editors["base"]
        if isinstance(base_edit, PathChoiceEdit):  # a long run label is cut in the combo: whole on hover
            base_edit.combo.currentTextChanged.connect(base_edit.combo.setToolTip)
        self.task_form = ConfigForm(TaskConfig, {"kind": "classify", "dataset": DEMOS["classify"]}, include_advanced=False, hints=False,
                                    choices={"dataset": [(FILES_CHOICE[0], _(FILES_CHOICE[1])),
                                                         *((n, _("{name} (written by Studio)").format(name=n)) for n in DEMO_TASKS)]})
        # Continued language modelling reads a corpus, not examples.
        self.corpus_form = ConfigForm(DataConfig, fields=("paths",), name_prefix="finetune", object_name="finetuneCorpusForm", hints=False)
        self.method_form = ConfigForm(FinetuneConfig, {"freeze_layers": 1}, fields=METHOD_FIELDS, object_name="finetuneMethodForm",
                                      hints=False)
        self.train_form = ConfigForm(TrainConfig, {**TrainConfig().to_dict(), **FINETUNE_DEFAULTS}, name_prefix="finetune")
        content = QWidget()
        col = QVBoxLayout(content)
        # Filled off the GUI thread: how much of the task the base's vocabulary cannot write.
        self.coverage_label = wrapping_label("", "coverageLabel")
        self.coverage_label.setStyleSheet("color: #b9770e;")
        col.addWidget(_group(_("Base model"), self.base_form, self.coverage_label))
        col.addWidget(_group(_("Task"), self.task_form, self.corpus_form))
        # Translators: a group box: how the base model is fine-tuned (all weights, frozen layers, LoRA).
        col.addWidget(_group(_("Method"), self.method_form))
        col.addWidget(_group(_("Training"), self.train_form))
        col.addStretch(1)
        return content

    def _build_preview(self) -> QWidget:
        self.preview_button = QPushButton(_("Preview examples"), objectName="previewButton")
        self.preview_table = QTableWidget(objectName="examplePreview")
        self.preview_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.preview_status = wrapping_label("", "previewStatusLabel")
        preview = QWidget()
        col = QVBoxLayout(preview)
        col.addWidget(self.preview_button)
        col.addWidget(self.preview_status)
        col.addWidget(self.preview_table, 1)
        return preview

    def _connect(self) -> None:
        self.preview_button.clicked.connect(self.preview)
        self.monitor.start_requested.connect(self.start)
        self.task_form.field_changed.connect(self._on_task_field)
        for form in self._forms():
            form.changed.connect(self._validate)
        self.session.changed.connect(self._validate)
        self.coverage = CoverageCheck(self)
        self.coverage_warnings: dict[str, str] = {}  # by base and task settings
        self.coverage.done.connect(self._on_coverage)

    def _forms(self) -> tuple[ConfigForm, ...]:
        return (self.base_form, self.task_form, self.corpus_form, self.method_form, self.train_form)

    # ---- choices ------------------------------------------------------------------------------

    def refresh_bases(self, select: Path | None = None) -> None:
        """Offer the trained runs as bases, keeping the current one (or choosing ``select``)."""
        from studio.core.paths import runs_dir
        from studio.core.runs.index import list_runs

        self.base_form.set_choices("base", [(str(run.path), run.label) for run in list_runs(with_checkpoint=True)])
        base = self.base_form.editors["base"]
        assert isinstance(base, PathChoiceEdit)
        base.start_folder = str(runs_dir())
        if select is not None:
            self.base_form.set_values({"base": str(select)}, emit=False)
        elif not self.base_form.value("base") and base.combo.count():
            self.base_form.set_values({"base": base.combo.itemData(0)}, emit=False)  # the newest run
        self._validate()

    def set_base(self, run_dir: Path) -> None:
        self.refresh_bases(select=run_dir)

    def set_task(self, kind: str, dataset: str = "") -> None:
        self.task_form.set_values({"kind": kind, "dataset": dataset or DEMOS.get(kind, "")}, emit=False)
        self._on_task_kind()

    def _on_task_field(self, name: str) -> None:
        if name == "kind":
            self.task_form.set_values({"dataset": DEMOS.get(self.task_form.value("kind"), "")}, emit=False)
            self._on_task_kind()
        elif name == "paths" and self.task_form.value("paths"):
            self.task_form.set_values({"dataset": ""}, emit=False)  # files chosen: use them

    def _on_task_kind(self) -> None:
        kind = self.task_form.value("kind")
        self.corpus_form.setVisible(kind == "lm")
        template = self.task_form.editors["template"]
        assert isinstance(template, QLineEdit)
        template.setPlaceholderText(DEFAULT_TEMPLATES.get(kind, _("(no template for this task)")))
        self._validate()

    # ---- configuration ------------------------------------------------------------------------

    def _tables(self) -> tuple[dict[str, dict[str, Any]], list[ConfigIssue]]:
        """The run's tables as the forms hold them (optimizer and schedule from the Train page)."""
        issues = self.session.parse_issues("optimizer", "schedule")
        finetune: dict[str, Any] = {}
        for form in (self.base_form, self.method_form):
            values, found = form.raw_values()
            finetune.update(values)
            issues.extend(found)
        task, found = self.task_form.raw_values()
        issues.extend(found)
        train, found = self.train_form.raw_values()
        issues.extend(found)
        tables = {"task": task, "finetune": finetune, "train": train, "optimizer": self.session.tables.get("optimizer", {}),
                  "schedule": self.session.tables.get("schedule", {})}
        if task["kind"] == "lm":
            corpus, found = self.corpus_form.raw_values()
            tables["data"] = {"dataset": "", **corpus}  # files, not the demo corpus the base may have read
            issues.extend(found)
        return tables, issues

    def build_config(self) -> RunConfig:
        if not self.session.engine_ready:
            raise ConfigError(_("PyTorch is still loading"))
        tables, issues = self._tables()
        if not tables["finetune"].get("base"):
            issues.append(ConfigIssue("finetune.base", _("choose a trained run as the base (train one on the Train page first)")))
        return inherit_base(build_run_config(tables, issues))

    def _validate(self) -> None:
        warning = ""
        try:
            config = self.build_config()
            reason, issues = "", []
            warning = self._coverage_warning(config)
        except ConfigError as e:
            reason, issues = str(e), e.issues
        except StudioError as e:
            reason, issues = str(e), []
        for form in self._forms():
            form.show_issues(issues)
        self.coverage_label.setText(warning)
        self.coverage_label.setVisible(bool(warning))
        self.monitor.set_blocking_reason(reason, warning)

    @staticmethod
    def _coverage_key(config: RunConfig) -> str:
        ft, task = config.finetune, config.task
        return repr((ft.base, ft.base_checkpoint, task.kind, task.dataset, task.paths, task.fields, task.format, task.qa_mode))

    def _coverage_warning(self, config: RunConfig) -> str:
        """The warning for these settings once checked; starts the check the first time."""
        key = self._coverage_key(config)
        if key not in self.coverage_warnings:
            self.coverage_warnings[key] = ""  # until the check answers; asked once per settings
            self.coverage.check(key, config)
        return self.coverage_warnings[key]

    def _on_coverage(self, key: str, warning: str) -> None:
        self.coverage_warnings[key] = warning
        self._validate()

    def start(self) -> None:
        try:
            config = self.build_config()
        except StudioError as e:
            self.monitor.refuse_start(str(e))
            return
        self.right_tabs.setCurrentWidget(self.monitor)
        self.monitor.start(config)

    # ---- preview ------------------------------------------------------------------------------

    def preview(self) -> None:
        """The first examples as the model will see them: input (after the template) and target."""
        from studio.core.tasks.examples import load_examples

        self.preview_table.setRowCount(0)
        task, _issues = self.task_form.raw_values()
        kind = task["kind"]
        try:
            if kind == "lm":
                raise ConfigError(_("continued language modelling uses plain text; see the Data page's preview"))
            examples = load_examples(kind, self._example_paths(task), task["format"], task["fields"])
            extractive = kind == "qa" and task["qa_mode"] == "extractive"
            headers, rows = example_rows(kind, examples[:PREVIEW_ROWS], task["template"].strip(), extractive)
            self._fill_preview(headers, rows)
            self.preview_status.setStyleSheet("")
            self.preview_status.setText(ngettext(
                "{n} training example; the first {shown} as the model sees them.",
                "{n} training examples; the first {shown} as the model sees them.", len(examples),
            ).format(n=number(len(examples)), shown=number(len(rows))))
        except StudioError as e:
            self.preview_status.setStyleSheet("color: #c0392b;")
            self.preview_status.setText(str(e))
        self.right_tabs.setCurrentIndex(1)

    @staticmethod
    def _example_paths(task: dict[str, Any]) -> list[Path]:
        if task["dataset"]:
            from studio.core.tasks.demo import demo_task_paths

            return [demo_task_paths(task["dataset"])["train"]]
        if not task["paths"]:
            raise ConfigError(_("choose training files first"))
        return [Path(p) for p in task["paths"]]

    def _fill_preview(self, headers: list[str], rows: list[list[str]]) -> None:
        self.preview_table.setColumnCount(len(headers))
        self.preview_table.setHorizontalHeaderLabels(headers)
        self.preview_table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                self.preview_table.setItem(r, c, QTableWidgetItem(value))
        self.preview_table.resizeColumnsToContents()

    def shutdown(self) -> None:
        self.coverage.cancel_and_wait()
        self.monitor.shutdown()

