"""Does TPE find a better model than random search for the same number of trials?

    python benchmarks/search.py [--trials 12] [--steps 300] [--seeds 0,1,2] [--strategies tpe,random]
                                [--prune] [--json results.json] [--smoke]

On the demo stories (the ``demo-gpt`` preset, a small character-level GPT), each strategy runs a
search over the learning rate (log range), the depth (1 to 4 layers) and the width (64, 128 or
192), with the same trial budget and the same steps per trial, once per seed. For every search
it prints the best validation loss and the wall time; then, per strategy, the median of the best
losses with their spread (min-max) and the total wall time. Pruning is off unless ``--prune``
(the median pruner with its defaults), so the samplers are compared on whole trials.

Every search runs in this process, one trial after another, into a temporary data folder (the
user's run library is not touched). ``--smoke``: one trial of a few steps per strategy and seed,
to check that the script runs, not to measure anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def spec_table(strategy: str, seed: int, trials: int, steps: int, prune: bool) -> dict:
    evals = max(1, steps // 6)
    return {
        "search": {
            "name": f"bench-{strategy}-{seed}", "base": "demo-gpt", "strategy": strategy, "trials": trials, "seed": seed,
            "metric": "valid_loss", "prune": prune, "trial_steps": steps,
            "set": [f"train.eval_interval={evals}", "train.sample_tokens=0", "model.context_length=64",
                    f"schedule.warmup_steps={max(1, steps // 10)}", "model.n_heads=4"],
        },
        "params": {
            "train.lr": {"min": 3e-4, "max": 3e-2, "log": True},
            "model.n_layers": {"min": 1, "max": 4, "int": True},
            "model.d_model": [64, 128, 192],
        },
    }


def run_one(strategy: str, seed: int, trials: int, steps: int, prune: bool, root: Path) -> dict:
    from studio.core.runs.search import run_search
    from studio.core.runs.trials import SearchSpec

    spec = SearchSpec.from_dict(spec_table(strategy, seed, trials, steps, prune))
    started = time.perf_counter()
    board, folder = run_search(spec, out=root / spec.name)
    seconds = time.perf_counter() - started
    best = board[0] if board and board[0].value is not None else None
    return {"strategy": strategy, "seed": seed, "best_valid_loss": best.value if best else None,
            "best_params": best.params if best else None, "seconds": seconds,
            "statuses": [r.status for r in board], "folder": str(folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=300, help="training steps per trial")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="tpe,random")
    parser.add_argument("--prune", action="store_true", help="median pruning (its defaults: 5 finished trials first)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--smoke", action="store_true", help="1 trial of 6 steps per search: does the script run?")
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.steps = 1, 6
    seeds = [int(s) for s in args.seeds.split(",")]
    strategies = args.strategies.split(",")

    with tempfile.TemporaryDirectory(prefix="studio-search-bench-") as tmp:
        os.environ["STUDIO_DATA_DIR"] = tmp  # the runs go here, not into the user's library
        root = Path(tmp) / "searches"
        results = []
        for strategy in strategies:
            for seed in seeds:
                r = run_one(strategy, seed, args.trials, args.steps, args.prune, root)
                results.append(r)
                loss = "-" if r["best_valid_loss"] is None else f"{r['best_valid_loss']:.4f}"
                print(f"{strategy:>7} seed {seed}: best valid loss {loss}  ({r['seconds']:.0f} s; "
                      f"{r['statuses'].count('finished')} finished, {r['statuses'].count('pruned')} pruned)  {r['best_params']}",
                      flush=True)
    print(f"\n{args.trials} trials of {args.steps} steps per search, seeds {args.seeds}:")
    for strategy in strategies:
        mine = [r for r in results if r["strategy"] == strategy]
        losses = [r["best_valid_loss"] for r in mine if r["best_valid_loss"] is not None]
        total = sum(r["seconds"] for r in mine)
        if losses:
            print(f"{strategy:>7}: best valid loss median {statistics.median(losses):.4f} (min {min(losses):.4f}, "
                  f"max {max(losses):.4f}); wall time {total:.0f} s in all, median {statistics.median(r['seconds'] for r in mine):.0f} s "
                  f"a search")
        else:
            print(f"{strategy:>7}: no trial reached a value")
    if args.json:
        args.json.write_text(json.dumps({"trials": args.trials, "steps": args.steps, "results": results}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
