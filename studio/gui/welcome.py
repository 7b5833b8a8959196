"""The welcome screen: what a person sees on first launch (no run yet, and the screen not turned
off), and again from Help > Welcome. Three ways in, each saying what happens next: train on the
demo corpus in one click, open one's own corpus, or open a run.

"Train on the demo corpus" does what a person would do by hand, with the pages' own actions: the
shipped ``demo-gpt`` preset's data and tokenizer on the Data page, Build, then its model and
training settings on the Model and Train pages, and Start (:class:`DemoRun`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QCommandLinkButton,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from studio.core.config import RunConfig
from studio.core.i18n import _
from studio.core.paths import runs_dir
from studio.core.resources import find_config

if TYPE_CHECKING:
    from studio.gui.main_window import MainWindow

DEMO_PRESET = "demo-gpt"  # a small character GPT on the demo stories: about a minute on a laptop CPU


def no_runs_yet() -> bool:
    """True until the runs folder holds anything (one directory read, however many runs)."""
    return next(runs_dir().iterdir(), None) is None


class WelcomeDialog(QDialog):
    demo_requested = Signal()
    open_corpus_requested = Signal()
    open_run_requested = Signal()
    show_on_launch_changed = Signal(bool)

    def __init__(self, show_on_launch: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcomeDialog")
        self.setWindowTitle(_("Welcome to Studio"))
        self.setMinimumWidth(560)  # narrower, each "what happens next" line wrapped into a column of four words
        intro = QLabel(_("<h2>Welcome to Studio</h2><p>From raw text to a language model you trained yourself. "
                         "Where would you like to start?</p>"))
        intro.setWordWrap(True)
        col = QVBoxLayout(self)
        col.addWidget(intro)
        for name, text, next_line, signal in (
            ("welcomeDemo", _("Train on the demo corpus"),
             _("Studio writes short stories, builds a character tokenizer and starts a small GPT on the Train page "
               "(about a minute on a laptop CPU); you watch its loss fall and read what it writes."), self.demo_requested),
            ("welcomeOpenCorpus", _("Open my own corpus"),
             _("Choose text, CSV or JSONL files; the Data page shows their encoding and first lines, and Build turns "
               "them into tokens."), self.open_corpus_requested),
            ("welcomeOpenRun", _("Open a run"),
             _("The Runs page lists every run: open its curves, resume it, try it or fine-tune it."), self.open_run_requested),
        ):
            button = QCommandLinkButton(text, next_line, objectName=name)
            button.setAccessibleDescription(next_line)
            button.clicked.connect(self.accept)  # closed first: the next step may open a dialog of its own
            button.clicked.connect(signal)
            col.addWidget(button)
        self.dont_show = QCheckBox(_("Don't show this again"), objectName="welcomeDontShow")
        self.dont_show.setToolTip(_("Help > Welcome brings this screen back"))
        self.dont_show.setChecked(not show_on_launch)
        self.dont_show.toggled.connect(lambda on: self.show_on_launch_changed.emit(not on))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("welcomeCloseButton")
        buttons.rejected.connect(self.reject)
        col.addWidget(self.dont_show, 0, Qt.AlignmentFlag.AlignLeft)  # as wide as its text: a click beside it does nothing
        col.addWidget(buttons)


class DemoRun(QObject):
    """The demo run, step by step through the pages; ``failed`` when a step cannot go on (the
    page concerned already shows why)."""

    started = Signal()
    failed = Signal()

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.config: RunConfig | None = None
        page = window.data_page
        page.corpus_built.connect(self._on_built)
        page.build.failed.connect(self._give_up)
        page.build.cancelled.connect(self._give_up)
        window.engine_loaded.connect(self._on_engine)
        self._waiting_for_engine = False

    @property
    def pending(self) -> bool:
        return self.config is not None

    def start(self) -> None:
        w = self.window
        self.config = RunConfig.load(find_config(DEMO_PRESET))  # the shipped preset, through the parser
        w.data_page.apply_settings(self.config.data, self.config.tokenizer)
        w.show_page("Data")
        w.data_page.start_build()
        if not w.data_page.build.running:  # refused: the Data page's status says why
            self._give_up()

    def _on_built(self, _prepared: object) -> None:
        if not self.pending:
            return
        if self.window.engine_ready:
            self._configure_and_start()
        else:
            self._waiting_for_engine = True
            self.window.statusBar().showMessage(_("The demo corpus is built; the run starts once PyTorch has loaded…"))

    def _on_engine(self) -> None:
        if self._waiting_for_engine and self.pending:
            self._waiting_for_engine = False
            self._configure_and_start()

    def _configure_and_start(self) -> None:
        w, config = self.window, self.config
        assert config is not None
        self.config = None
        model = config.model.to_dict()
        w.model_page.set_architecture(model.pop("arch"))
        assert w.model_page.form is not None
        w.model_page.form.set_values(model)
        for section in ("train", "optimizer", "schedule"):
            w.train_page.forms[section].set_values(getattr(config, section).to_dict())
        w.show_page("Train")
        if not w.train_page.monitor.start_button.isEnabled():  # the monitor says why it cannot start
            self.failed.emit()
            return
        w.train_page.start()
        self.started.emit()

    def _give_up(self, *_args: object) -> None:
        if self.pending:
            self.config = None
            self._waiting_for_engine = False
            self.failed.emit()
