"""Named points where the fault-injection tests make a real Studio process fail on purpose.

Set ``STUDIO_FAULT`` to a comma-separated list of ``point[@N][=action]`` entries, for example
``checkpoint:between-renames`` (SIGKILL this process the first time that point is reached) or
``metrics:write@5=enospc`` (raise "no space left on device" the 5th time). Actions: ``kill``
(the default), ``stop`` (SIGSTOP: the process freezes right there, as a hung one would, until it
is sent SIGCONT or killed, so a test knows exactly where it stands), ``enospc``, ``eacces``. With
the variable unset, :func:`fault_point` is a dictionary lookup and nothing else, so the points can
stay in production code, where the faults really happen, instead of in copies of it in the tests.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

_counts: Counter[str] = Counter()


def _parse(spec: str) -> dict[str, tuple[int, str]]:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, action = item.partition("=")
        point, _, nth = point.partition("@")
        out[point] = (int(nth or 1), action or "kill")
    return out


def fault_point(name: str) -> None:
    spec = os.environ.get("STUDIO_FAULT")
    if not spec:
        return
    wanted = _parse(spec).get(name)
    if wanted is None:
        return
    _counts[name] += 1
    nth, action = wanted
    if _counts[name] != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    elif action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"<{name}>")
    elif action == "eacces":
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), f"<{name}>")
