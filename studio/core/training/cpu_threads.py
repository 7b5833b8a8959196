"""CPU threads for training: how many, and how OpenMP's idle threads wait. No torch here, so the
window can prepare a training child's environment without importing it."""

from __future__ import annotations

import os
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


def quiet_openmp_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``QUIET_OPENMP`` less what ``env`` already sets: a person's own choice wins."""
    return {k: v for k, v in QUIET_OPENMP.items() if k not in env}


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


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """The cores other programs leave free, judged from the load average at the start; at least
    one. The load counts this process too once it runs, so one busy core of another program on a
    two-core machine leaves one thread: two threads there measured slower than one."""
    cores = cores or usable_cores()
    load = load_average() if load is None else load
    return max(1, min(cores, cores - int(load + 0.5)))
