"""Runs page → Compare: smoothing, grouping with bands, hover, the runs table and export, by clicks."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from studio.core.runs.compare import load_curves, smooth
from studio.core.training.trainer import Trainer
from studio.gui.main_window import MainWindow
from tests.core.test_models import tiny_config
from tests.gui.test_training_flow import click


def make_four_runs(corpus: Path) -> list[Path]:
    """Two learning rates, two seeds each: what one groups by lr to see the spread of seeds."""
    return [
        Trainer(tiny_config("gpt", corpus, "train.steps=6", "train.eval_interval=3", "train.sample_tokens=0",
                            f"run.name=r{i}", f"train.lr={lr}", f"train.seed={seed}")).fit().run_dir
        for i, (lr, seed) in enumerate(((1e-3, 1), (3e-3, 1), (1e-3, 2), (3e-3, 2)))
    ]


def test_group_four_runs_by_lr_into_two_mean_curves_with_bands(qtbot, window: MainWindow, tiny_corpus: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_four_runs(tiny_corpus)
    page = window.runs_page
    window.show_page("Runs")
    page.table.selectAll()
    with qtbot.waitSignal(page.compare.loaded, timeout=30_000):  # the runs are read off the GUI thread
        click(qtbot, page.action_buttons["compare"])
    view = page.compare
    assert view.curve_count() == 4 and view.band_count() == 0

    view.smoothing_combo.setCurrentIndex(view.smoothing_combo.findData("none"))
    assert not view.smoothing_slider.isEnabled()
    view.group_combo.setCurrentIndex(view.group_combo.findData("train.lr"))
    assert view.curve_count() == 2
    assert view.band_count() == 2
    names = {item.name() for item in view.plot.listDataItems() if item.name()}
    assert names == {"Learning rate = 0.001 (2 runs)", "Learning rate = 0.003 (2 runs)"}
    # the mean curve is the mean of the two seeds' losses (they share the step grid)
    slow = [load_curves(r) for r in (runs[0], runs[2])]  # lr 1e-3
    label, x, mean = next(s for s in view.series if s[0] == "Learning rate = 0.001 (2 runs)")
    np.testing.assert_allclose(x, slow[0].step)
    np.testing.assert_allclose(mean, (slow[0].loss + slow[1].loss) / 2)

    view.smoothing_combo.setCurrentIndex(view.smoothing_combo.findData("gaussian"))
    view.smoothing_slider.setValue(10)
    smoothed = next(s for s in view.series if s[0] == label)[2]
    np.testing.assert_allclose(smoothed, (smooth(slow[0].loss, "gaussian", 0.1) + smooth(slow[1].loss, "gaussian", 0.1)) / 2)
    view.band_combo.setCurrentIndex(view.band_combo.findData("std"))
    assert view.band_count() == 2
    view.band_combo.setCurrentIndex(view.band_combo.findData("none"))
    assert view.band_count() == 0 and view.curve_count() == 2
    view.band_combo.setCurrentIndex(view.band_combo.findData("minmax"))
    view.log_check.setChecked(True)  # log scale: the band's edges stay around the (log-mapped) mean
    fill = next(item for item in view.plot.getPlotItem().items if isinstance(item, pg.FillBetweenItem))
    edge_y = fill.curves[0].getData()[1]
    assert np.nanmax(edge_y) < 1  # log10 of a loss near 4, not the loss itself
    view.log_check.setChecked(False)

    # hover: a mouse move over the plot (through the throttling proxy) lists every visible curve
    vb = view.plot.getPlotItem().getViewBox()
    qtbot.waitUntil(lambda: vb.viewRange()[0][1] >= 6, timeout=2000)  # auto-range runs from the event loop
    view.plot.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(3.2, float(mean[2]))))
    qtbot.waitUntil(lambda: view.hover_label.text() != "", timeout=2000)
    text = view.hover_label.toolTip()
    assert "Learning rate = 0.001 (2 runs): " in text and "Learning rate = 0.003 (2 runs): " in text
    assert view.vline.isVisible() and view.vline.value() == pytest.approx(3.2, abs=0.1)  # to a pixel
    assert view.hover_at(3.2).count(" at 3\n") >= 2  # snapped to the nearest step

    # the x axis can be a logged metric
    view.x_combo.setCurrentIndex(view.x_combo.findData("metric:lr"))
    assert view.curve_count() == 2

    # runs table: 4 runs, differing settings as columns, sortable by best validation loss
    table = view.runs_table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert table.rowCount() == 4 and "train.lr" in headers and "train.seed" in headers
    best = headers.index("best valid loss")
    table.sortByColumn(best, Qt.SortOrder.AscendingOrder)
    values = [float(table.item(r, best).text()) for r in range(4)]
    assert values == sorted(values)
    seed = headers.index("train.seed")
    next(a for a in view.column_menu().actions() if a.text() == "train.seed").trigger()  # the column chooser
    assert table.isColumnHidden(seed) and not table.isColumnHidden(best)

    png, data = tiny_corpus.parent / "view.png", tiny_corpus.parent / "view.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(png), "")))
    click(qtbot, view.png_button)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(data), "")))
    with qtbot.waitSignal(view.csv_exported, timeout=10_000):  # written off the GUI thread
        click(qtbot, view.csv_button)
    with data.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["series", "lr", "loss"]
    series = {r[0] for r in rows[1:]}
    assert {"Learning rate = 0.001 (2 runs)", "Learning rate = 0.003 (2 runs) low", "Learning rate = 0.003 (2 runs) high"} <= series
    assert "Exported to" in view.message.text()
