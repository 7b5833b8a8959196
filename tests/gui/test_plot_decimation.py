from __future__ import annotations

import time

import numpy as np

from studio.core.events import StepLogged
from studio.gui.widgets.metrics_plots import PeakDecimation


def test_peaks_grow_with_the_series_and_match_a_pass_over_all_of_it() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal(50_000)
    y[123] = np.nan  # a diverged step is skipped, not spread over its bin
    x = np.arange(len(y), dtype=np.float64)
    live = PeakDecimation()
    for n in (3000, 4097, 20_000, 33_333, 50_000):  # appended a piece at a time
        vx, vy = live.view("steps", x[:n], y[:n])
        once = PeakDecimation().view("steps", x[:n], y[:n])
        assert np.array_equal(vx, once[0]) and np.array_equal(vy, once[1], equal_nan=True)
    size = live.bin
    assert PeakDecimation.BINS // 2 <= 50_000 // size <= PeakDecimation.BINS
    bins = y[: (50_000 // size) * size].reshape(-1, size)
    assert np.array_equal(vy[: 2 * len(bins) : 2], np.fmin.reduce(bins, axis=1))
    assert np.array_equal(vy[1 : 2 * len(bins) : 2], np.fmax.reduce(bins, axis=1))
    assert np.nanmax(vy) == np.nanmax(y) and np.nanmin(vy) == np.nanmin(y)  # every spike is still drawn
    tail = 50_000 % size
    assert np.array_equal(vx[len(vx) - tail :], x[50_000 - tail :])  # the newest steps exactly
    # A short series is drawn as it is; another axis or a shorter series starts the bins again.
    assert len(live.view("steps", x[:100], y[:100])[0]) == 100
    vx2, _ = live.view("time", x * 0.5, y)
    assert vx2[0] == 0.0 and vx2[2] == size * 0.5


def test_a_million_point_loss_curve_redraws_in_milliseconds(qtbot) -> None:
    from studio.gui.widgets.metrics_plots import MetricsPlotsWidget

    plots = MetricsPlotsWidget()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    n = 1_000_000
    buf = plots.steps
    plots.add_step(StepLogged(1, n, 4.0, 1e-3, 1.0, 1000.0, 768, 0.1))
    while buf._data.shape[1] < n:
        buf.append(*([np.nan] * len(buf.columns)))
    buf.size = n
    for name in buf.columns:
        buf._data[buf.columns.index(name), :n] = np.linspace(4.0, 1.5, n)
    buf._data[buf.columns.index("step"), :n] = np.arange(1, n + 1)
    plots.dirty = True
    plots.redraw()  # the bins are built once
    assert plots.point_count() <= 4 * PeakDecimation.BINS + 2
    best = 1.0
    for i in range(5):
        plots.add_step(StepLogged(n + i + 1, n, 1.5, 1e-3, 1.0, 1000.0, 768, 0.1))
        t0 = time.perf_counter()
        plots.redraw()
        plots.loss_plot.repaint()
        best = min(best, time.perf_counter() - t0)
    assert best < 0.02  # 0.8 ms measured; 20 ms leaves room for a loaded machine, a pass over 1M points took 20-100
