"""Applying the preferences to the window: the language at startup, the theme (palette), and a
restart when the language changes. The preferences themselves, their file and their checks are
the engine's (``studio.core.preferences``): this module only does what needs Qt."""

from __future__ import annotations

from PySide6.QtCore import QProcess, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio.core import i18n
from studio.core.paths import studio_command
from studio.core.preferences import apply_at_startup, load_preferences


def apply_language(requested: str | None = None) -> str:
    """Choose the window's language (``--lang``, then STUDIO_LANG, then Preferences, then the
    system) and switch the engine's catalog to it; returns the language chosen. Also points the
    data folder where Preferences say, before anything reads it."""
    prefs = load_preferences()
    apply_at_startup(prefs)
    return i18n.set_language(i18n.choose_language(requested, prefs.language))


def dark_palette() -> QPalette:
    """A dark palette for every role widgets read (Qt's own for platforms that have one)."""
    window, base, text, disabled = QColor("#2b2d30"), QColor("#1e1f22"), QColor("#e6e6e6"), QColor("#7f8287")
    palette = QPalette()
    for role, color in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
                        (QPalette.ColorRole.ToolTipBase, base), (QPalette.ColorRole.ToolTipText, text),
                        (QPalette.ColorRole.PlaceholderText, disabled), (QPalette.ColorRole.Text, text),
                        (QPalette.ColorRole.Button, window), (QPalette.ColorRole.ButtonText, text),
                        (QPalette.ColorRole.BrightText, QColor("#ff6b6b")), (QPalette.ColorRole.Link, QColor("#6ea8fe")),
                        (QPalette.ColorRole.Highlight, QColor("#2f65ca")), (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
                        (QPalette.ColorRole.Light, QColor("#3c3f41")), (QPalette.ColorRole.Midlight, QColor("#35383b")),
                        (QPalette.ColorRole.Mid, QColor("#232427")), (QPalette.ColorRole.Dark, QColor("#161719")),
                        (QPalette.ColorRole.Shadow, QColor("#000000"))):
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def _is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def apply_theme(theme: str, app: QApplication | None = None) -> None:
    """Light, dark, or the system's. The platform is asked first (``QStyleHints.setColorScheme``,
    Qt 6.8+), which gives native colours where it is honoured; where it is not (older desktops,
    the offscreen platform) an explicit palette is set instead."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    if not isinstance(app, QApplication):
        return
    hints = app.styleHints()
    schemes = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
    if hasattr(hints, "setColorScheme"):
        if theme in schemes:
            hints.setColorScheme(schemes[theme])
        else:
            hints.unsetColorScheme()
    app.setPalette(QPalette())  # the platform's palette, for the scheme just asked for
    if theme == "dark" and not _is_dark(app.palette()):
        app.setPalette(dark_palette())
    elif theme == "light" and _is_dark(app.palette()):
        app.setPalette(app.style().standardPalette())


def restart_studio() -> bool:
    """Start a new Studio window (the caller then closes this one); False if it could not start."""
    command = studio_command()
    return bool(QProcess.startDetached(command[0], command[1:])[0])
