"""The quality ladder (issue 13): how far each small-model technique lowers the validation loss of
the baby Shakespeare models, one technique added per rung.

    python benchmarks/ladder.py [--arch gpt|lstm|both] [--rungs baseline,rope,...] [--seeds 2] [--steps 2000]
                                [--lrs 3e-3,...] [--lr-sweep] [--time-budget 5m] [--softcap 15] [--plain]
                                [--threads 0] [--set KEY=VALUE ...] [--json OUT] [--data PATH]

Every run goes through the real ``Trainer.fit`` (headless, as ``studio train`` does) on
../shared/data/lm/tinyshakespeare/input.txt, character tokenizer, the last 10% held out for
validation (the shipped recipes ``shakespeare-char-gpt`` and ``shakespeare-char-lstm``: batch 12,
context 64, 2000 steps; each baseline rung spells out the recipe as it first shipped, AdamW at the
engine's default learning rate, 3e-3, with warm-up and cosine decay; the recipes now carry the
ladder's winners).

GPT rungs (4 layers, 4 heads, 128 wide), cumulative, each adding one technique to the ones above it
that helped (a rung measured in the same run that does not lower the loss, or one named in --drop, is
left out of the rungs below it):
baseline (the recipe as first shipped: learned positions, LayerNorm, GELU, tied head), rope, rmsnorm,
qknorm, relu2, zeroinit (zero-initialised output projections), untied (untied head), softcap
(logit soft-cap, --softcap), wsd (warm-up, stable, decay schedule), muon (Muon for the hidden
matrices, float32 Newton-Schulz, momentum 0.95; compare it on --time-budget too, its steps cost
more). LSTM rungs (2 layers, --lstm-width wide, 216 by default): lstm (untied), lstm-layernorm,
lstm-tied, lstm-wsd, lstm-muon (Muon for the recurrent weight matrices).

Each (rung, learning rate, seed) is one run of --steps steps (or of --time-budget of training time
each, the equal-wall-time comparison; the schedule then runs over the budget). Its figure is the
validation loss at the end, the mean over --eval-batches batches (40 by default, the recipes'
own) of 12 fixed windows, and its speed the tokens/s from the end of the first 10% of steps to the
last. One row per rung and rate: the mean over the seeds ± half their range, in nats and bits per
character, the change from the last rung kept, the median tokens/s, and with --plain that speed
divided by the tutorial-style loop's of benchmarks/threads.py (the network of each model's last
rung, the same batch, context and threads; the loop runs after the ladder, so compare it on an
otherwise idle machine).

    python benchmarks/ladder.py                                  # the full ladder, both models, 2 seeds
    python benchmarks/ladder.py --arch gpt --lr-sweep --rungs baseline,wsd   # rates 1e-3..5e-3
    python benchmarks/ladder.py --arch gpt --time-budget 5m --seeds 1        # equal wall time
    python benchmarks/ladder.py --steps 20 --seeds 1 --rungs baseline,rope   # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lm" / "tinyshakespeare" / "input.txt"
SWEEP_LRS = (1e-3, 2e-3, 3e-3, 5e-3)


def gpt_rungs(softcap: float) -> list[tuple[str, list[str]]]:
    """(name, the overrides it adds to the rung above), in ladder order."""
    return [
        # The recipe as it shipped before the ladder, spelled out, so the ladder still starts there
        # now that the preset carries the winners.
        ("baseline", ["model.positions=learned", "model.norm=layer", "model.qk_norm=false", "model.activation=gelu",
                      "model.zero_init_proj=false", "model.tie_embeddings=true", "model.logit_softcap=0",
                      "schedule.decay=cosine", "schedule.decay_fraction=0.2", "optimizer.name=adamw"]),
        ("rope", ["model.positions=rotary"]),
        ("rmsnorm", ["model.norm=rms"]),
        ("qknorm", ["model.qk_norm=true"]),
        ("relu2", ["model.activation=relu2"]),
        ("zeroinit", ["model.zero_init_proj=true"]),
        ("untied", ["model.tie_embeddings=false"]),
        ("softcap", [f"model.logit_softcap={softcap:g}"]),
        ("wsd", ["schedule.decay=wsd"]),
        ("muon", ["optimizer.name=muon", "optimizer.momentum=0.95"]),
    ]


def lstm_rungs(width: int) -> list[tuple[str, list[str]]]:
    return [
        ("lstm", [f"model.embedding_dim={width}", f"model.hidden_size={width}", "model.num_layers=2", "model.tie_weights=false",
                  "model.layer_norm=false", "schedule.decay=cosine", "schedule.decay_fraction=0.2", "optimizer.name=adamw"]),
        ("lstm-layernorm", ["model.layer_norm=true"]),
        ("lstm-tied", ["model.tie_weights=true"]),
        ("lstm-wsd", ["schedule.decay=wsd"]),
        ("lstm-muon", ["optimizer.name=muon", "optimizer.momentum=0.95"]),
    ]


@dataclass
class RunResult:
    arch: str
    rung: str
    lr: float
    seed: int
    steps: int
    valid_loss: float
    bits_per_char: float
    tokens_per_s: float
    threads: int
    device: str
    wall_s: float


@dataclass
class Row:
    """One rung at one rate, over its seeds."""

    arch: str
    rung: str
    lr: float
    overrides: list[str]
    seeds: int
    valid_loss_mean: float
    valid_loss_spread: float
    bits_per_char_mean: float
    tokens_per_s_median: float
    delta: float | None  # from the last rung kept, at the same rate
    threads: int
    kept: bool = True  # False: it lowered the loss at no rate, and the rungs below leave it out


def train_one(arch: str, rung: str, overrides: list[str], lr: float, seed: int, args: argparse.Namespace, out: Path) -> RunResult:
    from studio.core.config import RunConfig
    from studio.core.events import EvalLogged, Event, RunStarted, StepLogged
    from studio.core.resources import find_config
    from studio.core.training.trainer import Trainer

    steps = 10**9 if args.time_budget else args.steps  # under a budget the budget alone ends the run
    config = RunConfig.load(find_config(f"shakespeare-char-{arch}"), [
        f'data.paths=["{args.data}"]', f"run.threads={args.threads}", "train.sample_tokens=0",
        f"train.steps={steps}", f"train.eval_interval={steps}", f"train.eval_batches={args.eval_batches}",
        f"train.seed={seed}", f"train.lr={lr:g}", *([f"train.time_budget={args.time_budget}"] if args.time_budget else []),
        *overrides, *args.set,
    ])
    logged: list[StepLogged] = []
    evals: list[EvalLogged] = []
    started: list[RunStarted] = []

    class Keep:
        def on_event(self, event: Event) -> None:
            if isinstance(event, StepLogged):
                logged.append(event)
            elif isinstance(event, EvalLogged):
                evals.append(event)
            elif isinstance(event, RunStarted):
                started.append(event)

    t0 = time.perf_counter()
    result = Trainer(config, out=out).fit([Keep()])
    wall = time.perf_counter() - t0
    if result.status != "finished" or not evals:
        raise RuntimeError(f"{rung} lr={lr:g} seed={seed}: {result.status} {result.error}")
    final = evals[-1]
    # Speed after the first 10% of steps (start-up, the first allocations), to the last step.
    first = logged[min(len(logged) - 2, max(0, len(logged) // 10))] if len(logged) > 1 else logged[0]
    last = logged[-1]
    span = last.elapsed_s - first.elapsed_s
    tokens_per_s = (last.tokens_seen - first.tokens_seen) / span if span > 0 else last.tokens_per_s
    if not args.keep_runs and result.run_dir:
        shutil.rmtree(result.run_dir, ignore_errors=True)
    return RunResult(
        arch=arch, rung=rung, lr=lr, seed=seed, steps=last.step, valid_loss=final.loss,
        bits_per_char=final.bits_per_char if final.bits_per_char is not None else final.loss / math.log(2),
        tokens_per_s=tokens_per_s, threads=started[0].threads if started else 0,
        device=started[0].device if started else "", wall_s=wall,
    )


def plain_tokens_per_s(data: Path, steps: int, threads: int, arch: str, overrides: list[str]) -> float:
    """The tutorial-style loop of benchmarks/threads.py on a rung's network, at the engine's thread count."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import threads as threads_benchmark  # benchmarks/threads.py

    if threads:
        torch.set_num_threads(threads)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its rate every 10 steps
        return float(threads_benchmark.plain(data, steps, arch, tuple(o for o in overrides if o.startswith("model."))))


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / 2 if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("gpt", "lstm", "both"), default="both")
    parser.add_argument("--rungs", default="", help="comma list of rung names (default: every rung of the chosen models)")
    parser.add_argument("--seeds", type=int, default=2, help="runs per rung and rate, seeds 0, 1, ...")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lrs", default="", help="comma list of peak learning rates (default: the engine's, 3e-3)")
    parser.add_argument("--lr-sweep", action="store_true", help=f"try the rates {', '.join(f'{x:g}' for x in SWEEP_LRS)} (unless --lrs)")
    parser.add_argument("--time-budget", default="", help="train each run for this much time (90s, 5m) instead of --steps")
    parser.add_argument("--eval-batches", type=int, default=40, help="batches of 12 windows in the final validation loss")
    parser.add_argument("--softcap", type=float, default=15.0, help="the soft-cap rung's model.logit_softcap")
    parser.add_argument("--lstm-width", type=int, default=216, help="the LSTM's embedding and hidden size")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0: the engine's default)")
    parser.add_argument("--drop", default="", help="comma list of rungs whose technique the rungs below leave out "
                        "(a rung measured in this run that does not lower the loss is left out by itself)")
    parser.add_argument("--plain", action="store_true", help="also time benchmarks/threads.py's plain PyTorch loop")
    parser.add_argument("--plain-steps", type=int, default=200, help="timed steps of the plain loop (after 20 untimed)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an extra override for every run")
    parser.add_argument("--keep-runs", action="store_true", help="keep the run folders (deleted after each run otherwise)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write every run and the table rows here")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"benchmark: {args.data} not found (the Tiny Shakespeare text; see --data)", file=sys.stderr)
        return 2
    if args.eval_batches < 40:
        print("benchmark: --eval-batches below 40 makes the losses too noisy to compare rungs", file=sys.stderr)

    ladders: list[tuple[str, list[tuple[str, list[str]]]]] = []
    if args.arch in ("gpt", "both"):
        ladders.append(("gpt", gpt_rungs(args.softcap)))
    if args.arch in ("lstm", "both"):
        ladders.append(("lstm", lstm_rungs(args.lstm_width)))
    known = {name for _, rungs in ladders for name, _ in rungs}
    wanted = [r for r in args.rungs.split(",") if r] or sorted(known)
    unknown = sorted(set(wanted) - known)
    if unknown:
        print(f"benchmark: no rung {', '.join(unknown)} for --arch {args.arch}; rungs: "
              f"{', '.join(name for _, rungs in ladders for name, _ in rungs)}", file=sys.stderr)
        return 2
    dropped = {r for r in args.drop.split(",") if r}
    lrs = [float(x) for x in args.lrs.split(",") if x] or (list(SWEEP_LRS) if args.lr_sweep else [])

    # Keep the user's own folders out of it, but reuse one token cache between all the runs.
    scratch = Path(tempfile.mkdtemp(prefix="studio-ladder-"))
    os.environ["STUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ.setdefault("STUDIO_CACHE_DIR", str(scratch / "cache"))
    from studio.core.config import TrainConfig
    from studio.core.fileio import atomic_write_text

    length = f"time budget {args.time_budget}" if args.time_budget else f"{args.steps} steps"
    print(f"ladder: {length}, {args.seeds} seed(s), final validation loss over {args.eval_batches} batches of 12 x 64", flush=True)
    runs: list[RunResult] = []
    rows: list[Row] = []
    winners: dict[str, list[str]] = {}  # each model's techniques that helped, for the plain loop
    for arch, rungs in ladders:
        default_lr = TrainConfig().lr  # the engine's, not the recipe's: the ladder starts where the recipes once did
        overrides: list[str] = []
        previous: dict[float, float] = {}
        for name, adds in rungs:
            kept = overrides  # what the rungs below build on if this one is dropped
            overrides = overrides + adds  # cumulative: every technique of the rungs above that helped
            if name not in wanted:
                if name in dropped:
                    overrides = kept
                continue
            means: dict[float, float] = {}
            for lr in lrs or [default_lr]:
                done = [train_one(arch, name, overrides, lr, seed, args, scratch / "runs") for seed in range(args.seeds)]
                for r in done:
                    print(f"  ({arch} {name} lr={lr:g} seed={r.seed}: valid {r.valid_loss:.4f} after {r.steps} steps, "
                          f"{r.tokens_per_s:,.0f} tokens/s, {r.wall_s:.0f} s, {r.threads} threads, {r.device})", flush=True)
                runs.extend(done)
                losses = [r.valid_loss for r in done]
                mean = statistics.fmean(losses)
                rows.append(Row(
                    arch=arch, rung=name, lr=lr, overrides=list(overrides), seeds=len(done),
                    valid_loss_mean=mean, valid_loss_spread=spread(losses),
                    bits_per_char_mean=statistics.fmean(r.bits_per_char for r in done),
                    tokens_per_s_median=statistics.median(r.tokens_per_s for r in done),
                    delta=mean - previous[lr] if lr in previous else None,
                    threads=done[0].threads,
                ))
                means[lr] = mean
            if name in dropped or not any(lr not in previous or m < previous[lr] for lr, m in means.items()):
                overrides = kept  # it lowered the loss at no rate: the rungs below leave it out
                for row in rows[-len(means):]:
                    row.kept = False
            else:
                previous.update(means)
        winners[arch] = overrides

    # The plain loop on each model's winning network (every rung kept), at its runs' thread count.
    plain: dict[str, float] = {}
    if args.plain:
        for arch in dict.fromkeys(row.arch for row in rows):
            threads = [row for row in rows if row.arch == arch][-1].threads
            plain[arch] = plain_tokens_per_s(args.data, args.plain_steps, threads, arch, winners[arch] + args.set)

    print(f"\n{'model':5s} {'rung':15s} {'lr':>7s} {'valid loss':>17s} {'bits/char':>9s} {'change':>8s} {'tokens/s':>9s}"
          + ("  engine/plain" if plain else ""))
    for row in rows:
        change = "" if row.delta is None else f"{row.delta:+.4f}"
        line = (f"{row.arch:5s} {row.rung:15s} {row.lr:7.0e} {row.valid_loss_mean:8.4f} ± {row.valid_loss_spread:.4f} "
                f"{row.bits_per_char_mean:9.4f} {change:>8s} {row.tokens_per_s_median:9,.0f}"
                f"{'' if row.kept else '  (dropped)'}")
        if row.arch in plain:
            line += f"  {row.tokens_per_s_median / plain[row.arch]:.2f}x"
        print(line)
    for arch, rate in plain.items():
        print(f"plain PyTorch loop (benchmarks/threads.py) on the {arch} of the last {arch} rung: {rate:,.0f} tokens/s "
              f"over {args.plain_steps} steps")
    print("± is half the range over the seeds; change: from the last rung kept at the same rate (rungs are cumulative: "
          "a row keeps the technique of every rung before it, listed or not, except those dropped with --drop or "
          "measured here without lowering the loss).")
    if args.json:
        payload = {"steps": args.steps, "time_budget": args.time_budget, "seeds": args.seeds, "eval_batches": args.eval_batches,
                   "plain_tokens_per_s": plain, "rows": [asdict(r) for r in rows], "runs": [asdict(r) for r in runs]}
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
    shutil.rmtree(scratch / "runs", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
