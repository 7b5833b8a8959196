"""The window's keyboard shortcuts: one table that the window registers its actions from, and the
Help > Keyboard shortcuts list, which reads the registered actions themselves, so the list shows
what the keys really do and cannot go stale.

Ctrl+1 ... Ctrl+7 switch pages in the navigation's order (``page_keys``); the rest are below. Every
key was checked against the others and against the editors' own keys: Ctrl+P is free (Studio
prints nothing), and the run keys work from any page (the Run menu drives the Fine-tune page's run
when that page is shown, else the Train page's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.i18n import N_, _

Keys = str | QKeySequence.StandardKey


@dataclass(frozen=True)
class Shortcut:
    keys: Keys
    what: str  # English, translated where shown


# Action objectName -> its keys and what they do.
SHORTCUTS: dict[str, Shortcut] = {
    "openCorpusAction": Shortcut(QKeySequence.StandardKey.Open, N_("Open corpus files")),
    "preferencesAction": Shortcut("Ctrl+,", N_("Preferences")),
    # Ctrl+Q everywhere: Qt's standard Quit key is empty on some desktops and on Windows.
    "quitAction": Shortcut("Ctrl+Q", N_("Quit Studio")),
    "startAction": Shortcut("Ctrl+R", N_("Start a run with the current settings")),
    "pauseResumeAction": Shortcut("Ctrl+P", N_("Pause the run, or resume a paused one")),
    "stopAction": Shortcut("Ctrl+.", N_("Stop the run (a checkpoint is saved; it can be resumed)")),
    "shortcutsAction": Shortcut(QKeySequence.StandardKey.HelpContents, N_("Show the keyboard shortcuts")),
}


def page_keys(count: int) -> list[str]:
    """Ctrl+1 for the first page in the navigation, Ctrl+2 for the second, ..."""
    return [f"Ctrl+{n}" for n in range(1, count + 1)]


def page_action_name(index: int) -> str:
    return f"showPage{index + 1}Action"


def keys_of(name: str) -> QKeySequence | None:
    shortcut = SHORTCUTS.get(name)
    return None if shortcut is None else QKeySequence(shortcut.keys)


class ShortcutsDialog(QDialog):
    """Every shortcut the window has registered: its keys (as this platform writes them) and what
    it does."""

    def __init__(self, actions: Iterable[tuple[QAction, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle(_("Keyboard shortcuts"))
        self.resize(520, 400)
        rows = [(a.shortcut().toString(QKeySequence.SequenceFormat.NativeText), what) for a, what in actions if not a.shortcut().isEmpty()]
        self.table = QTableWidget(len(rows), 2, objectName="shortcutsTable")
        self.table.setHorizontalHeaderLabels([_("Keys"), _("What they do")])
        self.table.setAccessibleName(_("Keyboard shortcuts"))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for r, (keys, what) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(keys))
            self.table.setItem(r, 1, QTableWidgetItem(what))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("shortcutsCloseButton")
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addWidget(self.table)
        col.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]
