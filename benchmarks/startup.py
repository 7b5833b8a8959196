"""How long from starting `studio` to a painted window, and to a window ready to train?

    python benchmarks/startup.py [--repeats 5]
    xvfb-run -a -s "-screen 0 1280x800x24" env QT_QPA_PLATFORM=xcb python benchmarks/startup.py

Each repeat starts a fresh process (`python -m studio`, as the `studio` command does) and measures
from just before the process is created, so the interpreter's own start, every import and the
window's construction count. The window reports (STUDIO_STARTUP_REPORT) the moment its first
paint has been handled, and the moment PyTorch has loaded and Start can be pressed; then it
closes itself. The first repeat is the cold start (files not yet in the page cache, font caches);
the rest are warm. Prints the median and spread of the warm starts. Target: painted within 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_start(home: Path) -> dict[str, dict[str, float]]:
    report = home / f"startup-{time.monotonic_ns()}.jsonl"
    env = {**os.environ, "STUDIO_STARTUP_REPORT": str(report), "STUDIO_DATA_DIR": str(home / "data"),
           "STUDIO_CACHE_DIR": str(home / "cache")}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    start = time.time()
    subprocess.run([sys.executable, "-m", "studio"], env=env, timeout=300, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stages = {}
    for line in report.read_text().splitlines():
        entry = json.loads(line)
        stages[entry["stage"]] = {"wall": entry["time"] - start, "cpu": entry.get("cpu", float("nan"))}
    return stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="studio-startup-"))
    runs = [one_start(home) for _ in range(max(2, args.repeats))]
    cold, warm = runs[0], runs[1:]
    platform = os.environ.get("QT_QPA_PLATFORM", "offscreen")
    for stage, target in (("painted", 1.5), ("ready", None)):
        values = [r[stage]["wall"] for r in warm]
        cpu = statistics.median(r[stage]["cpu"] for r in warm)
        median = statistics.median(values)
        verdict = "" if target is None else f"; target <= {target} s: {'meets' if median <= target else 'MISSES'}"
        print(f"startup {stage}: warm median {median:.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
              f"{len(values)} starts; the process's own CPU {cpu:.2f} s), cold {cold[stage]['wall']:.2f} s{verdict} "
              f"(platform {platform})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
