"""Soak: does a long session of stop/resume cycles leak memory, files, threads or processes?

    python benchmarks/soak.py [--minutes 5] [--window-cycles 50]

Part 1 (the engine): one run trains for the given wall time in cycles: train some steps, stop
(as Ctrl-C or the window's Stop would), resume from the checkpoint, and again. After each cycle
the process's resident memory, open file descriptors and threads are sampled. The first cycles
warm up (allocator pools, the token cache, PyTorch's kernels); growth is then measured from the
end of warm-up to the last cycle, and must stay under 5%.

Part 2 (the window's controller): ``--window-cycles`` starts and stops of a run through the
``RunMonitorWidget`` the Train page uses (a QThread supervising a ``studio worker`` child
process), offscreen. Afterwards no QThread, Python thread or child process may be left over.

Each part prints one result line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

TINY = ["model.n_layers=2", "model.d_model=64", "model.n_heads=2", "model.context_length=64", "train.batch_size=8",
        "train.eval_interval=50", "train.eval_batches=4", "train.sample_tokens=32", "run.threads=1"]


def _fds(proc: psutil.Process) -> int:
    return proc.num_fds() if hasattr(proc, "num_fds") else len(proc.open_files())


def engine_soak(minutes: float, steps_per_cycle: int, warmup_cycles: int) -> str:
    from studio.core.config import RunConfig
    from studio.core.control import RunControl
    from studio.core.events import Event, StepLogged
    from studio.core.resources import find_config
    from studio.core.training.trainer import Trainer

    proc = psutil.Process()
    out = Path(tempfile.mkdtemp(prefix="soak-runs-"))
    config = RunConfig.load(find_config("demo-gpt"), [*TINY, "train.steps=100000000"])
    samples: list[tuple[float, int, int]] = []
    deadline = time.monotonic() + 60 * minutes
    run_dir: Path | None = None
    cycles = 0
    while time.monotonic() < deadline or cycles <= warmup_cycles + 1:
        control = RunControl()
        stop_at = (cycles + 1) * steps_per_cycle

        class StopAfter:
            def on_event(self, event: Event, stop_at: int = stop_at, control: RunControl = control) -> None:
                if isinstance(event, StepLogged) and event.step >= stop_at:
                    control.request_stop()

        trainer = Trainer(config, out=out) if run_dir is None else Trainer.resume(run_dir)
        result = trainer.fit([StopAfter()], control)
        if result.status != "stopped":
            raise SystemExit(f"cycle {cycles}: the run ended {result.status}: {result.error}")
        run_dir = result.run_dir
        del trainer
        cycles += 1
        samples.append((proc.memory_info().rss / 2**20, _fds(proc), proc.num_threads()))
    after_warmup, last = samples[warmup_cycles], samples[-1]
    growth = [(b - a) / a * 100 if a else 0.0 for a, b in zip(after_warmup, last, strict=True)]
    ok = all(g < 5.0 for g in growth)
    rss = [s[0] for s in samples]
    return (
        f"engine soak: {cycles} stop/resume cycles of {steps_per_cycle} steps in {minutes:g} min; "
        f"RSS {after_warmup[0]:.0f} -> {last[0]:.0f} MB ({growth[0]:+.1f}%, median {statistics.median(rss):.0f}, max {max(rss):.0f}), "
        f"open files {after_warmup[1]} -> {last[1]} ({growth[1]:+.1f}%), threads {after_warmup[2]} -> {last[2]} ({growth[2]:+.1f}%) "
        f"after {warmup_cycles} warm-up cycles; target growth < 5%: {'meets' if ok else 'MISSES'}"
    )


def window_soak(cycles: int) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QThread, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.core.config import RunConfig
    from studio.core.resources import find_config
    from studio.gui.widgets.run_monitor import RunMonitorWidget

    app = QApplication.instance() or QApplication([])
    monitor = RunMonitorWidget()
    config = RunConfig.load(find_config("demo-gpt"), [*TINY, "train.steps=100000000"])
    proc = psutil.Process()
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = {c.pid for c in proc.children(recursive=True)}

    def wait_for(signal: object, timeout_ms: int) -> bool:
        loop = QEventLoop()
        timer = QTimer(singleShot=True)
        timer.timeout.connect(loop.quit)
        got = [False]

        def hit(*_: object) -> None:
            got[0] = True
            loop.quit()

        signal.connect(hit)  # type: ignore[attr-defined]
        timer.start(timeout_ms)
        loop.exec()
        signal.disconnect(hit)  # type: ignore[attr-defined]
        return got[0]

    started = time.perf_counter()
    failures = 0
    for _ in range(cycles):
        monitor.start(config)
        if not wait_for(monitor.run_started, 120_000):
            failures += 1
        monitor.stop()
        if not wait_for(monitor.run_ended, 120_000):
            failures += 1
    app.processEvents()
    time.sleep(0.5)
    # A QThread that ran Python code leaves a stale "Dummy" entry in threading's table; only
    # threads the operating system still runs count.
    alive = {t.id for t in proc.threads()}
    leftover_threads = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.native_id in alive]
    leftover_children = [c.pid for c in proc.children(recursive=True) if c.pid not in children_before and c.is_running()
                         and c.status() != psutil.STATUS_ZOMBIE]
    qthreads = [t for t in monitor.findChildren(QThread)]
    ok = not leftover_threads and not leftover_children and not failures and monitor.training.thread is None
    return (
        f"window soak: {cycles} start/stop cycles through RunMonitorWidget in {time.perf_counter() - started:.0f} s; "
        f"left over: {len(leftover_threads)} Python threads, {len(leftover_children)} child processes, "
        f"{len(qthreads)} QThreads, {failures} cycles that did not start or end; {'clean' if ok else 'LEAKS'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--steps-per-cycle", type=int, default=40)
    parser.add_argument("--warmup-cycles", type=int, default=3)
    parser.add_argument("--window-cycles", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="soak-home-"))
    os.environ.setdefault("STUDIO_DATA_DIR", str(home / "data"))
    os.environ.setdefault("STUDIO_CACHE_DIR", str(home / "cache"))
    if args.minutes > 0:
        print(engine_soak(args.minutes, args.steps_per_cycle, args.warmup_cycles), flush=True)
    if args.window_cycles > 0:
        print(window_soak(args.window_cycles), flush=True)


if __name__ == "__main__":
    sys.exit(main())
