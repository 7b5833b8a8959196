"""Starting the window: show it first, then load PyTorch in the background."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _no_display() -> bool:
    """On Linux with no X or Wayland display Qt aborts the process; say so instead."""
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def main(argv: Sequence[str] = ()) -> int:
    if _no_display():
        print(
            "studio: there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset).\n"
            "  Run it on a desktop, or under a virtual screen: xvfb-run -a studio\n"
            "  The command line works anywhere: studio --help",
            file=sys.stderr,
        )
        return 1
    from PySide6.QtWidgets import QApplication

    from studio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    window = MainWindow()
    window.show()
    window.load_engine()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
