"""Render resources/icons/studio.svg to the PNG sizes desktops and installers ask for.

    QT_QPA_PLATFORM=offscreen python scripts/icons.py

The SVG is the source; the PNGs (16 to 512 px) are generated from it and committed, so an
installer or a desktop without SVG support has them.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> None:
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPainter needs one
    renderer = QSvgRenderer(str(ICONS / "studio.svg"))
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(ICONS / f"studio-{size}.png"))
        print(f"studio-{size}.png")


if __name__ == "__main__":
    main()
