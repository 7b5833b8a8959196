"""Small layout helpers shared by the pages."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QWidget


def row_widget(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    """Widgets side by side in a borderless box (for one row of a form)."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
    return box
