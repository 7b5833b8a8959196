"""Starting the window: show it first, then load PyTorch in the background."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QLibraryInfo, QObject, QTimer, QTranslator, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from studio import __version__
from studio.core.resources import resources_dir

if TYPE_CHECKING:
    from studio.gui.main_window import MainWindow


def _no_display() -> bool:
    """On Linux with no X or Wayland display Qt aborts the process; say so instead."""
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def main(argv: Sequence[str] = (), language: str | None = None) -> int:
    if _no_display():
        print(
            "studio: there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset).\n"
            "  Run it on a desktop, or under a virtual screen: xvfb-run -a studio\n"
            "  The command line works anywhere: studio --help",
            file=sys.stderr,
        )
        return 1
    from studio.gui.main_window import MainWindow
    from studio.gui.preferences import apply_language

    chosen = apply_language(language)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    install_qt_translations(app, chosen)
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("studio")  # matches packaging/studio.desktop, so docks show the right icon
    app.setWindowIcon(app_icon())
    window = MainWindow()
    first_paint = _FirstPaint(window)
    # PyTorch loads on a worker thread, but its import holds the interpreter lock for long
    # stretches: started before the window has painted, it kept the window blank for seconds.
    first_paint.painted.connect(window.load_engine)
    _report_startup(first_paint, window)
    window.show()
    return app.exec()


def install_qt_translations(app: QApplication, language: str) -> None:
    """Qt's own words (dialog buttons, the file dialog) from the translations PySide6 ships."""
    if language == "en":
        return
    translator = QTranslator(app)
    if translator.load(f"qtbase_{language}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)) or translator.load(
        f"qt_{language}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    ):
        app.installTranslator(translator)


def app_icon() -> QIcon:
    """Studio's icon at every size it ships (resources/icons), for the window and the dock."""
    icon = QIcon()
    for png in sorted((resources_dir() / "icons").glob("studio-*.png")):
        icon.addFile(str(png))
    return icon


class _FirstPaint(QObject):
    """Emits ``painted`` once, after the window has drawn itself for the first time."""

    painted = Signal()

    def __init__(self, window: QWidget):
        super().__init__(window)
        self._done = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint and not self._done:
            self._done = True
            # After this paint has been handled, not in the middle of it.
            QTimer.singleShot(0, self.painted.emit)
        return False


def _report_startup(first_paint: _FirstPaint, window: MainWindow) -> None:
    """For benchmarks/startup.py: with STUDIO_STARTUP_REPORT set, write when the window first
    painted and when training became possible (the engine loaded), then quit."""
    target = os.environ.get("STUDIO_STARTUP_REPORT")
    if not target:
        return
    import json
    import time

    def write(stage: str) -> None:
        with open(target, "a", encoding="utf-8") as f:
            # CPU seconds too: on a shared machine they show how much of the wait was this process's.
            f.write(json.dumps({"stage": stage, "time": time.time(), "cpu": time.process_time()}) + "\n")

    first_paint.painted.connect(lambda: write("painted"))
    window.engine_loaded.connect(lambda: (write("ready"), QTimer.singleShot(0, window.close)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
