"""The window in Simplified Chinese: every page, tab, menu and dialog it can open without a real
file, and no English left on screen.

Two tests walk the same window and collect every string a person reads (labels, buttons, group
boxes, tabs, combo items, table headings, menus, window titles, placeholders, tooltips, plot
titles, axis labels and legends, message boxes and file dialogs' captions):

- ``test_every_visible_string_goes_through_the_catalog`` translates with a pseudo-catalog made
  from the template (every message of ``scripts/i18n.py extract`` with its Latin words replaced
  by 文, placeholders and tags kept). An English word still on screen then was never wrapped in
  ``_()`` / ``N_()``: this test does not depend on the translators' progress.
- ``test_window_shows_no_english_in_zh_cn`` uses the real ``zh_CN.po``. Each string left is
  reported with its widget's objectName as "not wrapped" (no message of the template accounts
  for it), "in the catalog but not translated yet" (translate it in zh_CN.po), or "translated,
  but the translation keeps these Latin words" (reword it, or add the name to ALLOWED_WORDS).

A string fails when, after the names and notations below are taken out (ALLOWED_WORDS, paths,
file names, config keys and values, words with digits), any run of two or more Latin letters
remains. ``test_plot_axes_write_numbers_as_the_language_does`` checks the plots' tick labels.
"""

from __future__ import annotations

import codecs
import functools
import gettext
import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QCoreApplication, Qt, QTranslator
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QTextEdit,
    QTreeView,
    QWidget,
)

from studio.core import i18n
from studio.core.resources import preset_names
from studio.gui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]

# Names that stay as the field writes them, in every language (docs/translating.md), and the few
# notations a translation keeps. Compared without regard to case ("gpt" in a run's label).
ALLOWED_WORDS = {
    "gpt", "bert", "lstm", "gru", "rnn", "transformer", "bpe", "lora", "adamw", "adam", "sgd", "cpu", "gpu", "cuda",
    "studio", "spacy", "jieba", "toml", "csv", "tsv", "jsonl", "json", "pytorch", "qt", "pyside", "pyqtgraph",
    "tokenizers", "safetensors", "utf", "bom", "dropout", "id", "eta", "top", "bleu", "chrf", "rouge", "rougel", "squad", "rope", "mlp",
    "muon", "newton", "schulz",
    "layernorm", "layernorms", "rmsnorm", "gbk", "mps",
    # units
    "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "ms", "min",
    # names: a function, a float value, datasets and libraries known by these names
    "tanh", "nan", "imdb", "tiny", "shakespeare", "python", "charset", "normalizer",
    # values a person types as they are: search ranges (1e-4 .. 1e-2 log int), LoRA target layers,
    # and the roles of a task's field mapping (text=review)
    # methods and formats known by these names in Chinese texts too
    "png", "tpe", "cma", "es", "hyperband", "fanova", "optuna", "tensorboard", "mfu",
    # model techniques known by these names (QK-norm, GELU, ReLU², warm-up/stable/decay), and logits
    "qk", "gelu", "relu", "wsd", "logit", "pca",
    "log", "int", "qkv", "kv", "proj", "fc", "out",
    "text", "label", "source", "target", "context", "question", "answer", "document", "summary",
}
# Notations taken out before looking for words: paths and file names, file patterns, config keys
# (train.lr, d_model), words with digits (UTF-8, PySide6, GB18030, 1e-4), Qt's %v / %m / %p.
_PATH = re.compile(r"[^\s()\[\]'\"“”,;]*[/\\][^\s()\[\]'\"“”,;]*")
_FILE = re.compile(r"\*?[\w.-]*\.(?:txt|md|csv|tsv|jsonl|json|toml|zip|ini|safetensors|pt|log)\b", re.IGNORECASE)
_KEY = re.compile(r"\b[A-Za-z]\w*(?:\.\w+)+\b|\b\w*_\w*\b|\b\w+=\w+\b|\[\w+\]")
_WITH_DIGIT = re.compile(r"\b[\w-]*\d[\w-]*\b")
_WORD = re.compile(r"[A-Za-z]{2,}")
_TAG = re.compile(r"<[^>]*>")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
# Strings that are not the window's words, by where they are shown.
EXEMPT = {
    ("field_task_template", "placeholder"): "the task's default prompt template: text the model reads, kept as it is trained",
}


@functools.cache
def data_names() -> tuple[str, ...]:
    """Names from data that a string may hold: shipped presets, demo tasks, built-in datasets, and
    the languages offered, each in its own language ("English" stays English)."""
    from studio.core.data.datasets import DATASETS, DEMO_TITLES
    from studio.core.tasks.demo import DEMO_TASKS

    try:
        from studio.core.preferences import LANGUAGE_NAMES
    except ImportError:
        LANGUAGE_NAMES = {}  # noqa: N806
    names = {*preset_names(), *DEMO_TASKS, *DATASETS, *DEMO_TITLES, *LANGUAGE_NAMES.values()}
    return tuple(sorted(names, key=len, reverse=True))


@functools.cache
def setting_values() -> frozenset[str]:
    """The values settings take as TOML writes them (auto, bpe, cosine, en): a translation keeps
    them where an explanation names them. Compared as written (lower case), so an untranslated
    "Translate" still shows."""
    from studio.core.architectures import ARCHITECTURE_CONFIGS
    from studio.core.config import SECTIONS

    classes = [*SECTIONS.values(), *ARCHITECTURE_CONFIGS.values()]
    return frozenset(v for cls in classes for spec in cls.field_specs() for v in (*spec.choices, *spec.suggestions))


def english_words(text: str) -> list[str]:
    """The runs of two or more Latin letters in ``text`` that are not a name, a notation or a
    setting's value."""
    for name in data_names():
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", " ", text)
    for pattern in (_PLACEHOLDER, _PATH, _FILE, _KEY, _WITH_DIGIT):
        text = pattern.sub(" ", text)
    values = setting_values()
    return [w for w in _WORD.findall(text) if w.lower() not in ALLOWED_WORDS and w not in values]


def is_codec(text: str) -> bool:
    """A text encoding's name (utf-8, euc-jp), as the encoding choices offer them."""
    try:
        codecs.lookup(text)
    except LookupError:
        return False
    return " " not in text


def plain(text: str) -> str:
    """What a label shows: rich text as Qt reads it out (without tags and entities), mnemonics
    (&File) without '&', spaces collapsed."""
    if _TAG.search(text):
        text = QTextDocumentFragment.fromHtml(text).toPlainText()
    text = re.sub(r"&(?=\S)", "", text.replace("&&", "\0")).replace("\0", "&")
    return " ".join(text.split())


# ---- collecting what the window shows ---------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    where: str  # the widget's objectName (or class) and its named ancestors
    text: str


def where(widget: QWidget | None, what: str = "") -> str:
    parts: list[str] = []
    own = type(widget).__name__ if widget is not None and not widget.objectName() else ""
    node = widget
    while node is not None and len(parts) < 3:
        if node.objectName() and node.objectName() not in ("pageStack", "mainWindow") and not node.objectName().startswith("qt_"):
            parts.append(node.objectName())
        node = node.parentWidget()
    label = " < ".join(([own] if own else []) + parts) or (type(widget).__name__ if widget is not None else "window")
    return f"{label} ({what})" if what else label


class Collector:
    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Shown] = {}

    def add(self, place: str, text: object) -> None:
        shown = plain(str(text or ""))
        if shown and (place, shown) not in self.found:
            self.found[(place, shown)] = Shown(place, shown)

    def widget_tree(self, root: QWidget) -> None:
        for w in [root, *root.findChildren(QWidget)]:
            self.widget(w)
        for plot in root.findChildren(pg.PlotWidget):
            self.plot(plot)

    def widget(self, w: QWidget) -> None:
        if w.objectName().startswith("qt_") and not isinstance(w, QAbstractButton):
            return  # Qt's own parts (scroll bars, spin box editors) say nothing of ours
        self.add(where(w, "tooltip"), w.toolTip())
        self.add(where(w, "status tip"), w.statusTip())
        if w.isWindow():
            self.add(where(w, "window title"), w.windowTitle())
        if isinstance(w, QLabel):
            self.add(where(w), w.text())
        elif isinstance(w, QAbstractButton):
            self.add(where(w), w.text())
        elif isinstance(w, QGroupBox):
            self.add(where(w, "title"), w.title())
        elif isinstance(w, QComboBox):
            for i in range(w.count()):
                self.add(where(w, "item"), w.itemText(i))
                self.add(where(w, "item tooltip"), w.itemData(i, Qt.ItemDataRole.ToolTipRole))
            if w.lineEdit() is not None:
                self.add(where(w, "placeholder"), w.lineEdit().placeholderText())
            self.add(where(w, "placeholder"), w.placeholderText())
        elif isinstance(w, QLineEdit | QPlainTextEdit | QTextEdit):
            self.add(where(w, "placeholder"), w.placeholderText())
            if isinstance(w, QTextBrowser):  # a text to read (an explanation), not one typed or logged
                self.add(where(w), w.toPlainText())
        elif isinstance(w, QProgressBar):
            self.add(where(w, "format"), w.format())
        elif isinstance(w, QAbstractSpinBox):
            for part in ("prefix", "suffix", "specialValueText"):
                self.add(where(w, part), getattr(w, part, lambda: "")())
        if isinstance(w, QTabWidget):
            for i in range(w.count()):
                self.add(where(w, "tab"), w.tabText(i))
                self.add(where(w, "tab tooltip"), w.tabToolTip(i))
        if isinstance(w, QListWidget):
            for i in range(w.count()):
                self.add(where(w, "item"), w.item(i).text())
        if isinstance(w, QTableView | QTreeView) and w.model() is not None:
            model = w.model()
            headers = ([(Qt.Orientation.Horizontal, w.horizontalHeader()), (Qt.Orientation.Vertical, w.verticalHeader())]
                       if isinstance(w, QTableView) else [(Qt.Orientation.Horizontal, w.header())])
            for orientation, header in headers:
                if header.isHidden():
                    continue
                count = model.columnCount() if orientation == Qt.Orientation.Horizontal else model.rowCount()
                for i in range(count):
                    self.add(where(w, "heading"), model.headerData(i, orientation, Qt.ItemDataRole.DisplayRole))
                    self.add(where(w, "heading tooltip"), model.headerData(i, orientation, Qt.ItemDataRole.ToolTipRole))
        if isinstance(w, QMenu):
            self.menu(w)

    def plot(self, plot: pg.PlotWidget) -> None:
        item = plot.getPlotItem()
        self.add(where(plot, "plot title"), item.titleLabel.text)
        for side in ("left", "bottom", "right", "top"):
            axis = item.getAxis(side)
            if axis.isVisible():
                self.add(where(plot, f"{side} axis"), axis.labelText)
                self.add(where(plot, f"{side} axis unit"), axis.labelUnits)
        if item.legend is not None:
            for _sample, label in item.legend.items:
                self.add(where(plot, "legend"), label.text)

    def menu(self, menu: QMenu | Any) -> None:
        """A menu bar's or a menu's actions, and their submenus'."""
        owner = menu.objectName() or (plain(menu.title()) if isinstance(menu, QMenu) else "") or type(menu).__name__
        for action in menu.actions():
            if action.isSeparator():
                continue
            place = f"{action.objectName() or 'QAction'} in {owner}"
            self.add(f"{place} (text)", action.text())
            automatic = action.text().replace("&", "").removesuffix("…").removesuffix("...")
            if action.toolTip() != automatic:  # Qt's own tooltip repeats the text
                self.add(f"{place} (tooltip)", action.toolTip())
            self.add(f"{place} (status tip)", action.statusTip())
            if action.menu() is not None:
                self.menu(action.menu())


# ---- opening everything the window can open ---------------------------------------------------

# Menu actions that do something other than open a dialog of their own; the file dialogs they
# open are captured separately.
NOT_DIALOGS = {"quitAction", "startAction", "pauseAction", "resumeAction", "stopAction"}


def _settle(qtbot: Any) -> None:
    QApplication.processEvents()
    qtbot.wait(10)


class Dialogs:
    """Stands in for every modal dialog: records what it would have said, answers "no"."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, collector: Collector):
        self.collector = collector
        self.opened: list[QDialog] = []
        for kind in ("question", "warning", "critical", "information"):
            monkeypatch.setattr(QMessageBox, kind, staticmethod(self._message(kind)))
        monkeypatch.setattr(QMessageBox, "about", staticmethod(self._message("about")))
        monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(self._file("getOpenFileNames", ([], ""))))
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(self._file("getOpenFileName", ("", ""))))
        monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(self._file("getSaveFileName", ("", ""))))
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(self._file("getExistingDirectory", "")))
        for cls in (QDialog, QMessageBox):
            monkeypatch.setattr(cls, "exec", lambda dialog, *args: self._exec(dialog))

    def _message(self, kind: str) -> Callable[..., Any]:
        def show(parent: QWidget | None, title: str = "", text: str = "", *args: object, **kwargs: object) -> Any:
            self.collector.add(f"QMessageBox.{kind} (title)", title)
            self.collector.add(f"QMessageBox.{kind} ({plain(title)})", text)
            return QMessageBox.StandardButton.No

        return show

    def _file(self, kind: str, answer: object) -> Callable[..., Any]:
        def show(parent: QWidget | None = None, caption: str = "", folder: str = "", filters: str = "", *args: object, **kwargs: object) -> Any:
            self.collector.add(f"QFileDialog.{kind} (caption)", caption)
            for part in str(filters or "").split(";;"):
                self.collector.add(f"QFileDialog.{kind} ({plain(caption)}: filter)", part)
            return answer

        return show

    def _exec(self, dialog: QDialog) -> int:
        self.opened.append(dialog)
        self.collector.widget_tree(dialog)
        return 0


def walk_window(window: MainWindow, qtbot: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Collector:
    found = Collector()
    Dialogs(monkeypatch, found)
    found.add("status bar", window.statusBar().currentMessage())

    def everything() -> None:
        _settle(qtbot)
        found.widget_tree(window)

    # Every page, and on each every tab.
    for row in range(window.nav.count()):
        window.nav.setCurrentRow(row)
        everything()
        for tabs in window.stack.currentWidget().findChildren(QTabWidget):
            for i in range(tabs.count()):
                tabs.setCurrentIndex(i)
                everything()
    # What appears only on a choice: each architecture's form, each task's fields, the second Try pane.
    arch = window.model_page.arch_combo
    for i in range(arch.count()):
        arch.setCurrentIndex(i)
        everything()
    kind = window.finetune_page.task_form.editors["kind"]
    assert isinstance(kind, QComboBox)
    window.show_page("Fine-tune")
    for i in range(kind.count()):
        kind.setCurrentIndex(i)
        everything()
    window.try_page.compare_check.setChecked(True)
    window.show_page("Try")
    everything()

    # Every "?" beside a setting: the explanation it opens.
    for button in window.findChildren(QAbstractButton):
        if re.search(r"(^|_)explain_|ExplainButton$", button.objectName()) and button.isEnabled():
            button.click()
            _settle(qtbot)
            for dialog in window.findChildren(QDialog):
                if dialog.isVisible():
                    found.widget_tree(dialog)

    # Every menu, and every dialog a menu opens.
    found.menu(window.menuBar())
    actions = [a for menu in window.menuBar().findChildren(QMenu) for a in menu.actions()
               if a.objectName() and a.objectName() not in NOT_DIALOGS and a.menu() is None]
    for action in actions:
        before = set(QApplication.topLevelWidgets())
        action.trigger()
        _settle(qtbot)
        for w in set(QApplication.topLevelWidgets()) - before:
            if isinstance(w, QDialog | QMenu) and w.isVisible():
                found.widget_tree(w)
                w.close()
    for dialog in window.findChildren(QDialog):
        found.widget_tree(dialog)
    # The dialogs that need a situation rather than a menu: a folder that is not a run, deleting
    # runs, quitting during a run, PyTorch failing to load.
    window.load_run(tmp_path)
    window.runs_page.confirm_delete(["run-1", "run-2"], 12_000_000)
    window.confirm_close_during_run()
    window._on_engine_failed("/usr/lib/libtorch.so")  # noqa: SLF001 - as the loading thread reports a failure
    found.add("status bar", window.statusBar().currentMessage())
    found.widget(window.device_status)
    return found


# ---- the catalogs ----------------------------------------------------------------------------


@functools.cache
def template() -> Any:
    """The catalog template as ``scripts/i18n.py extract`` makes it (every _(), N_(), ngettext)."""
    spec = importlib.util.spec_from_file_location("studio_i18n_script", REPO / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.extract()


def _ids() -> set[str]:
    out: set[str] = set()
    for message in template():
        if message.id:
            out.update([message.id] if isinstance(message.id, str) else message.id)
    return out


def pseudo(message: str) -> str:
    """``message`` with its Latin words replaced by 文, its placeholders and tags kept."""
    pieces = re.split(r"(\{[^{}]*\}|<[^>]*>|&\w+;|%\w)", message)
    return "".join(p if i % 2 else re.sub(r"[A-Za-z]+", "文", p) for i, p in enumerate(pieces))


class PseudoTranslation(gettext.NullTranslations):
    def __init__(self, ids: set[str]):
        super().__init__()
        self.ids = ids

    def gettext(self, message: str) -> str:
        return pseudo(message) if message in self.ids else message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        chosen = singular if n == 1 else plural
        return pseudo(chosen) if singular in self.ids else chosen


def _pattern(message: str) -> re.Pattern[str] | None:
    """What ``message`` shows, as a pattern (placeholders match anything); None when it has no
    Latin word of its own."""
    text = plain(message)
    if not _WORD.search(_PLACEHOLDER.sub("", text)):
        return None
    return re.compile(".*?".join(re.escape(p) for p in _PLACEHOLDER.split(text)))


@functools.cache
def _catalog_patterns() -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """(the template's messages that zh_CN.po does not translate yet, the translations of
    zh_CN.po that keep Latin words), each as patterns of what they show, longest first."""
    from babel.messages.pofile import read_po

    with (REPO / "resources" / "translations" / "zh_CN.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    translated: dict[str, list[str]] = {}
    for message in catalog:
        strings = [message.string] if isinstance(message.string, str) else list(message.string or [])
        if message.id and not message.fuzzy and all(strings):
            key = message.id if isinstance(message.id, str) else message.id[0]
            translated[key] = strings
    untranslated = [m for m in _ids() if m not in translated]
    kept = [t for texts in translated.values() for t in texts]

    def patterns(messages: list[str]) -> list[re.Pattern[str]]:
        found = [p for m in sorted(messages, key=lambda m: -len(_PLACEHOLDER.sub("", m))) if (p := _pattern(m)) is not None]
        return found

    return patterns(untranslated), patterns(kept)


NOT_WRAPPED = "not wrapped in _() (not in the catalog template)"
NOT_TRANSLATED = "in the catalog but not translated yet in resources/translations/zh_CN.po"
KEPT = "translated, but the translation keeps these Latin words (reword it, or add a name to ALLOWED_WORDS)"


def classify(text: str) -> str:
    """Why ``text`` still shows English: which messages account for its English words."""
    untranslated, kept = _catalog_patterns()
    rest = text
    for pattern in kept:
        rest = pattern.sub(" ", rest)
    if not english_words(rest):
        return KEPT
    if any(p.fullmatch(rest.strip()) for p in untranslated):
        return NOT_TRANSLATED
    for pattern in untranslated:
        rest = pattern.sub(" ", rest)
    return NOT_TRANSLATED if not english_words(rest) else NOT_WRAPPED


# ---- the tests -------------------------------------------------------------------------------


@pytest.fixture
def qt_chinese() -> Iterator[None]:
    """Qt's own words (dialog buttons) in Chinese, as the app installs them."""
    from studio.gui.app import install_qt_translations

    app = QCoreApplication.instance()
    assert isinstance(app, QApplication)
    before = set(app.findChildren(QTranslator))
    install_qt_translations(app, "zh_CN")
    yield
    for translator in set(app.findChildren(QTranslator)) - before:
        app.removeTranslator(translator)
        translator.deleteLater()


@pytest.fixture
def chinese_window(request: pytest.FixtureRequest, qt_chinese: None) -> Iterator[MainWindow]:
    """The real window, built after switching to zh_CN (``window`` from conftest)."""
    i18n.set_language("zh_CN")
    try:
        yield request.getfixturevalue("window")
    finally:
        i18n.set_language("en")


@pytest.fixture
def pseudo_window(request: pytest.FixtureRequest, qt_chinese: None) -> Iterator[MainWindow]:
    """The real window, built with every message of the template translated to 文."""
    i18n.set_language("zh_CN")  # numbers and dates as zh_CN writes them
    i18n._translation = PseudoTranslation(_ids())  # noqa: SLF001 - a test-only catalog
    try:
        yield request.getfixturevalue("window")
    finally:
        i18n.set_language("en")


def exempt(shown: Shown) -> bool:
    if any(shown.where.startswith(name) and f"({what})" in shown.where for name, what in EXEMPT):
        return True
    return shown.where.endswith("(item)") and is_codec(shown.text)


def _english(found: Collector) -> list[tuple[Shown, list[str]]]:
    return [(s, words) for s in found.found.values() if not exempt(s) and (words := english_words(s.text))]


def test_every_visible_string_goes_through_the_catalog(qtbot, pseudo_window: MainWindow, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    found = walk_window(pseudo_window, qtbot, monkeypatch, tmp_path)
    assert len(found.found) > 200, "the walk found too little: is the window built?"
    left = _english(found)
    lines = [f"  {s.where}: {s.text!r}  [{', '.join(words)}]" for s, words in sorted(left, key=lambda x: x[0].where)]
    assert not left, f"{len(left)} string(s) on screen are not wrapped in _() / N_() (not in the catalog template):\n" + "\n".join(lines)


def test_window_shows_no_english_in_zh_cn(qtbot, chinese_window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = walk_window(chinese_window, qtbot, monkeypatch, tmp_path)
    assert len(found.found) > 200, "the walk found too little: is the window built?"
    left = sorted(_english(found), key=lambda x: x[0].where)
    kinds: dict[str, list[str]] = {NOT_WRAPPED: [], NOT_TRANSLATED: [], KEPT: []}
    for shown, words in left:
        kinds[classify(shown.text)].append(f"  {shown.where}: {shown.text!r}  [{', '.join(words)}]")
    report = [line for kind, lines in kinds.items() if lines for line in (f"{kind}: {len(lines)}", *lines)]
    assert not left, f"{len(left)} string(s) on screen are English in zh_CN:\n" + "\n".join(report)


def test_plot_axes_write_numbers_as_the_language_does(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tick labels go through the language's number format (grouping and decimal sign); German
    is borrowed from Babel to see the difference, since English and Chinese write them alike."""
    from studio.gui.widgets.metrics_plots import LocaleAxis

    axis = LocaleAxis("left")
    assert axis.tickStrings([0.0, 10_000.0, 20_000.0], 1.0, 10_000.0) == ["0", "10,000", "20,000"]
    assert axis.tickStrings([0.0, 0.0001], 1.0, 0.0001) == ["0.0000", "0.0001"]
    monkeypatch.setattr(i18n, "_language", "de")
    assert axis.tickStrings([0.0, 10_000.0], 1.0, 10_000.0) == ["0", "10.000"]
    assert axis.tickStrings([0.5, 1.0], 1.0, 0.5) == ["0,5", "1,0"]


def test_an_empty_choice_reads_empty_not_the_catalog_header() -> None:
    """gettext translates "" to the catalog's header; a setting whose choice is "" showed it."""
    i18n.set_language("zh_CN")
    try:
        assert i18n._("") == ""
    finally:
        i18n.set_language("en")


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_the_window_fits_a_1280_by_800_screen(qtbot, request: pytest.FixtureRequest, qt_chinese: None, language: str) -> None:
    """Every page made, the window's narrowest size fits 1280x800 in both languages: the Compare
    view's controls in one row made the Runs page 1,209 px wide, and the window 1,391 px."""
    i18n.set_language(language)
    try:
        window = request.getfixturevalue("window")
        window.build_deferred()
        for attr in ("data_page", "model_page", "train_page", "finetune_page", "try_page", "runs_page", "search_page"):
            getattr(window, attr)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1280 and hint.height() <= 800, f"{language}: {hint.width()}x{hint.height()}"
    finally:
        i18n.set_language("en")
