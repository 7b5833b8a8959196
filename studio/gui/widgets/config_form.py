"""A form generated from a config dataclass: one editor per field, with its label, unit, range and
a one-line explanation, and an error line that the page fills when a value is invalid.

The form holds no rules of its own: pages parse its values with the dataclass (the same code the
CLI and TOML use) and hand any issues back with :meth:`ConfigForm.show_issues`.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from studio.core.errors import ConfigIssue
from studio.core.settings import FieldSpec, Section

_INVALID_STYLE = "border: 1px solid #c0392b;"


def _format_float(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


class ConfigForm(QWidget):
    """Editors for ``section_cls``'s fields. ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, section_cls: type[Section], values: dict[str, Any] | None = None, *, include_advanced: bool = True,
                 skip: tuple[str, ...] = (), parent: QWidget | None = None):
        super().__init__(parent)
        self.section_cls = section_cls
        self.setObjectName(f"{section_cls.section}Form")
        self.specs = [s for s in section_cls.field_specs() if (include_advanced or not s.advanced) and s.name not in skip]
        self.editors: dict[str, QWidget] = {}
        self.error_labels: dict[str, QLabel] = {}
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in self.specs:
            editor = self._make_editor(spec)
            editor.setObjectName(f"field_{spec.key.replace('.', '_')}")
            editor.setToolTip(spec.help)
            self.editors[spec.name] = editor
            label = spec.label + (f" ({spec.unit})" if spec.unit else "")
            layout.addRow(label, editor)
            # The explanation and any error span the whole row, so a narrow column stays readable.
            range_text = self._range_text(spec)
            hint = QLabel(spec.help + (f" ({range_text})" if range_text else ""))
            hint.setWordWrap(True)
            hint.setStyleSheet("color: #5d6d7e; font-size: 11px; margin-bottom: 4px;")
            layout.addRow(hint)
            error = QLabel()
            error.setObjectName(f"error_{spec.key.replace('.', '_')}")
            error.setStyleSheet("color: #c0392b; font-size: 11px;")
            error.setWordWrap(True)
            error.hide()
            layout.addRow(error)
            self.error_labels[spec.name] = error
        if values:
            self.set_values(values)

    @staticmethod
    def _range_text(spec: FieldSpec) -> str:
        if spec.kind not in ("int", "float") or (spec.min is None and spec.max is None):
            return ""
        def fmt(x: float) -> str:
            return f"{x:,.0f}" if float(x).is_integer() else f"{x:g}"

        lo = "" if spec.min is None else fmt(spec.min)
        hi = "" if spec.max is None else fmt(spec.max)
        return f"{lo} to {hi}" if lo and hi else (f"at least {lo}" if lo else f"at most {hi}")

    def _make_editor(self, spec: FieldSpec) -> QWidget:
        if spec.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(self.changed)
            return box
        if spec.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(spec.choices))
            combo.currentIndexChanged.connect(self.changed)
            return combo
        if spec.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(spec.min) if spec.min is not None else -(2**31) + 1, int(min(spec.max, 2**31 - 1)) if spec.max is not None else 2**31 - 1)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self.changed)
            return spin
        edit = QLineEdit()  # floats (1e-4 reads better as text than in a spin box), text and lists
        if spec.kind == "str_list":
            edit.setPlaceholderText("separate entries with ;")
        edit.textChanged.connect(self.changed)
        return edit

    # ---- values -------------------------------------------------------------------------

    def set_values(self, values: dict[str, Any]) -> None:
        self.blockSignals(True)
        try:
            for spec in self.specs:
                if spec.name not in values:
                    continue
                value = values[spec.name]
                editor = self.editors[spec.name]
                if isinstance(editor, QCheckBox):
                    editor.setChecked(bool(value))
                elif isinstance(editor, QComboBox):
                    editor.setCurrentText(str(value))
                elif isinstance(editor, QSpinBox):
                    editor.setValue(int(value))
                elif isinstance(editor, QLineEdit):
                    if spec.kind == "float":
                        editor.setText(_format_float(float(value)))
                    elif spec.kind == "str_list":
                        editor.setText("; ".join(value))
                    else:
                        editor.setText(str(value))
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def raw_values(self) -> tuple[dict[str, Any], list[ConfigIssue]]:
        """The values as typed, and issues for text that is not a number at all."""
        out: dict[str, Any] = {}
        issues: list[ConfigIssue] = []
        for spec in self.specs:
            editor = self.editors[spec.name]
            if isinstance(editor, QCheckBox):
                out[spec.name] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[spec.name] = editor.currentText()
            elif isinstance(editor, QSpinBox):
                out[spec.name] = editor.value()
            elif isinstance(editor, QLineEdit):
                text = editor.text().strip()
                if spec.kind == "float":
                    try:
                        out[spec.name] = float(text)
                    except ValueError:
                        issues.append(ConfigIssue(spec.key, f"{text!r} is not a number"))
                elif spec.kind == "str_list":
                    out[spec.name] = [t.strip() for t in text.split(";") if t.strip()]
                else:
                    out[spec.name] = editor.text()
        return out, issues

    def parse(self) -> tuple[Section | None, list[ConfigIssue]]:
        """Build the dataclass from the form; any issue is also shown at its field."""
        values, issues = self.raw_values()
        section = None
        if not issues:
            section = self.section_cls.from_dict(values, issues)
        self.show_issues(issues)
        return (None if issues else section), issues

    def show_issues(self, issues: list[ConfigIssue]) -> None:
        prefix = self.section_cls.section + "."
        by_name = {}
        for issue in issues:
            if issue.key.startswith(prefix):
                by_name.setdefault(issue.key[len(prefix):], issue.message)
        for name, label in self.error_labels.items():
            editor = self.editors[name]
            message = by_name.get(name)
            label.setVisible(bool(message))
            label.setText(message or "")
            editor.setStyleSheet(_INVALID_STYLE if message else "")
