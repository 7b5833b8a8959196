"""Tokens shown as coloured chips that wrap like text; hovering a chip shows its id.

The chips are painted by one widget, not made of one QLabel each: 600 labels with their own
style sheets took 2.5-5 s of the GUI thread to polish and lay out after every Build (measured on
Chinese text under X11), while painting them all takes a few milliseconds."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontDatabase, QHelpEvent, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QToolTip, QWidget

from studio.core.i18n import _

_PALETTE = ["#dbeafe", "#fde68a", "#d1fae5", "#fbcfe8", "#e9d5ff", "#fed7aa", "#cffafe"]
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "→", "\r": "␍"}
_TEXT_COLOR = QColor("#111111")


@dataclass
class Chip:
    """One token as drawn: its visible text, hover text, colour and place in the paragraph."""

    text: str
    tip: str
    color: QColor
    size: QSize
    rect: QRect = field(default_factory=QRect)

    def toolTip(self) -> str:  # noqa: N802 - the name a QLabel chip had, for tests and automation
        return self.tip


class ChipCanvas(QWidget):
    """Paints the chips left to right, wrapping to new lines like words in a paragraph."""

    MARGIN = 4
    SPACING = 3
    PAD_X = 4
    PAD_Y = 1

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tokenChipCanvas")
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.chips: list[Chip] = []
        self._line_tops: list[int] = []  # the top of each line, for finding the chip under the mouse
        self._line_starts: list[int] = []  # the index of each line's first chip
        self._arranged_for = -1

    def set_chips(self, chips: list[Chip]) -> None:
        self.chips = chips
        self._arranged_for = -1
        self._arrange(self.width())
        self.updateGeometry()
        self.update()

    def chip_size(self, text: str) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(text) + 2 * self.PAD_X, metrics.height() + 2 * self.PAD_Y)

    def _arrange(self, width: int, apply: bool = True) -> int:
        """Place the chips for ``width``; returns the height they need."""
        x = y = self.MARGIN
        right = width - self.MARGIN
        line_height = 0
        tops, starts = [], []
        for i, chip in enumerate(self.chips):
            w, h = chip.size.width(), chip.size.height()
            if x + w > right and line_height > 0:
                x = self.MARGIN
                y += line_height + self.SPACING
                line_height = 0
            if line_height == 0:
                tops.append(y)
                starts.append(i)
            if apply:
                chip.rect = QRect(x, y, w, h)
            x += w + self.SPACING
            line_height = max(line_height, h)
        if apply:
            self._line_tops, self._line_starts, self._arranged_for = tops, starts, width
        return y + line_height + self.MARGIN

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(width, apply=False)

    def sizeHint(self) -> QSize:  # noqa: N802
        width = max(self.width(), 200)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, 0)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.size().width() != self._arranged_for:
            self._arrange(event.size().width())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self._arranged_for != self.width():
            self._arrange(self.width())
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        exposed = event.rect()
        first = max(0, bisect_right(self._line_tops, exposed.top() - 100) - 1)
        for chip in self.chips[self._line_starts[first] if self._line_starts else 0 :]:
            if chip.rect.top() > exposed.bottom():
                break
            if not chip.rect.intersects(exposed):
                continue
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(chip.color)
            painter.drawRoundedRect(chip.rect, 4, 4)
            painter.setPen(_TEXT_COLOR)
            painter.drawText(chip.rect, Qt.AlignmentFlag.AlignCenter, chip.text)
        painter.end()

    def chip_at(self, pos: QPoint) -> Chip | None:
        line = bisect_right(self._line_tops, pos.y()) - 1
        if line < 0:
            return None
        end = self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.chips)
        for chip in self.chips[self._line_starts[line] : end]:
            if chip.rect.contains(pos):
                return chip
        return None

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            chip = self.chip_at(e.pos())
            if chip is not None:
                QToolTip.showText(e.globalPos(), chip.tip, self, chip.rect)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)


class TokenChipsWidget(QScrollArea):
    """A scrollable paragraph of token chips."""

    MAX_CHIPS = 600

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tokenPreview")
        self.setWidgetResizable(True)
        self.canvas = ChipCanvas()
        self.setWidget(self.canvas)

    @property
    def chips(self) -> list[Chip]:
        return self.canvas.chips

    def set_tokens(self, pieces: list[tuple[str, int]], token_names: dict[int, str] | None = None) -> None:
        """``pieces``: (surface text, id) pairs. Whitespace is drawn visibly (␣ ↵ →)."""
        chips = []
        colors = [QColor(c) for c in _PALETTE]
        for i, (text, token_id) in enumerate(pieces[: self.MAX_CHIPS]):
            shown = "".join(_VISIBLE.get(ch, ch) for ch in text) or "∅"
            name = (token_names or {}).get(token_id)
            # Translators: a token's tooltip: its number in the vocabulary, and the vocabulary's entry.
            tip = _("id {id} · {token}").format(id=token_id, token=name) if name else _("id {id}").format(id=token_id)
            chips.append(Chip(shown, tip, colors[i % len(colors)], self.canvas.chip_size(shown)))
        self.canvas.set_chips(chips)
