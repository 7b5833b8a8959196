"""Tokens shown as coloured chips that wrap like text; hovering a chip shows its id."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLabel, QLayout, QLayoutItem, QScrollArea, QSizePolicy, QWidget

_PALETTE = ["#dbeafe", "#fde68a", "#d1fae5", "#fbcfe8", "#e9d5ff", "#fed7aa", "#cffafe"]
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "→", "\r": "␍"}


class FlowLayout(QLayout):
    """Lays children out left to right, wrapping to new lines, like words in a paragraph."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 3):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(4, 4, 4, 4)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 - Qt's name
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        x, y = rect.x() + m.left(), rect.y() + m.top()
        right = rect.right() - m.right()
        line_height = 0
        for item in self._items:
            hint = item.sizeHint()
            if x + hint.width() > right and line_height > 0:
                x = rect.x() + m.left()
                y += line_height + self._spacing
                line_height = 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line_height = max(line_height, hint.height())
        return y + line_height - rect.y() + m.bottom()


class TokenChipsWidget(QScrollArea):
    """A scrollable paragraph of token chips."""

    MAX_CHIPS = 600

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tokenPreview")
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._layout = FlowLayout(self._inner)
        self.setWidget(self._inner)
        self.chips: list[QLabel] = []

    def set_tokens(self, pieces: list[tuple[str, int]], token_names: dict[int, str] | None = None) -> None:
        """``pieces``: (surface text, id) pairs. Whitespace is drawn visibly (␣ ↵ →)."""
        for chip in self.chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        for i, (text, token_id) in enumerate(pieces[: self.MAX_CHIPS]):
            shown = "".join(_VISIBLE.get(ch, ch) for ch in text) or "∅"
            chip = QLabel(shown)
            chip.setObjectName("tokenChip")
            name = (token_names or {}).get(token_id)
            chip.setToolTip(f"id {token_id}" + (f" · {name}" if name else ""))
            chip.setStyleSheet(
                f"background: {_PALETTE[i % len(_PALETTE)]}; color: #111; border-radius: 4px; padding: 1px 4px;"
                " font-family: monospace;"
            )
            chip.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            self._layout.addWidget(chip)
            self.chips.append(chip)
        self._inner.adjustSize()
