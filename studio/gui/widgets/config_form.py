"""A form generated from a config dataclass: one editor per field, with its label, unit, range and
a one-line explanation, and an error line that the page fills when a value is invalid. A setting
with a side note in ``studio.core.explanations`` gets a "?" that opens it, and every editor is
named for screen readers by its label.

Everything the form knows about a setting comes from its metadata (``studio.core.settings``):
choices and their labels, the choices a page offers from data (a file's columns, the trained
runs), whether free text is allowed, file and folder dialogs for paths, and ``shown_when``, which
hides a setting that does not apply (LoRA rank unless the method is LoRA). A hidden setting
contributes its default to :meth:`ConfigForm.raw_values`, so what does not apply never reaches a
run's configuration, and a value typed into it comes back if it applies again.

The form holds no rules of its own: it only turns text into numbers. Pages build the config with
the dataclasses (the same code the CLI and TOML use) and hand any issues back with
:meth:`ConfigForm.show_issues`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import ConfigIssue
from studio.core.explanations import has_notes, note_for_setting
from studio.core.i18n import _
from studio.core.settings import FieldSpec, Section
from studio.gui.formatting import number
from studio.gui.widgets.explanation import explain_button
from studio.gui.widgets.layout import row_widget, wrapping_label

_INVALID_STYLE = "border: 1px solid #c0392b;"
_INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int

# A choice offered to a person: a value, or (value, label) where the label differs.
Choice = str | tuple[str, str]


def _format_float(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()]


class ChoiceCombo(QComboBox):
    """A combo whose items show labels and hold values. Editable where free text is allowed: the
    value is then what is typed, unless it is an item's label."""

    def __init__(self, editable: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.setEditable(editable)
        if editable:
            self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        # Long labels (run names, dataset titles) must not widen the form's column.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        if editable:  # a chosen label reads from its start, not scrolled to its end
            self.currentIndexChanged.connect(lambda *_args: self.lineEdit().setCursorPosition(0))

    def value(self) -> str:
        index = self.currentIndex()
        if index >= 0 and (not self.isEditable() or self.itemText(index) == self.currentText()):
            return str(self.itemData(index))
        return self.currentText().strip()

    def set_value(self, value: str) -> None:
        index = self.findData(value)
        if index < 0 and not self.isEditable():
            self.addItem(value, value)  # a saved value this list does not offer (yet) stays visible
            index = self.count() - 1
        if index >= 0:
            self.setCurrentIndex(index)
        else:
            self.setCurrentIndex(-1)
            self.setEditText(value)
        if self.isEditable():
            self.lineEdit().setCursorPosition(0)  # a long label or path reads from its start

    def set_items(self, items: Sequence[Choice]) -> None:
        """Offer these choices, keeping the current value where it is offered (or, where free text
        is allowed, as typed); a fixed list whose value went away shows its first item."""
        current = self.value()
        blocked = self.blockSignals(True)
        try:
            self.clear()
            for item in items:
                value, label = (item, item) if isinstance(item, str) else item
                self.addItem(label, value)
            if self.findData(current) >= 0 or self.isEditable():
                self.set_value(current)
        finally:
            self.blockSignals(blocked)


def _file_filter(spec: FieldSpec) -> str:
    patterns = " ".join(spec.file_patterns)
    everything = _("All files (*)")
    return f"{_(spec.label)} ({patterns});;{everything}" if patterns else everything


def _start_folder(path: str) -> str:
    """Where a dialog opens: the folder that holds the current entry (a file's folder; for a run,
    the runs folder), or Qt's default when there is none."""
    return str(Path(path).expanduser().parent) if path else ""


class PathListEdit(QWidget):
    """Files (and folders) separated by ``;``, with "Open files…" and, where folders are allowed,
    "Open folder…". A choice from a dialog replaces the list."""

    changed = Signal()

    def __init__(self, spec: FieldSpec, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.setObjectName(object_name)
        self.line_edit = QLineEdit(objectName=f"{object_name}_edit")
        folders = spec.path in ("folder", "file_or_folder")
        self.line_edit.setPlaceholderText(_("Files or folders, separated by ;") if folders else _("Files, separated by ;"))
        self.files_button = QPushButton(_("Open files…"), objectName=f"{object_name}_open_files")
        self.folder_button = QPushButton(_("Open folder…"), objectName=f"{object_name}_open_folder")
        self.folder_button.setVisible(folders)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.files_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.line_edit)
        column.addLayout(buttons)
        # Typing a path notifies once it is finished, so a half-typed path is never read.
        self.line_edit.editingFinished.connect(self._on_edited)
        self.files_button.clicked.connect(self.open_files)
        self.folder_button.clicked.connect(self.open_folder)
        self._last = ""

    def paths(self) -> list[str]:
        return _split_list(self.line_edit.text())

    def set_paths(self, paths: Sequence[str]) -> None:
        self.line_edit.setText("; ".join(paths))
        self._last = self.line_edit.text()

    def open_files(self) -> None:
        start = _start_folder(self.paths()[0] if self.paths() else "")
        files, _chosen_filter = QFileDialog.getOpenFileNames(self, _(self.spec.label), start, _file_filter(self.spec))
        if files:
            self.set_paths(files)
            self.changed.emit()

    def open_folder(self) -> None:
        start = _start_folder(self.paths()[0] if self.paths() else "")
        folder = QFileDialog.getExistingDirectory(self, _(self.spec.label), start)
        if folder:
            self.set_paths([folder])
            self.changed.emit()

    def _on_edited(self) -> None:
        if self.line_edit.text() != self._last:
            self._last = self.line_edit.text()
            self.changed.emit()


class PathChoiceEdit(QWidget):
    """One folder (or file) on disk: chosen from the offered items, typed, or found with Browse…"""

    changed = Signal()

    def __init__(self, spec: FieldSpec, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.setObjectName(object_name)
        self.combo = ChoiceCombo(editable=True)
        self.combo.setObjectName(f"{object_name}_choice")
        self.browse_button = QPushButton(_("Browse…"), objectName=f"{object_name}_browse")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse_button)
        self.combo.currentTextChanged.connect(self.changed)
        self.browse_button.clicked.connect(self.browse)
        self.start_folder = ""  # where Browse opens when nothing is chosen yet

    def browse(self) -> None:
        start = _start_folder(self.combo.value()) or self.start_folder
        if self.spec.path == "file":
            chosen, _chosen_filter = QFileDialog.getOpenFileName(self, _(self.spec.label), start, _file_filter(self.spec))
        else:
            chosen = QFileDialog.getExistingDirectory(self, _(self.spec.label), start)
        if chosen:
            self.combo.set_value(chosen)


class ConfigForm(QWidget):
    """Editors for ``section_cls``'s fields. ``changed`` fires on every edit; ``field_changed``
    names the field a person (or a test, through its editor) edited, not one set by
    :meth:`set_values`, so a page can answer a choice (a task's own demo data) without undoing a
    restored setting.

    ``fields`` picks and orders a subset (a section split over two boxes); ``name_prefix`` makes
    the editors' object names unique when a window holds two forms of one section
    (``finetune_field_train_steps``); ``choices`` are the first items of fields whose choices come
    from data (``set_choices`` replaces them); ``hints=False`` keeps each explanation in its
    editor's tooltip, for a page whose column must stay short."""

    changed = Signal()
    field_changed = Signal(str)

    def __init__(self, section_cls: type[Section], values: Mapping[str, Any] | None = None, *, include_advanced: bool = True,
                 skip: tuple[str, ...] = (), fields: Sequence[str] | None = None, name_prefix: str = "",
                 object_name: str = "", choices: Mapping[str, Sequence[Choice]] | None = None, hints: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.section_cls = section_cls
        self.name_prefix = name_prefix
        self.hints = hints
        section = section_cls.section
        self.setObjectName(object_name or (f"{name_prefix}{section[0].upper()}{section[1:]}Form" if name_prefix else f"{section}Form"))
        specs = {s.name: s for s in section_cls.field_specs()}
        names = list(fields) if fields is not None else list(specs)
        self.specs = [specs[n] for n in names if (include_advanced or not specs[n].advanced) and n not in skip]
        self.editors: dict[str, QWidget] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.note_labels: dict[str, QLabel] = {}
        self.explain_buttons: dict[str, QToolButton] = {}  # the "?" of settings that have a side note
        self._rows: dict[str, tuple[int, int]] = {}  # field -> (editor row, details row) in the layout
        self._shown: dict[str, bool] = {}
        self._context: dict[str, Any] = {}
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)  # the box around the form gives the margin
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in self.specs:
            self._add_row(spec)
        for name, items in (choices or {}).items():
            self.set_choices(name, items)
        # Every editor starts at its setting's default, so a form never holds an empty number.
        self.set_values({**{s.name: s.default for s in self.specs}, **(values or {})})

    # ---- building -----------------------------------------------------------------------

    def object_name(self, kind: str, spec: FieldSpec) -> str:
        base = f"{kind}_{spec.key.replace('.', '_')}"
        return f"{self.name_prefix}_{base}" if self.name_prefix else base

    def _add_row(self, spec: FieldSpec) -> None:
        editor = self._make_editor(spec)
        editor.setObjectName(self.object_name("field", spec))
        # The metadata is English (gettext's message ids), translated where it is shown.
        range_text = self._range_text(spec)
        # Translators: a setting's explanation, then the values it takes ("0 to 10", "at least 1").
        explanation = _("{help} ({range})").format(help=_(spec.help), range=range_text) if range_text else _(spec.help)
        editor.setToolTip(explanation)
        self.editors[spec.name] = editor
        # Translators: a setting's name and its unit: "Context length (tokens)".
        label = _("{label} ({unit})").format(label=_(spec.label), unit=_(spec.unit)) if spec.unit else _(spec.label)
        # Screen readers name the editor by its label (a form row's label is not read with it).
        editor.setAccessibleName(label)
        editor.setAccessibleDescription(explanation)
        self._layout.addRow(label, self._with_explanation(spec, editor, _(spec.label)))
        editor_row = self._layout.rowCount() - 1
        # The explanation, a note and any error span the whole row, so a narrow column stays readable.
        details = QWidget()
        column = QVBoxLayout(details)
        column.setContentsMargins(0, 0, 0, 4)
        column.setSpacing(1)
        hint = wrapping_label(explanation)
        hint.setStyleSheet("color: #5d6d7e; font-size: 11px;")
        hint.setVisible(self.hints)
        note = wrapping_label("", self.object_name("note", spec))
        note.setStyleSheet("color: #1e6f5c; font-size: 11px;")
        note.hide()
        error = wrapping_label("", self.object_name("error", spec))
        error.setStyleSheet("color: #c0392b; font-size: 11px;")
        error.hide()
        for w in (hint, note, error):
            column.addWidget(w)
        self._layout.addRow(details)
        self._rows[spec.name] = (editor_row, self._layout.rowCount() - 1)
        self.error_labels[spec.name] = error
        self.note_labels[spec.name] = note
        self._shown[spec.name] = True
        self._show_rows(spec.name)

    def _with_explanation(self, spec: FieldSpec, editor: QWidget, label: str) -> QWidget:
        """The editor, with a "?" beside it where ``studio.core.explanations`` has a note for the
        setting (or, for a choice, for its values: the optimizer chosen)."""
        choices = spec.choices if spec.kind == "choice" else ()
        if not has_notes(spec.key, choices):
            return editor
        value = (lambda: self._editor_value(spec)[0]) if choices else (lambda: None)
        button = explain_button(self.object_name("explain", spec), label, lambda: note_for_setting(spec.key, value()))
        self.explain_buttons[spec.name] = button
        return row_widget(editor, button)

    @staticmethod
    def _range_text(spec: FieldSpec) -> str:
        if spec.kind not in ("int", "float") or (spec.min is None and spec.max is None):
            return ""

        def fmt(x: float) -> str:
            return number(int(x)) if float(x).is_integer() else f"{x:g}"

        lo = "" if spec.min is None else fmt(spec.min)
        hi = "" if spec.max is None else fmt(spec.max)
        if lo and hi:
            # Translators: the range of a number setting: "1 to 65,536".
            return _("{low} to {high}").format(low=lo, high=hi)
        return _("at least {low}").format(low=lo) if lo else _("at most {high}").format(high=hi)

    def _make_editor(self, spec: FieldSpec) -> QWidget:
        name = spec.name
        if spec.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda *_args: self._on_edit(name))
            return box
        if spec.kind == "choice":
            combo = ChoiceCombo(editable=False)
            combo.set_items([(c, _(spec.choice_label(c))) for c in spec.choices])
            combo.currentIndexChanged.connect(lambda *_args: self._on_edit(name))
            return combo
        if spec.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(spec.min) if spec.min is not None else -_INT_LIMIT, int(min(spec.max, _INT_LIMIT)) if spec.max is not None else _INT_LIMIT)
            if spec.step:
                spin.setSingleStep(int(spec.step))
            # Counts (parameters, memory) follow the digits as they are typed, not only on Enter.
            spin.setKeyboardTracking(True)
            spin.valueChanged.connect(lambda *_args: self._on_edit(name))
            return spin
        if spec.kind == "str_list" and spec.path:
            paths = PathListEdit(spec, self.object_name("field", spec))
            paths.changed.connect(lambda: self._on_edit(name))
            return paths
        if spec.kind == "str" and spec.path:
            chooser = PathChoiceEdit(spec, self.object_name("field", spec))
            chooser.changed.connect(lambda: self._on_edit(name))
            return chooser
        if spec.kind == "str" and (spec.suggestions or spec.choices_from):
            offered = ChoiceCombo(editable=spec.free_text)
            offered.set_items([(s, _(spec.choice_label(s))) for s in spec.suggestions])
            if spec.free_text:
                offered.currentTextChanged.connect(lambda *_args: self._on_edit(name))
            else:
                offered.currentIndexChanged.connect(lambda *_args: self._on_edit(name))
            return offered
        edit = QLineEdit()  # floats (1e-4 reads better as text than in a spin box), text and lists
        if spec.kind == "str_list":
            edit.setPlaceholderText(_("separate entries with ;"))
        edit.textChanged.connect(lambda *_args: self._on_edit(name))
        return edit

    def _on_edit(self, name: str) -> None:
        if self.signalsBlocked():
            return
        self._update_visibility()
        self.field_changed.emit(name)
        self.changed.emit()

    # ---- what applies ---------------------------------------------------------------------

    def set_context(self, **values: Any) -> None:
        """Values that conditions read instead of this form's own, where the page knows better
        (the format that ``auto`` resolves to) or the setting is not in this form."""
        self._context.update(values)
        self._update_visibility()

    def _update_visibility(self) -> None:
        current = {spec.name: self._editor_value(spec)[0] for spec in self.specs}
        current.update(self._context)
        for spec in self.specs:
            shown = spec.applies(current)
            if shown != self._shown[spec.name]:
                self._shown[spec.name] = shown
                self._show_rows(spec.name)

    def _show_rows(self, name: str) -> None:
        """The field's rows: its editor while it applies, and the line under it while it has
        something to say (an explanation, a note or an error), so no empty line takes room."""
        editor_row, details_row = self._rows[name]
        shown = self._shown[name]
        says = self.hints or bool(self.note_labels[name].text()) or bool(self.error_labels[name].text())
        self._layout.setRowVisible(editor_row, shown)
        self._layout.setRowVisible(details_row, shown and says)

    def is_shown(self, name: str) -> bool:
        return self._shown[name]

    # ---- values -------------------------------------------------------------------------

    def set_choices(self, name: str, items: Sequence[Choice]) -> None:
        """Offer these choices for ``name`` (from data: a file's columns, the trained runs), keeping its value."""
        editor = self.editors[name]
        combo = editor.combo if isinstance(editor, PathChoiceEdit) else editor
        assert isinstance(combo, ChoiceCombo), f"{name} has no choices to offer"
        spec = next(s for s in self.specs if s.name == name)
        offered = [i if isinstance(i, str) else i[0] for i in items]
        combo.set_items([*items, *((s, _(spec.choice_label(s))) for s in spec.suggestions if s not in offered)])

    def set_note(self, name: str, text: str) -> None:
        """A line under the field saying why it holds what it holds ("review: the longest text")."""
        self.note_labels[name].setText(text)
        self.note_labels[name].setVisible(bool(text))
        self._show_rows(name)

    def set_values(self, values: Mapping[str, Any], emit: bool = True) -> None:
        blocked = self.blockSignals(True)
        try:
            for spec in self.specs:
                if spec.name in values:
                    self._set_editor(spec, values[spec.name])
        finally:
            self.blockSignals(blocked)
        self._update_visibility()
        if emit:
            self.changed.emit()

    def _set_editor(self, spec: FieldSpec, value: Any) -> None:
        editor = self.editors[spec.name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, ChoiceCombo):
            editor.set_value(str(value))
        elif isinstance(editor, PathChoiceEdit):
            editor.combo.set_value(str(value))
        elif isinstance(editor, PathListEdit):
            editor.set_paths([str(v) for v in value])
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        elif isinstance(editor, QLineEdit):
            if spec.kind == "float":
                editor.setText(_format_float(float(value)))
            elif spec.kind == "str_list":
                editor.setText("; ".join(value))
            else:
                editor.setText(str(value))

    def _editor_value(self, spec: FieldSpec) -> tuple[Any, ConfigIssue | None]:
        """The editor's value, parsed from text where it is text; or an issue for text that is not a number."""
        editor = self.editors[spec.name]
        if isinstance(editor, QCheckBox):
            return editor.isChecked(), None
        if isinstance(editor, ChoiceCombo):
            return editor.value(), None
        if isinstance(editor, PathChoiceEdit):
            return editor.combo.value(), None
        if isinstance(editor, PathListEdit):
            return editor.paths(), None
        if isinstance(editor, QSpinBox):
            return editor.value(), None
        assert isinstance(editor, QLineEdit)
        text = editor.text().strip()
        if spec.kind == "float":
            try:
                return float(text), None
            except ValueError:
                return None, ConfigIssue(spec.key, _("{text} is not a number").format(text=repr(text)))
        if spec.kind == "str_list":
            return _split_list(text), None
        return editor.text(), None

    def value(self, name: str) -> Any:
        """One field's value as its editor holds it (None for text that is not a number)."""
        return self._editor_value(next(s for s in self.specs if s.name == name))[0]

    def raw_values(self) -> tuple[dict[str, Any], list[ConfigIssue]]:
        """The values as typed (a setting that does not apply: its default), and issues for text
        that is not a number at all."""
        out: dict[str, Any] = {}
        issues: list[ConfigIssue] = []
        for spec in self.specs:
            if not self._shown[spec.name]:
                out[spec.name] = list(spec.default) if isinstance(spec.default, list) else spec.default
                continue
            value, issue = self._editor_value(spec)
            if issue is not None:
                issues.append(issue)
            else:
                out[spec.name] = value
        return out, issues

    def show_issues(self, issues: Sequence[ConfigIssue]) -> None:
        prefix = self.section_cls.section + "."
        by_name: dict[str, str] = {}
        for issue in issues:
            if issue.key.startswith(prefix):
                by_name.setdefault(issue.key[len(prefix):], issue.message)
        for name, label in self.error_labels.items():
            message = by_name.get(name)
            if label.text() != (message or ""):
                label.setVisible(bool(message))
                label.setText(message or "")
                self._input_of(name).setStyleSheet(_INVALID_STYLE if message else "")
                self._show_rows(name)

    def _input_of(self, name: str) -> QWidget:
        """The widget that takes the typing: the one to outline (a border on a composite editor
        would cascade to its buttons)."""
        editor = self.editors[name]
        if isinstance(editor, PathListEdit):
            return editor.line_edit
        if isinstance(editor, PathChoiceEdit):
            return editor.combo
        return editor
