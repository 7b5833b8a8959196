"""Regression guard: PySide6 6.12.0 drops a reference to None on every void QPainter call, and a
live plot then aborts the process with 'Fatal Python error: none_dealloc' (the reason pyproject.toml keeps PySide6 below 6.12).
The project pins PySide6 below 6.12; this fails loudly if a bad build slips in."""

from __future__ import annotations

import sys

from PySide6.QtCore import QLineF
from PySide6.QtGui import QColor, QImage, QPainter, QPen


def test_void_painter_calls_keep_none_alive() -> None:
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    pen = QPen(QColor("black"))
    before = sys.getrefcount(None)
    for i in range(20_000):
        painter.setPen(pen)
        painter.drawLine(QLineF(0, i % 64, 63, 63 - i % 64))
    painter.end()
    after = sys.getrefcount(None)
    # Other threads may hold a few more or fewer references; the bug loses 40,000 at once.
    assert after > before - 1000, f"None lost {before - after} references over 20,000 QPainter calls"
