"""A search's report (``studio.core.runs.search_report.load_report``) read off the GUI thread: it
opens the Optuna study (Optuna and SQLAlchemy take a second to import) and fits fANOVA's random
forest for the importances, well over the 100 ms the GUI thread may spend."""

from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.errors import StudioError
from studio.gui.workers.thread_job import LatestOnlyJob


def folder_of_trial(run_dir: str) -> Path | None:
    """The search folder a trial's run belongs to, from its ``search:<folder name>`` tag (a new
    search's folder is named by the search process; the window hears only of its trials' runs)."""
    from studio.core.paths import data_dir

    try:
        data = tomllib.loads((Path(run_dir) / "config.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    tags = data.get("run", {}).get("tags", [])
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.startswith("search:"):
            folder = data_dir() / "searches" / tag.removeprefix("search:")
            return folder if folder.is_dir() else None
    return None


class SearchReportWorker(QObject):
    done = Signal(object, object, str, int)  # the search folder (or None), the SearchReport (or None), an error, the token

    def __init__(self, folder: Path | None, run_dir: str, token: int):
        super().__init__()
        self.folder = folder
        self.run_dir = run_dir
        self.token = token

    @Slot()
    def run(self) -> None:
        from studio.core.runs.search_report import load_report

        folder = self.folder or (folder_of_trial(self.run_dir) if self.run_dir else None)
        if folder is None:
            self.done.emit(None, None, "", self.token)
            return
        try:
            self.done.emit(folder, load_report(folder), "", self.token)
        except (StudioError, OSError) as e:
            self.done.emit(folder, None, str(e), self.token)
        except Exception as e:  # noqa: BLE001 - a report that cannot be read must not take the window down
            self.done.emit(folder, None, str(e) or type(e).__name__, self.token)


class SearchReportJob(LatestOnlyJob):
    """A search's report, the latest trials only. ``token`` comes back with the report, so a page
    can tell a late report of an earlier search."""

    done = Signal(object, object, str, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__("searchReportThread", parent)

    def load(self, folder: Path | None, run_dir: str = "", token: int = 0) -> None:
        self._request(lambda: SearchReportWorker(folder, run_dir, token))
