"""Threads, OpenMP's wait policy and a busy machine: tokens/s of the baby Shakespeare GPT or LSTM.

    python benchmarks/threads.py [--arch gpt|lstm] [--steps 80] [--repeats 3] [--timeout 60] [--data PATH]

The model is the shipped ``shakespeare-char-gpt`` recipe (4 layers, 4 heads, 128 wide, context 64,
batch 12) or ``shakespeare-char-lstm`` (2 layers of 224, context 64, batch 12), trained with AdamW
by both loops. Each measurement is a fresh process (OpenMP reads its environment once, at start):

- ``engine``: ``Trainer.fit`` with the engine's defaults, at 1 or 2 threads or auto (run.threads=0,
  what ``studio train`` does), with libgomp's default wait policy (spin, then sleep; the headless
  CLI's), ``OMP_WAIT_POLICY=PASSIVE``, the window's training child's (``window``), or
  ``GOMP_SPINCOUNT=N`` (``spinN``);
- ``plain``: a tutorial-style loop on the same model, data and batch (``torch.randint`` offsets, a
  list of slices stacked, ``AdamW`` with PyTorch's defaults, ``loss.item()`` every step), at
  PyTorch's default thread count and wait policy.

Each is run idle and beside a competing busy process (one Python spinning on a core, as a GUI
or another program does), interleaved: every repeat runs every configuration once, in the same
order. Printed: median tokens/s over the repeats, the spread (min-max), and the ratio to the plain
loop under the same load. Only ratios within one run mean anything on a shared machine.
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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lm" / "tinyshakespeare" / "input.txt"
WARMUP = 20


def engine(data: Path, threads: int, steps: int, arch: str = "gpt") -> float:
    from studio.core.config import RunConfig
    from studio.core.events import Event, StepLogged
    from studio.core.resources import find_config
    from studio.core.training.trainer import Trainer

    total = steps + WARMUP
    config = RunConfig.load(find_config(f"shakespeare-char-{arch}"), [
        f'data.paths=["{data}"]', f"run.threads={threads}", "train.sample_tokens=0", f"train.steps={total}",
        f"train.eval_interval={total}", "train.eval_batches=1",
        # The engine's default optimizer, as the plain loop's: the GPT recipe's Muon spends about a
        # third of each step on its Newton-Schulz iterations, for a lower loss at equal time
        # (benchmarks/ladder.py), which is not what this benchmark compares.
        "optimizer.name=adamw",
    ])
    seen: dict[int, StepLogged] = {}

    class Keep:
        def on_event(self, e: Event) -> None:
            if isinstance(e, StepLogged) and e.step == WARMUP:
                seen[e.step] = e
            elif isinstance(e, StepLogged) and e.step > WARMUP and (e.step % 10 == 0 or e.step == total):
                seen[total] = e
                a = seen[WARMUP]
                _report((e.tokens_seen - a.tokens_seen) / (e.elapsed_s - a.elapsed_s))

    Trainer(config, out=Path(tempfile.mkdtemp(prefix="threads-"))).fit([Keep()])
    a, b = seen[WARMUP], seen[total]
    return (b.tokens_seen - a.tokens_seen) / (b.elapsed_s - a.elapsed_s)


def plain(data: Path, steps: int, arch: str = "gpt", overrides: tuple[str, ...] = ()) -> float:
    """What a PyTorch tutorial writes: nothing tuned. The network is the recipe's own (its
    [model] section, with ``overrides``), built by the engine's model code, so the two loops
    differ only in how they train it."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from studio.core.config import RunConfig
    from studio.core.models.registry import build_model
    from studio.core.resources import find_config

    text = data.read_text(encoding="utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.int64)
    train = ids[: int(0.9 * len(ids))]
    block, batch = 64, 12
    torch.manual_seed(0)
    model = build_model(RunConfig.load(find_config(f"shakespeare-char-{arch}"), list(overrides)).model, len(chars))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = 0.0
    for step in range(steps + WARMUP):
        if step == WARMUP:
            t0 = time.perf_counter()
        ix = torch.randint(len(train) - block - 1, (batch,))
        x = torch.stack([torch.from_numpy(train[i : i + block]) for i in ix])
        y = torch.stack([torch.from_numpy(train[i + 1 : i + 1 + block]) for i in ix])
        logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits  # a recurrent model also returns its state
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the tutorial prints it
        if step >= WARMUP and (step + 1 - WARMUP) % 10 == 0:
            _report((step + 1 - WARMUP) * batch * block / (time.perf_counter() - t0))
    return steps * batch * block / (time.perf_counter() - t0)


def _report(tokens_per_s: float) -> None:
    """The rate so far, so a run cut off by --timeout still says how fast it went."""
    print(json.dumps({"tokens_per_s": tokens_per_s}), flush=True)


def measure(kind: str, threads: int, policy: str, steps: int, data: Path, cache: Path, timeout: float = 600,
            arch: str = "gpt") -> float:
    env = {**os.environ, "STUDIO_CACHE_DIR": str(cache), "STUDIO_DATA_DIR": str(cache.parent / "data")}
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "STUDIO_OPENMP_DEFAULTS"):
        env.pop(name, None)
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy == "window":  # what the window's training child gets (studio worker)
        from studio.core.training.cpu_threads import quiet_openmp_environment

        env.update(quiet_openmp_environment(env))
    elif policy.startswith("spin"):  # spin N times, then sleep: spin20000
        env["GOMP_SPINCOUNT"] = policy.removeprefix("spin")
    command = [sys.executable, __file__, "--one", kind, str(threads), str(steps), "--data", str(data), "--arch", arch]
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=timeout)
        stdout = out.stdout
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
    except subprocess.TimeoutExpired as e:  # a collapsed run: its rate so far is the figure
        raw = e.stdout or b""
        stdout = raw.decode() if isinstance(raw, bytes) else raw
        if not stdout.strip():
            return 0.0
    return float(json.loads(stdout.strip().splitlines()[-1])["tokens_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--arch", choices=("gpt", "lstm"), default="gpt", help="the shakespeare-char-ARCH recipe's model")
    parser.add_argument("--loads", default="idle,busy")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a measurement may take (a collapse is cut off)")
    parser.add_argument("--configs", default="plain:0:default,engine:1:default,engine:2:default,engine:2:passive,"
                                             "engine:0:default,engine:0:window",
                        help="KIND:THREADS:WAIT, comma-separated; KIND plain or engine, THREADS 0 for the engine's "
                             "choice, WAIT default, passive, window (the window's training child's) or spinN")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "THREADS", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, threads, steps = args.one[0], int(args.one[1]), int(args.one[2])
        value = engine(args.data, threads, steps, args.arch) if kind == "engine" else plain(args.data, steps, args.arch)
        print(json.dumps({"tokens_per_s": value}))
        return 0
    if not args.data.is_file():
        print(f"benchmark: {args.data} not found", file=sys.stderr)
        return 2
    cache = Path(tempfile.mkdtemp(prefix="studio-threads-")) / "cache"
    configs = [(k, int(t), p) for k, t, p in (c.split(":") for c in args.configs.split(","))]
    loads = args.loads.split(",")
    results: dict[tuple[str, str, int, str], list[float]] = {}
    measure("engine", 1, "default", 5, args.data, cache, arch=args.arch)  # builds the token cache once, untimed
    for _ in range(args.repeats):
        for load in loads:
            busy = None
            if load == "busy":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                for kind, threads, policy in configs:
                    value = measure(kind, threads, policy, args.steps, args.data, cache, args.timeout, args.arch)
                    results.setdefault((load, kind, threads, policy), []).append(value)
                    print(f"  ({load} {kind} threads={threads} wait={policy}: {value:,.0f})", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print(f"cores {os.cpu_count()}, {args.steps} steps after {WARMUP} warm-up, median of {args.repeats} (min-max), "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    for load in loads:
        base = statistics.median(results[(load, "plain", 0, "default")])
        for kind, threads, policy in configs:
            values = results[(load, kind, threads, policy)]
            med = statistics.median(values)
            label = f"{kind} threads={threads or 'auto'} wait={policy}"
            ratio = f"{med / base:.2f}x plain" if base else "(plain collapsed)"
            print(f"{load:5s} {label:34s} {med:8,.0f} tokens/s ({min(values):,.0f}-{max(values):,.0f})  {ratio}")
    print("0 tokens/s: not 10 steps past the warm-up within --timeout (a collapse)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
