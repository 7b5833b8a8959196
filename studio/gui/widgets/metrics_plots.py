"""Live training curves: loss (raw, smoothed, validation), perplexity, learning rate, gradient norm
and tokens/s, against steps, tokens or time, on linear or log axes.

Events only append to growing numpy buffers; a timer redraws at about 10 Hz with ``setData``,
peak downsampling and clip-to-view, so a fast run never floods the event loop with repaints.
NaN and, on log axes, non-positive values are masked before drawing.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from studio.core.events import EvalLogged, StepLogged
from studio.core.i18n import N_, _
from studio.gui.formatting import metric_name, number

# The x axis's label for each way of reading a run (translated where shown).
X_MODES = {"steps": N_("step"), "tokens": N_("tokens"), "time": N_("time (s)")}
# Translators: the choices of the x axis of the training plots.
X_MODE_CHOICES = {"steps": N_("steps"), "tokens": N_("tokens"), "time": N_("time")}
_METRIC_COLOURS = ["#d35400", "#16a085", "#8e44ad", "#2c3e50"]
REDRAW_MS = 100


class SeriesBuffer:
    """Columns of float64 that grow by doubling; views are handed to pyqtgraph without copying."""

    def __init__(self, columns: tuple[str, ...], capacity: int = 1024):
        self.columns = columns
        self._data = np.full((len(columns), capacity), np.nan)
        self.size = 0

    def append(self, *values: float) -> None:
        if self.size == self._data.shape[1]:
            grown = np.full((len(self.columns), 2 * self.size), np.nan)
            grown[:, : self.size] = self._data
            self._data = grown
        self._data[:, self.size] = values
        self.size += 1

    def column(self, name: str) -> np.ndarray:
        return self._data[self.columns.index(name), : self.size]

    def clear(self) -> None:
        self.size = 0

    def truncate_after(self, column: str, value: float) -> None:
        """Drop the rows whose ``column`` exceeds ``value`` (rows are in increasing order)."""
        self.size = int(np.searchsorted(self.column(column), value, side="right"))


class PeakDecimation:
    """A long series as the minimum and maximum of each bin of ``bin`` points, kept up to date as
    the series grows, so a redraw costs the bins completed since the last one rather than a pass
    over every point. pyqtgraph's own downsampling and clip-to-view pass over the whole series on
    every ``setData`` (its bounds, the finite mask, the peaks): at 1,000,000 points that measured
    20-100 ms a redraw (benchmarks/plot_redraw.py). Bins double in size as the series does, so
    there are between ``BINS / 2`` and ``BINS`` of them, about as many as a plot has pixels across."""

    BINS = 2048

    def __init__(self) -> None:
        self.key: object = None
        self.bin = 1
        self.done = 0  # points already in bins
        self.x = np.zeros(0)
        self.y = np.zeros(0)

    def view(self, key: object, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) to draw; ``key`` names what x and y are (a change of axis starts again)."""
        n = len(y)
        if n <= 2 * self.BINS:
            self.key, self.done = None, 0
            return x, y
        size = 1 << max(0, math.ceil(math.log2(n / self.BINS)))
        if key != self.key or size != self.bin or n < self.done:  # new axis, coarser bins, or a truncated series
            self.key, self.bin, self.done = key, size, 0
            self.x, self.y = np.zeros(0), np.zeros(0)
        complete = (n // size) * size
        if complete > self.done:
            bins = y[self.done : complete].reshape(-1, size)
            # fmin/fmax skip NaN (a diverged step) without numpy's all-NaN warning.
            peaks = np.stack([np.fmin.reduce(bins, axis=1), np.fmax.reduce(bins, axis=1)], axis=1).ravel()
            starts = np.repeat(x[self.done : complete : size], 2)
            self.x, self.y = np.concatenate([self.x, starts]), np.concatenate([self.y, peaks])
            self.done = complete
        return np.concatenate([self.x, x[complete:]]), np.concatenate([self.y, y[complete:]])


LOG_LABEL_PX = 28  # the height of a tick label with a gap on either side


class LocaleAxis(pg.AxisItem):
    """Tick labels written as the language writes numbers (12,000 rather than 12000 or 1.2e+04).
    Only asked for when the axis lays itself out again, so it costs nothing per frame."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph's name
        if self.logMode or spacing <= 0:
            return super().tickStrings(values, scale, spacing)
        places = max(0, math.ceil(-math.log10(spacing * scale)))
        strings = []
        for v in values:
            vs = v * scale
            strings.append(f"{vs:g}" if 0 < abs(vs) < 0.001 else number(vs if places else round(vs), places))
        return strings


    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:  # noqa: N802, N803
        """On a log axis pyqtgraph labels every 2, 3, ... 9 between decades, which overlapped in
        the small plots: keep as many as fit (a label per LOG_LABEL_PX), the roundest first."""
        levels = super().tickValues(minVal, maxVal, size)
        if not self.logMode:
            return levels
        values = sorted({v for _spacing, level in levels for v in level})
        room = max(2, int(size // LOG_LABEL_PX))
        picked = values
        for mantissas in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3), (1,)):
            picked = [v for v in values if round(10 ** (v - math.floor(v + 1e-9))) in mantissas]
            if len(picked) <= room:
                break
        if len(picked) > room:  # decades alone still too many: every n-th decade
            picked = picked[:: math.ceil(len(picked) / room)]
        if len(picked) < 2:  # a range inside one decade (perplexity 11 to 13) had no label at all
            return [(1.0, _round_ticks_in_log(minVal, maxVal, room))]
        return [(levels[0][0] if levels else 1.0, picked)]

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph's name
        # pyqtgraph writes 10**v with as many places as the spacing of v suggests; the round
        # values of a narrow range (see tickValues) read better as the language writes numbers.
        strings = []
        for v in values:
            x = 10.0**v
            places = next((p for p in range(9) if abs(x - round(x, p)) <= 1e-6 * abs(x)), 8)  # as few as it needs
            strings.append(number(x if places else round(x), places))
        return strings


def _round_ticks_in_log(lo_log: float, hi_log: float, room: int) -> list[float]:
    """log10 of round values (1, 2 or 5 times a power of ten apart) between 10**lo and 10**hi."""
    lo, hi = 10.0**lo_log, 10.0**hi_log
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    raw = (hi - lo) / max(1, room)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    first = math.ceil(lo / step) * step
    values = [first + i * step for i in range(int((hi - first) / step) + 1)]
    return [math.log10(v) for v in values if v > 0]


def locale_axes() -> dict[str, pg.AxisItem]:
    """Axes for a new plot (``pg.PlotWidget(axisItems=locale_axes())``)."""
    return {"left": LocaleAxis("left"), "bottom": LocaleAxis("bottom")}


def _plot(object_name: str, title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title, axisItems=locale_axes())
    plot.setObjectName(object_name)
    plot.setAccessibleName(title)  # a plot has no text of its own for a screen reader
    plot.setBackground("w")
    # No grid lines: on Qt's raster engine pyqtgraph's grid cost ~80 ms per redraw of these five
    # plots (measured), which starved the training thread of the GIL. Axes alone cost ~16 ms.
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setTextPen(pg.mkPen("#34495e"))
        axis.enableAutoSIPrefix(False)  # re-labelling the axis on every range change costs a text layout
    # The x range is set by hand in steps (see _grow_x_range), so axes are not re-laid-out each frame.
    plot.getPlotItem().getViewBox().enableAutoRange(x=False)
    plot.setLabel("left", y_label)
    plot.getPlotItem().getViewBox().setDefaultPadding(0.02)
    plot.setMinimumHeight(140)
    return plot


def _curve(plot: pg.PlotWidget, color: str, name: str, width: float = 1.5, symbol: str | None = None) -> pg.PlotDataItem:
    item = plot.plot(pen=pg.mkPen(color, width=width), name=name, symbol=symbol, symbolSize=6,
                     symbolBrush=color if symbol else None, symbolPen=None)
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    return item


def prefixed(prefix: str, name: str) -> str:
    """``name`` for a second instance in one window: ``lossPlot`` -> ``finetuneLossPlot``."""
    return name if not prefix else prefix + name[0].upper() + name[1:]


class MetricsPlotsWidget(QWidget):
    def __init__(self, parent: QWidget | None = None, smoothing: float = 0.05, name_prefix: str = ""):
        super().__init__(parent)
        self._prefix = name_prefix
        self.setObjectName(prefixed(name_prefix, "metricsPlots"))
        self.smoothing = smoothing
        self.steps = SeriesBuffer(("step", "tokens", "time", "loss", "smooth", "lr", "grad_norm", "tokens_per_s"))
        self.evals = SeriesBuffer(("step", "tokens", "time", "loss", "perplexity"))
        self._ema = 0.0
        self._ema_weight = 0.0
        self.x_mode = "steps"
        self.log_y = False
        self.dirty = False
        self._x_max = 0.0
        self._frame = 0
        self._decimations: dict[int, PeakDecimation] = {}  # by id() of the curve item
        self.metric_series: dict[str, SeriesBuffer] = {}

        # The six plots are made one at a time when asked (make_next_plot: the window's steps after
        # its first paint), all at once when shown or when one of them is used: each takes 20-45 ms,
        # and making the six together held the GUI thread for 130-650 ms.
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setRowStretch(0, 3)
        self._grid.setRowStretch(1, 2)
        self._grid.setRowStretch(2, 2)
        self._made: list[pg.PlotWidget] = []  # the plots made so far
        self._to_make = [self._make_loss, self._make_perplexity, self._make_metric, self._make_speed, self._make_lr, self._make_grad]

        self.timer = QTimer(self)
        self.timer.setObjectName(prefixed(name_prefix, "plotRedrawTimer"))
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.redraw)

    # ---- making the plots -----------------------------------------------------------------

    # What exists only once the plots are made: asking for any of them makes them all.
    _PLOT_ATTRS = frozenset({"loss_plot", "train_raw", "train_smooth", "valid_curve", "perplexity_plot", "perplexity_curve",
                             "metric_plot", "metric_curves", "lr_plot", "lr_curve", "grad_plot", "grad_curve", "speed_plot",
                             "speed_curve", "plots"})

    def __getattr__(self, name: str) -> object:
        if name in MetricsPlotsWidget._PLOT_ATTRS and self.__dict__.get("_to_make"):
            self.make_plots()
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def make_next_plot(self) -> bool:
        """Make one more plot; False when all were made already."""
        if not self._to_make:
            return False
        self._to_make.pop(0)()
        if not self._to_make:
            self.plots = [self.loss_plot, self.perplexity_plot, self.metric_plot, self.lr_plot, self.grad_plot, self.speed_plot]
        return True

    def make_plots(self) -> None:
        while self.make_next_plot():
            pass

    def _add(self, plot: pg.PlotWidget, row: int, column: int, columns: int = 1) -> pg.PlotWidget:
        """A new plot in its place, with the axis, scale and range the others have by now."""
        self._grid.addWidget(plot, row, column, 1, columns)
        plot.setLabel("bottom", _(X_MODES[self.x_mode]))
        if self.log_y:
            plot.setLogMode(x=False, y=True)
        if self._x_max:
            plot.setXRange(0, self._x_max, padding=0.02)
        self._made.append(plot)
        self.dirty = True
        return plot

    def _make_loss(self) -> None:
        # Translators: the unit of the loss axis (natural-log units per token).
        self.loss_plot = self._add(_plot(prefixed(self._prefix, "lossPlot"), _("Loss"), _("nats / token")), 0, 0, 2)
        # One row across the top right, over a pale backing: three stacked entries reached down into
        # the curves of a short plot (the Chinese labels are taller), and a loss falls away from
        # the top right, so a single row there stays clear of it.
        self.loss_plot.addLegend(offset=(-10, 4), colCount=3, brush=pg.mkBrush(255, 255, 255, 210))
        # Translators: the legend of the loss plot: the training loss, and the validation loss.
        self.train_raw = _curve(self.loss_plot, "#b9c7d6", _("train"), width=1)
        self.train_smooth = _curve(self.loss_plot, "#1f5fa8", _("train (smoothed)"), width=2)
        self.valid_curve = _curve(self.loss_plot, "#d35400", _("validation"), width=2, symbol="o")

    def _make_perplexity(self) -> None:
        plot = _plot(prefixed(self._prefix, "perplexityPlot"), _("Validation perplexity"), _("perplexity"))
        self.perplexity_plot = self._add(plot, 1, 0)
        self.perplexity_curve = _curve(self.perplexity_plot, "#d35400", _("perplexity"), width=2, symbol="o")

    def _make_metric(self) -> None:
        # For fine-tuning runs the task metric (accuracy, BLEU, ...) takes the perplexity plot's place.
        self.metric_plot = self._add(_plot(prefixed(self._prefix, "taskMetricPlot"), _("Task metric (validation)"), "%"), 1, 0)
        self.metric_plot.addLegend(offset=(-10, 10))
        self.metric_plot.hide()
        self.metric_curves: dict[str, pg.PlotDataItem] = {}

    def _make_speed(self) -> None:
        self.speed_plot = self._add(_plot(prefixed(self._prefix, "throughputPlot"), _("Throughput"), _("tokens / s")), 1, 1)
        self.speed_curve = _curve(self.speed_plot, "#2c3e50", _("tokens/s"))

    def _make_lr(self) -> None:
        # Translators: the y axis of the learning-rate plot.
        self.lr_plot = self._add(_plot(prefixed(self._prefix, "lrPlot"), _("Learning rate"), _("rate")), 2, 0)
        self.lr_curve = _curve(self.lr_plot, "#27ae60", _("learning rate"), width=2)

    def _make_grad(self) -> None:
        # Translators: the y axis of the gradient-norm plot.
        plot = _plot(prefixed(self._prefix, "gradNormPlot"), _("Gradient norm (before clipping)"), _("norm"))
        self.grad_plot = self._add(plot, 2, 1)
        self.grad_curve = _curve(self.grad_plot, "#8e44ad", _("gradient norm"))

    # ---- feeding --------------------------------------------------------------------------

    def add_step(self, e: StepLogged) -> None:
        loss = e.loss if math.isfinite(e.loss) else math.nan
        if math.isfinite(loss):
            # Bias-corrected exponential moving average (Adam-style), so the start is not dragged to 0.
            self._ema = (1 - self.smoothing) * self._ema + self.smoothing * loss
            self._ema_weight = (1 - self.smoothing) * self._ema_weight + self.smoothing
        smooth = self._ema / self._ema_weight if self._ema_weight else math.nan
        self.steps.append(e.step, e.tokens_seen, e.elapsed_s, loss, smooth, e.lr, e.grad_norm, e.tokens_per_s)
        self.dirty = True

    def add_eval(self, e: EvalLogged) -> None:
        self.evals.append(e.step, e.tokens_seen, e.elapsed_s, e.loss, e.perplexity)
        for name, value in e.metrics:
            if name not in self.metric_series:
                self.metric_series[name] = SeriesBuffer(("step", "tokens", "time", "value"))
                colour = _METRIC_COLOURS[len(self.metric_curves) % len(_METRIC_COLOURS)]
                self.metric_curves[name] = _curve(self.metric_plot, colour, metric_name(name), width=2, symbol="o")
                self.perplexity_plot.hide()
                self.metric_plot.show()
            self.metric_series[name].append(e.step, e.tokens_seen, e.elapsed_s, value)
        self.dirty = True

    def truncate_after(self, step: int) -> None:
        """A resumed run restarts at its checkpoint's step: forget what an interrupted attempt
        logged after it, so the plot shows one curve, as the run folder's reader does."""
        for series in (self.steps, self.evals, *self.metric_series.values()):
            series.truncate_after("step", step)
        self._decimations.clear()  # its bins may hold the forgotten steps
        self.dirty = True

    def clear(self) -> None:
        self.steps.clear()
        self.evals.clear()
        self._decimations.clear()
        # A new run may have another task: its metrics, not the last run's, go in the plot and legend.
        for curve in self.metric_curves.values():
            self.metric_plot.removeItem(curve)
        self.metric_curves.clear()
        self.metric_series.clear()
        self.metric_plot.hide()
        self.perplexity_plot.show()
        self._x_max = 0.0
        self._ema = self._ema_weight = 0.0
        self.dirty = True
        self.redraw()

    def set_redraw_interval(self, ms: int) -> None:
        """How often live curves are redrawn (Preferences > Plot refresh); takes effect at once."""
        self.timer.setInterval(ms)

    def start_live(self) -> None:
        self.timer.start()

    def stop_live(self) -> None:
        self.timer.stop()
        self.redraw()

    # ---- view options ---------------------------------------------------------------------

    def set_x_mode(self, mode: str) -> None:
        self.x_mode = mode
        self._x_max = 0.0
        self._apply_axis_labels()
        self.dirty = True
        self.redraw()

    def set_log_y(self, on: bool) -> None:
        self.log_y = on
        for plot in self._made:  # those still to be made are made so
            plot.setLogMode(x=False, y=on)
        self.dirty = True
        self.redraw()

    def _apply_axis_labels(self) -> None:
        for plot in self._made:
            plot.setLabel("bottom", _(X_MODES[self.x_mode]))

    # ---- drawing --------------------------------------------------------------------------

    def _x(self, buffer: SeriesBuffer) -> np.ndarray:
        return buffer.column({"steps": "step", "tokens": "tokens", "time": "time"}[self.x_mode])

    def _y(self, values: np.ndarray) -> np.ndarray:
        if self.log_y:
            values = np.where(values > 0, values, np.nan)
        return values

    def redraw(self) -> None:
        if not self.dirty or not self.isVisible():
            return  # a hidden page redraws when it is shown (showEvent)
        self.make_plots()  # on screen: all of them now
        self.dirty = False
        xs, xe = self._x(self.steps), self._x(self.evals)
        pairs = [
            (self.train_raw, xs, self.steps.column("loss")),
            (self.train_smooth, xs, self.steps.column("smooth")),
            (self.valid_curve, xe, self.evals.column("loss")),
        ]
        # The loss plot is what people watch; the four smaller plots refresh at a third of the rate,
        # since each repaint holds the GIL that the training thread also needs.
        self._frame += 1
        if self._frame % 3 == 0 or not self.timer.isActive():
            pairs += [
                (self.lr_curve, xs, self.steps.column("lr")),
                (self.grad_curve, xs, self.steps.column("grad_norm")),
                (self.speed_curve, xs, self.steps.column("tokens_per_s")),
                (self.perplexity_curve, xe, self.evals.column("perplexity")),
            ]
            pairs += [(self.metric_curves[n], self._x(b), b.column("value")) for n, b in self.metric_series.items()]
        for item, x, y in pairs:
            decimation = self._decimations.setdefault(id(item), PeakDecimation())
            x, y = decimation.view((self.x_mode, self.log_y), x, y)
            item.setData(x, self._y(y), connect="finite")
        self._grow_x_range(xs)

    def _grow_x_range(self, xs: np.ndarray) -> None:
        """Extend the x axis by a quarter at a time, so its ticks change rarely, not every frame."""
        top = float(xs[-1]) if len(xs) else 1.0
        if top <= self._x_max and self._x_max <= max(4 * top, 10.0):
            return
        self._x_max = max(10.0, top * 1.25)
        for plot in self._made:
            plot.setXRange(0, self._x_max, padding=0.02)

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.make_plots()
        self.redraw()

    def point_count(self) -> int:
        """Points the training-loss curve is given to draw (what tests and automation check): every
        step up to 2 * PeakDecimation.BINS, then two per bin."""
        x, _ = self.train_raw.getOriginalDataset()
        return 0 if x is None else len(x)
