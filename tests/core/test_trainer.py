from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from studio.core.architectures import ARCH_NAMES
from studio.core.callbacks import FunctionCallback
from studio.core.config import RunConfig
from studio.core.control import RunControl
from studio.core.events import (
    CheckpointSaved,
    DataReady,
    EvalLogged,
    Event,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from studio.core.training.trainer import Trainer, run_events_of
from tests.conftest import REPO
from tests.core.test_models import tiny_config


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


def stop_at(step: int, control: RunControl) -> FunctionCallback:
    return FunctionCallback(lambda e: control.request_stop() if isinstance(e, StepLogged) and e.step == step else None)


def assert_resume_is_exact(config: RunConfig, out: Path, steps: int) -> tuple[Collect, Collect]:
    """``steps`` straight, against ``steps // 2``, stop, resume to ``steps``: the same losses at every
    step, the same evaluations and learning rates. Returns the straight and resumed events."""
    half = steps // 2
    straight = Collect()
    done = Trainer(config, out=out / "straight").fit([straight])
    assert done.status == "finished" and done.step == steps, done.error

    first = Collect()
    control = RunControl()
    result = Trainer(config, out=out / "stopped").fit([first, stop_at(half, control)], control)
    assert result.status == "stopped" and result.step == half, result.error
    second = Collect()
    resumed = Trainer.resume(result.run_dir).fit([second])
    assert resumed.status == "finished" and resumed.step == steps, resumed.error
    assert second.of(RunStarted)[0].resumed and second.of(RunStarted)[0].start_step == half

    expected = [e.loss for e in straight.of(StepLogged)]
    got = [e.loss for e in first.of(StepLogged)] + [e.loss for e in second.of(StepLogged)]
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    later_evals = [e for e in straight.of(EvalLogged) if e.step > half]
    assert [e.loss for e in second.of(EvalLogged)] == pytest.approx([e.loss for e in later_evals], rel=1e-5)
    for got_eval, want_eval in zip(second.of(EvalLogged), later_evals, strict=True):  # task metrics, if any
        assert dict(got_eval.metrics) == pytest.approx(dict(want_eval.metrics), rel=1e-5), got_eval.step
    assert [e.lr for e in second.of(StepLogged)] == pytest.approx([e.lr for e in straight.of(StepLogged)][half:])
    return straight, second


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_resume_is_exact(arch: str, tiny_corpus: Path, tmp_path: Path) -> None:
    """N steps, stop, resume to 2N: the same losses as 2N steps straight, for every architecture
    (dropout and gradient accumulation on, so the random states and the optimizer must carry over)."""
    extra = ["train.steps=24", "train.eval_interval=8", "model.dropout=0.1", "train.grad_accum_steps=2"]
    assert_resume_is_exact(tiny_config(arch, tiny_corpus, *extra), tmp_path, 24)


@pytest.fixture(scope="module")
def char_base(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> Path:
    """A tiny character GPT, the base of the fine-tuning runs below."""
    config = tiny_config("gpt", tiny_corpus, "train.steps=10", "train.sample_tokens=0", "model.context_length=64")
    return Trainer(config, out=tmp_path_factory.mktemp("base")).fit().run_dir


@pytest.mark.parametrize(("method", "kind", "dataset"), [("lora", "classify", "demo-sentiment"), ("freeze", "translate", "demo-translate")])
def test_fine_tune_resume_is_exact(method: str, kind: str, dataset: str, char_base: Path, tmp_path: Path) -> None:
    """A fine-tuning run stopped halfway and resumed logs the same losses and task metrics as one
    that never stopped: the adapters (LoRA, with dropout) or the frozen layers, the head, and the
    task's own batch order all come back."""
    from studio.core.tasks.demo import write_demo_task

    files = write_demo_task(dataset, tmp_path / "task", sizes={"train": 48, "valid": 6, "test": 6})
    config = RunConfig().with_overrides([
        f"task.kind={kind}", f'task.paths=["{files["train"]}"]', f'task.valid_paths=["{files["valid"]}"]',
        f'task.test_paths=["{files["test"]}"]', "task.eval_examples=6", f'finetune.base="{char_base}"', f"finetune.method={method}",
        "finetune.lora_dropout=0.1", "finetune.freeze_layers=1", "train.steps=12", "train.eval_interval=4", "train.batch_size=8",
        "train.lr=3e-3", "schedule.warmup_steps=2",
    ])
    straight, resumed = assert_resume_is_exact(config, tmp_path, 12)
    assert any(f"parameters learn ({method})" in getattr(e, "text", "") for e in straight.events)
    assert any(f"parameters learn ({method})" in getattr(e, "text", "") for e in resumed.events)


def test_early_stopping_counts_carry_across_a_resume(tiny_corpus: Path, tmp_path: Path) -> None:
    """Patience counts evaluations without improvement across a stop and resume: a run stopped
    after one bad evaluation stops early at the same step as one that never stopped."""
    # A learning rate of zero never improves after the first evaluation (step 5).
    config = tiny_config("gpt", tiny_corpus, "train.lr=0", "train.steps=100", "train.eval_interval=5",
                         "train.early_stopping_patience=3", "train.sample_tokens=0")
    straight = Trainer(config, out=tmp_path / "a").fit()
    assert straight.status == "early_stopped" and straight.step == 20  # evaluations at 5 (best), 10, 15, 20

    control = RunControl()
    stopped = Trainer(config, out=tmp_path / "b").fit([stop_at(12, control)], control)
    assert stopped.status == "stopped" and stopped.step == 12  # after 5 (best) and 10: one without improvement
    state = load_checkpoint(stopped.run_dir / "checkpoints" / "last").state
    assert (state["best_step"], state["evals_without_improvement"]) == (5, 1)
    events = Collect()
    resumed = Trainer.resume(stopped.run_dir).fit([events])
    assert resumed.status == "early_stopped" and resumed.step == 20, resumed
    assert "no improvement for 3 evaluations; best at step 5" in events.of(RunFinished)[0].reason
    assert resumed.best_loss == pytest.approx(straight.best_loss)


def test_stop_is_honoured_within_one_step_and_saves(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    events = Collect()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=500"), out=tmp_path).fit([events, stop_at(7, control)], control)
    assert result.status == "stopped" and result.step == 7
    assert events.of(StepLogged)[-1].step == 7
    finished = events.of(RunFinished)[0]
    assert finished.status == "stopped"
    ckpt = load_checkpoint(result.run_dir / "checkpoints" / "last")
    assert ckpt.step == 7 and ckpt.resumable
    assert RunDir(result.run_dir).read_info()["status"] == "stopped"


def test_pause_blocks_steps_until_resumed(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    events = Collect()
    paused = threading.Event()
    stepped_while_paused = threading.Event()
    resumer_done: list[bool] = []

    def on_event(e: Event) -> None:
        if isinstance(e, StepLogged) and e.step == 3:
            control.request_pause()
        elif isinstance(e, RunPaused):
            paused.set()
        elif isinstance(e, StepLogged) and paused.is_set() and not resumer_done:
            stepped_while_paused.set()

    def resumer() -> None:
        assert paused.wait(120)
        # A run that did not block would take steps now; one that blocks takes none, however long
        # this waits, so the wait's length only bounds how slow a broken pause can be and still
        # be caught.
        resumer_done.append(not stepped_while_paused.wait(0.3))
        control.request_resume()

    thread = threading.Thread(target=resumer)
    thread.start()
    result = Trainer(tiny_config("lstm", tiny_corpus, "train.steps=6"), out=tmp_path).fit([events, FunctionCallback(on_event)], control)
    thread.join(timeout=60)
    assert result.status == "finished"
    assert resumer_done == [True]  # nothing ran while paused
    kinds = [type(e) for e in events.events]
    start, end = kinds.index(RunPaused), kinds.index(RunResumed)
    assert StepLogged not in kinds[start:end]
    assert events.of(RunPaused)[0].step == 3
    assert [e.step for e in events.of(StepLogged)] == [1, 2, 3, 4, 5, 6]


def test_stop_while_paused(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()

    def on_event(e: Event) -> None:
        if isinstance(e, StepLogged) and e.step == 2:
            control.request_pause()
        elif isinstance(e, RunPaused):
            # From another thread, as the window's Stop would come: before or during the wait, a
            # stop must end the pause and the run.
            threading.Thread(target=control.request_stop).start()

    events = Collect()
    result = Trainer(tiny_config("gru", tiny_corpus, "train.steps=50"), out=tmp_path).fit([events, FunctionCallback(on_event)], control)
    assert result.status == "stopped" and result.step == 2
    assert not events.of(RunResumed)  # stopped, not resumed
    assert load_checkpoint(result.run_dir / "checkpoints" / "last").step == 2


def test_early_stopping(tiny_corpus: Path, tmp_path: Path) -> None:
    # A learning rate of zero never improves after the first evaluation.
    config = tiny_config("gpt", tiny_corpus, "train.lr=0", "train.steps=100", "train.eval_interval=5", "train.early_stopping_patience=2")
    events = Collect()
    result = Trainer(config, out=tmp_path).fit([events])
    assert result.status == "early_stopped"
    assert result.step == 15  # evaluations at 5 (best), 10, 15
    assert "no improvement for 2 evaluations" in events.of(RunFinished)[0].reason


def test_divergence_fails_truthfully(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config("gpt", tiny_corpus, "train.lr=10", "train.grad_clip=0", "optimizer.name=sgd", "optimizer.momentum=0.99", "train.steps=200", "schedule.warmup_steps=0")
    events = Collect()
    result = Trainer(config, out=tmp_path).fit([events])
    assert result.status == "failed"
    failed = events.of(RunFailed)[0]
    assert "training diverged" in failed.error and "train.lr" in failed.error
    assert not events.of(RunFinished)
    assert RunDir(result.run_dir).read_info()["status"] == "failed"


def test_bad_corpus_fails_with_the_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    config = tiny_config("gpt", bad)
    events = Collect()
    result = Trainer(config, out=tmp_path / "runs").fit([events])
    assert result.status == "failed"
    assert "broken.jsonl, line 2: not valid JSON" in result.error


def test_events_are_frozen_plain_records_and_logged(tiny_corpus: Path, tmp_path: Path) -> None:
    events = Collect()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=10", "train.eval_interval=5"), out=tmp_path).fit([events])
    kinds = [e.kind for e in events.events if e.kind not in ("data_progress", "log")]
    assert kinds[0] == "data_ready" and kinds[1] == "run_started" and kinds[-1] == "finished"
    step = events.of(StepLogged)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.loss = 0.0  # type: ignore[misc]
    for e in events.events:
        for value in dataclasses.asdict(e).values():
            assert isinstance(value, int | float | str | bool | tuple | None)  # None: not known (no time budget)
    assert step.tokens_per_s > 0 and math.isfinite(step.grad_norm) and step.lr > 0
    assert events.of(DataReady)[0].encodings == ("UTF-8",)
    assert {e.label for e in events.of(CheckpointSaved)} == {"best", "last", "snapshot"}
    eval_event = events.of(EvalLogged)[0]
    assert eval_event.sample  # a text sample at each evaluation
    assert eval_event.perplexity == pytest.approx(math.exp(eval_event.loss))

    run = RunDir(result.run_dir)
    lines = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    assert [x["event"] for x in lines].count("step") == 10
    assert [type(e) for e in run_events_of(run)] == [type(e) for e in events.events if e.kind != "data_progress"]
    assert "finished at step 10" in run.log_path.read_text()
    samples = [json.loads(x) for x in (run.path / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [5, 10] and all(s["sample"] for s in samples)
    info = run.read_info()
    assert info["status"] == "finished" and info["step"] == 10 and info["best_valid_loss"] > 0


def test_dead_process_shows_as_interrupted(tmp_path: Path) -> None:
    run = RunDir.create(RunConfig(), out=tmp_path)
    run.write_info(status="running", pid=999_999_999, host=__import__("socket").gethostname())
    assert run.read_info()["status"] == "interrupted"


def test_epochs_set_the_step_count(tiny_corpus: Path, tmp_path: Path) -> None:
    """An epoch is every training token once: a step reads batch x context x accumulation tokens on
    each of the world's ranks, and the token count and throughput count them all."""
    from studio.core.training.lm_workload import LanguageModelWorkload

    events = Collect()
    config = tiny_config("lstm", tiny_corpus, "train.epochs=0.2", "train.eval_interval=1000", "train.grad_accum_steps=3")
    Trainer(config, out=tmp_path).fit([events])
    started = events.of(RunStarted)[0]
    train_tokens = events.of(DataReady)[0].train_tokens
    per_step = 16 * 32 * 3  # batch x context x accumulation
    assert started.total_steps == math.ceil(0.2 * train_tokens / per_step) > 1
    steps = events.of(StepLogged)
    assert len(steps) == started.total_steps
    assert [e.tokens_seen for e in steps] == [per_step * e.step for e in steps]
    # tokens/s is the tokens of the recent steps over their time: all three micro-batches count.
    assert steps[-1].tokens_per_s > 0
    assert max(e.tokens_per_s for e in steps) * max(e.elapsed_s for e in steps) >= per_step
    # Under torchrun each rank reads its own batches, so an epoch takes 1/world of the steps
    # (the tokens seen under two ranks are checked in tests/cli/test_cli.py).
    workload = LanguageModelWorkload(config, lambda e: None, RunControl(), None, None)
    assert workload.total_steps(config, 1) == started.total_steps
    assert workload.total_steps(config, 2) == math.ceil(0.2 * train_tokens / (per_step * 2))
    assert workload.total_steps(config, 4) == math.ceil(0.2 * train_tokens / (per_step * 4))


def test_resume_refuses_changed_model(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=50"), out=tmp_path).fit([stop_at(2, control)], control)
    resumed = Trainer.resume(result.run_dir, ["model.n_layers=3"]).fit()
    assert resumed.status == "failed" and "model.n_layers: 2 -> 3" in resumed.error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_out_of_memory_is_explained_and_the_work_so_far_saved(tiny_corpus: Path, tmp_path: Path) -> None:
    """A real out-of-memory failure in the middle of a run: after step 3 the process's address space
    is capped just above what it uses, so step 4's activations cannot be allocated. The run fails
    with the explanation (the estimate and what to lower), not an allocator message, and keeps
    the three steps done in a resumable ``last`` checkpoint. In a child process, so the cap never
    touches the test run."""
    script = f"""
import json, resource, sys
from pathlib import Path
from studio.core.events import RunFailed, StepLogged
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config

def address_space():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

class Squeeze:
    failed = None
    def on_event(self, event):
        if isinstance(event, StepLogged) and event.step == 3:
            # 64 MiB to spare: enough to save a checkpoint, far from the 760 MiB a step needs.
            resource.setrlimit(resource.RLIMIT_AS, (address_space() + (64 << 20), resource.RLIM_INFINITY))
        elif isinstance(event, RunFailed):
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            Squeeze.failed = event

config = tiny_config("gpt", Path({str(tiny_corpus)!r}), "train.steps=50", "train.batch_size=512", "model.context_length=128",
                     "train.checkpoint_interval=1000", "train.eval_interval=1000", "run.threads=1", "train.sample_tokens=0")
result = Trainer(config, out=Path({str(tmp_path / "runs")!r})).fit([Squeeze()])
print(json.dumps({{"status": result.status, "step": result.step, "error": result.error, "run": str(result.run_dir),
                  "checkpoint": Squeeze.failed.checkpoint if Squeeze.failed else None}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "failed" and result["step"] == 3, result
    assert result["error"].startswith("out of memory on cpu with batch 512 x context 128. Estimate: "), result["error"]
    assert "Lower train.batch_size" in result["error"] and "DefaultCPUAllocator" not in result["error"]
    run = Path(result["run"])
    assert result["checkpoint"] == str(run / "checkpoints" / "last")
    ckpt = load_checkpoint(run / "checkpoints" / "last")
    assert ckpt.step == 3 and ckpt.resumable  # saved after the failure: nothing was saved before it
    info = RunDir(run).read_info()
    assert info["status"] == "failed" and "out of memory" in info["error"]


# ---- bits per character and per byte ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_bits_per_char_and_byte_are_the_validation_loss_over_its_text(kind: str, tmp_path: Path) -> None:
    """bits/char = loss x tokens / (ln 2 x characters), counted by hand from the validation tokens
    decoded, on a text whose characters and bytes differ (English and Chinese)."""
    import numpy as np

    from studio.core.data.demo import write_demo_corpus
    from studio.core.data.prepare import prepare_corpus
    from studio.core.runs.export import export_run
    from studio.core.runs.index import RunIndex

    english = write_demo_corpus(tmp_path / "en.txt", stories=60, seed=3).read_text(encoding="utf-8")
    chinese = write_demo_corpus(tmp_path / "zh.txt", kind="demo-zh", stories=60, seed=3).read_text(encoding="utf-8")
    corpus = tmp_path / "mixed.txt"
    corpus.write_text("".join(a + b for a, b in zip(english.splitlines(keepends=True), chinese.splitlines(keepends=True), strict=False)),
                      encoding="utf-8")
    extra = ["train.steps=12", "train.eval_interval=6", "train.sample_tokens=0"]
    extra += ["tokenizer.kind=bpe", "tokenizer.vocab_size=400"] if kind == "bpe" else []
    config = tiny_config("gpt", corpus, *extra)
    events = Collect()
    result = Trainer(config, out=tmp_path / "runs").fit([events])
    assert result.status == "finished", result.error

    prepared = prepare_corpus(config.data, config.tokenizer)  # the run's own cache (a hit)
    valid = np.asarray(prepared.tokens("valid")).tolist()
    text = prepared.tokenizer.decode(valid)  # the end-of-document token decodes to nothing
    assert text and len(text.encode("utf-8")) > 1.3 * len(text)  # enough Chinese for bytes and characters to differ
    evals = events.of(EvalLogged)
    assert len(evals) == 2
    for e in evals:
        assert e.bits_per_char == pytest.approx(e.loss * len(valid) / (math.log(2) * len(text)), rel=1e-9)
        assert e.bits_per_byte == pytest.approx(e.loss * len(valid) / (math.log(2) * len(text.encode("utf-8"))), rel=1e-9)
    if kind == "bpe":  # a BPE token holds several characters: its loss per token is higher, per character not
        assert len(valid) < 0.8 * len(text) and evals[-1].bits_per_char < evals[-1].loss / math.log(2)

    # ... on the eval event in metrics.jsonl, at the end, in run.json, the library and the model card.
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [d["bits_per_char"] for d in logged if d["event"] == "eval"] == [e.bits_per_char for e in evals]
    best = min(evals, key=lambda e: e.loss)
    finished = events.of(RunFinished)[0]
    assert finished.best_bits_per_char == pytest.approx(best.bits_per_char)
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["best_valid_bits_per_char"] == pytest.approx(best.bits_per_char)
    assert info["best_valid_bits_per_byte"] == pytest.approx(best.bits_per_byte)
    index = RunIndex(tmp_path / "index.sqlite", root=tmp_path / "runs")
    index.refresh()
    record = index.get(result.run_dir)
    assert record is not None and record.best_valid_bpc == pytest.approx(best.bits_per_char)
    card = (export_run(result.run_dir, tmp_path / "export") / "README.md").read_text(encoding="utf-8")
    assert f"{best.bits_per_char:.3f} bits per character, {best.bits_per_byte:.3f} bits per byte" in card


def test_a_task_loss_has_no_bits_per_character(char_base: Path, tmp_path: Path) -> None:
    config = RunConfig().with_overrides([
        "task.kind=classify", "task.dataset=demo-sentiment", f"finetune.base={char_base}", "train.steps=4",
        "train.eval_interval=4", "train.batch_size=8",
    ])
    events = Collect()
    result = Trainer(config, out=tmp_path).fit([events])
    assert result.status == "finished", result.error
    assert [(e.bits_per_char, e.bits_per_byte) for e in events.of(EvalLogged)] == [(None, None)]


# ---- a time budget --------------------------------------------------------------------------------


def test_time_budget_settings_are_checked() -> None:
    from studio.core.durations import parse_duration
    from studio.core.errors import ConfigError

    assert [parse_duration(t) for t in ("90s", "3m", "1h", "1h30m", "1.5m", "45", "")] == [90, 180, 3600, 5400, 90, 45, None]
    with pytest.raises(ConfigError, match=r"train\.time_budget='3 minutes' is not a duration such as 90s, 3m or 1h30m"):
        RunConfig.from_dict({"train": {"time_budget": "3 minutes"}})
    with pytest.raises(ConfigError, match="train.time_budget"):
        RunConfig().with_overrides(["train.time_budget=0s"])


def budget_config(corpus: Path, *extra: str) -> RunConfig:
    # Steps far beyond what fits in the budget, so the budget alone ends training.
    return tiny_config("gpt", corpus, "train.steps=1000000", "train.eval_interval=1000000", "train.sample_tokens=0",
                       "schedule.warmup_steps=4", "schedule.min_lr_ratio=0.1", *extra)


def over_budget_guard(control: RunControl, seconds: float = 10.0) -> FunctionCallback:
    """Stops a run that ignores its budget (it would train for a million steps), so the test fails fast."""
    return FunctionCallback(lambda e: control.request_stop() if isinstance(e, StepLogged) and e.elapsed_s > seconds else None)


def ends_within_a_step(steps: list[StepLogged], budget: float) -> bool:
    """The run stopped at the first step that ended past the budget (a step's time of slack, for a busy machine)."""
    longest = max(b.elapsed_s - a.elapsed_s for a, b in zip(steps, steps[1:], strict=False))
    return steps[-2].elapsed_s < budget <= steps[-1].elapsed_s < budget + 5 * longest


def test_a_time_budget_stops_training_and_the_rate_decays_over_it(tiny_corpus: Path, tmp_path: Path) -> None:
    events = Collect()
    control = RunControl()
    result = Trainer(budget_config(tiny_corpus, "train.time_budget=2s"), out=tmp_path).fit([events, over_budget_guard(control)], control)
    assert result.status == "finished", result.error
    steps = events.of(StepLogged)
    assert events.of(RunStarted)[0].time_budget_s == 2.0
    assert ends_within_a_step(steps, 2.0) and len(steps) > 20
    finished = events.of(RunFinished)[0]
    assert finished.status == "finished" and "time budget of 2s" in finished.reason
    # Saved and evaluated as a normal end is.
    assert [e.step for e in events.of(EvalLogged)] == [steps[-1].step]
    assert any(c.label == "last" and c.step == steps[-1].step for c in events.of(CheckpointSaved))
    assert load_checkpoint(result.run_dir / "checkpoints" / "last").state["elapsed_s"] == pytest.approx(finished.elapsed_s)  # evaluation included
    # The rate warmed up over the first steps, then decayed with the time used, down to its floor.
    peak = 5e-3
    lrs = [s.lr for s in steps]
    assert lrs[:4] == pytest.approx([peak * k / 4 for k in range(1, 5)], rel=0.05)
    assert all(b <= a + 1e-12 for a, b in zip(lrs[4:], lrs[5:], strict=False))  # falling from the end of warm-up on
    assert lrs[-1] < 0.15 * peak
    halfway = next(s for s in steps if s.elapsed_s >= 1.0)
    assert 0.3 * peak < halfway.lr < 0.8 * peak  # a cosine is halfway down at half the budget


def test_a_resume_continues_the_time_budget(tiny_corpus: Path, tmp_path: Path) -> None:
    config = budget_config(tiny_corpus, "train.time_budget=2s")
    control = RunControl()
    first = Collect()
    stopped = Trainer(config, out=tmp_path).fit([first, stop_at(15, control)], control)
    assert stopped.status == "stopped" and stopped.step == 15
    spent = first.of(StepLogged)[-1].elapsed_s
    assert spent < 1.5

    second = Collect()
    resumed = Trainer.resume(stopped.run_dir).fit([second, over_budget_guard(control := RunControl())], control)
    assert resumed.status == "finished", resumed.error
    steps = second.of(StepLogged)
    assert steps[0].step == 16 and steps[0].elapsed_s > spent  # the clock goes on from the checkpoint
    assert ends_within_a_step(first.of(StepLogged) + steps, 2.0)  # only what was left of the budget
    assert steps[0].lr < first.of(StepLogged)[-1].lr + 1e-12  # the decay goes on, too

    # Once the budget is used, another resume trains nothing and says why; a larger budget trains on.
    third = Collect()
    again = Trainer.resume(resumed.run_dir).fit([third])
    assert again.status == "finished" and not third.of(StepLogged)
    assert "time budget (2s) is used up" in third.of(RunFinished)[0].reason
    more = Collect()
    longer = Trainer.resume(resumed.run_dir, ["train.time_budget=3s"]).fit([more, over_budget_guard(control := RunControl())], control)
    assert longer.status == "finished" and len(more.of(StepLogged)) > 2 and ends_within_a_step(more.of(StepLogged), 3.0)


def test_a_log_interval_logs_the_mean_loss_of_its_steps_and_before_each_evaluation(tiny_corpus: Path, tmp_path: Path) -> None:
    """train.log_interval (how often the loss is read back from the device: every 10 steps on a
    GPU by default) logs the mean of the steps since the last log point, and also at every
    evaluation and save, so nothing is checked late or lost at a resume. Same seed, same steps:
    the means of the every-step run's losses."""
    every = Collect()
    Trainer(tiny_config("gpt", tiny_corpus, "train.steps=10", "train.eval_interval=5"), out=tmp_path / "a").fit([every])
    sparse = Collect()
    Trainer(tiny_config("gpt", tiny_corpus, "train.steps=10", "train.eval_interval=5", "train.log_interval=4"),
            out=tmp_path / "b").fit([sparse])
    losses = {e.step: e.loss for e in every.of(StepLogged)}
    assert sorted(losses) == list(range(1, 11))
    logged = {e.step: e.loss for e in sparse.of(StepLogged)}
    assert sorted(logged) == [4, 5, 8, 10]
    groups = {4: [1, 2, 3, 4], 5: [5], 8: [6, 7, 8], 10: [9, 10]}
    for step, steps in groups.items():
        assert logged[step] == pytest.approx(sum(losses[s] for s in steps) / len(steps), rel=1e-5)


def test_divergence_between_log_points_fails_before_any_save(tiny_corpus: Path, tmp_path: Path) -> None:
    """The loss is checked at every save: no checkpoint ever holds the weights of a diverged step,
    even when the loss is read back only every 50 steps (each save, here every step, checks it first)."""
    config = tiny_config("gpt", tiny_corpus, "train.lr=10", "train.grad_clip=0", "optimizer.name=sgd", "optimizer.momentum=0.99",
                         "train.steps=200", "schedule.warmup_steps=0", "train.log_interval=50", "train.eval_interval=100",
                         "train.checkpoint_interval=1")
    events = Collect()
    saved: list[tuple[int, bool]] = []  # (step, weights finite); a callback's own assertion would be switched off

    def check_saved(event: object) -> None:
        if isinstance(event, CheckpointSaved) and event.label in ("last", "best"):
            model = load_checkpoint(Path(event.path)).build_model()
            saved.append((event.step, all(bool(torch.isfinite(q).all()) for q in model.parameters())))

    result = Trainer(config, out=tmp_path).fit([events, FunctionCallback(check_saved)])
    assert result.status == "failed" and "training diverged" in events.of(RunFailed)[0].error
    assert saved, "no checkpoint was saved before the divergence: the test checked nothing"
    assert all(finite for _step, finite in saved), f"non-finite weights saved: {saved}"
