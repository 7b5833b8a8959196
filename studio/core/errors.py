"""Errors a person can act on.

Every error the engine raises on purpose is a ``StudioError``: its message is written for the
person using Studio (what went wrong, where, and what to do), so front ends show ``str(error)``
and never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class StudioError(Exception):
    """Base class for errors whose message is meant for the user."""


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(StudioError):
    """One or more settings are unknown, of the wrong type, out of range or contradict each other."""

    def __init__(self, issues: list[ConfigIssue] | ConfigIssue | str, source: str | None = None):
        if isinstance(issues, str):
            issues = [ConfigIssue("", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues = list(issues)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.issues) == 1:
            text = f"{where}{self.issues[0]}"
        else:
            text = f"{where}{len(self.issues)} problems in the configuration:\n" + "\n".join(
                f"  - {issue}" for issue in self.issues
            )
        super().__init__(text)


class DataError(StudioError):
    """A corpus or dataset file cannot be used. Names the file and, where there is one, the line."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class CheckpointError(StudioError):
    """A run folder or checkpoint is missing, incomplete, or from an unknown format version."""


class DownloadError(StudioError):
    """A dataset could not be fetched or did not match its published checksum."""


class TrainingError(StudioError):
    """Training cannot continue (diverged, out of memory, ...). The message says what to change."""


class ResourceError(StudioError):
    """The machine lacks what the run needs (memory, disk space, a writable folder). The message
    gives the estimate, what is available, and what to lower."""
