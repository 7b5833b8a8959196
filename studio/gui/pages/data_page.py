"""Data page: choose a corpus, see its encoding and text, pick a tokenizer and splits, and build.

Building (download, scan, tokenizer training, token cache) runs on a worker thread with a
progress bar and can be cancelled. Afterwards the page shows the tokenization as chips and the
corpus statistics with a histogram of tokens per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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
    QVBoxLayout,
    QWidget,
)

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.data.datasets import DATASETS, DEMO_TITLES
from studio.core.errors import ConfigIssue, StudioError
from studio.gui.session import StudioSession
from studio.gui.widgets.layout import VerticalScrollWidget, row_widget
from studio.gui.widgets.token_chips import TokenChipsWidget
from studio.gui.workers.data_worker import DataBuild

FILES = "files"
LANGUAGES = ["en", "zh", "fr", "de", "es", "it", "pt", "nl", "ja", "ru", "xx"]


class DataPage(QWidget):
    corpus_built = Signal(object)

    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dataPage")
        self.session = session
        self.setAcceptDrops(True)
        self.build = DataBuild(self)
        self.build.progress.connect(self._on_progress)
        self.build.succeeded.connect(self._on_built)
        self.build.failed.connect(self._on_failed)
        self.build.cancelled.connect(lambda: self._set_status("Build cancelled.", error=False))
        self.build.ended.connect(self._on_build_ended)
        self._built_for: tuple[Any, Any] | None = None

        # ---- source -------------------------------------------------------------------------
        source = QGroupBox("Corpus")
        form = QFormLayout(source)
        self.dataset_combo = QComboBox(objectName="datasetCombo")
        self.dataset_combo.addItem("Files (choose below)", FILES)
        for name, title in DEMO_TITLES.items():
            self.dataset_combo.addItem(title, name)
        for name, spec in DATASETS.items():
            self.dataset_combo.addItem(f"{spec.title} (downloads once)", name)
        self.dataset_combo.setToolTip("Built-in corpora: Studio's own demo stories, or standard datasets fetched with checksums")
        form.addRow("Source", self.dataset_combo)
        self.path_edit = QLineEdit(objectName="corpusPathEdit")
        self.path_edit.setPlaceholderText("Files or folders, separated by ;  (or drop them here)")
        form.addRow("Files", self.path_edit)
        self.open_files_button = QPushButton("Open files…", objectName="openFilesButton")
        self.open_folder_button = QPushButton("Open folder…", objectName="openFolderButton")
        form.addRow("", row_widget(self.open_files_button, self.open_folder_button, stretch_first=False))
        self.format_combo = QComboBox(objectName="formatCombo")
        self.format_combo.addItems(["auto", "text", "csv", "tsv", "jsonl"])
        form.addRow("Format", self.format_combo)
        self.column_combo = QComboBox(objectName="columnCombo")
        self.column_combo.setEditable(True)
        self.column_combo.setToolTip("CSV/TSV: the column with the text. JSONL: the field with the text.")
        self.column_label = QLabel("Column / field")
        form.addRow(self.column_label, self.column_combo)
        self.encoding_label = QLabel("—", objectName="encodingLabel")
        form.addRow("Encoding", self.encoding_label)

        # ---- split --------------------------------------------------------------------------
        split = QGroupBox("Split")
        sform = QFormLayout(split)
        self.valid_spin = QDoubleSpinBox(objectName="validFractionSpin", decimals=2, singleStep=0.01, maximum=0.5)
        self.test_spin = QDoubleSpinBox(objectName="testFractionSpin", decimals=2, singleStep=0.01, maximum=0.5)
        self.split_mode_combo = QComboBox(objectName="splitModeCombo")
        self.split_mode_combo.addItems(["auto", "tail", "shuffle"])
        self.split_seed_spin = QSpinBox(objectName="splitSeedSpin", maximum=2**31 - 1)
        sform.addRow("Validation share", self.valid_spin)
        sform.addRow("Test share", self.test_spin)
        sform.addRow("Split by", self.split_mode_combo)
        sform.addRow("Seed", self.split_seed_spin)

        # ---- tokenizer ----------------------------------------------------------------------
        tok = QGroupBox("Tokenizer")
        tform = QFormLayout(tok)
        self.tokenizer_combo = QComboBox(objectName="tokenizerCombo")
        for kind, label in (("char", "Character"), ("word", "Word (spaCy)"), ("bpe", "Subword (BPE)")):
            self.tokenizer_combo.addItem(label, kind)
        self.language_combo = QComboBox(objectName="languageCombo")
        self.language_combo.setEditable(True)
        self.language_combo.addItems(LANGUAGES)
        self.vocab_spin = QSpinBox(objectName="vocabSizeSpin", minimum=16, maximum=1_000_000, singleStep=1000)
        self.min_freq_spin = QSpinBox(objectName="minFrequencySpin", minimum=1, maximum=1_000_000)
        self.lowercase_check = QCheckBox("Lowercase first", objectName="lowercaseCheck")
        tform.addRow("Kind", self.tokenizer_combo)
        self.language_label = QLabel("Language")
        tform.addRow(self.language_label, self.language_combo)
        tform.addRow("Vocabulary size", self.vocab_spin)
        tform.addRow("Minimum frequency", self.min_freq_spin)
        tform.addRow("", self.lowercase_check)

        # ---- build --------------------------------------------------------------------------
        self.build_button = QPushButton("Build", objectName="buildButton")
        self.build_button.setToolTip("Tokenize the corpus into the token cache (only once per corpus and tokenizer)")
        self.cancel_button = QPushButton("Cancel", objectName="cancelBuildButton")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(objectName="buildProgress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status_label = QLabel(objectName="dataStatusLabel")
        self.status_label.setWordWrap(True)
        build_row = QHBoxLayout()
        build_row.addWidget(self.build_button)
        build_row.addWidget(self.cancel_button)

        left = QWidget()
        lcol = QVBoxLayout(left)
        for w in (source, split, tok):
            lcol.addWidget(w)
        lcol.addLayout(build_row)
        lcol.addWidget(self.progress)
        lcol.addWidget(self.status_label)
        lcol.addStretch(1)
        left_scroll = VerticalScrollWidget(left)

        # ---- right: preview and statistics --------------------------------------------------
        self.raw_preview = QPlainTextEdit(objectName="rawPreview")
        self.raw_preview.setReadOnly(True)
        self.raw_preview.setPlaceholderText("Choose a corpus to see its first lines here.")
        self.chips = TokenChipsWidget()
        self.chips_hint = QLabel("Build to see how the tokenizer splits this text (hover a token for its id).")
        self.stats_table = QTableWidget(objectName="statsTable")
        self.stats_table.setColumnCount(4)
        self.stats_table.setHorizontalHeaderLabels(["", "train", "valid", "test"])
        self.stats_table.verticalHeader().hide()
        self.stats_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary_label = QLabel(objectName="statsSummaryLabel")
        self.summary_label.setWordWrap(True)
        self.histogram = pg.PlotWidget(title="Tokens per line / row")
        self.histogram.setObjectName("lengthHistogram")
        self.histogram.setBackground("w")
        self.histogram.setLabel("bottom", "tokens")
        self.histogram.setLabel("left", "lines / rows")
        self.histogram.setMinimumHeight(160)
        self._bars: pg.BarGraphItem | None = None

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self._titled("Raw text", self.raw_preview))
        right.addWidget(self._titled("Tokens", self.chips, self.chips_hint))
        stats_box = QWidget()
        sl = QVBoxLayout(stats_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("<b>Statistics</b>"))
        sl.addWidget(self.summary_label)
        row = QHBoxLayout()
        row.addWidget(self.stats_table, 1)
        row.addWidget(self.histogram, 1)
        sl.addLayout(row)
        right.addWidget(stats_box)
        right.setSizes([220, 200, 260])

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([420, 860])
        outer = QVBoxLayout(self)
        outer.addWidget(splitter)

        self._load_defaults()
        for signal in (
            self.dataset_combo.currentIndexChanged, self.path_edit.editingFinished, self.format_combo.currentIndexChanged,
            self.column_combo.currentTextChanged, self.valid_spin.valueChanged, self.test_spin.valueChanged,
            self.split_mode_combo.currentIndexChanged, self.split_seed_spin.valueChanged,
            self.tokenizer_combo.currentIndexChanged, self.language_combo.currentTextChanged, self.vocab_spin.valueChanged,
            self.min_freq_spin.valueChanged, self.lowercase_check.toggled,
        ):
            signal.connect(self._on_settings_changed)
        self.dataset_combo.currentIndexChanged.connect(self.refresh_preview)
        self.path_edit.editingFinished.connect(self.refresh_preview)
        self.format_combo.currentIndexChanged.connect(self.refresh_preview)
        self.column_combo.currentTextChanged.connect(self._refresh_preview_text)
        self.open_files_button.clicked.connect(self.choose_files)
        self.open_folder_button.clicked.connect(self.choose_folder)
        self.build_button.clicked.connect(self.start_build)
        self.cancel_button.clicked.connect(self.build.cancel)
        self._on_settings_changed()
        self.refresh_preview()

    @staticmethod
    def _titled(title: str, *widgets: QWidget) -> QWidget:
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(QLabel(f"<b>{title}</b>"))
        for w in widgets:
            col.addWidget(w)
        return box

    # ---- settings <-> widgets -----------------------------------------------------------------

    def _load_defaults(self) -> None:
        tables = StudioSession.saved_tables()
        try:
            data = DataConfig.from_dict(tables.get("data", {}))
            tok = TokenizerConfig.from_dict(tables.get("tokenizer", {}))
        except StudioError:
            data, tok = DataConfig(), TokenizerConfig()
        self.apply_settings(data, tok)

    def apply_settings(self, data: DataConfig, tok: TokenizerConfig) -> None:
        widgets = [self.dataset_combo, self.path_edit, self.format_combo, self.column_combo, self.valid_spin, self.test_spin,
                   self.split_mode_combo, self.split_seed_spin, self.tokenizer_combo, self.language_combo, self.vocab_spin,
                   self.min_freq_spin, self.lowercase_check]
        for w in widgets:
            w.blockSignals(True)
        try:
            index = self.dataset_combo.findData(FILES if data.paths else data.dataset)
            self.dataset_combo.setCurrentIndex(max(0, index))
            self.path_edit.setText("; ".join(data.paths))
            self.format_combo.setCurrentText(data.format)
            self.column_combo.setCurrentText(data.json_field if data.format == "jsonl" else data.column)
            self.valid_spin.setValue(data.valid_fraction)
            self.test_spin.setValue(data.test_fraction)
            self.split_mode_combo.setCurrentText(data.split_mode)
            self.split_seed_spin.setValue(data.split_seed)
            self.tokenizer_combo.setCurrentIndex(max(0, self.tokenizer_combo.findData(tok.kind)))
            self.language_combo.setCurrentText(tok.language)
            self.vocab_spin.setValue(tok.vocab_size)
            self.min_freq_spin.setValue(tok.min_frequency)
            self.lowercase_check.setChecked(tok.lowercase)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._on_settings_changed()
        self.refresh_preview()

    def paths(self) -> list[str]:
        return [p.strip() for p in self.path_edit.text().split(";") if p.strip()]

    def settings(self) -> tuple[DataConfig | None, TokenizerConfig | None, list[ConfigIssue]]:
        dataset = self.dataset_combo.currentData()
        fmt = self.format_combo.currentText()
        column = self.column_combo.currentText().strip() or "text"
        values = {
            "dataset": "demo" if dataset == FILES else dataset,
            "paths": self.paths() if dataset == FILES else [],
            "format": fmt,
            "valid_fraction": round(self.valid_spin.value(), 4),
            "test_fraction": round(self.test_spin.value(), 4),
            "split_mode": self.split_mode_combo.currentText(),
            "split_seed": self.split_seed_spin.value(),
        }
        if self._current_format() == "jsonl":
            values["json_field"] = column
        elif self._current_format() in ("csv", "tsv"):
            values["column"] = column
        issues: list[ConfigIssue] = []
        if dataset == FILES and not values["paths"]:
            issues.append(ConfigIssue("data.paths", "choose corpus files, or a built-in corpus"))
        data = DataConfig.from_dict(values, issues)
        tok = TokenizerConfig.from_dict(
            {
                "kind": self.tokenizer_combo.currentData(),
                "vocab_size": self.vocab_spin.value(),
                "min_frequency": self.min_freq_spin.value(),
                "language": self.language_combo.currentText().strip(),
                "lowercase": self.lowercase_check.isChecked(),
            },
            issues,
        )
        return (None, None, issues) if issues else (data, tok, issues)

    def _current_format(self) -> str:
        fmt = self.format_combo.currentText()
        if fmt != "auto":
            return fmt
        paths = self.paths()
        if self.dataset_combo.currentData() != FILES:
            spec = DATASETS.get(self.dataset_combo.currentData())
            return spec.format if spec else "text"
        if paths:
            from studio.core.data.corpus import SUFFIX_FORMATS

            return SUFFIX_FORMATS.get(Path(paths[0]).suffix.lower(), "text")
        return "text"

    def _on_settings_changed(self, *_args: object, refresh_status: bool = True) -> None:
        from_files = self.dataset_combo.currentData() == FILES
        for w in (self.path_edit, self.open_files_button, self.open_folder_button, self.format_combo):
            w.setEnabled(from_files)
        fmt = self._current_format()
        self.column_combo.setEnabled(fmt in ("csv", "tsv", "jsonl"))
        self.column_label.setText({"jsonl": "JSON field", "csv": "Column", "tsv": "Column"}.get(fmt, "Column / field"))
        is_word = self.tokenizer_combo.currentData() == "word"
        self.language_combo.setEnabled(is_word)
        data, tok, issues = self.settings()
        if issues:
            self.session.update("Data", issues)
        else:
            self.session.update("Data", [], data=data, tokenizer=tok)
        built = self._built_for == (data, tok) if data is not None else False
        if not built and self.session.prepared is not None:
            self.session.set_prepared(None)  # the built corpus no longer matches the settings
        self.build_button.setEnabled(not issues and not self.build.running)
        if not refresh_status or self.build.running:
            return
        if issues:
            self._set_status(str(issues[0].message), error=True)
        elif not built:
            self._set_status("")

    # ---- choosing files -----------------------------------------------------------------------

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open corpus files", "", "Text, CSV, TSV, JSONL (*.txt *.md *.csv *.tsv *.jsonl *.json);;All files (*)")
        if files:
            self.set_paths(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of text files")
        if folder:
            self.set_paths([folder])

    def set_paths(self, paths: list[str]) -> None:
        """Use these files (also how File > Open corpus and drag-and-drop land here)."""
        self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(FILES))
        self.path_edit.setText("; ".join(paths))
        self._on_settings_changed()
        self.refresh_preview()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.set_paths(paths)
            event.acceptProposedAction()

    # ---- preview ------------------------------------------------------------------------------

    def refresh_preview(self) -> None:
        dataset = self.dataset_combo.currentData()
        self.raw_preview.clear()
        self.encoding_label.setText("—")
        if dataset != FILES:
            from studio.core.data.datasets import dataset_folder, is_available

            if not is_available(dataset):
                self.raw_preview.setPlainText(f"{self.dataset_combo.currentText()}\n\nDownloaded (with a checksum check) when you press Build; then kept in {dataset_folder(dataset)}.")
                return
        self._refresh_preview_text()

    def _refresh_preview_text(self) -> None:
        from studio.core.data.preview import preview_corpus

        dataset = self.dataset_combo.currentData()
        try:
            if dataset == FILES:
                paths = self.paths()
                if not paths:
                    return
            else:
                from studio.core.data.datasets import is_available, resolve_dataset

                if not is_available(dataset):
                    return
                paths = [str(p) for p in resolve_dataset(dataset).train]
            fmt = self._current_format()
            column = self.column_combo.currentText().strip() or "text"
            preview = preview_corpus(paths, fmt, column=column, json_field=column)
        except StudioError as e:
            self._set_status(str(e), error=True)
            self.raw_preview.clear()
            return
        except OSError as e:
            self._set_status(f"cannot read the corpus: {e}", error=True)
            return
        self.encoding_label.setText(f"{preview.encoding} ({preview.encoding_reason})")
        if preview.columns and [self.column_combo.itemText(i) for i in range(self.column_combo.count())] != preview.columns:
            current = self.column_combo.currentText()
            self.column_combo.blockSignals(True)
            self.column_combo.clear()
            self.column_combo.addItems(preview.columns)
            self.column_combo.setCurrentText(current if current in preview.columns else ("text" if "text" in preview.columns else preview.columns[0]))
            self.column_combo.blockSignals(False)
            self._on_settings_changed()
            preview = preview_corpus(paths, fmt, column=self.column_combo.currentText(), json_field=self.column_combo.currentText())
        more = f"  ({len(preview.files)} files)" if len(preview.files) > 1 else ""
        self.raw_preview.setPlainText(preview.text)
        self.raw_preview.setToolTip(f"{preview.files[0]}{more}")
        self._show_chips()

    # ---- building -----------------------------------------------------------------------------

    def start_build(self) -> None:
        data, tok, issues = self.settings()
        if issues or data is None or tok is None:
            return
        self._pending = (data, tok)
        self.build_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self._set_status("Building…")
        self.build.start(data, tok)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
        else:
            self.progress.setRange(0, 0)
        self.progress.setFormat(f"{stage} %p%")

    def _on_built(self, prepared: Any) -> None:
        self._built_for = self._pending
        self.session.set_prepared(prepared)
        self._show_stats(prepared)
        self._show_chips()
        source = "from the token cache" if prepared.cache_hit else "built"
        self._set_status(f"Ready: {prepared.stats.tokenizer}, {prepared.stats.splits['train'].tokens:,} training tokens ({source} in {prepared.seconds:.1f} s).")
        self.corpus_built.emit(prepared)
        if self.dataset_combo.currentData() != FILES:
            self._refresh_preview_text()

    def _on_failed(self, message: str) -> None:
        self._set_status(message, error=True)

    def _on_build_ended(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.session.prepared is not None else 0)
        self.progress.setFormat("")
        self._on_settings_changed(refresh_status=False)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c0392b;" if error else "")

    def _show_chips(self) -> None:
        prepared = self.session.prepared
        if prepared is None:
            self.chips.set_tokens([])
            self.chips_hint.show()
            return
        text = self.raw_preview.toPlainText()[:600]
        pieces = prepared.tokenizer.pieces(text)
        names = {i: prepared.tokenizer.id_to_token(i) for _, i in pieces}
        self.chips.set_tokens(pieces, names)
        self.chips_hint.setVisible(not pieces)

    def _show_stats(self, prepared: Any) -> None:
        stats = prepared.stats
        rows = [("characters", "characters"), ("lines / rows", "records"), ("tokens", "tokens"), ("unknown tokens", "unknown")]
        self.stats_table.setRowCount(len(rows) + 1)
        for r, (label, attr) in enumerate(rows):
            self.stats_table.setItem(r, 0, QTableWidgetItem(label))
            for c, split in enumerate(("train", "valid", "test"), start=1):
                self.stats_table.setItem(r, c, QTableWidgetItem(f"{getattr(stats.splits[split], attr):,}"))
        self.stats_table.setItem(len(rows), 0, QTableWidgetItem("unknown rate"))
        for c, split in enumerate(("train", "valid", "test"), start=1):
            self.stats_table.setItem(len(rows), c, QTableWidgetItem(f"{stats.splits[split].unknown_rate:.2%}"))
        self.stats_table.resizeColumnsToContents()
        encodings = sorted({f["encoding"] for f in stats.files})
        self.summary_label.setText(
            f"Vocabulary <b>{stats.vocab_size:,}</b> · {stats.tokenizer} · encoding {', '.join(encodings)} · "
            f"{len(stats.files)} file(s) · unknown-token rate {stats.total.unknown_rate:.2%}"
        )
        edges, counts = stats.total.histogram(bins=30)
        if self._bars is not None:
            self.histogram.removeItem(self._bars)
        width = float(edges[1] - edges[0])
        self._bars = pg.BarGraphItem(x0=edges[:-1], width=width, height=counts, brush="#1f5fa8", pen=None)
        self.histogram.addItem(self._bars)
        self.histogram.autoRange()

    def shutdown(self) -> None:
        self.build.cancel_and_wait()
