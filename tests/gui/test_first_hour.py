"""What a person meets in the first hour on the Data, Model, Fine-tune, Try and Runs pages: each
test reproduces a bug that was reported (it failed before the fix), by clicks where it can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollBar,
    QTabBar,
    QTabWidget,
    QTextEdit,
    QWidget,
)

from studio.core.config import RunConfig
from studio.core.events import EvalLogged, MetricsReported, RunEnded
from studio.gui.main_window import MainWindow
from studio.gui.pages.runs_page import COLUMNS
from studio.gui.widgets.layout import VerticalScrollWidget
from tests.gui.test_training_flow import click

INTERACTIVE = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit, QTextEdit, QPlainTextEdit, QAbstractItemView,
               QTabWidget, QAbstractSlider, pg.PlotWidget)
# Widgets Qt or pyqtgraph make inside these (a spin box's line edit, a tab bar's scroll buttons) are theirs.
COMPOSITES = (QComboBox, QAbstractSpinBox, QTabBar, QAbstractItemView, pg.PlotWidget, QMenu)


def _is_internal(widget: QWidget, window: QWidget) -> bool:
    if widget.objectName().startswith("qt_") or isinstance(widget, QScrollBar):
        return True
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, COMPOSITES):
            return True
        parent = parent.parentWidget()
    return False


def test_every_interactive_widget_has_a_window_unique_object_name(window: MainWindow) -> None:
    """All pages are built (the Model page's form once the engine is loaded); the Train and
    Fine-tune pages' TrainConfig forms and run monitors used to share their editors' names."""
    assert window.model_page.form is not None
    names: dict[str, list[str]] = {}
    unnamed = []
    for widget in window.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or _is_internal(widget, window):
            continue
        if not widget.objectName():
            unnamed.append(f"{type(widget).__name__} in {widget.parentWidget().objectName() or type(widget.parentWidget()).__name__}")
        names.setdefault(widget.objectName(), []).append(type(widget).__name__)
    duplicates = {name: kinds for name, kinds in names.items() if name and len(kinds) > 1}
    assert not duplicates, duplicates
    assert not unnamed, unnamed
    assert window.findChild(QWidget, "finetune_field_train_steps") is not None
    assert window.findChild(QWidget, "field_train_steps").window() is window


def test_open_files_works_on_first_launch_and_switches_the_source(qtbot, window: MainWindow, tiny_corpus: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    page = window.data_page
    assert page.corpus_form.value("dataset") == "demo"  # the first launch's source
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(tiny_corpus)], "")))
    click(qtbot, window.findChild(QPushButton, "field_data_paths_open_files"))
    assert window.session.data.paths == [str(tiny_corpus)]
    assert page.corpus_form.value("dataset") == ""  # the source is now the files
    assert page.raw_preview.toPlainText().startswith("One morning")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tiny_corpus.parent)))
    click(qtbot, window.findChild(QPushButton, "field_data_paths_open_folder"))
    assert window.session.data.paths == [str(tiny_corpus.parent)]
    page.corpus_form.editors["dataset"].set_value("demo-zh")  # a built-in corpus again: the files go
    page.corpus_form.editors["dataset"].currentIndexChanged.emit(0)
    assert window.session.data.paths == [] and window.session.data.dataset == "demo-zh"


def test_opening_another_file_clears_the_statistics(qtbot, window: MainWindow, tiny_corpus: Path, tmp_path: Path) -> None:
    page = window.data_page
    page.set_paths([str(tiny_corpus)])
    with qtbot.waitSignal(page.corpus_built, timeout=60_000):
        click(qtbot, page.build_button)
    assert page.stats_table.rowCount() and page.progress.value() == page.progress.maximum()
    other = tmp_path / "reviews.csv"
    other.write_text("id,review\n" + "".join(f"{i},a review\n" for i in range(30)))
    page.set_paths([str(other)])
    assert page.stats_table.rowCount() == 0
    assert page.summary_label.text() == ""
    assert not [i for i in page.histogram.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert page.progress.value() != page.progress.maximum()
    assert not page.chips.chips


def test_csv_column_defaults_to_the_longest_text_and_says_why(qtbot, window: MainWindow, tmp_path: Path) -> None:
    page = window.data_page
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("id,review,stars\n" + "".join(f'{i},"a long and thoughtful review, number {i}",{i % 5}\n' for i in range(60)))
    page.set_paths([str(csv_path)])
    assert page.corpus_form.value("column") == "review"
    note = window.findChild(QWidget, "note_data_column")
    assert note.isVisibleTo(page) and note.text().startswith("review: the longest text,"), note.text()
    assert page.raw_preview.toPlainText().startswith("a long and thoughtful review, number 0")
    assert window.session.data.column == "review"


def test_data_page_left_column_fits_at_1280x800(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """A GB18030 file's encoding reason used to widen the column beyond the screen: the folder
    button, Cancel and the encoding text were cut off, with no scroll bar."""
    window.resize(1280, 800)
    page = window.data_page
    path = tmp_path / "zh.txt"
    path.write_bytes(("这是一个很长的中文句子，用来测试编码检测。" * 40 + "\n").encode("gb18030") * 50)
    page.set_paths([str(path)])
    qtbot.wait(50)
    assert "GB18030" in page.encoding_label.text()
    left = page.findChild(VerticalScrollWidget).parentWidget()
    for widget in left.findChildren(QWidget):
        if widget.isVisibleTo(left) and isinstance(widget, (QAbstractButton, QComboBox, QLineEdit)):
            right = widget.mapTo(left, widget.rect().topRight()).x()
            assert right <= left.width(), f"{widget.objectName()} reaches x={right}, beyond the column's {left.width()}"
            assert widget.width() >= widget.minimumSizeHint().width(), f"{widget.objectName()} is squeezed"
    assert not page.findChild(VerticalScrollWidget).horizontalScrollBar().isVisible()


def test_runs_table_fits_without_scrolling(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    from tests.gui.test_runs_search import make_runs

    make_runs(tiny_corpus)
    window.resize(1280, 800)
    window.show_page("Runs")
    qtbot.wait(50)
    table = window.runs_page.table
    assert table.model().rowCount() == 2
    assert table.header().length() <= table.viewport().width(), "the last columns need horizontal scrolling"
    for column in ("Metric", "Duration", "Started", "Tags"):
        assert table.columnWidth(COLUMNS.index(column)) >= 40, column


def test_parameter_count_follows_typing(qtbot, window: MainWindow) -> None:
    page = window.model_page
    window.show_page("Model")
    page.set_architecture("gpt")
    spin = page.form.editors["n_layers"]
    before = page.param_label.text()
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "7")  # no Enter, no focus change
    assert page.param_label.text() != before


def _fake_run(monitor, monkeypatch: pytest.MonkeyPatch, events) -> None:
    """A run as the supervisor reports it, without a training process."""
    monkeypatch.setattr(monitor.training, "start", lambda *a, **k: None)
    monitor.start(RunConfig())
    for e in events:
        monitor.training.event.emit(e)
    monitor.training.finished.emit(RunEnded("finished", 10, 1.0, ""))


def _eval(metrics: tuple[tuple[str, float], ...]) -> EvalLogged:
    return EvalLogged(10, 1.0, 2.7, 1.0, True, 100, 1.0, "", metrics)


def test_a_second_translation_keeps_its_results_headers(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = window.finetune_page.monitor
    metrics = (("bleu", 10.0), ("chrf", 20.0), ("exact_match", 0.0))
    for _ in range(2):
        _fake_run(monitor, monkeypatch, [MetricsReported("valid", metrics, 6, 0.1), MetricsReported("test", metrics, 6, 0.1)])
    table = monitor.results_table
    headers = [table.horizontalHeaderItem(c).text() if table.horizontalHeaderItem(c) else str(c + 1) for c in range(table.columnCount())]
    assert headers == ["split", "bleu", "chrf", "exact_match", "examples", "seconds"]
    assert table.rowCount() == 2


def test_a_classification_after_a_translation_shows_its_own_metrics(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = window.finetune_page.monitor
    _fake_run(monitor, monkeypatch, [_eval((("bleu", 10.0), ("chrf", 20.0)))])
    _fake_run(monitor, monkeypatch, [_eval((("accuracy", 80.0), ("f1", 70.0)))])
    legend = monitor.plots.metric_plot.getPlotItem().legend
    assert sorted(label.text for _, label in legend.items) == ["accuracy", "f1"]
    assert sorted(monitor.plots.metric_curves) == ["accuracy", "f1"]
    _fake_run(monitor, monkeypatch, [_eval(())])  # a language-modelling run: perplexity again
    assert not monitor.plots.metric_curves and not monitor.plots.metric_plot.isVisibleTo(monitor)


@pytest.fixture
def built_before() -> Any:
    """The default data built into the token cache by an earlier session of the window."""
    from studio.core.config import DataConfig, TokenizerConfig
    from studio.core.data.prepare import prepare_corpus

    return prepare_corpus(DataConfig(), TokenizerConfig())


def test_parameter_count_after_a_relaunch_uses_the_token_cache(qtbot, built_before: Any, window: MainWindow) -> None:
    """After a relaunch nothing is built, and the count used a guessed vocabulary of 100: an LSTM
    showed 118,628 parameters where its run reported 668,678. The cache built before is used."""
    session, vocab = window.session, built_before.tokenizer.vocab_size
    assert session.prepared is None and vocab != 100
    page = window.model_page
    window.show_page("Model")
    page.set_architecture("lstm")
    assert session.vocab_size() == (vocab, True)
    assert f"vocabulary {vocab:,}" in page.param_label.text() and "estimated" not in page.param_label.text()


def test_the_form_says_when_chinese_words_fall_back_to_characters(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without jieba, Chinese word tokenization silently equalled character tokenization."""
    import importlib.util

    page = window.data_page
    window.show_page("Data")
    page.tokenizer_form.set_values({"kind": "word", "language": "zh"})
    assert not page.segmentation_label.isVisible()  # jieba is part of the default install
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jieba" else real(name, *a))
    page.tokenizer_form.set_values({"kind": "word", "language": "en"})
    assert not page.segmentation_label.isVisible()  # English needs no segmenter
    page.tokenizer_form.set_values({"kind": "word", "language": "zh"})
    assert page.segmentation_label.isVisible() and "pip install jieba" in page.segmentation_label.text()
    page.tokenizer_form.set_values({"kind": "char"})
    assert not page.segmentation_label.isVisible()
