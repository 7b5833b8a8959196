"""Can a new user fine-tune on each demo task and see correct answers in about two minutes?

    python benchmarks/demo_tasks.py [--base-steps 400]

Follows the path a new user takes, with the shipped presets and nothing tuned here: train the
``demo-gpt`` preset (a character GPT on the demo stories Studio writes) for ``--base-steps``
steps, then run each ``finetune-demo-*`` preset from it. Printed per task: the test metrics of
the best checkpoint, one answer next to the expected one, and the wall time of the fine-tuning
run (training, evaluation and the final scoring of validation and test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("translate", "qa", "summarize", "sentiment")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-steps", type=int, default=400)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="studio-demo-tasks-"))
    os.environ["STUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["STUDIO_CACHE_DIR"] = str(scratch / "cache")

    from studio.core.config import RunConfig
    from studio.core.decoding.options import DecodingSettings
    from studio.core.inference.loading import load_model
    from studio.core.inference.runner import TaskRunner
    from studio.core.resources import find_config
    from studio.core.tasks.demo import demo_task_paths
    from studio.core.tasks.examples import load_examples
    from studio.core.training.trainer import Trainer

    started = time.perf_counter()
    base_config = RunConfig.load(find_config("demo-gpt"), [f"train.steps={args.base_steps}"])
    base = Trainer(base_config, out=scratch / "runs").fit()
    if base.status != "finished":
        print(f"base: {base.status}: {base.error}", file=sys.stderr)
        return 1
    print(f"base (demo-gpt, {args.base_steps} steps): {time.perf_counter() - started:.0f} s", flush=True)

    for task in TASKS:
        config = RunConfig.load(find_config(f"finetune-demo-{task}"), [f'finetune.base="{base.run_dir}"'])
        started = time.perf_counter()
        result = Trainer(config, out=scratch / "runs").fit()
        seconds = time.perf_counter() - started
        if result.status != "finished":
            print(f"{task}: {result.status}: {result.error}", file=sys.stderr)
            return 1
        test = json.loads((result.run_dir / "results.json").read_text())["test"]
        example = load_examples(config.task.kind, [demo_task_paths(config.task.dataset)["test"]])[0]
        runner = TaskRunner(load_model(result.run_dir))
        tab = {"classify": "classify", "translate": "translate", "qa": "ask", "summarize": "summarize"}[config.task.kind]
        answer = "".join(t.text for t in runner.stream(tab, DecodingSettings(mode="greedy", max_new_tokens=64), text=example.source, context=example.source, question=example.question))
        shown = "  ".join(f"{k} {v:.2f}" for k, v in test.items())
        print(f"{task}: test {shown}  fine-tune {seconds:.0f} s  e.g. {answer.strip()!r} (expected {example.target!r})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
