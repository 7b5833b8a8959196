"""The main window: page navigation on the left, a status bar (device, run, tokens/s), menus, and
the window's layout and last choices restored between launches."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt, QThread, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from studio.core.paths import data_dir, runs_dir
from studio.gui.pages.data_page import DataPage
from studio.gui.pages.finetune_page import FinetunePage
from studio.gui.pages.model_page import ModelPage
from studio.gui.pages.runs_page import RunsPage
from studio.gui.pages.search_page import SearchPage
from studio.gui.pages.train_page import TrainPage
from studio.gui.pages.try_page import TryPage
from studio.gui.session import StudioSession
from studio.gui.widgets.run_monitor import RunMonitorWidget

MAX_RECENT = 8


class EngineLoadWorker(QObject):
    """Imports PyTorch and the model code off the GUI thread, after the window is on screen."""

    loaded = Signal(str)  # a description of the compute device
    failed = Signal(str)

    @Slot()
    def run(self) -> None:
        try:
            import torch

            import studio.core.models.registry  # noqa: F401
            import studio.core.training.trainer  # noqa: F401
            from studio.core.training.device import default_threads

            if torch.cuda.is_available():
                names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
                device = f"GPU: {names}"
            else:
                device = f"CPU ({os.cpu_count()} cores, {default_threads()} for training)"
            self.loaded.emit(device)
        except Exception as e:  # noqa: BLE001 - shown in the status bar, never a crash
            self.failed.emit(f"{type(e).__name__}: {e}")


class MainWindow(QMainWindow):
    engine_loaded = Signal()

    def __init__(self, settings_path: Path | None = None):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Studio")
        self.resize(1280, 800)
        self.settings = QSettings(str(settings_path or data_dir() / "gui-settings.ini"), QSettings.Format.IniFormat)
        self.session = StudioSession(self)
        self.engine_ready = False
        self._engine_thread: QThread | None = None

        self.nav = QListWidget(objectName="navList")
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget(objectName="pageStack")
        self.data_page = DataPage(self.session)
        self.model_page = ModelPage(self.session)
        self.train_page = TrainPage(self.session)
        self.finetune_page = FinetunePage(self.session)
        self.try_page = TryPage()
        self.runs_page = RunsPage()
        self.search_page = SearchPage()
        self.pages = {"Data": self.data_page, "Model": self.model_page, "Train": self.train_page,
                      "Fine-tune": self.finetune_page, "Try": self.try_page, "Runs": self.runs_page, "Search": self.search_page}
        for title, page in self.pages.items():
            self.nav.addItem(title)
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setStyleSheet("QListWidget { font-size: 15px; } QListWidget::item { padding: 10px 12px; }")

        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.device_status = QLabel("Device: loading…", objectName="deviceStatus")
        self.run_status = QLabel("No run", objectName="runStatus")
        self.throughput_status = QLabel("", objectName="throughputStatus")
        for w in (self.run_status, self.throughput_status, self.device_status):
            self.statusBar().addPermanentWidget(w)
        self._build_menus()

        for monitor in (self.train_page.monitor, self.finetune_page.monitor):
            monitor.run_started.connect(lambda d: self.run_status.setText(f"Run: {Path(d).name} (running)"))
            monitor.throughput.connect(lambda v: self.throughput_status.setText(f"{v:,.0f} tokens/s"))
            monitor.run_ended.connect(lambda status, m=monitor: self._on_run_ended(m, status))
            monitor.state_changed.connect(self._sync_actions)
        self.session.changed.connect(self._sync_actions)
        self.nav.currentRowChanged.connect(lambda _row: self._sync_actions())
        self.try_page.go_to_finetune.connect(lambda: self.show_page("Fine-tune"))
        self.runs_page.open_curves.connect(self.load_run)
        self.runs_page.resume_run.connect(self.resume_run)
        self.runs_page.finetune_from.connect(lambda path: (self.finetune_page.set_base(path), self.show_page("Fine-tune")))
        self.runs_page.try_run.connect(lambda path: (self.try_page.set_model(path), self.show_page("Try")))
        self.search_page.promote_requested.connect(self.start_promoted)
        self._restore()
        self._sync_actions()

    # ---- menus --------------------------------------------------------------------------------

    def _action(self, text: str, name: str, slot: object, shortcut: QKeySequence | str | None = None) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self._action("Open corpus…", "openCorpusAction", self.open_corpus, QKeySequence.StandardKey.Open))
        file_menu.addAction(self._action("Open run…", "openRunAction", self.open_run))
        self.recent_menu = file_menu.addMenu("Recent")
        self.recent_menu.setObjectName("recentMenu")
        file_menu.addSeparator()
        file_menu.addAction(self._action("Quit", "quitAction", self.close, QKeySequence.StandardKey.Quit))

        run_menu = bar.addMenu("&Run")
        self.start_action = self._action("Start", "startAction", lambda: self.active_monitor().start_requested.emit(), "Ctrl+R")
        self.pause_action = self._action("Pause", "pauseAction", lambda: self.active_monitor().pause())
        self.resume_action = self._action("Resume", "resumeAction", lambda: self.active_monitor().resume())
        self.stop_action = self._action("Stop", "stopAction", lambda: self.active_monitor().stop(), "Ctrl+.")
        for a in (self.start_action, self.pause_action, self.resume_action, self.stop_action):
            run_menu.addAction(a)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("About Studio", "aboutAction", self.show_about))
        self._refresh_recent()

    def active_monitor(self) -> RunMonitorWidget:
        """The Run menu drives the Fine-tune page's run when that page is shown, else the Train page's."""
        return self.finetune_page.monitor if self.stack.currentWidget() is self.finetune_page else self.train_page.monitor

    def show_page(self, title: str) -> None:
        self.nav.setCurrentRow(list(self.pages).index(title))

    def _sync_actions(self) -> None:
        if not hasattr(self, "start_action"):
            return
        m = self.active_monitor()
        self.start_action.setEnabled(m.start_button.isEnabled())
        self.pause_action.setEnabled(m.pause_button.isEnabled())
        self.resume_action.setEnabled(m.resume_button.isEnabled())
        self.stop_action.setEnabled(m.stop_button.isEnabled())

    # ---- engine -------------------------------------------------------------------------------

    def load_engine(self) -> None:
        """Import PyTorch on a worker thread; the window stays usable meanwhile."""
        if self.engine_ready or self._engine_thread is not None:
            return
        self.statusBar().showMessage("Loading PyTorch…")
        self._engine_thread = QThread(self)
        self._engine_thread.setObjectName("engineLoadThread")
        self._engine_worker = EngineLoadWorker()
        self._engine_worker.moveToThread(self._engine_thread)
        self._engine_thread.started.connect(self._engine_worker.run)
        self._engine_worker.loaded.connect(self._engine_thread.quit, Qt.ConnectionType.DirectConnection)
        self._engine_worker.failed.connect(self._engine_thread.quit, Qt.ConnectionType.DirectConnection)
        self._engine_worker.loaded.connect(self._on_engine_loaded)
        self._engine_worker.failed.connect(self._on_engine_failed)
        self._engine_thread.start()

    def _finish_engine_thread(self) -> None:
        if self._engine_thread is not None:
            self._engine_thread.wait()
            self._engine_thread = None

    def _on_engine_loaded(self, device: str) -> None:
        self._finish_engine_thread()
        self.engine_ready = True
        self.session.engine_ready = True
        self.device_status.setText(f"Device: {device}")
        self.statusBar().showMessage("Ready", 3000)
        self.model_page.engine_ready()
        self.session.changed.emit()
        self.engine_loaded.emit()

    def _on_engine_failed(self, message: str) -> None:
        self._finish_engine_thread()
        self.device_status.setText("Device: unavailable")
        self.statusBar().showMessage(f"PyTorch could not be loaded: {message}")
        QMessageBox.critical(self, "Studio", f"PyTorch could not be loaded, so nothing can be trained.\n\n{message}")

    # ---- files and runs -----------------------------------------------------------------------

    def open_corpus(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open corpus files", "", "Text, CSV, TSV, JSONL (*.txt *.md *.csv *.tsv *.jsonl *.json);;All files (*)")
        if files:
            self.load_corpus(files)

    def load_corpus(self, files: list[str]) -> None:
        self.data_page.set_paths(files)
        self.show_page("Data")
        self._add_recent("corpus", "; ".join(files))

    def open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(runs_dir()))
        if folder:
            self.load_run(Path(folder))

    def load_run(self, folder: Path) -> None:
        if not (folder / "config.toml").exists():
            QMessageBox.warning(self, "Studio", f"{folder} is not a Studio run folder (it has no config.toml).")
            return
        self.train_page.show_run(folder)
        self.show_page("Train")
        self.run_status.setText(f"Run: {folder.name}")
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
            self.recent_menu.addAction("(nothing yet)").setEnabled(False)
        for kind, target in items:
            label = f"{'Corpus' if kind == 'corpus' else 'Run'}: {target}"
            action = self.recent_menu.addAction(label)
            if kind == "corpus":
                action.triggered.connect(lambda _=False, t=target: self.load_corpus(t.split("; ")))
            else:
                action.triggered.connect(lambda _=False, t=target: self.load_run(Path(t)))

    def _on_run_ended(self, monitor: RunMonitorWidget, status: str) -> None:
        run_dir = monitor.run_dir
        self.run_status.setText(f"Run: {run_dir.name if run_dir else ''} ({status.replace('_', ' ')})")
        if run_dir:
            self._add_recent("run", str(run_dir))
            if status in ("finished", "early_stopped", "stopped") and (run_dir / "checkpoints").exists():
                # The newest model is the one people want to try next.
                self.try_page.set_model(run_dir)
                if monitor is self.train_page.monitor:
                    self.finetune_page.set_base(run_dir)

    def show_about(self) -> None:
        QMessageBox.about(self, "About Studio", about_text())

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
            self, "Training is running",
            "A run is in progress. Stop it, save a checkpoint and quit?\n\nYou can resume it later from File > Open run.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        monitors = [m for m in (self.train_page.monitor, self.finetune_page.monitor) if m.training.running]
        if monitors or self.search_page.session.running:
            if not self.confirm_close_during_run():
                event.ignore()
                return
            self.statusBar().showMessage("Stopping the run and saving a checkpoint…")
            for m in monitors:
                m.shutdown()
        self.train_page.shutdown()
        self.finetune_page.shutdown()
        self.try_page.shutdown()
        self.search_page.shutdown()
        self.data_page.shutdown()
        self._finish_engine_thread()
        self.save_settings()
        self.statusBar().clearMessage()  # also stops the status bar's own message timer
        event.accept()


def about_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import PySide6
    from PySide6.QtCore import qVersion

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    from studio import __version__

    return (
        f"<h3>Studio {__version__}</h3><p>From raw text to a trained, fine-tuned language model.</p>"
        f"<p>PyTorch {v('torch')}<br>Qt {qVersion()} (PySide6 {PySide6.__version__})<br>spaCy {v('spacy')}<br>"
        f"pyqtgraph {v('pyqtgraph')}<br>tokenizers {v('tokenizers')}<br>safetensors {v('safetensors')}</p>"
    )
