"""Several runs' curves overlaid on shared axes, and the settings that differ between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.i18n import _, ngettext
from studio.core.runs.compare import Curves, config_diff, load_curves, run_config_table
from studio.gui.widgets.metrics_plots import X_MODE_CHOICES, X_MODES, locale_axes

_COLOURS = ["#1f5fa8", "#d35400", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#2c3e50", "#b7950b"]


def smooth(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Bias-corrected exponential moving average, NaN-safe."""
    out = np.empty_like(values)
    ema = weight = 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            ema = (1 - alpha) * ema + alpha * v
            weight = (1 - alpha) * weight + alpha
        out[i] = ema / weight if weight else np.nan
    return out


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareView")
        self.runs: list[Path] = []
        self.curves: list[Curves] = []
        self.x_combo = QComboBox(objectName="compareXAxisCombo")
        for mode, label in X_MODE_CHOICES.items():
            self.x_combo.addItem(_(label), mode)
        self.log_check = QCheckBox(_("Log scale"), objectName="compareLogCheck")
        self.plot = pg.PlotWidget(title=_("Loss: training (smoothed, lines) and validation (dots)"), axisItems=locale_axes())
        self.plot.setObjectName("comparePlot")
        self.plot.setBackground("w")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setLabel("left", _("nats / token"))
        self.diff_table = QTableWidget(objectName="configDiffTable")
        self.diff_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.diff_label = QLabel(_("Select two or more runs and press Compare."))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(_("x-axis")))
        bar.addWidget(self.x_combo)
        bar.addWidget(self.log_check)
        bar.addStretch(1)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(bar)
        tl.addWidget(self.plot, 1)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.diff_label)
        bl.addWidget(self.diff_table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([400, 220])
        QVBoxLayout(self).addWidget(split)
        self.x_combo.currentIndexChanged.connect(lambda _index: self.redraw())
        self.log_check.toggled.connect(lambda on: (self.plot.setLogMode(y=on), self.redraw()))

    def set_runs(self, runs: list[Path]) -> None:
        self.runs = [Path(r) for r in runs]
        self.curves = [load_curves(r) for r in self.runs]
        self.redraw()
        self._fill_diff()

    def redraw(self) -> None:
        self.plot.clear()
        mode = self.x_combo.currentData()
        self.plot.setLabel("bottom", _(X_MODES[mode]))
        for i, c in enumerate(self.curves):
            colour = _COLOURS[i % len(_COLOURS)]
            y = smooth(c.loss)
            if self.log_check.isChecked():
                y = np.where(y > 0, y, np.nan)
            self.plot.plot(c.x(mode), y, pen=pg.mkPen(colour, width=2), name=c.name, connect="finite")
            if len(c.eval_loss):
                self.plot.plot(c.x(mode, evaluation=True), c.eval_loss, pen=None, symbol="o", symbolSize=7,
                               symbolBrush=colour, symbolPen=None)

    def curve_count(self) -> int:
        """Training-loss curves drawn (what tests check)."""
        return sum(1 for item in self.plot.listDataItems() if item.opts.get("pen") is not None and item.name())

    def _fill_diff(self) -> None:
        tables = [run_config_table(r) for r in self.runs]
        rows = config_diff(tables)
        self.diff_table.clear()
        self.diff_table.setColumnCount(1 + len(self.runs))
        self.diff_table.setHorizontalHeaderLabels([_("setting"), *(c.name for c in self.curves)])
        self.diff_table.setRowCount(len(rows))
        for r, (key, values) in enumerate(rows):
            self.diff_table.setItem(r, 0, QTableWidgetItem(key))
            for c, value in enumerate(values, start=1):
                self.diff_table.setItem(r, c, QTableWidgetItem("—" if value is None else str(value)))
        self.diff_table.resizeColumnsToContents()
        if rows:
            self.diff_label.setText(ngettext("{n} setting differs", "{n} settings differ", len(rows)).format(n=len(rows)))
        else:
            self.diff_label.setText(_("The configurations are identical."))
