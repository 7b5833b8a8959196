"""Side notes that teach, one click from the setting they explain: a small "?" button beside a
setting (or the architecture choice) opens the note from ``studio.core.explanations`` in a rich-text
window (a QTextBrowser renders the formulas' sub- and superscripts). One such window per main
window, reused: a second "?" replaces its note rather than stacking windows."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QTextBrowser, QToolButton, QVBoxLayout, QWidget

from studio.core.explanations import Note, note_for
from studio.core.i18n import _

DIALOG_NAME = "explanationDialog"


class ExplanationDialog(QDialog):
    """A non-modal window showing one note; it stays open while the person edits the setting."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(DIALOG_NAME)
        self.setWindowTitle(_("What is this?"))
        self.resize(460, 320)
        self.browser = QTextBrowser(objectName="explanationView")
        self.browser.setOpenExternalLinks(False)
        self.browser.setAccessibleName(_("Explanation"))
        QVBoxLayout(self).addWidget(self.browser)
        self.note: Note | None = None

    def show_note(self, note: Note) -> None:
        self.note = note
        title = note.title_text()
        self.setWindowTitle(title)
        self.browser.setHtml(f"<h3>{title}</h3><p>{note.body_html()}</p>")
        self.show()
        self.raise_()


def explanation_dialog(anchor: QWidget) -> ExplanationDialog:
    """The explanation window of ``anchor``'s window, made on first use."""
    top = anchor.window()
    found = top.findChild(ExplanationDialog, DIALOG_NAME)
    return found if found is not None else ExplanationDialog(top)


def explain_button(object_name: str, about: str, note: Callable[[], Note | None]) -> QToolButton:
    """A small "?" that opens ``note()`` (looked up when clicked, so a choice's note follows the
    value chosen). ``about`` names what it explains, for screen readers and the tooltip."""
    button = QToolButton(objectName=object_name)
    button.setText("?")
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    button.setToolTip(_("What is this? Explains {setting}").format(setting=about))
    button.setAccessibleName(_("Explain {setting}").format(setting=about))

    def show() -> None:
        found = note()
        if found is not None:
            explanation_dialog(button).show_note(found)

    button.clicked.connect(show)
    return button


def architecture_explain_button(object_name: str, current: Callable[[], str]) -> QToolButton:
    """The "?" beside an architecture choice: the note of the architecture chosen now (``arch.gpt``)."""
    return explain_button(object_name, _("the architecture"), lambda: note_for(f"arch.{current()}"))
