"""Several runs' curves overlaid on shared axes, and the settings that differ between them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.config import setting_label
from studio.core.fileio import atomic_write_bytes, describe_os_error
from studio.core.i18n import N_, _, ngettext
from studio.core.runs.compare import (
    METRIC_PREFIX,
    Curves,
    config_diff,
    csv_rows,
    differing_keys,
    group_band,
    group_runs,
    nearest_value,
    runs_table,
    smooth,
    write_csv,
)
from studio.gui.widgets.metrics_plots import X_MODE_CHOICES, X_MODES, locale_axes
from studio.gui.workers.compare_worker import CompareLoadJob

_COLOURS = ["#1f5fa8", "#d35400", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#2c3e50", "#b7950b"]


# Translators: the smoothing choices of the Compare plot.
SMOOTHING_CHOICES = {"none": N_("no smoothing"), "ema": N_("EMA"), "mean": N_("running average"),
                     "gaussian": N_("Gaussian")}
# Translators: the spread drawn around a group's mean curve.
BAND_CHOICES = {"minmax": N_("min–max band"), "std": N_("± std band"), "none": N_("no band")}
HOVER_RATE = 30  # hover updates per second at most: each one looks up every visible curve


class CompareView(QWidget):
    csv_exported = Signal(str)  # the message to show, from the thread that wrote the file
    loaded = Signal()  # the runs asked for are read and drawn (for tests and automation)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareView")
        self.runs: list[Path] = []
        self.curves: list[Curves] = []
        self.loader = CompareLoadJob(self)  # metrics files are read off the GUI thread
        self.loader.done.connect(self._on_loaded)
        self._token = 0  # the latest choice of runs; an answer to an earlier one is dropped
        self.configs: list[dict[str, Any]] = []
        # What is drawn now, as (label, x, y): what hover reads and the CSV export writes.
        self.series: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.band_series: list[tuple[str, np.ndarray, np.ndarray]] = []
        # Curves and dots are reused across redraws (making and adding plot items is what costs
        # most); band edges and fills, a few per group, are made anew each time.
        self._pool: list[pg.PlotDataItem] = []
        self._used = 0
        self._transient: list[pg.GraphicsObject] = []
        self.x_combo = QComboBox(objectName="compareXAxisCombo")
        for mode, label in X_MODE_CHOICES.items():
            self.x_combo.addItem(_(label), mode)
        self.log_check = QCheckBox(_("Log scale"), objectName="compareLogCheck")
        self.smoothing_combo = QComboBox(objectName="smoothingCombo")
        for method, label in SMOOTHING_CHOICES.items():
            self.smoothing_combo.addItem(_(label), method)
        self.smoothing_combo.setCurrentIndex(1)
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, objectName="smoothingSlider")
        self.smoothing_slider.setRange(0, 100)
        self.smoothing_slider.setValue(95)  # the EMA weight this view always had (alpha 0.05)
        self.smoothing_slider.setMaximumWidth(160)
        self.smoothing_slider.setTracking(False)  # redraw once on release, not for every pixel dragged
        self.smoothing_slider.setToolTip(_("Smoothing strength"))
        self.smoothing_slider.setAccessibleName(_("Smoothing strength"))
        self.group_combo = QComboBox(objectName="groupByCombo")
        self.group_combo.addItem(_("no grouping"), "")
        self.band_combo = QComboBox(objectName="bandCombo")
        for kind, label in BAND_CHOICES.items():
            self.band_combo.addItem(_(label), kind)
        self.png_button = QPushButton(_("Export PNG…"), objectName="exportPngButton")
        self.csv_button = QPushButton(_("Export CSV…"), objectName="exportCsvButton")
        self.hover_label = QLabel(objectName="compareHoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = pg.PlotWidget(title=_("Loss: training (smoothed, lines) and validation (dots)"), axisItems=locale_axes())
        self.plot.setObjectName("comparePlot")
        self.plot.setBackground("w")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setLabel("left", _("nats / token"))
        # Thousands of points per run: draw only what is in view, at most about one per pixel.
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
        self.runs_table = QTableWidget(objectName="compareRunsTable")
        self.runs_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.runs_table.setSortingEnabled(True)
        self.hidden_columns: set[str] = set()  # kept across comparisons, by column title
        header = self.runs_table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.setToolTip(_("Click a column title to sort; right-click to choose the columns."))
        header.customContextMenuRequested.connect(lambda pos: self.column_menu().exec(header.mapToGlobal(pos)))
        self.diff_table = QTableWidget(objectName="configDiffTable")
        self.diff_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.diff_label = QLabel(_("Select two or more runs and press Compare."))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(_("x-axis")))
        bar.addWidget(self.x_combo)
        bar.addWidget(self.log_check)
        bar.addWidget(QLabel(_("Smoothing")))
        bar.addWidget(self.smoothing_combo)
        bar.addWidget(self.smoothing_slider)
        bar.addStretch(1)
        # A second row: in one, the controls made the Runs page 1,209 px wide at its narrowest, and
        # the window overflowed a 1280-px screen.
        bar2 = QHBoxLayout()
        bar2.addWidget(QLabel(_("Group by")))
        bar2.addWidget(self.group_combo)
        bar2.addWidget(self.band_combo)
        bar2.addStretch(1)
        bar2.addWidget(self.png_button)
        bar2.addWidget(self.csv_button)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(bar)
        tl.addLayout(bar2)
        tl.addWidget(self.plot, 1)
        tl.addWidget(self.hover_label)
        self.message = QLabel(objectName="compareMessageLabel")
        tl.addWidget(self.message)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.diff_label)
        self.bottom_tabs = QTabWidget(objectName="compareTabs")
        self.bottom_tabs.addTab(self.diff_table, _("Settings that differ"))
        self.bottom_tabs.addTab(self.runs_table, _("Runs"))
        bl.addWidget(self.bottom_tabs, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([400, 220])
        QVBoxLayout(self).addWidget(split)
        self.x_combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.log_check.toggled.connect(lambda on: (self.plot.setLogMode(y=on), self.redraw()))
        self.smoothing_combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.smoothing_slider.valueChanged.connect(lambda _value: self.redraw())
        self.group_combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.band_combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.png_button.clicked.connect(lambda: self.export_png())
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.csv_exported.connect(self.message.setText)
        # Throttled: a mouse move looks up every visible curve, so at most HOVER_RATE a second.
        self.hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=HOVER_RATE, slot=self._mouse_moved)

    def set_runs(self, runs: list[Path]) -> None:
        """Compare these runs: they are read on a thread of their own, then drawn (``loaded``)."""
        self._token += 1
        paths = [Path(r) for r in runs]
        self.message.setText(ngettext("Reading {n} run…", "Reading {n} runs…", len(paths)).format(n=len(paths)))
        self.loader.load(paths, self._token)
        self._grow_pool(2 * len(paths))  # a loss curve and validation dots per run

    POOL_CHUNK = 1  # curve items made per event-loop turn: a few ms of the GUI thread each

    def _grow_pool(self, wanted: int) -> None:
        """Make the plot's curve items while the runs are read, a few per turn of the event loop.
        Making an item (and adding it to the plot and its legend) is what the first draw spent
        most of its time on: 10 runs took 138 ms in one go, over the GUI thread's 100 ms."""
        for _i in range(min(self.POOL_CHUNK, wanted - len(self._pool))):
            item = pg.PlotDataItem([], [])
            item.hide()
            self.plot.addItem(item)
            self._pool.append(item)
        if len(self._pool) < wanted:
            QTimer.singleShot(0, self, lambda: self._grow_pool(wanted))  # with the view as context: never after it is gone

    def _on_loaded(self, runs: list[Path], curves: list[Curves], configs: list[dict[str, Any]], error: str, token: int) -> None:
        if token != self._token:
            return  # another choice of runs came since
        if error:
            # Translators: {error} says which file could not be read and why.
            self.message.setText(_("The runs could not be read: {error}").format(error=error))
            self.loaded.emit()
            return
        self.message.setText("")
        self.runs, self.curves, self.configs = runs, curves, configs
        self._fill_choices()
        self.redraw()
        # The tables on a later turn of the event loop: with the curves (and the first paint
        # after them) in the same turn, the first comparison held the GUI thread over 100 ms.
        QTimer.singleShot(0, self, lambda: self._fill_tables(token))

    def _fill_tables(self, token: int) -> None:
        if token != self._token:
            return
        self._fill_diff()
        self._fill_runs_table()
        self.loaded.emit()

    def shutdown(self) -> None:
        self.loader.cancel_and_wait()

    def _fill_choices(self) -> None:
        """The metrics one can put on the x axis and the settings one can group by, for these runs."""
        mode, key = self.x_combo.currentData(), self.group_combo.currentData()
        for combo in (self.x_combo, self.group_combo):
            combo.blockSignals(True)
        while self.x_combo.count() > len(X_MODE_CHOICES):
            self.x_combo.removeItem(self.x_combo.count() - 1)
        for name in sorted({n for c in self.curves for n in c.metric_names()}):
            self.x_combo.addItem(_("metric: {name}").format(name=name), METRIC_PREFIX + name)
        while self.group_combo.count() > 1:
            self.group_combo.removeItem(1)
        for k in differing_keys(self.configs):
            if k != "run.name":  # one run per group: the same as no grouping
                self.group_combo.addItem(_(setting_label(k)), k)
        self.x_combo.setCurrentIndex(max(0, self.x_combo.findData(mode)))
        self.group_combo.setCurrentIndex(max(0, self.group_combo.findData(key)))
        for combo in (self.x_combo, self.group_combo):
            combo.blockSignals(False)

    def _y(self, y: np.ndarray) -> np.ndarray:
        return np.where(y > 0, y, np.nan) if self.log_check.isChecked() else y

    def _draw(self, x: np.ndarray, y: np.ndarray, colour: str, name: str | None = None, dots: bool = False) -> None:
        opts: dict[str, Any] = (
            {"pen": None, "symbol": "o", "symbolSize": 7, "symbolBrush": colour, "symbolPen": None, "name": None}
            # One-pixel lines: Qt draws them on a fast path; at width 2, painting ten runs of 5,000
            # steps took 150 ms of the GUI thread instead of 15 (benchmarks/compare_view.py).
            if dots else {"pen": pg.mkPen(colour, width=1), "symbol": None, "name": name, "connect": "finite"})
        if self._used < len(self._pool):
            item = self._pool[self._used]
            item.setData(x, y, **opts)
            item.show()
        else:
            item = pg.PlotDataItem(x, y, **opts)
            self.plot.addItem(item)
            self._pool.append(item)
        self._used += 1

    def _begin_redraw(self) -> None:
        for item in self._transient:
            if isinstance(item, pg.FillBetweenItem) and item.curves:
                for curve in item.curves:  # else the old fill keeps following reused curves
                    curve.sigPlotChanged.disconnect(item.curveChanged)
            self.plot.removeItem(item)
        self._transient = []
        self._used = 0
        self.series = []
        self.band_series = []

    def _end_redraw(self) -> None:
        for item in self._pool[self._used:]:
            item.setData([], [], name=None)
            item.hide()
        legend = self.plot.getPlotItem().legend
        legend.clear()
        for item in self._pool[:self._used]:
            if item.name():
                legend.addItem(item, item.name())

    def redraw(self) -> None:
        self._begin_redraw()
        mode = self.x_combo.currentData() or "steps"
        self.plot.setLabel("bottom", _(X_MODES[mode]) if mode in X_MODES else self.x_combo.currentText())
        method = self.smoothing_combo.currentData()
        strength = self.smoothing_slider.value() / 100
        self.smoothing_slider.setEnabled(method != "none")
        key = self.group_combo.currentData()
        self.band_combo.setEnabled(bool(key))
        if key:
            self._draw_groups(key, mode, method, strength)
        else:
            for i, c in enumerate(self.curves):
                colour = _COLOURS[i % len(_COLOURS)]
                x, y = c.x(mode), smooth(c.loss, method, strength)
                self._draw(x, self._y(y), colour, name=c.name)
                self.series.append((c.name, x, y))
                if len(c.eval_loss):
                    ex = c.x(mode, evaluation=True)
                    self._draw(ex, self._y(c.eval_loss), colour, dots=True)
                    self.series.append((_("{name} (validation)").format(name=c.name), ex, c.eval_loss))
        self._end_redraw()
        if self.vline.scene() is None:
            self.plot.addItem(self.vline, ignoreBounds=True)
        self.vline.hide()
        self.hover_label.clear()

    def _draw_groups(self, key: str, mode: str, method: str, strength: float) -> None:
        """One mean curve per value of ``key``, with its band; validation means as dots."""
        kind = self.band_combo.currentData()
        for g, (value, members) in enumerate(group_runs(self.configs, key).items()):
            colour = _COLOURS[g % len(_COLOURS)]
            label = ngettext("{key} = {value} ({n} run)", "{key} = {value} ({n} runs)", len(members)).format(
                key=_(setting_label(key)), value=value, n=len(members))
            band = group_band(label, [(self.curves[i].x(mode), smooth(self.curves[i].loss, method, strength))
                                      for i in members], kind)
            if kind != "none":
                lo, hi = self._y(band.lo), self._y(band.hi)
                if self.log_check.isChecked():  # a bare curve item is not log-mapped by the plot
                    with np.errstate(invalid="ignore"):
                        lo, hi = np.log10(lo), np.log10(hi)
                ok = np.isfinite(band.x) & np.isfinite(lo) & np.isfinite(hi)  # a fill cannot span gaps
                edge = pg.mkPen(colour, width=0.5)
                low_item = pg.PlotCurveItem(band.x[ok], lo[ok], pen=edge)
                high_item = pg.PlotCurveItem(band.x[ok], hi[ok], pen=edge)
                fill = pg.FillBetweenItem(low_item, high_item, brush=pg.mkBrush(colour + "40"))
                for item in (low_item, high_item, fill):
                    self.plot.addItem(item)
                    self._transient.append(item)
                self.band_series += [(_("{label} low").format(label=label), band.x, band.lo),
                                     (_("{label} high").format(label=label), band.x, band.hi)]
            self._draw(band.x, self._y(band.mean), colour, name=label)
            self.series.append((label, band.x, band.mean))
            evals = [(self.curves[i].x(mode, evaluation=True), self.curves[i].eval_loss)
                     for i in members if len(self.curves[i].eval_loss)]
            if evals:
                ev = group_band(label, evals, "none")
                self._draw(ev.x, self._y(ev.mean), colour, dots=True)
                self.series.append((_("{name} (validation)").format(name=label), ev.x, ev.mean))

    def band_count(self) -> int:
        """Spread bands drawn (what tests check)."""
        return sum(isinstance(item, pg.FillBetweenItem) for item in self.plot.getPlotItem().items)

    # ---- hover ----------------------------------------------------------------------------

    def _mouse_moved(self, event: tuple[QPointF]) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        if vb.sceneBoundingRect().contains(event[0]):
            self.hover_at(vb.mapSceneToView(event[0]).x())

    def hover_at(self, x: float) -> str:
        """Show every visible curve's value at the point nearest ``x``; returns the text shown."""
        locale = self.locale()
        lines = []
        for label, xs, ys in self.series:
            hit = nearest_value(xs, ys, x)
            if hit is not None:
                lines.append(_("{name}: {value} at {x}").format(
                    name=label, value=locale.toString(hit[1], "g", 5), x=locale.toString(hit[0], "g", 6)))
        self.vline.setPos(x)
        self.vline.setVisible(bool(lines))
        text = "\n".join(lines)
        self.hover_label.setText("  ·  ".join(lines))
        self.hover_label.setToolTip(text)
        self.plot.setToolTip(text)
        return text

    # ---- export ---------------------------------------------------------------------------

    def export_png(self, path: Path | None = None) -> Path | None:
        if path is None:
            target, _chosen = QFileDialog.getSaveFileName(self, _("Export the comparison as PNG"), "comparison.png",
                                                          _("PNG image (*.png)"))
            if not target:
                return None
            path = Path(target)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self.plot.grab().save(buffer, "PNG")
        buffer.close()
        try:
            atomic_write_bytes(path, bytes(data.data()))
        except OSError as e:
            self.message.setText(_("Export failed: {error}").format(error=describe_os_error(e)))
            return None
        self.message.setText(_("Exported to {path}").format(path=path))
        return path

    def csv_data(self) -> tuple[list[str], list[list[str]]]:
        """What is drawn: one row per point (series, x, loss), bands' edges included."""
        mode = self.x_combo.currentData() or "steps"
        x_name = mode[len(METRIC_PREFIX):] if mode.startswith(METRIC_PREFIX) else mode
        return ["series", x_name, "loss"], csv_rows(self.series + self.band_series)

    def export_csv(self, path: Path | None = None) -> Path | None:
        if path is None:
            target, _chosen = QFileDialog.getSaveFileName(self, _("Export the comparison as CSV"), "comparison.csv",
                                                          _("CSV file (*.csv)"))
            if not target:
                return None
            path = Path(target)
        mode = self.x_combo.currentData() or "steps"
        header = ["series", mode[len(METRIC_PREFIX):] if mode.startswith(METRIC_PREFIX) else mode, "loss"]
        series = self.series + self.band_series  # arrays a redraw replaces, never changes: safe to share

        def write() -> None:
            # Off the GUI thread: tens of thousands of numbers take a few hundred ms to turn into text.
            try:
                write_csv(target, header, csv_rows(series))
            except OSError as e:
                self.csv_exported.emit(_("Export failed: {error}").format(error=describe_os_error(e)))
                return
            self.csv_exported.emit(_("Exported to {path}").format(path=target))

        target = path
        self.message.setText(_("Exporting…"))
        threading.Thread(target=write, name="compare-csv", daemon=True).start()
        return path

    def curve_count(self) -> int:
        """Training-loss curves drawn (what tests check)."""
        return sum(1 for item in self.plot.listDataItems()
                   if item.isVisible() and item.opts.get("pen") is not None and item.name())

    def _fill_diff(self) -> None:
        rows = config_diff(self.configs)  # read with the curves, off the GUI thread
        self.diff_table.clear()
        self.diff_table.setColumnCount(1 + len(self.runs))
        self.diff_table.setHorizontalHeaderLabels([_("setting"), *(c.name for c in self.curves)])
        self.diff_table.setRowCount(len(rows))
        for r, (key, values) in enumerate(rows):
            # The form's label, as the person set it; the key (what --set and config.toml use) on hover.
            item = QTableWidgetItem(_(setting_label(key)))
            item.setToolTip(key)
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.diff_table.setItem(r, 0, item)
            for c, value in enumerate(values, start=1):
                self.diff_table.setItem(r, c, QTableWidgetItem("—" if value is None else str(value)))
        self.diff_table.resizeColumnsToContents()
        if rows:
            self.diff_label.setText(ngettext("{n} setting differs", "{n} settings differ", len(rows)).format(n=len(rows)))
        else:
            self.diff_label.setText(_("The configurations are identical."))

    def _fill_runs_table(self) -> None:
        """Name, every differing setting, best validation loss and last metrics; numbers sort as numbers."""
        header, rows = runs_table(self.runs, self.configs, self.curves)
        titles = {"name": _("name"), "best_valid_loss": _("best valid loss")}
        t = self.runs_table
        t.setSortingEnabled(False)  # else each inserted item re-sorts the rows under us
        t.clear()
        t.setColumnCount(len(header))
        t.setHorizontalHeaderLabels([titles.get(h, h) for h in header])
        t.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                item = QTableWidgetItem()
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    item.setData(Qt.ItemDataRole.DisplayRole, float(value))
                else:
                    item.setText("—" if value is None else str(value))
                t.setItem(r, c, item)
        for c in range(t.columnCount()):
            t.setColumnHidden(c, t.horizontalHeaderItem(c).text() in self.hidden_columns)
        t.resizeColumnsToContents()
        t.setSortingEnabled(True)

    def column_menu(self) -> QMenu:
        """The runs table's column chooser: one checkable entry per column."""
        menu = QMenu(self)
        menu.setObjectName("compareColumnsMenu")
        t = self.runs_table
        for c in range(t.columnCount()):
            title = t.horizontalHeaderItem(c).text()
            action = menu.addAction(title)
            action.setCheckable(True)
            action.setChecked(not t.isColumnHidden(c))
            action.toggled.connect(lambda on, c=c, title=title: self._show_column(c, title, on))
        return menu

    def _show_column(self, column: int, title: str, shown: bool) -> None:
        self.runs_table.setColumnHidden(column, not shown)
        (self.hidden_columns.discard if shown else self.hidden_columns.add)(title)
