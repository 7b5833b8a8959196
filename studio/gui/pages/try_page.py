"""Try page: use a model for what it was trained for (Translate, Ask, Summarize, Classify,
Generate), with greedy, beam or sampled decoding; output streams token by token, shaded by the
model's confidence, with each token's probability on hover; two checkpoints side by side."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Signal
from PySide6.QtGui import QColor, QHelpEvent, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTextEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from studio.core.decoding.options import DEFAULT_MAX_NEW_TOKENS, DecodingSettings
from studio.gui.widgets.layout import row_widget, wrapping_label
from studio.gui.workers.inference_worker import TryJob, TryRequest

TABS = [("translate", "Translate"), ("ask", "Ask"), ("summarize", "Summarize"), ("classify", "Classify"), ("generate", "Generate")]
PLACEHOLDERS = {"translate": "A sentence to translate", "summarize": "A document to summarize", "classify": "A text to classify",
                "generate": "A prompt to continue (may be empty)"}


class TokenOutputView(QTextEdit):
    """Generated text; each token's background shows the model's confidence, hover shows it."""

    def __init__(self, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setReadOnly(True)
        self.spans: list[tuple[int, int, float, int]] = []  # start, end, probability, id

    def clear_tokens(self) -> None:
        self.clear()
        self.spans = []

    def append_token(self, text: str, probability: float, token_id: int) -> None:
        if not text:
            return
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        start = cursor.position()
        fmt = QTextCharFormat()
        # Confident tokens stay white; doubtful ones turn orange.
        shade = int(255 * max(0.0, min(1.0, probability)))
        fmt.setBackground(QColor(255, 200 + shade * 55 // 255, 150 + shade * 105 // 255))
        cursor.insertText(text, fmt)
        self.spans.append((start, cursor.position(), probability, token_id))
        self.setTextCursor(cursor)

    def token_at(self, position: int) -> tuple[float, int] | None:
        for start, end, p, token_id in self.spans:
            if start <= position < end:
                return p, token_id
        return None

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            found = self.token_at(self.cursorForPosition(e.pos()).position())
            if found is not None:
                p, token_id = found
                QToolTip.showText(e.globalPos(), f"p = {p:.1%}" + (f" · id {token_id}" if token_id >= 0 else ""), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)

    def text(self) -> str:
        return self.toPlainText()


class TryPage(QWidget):
    go_to_finetune = Signal()
    answered = Signal()  # a request has ended (for tests and automation)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryPage")
        self.job = TryJob(self)
        self.job.started.connect(self._on_started)
        self.job.token.connect(self._on_token)
        self.job.unsupported.connect(self._on_unsupported)
        self.job.pane_done.connect(self._on_pane_done)
        self.job.failed.connect(self._on_failed)
        self.job.ended.connect(self._on_ended)
        self._answering: set[int] = set()  # panes whose model has started answering this request

        self.panes: list[QWidget] = []
        left = QVBoxLayout()
        left.addWidget(self._build_models())
        left.addWidget(self._build_inputs(), 1)
        left.addWidget(self._build_decoding())
        left.addLayout(self._build_buttons())
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(self._build_outputs(), 3)

        self.compare_check.toggled.connect(self._on_compare)
        self.mode_combo.currentTextChanged.connect(self._on_mode)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.job.cancel)
        self._on_mode("greedy")
        self.refresh_models()

    # ---- layout -------------------------------------------------------------------------------

    def _build_models(self) -> QGroupBox:
        self.model_combos = [QComboBox(objectName="tryModelCombo"), QComboBox(objectName="tryModelCombo2")]
        self.browse_buttons = [QPushButton("Browse…", objectName="tryBrowseButton"), QPushButton("Browse…", objectName="tryBrowseButton2")]
        self.compare_check = QCheckBox("Compare with a second model", objectName="compareCheck")
        models = QGroupBox("Model")
        form = QFormLayout(models)
        for i, (combo, button) in enumerate(zip(self.model_combos, self.browse_buttons, strict=True)):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            form.addRow("Model" if i == 0 else "Compare with", row_widget(combo, button))
            button.clicked.connect(lambda _=False, k=i: self._browse(k))
            if i == 0:
                form.addRow("", self.compare_check)
        return models

    def _build_inputs(self) -> QTabWidget:
        self.inputs: dict[str, dict[str, QWidget]] = {}
        self.tabs = QTabWidget(objectName="tryTabs")
        for key, label in TABS:
            page = QWidget()
            form = QFormLayout(page)
            fields: dict[str, QWidget] = {}
            if key == "ask":
                fields["context"] = QPlainTextEdit(objectName="askContext", placeholderText="The passage that holds the answer")
                fields["question"] = QLineEdit(objectName="askQuestion", placeholderText="The question")
                form.addRow("Context", fields["context"])
                form.addRow("Question", fields["question"])
            else:
                fields["text"] = QPlainTextEdit(objectName=f"{key}Input", placeholderText=PLACEHOLDERS[key])
                form.addRow("Input", fields["text"])
            self.inputs[key] = fields
            self.tabs.addTab(page, label)
        return self.tabs

    def _build_decoding(self) -> QGroupBox:
        self.mode_combo = QComboBox(objectName="decodingModeCombo")
        self.mode_combo.addItems(["greedy", "beam", "sample"])
        self.beam_spin = QSpinBox(objectName="beamSizeSpin", minimum=1, maximum=32, value=4)
        self.temperature_spin = QDoubleSpinBox(objectName="temperatureSpin", minimum=0.05, maximum=5.0, value=0.8, singleStep=0.05)
        self.top_k_spin = QSpinBox(objectName="topKSpin", minimum=0, maximum=100_000, value=0)
        self.top_p_spin = QDoubleSpinBox(objectName="topPSpin", minimum=0.01, maximum=1.0, value=1.0, singleStep=0.05)
        self.max_tokens_spin = QSpinBox(objectName="maxTokensSpin", minimum=1, maximum=4096, value=DEFAULT_MAX_NEW_TOKENS)
        self.seed_spin = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1, value=0)
        self.seed_spin.setToolTip("The same seed samples the same text; 0 draws a new one each time")
        decoding = QGroupBox("Decoding")
        form = QFormLayout(decoding)
        for label, widget in (("Mode", self.mode_combo), ("Beams", self.beam_spin), ("Temperature", self.temperature_spin),
                              ("Top-k (0: off)", self.top_k_spin), ("Top-p", self.top_p_spin), ("Max tokens", self.max_tokens_spin),
                              ("Seed (0: random)", self.seed_spin)):
            form.addRow(label, widget)
        return decoding

    def _build_buttons(self) -> QHBoxLayout:
        self.run_button = QPushButton("Run", objectName="runTryButton")
        self.cancel_button = QPushButton("Cancel", objectName="cancelTryButton")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        return buttons

    def _build_outputs(self) -> QHBoxLayout:
        self.outputs = [TokenOutputView("tryOutput"), TokenOutputView("tryOutput2")]
        self.status_labels = [wrapping_label("", "tryStatus"), wrapping_label("", "tryStatus2")]
        self.finetune_buttons = [QPushButton("Go to Fine-tune", objectName="goToFinetuneButton"),
                                 QPushButton("Go to Fine-tune", objectName="goToFinetuneButton2")]
        row = QHBoxLayout()
        for out, status, button in zip(self.outputs, self.status_labels, self.finetune_buttons, strict=True):
            pane = QWidget()
            col = QVBoxLayout(pane)
            col.setContentsMargins(0, 0, 0, 0)
            col.addWidget(status)
            col.addWidget(out, 1)
            col.addWidget(button)
            button.hide()
            button.clicked.connect(self.go_to_finetune)
            row.addWidget(pane)
            self.panes.append(pane)
        self.panes[1].hide()
        return row

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.refresh_models()

    # ---- models -------------------------------------------------------------------------------

    def refresh_models(self, select: Path | None = None) -> None:
        from studio.core.runs.index import list_runs

        runs = list_runs(with_checkpoint=True)
        for k, combo in enumerate(self.model_combos):
            current = str(select) if (select is not None and k == 0) else combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for run in runs:
                combo.addItem(run.label, str(run.path))
            if current:
                index = combo.findData(current)
                if index < 0:
                    combo.addItem(Path(current).name, current)
                    index = combo.count() - 1
                combo.setCurrentIndex(index)
            combo.blockSignals(False)

    def set_model(self, ref: Path, pane: int = 0) -> None:
        self.refresh_models()
        combo = self.model_combos[pane]
        index = combo.findData(str(ref))
        if index < 0:
            combo.addItem(Path(ref).name, str(ref))
            index = combo.count() - 1
        combo.setCurrentIndex(index)
        self.job.cache.clear()  # the run may have new weights since it was last loaded

    def _browse(self, pane: int) -> None:
        from studio.core.paths import runs_dir

        folder = QFileDialog.getExistingDirectory(self, "Choose a run or checkpoint folder", str(runs_dir()))
        if folder:
            self.set_model(Path(folder), pane)

    def _on_compare(self, on: bool) -> None:
        self.panes[1].setVisible(on)

    def _on_mode(self, mode: str) -> None:
        self.beam_spin.setEnabled(mode == "beam")
        for w in (self.temperature_spin, self.top_k_spin, self.top_p_spin, self.seed_spin):
            w.setEnabled(mode == "sample")

    # ---- running ------------------------------------------------------------------------------

    def current_tab(self) -> str:
        return TABS[self.tabs.currentIndex()][0]

    def run(self) -> None:
        if self.job.running:
            return
        tab = self.current_tab()
        fields = self.inputs[tab]

        def text_of(name: str) -> str:
            w = fields.get(name)
            if isinstance(w, QPlainTextEdit):
                return w.toPlainText()
            if isinstance(w, QLineEdit):
                return w.text()
            return ""

        decoding = DecodingSettings(
            self.mode_combo.currentText(), self.temperature_spin.value(), self.top_k_spin.value(), self.top_p_spin.value(),
            self.beam_spin.value(), max_new_tokens=self.max_tokens_spin.value(), seed=self.seed_spin.value() or None,
        )
        panes = [0, 1] if self.compare_check.isChecked() else [0]
        requests = []
        for pane in panes:
            self.outputs[pane].clear_tokens()
            self.finetune_buttons[pane].hide()
            ref = self.model_combos[pane].currentData()
            if not ref:
                self.status_labels[pane].setText("Choose a model: train one on the Train page, or browse to a run folder.")
                continue
            self.status_labels[pane].setText("Loading the model…")
            requests.append(TryRequest(pane, ref, tab, text_of("text"), text_of("context"), text_of("question"), decoding))
        if not requests:
            self.answered.emit()
            return
        self._answering = set()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.job.start(requests)

    def _on_started(self, pane: int, label: str) -> None:
        self._answering.add(pane)
        self.status_labels[pane].setText(f"{label}: answering…")
        self.status_labels[pane].setStyleSheet("")

    def _on_token(self, pane: int, token_id: int, text: str, probability: float) -> None:
        self.outputs[pane].append_token(text, probability, token_id)

    def _on_unsupported(self, pane: int, why: str) -> None:
        self.status_labels[pane].setText(why)
        self.status_labels[pane].setStyleSheet("color: #b7950b;")
        self.finetune_buttons[pane].show()

    def _on_pane_done(self, pane: int, how: str) -> None:
        if pane not in self._answering:  # cancelled before its model was loaded
            self.status_labels[pane].setText(how.capitalize() + " before the model answered.")
            return
        label = self.status_labels[pane].text().removesuffix("answering…")
        self.status_labels[pane].setText(f"{label}{how}")

    def _on_failed(self, pane: int, message: str) -> None:
        self.status_labels[pane].setText(message)
        self.status_labels[pane].setStyleSheet("color: #c0392b;")

    def _on_ended(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.answered.emit()

    def shutdown(self) -> None:
        self.job.cancel_and_wait()
