"""Redraw time of the Train page's plots with a 1,000,000-point loss curve (target: <= 5 ms).

    python benchmarks/plot_redraw.py [--points 1000000] [--repeats 15]

The real ``MetricsPlotsWidget`` (offscreen Qt, 1100 x 700), its step buffer filled with
``points`` steps of a noisy falling loss. One redraw is what the 10 Hz timer does on a new step
(``redraw``: ``setData`` of the loss curves, and of the four small plots every third frame) plus
the repaint it causes (``QWidget.repaint`` of every plot, which paints synchronously). Measured
as shipped (``PeakDecimation``'s incremental bins, then pyqtgraph's peak downsampling and
clip-to-view), with pyqtgraph's alone, and with neither; for each, the median and min-max over
``repeats`` redraws, the modes alternating. A new step appends one point between redraws.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the 'on' redraws")
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from studio.core.events import StepLogged
    from studio.gui.widgets.metrics_plots import MetricsPlotsWidget, PeakDecimation

    app = QApplication.instance() or QApplication(sys.argv)
    plots = MetricsPlotsWidget()
    plots.resize(1100, 700)
    plots.show()
    app.processEvents()
    n = args.points
    rng = np.random.default_rng(0)
    steps = np.arange(1, n + 1, dtype=np.float64)
    loss = 1.5 + 3.0 / np.sqrt(steps) + 0.1 * rng.standard_normal(n)
    for i in range(1, 4):  # through the real path, so the smoothing state is set
        plots.add_step(StepLogged(i, n, float(loss[i - 1]), 1e-3, 1.0, 1000.0, i * 768, i * 0.1))
    buf = plots.steps
    while buf._data.shape[1] < n:  # then the rest straight into the buffer, as a million add_step calls would
        buf.append(*([np.nan] * len(buf.columns)))
    buf.size = n
    for name, values in (("step", steps), ("tokens", steps * 768), ("time", steps * 0.1), ("loss", loss),
                         ("smooth", loss), ("lr", np.full(n, 1e-3)), ("grad_norm", np.ones(n)),
                         ("tokens_per_s", np.full(n, 1000.0))):
        buf._data[buf.columns.index(name), :n] = values
    plots.timer.start()  # live: small plots every third frame, as during training
    curves = [plots.train_raw, plots.train_smooth, plots.valid_curve, plots.lr_curve, plots.grad_curve, plots.speed_curve]

    bins = PeakDecimation.BINS
    modes = {
        "shipped: incremental peak bins + pyqtgraph peak downsampling/clipToView": (True, True),
        "pyqtgraph peak downsampling/clipToView alone": (False, True),
        "neither": (False, False),
    }

    def set_mode(mode: str) -> None:
        decimate, downsample = modes[mode]
        PeakDecimation.BINS = bins if decimate else 10**12
        plots._decimations.clear()
        for c in curves:
            c.setDownsampling(auto=downsample, method="peak")
            c.setClipToView(downsample)

    def one_redraw() -> float:
        i = plots.steps.size + 1  # the next step arrives, as in a live run
        plots.add_step(StepLogged(i, n, 1.6, 1e-3, 1.0, 1000.0, i * 768, i * 0.1))
        t0 = time.perf_counter()
        plots.redraw()
        for p in plots.plots:
            if p.isVisible():
                p.repaint()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {m: [] for m in modes}
    for mode in modes:  # a first, untimed redraw in each mode fits the ranges
        set_mode(mode)
        one_redraw()
    for _ in range(args.repeats):
        for mode in modes:
            set_mode(mode)
            one_redraw()  # the first after a switch builds the bins; a live run has them already
            times[mode].append(one_redraw())
    if args.profile:
        import cProfile
        import pstats

        set_mode(next(iter(modes)))
        one_redraw()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeats):
            one_redraw()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)
    print(f"{n:,} points, {args.repeats} redraws each, median (min-max):")
    for mode in modes:
        t = [1000 * x for x in times[mode]]
        print(f"  {mode:72s} {statistics.median(t):7.1f} ms ({min(t):.1f}-{max(t):.1f})")
    plots.timer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
