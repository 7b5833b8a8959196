"""Data page: choose a corpus, see its encoding and text, pick a tokenizer and splits, and build.

The settings are forms generated from ``DataConfig`` and ``TokenizerConfig``. Building (download,
scan, tokenizer training, token cache) runs on a worker thread with a progress bar and can be
cancelled. Afterwards the page shows the tokenization as chips and the corpus statistics with a
histogram of tokens per line; they are cleared as soon as the settings no longer match them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.callbacks import describe_stage, split_name
from studio.core.config import DataConfig, TokenizerConfig
from studio.core.data.preview import builtin_corpora, effective_format, preview_corpus
from studio.core.errors import ConfigIssue, StudioError
from studio.core.i18n import N_, _, ngettext
from studio.gui.formatting import number
from studio.gui.session import StudioSession
from studio.gui.widgets.config_form import ConfigForm
from studio.gui.widgets.layout import VerticalScrollWidget, wrapping_label
from studio.gui.widgets.token_chips import TokenChipsWidget
from studio.gui.workers.data_worker import DataBuild

if TYPE_CHECKING:
    import pyqtgraph as pg

# DataConfig split over two boxes: where the text comes from, and how it is split.
CORPUS_FIELDS = ("dataset", "paths", "format", "column", "json_field", "encoding", "skip_bad_rows")
SPLIT_FIELDS = ("valid_paths", "test_paths", "valid_fraction", "test_fraction", "split_mode", "split_seed")
# Translators: the first choice of the built-in corpora: read the files chosen below instead.
FILES_CHOICE = ("", N_("None: the files below"))
SPLITS = ("train", "valid", "test")


def _titled(title: str, *widgets: QWidget) -> QWidget:
    box = QWidget()
    col = QVBoxLayout(box)
    col.setContentsMargins(0, 0, 0, 0)
    col.addWidget(QLabel(f"<b>{title}</b>"))
    for w in widgets:
        col.addWidget(w)
    return box


def _group(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    col = QVBoxLayout(box)
    for w in widgets:
        col.addWidget(w)
    return box


class DataPage(QWidget):
    corpus_built = Signal(object)

    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dataPage")
        self.session = session
        self.setAcceptDrops(True)
        self._built_for: tuple[Any, Any] | None = None
        self._pending: tuple[Any, Any] | None = None
        self._offered_columns: list[str] = []  # the columns (or fields) of the file last previewed
        self.build = DataBuild(self)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(VerticalScrollWidget(self._build_settings()), 1)
        column.addWidget(self._build_build_controls())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self._build_preview())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 850])
        QVBoxLayout(self).addWidget(splitter)

        self._connect()
        self._load_defaults()

    # ---- layout -------------------------------------------------------------------------------

    def _build_settings(self) -> QWidget:
        # Explanations in tooltips: the column keeps Build, the corpus and the tokenizer in one view.
        self.corpus_form = ConfigForm(DataConfig, fields=CORPUS_FIELDS, object_name="corpusForm", hints=False,
                                      choices={"dataset": [(FILES_CHOICE[0], _(FILES_CHOICE[1])), *builtin_corpora()]})
        self.encoding_label = wrapping_label("—", "encodingLabel")
        self.encoding_label.setToolTip(_("The encoding found in the first file, and why"))
        self.split_form = ConfigForm(DataConfig, fields=SPLIT_FIELDS, object_name="splitForm", hints=False)
        self.tokenizer_form = ConfigForm(TokenizerConfig, hints=False)
        found = QWidget()
        row = QFormLayout(found)
        row.setContentsMargins(0, 0, 0, 0)
        row.addRow(_("Encoding found"), self.encoding_label)
        content = QWidget()
        col = QVBoxLayout(content)
        col.addWidget(_group(_("Corpus"), self.corpus_form, found))
        # Translators: a group box: how the corpus is split into training, validation and test text.
        col.addWidget(_group(_("Split"), self.split_form))
        # Said in the form, not only in the README: without jieba, Chinese words are characters.
        self.segmentation_label = wrapping_label("", "segmentationLabel")
        self.segmentation_label.setStyleSheet("color: #b9770e;")
        self.segmentation_label.hide()
        col.addWidget(_group(_("Tokenizer"), self.tokenizer_form, self.segmentation_label))
        col.addStretch(1)
        return content

    def _build_build_controls(self) -> QWidget:
        # Outside the scrolling forms, so Build, Cancel and the progress are always in sight.
        # Translators: the button that reads the corpus, trains the tokenizer and writes the token cache.
        self.build_button = QPushButton(_("Build"), objectName="buildButton")
        self.build_button.setToolTip(_("Tokenize the corpus into the token cache (only once per corpus and tokenizer)"))
        self.cancel_button = QPushButton(_("Cancel"), objectName="cancelBuildButton")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(objectName="buildProgress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status_label = wrapping_label("", "dataStatusLabel")
        box = QWidget()
        col = QVBoxLayout(box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.cancel_button)
        col.addLayout(buttons)
        col.addWidget(self.progress)
        col.addWidget(self.status_label)
        return box

    def _build_preview(self) -> QWidget:
        self.raw_preview = QPlainTextEdit(objectName="rawPreview")
        self.raw_preview.setReadOnly(True)
        self.raw_preview.setPlaceholderText(_("Choose a corpus to see its first lines here."))
        self.chips = TokenChipsWidget()
        self.chips_hint = QLabel(_("Build to see how the tokenizer splits this text (hover a token for its id)."))
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(_titled(_("Raw text"), self.raw_preview))
        right.addWidget(_titled(_("Tokens"), self.chips, self.chips_hint))
        right.addWidget(self._build_stats())
        right.setSizes([220, 200, 260])
        return right

    def _build_stats(self) -> QWidget:
        self.stats_table = QTableWidget(objectName="statsTable")
        self.stats_table.setColumnCount(4)
        self.stats_table.setHorizontalHeaderLabels(["", *(split_name(s) for s in SPLITS)])
        self.stats_table.verticalHeader().hide()
        # The row names as wide as they need, the three splits sharing the rest: no scrolling sideways.
        header = self.stats_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.stats_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary_label = wrapping_label("", "statsSummaryLabel")
        # The histogram is a pyqtgraph plot, made once the window is on screen (MainWindow's deferred
        # steps) or when first needed: importing pyqtgraph before the first paint cost 0.3-0.4 s.
        self._histogram: pg.PlotWidget | None = None
        self._histogram_host = QWidget(objectName="lengthHistogramHost")
        self._histogram_host.setMinimumHeight(160)
        host_layout = QVBoxLayout(self._histogram_host)
        host_layout.setContentsMargins(0, 0, 0, 0)
        self._bars: pg.BarGraphItem | None = None
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(QLabel("<b>{}</b>".format(_("Statistics"))))
        col.addWidget(self.summary_label)
        row = QHBoxLayout()
        row.addWidget(self.stats_table, 1)
        row.addWidget(self._histogram_host, 1)
        col.addLayout(row)
        return box

    def needs_histogram(self) -> bool:
        return self._histogram is None

    def make_histogram(self) -> None:
        import pyqtgraph as pg

        from studio.gui.widgets.metrics_plots import locale_axes

        title = _("Tokens per line / row")
        plot = pg.PlotWidget(title=title, axisItems=locale_axes())
        plot.setObjectName("lengthHistogram")
        plot.setBackground("w")
        plot.setLabel("bottom", _("tokens"))
        plot.setLabel("left", _("lines / rows"))
        plot.setMinimumHeight(160)
        self._histogram_host.layout().addWidget(plot)
        self._histogram = plot

    @property
    def histogram(self) -> pg.PlotWidget:
        if self._histogram is None:
            self.make_histogram()
        assert self._histogram is not None
        return self._histogram

    def _connect(self) -> None:
        self.build.progress.connect(self._on_progress)
        self.build.succeeded.connect(self._on_built)
        self.build.failed.connect(self._on_failed)
        self.build.cancelled.connect(self._on_cancelled)
        self.build.ended.connect(self._on_build_ended)
        for form in (self.corpus_form, self.split_form, self.tokenizer_form):
            form.changed.connect(self._on_settings_changed)
        self.corpus_form.field_changed.connect(self._on_corpus_field)
        self.session.prepared_changed.connect(self._on_prepared_changed)
        self.build_button.clicked.connect(self.start_build)
        self.cancel_button.clicked.connect(self.build.cancel)

    # ---- settings <-> forms -------------------------------------------------------------------

    def _show_segmentation_note(self, tokenizer: dict[str, Any]) -> None:
        from studio.core.data.tokenizers.word import segmentation_note

        note = segmentation_note(str(tokenizer.get("language", ""))) if tokenizer.get("kind") == "word" else ""
        self.segmentation_label.setText(note)
        self.segmentation_label.setVisible(bool(note))

    def _load_defaults(self) -> None:
        tables = StudioSession.saved_tables()
        try:  # the file the last session wrote: read with the parser, like any config file
            data = DataConfig.from_dict(tables.get("data", {}))
            tok = TokenizerConfig.from_dict(tables.get("tokenizer", {}))
        except StudioError:
            data, tok = DataConfig(), TokenizerConfig()
        self.apply_settings(data, tok)

    def apply_settings(self, data: DataConfig, tok: TokenizerConfig) -> None:
        values = data.to_dict()
        if values["paths"]:
            values["dataset"] = ""  # files are what the run reads; the form says so
        self.corpus_form.set_values(values, emit=False)
        self.split_form.set_values(values, emit=False)
        self.tokenizer_form.set_values(tok.to_dict(), emit=False)
        self._offered_columns = []
        self._on_settings_changed()
        self.refresh_preview()

    def paths(self) -> list[str]:
        return list(self.corpus_form.value("paths"))

    def _format(self) -> str:
        """The format the corpus will be read in (``auto`` resolved), which decides its fields."""
        form = self.corpus_form
        return effective_format(form.value("paths"), form.value("format"), form.value("dataset"))

    def _on_corpus_field(self, name: str) -> None:
        """The two ways to name a corpus exclude each other: files, or a built-in dataset."""
        if name == "paths" and self.paths():
            self.corpus_form.set_values({"dataset": ""}, emit=False)
        elif name == "dataset" and self.corpus_form.value("dataset"):
            self.corpus_form.set_values({"paths": []}, emit=False)
        if name in ("paths", "dataset", "format", "encoding"):
            self.refresh_preview()
        elif name in ("column", "json_field"):
            self._refresh_preview_text()

    def _on_settings_changed(self, *_args: object, refresh_status: bool = True) -> None:
        self.corpus_form.set_context(format=self._format())
        tables: dict[str, dict[str, Any]] = {"data": {}}
        issues: list[ConfigIssue] = []
        for form in (self.corpus_form, self.split_form):
            values, found = form.raw_values()
            tables["data"].update(values)
            issues.extend(found)
        tables["tokenizer"], found = self.tokenizer_form.raw_values()
        self._show_segmentation_note(tables["tokenizer"])
        self.session.set_tables(tables, issues + found)
        problems = self.session.issues_for("data", "tokenizer")
        for form in (self.corpus_form, self.split_form, self.tokenizer_form):
            form.show_issues(problems)
        built = not problems and self._built_for == (self.session.data, self.session.tokenizer)
        if not built and self.session.prepared is not None:
            self.session.set_prepared(None)  # the built corpus no longer matches the settings
        self.build_button.setEnabled(not problems and not self.build.running)
        if not refresh_status or self.build.running:
            return
        if problems:
            self._set_status(problems[0].message, error=True)
        elif not built:
            self._set_status("")

    # ---- choosing files -----------------------------------------------------------------------

    def set_paths(self, paths: list[str]) -> None:
        """Use these files (also how File > Open corpus and drag-and-drop land here)."""
        self.corpus_form.set_values({"paths": paths, "dataset": ""}, emit=False)
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
        dataset = self.corpus_form.value("dataset")
        self.raw_preview.clear()
        self.encoding_label.setText("—")
        if not self.paths() and dataset:
            from studio.core.data.datasets import dataset_folder, is_available

            if not is_available(dataset):
                title = dict(builtin_corpora()).get(dataset, dataset)
                self.raw_preview.setPlainText(_("{title}\n\nDownloaded (with a checksum check) when you press Build; then kept in {folder}.").format(
                    title=title, folder=dataset_folder(dataset)))
                return
        self._refresh_preview_text()

    def _preview_paths(self) -> list[str]:
        if self.paths():
            return self.paths()
        dataset = self.corpus_form.value("dataset")
        if not dataset:
            return []
        from studio.core.data.datasets import is_available, resolve_dataset

        return [str(p) for p in resolve_dataset(dataset).train] if is_available(dataset) else []

    def _refresh_preview_text(self) -> None:
        form = self.corpus_form
        fmt = self._format()
        try:
            paths = self._preview_paths()
            if not paths:
                return
            preview = preview_corpus(paths, fmt, column=form.value("column"), json_field=form.value("json_field"),
                                     encoding=form.value("encoding") or "auto")
            if preview.columns != self._offered_columns:
                preview = self._offer_columns(preview, paths, fmt)
        except StudioError as e:
            self._set_status(str(e), error=True)
            self.raw_preview.clear()
            return
        except OSError as e:
            self._set_status(_("cannot read the corpus: {error}").format(error=e), error=True)
            return
        # Translators: the encoding found (utf-8, gb18030, ...) and why it was chosen.
        self.encoding_label.setText(_("{encoding} ({reason})").format(encoding=preview.encoding, reason=preview.encoding_reason))
        count = len(preview.files)
        self.raw_preview.setPlainText(preview.text)
        # Translators: the tooltip of the preview: the first file's path, and how many files there are.
        more = ngettext("{path}  ({n} file)", "{path}  ({n} files)", count).format(path=preview.files[0], n=number(count))
        self.raw_preview.setToolTip(more if count > 1 else str(preview.files[0]))
        self._show_chips()

    def _offer_columns(self, preview: Any, paths: list[str], fmt: str) -> Any:
        """A new file: offer its columns (or fields) and choose the one that holds the text."""
        self._offered_columns = list(preview.columns)
        for name in ("column", "json_field"):
            self.corpus_form.set_note(name, "")
        if not preview.columns:
            return preview
        name = "json_field" if fmt == "jsonl" else "column"
        self.corpus_form.set_choices(name, preview.columns)
        self.corpus_form.set_note(name, preview.text_column_reason)
        if preview.text_column == self.corpus_form.value(name):
            return preview
        self.corpus_form.set_values({name: preview.text_column}, emit=False)
        self._on_settings_changed()
        return preview_corpus(paths, fmt, column=preview.text_column, json_field=preview.text_column,
                              encoding=self.corpus_form.value("encoding") or "auto")

    # ---- building -----------------------------------------------------------------------------

    def start_build(self) -> None:
        if self.session.issues_for("data", "tokenizer") or self.build.running:
            return
        self._pending = (self.session.data, self.session.tokenizer)
        self.build_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self._set_status(_("Building…"))
        self.build.start(*self._pending)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
        else:
            self.progress.setRange(0, 0)
        # Translators: the progress bar's text while building: the stage, then Qt's percentage (%p).
        self.progress.setFormat(_("{stage} %p%").format(stage=describe_stage(stage)))

    def _on_built(self, prepared: Any) -> None:
        self._built_for, self._pending = self._pending, None
        self.session.set_prepared(prepared)
        self._show_stats(prepared)
        self._show_chips()
        values = {"tokenizer": prepared.stats.tokenizer, "tokens": number(prepared.stats.splits["train"].tokens),
                  "seconds": number(prepared.seconds, 1)}
        if prepared.cache_hit:
            self._set_status(_("Ready: {tokenizer}, {tokens} training tokens (from the token cache in {seconds} s).").format(**values))
        else:
            self._set_status(_("Ready: {tokenizer}, {tokens} training tokens (built in {seconds} s).").format(**values))
        self.corpus_built.emit(prepared)
        if not self.paths():
            self._refresh_preview_text()  # a built-in dataset has just been downloaded

    def _on_failed(self, message: str) -> None:
        self._pending = None
        self._set_status(message, error=True)

    def _on_cancelled(self) -> None:
        self._pending = None
        self._set_status(_("Build cancelled."), error=False)

    def _on_build_ended(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.session.prepared is not None else 0)
        self.progress.setFormat("")
        self._on_settings_changed(refresh_status=False)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c0392b;" if error else "")

    # ---- what was built -----------------------------------------------------------------------

    def _on_prepared_changed(self, prepared: Any) -> None:
        if prepared is None:
            self._clear_built_view()

    def _clear_built_view(self) -> None:
        """Statistics, histogram, chips and a full progress bar describe one built corpus: once the
        settings have moved on, they go, so nothing on screen belongs to another corpus."""
        self.stats_table.setRowCount(0)
        self.summary_label.clear()
        if self._bars is not None:
            self.histogram.removeItem(self._bars)
            self._bars = None
        if self._pending is None:  # no build under way (one that has just succeeded is not)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")
        self._show_chips()

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
        rows = [(_("characters"), "characters"), (_("lines / rows"), "records"), (_("tokens"), "tokens"), (_("unknown tokens"), "unknown")]
        self.stats_table.setRowCount(len(rows) + 1)
        for r, (label, attr) in enumerate(rows):
            self.stats_table.setItem(r, 0, QTableWidgetItem(label))
            for c, split in enumerate(SPLITS, start=1):
                self.stats_table.setItem(r, c, QTableWidgetItem(number(getattr(stats.splits[split], attr))))
        self.stats_table.setItem(len(rows), 0, QTableWidgetItem(_("unknown rate")))
        for c, split in enumerate(SPLITS, start=1):
            self.stats_table.setItem(len(rows), c, QTableWidgetItem(f"{stats.splits[split].unknown_rate:.2%}"))
        encodings = sorted({f["encoding"] for f in stats.files})
        files = len(stats.files)
        # Translators: the summary over the statistics table; {tokenizer} describes it (bpe, 2,000 entries).
        self.summary_label.setText(ngettext(
            "Vocabulary <b>{vocab}</b> · {tokenizer} · encoding {encodings} · {n} file · unknown-token rate {rate}",
            "Vocabulary <b>{vocab}</b> · {tokenizer} · encoding {encodings} · {n} files · unknown-token rate {rate}", files,
        ).format(vocab=number(stats.vocab_size), tokenizer=stats.tokenizer, encodings=", ".join(encodings), n=number(files),
                 rate=f"{stats.total.unknown_rate:.2%}"))
        edges, counts = stats.total.histogram(bins=30)
        if self._bars is not None:
            self.histogram.removeItem(self._bars)
        width = float(edges[1] - edges[0])
        import pyqtgraph as pg

        self._bars = pg.BarGraphItem(x0=edges[:-1], width=width, height=counts, brush="#1f5fa8", pen=None)
        self.histogram.addItem(self._bars)
        self.histogram.autoRange()

    def shutdown(self) -> None:
        self.build.cancel_and_wait()
