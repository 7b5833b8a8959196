"""GUI-thread time of the Runs page's Compare view for many long runs (target: <= 100 ms per turn).

    python benchmarks/compare_view.py [--runs 10] [--steps 5000] [--rounds 3]

Writes ``runs`` run folders of ``steps`` steps each (a config.toml and a metrics.jsonl written by
the engine's own ``MetricsWriter``, with a validation point every 100 steps), then, in an
offscreen window, asks the real ``CompareView`` to compare them ``rounds`` times. The runs are
read on the view's thread; what is measured is the GUI thread: the longest stall of a 5 ms
heartbeat from the request to the end of the first paint after the curves are drawn, the time
spent in the drawing slot itself, and that paint.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_runs(root: Path, runs: int, steps: int) -> list[Path]:
    from studio.core.callbacks import MetricsWriter
    from studio.core.config import RunConfig
    from studio.core.events import EvalLogged, StepLogged

    folders = []
    for r in range(runs):
        folder = root / f"20260101-0000{r:02d}-gpt"
        folder.mkdir(parents=True)
        lr = 1e-3 * (1 + r % 3)
        RunConfig.from_dict({"run": {"name": f"run-{r}"}, "train": {"lr": lr, "steps": steps}}).save(folder / "config.toml")
        writer = MetricsWriter(folder / "metrics.jsonl")
        rng = random.Random(r)
        for s in range(1, steps + 1):
            loss = 1.5 + 3.0 * math.exp(-s / (800 + 100 * r)) + rng.gauss(0, 0.05)
            writer.on_event(StepLogged(s, steps, loss, lr, 1.0, 10_000.0, s * 4096, s * 0.05))
            if s % 100 == 0:
                writer.on_event(EvalLogged(s, loss + 0.05, math.exp(loss + 0.05), loss, True, s * 4096, s * 0.05))
        writer.close()
        folders.append(folder)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.gui.widgets.compare_view import CompareView

    root = Path(tempfile.mkdtemp(prefix="studio-compare-bench-"))
    folders = write_runs(root, args.runs, args.steps)
    app = QApplication.instance() or QApplication(sys.argv)
    view = CompareView()
    view.resize(1100, 700)
    view.show()
    settle = time.perf_counter() + 1.0  # the view's first paint, which the window does at start-up, is not Compare's
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.005)

    worst = [0.0]
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        worst[0] = max(worst[0], (now - last[0]) / 1e6 - 5.0)
        last[0] = now

    heartbeat = QTimer(interval=5)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    drawing: list[float] = []
    original = view._on_loaded

    def timed(*a: object) -> None:
        t0 = time.perf_counter()
        original(*a)  # type: ignore[arg-type]
        drawing.append((time.perf_counter() - t0) * 1000)

    view.loader.done.disconnect(view._on_loaded)
    view.loader.done.connect(timed)
    done = [False]
    view.loaded.connect(lambda: done.__setitem__(0, True))
    for round_ in range(1, args.rounds + 1):
        worst[0] = 0.0
        done[0] = False
        last[0] = clock.nsecsElapsed()
        t0 = time.perf_counter()
        view.set_runs(list(reversed(folders)) if round_ % 2 == 0 else folders)
        while not done[0]:
            app.processEvents()
            time.sleep(0.001)
        read = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        view.repaint()
        paint = (time.perf_counter() - t1) * 1000
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        print(f"round {round_}: {args.runs} runs x {args.steps:,} steps: read and drawn {read:.0f} ms after the request; "
              f"drawing slot {drawing[-1]:.0f} ms; paint {paint:.0f} ms; longest GUI stall {worst[0]:.0f} ms "
              f"(target <= 100 ms: {'meets' if worst[0] <= 100 else 'MISSES'})", flush=True)
    heartbeat.stop()
    view.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
