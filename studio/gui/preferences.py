"""The window's preferences, kept with Qt's settings (an INI file in the user data folder)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from studio.core import i18n
from studio.core.paths import data_dir

LANGUAGE_KEY = "preferences/language"  # a language code, or "system"


def settings() -> QSettings:
    return QSettings(str(data_dir() / "gui-settings.ini"), QSettings.Format.IniFormat)


def apply_language(requested: str | None = None) -> str:
    """Choose the window's language (``--lang``, then STUDIO_LANG, then Preferences, then the
    system) and switch the engine's catalog to it; returns the language chosen."""
    preference = str(settings().value(LANGUAGE_KEY, "system"))
    return i18n.set_language(i18n.choose_language(requested, preference))
