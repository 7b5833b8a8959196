"""CPU threads for training: how many, and how OpenMP's idle threads wait. No torch here, so the
window can prepare a training child's environment without importing it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

# For a process that trains, set before it starts (OpenMP reads its environment once, when it
# loads). PyTorch's Linux builds use GNU OpenMP (``torch.__config__.parallel_info()``), whose idle
# threads spin for a while before sleeping: on a machine whose cores are all busy (another
# program, the window itself) a spinning thread holds a core the thread it waits for needs, and
# two threads ran slower than one. PASSIVE makes them sleep at once; KMP_BLOCKTIME is the same
# for Intel's and LLVM's OpenMP (other builds, macOS). Measured (benchmarks/threads.py, 2 cores):
# beside a busy process, 2 threads went from 5,319 to 9,554 tokens/s with it; on free cores it
# cost 2 threads 37% (22,726 -> 14,345). So the window's training child, which shares the cores
# with the window, gets it; the headless CLI, which picks its threads from the load, does not.
QUIET_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


# Any of these in the environment is a person's own choice of how OpenMP's threads wait.
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def quiet_openmp_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``QUIET_OPENMP``, unless ``env`` already says how OpenMP waits: a person's own choice wins
    (PASSIVE would void a ``GOMP_SPINCOUNT`` of theirs, so none of it is added then)."""
    if any(name in env for name in _WAIT_SETTINGS):
        return {}
    return dict(QUIET_OPENMP)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a container or taskset may allow fewer than the machine has
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has none
        return 0.0


def busy_elsewhere(window_s: float = 0.2) -> float | None:
    """Cores that other processes keep busy now: the machine's CPU time over a short window, less
    this process's own. None where psutil cannot tell."""
    try:
        import psutil

        me = psutil.Process()
        before, mine_before, t0 = psutil.cpu_times(), me.cpu_times(), time.monotonic()
        time.sleep(window_s)
        after, mine_after, wall = psutil.cpu_times(), me.cpu_times(), time.monotonic() - t0
    except Exception:  # noqa: BLE001 - a platform psutil does not cover: no opinion
        return None

    def busy(t: object) -> float:
        return sum(float(getattr(t, name, 0.0)) for name in ("user", "nice", "system", "irq", "softirq", "steal"))

    own = (mine_after.user - mine_before.user) + (mine_after.system - mine_before.system)
    return max(0.0, (busy(after) - busy(before) - own) / max(wall, 1e-6))


def default_threads(cores: int | None = None, load: float | None = None, elsewhere: float | None = None) -> int:
    """The cores other programs leave free; at least one. One busy core of another program on a
    two-core machine leaves one thread: two threads there measured slower than one.

    First judged from the load average, which is free to read. But that counts this process's
    own recent work as well (a benchmark training runs one after another had every run after the
    first at one thread of two), so when it says the cores are taken, a short sample of what other
    processes use right now (``busy_elsewhere``) has the last word."""
    cores = cores or usable_cores()
    load = load_average() if load is None else load
    free = max(1, min(cores, cores - int(load + 0.5)))
    if free < cores:
        others = busy_elsewhere() if elsewhere is None else elsewhere
        if others is not None:
            free = max(1, min(cores, cores - int(min(load, others) + 0.5)))
    return free
