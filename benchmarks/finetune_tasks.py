"""Fine-tune small models on the real task data in ../shared/data/tasks and print each metric.

    python benchmarks/finetune_tasks.py [--tasks imdb,eng-fra,xquad,scitldr] [--scale 1.0]

Each task follows Studio's pipeline from scratch on this machine, with no outside weights:

1. a BPE tokenizer and a small language model pre-trained on the task's own training text
   (causal GPT, or a BERT-style masked LM for extractive QA);
2. fine-tuning that base for the task (full fine-tuning);
3. the best checkpoint scored on the test split with the task's metric.

Printed per task: the metric(s), the test size and the wall time of both stages. These are tiny
models trained for minutes on 2 CPU cores: IMDB accuracy should clearly beat the 50% baseline;
translation gets a modest BLEU; extractive QA and summarization score low, honestly.
``--scale`` multiplies every step count (0.2 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO.parent / "shared" / "data" / "tasks"

RECIPES = {
    "imdb": {
        "kind": "classify", "folder": "sentiment", "pattern": "{split}.jsonl", "arch": "gpt",
        "model": ["model.n_layers=2", "model.d_model=128", "model.n_heads=4", "model.context_length=256"],
        "vocab": 4000, "pretrain_steps": 300, "steps": 400, "batch": 16, "lr": 1e-3, "extra": [],
    },
    "eng-fra": {
        "kind": "translate", "folder": "translation/eng-fra", "pattern": "{split}.jsonl", "arch": "gpt",
        "model": ["model.n_layers=4", "model.d_model=128", "model.n_heads=4", "model.context_length=64"],
        "vocab": 6000, "pretrain_steps": 400, "steps": 2000, "batch": 32, "lr": 2e-3, "extra": ["task.max_target_tokens=30"],
    },
    "xquad": {
        "kind": "qa", "folder": "qa", "pattern": "squad_v1.1_xquad_en_{split}.json", "arch": "bert",
        "model": ["model.n_layers=4", "model.d_model=128", "model.n_heads=4", "model.context_length=256"],
        "vocab": 6000, "pretrain_steps": 400, "steps": 600, "batch": 16, "lr": 1e-3, "extra": ["task.qa_mode=extractive"],
    },
    "scitldr": {
        "kind": "summarize", "folder": "summarization", "pattern": "{split}.jsonl", "arch": "gpt",
        "model": ["model.n_layers=4", "model.d_model=128", "model.n_heads=4", "model.context_length=384"],
        "vocab": 8000, "pretrain_steps": 300, "steps": 600, "batch": 8, "lr": 1e-3, "extra": ["task.max_target_tokens=48"],
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(RECIPES))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if not TASKS.is_dir():
        print(f"benchmark: {TASKS} not found", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="studio-tasks-"))
    os.environ["STUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["STUDIO_CACHE_DIR"] = str(scratch / "cache")

    from studio.core.config import RunConfig
    from studio.core.tasks.demo import write_examples_corpus
    from studio.core.training.trainer import Trainer

    for name in args.tasks.split(","):
        r = RECIPES[name]
        folder = TASKS / r["folder"]
        split = {s: folder / r["pattern"].format(split=s) for s in ("train", "valid", "test")}
        corpus = write_examples_corpus(r["kind"], [split["train"]], scratch / f"{name}-corpus.txt")

        started = time.perf_counter()
        pretrain = RunConfig().with_overrides([
            f'data.paths=["{corpus}"]', "data.valid_fraction=0.05", "tokenizer.kind=bpe", f"tokenizer.vocab_size={r['vocab']}",
            f"model.arch={r['arch']}", *r["model"], f"train.steps={max(1, int(r['pretrain_steps'] * args.scale))}",
            f"train.batch_size={r['batch']}", "train.eval_interval=100", "train.sample_tokens=0", f"run.name={name}-base",
        ])
        base = Trainer(pretrain, out=scratch / "runs").fit()
        if base.status != "finished":
            print(f"{name}: pre-training {base.status}: {base.error}", file=sys.stderr)
            return 1
        pretrain_s = time.perf_counter() - started

        started = time.perf_counter()
        finetune = RunConfig().with_overrides([
            f"task.kind={r['kind']}", f'task.paths=["{split["train"]}"]', f'task.valid_paths=["{split["valid"]}"]',
            f'task.test_paths=["{split["test"]}"]', f'finetune.base="{base.run_dir}"', *r["extra"],
            f"train.steps={max(1, int(r['steps'] * args.scale))}", f"train.batch_size={r['batch']}", f"train.lr={r['lr']}",
            "train.eval_interval=200", "task.eval_examples=100", f"run.name={name}-{r['kind']}",
        ])
        result = Trainer(finetune, out=scratch / "runs").fit()
        finetune_s = time.perf_counter() - started
        if result.status != "finished":
            print(f"{name}: fine-tuning {result.status}: {result.error}", file=sys.stderr)
            return 1
        scores = json.loads((result.run_dir / "results.json").read_text())
        test = scores["test"]
        shown = "  ".join(f"{k} {v:.2f}" for k, v in test.items())
        from studio.core.tasks.examples import load_examples

        n_test = len(load_examples(r["kind"], [split["test"]]))
        print(
            f"{name} ({r['kind']}, {r['arch']}): test {shown}  [{n_test} test examples]  "
            f"pre-train {pretrain_s:.0f} s + fine-tune {finetune_s:.0f} s = {pretrain_s + finetune_s:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
