"""Each speed option on and off: tokens/s of the baby Shakespeare GPT's training step.

    python benchmarks/speed_options.py [--steps 100] [--repeats 3] [--options base,compile,...]

The step is the engine's: the shipped ``shakespeare-char-gpt`` model (4 layers, 4 heads, 128 wide,
context 64, batch 12; attention through ``F.scaled_dot_product_attention``), batches from
``WindowSampler`` on the memory-mapped token cache, the loss through ``training_loss``, clipping,
AdamW. Options, each against ``base`` (the engine's defaults):

- ``compile``: ``torch.compile`` of the model (compile time not counted: warm-up steps first);
- ``foreach`` / ``fused`` / ``forloop``: AdamW's implementations (``base`` is PyTorch's default);
- ``loop_batches``: the windows read with a Python loop of slices and ``np.stack`` (the old
  sampler) instead of one fancy index;
- ``sync``: the loss and gradient norm read back to Python every step (``base`` reads them at
  the end only), which is what ``float(loss)`` per step costs.

Each measurement is a fresh process; repeats interleave the options. Printed: median tokens/s,
min-max, and the ratio to ``base`` in the same run.
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
WARMUP = 15
OPTIONS = ("base", "compile", "foreach", "fused", "forloop", "loop_batches", "sync")


def step_rate(option: str, data: Path, steps: int) -> float:
    import numpy as np
    import torch

    from studio.core.config import RunConfig
    from studio.core.control import RunControl
    from studio.core.resources import find_config
    from studio.core.training.batches import WindowSampler
    from studio.core.training.lm_workload import LanguageModelWorkload

    config = RunConfig.load(find_config("shakespeare-char-gpt"), [f'data.paths=["{data}"]'])
    config = config.with_absolute_paths()
    workload = LanguageModelWorkload(config, lambda e: None, RunControl(), None, None, 0)
    torch.manual_seed(0)
    model = workload.build_model()
    sampler: WindowSampler = workload.sampler
    if option == "loop_batches":
        def old_sample() -> torch.Tensor:
            starts = torch.randint(len(sampler.tokens) - sampler.window + 1, (sampler.batch_size,), generator=sampler.generator)
            rows = [np.asarray(sampler.tokens[s : s + sampler.window], dtype=np.int64) for s in starts.tolist()]
            return torch.from_numpy(np.stack(rows))
        sampler.sample = old_sample  # type: ignore[method-assign]
    kwargs = {"foreach": {"foreach": True}, "fused": {"fused": True}, "forloop": {"foreach": False}}.get(option, {})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1, **kwargs)
    forward = torch.compile(model) if option == "compile" else model
    params = list(model.parameters())
    losses = []
    t0 = 0.0
    for step in range(WARMUP + steps):
        if step == WARMUP:
            t0 = time.perf_counter()
        windows = workload.next_batch()["windows"]
        loss = forward.training_loss(windows) if option != "compile" else _compiled_loss(forward, windows)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if option == "sync":
            float(loss.detach())
            float(norm)
        else:
            losses.append(loss.detach())
    torch.stack(losses).sum().item() if losses else None
    return steps * 12 * 64 / (time.perf_counter() - t0)


def _compiled_loss(forward, windows):  # type: ignore[no-untyped-def]
    from studio.core.models.base import causal_lm_loss

    return causal_lm_loss(forward(windows[:, :-1]), windows[:, 1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"tokens_per_s": step_rate(args.one, args.data, args.steps)}))
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="studio-speed-"))
    env = {**os.environ, "STUDIO_CACHE_DIR": str(scratch / "cache"), "STUDIO_DATA_DIR": str(scratch / "data")}
    options = args.options.split(",")
    results: dict[str, list[float]] = {o: [] for o in options}
    errors: dict[str, str] = {}

    def run(option: str, steps: int) -> float | None:
        out = subprocess.run([sys.executable, __file__, "--one", option, "--steps", str(steps), "--data", str(args.data)],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            errors[option] = (out.stderr.strip().splitlines() or ["?"])[-1]
            return None
        return float(json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_s"])

    run("base", 1)  # the token cache, untimed
    for _ in range(args.repeats):
        for option in options:
            if option not in errors:
                value = run(option, args.steps)
                if value is not None:
                    results[option].append(value)
    print(f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, {args.steps} steps after {WARMUP} warm-up, "
          f"median of {args.repeats} (min-max)")
    base = statistics.median(results["base"]) if results.get("base") else None
    for option in options:
        values = results[option]
        if not values:
            print(f"  {option:13s} failed: {errors.get(option, '?')}")
            continue
        med = statistics.median(values)
        ratio = f"  {med / base:.2f}x base" if base else ""
        print(f"  {option:13s} {med:8,.0f} tokens/s ({min(values):,.0f}-{max(values):,.0f}){ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
