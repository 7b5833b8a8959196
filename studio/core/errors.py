"""Errors a person can act on.

Every error the engine raises on purpose is a ``StudioError``: its message is written for the
person using Studio (what went wrong, where, and what to do), so front ends show ``str(error)``
and never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _english(message: str) -> str:
    return message


def _english_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


# The few words these errors put around their callers' messages ("corpus.txt, line 3: ...") are
# translated like every other message. This module sits below ``studio.core.i18n`` and must not
# import it, so i18n installs its functions here when it is loaded (until then: English).
_gettext: Callable[[str], str] = _english
_ngettext: Callable[[str, str, int], str] = _english_plural


def install_translator(gettext: Callable[[str], str], ngettext: Callable[[str, str, int], str]) -> None:
    """Called by ``studio.core.i18n``: translate the words added here with the current language."""
    global _gettext, _ngettext
    _gettext, _ngettext = gettext, ngettext


def _(message: str) -> str:
    return _gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _ngettext(singular, plural, n)


class StudioError(Exception):
    """Base class for errors whose message is meant for the user."""


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    message: str

    def __str__(self) -> str:
        # Translators: {key} is a setting's name (train.lr), kept as is; {message} says what is wrong with it.
        return _("{key}: {message}").format(key=self.key, message=self.message) if self.key else self.message


class ConfigError(StudioError):
    """One or more settings are unknown, of the wrong type, out of range or contradict each other."""

    def __init__(self, issues: list[ConfigIssue] | ConfigIssue | str, source: str | None = None):
        if isinstance(issues, str):
            issues = [ConfigIssue("", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues = list(issues)
        self.source = source
        if len(self.issues) == 1:
            text = str(self.issues[0])
        else:
            count = len(self.issues)
            text = ngettext("{count} problem in the configuration:", "{count} problems in the configuration:", count).format(
                count=count
            ) + "".join(f"\n  - {issue}" for issue in self.issues)
        if source:
            # Translators: {source} is the config file (or where the settings came from); {message} what is wrong.
            text = _("{source}: {message}").format(source=source, message=text)
        super().__init__(text)


class DataError(StudioError):
    """A corpus or dataset file cannot be used. Names the file and, where there is one, the line."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        if path is not None and line is not None:
            # Translators: {path} is a file, {line} a line number in it, {message} what is wrong there.
            message = _("{path}, line {line}: {message}").format(path=path, line=line, message=message)
        elif path is not None:
            # Translators: {path} is a file, {message} what is wrong with it.
            message = _("{path}: {message}").format(path=path, message=message)
        super().__init__(message)


class CheckpointError(StudioError):
    """A run folder or checkpoint is missing, incomplete, or from an unknown format version."""


class DownloadError(StudioError):
    """A dataset could not be fetched or did not match its published checksum."""


class TrainingError(StudioError):
    """Training cannot continue (diverged, out of memory, ...). The message says what to change."""


class ResourceError(StudioError):
    """The machine lacks what the run needs (memory, disk space, a writable folder). The message
    gives the estimate, what is available, and what to lower."""
