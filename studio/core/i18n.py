"""The language Studio speaks: one gettext catalog for the engine, the CLI and the window.

Every string a person reads goes through :func:`_` where it is made (``_("the file is empty")``;
with values, ``_("{path} does not exist").format(path=...)``, so a translation can move them).
Strings defined before a language is chosen (setting labels and help, table headings) are marked
with :func:`N_` and translated where they are shown.

**One file per language.** Translations live in ``resources/translations/<lang>.po`` (gettext's
PO format, which Poedit, Weblate and Qt Linguist's users know). Adding a language is adding that
file: ``python scripts/i18n.py init fr`` starts one from the template, and the language is then
offered everywhere. The PO file is compiled on first use into the user cache (Babel), keyed by its
content, so nothing compiled is kept in the repository. Qt's own dialog buttons come from the
``qtbase`` translations that ship with PySide6 (the window loads them).

**Choosing the language**, first that applies: ``studio --lang zh_CN``; the ``STUDIO_LANG``
environment variable; the window's Preferences; the system locale. The choice is passed to child
processes through ``STUDIO_LANG``, so the training process writes its log in the same language.
"""

from __future__ import annotations

import gettext
import hashlib
import locale
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from studio.core import errors, resources  # modules, not names: resources' messages use this one
from studio.core.paths import cache_dir

SOURCE_LANGUAGE = "en"
ENV = "STUDIO_LANG"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = SOURCE_LANGUAGE
_listeners: list[Callable[[str], None]] = []


def _(message: str) -> str:
    """``message`` in the current language (itself when there is no translation). An empty
    message stays empty: gettext's translation of "" is the catalog's header, which a choice
    whose value is "" (a setting left unset) showed as its label."""
    return _translation.gettext(message) if message else message


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name for "mark, translate later"
    """Mark ``message`` for translation without translating it yet (it is translated where shown)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


# The errors below this floor ("file, line 3: ...") put their few words through these functions.
errors.install_translator(_, ngettext)


def translations_dir() -> Path:
    return resources.resources_dir() / "translations"


def available_languages() -> list[str]:
    """The source language and every language with a catalog, e.g. ``["en", "zh_CN"]``."""
    folder = translations_dir()
    found = sorted(p.stem for p in folder.glob("*.po")) if folder.is_dir() else []
    return [SOURCE_LANGUAGE, *found]


def normalize(name: str) -> str:
    """``zh``, ``zh-CN``, ``zh_CN.UTF-8``, ``zh-Hans`` -> ``zh_CN``; unknown -> ``en``."""
    raw = name.strip().split(".")[0].split("@")[0].replace("-", "_")
    if not raw or raw in ("C", "POSIX"):
        return SOURCE_LANGUAGE
    known = available_languages()
    if raw in known:
        return raw
    lower = raw.lower()
    for lang in known:
        if lang.lower() == lower:
            return lang
    base = lower.split("_")[0]
    if base == "zh" and "zh_CN" in known and not any(t in lower for t in ("tw", "hk", "hant")):
        return "zh_CN"
    for lang in known:
        if lang.lower().split("_")[0] == base:
            return lang
    return SOURCE_LANGUAGE


def system_language() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(var):
            return normalize(os.environ[var])
    try:
        code = locale.getlocale()[0]
    except ValueError:
        code = None
    return normalize(code or SOURCE_LANGUAGE)


def choose_language(requested: str | None = None, preference: str | None = None) -> str:
    """The language to use: an explicit request, then ``STUDIO_LANG``, then a saved preference
    (``"system"`` or empty means none), then the system locale."""
    for candidate in (requested, os.environ.get(ENV), preference):
        if candidate and candidate != "system":
            return normalize(candidate)
    return system_language()


def _compiled(po: Path) -> Path:
    """The PO file compiled to MO in the user cache (compiled again whenever the PO changes)."""
    digest = hashlib.sha256(po.read_bytes()).hexdigest()[:16]
    mo = cache_dir() / "i18n" / f"{po.stem}-{digest}.mo"
    if not mo.exists():
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.stem)
        tmp = mo.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        tmp.replace(mo)
    return mo


def set_language(name: str) -> str:
    """Switch every later ``_()`` to ``name`` (normalised); returns the language now in use. Child
    processes started from here on inherit it."""
    global _translation, _language
    lang = normalize(name)
    translation: gettext.NullTranslations = gettext.NullTranslations()
    if lang != SOURCE_LANGUAGE:
        po = translations_dir() / f"{lang}.po"
        with _compiled(po).open("rb") as f:
            translation = gettext.GNUTranslations(f)
    _translation, _language = translation, lang
    os.environ[ENV] = lang
    for listener in list(_listeners):
        listener(lang)
    return lang


def language() -> str:
    return _language


def on_language_changed(listener: Callable[[str], None]) -> None:
    _listeners.append(listener)


# ---- numbers and dates in the current language ------------------------------------------------


def _babel_locale() -> str:
    return _language


def format_number(value: float, digits: int | None = None) -> str:
    """Grouped digits as the language writes them (``12,345`` or ``12,345.68``)."""
    if digits is None:
        return format_decimal(value, locale=_babel_locale())
    return format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0", locale=_babel_locale())


def format_datetime(timestamp: float, short: bool = True) -> str:
    """A moment as the language writes it (``2026-12-01 10:00`` / ``2026/12/1 10:00``)."""
    moment = datetime.fromtimestamp(timestamp)
    return babel_format_datetime(moment, format="short" if short else "medium", locale=_babel_locale())
