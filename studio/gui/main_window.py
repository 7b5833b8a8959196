"""The main window: page navigation on the left, a status bar (device, run, tokens/s), menus, and
the window's layout and last choices restored between launches."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QMenuBar,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from studio.core.fileio import describe_os_error
from studio.core.i18n import N_, _, ngettext
from studio.core.paths import data_dir, runs_dir
from studio.core.preferences import Preferences, load_preferences, save_preferences, use_data_folder
from studio.gui.formatting import number
from studio.gui.main_thread_gc import MainThreadGarbageCollector
from studio.gui.pages.data_page import DataPage
from studio.gui.pages.model_page import ModelPage
from studio.gui.pages.try_page import TryPage
from studio.gui.preferences import apply_theme, restart_studio
from studio.gui.preferences_dialog import PreferencesDialog
from studio.gui.session import StudioSession
from studio.gui.shortcuts import SHORTCUTS, ShortcutsDialog, keys_of, page_action_name, page_keys
from studio.gui.welcome import DemoRun, WelcomeDialog, no_runs_yet
from studio.gui.widgets.config_form import PathListEdit

if TYPE_CHECKING:
    from studio.gui.pages.finetune_page import FinetunePage
    from studio.gui.pages.inspect_page import InspectPage
    from studio.gui.pages.runs_page import RunsPage
    from studio.gui.pages.search_page import SearchPage
    from studio.gui.pages.train_page import TrainPage
    from studio.gui.widgets.run_monitor import RunMonitorWidget

MAX_RECENT = 8
# The pages in navigation order: their English names (what show_page takes, shown translated) and
# the attributes that hold them.
PAGE_TITLES = (N_("Data"), N_("Model"), N_("Train"), N_("Fine-tune"), N_("Try"), N_("Runs"), N_("Search"), N_("Inspect"))
PAGE_ATTRS = ("data_page", "model_page", "train_page", "finetune_page", "try_page", "runs_page", "search_page", "inspect_page")
# Made once the window is on screen, one per turn of the event loop, or when first needed. With
# their plots (pyqtgraph: importing it alone took 0.3-0.4 s) and forms they were half of the time
# before the first paint. Each stands in the page stack as an empty placeholder until then.
DEFERRED_PAGES = ("train_page", "finetune_page", "runs_page", "search_page", "inspect_page")


class EngineLoadWorker(QObject):
    """Imports PyTorch and the model code off the GUI thread, after the window is on screen."""

    loaded = Signal(str)  # a description of the compute device
    failed = Signal(str)
    plotting_ready = Signal()  # pyqtgraph is imported: the pages with plots can be made

    @Slot()
    def run(self) -> None:
        try:
            # First the plotting library, which the pages still to be made need; on this thread its
            # import leaves the GUI thread free (at most ~70 ms waits for the interpreter lock).
            import pyqtgraph  # noqa: F401

            self.plotting_ready.emit()
            import torch

            import studio.core.models.registry  # noqa: F401
            import studio.core.training.trainer  # noqa: F401
            from studio.core.training.device import default_threads

            if torch.cuda.is_available():
                names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
                device = _("GPU: {names}").format(names=names)
            else:
                # Translators: the status bar's device: the machine's CPU cores, and how many of them train.
                device = ngettext("CPU ({cores} core, {threads} for training)", "CPU ({cores} cores, {threads} for training)",
                                  os.cpu_count() or 1).format(cores=os.cpu_count(), threads=default_threads())
            self.loaded.emit(device)
        except Exception as e:  # noqa: BLE001 - shown in the status bar, never a crash
            self.failed.emit(f"{type(e).__name__}: {e}")


class MainWindow(QMainWindow):
    engine_loaded = Signal()

    def __init__(self, settings_path: Path | None = None):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(_("Studio"))
        self.resize(1280, 800)
        self.settings = QSettings(str(settings_path or data_dir() / "gui-settings.ini"), QSettings.Format.IniFormat)
        self.garbage_collector = MainThreadGarbageCollector(self)  # collections on this thread only
        self.session = StudioSession(self)
        self.engine_ready = False
        self._engine_thread: QThread | None = None

        self.nav = QListWidget(objectName="navList")
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget(objectName="pageStack")
        self.data_page = DataPage(self.session)
        self.model_page = ModelPage(self.session)
        self.try_page = TryPage()
        self._built: dict[str, Any] = {}  # the deferred pages made so far, by attribute
        for title, attr in zip(PAGE_TITLES, PAGE_ATTRS, strict=True):
            self.nav.addItem(_(title))
            self.stack.addWidget(QWidget(objectName=f"{attr}Placeholder") if attr in DEFERRED_PAGES else getattr(self, attr))
        self.nav.currentRowChanged.connect(self._show_row)
        self.nav.setStyleSheet("QListWidget { font-size: 15px; } QListWidget::item { padding: 10px 12px; }")

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.device_status = QLabel(_("Device: loading…"), objectName="deviceStatus")
        self.run_status = QLabel(_("No run"), objectName="runStatus")
        self.throughput_status = QLabel("", objectName="throughputStatus")
        for w in (self.run_status, self.throughput_status, self.device_status):
            self.statusBar().addPermanentWidget(w)
        self.shortcut_actions: list[tuple[QAction, str]] = []  # what Help > Keyboard shortcuts lists
        self._build_menus()
        self._build_first_hour()

        self.session.changed.connect(self._sync_actions)
        self.nav.currentRowChanged.connect(lambda _row: self._sync_actions())
        self.try_page.go_to_finetune.connect(lambda: self.show_page("Fine-tune"))
        self._restore()
        self._sync_actions()

    # ---- pages made after the first paint -----------------------------------------------------

    @property
    def train_page(self) -> TrainPage:
        return self._page("train_page")  # type: ignore[no-any-return]

    @property
    def finetune_page(self) -> FinetunePage:
        return self._page("finetune_page")  # type: ignore[no-any-return]

    @property
    def runs_page(self) -> RunsPage:
        return self._page("runs_page")  # type: ignore[no-any-return]

    @property
    def search_page(self) -> SearchPage:
        return self._page("search_page")  # type: ignore[no-any-return]

    @property
    def inspect_page(self) -> InspectPage:
        return self._page("inspect_page")  # type: ignore[no-any-return]

    @property
    def pages(self) -> dict[str, QWidget]:
        """Every page by its English name, in navigation order (makes the deferred ones)."""
        return {title: getattr(self, attr) for title, attr in zip(PAGE_TITLES, PAGE_ATTRS, strict=True)}

    def _page(self, attr: str) -> Any:
        page = self._built.get(attr)
        if page is None:
            page = self._built[attr] = self._make_page(attr)
            index = PAGE_ATTRS.index(attr)
            placeholder = self.stack.widget(index)
            current = self.stack.currentIndex() == index
            self.stack.insertWidget(index, page)
            self.stack.removeWidget(placeholder)
            placeholder.deleteLater()
            if current:
                self.stack.setCurrentIndex(index)
            self._name_plots(page)
            self._sync_actions()
        return page

    def _make_page(self, attr: str) -> Any:
        """Import, make and connect one deferred page."""
        if attr == "train_page":
            from studio.gui.pages.train_page import TrainPage

            page: Any = TrainPage(self.session)
            self._connect_monitor(page.monitor)
        elif attr == "finetune_page":
            from studio.gui.pages.finetune_page import FinetunePage

            page = FinetunePage(self.session)
            self._connect_monitor(page.monitor)
        elif attr == "runs_page":
            from studio.gui.pages.runs_page import RunsPage

            page = RunsPage()
            page.open_curves.connect(self.load_run)
            page.resume_run.connect(self.resume_run)
            page.finetune_from.connect(lambda path: (self.finetune_page.set_base(path), self.show_page("Fine-tune")))
            page.try_run.connect(lambda path: (self.try_page.set_model(path), self.show_page("Try")))
            page.inspect_run.connect(lambda path: (self.show_page("Inspect"), self.inspect_page.set_run(path)))
        elif attr == "search_page":
            from studio.gui.pages.search_page import SearchPage

            page = SearchPage()
            page.promote_requested.connect(self.start_promoted)
            page.current_config = self.session.run_config
        elif attr == "inspect_page":
            from studio.gui.pages.inspect_page import InspectPage

            page = InspectPage()
        else:
            raise AssertionError(attr)
        return page

    def _connect_monitor(self, monitor: RunMonitorWidget) -> None:
        monitor.run_started.connect(lambda d: self.run_status.setText(_("Run: {name} (running)").format(name=Path(d).name)))
        monitor.run_started.connect(self._inspect_follows)
        monitor.throughput.connect(lambda v: self.throughput_status.setText(_("{n} tokens/s").format(n=number(v, 0))))
        monitor.run_ended.connect(lambda status, m=monitor: self._on_run_ended(m, status))
        monitor.state_changed.connect(self._sync_actions)
        preferences = getattr(self, "preferences", None)  # None while the window itself is being made
        if preferences is not None:
            monitor.plots.set_redraw_interval(preferences.plot_refresh_ms)
            monitor.run_preferences = preferences

    def _inspect_follows(self, run_dir: str) -> None:
        """A run that starts training becomes the Inspect page's, which follows it if asked to."""
        page = self._built.get("inspect_page")
        if page is not None and page.follow_check.isChecked():
            page.set_run(run_dir)

    def _built_monitors(self) -> list[RunMonitorWidget]:
        return [self._built[a].monitor for a in ("train_page", "finetune_page") if a in self._built]

    def _show_row(self, row: int) -> None:
        if 0 <= row < len(PAGE_ATTRS):
            getattr(self, PAGE_ATTRS[row])  # a deferred page is made before it is shown
        self.stack.setCurrentIndex(row)

    def _build_deferred_step(self) -> None:
        """Make the next part of the window that waited for the first paint; then the next, at the
        next turn of the event loop, so that none holds the GUI thread for long."""
        if self.data_page.needs_histogram():
            self.data_page.make_histogram()
            self._name_plots(self.data_page)
        else:
            for attr in DEFERRED_PAGES:
                if attr not in self._built:
                    getattr(self, attr)
                    break
                monitor = getattr(self._built[attr], "monitor", None)  # its six plots, one per step
                if monitor is not None and monitor.plots.make_next_plot():
                    break
            else:
                return
        QTimer.singleShot(0, self, self._build_deferred_step)

    def build_deferred(self) -> None:
        """Make at once whatever is still deferred (before "ready": tests and automation find every page)."""
        if self.data_page.needs_histogram():
            self.data_page.make_histogram()
            self._name_plots(self.data_page)
        for attr in DEFERRED_PAGES:
            getattr(self, attr)

    @staticmethod
    def _name_plots(root: QWidget) -> None:
        """A plot has no text of its own to read out: screen readers get its title."""
        pg = sys.modules.get("pyqtgraph")
        if pg is None:  # not imported yet: there are no plots
            return
        for plot in root.findChildren(pg.PlotWidget):
            if not plot.accessibleName():
                plot.setAccessibleName(plot.getPlotItem().titleLabel.text)

    # ---- menus --------------------------------------------------------------------------------

    def _action(self, text: str, name: str, slot: object, shortcut: QKeySequence | str | None = None, what: str = "") -> QAction:
        """A menu action; its keys come from the shortcuts table (studio/gui/shortcuts.py) where
        it has an entry, and every action with keys is listed in Help > Keyboard shortcuts."""
        action = QAction(text, self)
        action.setObjectName(name)
        keys = keys_of(name) or (QKeySequence(shortcut) if shortcut is not None else None)
        if keys is not None and not keys.isEmpty():
            action.setShortcut(keys)
            described = what or (_(SHORTCUTS[name].what) if name in SHORTCUTS else text.replace("&", ""))
            self.shortcut_actions.append((action, described))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu(_("&File"))
        file_menu.addAction(self._action(_("Open corpus…"), "openCorpusAction", self.open_corpus, QKeySequence.StandardKey.Open))
        file_menu.addAction(self._action(_("Open run…"), "openRunAction", self.open_run))
        # Translators: the submenu of recently opened corpora and runs.
        self.recent_menu = file_menu.addMenu(_("Recent"))
        self.recent_menu.setObjectName("recentMenu")
        file_menu.addSeparator()
        file_menu.addAction(self._action(_("Quit"), "quitAction", self.close, QKeySequence.StandardKey.Quit))

        # Translators: the menu of the training run (Start, Pause, Resume, Stop).
        run_menu = bar.addMenu(_("&Run"))
        self.start_action = self._action(_("Start"), "startAction", lambda: self.active_monitor().start_requested.emit(), "Ctrl+R")
        self.pause_action = self._action(_("Pause"), "pauseAction", lambda: self.active_monitor().pause())
        self.resume_action = self._action(_("Resume"), "resumeAction", lambda: self.active_monitor().resume())
        self.stop_action = self._action(_("Stop"), "stopAction", lambda: self.active_monitor().stop(), "Ctrl+.")
        for a in (self.start_action, self.pause_action, self.resume_action, self.stop_action):
            run_menu.addAction(a)

        help_menu = bar.addMenu(_("&Help"))
        help_menu.addAction(self._action(_("About Studio"), "aboutAction", self.show_about))
        self._build_first_hour_menus(bar, file_menu, run_menu, help_menu)
        self._refresh_recent()

    def active_monitor(self) -> RunMonitorWidget:
        """The Run menu drives the Fine-tune page's run when that page is shown, else the Train page's."""
        finetune = self._built.get("finetune_page")
        return finetune.monitor if finetune is not None and self.stack.currentWidget() is finetune else self.train_page.monitor

    def show_page(self, title: str) -> None:
        self.nav.setCurrentRow(PAGE_TITLES.index(title))

    def _sync_actions(self) -> None:
        if not hasattr(self, "pause_resume_action"):
            return
        if "train_page" not in self._built:  # for the moment before it is made
            for action in (self.start_action, self.pause_action, self.resume_action, self.stop_action, self.pause_resume_action):
                action.setEnabled(False)
            return
        m = self.active_monitor()
        self.start_action.setEnabled(m.start_button.isEnabled())
        self.pause_action.setEnabled(m.pause_button.isEnabled())
        self.resume_action.setEnabled(m.resume_button.isEnabled())
        self.stop_action.setEnabled(m.stop_button.isEnabled())
        self.pause_resume_action.setEnabled(m.pause_button.isEnabled() or m.resume_button.isEnabled())

    # ---- the first hour: preferences, keyboard, welcome ---------------------------------------

    def _build_first_hour(self) -> None:
        """Beyond the pages: the preferences applied, names for screen readers, the demo run the
        welcome screen starts (studio/gui/welcome.py)."""
        self.nav.setAccessibleName(_("Pages"))
        self._name_plots(self)
        self.demo_run = DemoRun(self)
        self.welcome_dialog: WelcomeDialog | None = None
        self._welcome_checked = False
        self.preferences = load_preferences()
        self.apply_preferences(self.preferences, startup=True)

    def _build_first_hour_menus(self, bar: QMenuBar, file_menu: QMenu, run_menu: QMenu, help_menu: QMenu) -> None:
        quit_action = self.findChild(QAction, "quitAction")
        preferences = self._action(_("Preferences…"), "preferencesAction", self.show_preferences)
        preferences.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.insertAction(quit_action, preferences)
        file_menu.insertSeparator(quit_action)
        self.pause_resume_action = self._action(_("Pause or resume"), "pauseResumeAction", self.toggle_pause)
        run_menu.insertAction(self.stop_action, self.pause_resume_action)
        go_menu = QMenu(_("&Go"), bar)
        go_menu.setObjectName("goMenu")
        for i, key in enumerate(page_keys(self.nav.count())):
            title = self.nav.item(i).text()
            go_menu.addAction(self._action(title, page_action_name(i), lambda _=False, row=i: self.nav.setCurrentRow(row), key,
                                           what=_("Show the {page} page").format(page=title)))
        bar.insertMenu(help_menu.menuAction(), go_menu)
        help_menu.insertAction(help_menu.actions()[0], self._action(_("Welcome"), "welcomeAction", self.show_welcome))
        help_menu.insertAction(help_menu.actions()[1], self._action(_("Keyboard shortcuts"), "shortcutsAction", self.show_shortcuts))

    def toggle_pause(self) -> None:
        """Pause a running run; resume a paused one (or a stopped run opened from disk)."""
        monitor = self.active_monitor()
        if monitor.state == "running":
            monitor.pause()
        elif monitor.resume_button.isEnabled():
            monitor.resume()

    def show_preferences(self) -> PreferencesDialog:
        devices = None
        if self.engine_ready:  # torch is imported: asking it what this machine has is instant
            from studio.core.training.device import supported_devices

            devices = supported_devices()
        dialog = PreferencesDialog(self.preferences, devices, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.values()))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def apply_preferences(self, prefs: Preferences, startup: bool = False) -> None:
        """Make each preference take effect now (the language at the next start) and keep them."""
        previous, self.preferences = self.preferences, prefs
        if not startup:
            self._save_preferences()
            if prefs.data_folder != previous.data_folder:
                use_data_folder(prefs.data_folder, previous.data_folder)  # new runs go there
                if "runs_page" in self._built:  # one made later lists the new folder's runs itself
                    self.runs_page.refresh()
        if not startup or prefs.theme != "system":  # at startup "system" is what Qt already shows
            apply_theme(prefs.theme)
        for monitor in self._built_monitors():  # the others get them when they are made
            monitor.plots.set_redraw_interval(prefs.plot_refresh_ms)
            monitor.run_preferences = prefs
        if not startup and prefs.language != previous.language:
            self._offer_restart()

    def _save_preferences(self) -> None:
        try:
            save_preferences(self.preferences)
        except OSError as e:
            self.statusBar().showMessage(_("Preferences not saved: {reason}").format(reason=describe_os_error(e)), 10_000)

    def _offer_restart(self) -> None:
        answer = QMessageBox.question(
            self, _("Language"), _("The new language applies when Studio starts again. Restart Studio now?"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes and self.close():  # close() asks first if a run is going
            restart_studio()

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.shortcut_actions, self)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._welcome_checked:
            self._welcome_checked = True
            if self.preferences.show_welcome and no_runs_yet():
                QTimer.singleShot(0, self.show_welcome)  # once the window is on screen

    def show_welcome(self) -> WelcomeDialog:
        if self.welcome_dialog is None:
            self.welcome_dialog = WelcomeDialog(self.preferences.show_welcome, self)
            self.welcome_dialog.demo_requested.connect(self.demo_run.start)
            self.welcome_dialog.open_corpus_requested.connect(self.open_own_corpus)
            self.welcome_dialog.open_run_requested.connect(lambda: self.show_page("Runs"))
            self.welcome_dialog.show_on_launch_changed.connect(self._set_show_welcome)
        self.welcome_dialog.open()
        return self.welcome_dialog

    def _set_show_welcome(self, on: bool) -> None:
        self.preferences = dataclasses.replace(self.preferences, show_welcome=on)
        self._save_preferences()

    def open_own_corpus(self) -> None:
        """The Data page's own "Open files…", so the files land where a person would put them."""
        self.show_page("Data")
        paths = self.data_page.corpus_form.editors["paths"]
        assert isinstance(paths, PathListEdit)
        paths.open_files()

    # ---- engine -------------------------------------------------------------------------------

    def load_engine(self) -> None:
        """Import PyTorch on a worker thread; the window stays usable meanwhile."""
        if self.engine_ready or self._engine_thread is not None:
            return
        self.statusBar().showMessage(_("Loading PyTorch…"))
        self._engine_thread = QThread(self)
        self._engine_thread.setObjectName("engineLoadThread")
        self._engine_worker = EngineLoadWorker()
        self._engine_worker.moveToThread(self._engine_thread)
        self._engine_thread.started.connect(self._engine_worker.run)
        self._engine_worker.loaded.connect(self._engine_thread.quit, Qt.ConnectionType.DirectConnection)
        self._engine_worker.failed.connect(self._engine_thread.quit, Qt.ConnectionType.DirectConnection)
        self._engine_worker.loaded.connect(self._on_engine_loaded)
        self._engine_worker.failed.connect(self._on_engine_failed)
        self._engine_worker.plotting_ready.connect(self._build_deferred_step)
        self._engine_thread.start()

    def _finish_engine_thread(self) -> None:
        if self._engine_thread is not None:
            self._engine_thread.wait()
            self._engine_thread = None

    def _on_engine_loaded(self, device: str) -> None:
        self._finish_engine_thread()
        self.build_deferred()
        self.garbage_collector.freeze()  # every page exists now (see MainThreadGarbageCollector.freeze)
        self.engine_ready = True
        self.session.engine_ready = True
        self.device_status.setText(_("Device: {device}").format(device=device))
        self.statusBar().showMessage(_("Ready"), 3000)
        self.model_page.engine_ready()
        self.session.changed.emit()
        self.engine_loaded.emit()

    def _on_engine_failed(self, message: str) -> None:
        self._finish_engine_thread()
        self.device_status.setText(_("Device: unavailable"))
        self.statusBar().showMessage(_("PyTorch could not be loaded: {error}").format(error=message))
        QMessageBox.critical(self, _("Studio"), _("PyTorch could not be loaded, so nothing can be trained.\n\n{error}").format(error=message))

    # ---- files and runs -----------------------------------------------------------------------

    def open_corpus(self) -> None:
        # Babel does not look inside f-strings: the words are translated first.
        kinds, everything = _("Text, CSV, TSV, JSONL"), _("All files (*)")
        filters = f"{kinds} (*.txt *.md *.csv *.tsv *.jsonl *.json);;{everything}"
        files, _chosen_filter = QFileDialog.getOpenFileNames(self, _("Open corpus files"), "", filters)
        if files:
            self.load_corpus(files)

    def load_corpus(self, files: list[str]) -> None:
        self.data_page.set_paths(files)
        self.show_page("Data")
        self._add_recent("corpus", "; ".join(files))

    def open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, _("Open a run folder"), str(runs_dir()))
        if folder:
            self.load_run(Path(folder))

    def load_run(self, folder: Path) -> None:
        if not (folder / "config.toml").exists():
            QMessageBox.warning(self, _("Studio"), _("{folder} is not a Studio run folder (it has no config.toml).").format(folder=folder))
            return
        self.train_page.show_run(folder)
        self.show_page("Train")
        self.run_status.setText(_("Run: {name}").format(name=folder.name))
        self._add_recent("run", str(folder))

    def resume_run(self, folder: Path) -> None:
        self.train_page.show_run(folder)
        self.show_page("Train")
        self.train_page.monitor.resume_run(folder)

    def start_promoted(self, config: object) -> None:
        """Train the search's best configuration as a full run, on the Train page."""
        from studio.core.config import RunConfig

        assert isinstance(config, RunConfig)
        self.show_page("Train")
        self.train_page.monitor.start(config)

    def _recent(self) -> list[list[str]]:
        try:
            items = json.loads(str(self.settings.value("recent", "[]")))
        except json.JSONDecodeError:
            return []
        return [i for i in items if isinstance(i, list) and len(i) == 2]

    def _add_recent(self, kind: str, target: str) -> None:
        items = [[kind, target]] + [i for i in self._recent() if i != [kind, target]]
        self.settings.setValue("recent", json.dumps(items[:MAX_RECENT]))
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self._recent()
        if not items:
            self.recent_menu.addAction(_("(nothing yet)")).setEnabled(False)
        for kind, target in items:
            label = (_("Corpus: {files}") if kind == "corpus" else _("Run: {name}")).format(files=target, name=target)
            action = self.recent_menu.addAction(label)
            if kind == "corpus":
                action.triggered.connect(lambda _=False, t=target: self.load_corpus(t.split("; ")))
            else:
                action.triggered.connect(lambda _=False, t=target: self.load_run(Path(t)))

    def _on_run_ended(self, monitor: RunMonitorWidget, status: str) -> None:
        run_dir = monitor.run_dir
        # Translators: the status bar after a run: its name and how it ended (finished, stopped, ...).
        self.run_status.setText(_("Run: {name} ({status})").format(name=run_dir.name if run_dir else "", status=_(status)))
        if run_dir:
            self._add_recent("run", str(run_dir))
            if status in ("finished", "early_stopped", "stopped") and (run_dir / "checkpoints").exists():
                # The newest model is the one people want to try next.
                self.try_page.set_model(run_dir)
                if monitor is self.train_page.monitor:
                    self.finetune_page.set_base(run_dir)

    def show_about(self) -> None:
        QMessageBox.about(self, _("About Studio"), about_text())

    # ---- layout and closing -------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("windowState")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.nav.setCurrentRow(int(self.settings.value("page", 0)))

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        self.settings.setValue("page", self.nav.currentRow())
        self.settings.sync()
        self.session.save()

    def confirm_close_during_run(self) -> bool:
        answer = QMessageBox.question(
            self, _("Training is running"),
            _("A run is in progress. Stop it, save a checkpoint and quit?\n\nYou can resume it later from File > Open run."),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        # Only the pages that were made: one that never was has nothing running.
        monitors = [m for m in self._built_monitors() if m.training.running]
        search = self._built.get("search_page")
        if monitors or (search is not None and search.session.running):
            if not self.confirm_close_during_run():
                event.ignore()
                return
            self.statusBar().showMessage(_("Stopping the run and saving a checkpoint…"))
            for m in monitors:
                m.shutdown()
        for attr in ("train_page", "finetune_page", "runs_page", "search_page", "inspect_page"):
            if attr in self._built:
                self._built[attr].shutdown()
        self.try_page.shutdown()
        self.data_page.shutdown()
        self._finish_engine_thread()
        self.save_settings()
        self.statusBar().clearMessage()  # also stops the status bar's own message timer
        self.garbage_collector.stop()
        gc.collect()  # what the window leaves is collected here, on the GUI thread, not by a later thread
        event.accept()


def about_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import PySide6
    from PySide6.QtCore import qVersion

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return _("not installed")

    from studio import __version__

    tagline = _("From raw text to a trained, fine-tuned language model.")
    return (
        f"<h3>Studio {__version__}</h3><p>{tagline}</p>"
        f"<p>PyTorch {v('torch')}<br>Qt {qVersion()} (PySide6 {PySide6.__version__})<br>spaCy {v('spacy')}<br>"
        f"pyqtgraph {v('pyqtgraph')}<br>tokenizers {v('tokenizers')}<br>safetensors {v('safetensors')}</p>"
    )
