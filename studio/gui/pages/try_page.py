"""Try page: use a model for what it was trained for (Translate, Ask, Summarize, Classify,
Generate), with greedy, beam or sampled decoding; output streams as it is written (drawn in
batches), shaded by the model's confidence, with each token's probability on hover; two
checkpoints side by side."""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from PySide6.QtCore import QEvent, QTimer, Signal
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
from studio.core.decoding.options import HELP as DECODING_HELP
from studio.core.i18n import N_, _
from studio.core.inference.decode_process import DecodeRequest
from studio.gui.widgets.layout import row_widget, wrapping_label
from studio.gui.workers.inference_worker import TryJob, TryRequest

# Translators: the tabs of the Try page, one per thing a model can be asked to do.
TABS = [("translate", N_("Translate")), ("ask", N_("Ask")), ("summarize", N_("Summarize")), ("classify", N_("Classify")),
        ("generate", N_("Generate"))]
PLACEHOLDERS = {"translate": N_("A sentence to translate"), "summarize": N_("A document to summarize"), "classify": N_("A text to classify"),
                "generate": N_("A prompt to continue (may be empty)")}
# Translators: decoding modes: always the likeliest token, beam search, random sampling.
MODES = {"greedy": N_("greedy"), "beam": N_("beam"), "sample": N_("sample")}


class TokenOutputView(QTextEdit):
    """Generated text; each token's background shows the model's confidence, hover shows it."""

    # Tokens are drawn in batches at most this often. Drawing each one as it came (a layout and a
    # repaint per token, about 1 ms for CJK text, twice English's) took CPU from the generating
    # thread on 2 cores: 150 Chinese tokens took 0.86 s in the window against 0.36 s in
    # `studio generate` (benchmarks/gui_responsiveness.py).
    DRAW_INTERVAL_MS = 40

    def __init__(self, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setReadOnly(True)
        self.spans: list[tuple[int, int, float, int]] = []  # start, end, probability, id
        self._starts: list[int] = []  # span starts, for finding the token under the mouse
        self._pending: list[tuple[str, float, int]] = []  # text, probability, id: not drawn yet
        self.draws = 0  # batches drawn (tests check that tokens are not drawn one by one)
        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.setInterval(self.DRAW_INTERVAL_MS)
        self._draw_timer.timeout.connect(self.flush)

    def clear_tokens(self) -> None:
        self._draw_timer.stop()
        self._pending = []
        self.clear()
        self.spans = []
        self._starts = []

    def append_token(self, text: str, probability: float, token_id: int) -> None:
        """Queue a token; it is drawn with the others that arrive within DRAW_INTERVAL_MS."""
        if not text:
            return
        self._pending.append((text, probability, token_id))
        if not self._draw_timer.isActive():
            self._draw_timer.start()

    def flush(self) -> None:
        """Draw the queued tokens now, in one edit (one layout, one repaint)."""
        self._draw_timer.stop()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        for text, probability, token_id in pending:
            start = cursor.position()
            fmt = QTextCharFormat()
            # Confident tokens stay white; doubtful ones turn orange.
            shade = int(255 * max(0.0, min(1.0, probability)))
            fmt.setBackground(QColor(255, 200 + shade * 55 // 255, 150 + shade * 105 // 255))
            cursor.insertText(text, fmt)
            self.spans.append((start, cursor.position(), probability, token_id))
            self._starts.append(start)
        cursor.endEditBlock()
        self.setTextCursor(cursor)  # the view follows the end of the text
        self.draws += 1

    def token_at(self, position: int) -> tuple[float, int] | None:
        i = bisect_right(self._starts, position) - 1
        if i >= 0:
            start, end, p, token_id = self.spans[i]
            if start <= position < end:
                return p, token_id
        return None

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            found = self.token_at(self.cursorForPosition(e.pos()).position())
            if found is not None:
                p, token_id = found
                # Translators: a generated token's tooltip: the probability the model gave it, and its id.
                tip = _("p = {probability} · id {id}") if token_id >= 0 else _("p = {probability}")
                QToolTip.showText(e.globalPos(), tip.format(probability=f"{p:.1%}", id=token_id), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)

    def text(self) -> str:
        self.flush()
        return self.toPlainText()


class TryPage(QWidget):
    go_to_finetune = Signal()
    answered = Signal()  # a request has ended (for tests and automation)

    # The generated tokens are taken from the worker's queue (TokenQueue) and drawn this long
    # after the first of them arrived: a stream shows about 25 times a second.
    DRAIN_MS = TokenOutputView.DRAW_INTERVAL_MS

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryPage")
        self.job = TryJob(self)
        self.job.started.connect(self._on_started)
        self._shut_down = False
        self.job.tokens_ready.connect(self._on_tokens_ready)
        self._drain_timer = QTimer(self)  # takes the generated tokens DRAIN_MS after the first of them
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(self.DRAIN_MS)
        self._drain_timer.timeout.connect(self._drain_tokens)
        self.job.unsupported.connect(self._on_unsupported)
        self.job.pane_done.connect(self._on_pane_done)
        self.job.failed.connect(self._on_failed)
        self.job.ended.connect(self._on_ended)
        self._answering: set[int] = set()  # panes whose model has started answering this request
        self._model_labels: dict[int, str] = {}  # each answering pane's model, as the worker named it

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
        self.mode_combo.currentIndexChanged.connect(lambda _index: self._on_mode(self.mode_combo.currentData()))
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.job.cancel)
        self._on_mode("greedy")
        self._on_compare(self.compare_check.isChecked())
        self.refresh_models()

    # ---- layout -------------------------------------------------------------------------------

    def _build_models(self) -> QGroupBox:
        self.model_combos = [QComboBox(objectName="tryModelCombo"), QComboBox(objectName="tryModelCombo2")]
        self.browse_buttons = [QPushButton(_("Browse…"), objectName="tryBrowseButton"), QPushButton(_("Browse…"), objectName="tryBrowseButton2")]
        self.compare_check = QCheckBox(_("Compare with a second model"), objectName="compareCheck")
        models = QGroupBox(_("Model"))
        form = QFormLayout(models)
        for i, (combo, button) in enumerate(zip(self.model_combos, self.browse_buttons, strict=True)):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(44)  # a run's name with its architecture, state and step fits
            combo.currentTextChanged.connect(combo.setToolTip)  # and a longer one shows whole on hover
            form.addRow(_("Model") if i == 0 else _("Compare with"), row_widget(combo, button))
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
                fields["context"] = QPlainTextEdit(objectName="askContext", placeholderText=_("The passage that holds the answer"))
                fields["question"] = QLineEdit(objectName="askQuestion", placeholderText=_("The question"))
                form.addRow(_("Context"), fields["context"])
                form.addRow(_("Question"), fields["question"])
            else:
                fields["text"] = QPlainTextEdit(objectName=f"{key}Input", placeholderText=_(PLACEHOLDERS[key]))
                form.addRow(_("Input"), fields["text"])
            self.inputs[key] = fields
            self.tabs.addTab(page, _(label))
        return self.tabs

    def _build_decoding(self) -> QGroupBox:
        self.mode_combo = QComboBox(objectName="decodingModeCombo")
        for mode, label in MODES.items():
            self.mode_combo.addItem(_(label), mode)
        self.beam_spin = QSpinBox(objectName="beamSizeSpin", minimum=1, maximum=32, value=4)
        self.temperature_spin = QDoubleSpinBox(objectName="temperatureSpin", minimum=0.05, maximum=5.0, value=0.8, singleStep=0.05)
        self.top_k_spin = QSpinBox(objectName="topKSpin", minimum=0, maximum=100_000, value=0)
        self.top_p_spin = QDoubleSpinBox(objectName="topPSpin", minimum=0.01, maximum=1.0, value=1.0, singleStep=0.05)
        self.max_tokens_spin = QSpinBox(objectName="maxTokensSpin", minimum=1, maximum=4096, value=DEFAULT_MAX_NEW_TOKENS)
        self.seed_spin = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1, value=0)
        for key, widget in (("mode", self.mode_combo), ("beam_size", self.beam_spin), ("temperature", self.temperature_spin),
                            ("top_k", self.top_k_spin), ("top_p", self.top_p_spin), ("max_new_tokens", self.max_tokens_spin),
                            ("seed", self.seed_spin)):
            widget.setToolTip(_(DECODING_HELP[key]))  # what the setting does, from the engine
        decoding = QGroupBox(_("Decoding"))
        form = QFormLayout(decoding)
        for label, widget in ((_("Mode"), self.mode_combo), (_("Beams"), self.beam_spin), (_("Temperature"), self.temperature_spin),
                              (_("Top-k (0: off)"), self.top_k_spin), (_("Top-p"), self.top_p_spin), (_("Max tokens"), self.max_tokens_spin),
                              (_("Seed (0: random)"), self.seed_spin)):
            form.addRow(label, widget)
        return decoding

    def _build_buttons(self) -> QHBoxLayout:
        # Translators: the button that asks the model (run it on the input).
        self.run_button = QPushButton(_("Run"), objectName="runTryButton")
        self.cancel_button = QPushButton(_("Cancel"), objectName="cancelTryButton")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        return buttons

    def _build_outputs(self) -> QHBoxLayout:
        self.outputs = [TokenOutputView("tryOutput"), TokenOutputView("tryOutput2")]
        self.status_labels = [wrapping_label("", "tryStatus"), wrapping_label("", "tryStatus2")]
        self.finetune_buttons = [QPushButton(_("Go to Fine-tune"), objectName="goToFinetuneButton"),
                                 QPushButton(_("Go to Fine-tune"), objectName="goToFinetuneButton2")]
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
        self.job.forget_models()  # the run may have new weights since it was last loaded
        if not self._shut_down:  # a run that ends while the window closes must not start a process
            try:
                self.job.client.start()  # its PyTorch import overlaps with the person typing a prompt
            except OSError:
                pass  # not startable now: the next Run tries again and says why in the pane

    def _browse(self, pane: int) -> None:
        from studio.core.paths import runs_dir

        folder = QFileDialog.getExistingDirectory(self, _("Choose a run or checkpoint folder"), str(runs_dir()))
        if folder:
            self.set_model(Path(folder), pane)

    def _on_compare(self, on: bool) -> None:
        self.panes[1].setVisible(on)
        self.model_combos[1].setEnabled(on)  # the second model is only used when comparing
        self.browse_buttons[1].setEnabled(on)

    def _on_mode(self, mode: str) -> None:
        self.beam_spin.setEnabled(mode == "beam")
        for w in (self.temperature_spin, self.top_k_spin, self.top_p_spin, self.seed_spin):
            w.setEnabled(mode == "sample")

    # ---- running ------------------------------------------------------------------------------

    def current_tab(self) -> str:
        return TABS[self.tabs.currentIndex()][0]

    def decoding_settings(self) -> DecodingSettings:
        """The decoding form as settings."""
        return DecodingSettings(
            self.mode_combo.currentData(), self.temperature_spin.value(), self.top_k_spin.value(), self.top_p_spin.value(),
            self.beam_spin.value(), max_new_tokens=self.max_tokens_spin.value(), seed=self.seed_spin.value() or None,
        )

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

        decoding = self.decoding_settings()
        panes = [0, 1] if self.compare_check.isChecked() else [0]
        requests = []
        for pane in panes:
            self.outputs[pane].clear_tokens()
            self.finetune_buttons[pane].hide()
            ref = self.model_combos[pane].currentData()
            if not ref:
                self.status_labels[pane].setText(_("Choose a model: train one on the Train page, or browse to a run folder."))
                continue
            self.status_labels[pane].setText(_("Loading the model…"))
            requests.append(TryRequest(pane, DecodeRequest(ref, tab, text_of("text"), text_of("context"), text_of("question"),
                                                           decoding)))
        if not requests:
            self.answered.emit()
            return
        self._answering = set()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.job.start(requests)

    def _on_started(self, pane: int, label: str) -> None:
        self._answering.add(pane)
        self._model_labels[pane] = label
        # Translators: {model} is the model's label (its run's name, architecture and step).
        self.status_labels[pane].setText(_("{model}: answering…").format(model=label))
        self.status_labels[pane].setStyleSheet("")

    def _on_tokens_ready(self) -> None:
        if not self._drain_timer.isActive():
            self._drain_timer.start()

    def _drain_tokens(self) -> None:
        """Draw every token generated so far (one edit per pane)."""
        self._drain_timer.stop()
        panes = set()
        for pane, token_id, text, probability in self.job.take_tokens():
            self.outputs[pane].append_token(text, probability, token_id)
            panes.add(pane)
        for pane in panes:
            self.outputs[pane].flush()

    def _on_unsupported(self, pane: int, why: str) -> None:
        self.status_labels[pane].setText(why)
        self.status_labels[pane].setStyleSheet("color: #b7950b;")
        self.finetune_buttons[pane].show()

    def _on_pane_done(self, pane: int, how: str) -> None:
        self._drain_tokens()
        self.outputs[pane].flush()  # the whole answer is on screen when the status says done
        if pane not in self._answering:  # cancelled before its model was loaded
            # Only a cancel ends a pane whose model never started answering.
            self.status_labels[pane].setText(_("Cancelled before the model answered."))
            return
        # Translators: how a pane's answer ended: {how} is "cancelled" or "done (12 tokens)".
        self.status_labels[pane].setText(_("{model}: {how}").format(model=self._model_labels.get(pane, ""), how=how))

    def _on_failed(self, pane: int, message: str) -> None:
        self._drain_tokens()
        self.outputs[pane].flush()
        self.status_labels[pane].setText(message)
        self.status_labels[pane].setStyleSheet("color: #c0392b;")

    def _on_ended(self) -> None:
        self._drain_tokens()
        for output in self.outputs:
            output.flush()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.answered.emit()

    def shutdown(self) -> None:
        self._shut_down = True
        self.job.close()
