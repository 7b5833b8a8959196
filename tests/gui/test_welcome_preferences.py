"""The first hour beyond the pages: the welcome screen and its three ways in, Preferences (each one
shown to take effect), the keyboard (page, run and help keys, and the list of them), explanations
one click from a setting, tooltips and names for screen readers."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QCommandLinkButton,
    QDialog,
    QFileDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QToolButton,
    QWidget,
)

from studio.core import paths
from studio.core.decoding.options import HELP as DECODING_HELP
from studio.core.events import RunStarted
from studio.core.preferences import Preferences, load_preferences, save_preferences
from studio.gui import main_window as main_window_module
from studio.gui.main_window import MainWindow
from studio.gui.preferences import apply_theme
from studio.gui.shortcuts import SHORTCUTS
from tests.gui.test_training_flow import click

WELCOME_NAMES = ("welcomeDemo", "welcomeOpenCorpus", "welcomeOpenRun", "welcomeDontShow")


def key(qtbot, window: MainWindow, keys: str) -> None:
    """Press ``keys`` ("Ctrl+3") in the window, as a person would."""
    from PySide6.QtGui import QKeySequence

    if QApplication.activeWindow() is not window:  # keys go to the active window (a dialog may have been)
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    combo = QKeySequence(keys)[0]
    qtbot.keyClick(window, combo.key(), combo.keyboardModifiers())


def welcome_of(window: MainWindow) -> QDialog:
    dialog = window.findChild(QDialog, "welcomeDialog")
    assert dialog is not None, "no welcome screen"
    return dialog


def open_preferences(qtbot, window: MainWindow) -> QDialog:
    key(qtbot, window, "Ctrl+,")
    dialog = window.findChild(QDialog, "preferencesDialog")
    assert dialog is not None and dialog.isVisible()
    return dialog


@pytest.fixture
def fresh_window(qtbot, tmp_path: Path):
    """A window as on a first launch: no preferences file, no run (no PyTorch needed)."""
    made: list[MainWindow] = []

    def make() -> MainWindow:
        w = MainWindow(settings_path=tmp_path / "settings.ini")
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


# ---- the welcome screen ------------------------------------------------------------------------


def test_welcome_shows_on_first_launch_until_turned_off(qtbot, fresh_window) -> None:
    first = fresh_window()
    qtbot.waitUntil(lambda: first.findChild(QDialog, "welcomeDialog") is not None and welcome_of(first).isVisible(), timeout=5000)
    dialog = welcome_of(first)
    for name in WELCOME_NAMES:
        assert dialog.findChild(QWidget, name) is not None, name
    for name in WELCOME_NAMES[:3]:
        assert dialog.findChild(QCommandLinkButton, name).description(), f"{name} says what happens next"
    dont_show = dialog.findChild(QCheckBox, "welcomeDontShow")
    assert not dont_show.isChecked()
    click(qtbot, dont_show)
    assert load_preferences().show_welcome is False
    first.close()

    second = fresh_window()
    qtbot.wait(50)
    assert second.findChild(QDialog, "welcomeDialog") is None, "turned off: not shown at launch"
    second.findChild(QAction, "welcomeAction").trigger()  # Help > Welcome still brings it back
    assert welcome_of(second).isVisible()
    assert welcome_of(second).findChild(QCheckBox, "welcomeDontShow").isChecked()


def test_welcome_is_not_shown_once_a_run_exists(qtbot, fresh_window) -> None:
    (paths.runs_dir() / "20260101-120000-gpt").mkdir()
    w = fresh_window()
    qtbot.wait(50)
    assert w.findChild(QDialog, "welcomeDialog") is None


def test_welcome_open_my_corpus_uses_the_data_pages_dialog(qtbot, window: MainWindow, tiny_corpus: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def choose(parent: QWidget, *args: object, **kwargs: object) -> tuple[list[str], str]:
        asked.append(parent.objectName())
        return [str(tiny_corpus)], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(choose))
    window.show_page("Runs")
    dialog = window.show_welcome()
    click(qtbot, dialog.findChild(QCommandLinkButton, "welcomeOpenCorpus"))
    assert asked == ["field_data_paths"], "the Data page's own Open files… dialog"
    assert not dialog.isVisible()
    assert window.stack.currentWidget() is window.data_page
    assert window.session.data.paths == [str(tiny_corpus)]
    assert window.data_page.raw_preview.toPlainText().startswith("One morning")


def test_welcome_open_a_run_goes_to_the_runs_page(qtbot, window: MainWindow) -> None:
    dialog = window.show_welcome()
    click(qtbot, dialog.findChild(QCommandLinkButton, "welcomeOpenRun"))
    assert window.stack.currentWidget() is window.runs_page and not dialog.isVisible()


def test_demo_in_one_click_with_preferences_then_pause_resume_stop_by_keyboard(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """Preferences first (CPU threads, device, data folder), then "Train on the demo corpus": the
    demo dataset is chosen and built on the Data page, a small GPT starts on the Train page, and
    the training process really uses the preferred thread count, device and folder."""
    from studio.core.training.device import default_threads

    threads = 2 if default_threads() == 1 else 1  # not what the run would use anyway
    chosen = tmp_path / "my-studio-data"
    dialog = open_preferences(qtbot, window)
    dialog.findChild(QSpinBox, "prefThreadsSpin").setValue(threads)
    device = dialog.findChild(QWidget, "prefDeviceCombo")
    device.setCurrentIndex(device.findData("cpu"))
    dialog.findChild(QLineEdit, "prefDataFolderEdit").setText(str(chosen))
    click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
    assert paths.runs_dir() == chosen / "runs"

    monitor = window.train_page.monitor
    welcome = window.show_welcome()
    with qtbot.waitSignal(monitor.training.event, timeout=180_000, check_params_cb=lambda e: isinstance(e, RunStarted)) as started:
        click(qtbot, welcome.findChild(QCommandLinkButton, "welcomeDemo"))
        assert window.stack.currentWidget() is window.data_page and window.data_page.build.running
    event: RunStarted = started.args[0]
    assert window.stack.currentWidget() is window.train_page
    assert window.session.data.dataset == "demo" and window.session.data.paths == []
    assert window.session.tokenizer.kind == "char"
    assert window.session.model.arch == "gpt" and window.session.model.d_model == 128
    assert window.session.train.steps == 600
    assert event.threads == threads and event.device.startswith("cpu"), (event.threads, event.device)
    run_dir = Path(event.run_dir)
    assert run_dir.parent == chosen / "runs"
    saved = tomllib.loads((run_dir / "config.toml").read_text())
    assert saved["run"]["threads"] == threads and saved["run"]["device"] == "cpu"

    qtbot.waitUntil(lambda: monitor.state == "running" and monitor.pause_button.isEnabled(), timeout=60_000)
    key(qtbot, window, "Ctrl+P")
    qtbot.waitUntil(lambda: monitor.state == "paused", timeout=60_000)
    key(qtbot, window, "Ctrl+P")
    qtbot.waitUntil(lambda: monitor.state == "running", timeout=60_000)
    with qtbot.waitSignal(monitor.run_ended, timeout=120_000) as ended:
        key(qtbot, window, "Ctrl+.")
    assert ended.args == ["stopped"]


def test_demo_from_the_first_launch_waits_for_pytorch(qtbot, fresh_window) -> None:
    """On a first launch the welcome screen is up before PyTorch has loaded: the demo corpus is
    built meanwhile, and the run starts as soon as the engine is there."""
    w = fresh_window()
    qtbot.waitUntil(lambda: w.findChild(QDialog, "welcomeDialog") is not None and welcome_of(w).isVisible(), timeout=5000)
    assert not w.engine_ready
    with qtbot.waitSignal(w.data_page.corpus_built, timeout=120_000):
        click(qtbot, welcome_of(w).findChild(QCommandLinkButton, "welcomeDemo"))
    assert "once PyTorch has loaded" in w.statusBar().currentMessage()
    assert not w.train_page.monitor.training.running
    monitor = w.train_page.monitor
    with qtbot.waitSignal(monitor.run_started, timeout=180_000):
        w.load_engine()
    assert w.stack.currentWidget() is w.train_page
    with qtbot.waitSignal(monitor.run_ended, timeout=120_000) as ended:
        qtbot.waitUntil(lambda: monitor.stop_button.isEnabled(), timeout=60_000)
        click(qtbot, monitor.stop_button)
    assert ended.args == ["stopped"]


# ---- preferences -------------------------------------------------------------------------------


def test_theme_and_plot_refresh_take_effect_at_once_and_are_kept(qtbot, window: MainWindow) -> None:
    app = QApplication.instance()
    before = app.palette().color(QPalette.ColorRole.Window)
    try:
        dialog = open_preferences(qtbot, window)
        theme = dialog.findChild(QWidget, "prefThemeCombo")
        theme.setCurrentIndex(theme.findData("dark"))
        dialog.findChild(QSpinBox, "prefPlotRefreshSpin").setValue(500)
        click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        field = window.findChild(QWidget, "field_train_lr")  # the widgets follow, once Qt has told them
        qtbot.waitUntil(lambda: field.palette().color(QPalette.ColorRole.Base).lightness() < 100, timeout=5000)
        assert window.train_page.monitor.plots.timer.interval() == 500
        assert window.finetune_page.monitor.plots.timer.interval() == 500
        assert load_preferences() == Preferences(theme="dark", plot_refresh_ms=500, show_welcome=False)

        dialog = open_preferences(qtbot, window)
        theme = dialog.findChild(QWidget, "prefThemeCombo")
        assert theme.currentData() == "dark", "the dialog opens with the saved values"
        theme.setCurrentIndex(theme.findData("light"))
        click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    finally:
        apply_theme("system")
    assert app.palette().color(QPalette.ColorRole.Window) == before


def test_saved_preferences_apply_at_the_next_launch(qtbot, tmp_path: Path) -> None:
    save_preferences(Preferences(plot_refresh_ms=750, cpu_threads=2, show_welcome=False))
    w = MainWindow(settings_path=tmp_path / "settings.ini")
    qtbot.addWidget(w)
    assert w.train_page.monitor.plots.timer.interval() == 750
    assert w.train_page.monitor.run_preferences.cpu_threads == 2
    w.close()


def test_cancel_changes_nothing(qtbot, window: MainWindow) -> None:
    dialog = open_preferences(qtbot, window)
    dialog.findChild(QSpinBox, "prefPlotRefreshSpin").setValue(1000)
    click(qtbot, dialog.findChild(QPushButton, "prefCancelButton"))
    assert window.train_page.monitor.plots.timer.interval() == 100
    assert load_preferences().plot_refresh_ms == 100


def test_a_language_change_says_it_applies_after_a_restart_and_offers_one(qtbot, window: MainWindow,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    restarted: list[bool] = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda parent, title, text, *a, **k: (asked.append(text),
                                                                                                     QMessageBox.StandardButton.Yes)[1]))
    monkeypatch.setattr(main_window_module, "restart_studio", lambda: restarted.append(True) or True)
    dialog = open_preferences(qtbot, window)
    language = dialog.findChild(QWidget, "prefLanguageCombo")
    labels = [language.itemText(i) for i in range(language.count())]
    assert labels[0].startswith("System") and "English" in labels and "简体中文" in labels
    note = dialog.findChild(QWidget, "prefLanguageNote")
    assert note.text() == ""
    language.setCurrentIndex(language.findData("zh_CN"))
    assert "starts again" in note.text()
    click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
    assert load_preferences().language == "zh_CN"
    assert asked and "Restart Studio now?" in asked[0]
    assert restarted == [True] and not window.isVisible(), "the window closes for the new one"


def test_an_unusable_data_folder_is_refused_with_the_reason(qtbot, window: MainWindow, tmp_path: Path) -> None:
    before = paths.data_dir()
    dialog = open_preferences(qtbot, window)
    edit = dialog.findChild(QLineEdit, "prefDataFolderEdit")
    error = dialog.findChild(QWidget, "prefErrorLabel")
    edit.setText("relative/folder")
    click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
    assert dialog.isVisible() and "absolute" in error.text()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    edit.setText(str(a_file))
    click(qtbot, dialog.findChild(QPushButton, "prefOkButton"))
    assert dialog.isVisible() and str(a_file) in error.text()
    assert paths.data_dir() == before
    click(qtbot, dialog.findChild(QPushButton, "prefCancelButton"))


# ---- the keyboard ------------------------------------------------------------------------------


def test_ctrl_digits_switch_pages_in_navigation_order(qtbot, window: MainWindow) -> None:
    window.train_page.forms["train"].editors["steps"].setFocus()  # also from inside an editor
    for n, page in enumerate(window.pages.values(), start=1):
        key(qtbot, window, f"Ctrl+{n}")
        assert window.stack.currentWidget() is page, n
        assert window.nav.currentRow() == n - 1


def test_the_shortcuts_list_is_what_the_window_registered(qtbot, window: MainWindow) -> None:
    key(qtbot, window, "F1")
    dialog = window.findChild(QDialog, "shortcutsDialog")
    assert dialog is not None and dialog.isVisible()
    rows = dialog.rows()
    actions = {a.objectName(): a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()}
    assert len(rows) == len(actions) == len(SHORTCUTS) + len(window.pages)
    listed_keys = [k for k, _ in rows]
    assert len(set(listed_keys)) == len(listed_keys), "no two actions share keys"
    for name in SHORTCUTS:
        assert name in actions, f"{name} is in the table but not registered"
    for n, title in enumerate(window.pages, start=1):
        assert (f"Ctrl+{n}", f"Show the {title} page") in rows
    assert ("Ctrl+P", "Pause the run, or resume a paused one") in rows
    assert ("Ctrl+.", "Stop the run (a checkpoint is saved; it can be resumed)") in rows
    click(qtbot, dialog.findChild(QPushButton, "shortcutsCloseButton"))


# ---- explanations, tooltips, screen readers ----------------------------------------------------


def _explanation(window: MainWindow) -> tuple[QDialog, QTextBrowser]:
    dialog = window.findChild(QDialog, "explanationDialog")
    assert dialog is not None and dialog.isVisible()
    return dialog, dialog.findChild(QTextBrowser, "explanationView")


def test_settings_link_to_their_explanations(qtbot, window: MainWindow) -> None:
    window.show_page("Train")
    click(qtbot, window.findChild(QToolButton, "explain_train_lr"))
    dialog, view = _explanation(window)
    assert dialog.windowTitle() == "Learning rate" and "warm-up" in view.toPlainText()
    assert window.findChild(QToolButton, "explain_train_steps") is None, "only settings with a note get a ?"
    click(qtbot, window.findChild(QToolButton, "explain_optimizer_name"))  # a choice: the note of its value
    assert _explanation(window)[0].windowTitle() == "AdamW"
    window.train_page.forms["optimizer"].set_values({"name": "sgd"})
    click(qtbot, window.findChild(QToolButton, "explain_optimizer_name"))
    assert _explanation(window)[0].windowTitle() == "SGD with momentum"
    assert len(window.findChildren(QDialog, "explanationDialog")) == 1, "one window, reused"

    window.show_page("Model")
    window.model_page.set_architecture("lstm")
    click(qtbot, window.findChild(QToolButton, "architectureExplainButton"))
    dialog, view = _explanation(window)
    assert dialog.windowTitle() == "Long short-term memory (LSTM)"
    assert "vertical-align:sub" in view.toHtml(), "the formula's subscripts are rendered, not shown as tags"
    assert window.findChild(QToolButton, "explain_model_dropout") is not None

    window.show_page("Fine-tune")
    method = window.finetune_page.method_form
    method.set_values({"method": "lora"})
    click(qtbot, window.findChild(QToolButton, "explain_finetune_lora_rank"))
    assert _explanation(window)[0].windowTitle() == "LoRA rank"
    assert window.findChild(QToolButton, "finetune_explain_train_lr") is not None


def test_decoding_and_lora_settings_have_tooltips(qtbot, window: MainWindow) -> None:
    page = window.try_page
    for widget, name in ((page.mode_combo, "mode"), (page.beam_spin, "beam_size"), (page.temperature_spin, "temperature"),
                         (page.top_k_spin, "top_k"), (page.top_p_spin, "top_p"), (page.max_tokens_spin, "max_new_tokens"),
                         (page.seed_spin, "seed")):
        assert widget.toolTip() == DECODING_HELP[name], widget.objectName()
    for name in ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "method", "freeze_layers"):
        assert window.finetune_page.method_form.editors[name].toolTip(), name


def test_controls_have_names_for_screen_readers(qtbot, window: MainWindow) -> None:
    assert window.nav.accessibleName() == "Pages"
    assert window.findChild(QWidget, "field_train_lr").accessibleName() == "Learning rate"
    assert window.findChild(QWidget, "field_train_lr").accessibleDescription().startswith("Peak rate")
    assert window.findChild(QToolButton, "explain_train_lr").accessibleName() == "Explain Learning rate"
    for plot in window.findChildren(pg.PlotWidget):
        assert plot.accessibleName(), plot.objectName()
    assert window.findChild(pg.PlotWidget, "lossPlot").accessibleName() == "Loss"
    # Buttons that show no words (a "?", an icon) must have a name of their own.
    for button in window.findChildren(QAbstractButton):
        if button.objectName().startswith("qt_") or isinstance(button.parentWidget(), (pg.PlotWidget,)):
            continue
        if len(button.text().strip("?&… ")) == 0 and not isinstance(button, QCheckBox):
            assert button.accessibleName(), button.objectName()
