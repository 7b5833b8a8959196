"""Runs page: every run in the library, to filter, sort, tag, annotate, rename, delete, compare,
and to open, resume, fine-tune from, try or export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from studio.core.i18n import N_, _, ngettext
from studio.core.runs.index import RunIndex, RunRecord, folder_size
from studio.gui.formatting import metric_name, moment, number
from studio.gui.widgets.compare_view import CompareView
from studio.gui.widgets.layout import wrapping_label

# Short headings, each explained in its tooltip, so the eleven columns fit beside the details.
# The columns by their English headings (translated where shown).
# Translators: the Runs table's headings, kept short ("Arch": architecture, "Params": parameters); each has a tooltip.
# The Task column names a run's task in words; the keys are what run.json records (task.kind).
# Translators: a run's task in the Runs table's Task column.
TASK_LABELS = {"lm": N_("language model"), "classify": N_("classification"), "translate": N_("translation"),
               "qa": N_("question answering"), "summarize": N_("summarization")}


def task_label(task: str) -> str:
    return _(TASK_LABELS[task]) if task in TASK_LABELS else task


COLUMNS = [N_("Name"), N_("Arch"), N_("Task"), N_("Params"), N_("Data"), N_("Status"), N_("Valid loss"), N_("Bits/char"), N_("Metric"),
           N_("Duration"), N_("Started"), N_("Tags")]
COLUMN_TIPS = {"Arch": N_("Architecture"), "Params": N_("Parameters"), "Data": N_("Corpus or task data"), "Valid loss": N_("Best validation loss"),
               "Bits/char": N_("The best validation loss in bits per character, comparable between tokenizers (bits per byte in its tooltip)"),
               "Metric": N_("The task metric of a fine-tuning run"), "Duration": N_("Training time")}
# Translators: the choices of the Runs page's status filter; the others are the statuses themselves.
ANY_STATUS = N_("any status")
STATUS_FILTER = ("running", "finished", "early_stopped", "stopped", "interrupted", "failed")
FLEXIBLE = ("Name", "Data", "Tags")  # free text: these give up width (their text elided) before the others do
MIN_FLEXIBLE = 64
REFRESH_MS = 5000


def _minutes(seconds: float | None) -> str:
    """A run's training time in minutes ('' when there is none)."""
    return _("{minutes} min").format(minutes=number(seconds / 60, 1)) if seconds else ""


def _number_item(value: float | None, text: str) -> QStandardItem:
    item = QStandardItem(text)
    item.setData(value if value is not None else float("-inf"), Qt.ItemDataRole.UserRole + 1)  # sort key
    return item


def _bits_item(per_char: float | None, per_byte: float | None) -> QStandardItem:
    """The best validation loss in bits per character; per byte in the tooltip."""
    item = _number_item(per_char, number(per_char, 3) if per_char is not None else "")
    if per_byte is not None:
        item.setToolTip(_("{value} bits per byte").format(value=number(per_byte, 3)))
    return item


def _cap(widths: list[int], columns: list[int], floors: list[int], excess: int) -> int:
    """Cap ``columns`` at one width, as high as removes ``excess`` (never below each one's floor);
    returns the excess left."""
    if excess <= 0 or not columns:
        return excess
    cap = max(widths[i] for i in columns)
    while sum(widths[i] - max(min(widths[i], cap), floors[i]) for i in columns) < excess and cap > min(floors[i] for i in columns):
        cap -= 1
    removed = 0
    for i in columns:
        new = max(min(widths[i], cap), floors[i])
        removed += widths[i] - new
        widths[i] = new
    return excess - removed


def fit_widths(widths: list[int], available: int, flexible: list[int], floors: list[int] | None = None,
               minimum: int = MIN_FLEXIBLE) -> list[int]:
    """Column widths that fit ``available``. The ``flexible`` columns give way first, capped at the
    largest width that removes the excess (the widest first) but not below ``minimum``; should that
    not be enough, every column does, down to its floor (its heading's width)."""
    widths = list(widths)
    floors = floors or [0] * len(widths)
    excess = sum(widths) - available
    excess = _cap(widths, flexible, [min(widths[i], max(minimum, floors[i])) for i in range(len(widths))], excess)
    _cap(widths, list(range(len(widths))), [min(widths[i], floors[i]) for i in range(len(widths))], excess)
    return widths


class RunsPage(QWidget):
    open_curves = Signal(object)  # Path
    resume_run = Signal(object)
    finetune_from = Signal(object)
    try_run = Signal(object)
    inspect_run = Signal(object)  # Path: look inside it on the Inspect page

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPage")
        self.index: RunIndex | None = None
        self.records: dict[str, RunRecord] = {}
        self.expanded_searches: set[str] = set()  # kept open across the refresh every few seconds

        self.compare = CompareView()
        self.tabs = QTabWidget(objectName="runsTabs")
        # Translators: the Runs page's tabs: every run, and the comparison of the runs selected.
        self.tabs.addTab(self._build_library(), _("Library"))
        self.tabs.addTab(self.compare, _("Compare"))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self._build_side())
        split.setStretchFactor(0, 1)
        split.setSizes([1000, 250])
        QVBoxLayout(self).addWidget(split)

        self.timer = QTimer(self)
        self.timer.setObjectName("runsRefreshTimer")
        self.timer.setInterval(REFRESH_MS)
        self._connect()
        self._on_selection()

    # ---- layout -------------------------------------------------------------------------------

    def _build_library(self) -> QWidget:
        self.filter_edit = QLineEdit(objectName="runFilterEdit")
        self.filter_edit.setPlaceholderText(_("Filter by name, architecture, data, tag or note"))
        self.status_filter = QComboBox(objectName="runStatusFilter")
        self.status_filter.addItem(_(ANY_STATUS), "")
        for status in STATUS_FILTER:
            self.status_filter.addItem(_(status), status)
        self.refresh_button = QPushButton(_("Refresh"), objectName="refreshRunsButton")
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.status_filter)
        top.addWidget(self.refresh_button)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(top)
        col.addWidget(self._build_table(), 1)
        return box

    def _build_table(self) -> QTreeView:
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels([_(c) for c in COLUMNS])
        for c, name in enumerate(COLUMNS):
            self.model.setHeaderData(c, Qt.Orientation.Horizontal, _(COLUMN_TIPS.get(name, name)), Qt.ItemDataRole.ToolTipRole)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole + 1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)  # every column
        self.proxy.setRecursiveFilteringEnabled(True)  # a matching trial keeps its search's row in sight
        # A tree, so a search's trials sit under one row of their own instead of filling the library.
        self.table = QTreeView(objectName="runsTable")
        self.table.setRootIsDecorated(True)
        self.table.setUniformRowHeights(True)
        self.table.setAllColumnsShowFocus(True)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.header().setHighlightSections(False)
        self.table.header().setStretchLastSection(False)
        self.table.setWordWrap(False)  # one line per run: a long name is elided, not wrapped
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.sortByColumn(COLUMNS.index("Started"), Qt.SortOrder.DescendingOrder)
        self.table.viewport().installEventFilter(self)  # refit the columns whenever its width changes
        return self.table

    def _build_side(self) -> QWidget:
        details = QGroupBox(_("Selected run"))
        form = QFormLayout(details)
        self.name_edit = QLineEdit(objectName="runNameEdit")
        self.tags_edit = QLineEdit(objectName="runTagsEdit")
        self.tags_edit.setPlaceholderText(_("comma-separated tags"))
        self.notes_edit = QPlainTextEdit(objectName="runNotesEdit")
        self.notes_edit.setMaximumHeight(90)
        self.save_button = QPushButton(_("Save name, tags and notes"), objectName="saveRunDetailsButton")
        self.path_label = wrapping_label("", "runPathLabel")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label, widget in ((_("Name"), self.name_edit), (_("Tags"), self.tags_edit), (_("Notes"), self.notes_edit), ("", self.save_button),
                              (_("Folder"), self.path_label)):
            form.addRow(label, widget)
        self.action_buttons = {
            "open": QPushButton(_("Open curves"), objectName="openCurvesButton"),
            "resume": QPushButton(_("Resume"), objectName="resumeRunButton"),
            "finetune": QPushButton(_("Fine-tune from it"), objectName="finetuneFromRunButton"),
            "try": QPushButton(_("Try it"), objectName="tryRunButton"),
            "inspect": QPushButton(_("Inspect it"), objectName="inspectRunButton"),
            "export": QPushButton(_("Export…"), objectName="exportRunButton"),
            "delete": QPushButton(_("Delete…"), objectName="deleteRunButton"),
            "compare": QPushButton(_("Compare selected"), objectName="compareButton"),
        }
        self.message = wrapping_label("", "runsMessageLabel")
        side = QWidget()
        col = QVBoxLayout(side)
        col.addWidget(details)
        for button in self.action_buttons.values():
            col.addWidget(button)
        col.addStretch(1)
        col.addWidget(self.message)
        return side

    def _connect(self) -> None:
        self.timer.timeout.connect(self.refresh)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.status_filter.currentTextChanged.connect(lambda _: self.refresh())
        self.refresh_button.clicked.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self.table.expanded.connect(lambda index: self._on_expanded(index, True))
        self.table.collapsed.connect(lambda index: self._on_expanded(index, False))
        self.save_button.clicked.connect(self.save_details)
        b = self.action_buttons
        b["open"].clicked.connect(lambda: self._emit_for_selected(self.open_curves))
        b["resume"].clicked.connect(lambda: self._emit_for_selected(self.resume_run))
        b["finetune"].clicked.connect(lambda: self._emit_for_selected(self.finetune_from))
        b["try"].clicked.connect(lambda: self._emit_for_selected(self.try_run))
        b["inspect"].clicked.connect(lambda: self._emit_for_selected(self.inspect_run))
        b["export"].clicked.connect(self.export_selected)
        b["delete"].clicked.connect(self.delete_selected)
        b["compare"].clicked.connect(self.compare_selected)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Every column as wide as its contents, unless that is wider than the table: then the
        free-text columns give way, so Metric, Duration, Started and Tags stay in sight."""
        header = self.table.header()
        for c in range(len(COLUMNS)):
            self.table.resizeColumnToContents(c)
        widths = [header.sectionSize(c) for c in range(len(COLUMNS))]
        metrics = header.fontMetrics()
        floors = [metrics.horizontalAdvance(_(name)) + 16 for name in COLUMNS]  # the heading stays readable
        fitted = fit_widths(widths, self.table.viewport().width(), [COLUMNS.index(c) for c in FLEXIBLE], floors)
        for c, width in enumerate(fitted):
            if width != widths[c]:
                header.resizeSection(c, width)

    # ---- the list ------------------------------------------------------------------------------

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.refresh()
        self.timer.start()  # runs started elsewhere (the CLI, another window) appear on their own

    def hideEvent(self, event: object) -> None:  # noqa: N802
        self.timer.stop()
        super().hideEvent(event)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        """Before the window closes: no thread of the page may outlive it."""
        self.timer.stop()
        self.compare.shutdown()

    def refresh(self) -> None:
        if self.index is None:
            self.index = RunIndex()
        self.index.refresh()
        records = self.index.list(status=self.status_filter.currentData() or "")
        selected = set(self.selected_paths())
        self.records = {r.path: r for r in records}
        self.model.removeRows(0, self.model.rowCount())
        searches: dict[str, list[RunRecord]] = {}
        for r in records:
            if r.search:
                searches.setdefault(r.search, []).append(r)
            else:
                self.model.appendRow(self._run_row(r))
        for search, trials in searches.items():
            row = self._search_row(search, trials)
            for r in trials:
                row[0].appendRow(self._run_row(r))
            self.model.appendRow(row)
            if search in self.expanded_searches:
                self.table.setExpanded(self.proxy.mapFromSource(row[0].index()), True)
        self._fit_columns()
        if selected:
            self.select_paths([p for p in selected if p in self.records])

    @staticmethod
    def _sortable(items: list[QStandardItem]) -> list[QStandardItem]:
        for item in items:
            if item.data(Qt.ItemDataRole.UserRole + 1) is None:
                item.setData(item.text().lower(), Qt.ItemDataRole.UserRole + 1)
        return items

    def _run_row(self, r: RunRecord) -> list[QStandardItem]:
        metric = f"{metric_name(r.metric_name)} {number(r.metric, 2)}" if r.metric is not None else ""
        duration = _minutes(r.duration_s)
        items = self._sortable([
            QStandardItem(r.name), QStandardItem(r.arch), QStandardItem(task_label(r.task)),
            _number_item(r.parameters, number(r.parameters) if r.parameters else ""), QStandardItem(r.corpus),
            QStandardItem(_(r.status)), _number_item(r.best_valid_loss, number(r.best_valid_loss, 4) if r.best_valid_loss is not None else ""),
            _bits_item(r.best_valid_bpc, r.best_valid_bpb), _number_item(r.metric, metric), _number_item(r.duration_s, duration), _number_item(r.started, moment(r.started)),
            QStandardItem(", ".join(r.tag_list)),
        ])
        items[0].setData(r.path, Qt.ItemDataRole.UserRole + 2)
        items[0].setToolTip(f"{r.name}\n{r.notes or r.path}")  # the whole name, where the column elides it
        return items

    def _search_row(self, search: str, trials: list[RunRecord]) -> list[QStandardItem]:
        """One row for a search, its trials beneath it: the best loss of any trial, their total
        time, when the first started. Selecting it selects every trial (to compare them)."""
        losses = [r.best_valid_loss for r in trials if r.best_valid_loss is not None]
        best = min(losses) if losses else None
        duration = sum(r.duration_s or 0.0 for r in trials)
        started = min((r.started for r in trials if r.started is not None), default=None)
        archs = sorted({r.arch for r in trials})
        statuses = sorted({r.status for r in trials})
        # Translators: the row of a search in the Runs table; {name} is the search's name.
        name = QStandardItem(ngettext("search {name} ({n} trial)", "search {name} ({n} trials)", len(trials)).format(
            name=search, n=number(len(trials))))
        name.setData(search, Qt.ItemDataRole.UserRole + 3)
        name.setToolTip(_("The trials of one search; select this row to select them all"))
        items = self._sortable([
            name, QStandardItem(", ".join(archs)), QStandardItem(task_label(trials[0].task)), _number_item(None, ""),
            QStandardItem(trials[0].corpus), QStandardItem(", ".join(_(s) for s in statuses)),
            _number_item(best, number(best, 4) if best is not None else ""),
            _bits_item(min((r.best_valid_bpc for r in trials if r.best_valid_bpc is not None), default=None), None),
            _number_item(None, ""), _number_item(duration, _minutes(duration)), _number_item(started, moment(started)),
            QStandardItem(""),
        ])
        for item in items:
            font = item.font()
            font.setBold(True)
            item.setFont(font)
        return items

    def _on_expanded(self, index: QModelIndex, expanded: bool) -> None:
        search = index.data(Qt.ItemDataRole.UserRole + 3)
        if search:
            (self.expanded_searches.add if expanded else self.expanded_searches.discard)(search)

    def _visible_rows(self) -> list[tuple[QModelIndex, QModelIndex | None]]:
        """Every row of the view in order: (index of its first column, its search row's or None)."""
        rows: list[tuple[QModelIndex, QModelIndex | None]] = []
        for row in range(self.proxy.rowCount()):
            top = self.proxy.index(row, 0)
            rows.append((top, None))
            rows.extend((self.proxy.index(child, 0, top), top) for child in range(self.proxy.rowCount(top)))
        return rows

    def selected_paths(self) -> list[str]:
        """The runs selected, in the order shown; a selected search row stands for its trials."""
        selection = self.table.selectionModel()
        paths = []
        for index, parent in self._visible_rows():
            path = index.data(Qt.ItemDataRole.UserRole + 2)
            if path and (selection.isRowSelected(index.row(), index.parent())
                         or (parent is not None and selection.isRowSelected(parent.row(), parent.parent()))):
                paths.append(path)
        return paths

    def select_paths(self, paths: list[str]) -> None:
        from PySide6.QtCore import QItemSelection, QItemSelectionModel

        selection = QItemSelection()
        for index, _parent in self._visible_rows():
            if index.data(Qt.ItemDataRole.UserRole + 2) in paths:
                selection.select(index, index.siblingAtColumn(len(COLUMNS) - 1))
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _on_selection(self) -> None:
        paths = self.selected_paths()
        one = len(paths) == 1
        record = self.records.get(paths[0]) if one else None
        for key, button in self.action_buttons.items():
            button.setEnabled(len(paths) >= 2 if key == "compare" else (bool(paths) if key == "delete" else one))
        if record is not None:
            self.action_buttons["resume"].setEnabled(record.status in ("stopped", "interrupted", "failed"))
            self.name_edit.setText(record.name)
            self.tags_edit.setText(", ".join(record.tag_list))
            self.notes_edit.setPlainText(record.notes)
            self.path_label.setText(record.path)
        else:
            # Several runs (or none): the fields edit one run, so they are emptied rather than left
            # showing the last one, and the panel says what Delete and Compare would act on.
            for edit in (self.name_edit, self.tags_edit):
                edit.clear()
            self.notes_edit.clear()
            names = [self.records[p].name for p in paths if p in self.records]
            self.path_label.setText(
                ngettext("{n} run selected: {names}", "{n} runs selected: {names}", len(names)).format(
                    n=number(len(names)), names=", ".join(names[:5]) + (" …" if len(names) > 5 else ""))
                if names else _("Select a run to see and edit it here.")
            )
        for w in (self.name_edit, self.tags_edit, self.notes_edit, self.save_button):
            w.setEnabled(one)

    def _emit_for_selected(self, signal: Signal) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            signal.emit(Path(paths[0]))  # type: ignore[attr-defined]

    # ---- edits ---------------------------------------------------------------------------------

    def save_details(self) -> None:
        paths = self.selected_paths()
        if len(paths) != 1 or self.index is None:
            return
        path = paths[0]
        self.index.rename(path, self.name_edit.text())
        self.index.set_tags(path, self.tags_edit.text().split(","))
        self.index.set_notes(path, self.notes_edit.toPlainText())
        self.refresh()
        self.message.setText(_("Saved."))

    def confirm_delete(self, names: list[str], size: int) -> bool:
        answer = QMessageBox.question(
            self, _("Delete runs"),
            # Translators: {names} is the runs' names, one per line; {size} a number of megabytes.
            ngettext("Delete {n} run and every checkpoint in it?\n\n{names}\n\nThis frees {size} MB and cannot be undone.",
                     "Delete {n} runs and every checkpoint in them?\n\n{names}\n\nThis frees {size} MB and cannot be undone.",
                     len(names)).format(n=number(len(names)), names="\n".join(names[:10]), size=number(size / 1e6, 1)),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self) -> None:
        paths = self.selected_paths()
        if not paths or self.index is None:
            return
        size = sum(folder_size(Path(p)) for p in paths)
        if not self.confirm_delete([self.records[p].name for p in paths], size):
            return
        freed, refused = 0, []
        for p in paths:
            try:
                freed += self.index.delete(p)
            except PermissionError as e:
                refused.append(str(e))
        self.refresh()
        deleted = _("Deleted; {size} MB freed.").format(size=number(freed / 1e6, 1))
        self.message.setText(" ".join([deleted, *refused]))  # each refusal is the engine's own sentence

    def export_selected(self) -> None:
        from studio.core.errors import StudioError
        from studio.core.runs.export import export_run

        paths = self.selected_paths()
        if len(paths) != 1:
            return
        target, _chosen_filter = QFileDialog.getSaveFileName(self, _("Export the model"), f"{self.records[paths[0]].name}.zip",
                                                             _("Zip archive (*.zip)"))
        if not target:
            return
        try:
            out = export_run(paths[0], Path(target), merge_lora=True, as_zip=True)
        except (StudioError, OSError) as e:
            self.message.setText(_("Export failed: {error}").format(error=e))
            return
        self.message.setText(_("Exported to {path}").format(path=out))

    def compare_selected(self) -> None:
        paths = self.selected_paths()
        if len(paths) >= 2:
            self.compare.set_runs([Path(p) for p in paths])
            self.tabs.setCurrentWidget(self.compare)
