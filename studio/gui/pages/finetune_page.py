"""Fine-tune page: a trained run as the base, a task and its examples, a method (full, frozen
layers, LoRA), a preview of the examples as the model will see them, and the same run monitor as
the Train page."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.architectures import GPTConfig
from studio.core.config import (
    DataConfig,
    FinetuneConfig,
    RunConfig,
    RunSection,
    TaskConfig,
    TokenizerConfig,
    TrainConfig,
)
from studio.core.errors import ConfigError, ConfigIssue, StudioError
from studio.core.training.finetune import inherit_base
from studio.gui.session import StudioSession
from studio.gui.widgets.config_form import ConfigForm
from studio.gui.widgets.layout import VerticalScrollWidget, row_widget
from studio.gui.widgets.run_monitor import RunMonitorWidget

TASKS = [("classify", "Text classification"), ("translate", "Translation"), ("qa", "Question answering"),
         ("summarize", "Summarization"), ("lm", "Continued language modelling (new corpus)")]
DEMOS = {"classify": "demo-sentiment", "translate": "demo-translate", "qa": "demo-qa", "summarize": "demo-summarize"}
FILES = "files"
FINETUNE_DEFAULTS = {"lr": 1e-3, "steps": 600, "eval_interval": 200, "batch_size": 16, "sample_tokens": 0}


class FinetunePage(QWidget):
    run_ended = Signal(str)

    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("finetunePage")
        self.session = session
        self.monitor = RunMonitorWidget("finetune")
        self.run_ended = self.monitor.run_ended

        # ---- base -----------------------------------------------------------------------------
        base_box = QGroupBox("Base model")
        bf = QFormLayout(base_box)
        self.base_combo = QComboBox(objectName="baseRunCombo")
        self.base_combo.setToolTip("A trained run to start from; its tokenizer and architecture carry over")
        self.base_browse = QPushButton("Browse…", objectName="baseBrowseButton")
        bf.addRow("Run", row_widget(self.base_combo, self.base_browse))
        self.base_checkpoint_combo = QComboBox(objectName="baseCheckpointCombo")
        self.base_checkpoint_combo.addItems(["best", "last"])
        bf.addRow("Checkpoint", self.base_checkpoint_combo)

        # ---- task and data --------------------------------------------------------------------
        task_box = QGroupBox("Task")
        tf = QFormLayout(task_box)
        self.task_combo = QComboBox(objectName="taskKindCombo")
        for kind, label in TASKS:
            self.task_combo.addItem(label, kind)
        tf.addRow("Task", self.task_combo)
        self.qa_mode_combo = QComboBox(objectName="qaModeCombo")
        self.qa_mode_combo.addItems(["extractive", "generative"])
        tf.addRow("Answers", self.qa_mode_combo)
        self.dataset_combo = QComboBox(objectName="taskDatasetCombo")
        self.dataset_combo.addItem("Files (choose below)", FILES)
        for name in ("demo-sentiment", "demo-translate", "demo-qa", "demo-summarize"):
            self.dataset_combo.addItem(f"{name} (written by Studio)", name)
        tf.addRow("Examples", self.dataset_combo)
        self.path_edit = QLineEdit(objectName="taskPathEdit")
        self.path_edit.setPlaceholderText("Training files (JSONL, SQuAD JSON, TSV pairs, CSV); ; between several")
        self.open_button = QPushButton("Open…", objectName="openTaskFilesButton")
        tf.addRow("Training", row_widget(self.path_edit, self.open_button))
        self.valid_edit = QLineEdit(objectName="taskValidPathEdit")
        self.valid_edit.setPlaceholderText("optional; else 10% of the training examples")
        tf.addRow("Validation", self.valid_edit)
        self.test_edit = QLineEdit(objectName="taskTestPathEdit")
        self.test_edit.setPlaceholderText("optional; scored once at the end")
        tf.addRow("Test", self.test_edit)
        self.format_combo = QComboBox(objectName="taskFormatCombo")
        self.format_combo.addItems(["auto", "jsonl", "squad", "tsv", "csv"])
        tf.addRow("Format", self.format_combo)
        self.fields_edit = QLineEdit(objectName="fieldMappingEdit")
        self.fields_edit.setPlaceholderText("e.g. text=review; label=sentiment")
        tf.addRow("Column mapping", self.fields_edit)
        self.template_edit = QLineEdit(objectName="templateEdit")
        tf.addRow("Prompt template", self.template_edit)
        self.template_hint = QLabel()
        self.template_hint.setWordWrap(True)
        self.template_hint.setStyleSheet("color: #5d6d7e; font-size: 11px;")
        tf.addRow(self.template_hint)

        # ---- method ---------------------------------------------------------------------------
        method_box = QGroupBox("Method")
        mf = QFormLayout(method_box)
        self.method_combo = QComboBox(objectName="methodCombo")
        for key, label in (("full", "Full fine-tuning"), ("freeze", "Freeze the first layers"), ("lora", "LoRA adapters")):
            self.method_combo.addItem(label, key)
        mf.addRow("Method", self.method_combo)
        self.freeze_spin = QSpinBox(objectName="freezeLayersSpin", minimum=0, maximum=256, value=1)
        mf.addRow("Frozen layers", self.freeze_spin)
        self.rank_spin = QSpinBox(objectName="loraRankSpin", minimum=1, maximum=1024, value=8)
        self.alpha_spin = QDoubleSpinBox(objectName="loraAlphaSpin", minimum=0.0, maximum=10_000.0, value=16.0)
        self.lora_dropout_spin = QDoubleSpinBox(objectName="loraDropoutSpin", minimum=0.0, maximum=0.9, singleStep=0.05)
        self.targets_edit = QLineEdit("qkv; q; kv; proj; fc; out", objectName="loraTargetsEdit")
        mf.addRow("LoRA rank", self.rank_spin)
        mf.addRow("LoRA alpha", self.alpha_spin)
        mf.addRow("LoRA dropout", self.lora_dropout_spin)
        mf.addRow("LoRA targets", self.targets_edit)

        train_box = QGroupBox("Training")
        self.train_form = ConfigForm(TrainConfig, {**TrainConfig().to_dict(), **FINETUNE_DEFAULTS})
        self.train_form.setObjectName("finetuneTrainForm")
        QVBoxLayout(train_box).addWidget(self.train_form)

        left = QWidget()
        ll = QVBoxLayout(left)
        for box in (base_box, task_box, method_box, train_box):
            ll.addWidget(box)
        ll.addStretch(1)
        left_scroll = VerticalScrollWidget(left)

        # ---- preview + monitor ----------------------------------------------------------------
        self.preview_button = QPushButton("Preview examples", objectName="previewButton")
        self.preview_table = QTableWidget(objectName="examplePreview")
        self.preview_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.preview_status = QLabel(objectName="previewStatusLabel")
        self.preview_status.setWordWrap(True)
        preview = QWidget()
        pl = QVBoxLayout(preview)
        pl.addWidget(self.preview_button)
        pl.addWidget(self.preview_status)
        pl.addWidget(self.preview_table, 1)
        self.right_tabs = QTabWidget(objectName="finetuneTabs")
        self.right_tabs.addTab(self.monitor, "Run")
        self.right_tabs.addTab(preview, "Preview")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_scroll)
        splitter.addWidget(self.right_tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([490, 790])
        QVBoxLayout(self).addWidget(splitter)

        self.base_browse.clicked.connect(self._browse_base)
        self.open_button.clicked.connect(self._open_files)
        self.preview_button.clicked.connect(self.preview)
        self.monitor.start_requested.connect(self.start)
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        for signal in (self.base_combo.currentIndexChanged, self.dataset_combo.currentIndexChanged, self.path_edit.textChanged,
                       self.method_combo.currentIndexChanged, self.qa_mode_combo.currentIndexChanged, self.template_edit.textChanged,
                       self.fields_edit.textChanged, self.train_form.changed, self.format_combo.currentIndexChanged):
            signal.connect(self._validate)
        session.changed.connect(self._validate)
        self.refresh_bases()
        self._on_task_changed()

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.refresh_bases()

    # ---- choices ------------------------------------------------------------------------------

    def refresh_bases(self, select: Path | None = None) -> None:
        from studio.core.runs.index import list_runs

        current = select or self.base_combo.currentData()
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        for run in list_runs(with_checkpoint=True):
            self.base_combo.addItem(run.label, str(run.path))
        if current is not None:
            index = self.base_combo.findData(str(current))
            if index < 0:
                self.base_combo.addItem(Path(current).name, str(current))
                index = self.base_combo.count() - 1
            self.base_combo.setCurrentIndex(index)
        self.base_combo.blockSignals(False)
        self._validate()

    def set_base(self, run_dir: Path) -> None:
        self.refresh_bases(select=run_dir)

    def set_task(self, kind: str, dataset: str = "") -> None:
        self.task_combo.setCurrentIndex(self.task_combo.findData(kind))
        if dataset:
            self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(dataset))

    def _browse_base(self) -> None:
        from studio.core.paths import runs_dir

        folder = QFileDialog.getExistingDirectory(self, "Choose a run or checkpoint folder", str(runs_dir()))
        if folder:
            self.set_base(Path(folder))

    def _open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Task examples", "", "Examples (*.jsonl *.json *.tsv *.txt *.csv);;All files (*)")
        if files:
            self.dataset_combo.setCurrentIndex(0)
            self.path_edit.setText("; ".join(files))

    def _on_task_changed(self) -> None:
        from studio.core.tasks.templates import DEFAULT_TEMPLATES

        kind = self.task_combo.currentData()
        self.qa_mode_combo.setEnabled(kind == "qa")
        self.dataset_combo.setEnabled(kind != "lm")
        demo = DEMOS.get(kind)
        if demo:
            self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(demo))
        else:
            self.dataset_combo.setCurrentIndex(0)
        default = DEFAULT_TEMPLATES.get(kind, "")
        self.template_edit.setPlaceholderText(default or "(no template for this task)")
        self.template_hint.setText(
            "How a decoder-only model sees each example; the loss covers only the part after the last marker. "
            "Saved with the run and used again in the Try panel." if default else ""
        )
        self._validate()

    # ---- configuration ------------------------------------------------------------------------

    def _paths(self, edit: QLineEdit) -> list[str]:
        return [p.strip() for p in edit.text().split(";") if p.strip()]

    def build_config(self) -> RunConfig:
        if not self.session.engine_ready:
            raise ConfigError("PyTorch is still loading")
        base = self.base_combo.currentData()
        if not base:
            raise ConfigError(ConfigIssue("finetune.base", "choose a trained run as the base (train one on the Train page first)"))
        issues: list[ConfigIssue] = []
        kind = self.task_combo.currentData()
        dataset = self.dataset_combo.currentData()
        task = TaskConfig.from_dict({
            "kind": kind,
            "dataset": "" if (dataset == FILES or kind == "lm") else dataset,
            "paths": [] if kind == "lm" else self._paths(self.path_edit),
            "valid_paths": [] if kind == "lm" else self._paths(self.valid_edit),
            "test_paths": [] if kind == "lm" else self._paths(self.test_edit),
            "format": self.format_combo.currentText(),
            "fields": [f.strip() for f in self.fields_edit.text().split(";") if f.strip()],
            "qa_mode": self.qa_mode_combo.currentText(),
            "template": self.template_edit.text().strip(),
        }, issues)
        finetune = FinetuneConfig.from_dict({
            "base": base,
            "base_checkpoint": self.base_checkpoint_combo.currentText(),
            "method": self.method_combo.currentData(),
            "freeze_layers": self.freeze_spin.value(),
            "lora_rank": self.rank_spin.value(),
            "lora_alpha": self.alpha_spin.value(),
            "lora_dropout": self.lora_dropout_spin.value(),
            "lora_targets": [t.strip() for t in self.targets_edit.text().split(";") if t.strip()],
        }, issues)
        train, found = self.train_form.parse()
        issues.extend(found)
        if kind == "lm" and not self._paths(self.path_edit):
            issues.append(ConfigIssue("data.paths", "continued language modelling needs a corpus: choose files"))
        if issues:
            raise ConfigError(issues)
        data = DataConfig(paths=self._paths(self.path_edit)) if kind == "lm" else DataConfig()
        config = inherit_base(RunConfig(RunSection(), data, TokenizerConfig(), GPTConfig(), self.session.optimizer,
                                        self.session.schedule, train, task, finetune))  # type: ignore[arg-type]
        problems = config.cross_check()
        if problems:
            raise ConfigError(problems)
        return config

    def _validate(self) -> None:
        try:
            self.build_config()
            reason = ""
        except StudioError as e:
            reason = str(e)
        self.monitor.set_blocking_reason(reason)
        self.method_details()

    def method_details(self) -> None:
        method = self.method_combo.currentData()
        self.freeze_spin.setEnabled(method == "freeze")
        for w in (self.rank_spin, self.alpha_spin, self.lora_dropout_spin, self.targets_edit):
            w.setEnabled(method == "lora")

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
        from studio.core.tasks.templates import prompt_text

        self.preview_table.setRowCount(0)
        kind = self.task_combo.currentData()
        try:
            if kind == "lm":
                raise ConfigError("continued language modelling uses plain text; see the Data page's preview")
            dataset = self.dataset_combo.currentData()
            if dataset != FILES:
                from studio.core.tasks.demo import demo_task_paths

                paths = [demo_task_paths(dataset)["train"]]
            else:
                paths = [Path(p) for p in self._paths(self.path_edit)]
                if not paths:
                    raise ConfigError("choose training files first")
            fields = [f.strip() for f in self.fields_edit.text().split(";") if f.strip()]
            examples = load_examples(kind, paths, self.format_combo.currentText(), fields)
            template = self.template_edit.text().strip()
            extractive = kind == "qa" and self.qa_mode_combo.currentText() == "extractive"
            headers = ["text", "label"] if kind == "classify" else (["question", "context", "answer"] if extractive else ["model input", "target"])
            self.preview_table.setColumnCount(len(headers))
            self.preview_table.setHorizontalHeaderLabels(headers)
            for e in examples[:30]:
                if kind == "classify":
                    values = [e.source, e.target]
                elif extractive:
                    values = [e.question, e.source, e.target]
                else:
                    values = [prompt_text(kind, template, e), e.target]
                row = self.preview_table.rowCount()
                self.preview_table.insertRow(row)
                for col, value in enumerate(values):
                    self.preview_table.setItem(row, col, QTableWidgetItem(value))
            self.preview_table.resizeColumnsToContents()
            self.preview_status.setStyleSheet("")
            self.preview_status.setText(f"{len(examples):,} training examples; the first {min(30, len(examples))} as the model sees them.")
        except StudioError as e:
            self.preview_status.setStyleSheet("color: #c0392b;")
            self.preview_status.setText(str(e))
        self.right_tabs.setCurrentIndex(1)

    def shutdown(self) -> None:
        self.monitor.shutdown()
