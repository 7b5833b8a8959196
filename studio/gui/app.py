"""Starting the window: show it first, then load PyTorch in the background."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] = ()) -> int:
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
