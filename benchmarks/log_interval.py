"""What reading the loss back every step costs: ``Trainer.fit`` tokens/s at ``train.log_interval``
1 against 10, for the baby Shakespeare GPT.

    python benchmarks/log_interval.py [--steps 400] [--repeats 3]

Each measurement is a fresh process training ``shakespeare-char-gpt`` (no evaluation, samples,
snapshots or layer statistics in the way) on ../shared/data/lm/tinyshakespeare/input.txt when it
is there (else the built-in download); the two settings alternate. Printed: each run, then the
medians, the min-max and their ratio. On a CPU the read-back is free (nothing runs ahead of the
host), so the ratio is about 1; on a GPU each read-back makes the host wait for the device.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "lm" / "tinyshakespeare" / "input.txt"

CHILD = r"""
import pathlib, sys, tempfile
from studio.core.config import RunConfig
from studio.core.events import StepLogged
from studio.core.resources import find_config
from studio.core.training.trainer import Trainer

interval, steps, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
overrides = [f"train.log_interval={interval}", f"train.steps={steps}", f"train.eval_interval={steps * 10}",
             "train.sample_tokens=0", "train.snapshots=0", "train.layer_stats_interval=0"]
if data:
    overrides += [f'data.paths=["{data}"]', 'data.dataset=""']
logged = []

class Last:
    def on_event(self, event):
        if isinstance(event, StepLogged):
            logged.append(event)

Trainer(RunConfig.load(find_config("shakespeare-char-gpt"), overrides), out=pathlib.Path(tempfile.mkdtemp())).fit([Last()])
print(logged[-1].tokens_seen / logged[-1].elapsed_s)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = SHAKESPEARE.as_posix() if SHAKESPEARE.is_file() else ""
    rates: dict[int, list[float]] = {1: [], 10: []}
    for _ in range(args.repeats):
        for interval in rates:
            child = subprocess.run([sys.executable, "-c", CHILD, str(interval), str(args.steps), data], capture_output=True,
                                   text=True, cwd=REPO)
            if child.returncode != 0:
                raise SystemExit(child.stderr[-3000:])
            rates[interval].append(float(child.stdout.strip().splitlines()[-1]))
            print(f"log_interval={interval}: {rates[interval][-1]:,.0f} tokens/s", flush=True)
    every, sparse = (statistics.median(rates[k]) for k in (1, 10))
    print(f"log_interval=1: {every:,.0f} tokens/s ({min(rates[1]):,.0f}-{max(rates[1]):,.0f}); log_interval=10: "
          f"{sparse:,.0f} tokens/s ({min(rates[10]):,.0f}-{max(rates[10]):,.0f}); ratio {sparse / every:.2f} "
          f"(medians of {args.repeats}, {args.steps} steps each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
