"""Small layout helpers shared by the pages."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QWidget


def row_widget(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    """Widgets side by side in a borderless box (for one row of a form)."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
    return box


class WrappingLabel(QLabel):
    """A label that wraps at the width it is given and never asks for more, so a long message, an
    encoding's reason or a path cannot widen its column and push the column's fields out of sight."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        policy = self.sizePolicy()
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        self.setSizePolicy(policy)
        self.setMinimumWidth(40)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        # A layout keeps the height it found for the box holding this label at its width, unless
        # told: a second line of a new message was cut off (the Data page's status, under Build).
        parent = self.parentWidget()
        if parent is not None:
            parent.updateGeometry()

    def clear(self) -> None:
        self.setText("")


def wrapping_label(text: str = "", object_name: str = "") -> WrappingLabel:
    label = WrappingLabel(text)
    if object_name:
        label.setObjectName(object_name)
    return label


class VerticalScrollWidget(QScrollArea):
    """A column of forms that scrolls up and down, and asks a splitter for its content's width, so
    the right edge of the fields stays in sight. Should the splitter still give it less, a
    horizontal scroll bar appears rather than cutting the fields off."""

    def __init__(self, content: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setWidget(content)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        # It takes the height that is left and scrolls the rest: asking for its content's height
        # squeezed what shares its column (the Data page's status line lost its second line).
        policy = self.sizePolicy()
        policy.setVerticalPolicy(QSizePolicy.Policy.Ignored)
        self.setSizePolicy(policy)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is None:
            return hint
        width = content.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(hint.width(), width), hint.height())
